"""Spread between trainings of the assignment-sized x2 super-resolution model, one per seed.

Trains ``sol5.learn_super_resolution_model(scale=2)`` (the assignment's network and schedule)
once per seed and prints its gain over cubic-spline enlargement, scored as ``evaluate --parts
superres``, on the held-out photos and, where OpenCV's sample images are installed
(``SOL5_UNSEEN_PHOTOS``), on their gray crops as in ``--parts unseen-superres``. The last lines
give each set's median, smallest and largest gain.

    python benchmarks/superres_seeds.py [--seeds 0 1 2 3] [--extra-photos FOLDER ...]
"""
import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import sol5  # noqa: E402  (first: it imports TensorFlow quietly)
import keras  # noqa: E402
from restoration import _data, experiments  # noqa: E402

SCALE = 2


def mean_gain(model, photos):
    """Mean PSNR of ``model`` minus that of cubic-spline enlargement over ``photos``, in dB."""
    def ours(low, shape):
        return sol5.super_resolve_image(low, model, SCALE)

    def cubic(low, shape):
        return sol5.enlarge(low, shape)

    return float(np.mean([experiments.super_resolution_score(clean, ours, SCALE)[0]
                          - experiments.super_resolution_score(clean, cubic, SCALE)[0]
                          for clean in photos]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--extra-photos", nargs="*", default=[],
                        help="photo folders added to the training photos, as for train")
    args = parser.parse_args()
    photo_sets = {"held-out photos": list(experiments.held_out_photos().values())}
    unseen = _data.unseen_photos()
    if unseen:
        photo_sets["unseen photos, gray"] = list(experiments.gray_photos(unseen).values())
    else:
        print(f"no unseen photos in {_data.unseen_photos_dir()}: held-out photos only")
    gains = {name: [] for name in photo_sets}
    for seed in args.seeds:
        keras.utils.set_random_seed(seed)
        model = sol5.learn_super_resolution_model(scale=SCALE, extra_photos=args.extra_photos)
        for name, photos in photo_sets.items():
            gains[name].append(mean_gain(model, photos))
        print(f"RESULT seed {seed}: " + ", ".join(
            f"{name} {values[-1]:+.2f} dB" for name, values in gains.items()), flush=True)
    for name, values in gains.items():
        print(f"SUMMARY {name}: gain over cubic median {np.median(values):+.2f} dB, "
              f"smallest {min(values):+.2f}, largest {max(values):+.2f} ({len(values)} seeds)")


if __name__ == "__main__":
    main()
