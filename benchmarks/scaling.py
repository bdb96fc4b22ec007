"""How restore_image's time and memory grow with the image: tiled against one whole-image call.

Run from the repository root::

    python benchmarks/scaling.py            # 0.25, 1, 6 and 24 megapixels, 3 rounds
    python benchmarks/scaling.py --quick    # 0.25 and 1 megapixel, 1 round
    python benchmarks/scaling.py --sizes 100 --rounds 1   # one 100-megapixel image, tiled

Every measurement runs in a fresh process, so its peak resident memory (``ru_maxrss``, the whole
process: Python, TensorFlow, the image and the result) is its own.  The network is the
assignment's denoiser (48 channels, 5 residual blocks) with seeded random weights: the cost of a
restore does not depend on the weights' values.  The whole-image call (windows as large as the
image) is measured only up to ``--untiled-max-mp`` (6) megapixels; larger whole-image calls are
not attempted.  Sizes are measured in rotating order, each round once, and the table gives medians;
the time per megapixel of the largest size is compared with the best at any smaller size.
With the default sizes it writes ``results/scaling.json`` (with the machine facts and the date)
and ``docs/figures/scaling.png``.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
SIZES = {0.25: (500, 500), 1: (1000, 1000), 6: (2000, 3000), 24: (4000, 6000),
         100: (10000, 10000)}
DEFAULT_SIZES = (0.25, 1, 6, 24)

CHILD = """
import json, resource, sys, time
import numpy as np
import sol5
from restoration import _tiling
height, width, tiled = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "tiled"
import keras
keras.utils.set_random_seed(0)
model = sol5.build_nn_model(24, 24, 48, 5)
if not tiled:
    _tiling.TILE = max(height, width)
sol5.restore_image(np.random.default_rng(1).random((64, 64)), model)  # build the any-size model
image = np.random.default_rng(2).random((height, width))
start = time.perf_counter()
restored = sol5.restore_image(image, model)
seconds = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_kib / 1024}))
"""


def measure(height, width, tiled):
    """Seconds of one restore and the peak RSS of its process, or None if the process died."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(height), str(width),
                           "tiled" if tiled else "whole"], cwd=ROOT, capture_output=True,
                          text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                          "HOME": str(pathlib.Path.home())})
    if done.returncode != 0:
        print(f"  {height}x{width} {'tiled' if tiled else 'whole'} failed: "
              f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine_facts():
    """Date, versions and machine size, stored beside the rows (as the other results files do)."""
    done = subprocess.run([sys.executable, "-c", "import json; from restoration import experiments; "
                           "print(json.dumps(experiments.machine_facts()))"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="0.25 and 1 MP, one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=float, nargs="+", default=DEFAULT_SIZES,
                        choices=sorted(SIZES), help="megapixels to measure (default 0.25 1 6 24)")
    parser.add_argument("--untiled-max-mp", type=float, default=6.0,
                        help="largest size measured as one whole-image call (default 6)")
    args = parser.parse_args()
    sizes = {mp: SIZES[mp] for mp in sorted(args.sizes) if not args.quick or mp <= 1}
    rounds = 1 if args.quick else args.rounds
    cases = [(mp, True) for mp in sizes] + [(mp, False) for mp in sizes if mp <= args.untiled_max_mp]
    runs = {case: [] for case in cases}
    for r in range(rounds):
        for mp, tiled in cases[r % len(cases):] + cases[:r % len(cases)]:
            result = measure(*sizes[mp], tiled)
            print(f"round {r + 1}: {mp:>5} MP {'tiled' if tiled else 'whole'}: {result}", flush=True)
            if result is not None:
                runs[(mp, tiled)].append(result)

    rows = []
    for (mp, tiled), results in runs.items():
        if not results:
            continue
        height, width = sizes[mp]
        megapixels = height * width / 1e6
        seconds = float(np.median([r["seconds"] for r in results]))
        rows.append({"megapixels": megapixels, "shape": [height, width],
                     "mode": "tiled" if tiled else "whole image", "seconds": seconds,
                     "seconds_per_mp": seconds / megapixels,
                     "peak_rss_mib": float(np.max([r["peak_rss_mib"] for r in results])),
                     "runs": len(results)})
    print("\n| image | megapixels | mode | seconds (median) | s / MP | peak RSS (MiB, max) |")
    print("|---|---|---|---|---|---|")
    for row in sorted(rows, key=lambda row: (row["mode"], row["megapixels"])):
        print(f"| {row['shape'][1]}x{row['shape'][0]} | {row['megapixels']:.2f} | {row['mode']} | "
              f"{row['seconds']:.2f} | {row['seconds_per_mp']:.2f} | {row['peak_rss_mib']:.0f} |")
    tiled_rows = sorted((r for r in rows if r["mode"] == "tiled"), key=lambda r: r["megapixels"])
    if len(tiled_rows) > 1:
        largest = tiled_rows[-1]
        best_smaller = min(r["seconds_per_mp"] for r in rows if r["megapixels"] < largest["megapixels"])
        ratio = largest["seconds_per_mp"] / best_smaller
        print(f"\ntime per MP at {largest['megapixels']:.2f} MP / best at any smaller size: "
              f"{ratio:.3f}")
    report = {"machine": machine_facts(), "rows": rows, "rounds": rounds}
    if not args.quick and tuple(sorted(args.sizes)) == DEFAULT_SIZES:
        (ROOT / "results").mkdir(exist_ok=True)
        (ROOT / "results" / "scaling.json").write_text(json.dumps(report, indent=1))
        plot(rows, ROOT / "docs" / "figures" / "scaling.png")
        print("wrote results/scaling.json and docs/figures/scaling.png")


def plot(rows, path):
    from restoration._figures import pyplot
    plt = pyplot()
    fig, (ax_time, ax_memory) = plt.subplots(1, 2, figsize=(11, 4))
    for mode, marker in (("tiled", "o"), ("whole image", "s")):
        chosen = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["megapixels"])
        if not chosen:
            continue
        mps = [r["megapixels"] for r in chosen]
        ax_time.plot(mps, [r["seconds_per_mp"] for r in chosen], marker=marker, label=mode)
        ax_memory.plot(mps, [r["peak_rss_mib"] / 1024 for r in chosen], marker=marker, label=mode)
    for ax, label in ((ax_time, "seconds per megapixel (median)"),
                      (ax_memory, "peak resident memory of the process (GiB)")):
        ax.set_xscale("log")
        ax.set_xlabel("image size (megapixels)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    ax_memory.axhline(3, color="gray", linestyle="--", linewidth=1)
    fig.suptitle(f"restore_image with the assignment's denoiser (48 channels, 5 blocks), "
                 f"{os.cpu_count()} CPU cores")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
