"""Ablation: initialisation of the last convolution (Glorot default vs zeros), assignment settings.

Trains the denoising network at the assignment's settings twice per seed, once with Keras'
default initialiser on the last convolution and once with zeros (the network then starts as the
identity), and prints the held-out PSNR at each sigma.

    python benchmarks/init_ablation.py [--seeds 0 1]
"""
import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import sol5  # noqa: E402  (first: it imports TensorFlow quietly)
import keras  # noqa: E402
from restoration import experiments  # noqa: E402
import sol5_utils  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    cases = experiments.denoise_cases()
    for seed in args.seeds:
        for zero_last in (False, True):
            keras.utils.set_random_seed(seed)
            model = sol5.build_nn_model(24, 24, 48, 5)
            if zero_last:
                last = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)][-1]
                last.set_weights([np.zeros_like(w) for w in last.get_weights()])
            sol5.train_model(model, sol5_utils.images_for_denoising(),
                             experiments.corruption_for("denoise"), *sol5.DENOISE_SCHEDULE)
            scores = {s: np.mean([experiments.psnr_ssim(c["clean"], sol5.restore_image(
                c["corrupted"], model))[0] for c in cases if c["level"] == s])
                for s in experiments.EVAL_SIGMAS}
            print(f"RESULT seed {seed} last conv {'zeros' if zero_last else 'glorot'}: "
                  + ", ".join(f"sigma {s}: {v:.2f} dB" for s, v in scores.items()), flush=True)


if __name__ == "__main__":
    main()
