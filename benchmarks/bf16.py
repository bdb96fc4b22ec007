"""Mixed bfloat16 training against float32: wall time and held-out PSNR.

    python benchmarks/bf16.py [--seeds 0 1 2]

For each seed, trains ``learn_denoising_model()`` (the assignment's full settings) once in
float32 and once with ``precision="mixed_bfloat16"``, and prints the wall time of each call
and the mean PSNR over the held-out photos at each sigma; then the means over the seeds and
the PSNR difference (one seed's training noise alone moves PSNR by tenths of a dB).
"""
import argparse
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from restoration import _training  # noqa: E402
import sol5  # noqa: E402  (first: it imports TensorFlow quietly)
import keras  # noqa: E402
from restoration import experiments  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; bfloat16 supported: {_training.bfloat16_supported()}")
    cases = experiments.denoise_cases()
    results = {precision: [] for precision in _training.PRECISIONS}
    for seed in args.seeds:
        for precision in _training.PRECISIONS:
            keras.utils.set_random_seed(seed)
            began = time.perf_counter()
            model = sol5.learn_denoising_model(precision=precision)
            seconds = time.perf_counter() - began
            scores = [np.mean([experiments.psnr_ssim(c["clean"], sol5.restore_image(
                c["corrupted"], model))[0] for c in cases if c["level"] == sigma])
                for sigma in experiments.EVAL_SIGMAS]
            print(f"RESULT seed {seed} {precision}: learn_denoising_model() {seconds:.0f} s wall; "
                  + ", ".join(f"sigma {s}: {v:.2f} dB" for s, v in zip(experiments.EVAL_SIGMAS, scores)),
                  flush=True)
            results[precision].append([seconds] + scores)
    means = {precision: np.mean(rows, axis=0) for precision, rows in results.items()}
    for precision, (seconds, *scores) in means.items():
        print(f"MEAN over {len(args.seeds)} seeds {precision}: {seconds:.0f} s wall; "
              + ", ".join(f"sigma {s}: {v:.2f} dB" for s, v in zip(experiments.EVAL_SIGMAS, scores)))
    difference = means["mixed_bfloat16"][1:] - means["float32"][1:]
    print("bfloat16 minus float32, mean PSNR: "
          + ", ".join(f"sigma {s}: {d:+.2f} dB" for s, d in zip(experiments.EVAL_SIGMAS, difference)))


if __name__ == "__main__":
    main()
