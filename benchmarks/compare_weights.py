"""Two saved networks of one task side by side: mean PSNR on the held-out and unseen photos.

Meant for deciding whether to keep a continued training run (``train --init-from``) without
rerunning the slow classical methods of ``evaluate``.  Scores BASELINE and CANDIDATE (saved
``.keras`` networks of the same task) on the images and the seeded corruptions ``evaluate``
uses: the held-out photos and, where OpenCV's sample images are installed
(``SOL5_UNSEEN_PHOTOS``), the unseen ones, in gray for the gray tasks.  Prints each set's and
level's mean PSNR for both and the candidate's difference, and with ``--per-photo`` each
photo's too.

    python benchmarks/compare_weights.py TASK BASELINE CANDIDATE [--precision P] [--symmetries N]
        [--per-photo]

TASK is ``denoise`` (gray photos, every sigma of ``evaluate``), ``denoise-colour`` (colour
photos, the colour network) or ``superres-x2`` (PSNR of the enlargement, as ``evaluate``
scores it).
"""
import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import sol5  # noqa: E402  (first: it imports TensorFlow quietly)
import keras  # noqa: E402
from restoration import _data, _training, experiments  # noqa: E402

TASKS = ("denoise", "denoise-colour", "superres-x2")


def photo_cases(task, unseen=None):
    """``{set name: cases}`` for ``task``: dicts with ``image``, ``level`` and ``clean`` (and
    ``corrupted`` for the denoisers), from the held-out photos and from ``unseen`` (name -> RGB
    image) if any.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    sets = {}
    if task == "denoise":
        sets["held-out photos"] = experiments.denoise_cases()
        if unseen:
            sets["unseen photos, gray"] = experiments.denoise_cases(
                photos=experiments.gray_photos(unseen))
    elif task == "denoise-colour":
        sets["held-out colour photos"] = experiments.color_denoise_cases()
        if unseen:
            sets["unseen colour photos"] = experiments.color_denoise_cases(photos=unseen)
    else:
        sets["held-out photos"] = [{"image": name, "level": "x2", "clean": clean}
                                   for name, clean in experiments.held_out_photos().items()]
        if unseen:
            sets["unseen photos, gray"] = [{"image": name, "level": "x2", "clean": clean} for
                                           name, clean in experiments.gray_photos(unseen).items()]
    return sets


def photo_psnr(task, model, cases, precision="float32", symmetries=1):
    """``{level: {image: PSNR (dB)}}`` of ``model`` restoring ``cases`` (from ``photo_cases``;
    a case without an ``image`` name goes by its index)."""
    options = {"precision": precision, "symmetries": symmetries}
    if task == "superres-x2":
        def restore(case):
            return experiments.super_resolution_score(
                case["clean"], lambda low, shape: sol5.super_resolve_image(low, model, 2, **options),
                2)[0]
    else:
        run = sol5.restore_image if task == "denoise" else sol5.restore_color_image

        def restore(case):
            return experiments.psnr_ssim(case["clean"], run(case["corrupted"], model, **options))[0]
    scores = {}
    for index, case in enumerate(cases):
        scores.setdefault(case["level"], {})[case.get("image", index)] = restore(case)
    return scores


def level_means(scores):
    """``{level: mean PSNR}`` of ``{level: {image: PSNR}}`` (from ``photo_psnr``)."""
    return {level: float(np.mean(list(by_photo.values()))) for level, by_photo in scores.items()}


def mean_psnr(task, model, cases, precision="float32", symmetries=1):
    """``{level: mean PSNR (dB)}`` of ``model`` restoring ``cases`` (from ``photo_cases``)."""
    return level_means(photo_psnr(task, model, cases, precision, symmetries))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=TASKS)
    parser.add_argument("baseline", help="saved network (.keras) to compare against")
    parser.add_argument("candidate", help="saved network (.keras) of the same task")
    parser.add_argument("--precision", choices=_training.PRECISIONS, default="mixed_bfloat16",
                        help="precision the networks run in (default: mixed_bfloat16, as the "
                             "goal rows of evaluate run the shipped weights)")
    parser.add_argument("--symmetries", type=int, choices=(1, 2, 4, 8), default=1)
    parser.add_argument("--per-photo", action="store_true",
                        help="also print each photo's PSNR under both and the difference")
    args = parser.parse_args()
    unseen = _data.unseen_photos()
    if not unseen:
        print(f"no unseen photos in {_data.unseen_photos_dir()}: held-out photos only")
    models = {name: keras.models.load_model(path, compile=False)
              for name, path in (("baseline", args.baseline), ("candidate", args.candidate))}
    precision = _training.check_precision(args.precision)
    for set_name, cases in photo_cases(args.task, unseen).items():
        scores = {name: photo_psnr(args.task, model, cases, precision, args.symmetries)
                  for name, model in models.items()}
        means = {name: level_means(by_level) for name, by_level in scores.items()}
        for level, by_photo in scores["baseline"].items():
            baseline, candidate = means["baseline"][level], means["candidate"][level]
            print(f"RESULT {set_name}, {level}: baseline {baseline:.2f} dB, candidate "
                  f"{candidate:.2f} dB, difference {candidate - baseline:+.2f} dB", flush=True)
            for photo, before in by_photo.items() if args.per_photo else ():
                after = scores["candidate"][level][photo]
                print(f"  {photo}: baseline {before:.2f} dB, candidate {after:.2f} dB, "
                      f"difference {after - before:+.2f} dB", flush=True)


if __name__ == "__main__":
    main()
