"""Benchmark of the Deep Image Prior restoration (sol5.deep_prior_restore_image).

Run from the repository root::

    python benchmarks/dip_bench.py

For each noise level it prints the mean and the worst PSNR gain (dB) of the
restored image over the noisy input, on a fixed, seeded set of twelve 64x64
grayscale crops of scikit-image's camera, astronaut and coffee photos, and the
median seconds per image.  The first call, which builds and compiles the
network, is timed separately.  Noise is added as in the assignment:
``clip(round((clean + N(0, sigma)) * 255) / 255, 0, 1)``.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import skimage.color  # noqa: E402
import skimage.data  # noqa: E402
import skimage.util  # noqa: E402
from skimage.metrics import peak_signal_noise_ratio  # noqa: E402

from sol5 import deep_prior_restore_image  # noqa: E402

SIGMAS = (0.05, 0.1, 0.2)
PHOTOS = ("camera", "astronaut", "coffee")
CROPS_PER_PHOTO = 4
CROP = 64
CROP_SEED = 5     # positions: 3 smooth crops (camera sky, 2 x coffee) and 9 textured/edges
NOISE_SEED = 1


def evaluation_crops():
    """The fixed list of (label, clean 64x64 float64 crop)."""
    rng = np.random.default_rng(CROP_SEED)
    crops = []
    for name in PHOTOS:
        photo = getattr(skimage.data, name)()
        if photo.ndim == 3:
            photo = skimage.color.rgb2gray(photo)
        photo = skimage.util.img_as_float64(photo)
        for _ in range(CROPS_PER_PHOTO):
            i = int(rng.integers(0, photo.shape[0] - CROP + 1))
            j = int(rng.integers(0, photo.shape[1] - CROP + 1))
            crops.append((f"{name}[{i}:{i + CROP},{j}:{j + CROP}]", photo[i:i + CROP, j:j + CROP]))
    return crops


def add_noise(clean, sigma, rng):
    """Gaussian noise, rounded to 8 bits and clipped, as in the assignment."""
    return np.clip(np.round((clean + rng.normal(0.0, sigma, clean.shape)) * 255) / 255, 0.0, 1.0)


def main():
    import argparse
    parser = argparse.ArgumentParser(description="Deep Image Prior benchmark: PSNR gain and time "
                                                 "per 64x64 crop at sigma 0.05, 0.1, 0.2.")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print every crop's gain")
    args = parser.parse_args()
    crops = evaluation_crops()
    rng = np.random.default_rng(NOISE_SEED)
    noisy_sets = {sigma: [add_noise(clean, sigma, rng) for _, clean in crops] for sigma in SIGMAS}

    start = time.perf_counter()
    deep_prior_restore_image(noisy_sets[0.1][0])
    warm_up = time.perf_counter() - start

    print(f"Deep Image Prior benchmark: {len(crops)} crops of {CROP}x{CROP}, "
          f"os.cpu_count() = {os.cpu_count()}")
    print(f"first call (build + compile + one restoration): {warm_up:.2f} s")
    print(f"{'sigma':>6} {'mean gain dB':>13} {'worst gain dB':>14} {'worst crop':>28} "
          f"{'median s/img':>13} {'max s/img':>10}")
    for sigma in SIGMAS:
        gains, seconds = [], []
        for (label, clean), noisy in zip(crops, noisy_sets[sigma]):
            start = time.perf_counter()
            restored = deep_prior_restore_image(noisy)
            seconds.append(time.perf_counter() - start)
            gains.append(peak_signal_noise_ratio(clean, restored, data_range=1)
                         - peak_signal_noise_ratio(clean, noisy, data_range=1))
        worst = int(np.argmin(gains))
        print(f"{sigma:>6.2f} {np.mean(gains):>13.2f} {gains[worst]:>14.2f} {crops[worst][0]:>28} "
              f"{np.median(seconds):>13.2f} {np.max(seconds):>10.2f}", flush=True)
        if args.verbose:
            print("        per crop: " + ", ".join(f"{g:.1f}" for g in gains))


if __name__ == "__main__":
    main()
