"""Command line of sol5: ``python sol5.py COMMAND`` (``--help`` lists the commands).

train the models, restore your own images, evaluate against classical methods, run the depth
study.  This module sits on top of the others (helpers -> machinery -> sol5 -> experiments ->
command line) and holds no restoration logic of its own.
"""

import contextlib
import json
import os
import pathlib
import re
import sys
import threading

import numpy as np

from . import _data, _files, _tiling, _training
from ._figures import save_panel_rows
from . import experiments, report

sol5 = experiments.sol5  # loaded before keras: it imports TensorFlow quietly

import keras  # noqa: E402


def _restore_pixels(pixels, model, progress=None, **network):
    """A file's pixels restored by ``model``, in their own layout and dtype; ``network``: the
    ``precision``, ``symmetries`` and ``sure`` of :func:`sol5.restore_color_image`."""
    return sol5.restore_color_image(pixels, model, out_dtype=pixels.dtype, progress=progress,
                                    **network)


def _super_resolution_task(scale):
    def enlarge_pixels(pixels, model, progress=None, **network):
        """Every channel enlarged by cubic splines, then the colours restored (alpha only enlarged)."""
        stack = pixels[..., None] if pixels.ndim == 2 else pixels
        shape = tuple(int(round(n * scale)) for n in stack.shape[:2])
        enlarged = np.stack([sol5.enlarge(sol5.as_gray_image(stack[..., c]), shape)
                             for c in range(stack.shape[-1])], axis=-1)
        enlarged = enlarged[..., 0] if pixels.ndim == 2 else enlarged
        return sol5.restore_color_image(enlarged, model, out_dtype=pixels.dtype, progress=progress,
                                        **network)
    return {"label": f"x{scale} super-resolution",
            "learn": lambda **kwargs: sol5.learn_super_resolution_model(scale=scale, **kwargs),
            "apply": lambda image, model: sol5.super_resolve_image(image, model, scale),
            "apply_file": enlarge_pixels}


#: What the command line can train and apply: ``apply`` on the assignment's gray float images,
#: ``apply_file`` on a file's pixels (any layout and bit depth).
TASKS = {
    "denoise": {"label": "denoising", "learn": sol5.learn_denoising_model,
                "apply": sol5.restore_image, "apply_file": _restore_pixels},
    "deblur": {"label": "deblurring", "learn": sol5.learn_deblurring_model,
               "apply": sol5.restore_image, "apply_file": _restore_pixels},
    "superres-x2": _super_resolution_task(2),
    "superres-x3": _super_resolution_task(3),
    "denoise-colour": {"label": "colour denoising", "learn": sol5.learn_color_denoising_model,
                       "apply": sol5.restore_color_image, "apply_file": _restore_pixels},
}


#: The tasks that train on photos, and so take ``--extra-photos``.
PHOTO_TASKS = ("denoise", "denoise-colour", "superres-x2", "superres-x3")

#: The tasks that remove noise, and so take ``--low-sigma-share`` (and save a checkpoint each
#: epoch, for their long runs).
DENOISING_TASKS = ("denoise", "denoise-colour")


#: A colour denoiser (``sol5.build_color_nn_model``) that ``restore --task denoise`` without
#: ``--model`` uses for RGB and RGBA files when this file exists (``--colour-model`` names another;
#: a model named by ``--model`` restores every file).
COLOUR_DENOISER = _data.ROOT / "models" / "denoise-colour_long.keras"


def default_model_path(task, preset=None):
    """Where ``train`` saves a task's model and ``restore`` looks for it."""
    return _data.output_dir() / f"{task}{'_' + preset if preset else ''}.keras"


def _cmd_train(args):
    """Train the chosen models, save them, restore one held-out example each."""
    import time
    from skimage.metrics import peak_signal_noise_ratio as psnr

    options = {}
    if args.preset or args.bf16 or args.max_minutes or args.init_from:
        if args.init_from and len(args.tasks) != 1:
            raise SystemExit("sol5: --init-from continues one model: name one task with --tasks")
        options = {"preset": args.preset, "precision": "mixed_bfloat16" if args.bf16 else "float32",
                   "max_minutes": args.max_minutes, "init_from": args.init_from}
    not_photos = [task for task in args.tasks if task not in PHOTO_TASKS]
    if args.extra_photos and not_photos:
        raise SystemExit(f"sol5: --extra-photos adds photos to a photo task's training, and "
                         f"{', '.join(not_photos)} trains on other images: use it with "
                         f"--tasks among {', '.join(PHOTO_TASKS)}")
    not_denoisers = [task for task in args.tasks if task not in DENOISING_TASKS]
    if args.low_sigma_share and not_denoisers:
        raise SystemExit(f"sol5: --low-sigma-share changes a denoiser's noise levels, and "
                         f"{', '.join(not_denoisers)} adds no noise: use it with --tasks among "
                         f"{', '.join(DENOISING_TASKS)}")
    out_dir = _data.output_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    examples = experiments.held_out_examples()
    rows = []
    for task in args.tasks:
        spec = TASKS[task]
        path = default_model_path(task, args.preset)
        extra = {"extra_photos": args.extra_photos} if args.extra_photos else {}
        if task in DENOISING_TASKS:
            extra.update(checkpoint=path.with_name(path.stem + ".checkpoint.keras"),
                         low_sigma_share=args.low_sigma_share)
        start = time.perf_counter()
        model = spec["learn"](num_res_blocks=args.num_res_blocks, quick_mode=args.quick,
                              **options, **extra)
        seconds = time.perf_counter() - start
        model.save(path)
        record = experiments.training_record(["python", "sol5.py", *args.argv], seconds,
                                             args.extra_photos or (), args.init_from)
        path.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
        clean, corrupted, corrupted_view = examples[task]
        restored = spec["apply"](corrupted, model)
        before, after = psnr(clean, corrupted_view, data_range=1), psnr(clean, restored, data_range=1)
        print(f"sol5: {task}: trained in {seconds:.0f} s, saved {path}; "
              f"held-out PSNR {before:.2f} dB -> {after:.2f} dB")
        rows.append([(f"{spec['label']}: corrupted ({before:.1f} dB)", corrupted_view),
                     (f"{spec['label']}: restored ({after:.1f} dB)", restored),
                     (f"{spec['label']}: clean", clean)])
    figure_path = out_dir / f"restoration_examples{'_' + args.preset if args.preset else ''}.png"
    save_panel_rows(rows, figure_path, panel_size=4.0, fontsize=10, dpi=100)
    print(f"sol5: saved {figure_path}")


def _cmd_restore(args):
    """Restore one image file, or every image of a folder, with a saved model."""
    if args.sure and args.task != "denoise":
        raise SystemExit(f"sol5: --sure is for --task denoise (Gaussian noise, restored by a "
                         f"gray network), not for {TASKS[args.task]['label']}")
    model_path = args.model or default_model_path(args.task)
    if not os.path.isfile(model_path):
        raise SystemExit(f"sol5: no model at '{model_path}'; train one first with "
                         f"'python sol5.py train --tasks {args.task}' or pass --model PATH")
    jobs, ignored = restore_jobs(args.input, args.output)
    model = keras.models.load_model(model_path, compile=False)
    colour_path = args.colour_model or (COLOUR_DENOISER if args.task == "denoise" and not args.model
                                        else None)
    colour_model = (keras.models.load_model(colour_path, compile=False)
                    if colour_path is not None and os.path.isfile(colour_path) else None)
    if args.colour_model and colour_model is None:
        raise SystemExit(f"sol5: no model at '{args.colour_model}' (--colour-model)")
    apply = TASKS[args.task]["apply_file"]
    network = {"precision": restore_precision(args.precision), "symmetries": args.symmetries,
               "sure": args.sure}
    if args.verbose:
        print(f"sol5: the network runs in {network['precision']}")
    folder_mode = os.path.isdir(args.input)
    if ignored:
        print(f"sol5: ignoring {len(ignored)} file(s) that are not images by their extension "
              f"(first: {ignored[0].name})")
    kept, failed = [], []
    files_bar = keras.utils.Progbar(len(jobs), unit_name="image") if folder_mode else None
    for source, target in jobs:
        if target.exists() and not args.overwrite:
            kept.append(target)
        else:
            tiles_bar = None if folder_mode else keras.utils.Progbar(None, unit_name="tile")
            try:
                picture = _files.read_picture(source, max_megapixels=args.max_megapixels)
                chosen = colour_model if colour_model is not None and picture.mode in (
                    "RGB", "RGBA") else model
                if args.sure and chosen is colour_model:
                    raise ValueError(f"{source}: --sure restores channel by channel with a gray "
                                     "network, and this colour file would go to the colour "
                                     "network; pass --model models/denoise_long.keras to restore "
                                     "colour files channel by channel")
                restored = _restore_picture(apply, picture, chosen, tiles_bar, **network)
                notes = [*picture.notes, *_files.write_picture(target, restored, picture)]
                if args.verbose or not folder_mode:
                    print(f"sol5: {source} ({_describe(picture)}) -> {target}")
                for note in notes:
                    print(f"sol5: {target}: {note}")
            except (ValueError, FileNotFoundError) as exc:
                failed.append(str(exc))
            except OSError as exc:  # e.g. a full disk: the output was not written
                failed.append(f"{target}: cannot be written ({exc.strerror or exc})")
        if files_bar is not None:
            files_bar.add(1)
    if kept:
        print(f"sol5: kept {len(kept)} existing output(s) (first: {kept[0]}); "
              "pass --overwrite to replace them")
    if failed and not folder_mode:
        raise SystemExit(f"sol5: {failed[0]}")
    if failed:
        raise SystemExit(f"sol5: {len(failed)} of {len(jobs)} image(s) failed:\n  "
                         + "\n  ".join(failed))
    if kept and not folder_mode:
        raise SystemExit(1)


def _restore_picture(apply, picture, model, progress, **network):
    """A picture's pixels restored by ``apply`` (a task's ``apply_file``, given ``network``),
    in their own layout.

    CMYK goes through the network as the light its inks let through (255 - C is about the red
    channel, 255 - K the gray), the kind of image the networks learned on: the three colour
    inks as one colour image, then black as a gray one.
    """
    if picture.mode != "CMYK":
        return apply(picture.pixels, model, progress=progress, **network)
    pixels = picture.pixels
    top = np.iinfo(pixels.dtype).max if pixels.dtype.kind == "u" else pixels.dtype.type(1)
    light = top - pixels
    stages = _ProgressStages(progress)
    colours = apply(light[..., :3], model, progress=stages.next(), **network)
    black = apply(light[..., 3], model, progress=stages.next(), **network)
    return top - np.dstack([colours, black])


class _ProgressStages:
    """One progress bar over restores that run one after another, each setting its own target."""

    def __init__(self, bar):
        self._bar, self._done, self._steps = bar, 0, 0

    def next(self):
        """The bar for the next restore (None where there is no bar)."""
        self._done += self._steps
        self._steps = 0
        return None if self._bar is None else self

    @property
    def target(self):  # this stage's own steps, as set
        return self._steps

    @target.setter
    def target(self, steps):
        self._steps = steps
        self._bar.target = self._done + steps

    def add(self, steps):
        self._bar.add(steps)


def restore_precision(choice):
    """The network's arithmetic for ``restore --precision``: 'auto' takes bfloat16 where the
    machine runs it fast (AMX or AVX512-BF16 CPUs, recent GPUs) and float32 elsewhere."""
    if choice == "auto":
        return "mixed_bfloat16" if _training.bfloat16_supported() else "float32"
    return {"bfloat16": "mixed_bfloat16"}.get(choice, choice)


def restore_jobs(source, target):
    """``[(input file, output file)]`` for a file or a folder, and the folder's non-image files.

    The output folder is created.  Raises SystemExit with the reason for a missing input, a
    target that is the input (or the input's folder), or an output folder that cannot be
    written.
    """
    source, target = pathlib.Path(source), pathlib.Path(target)
    if not source.exists():
        raise SystemExit(f"sol5: {source}: no such file or folder")
    if source.is_dir():
        if target.exists() and not target.is_dir():
            raise SystemExit(f"sol5: {source} is a folder, so the output {target} must be a "
                             "folder too")
        if target.resolve() == source.resolve():
            raise SystemExit(f"sol5: the output folder {target} is the input folder; the "
                             "inputs are never overwritten: choose another folder")
        files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
        images = [p for p in files if p.suffix.lower() in _files.IMAGE_SUFFIXES]
        ignored = [p for p in files if p not in images]
        jobs = [(p, target / p.name) for p in images]
        folder = target
    else:
        if target.is_dir():
            target = target / source.name
        if target.resolve() == source.resolve():
            raise SystemExit(f"sol5: the output {target} is the input; the input is never "
                             "overwritten: choose another output name")
        jobs, ignored, folder = [(source, target)], [], target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".sol5-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise SystemExit(f"sol5: cannot write to the output folder {folder} ({exc.strerror or exc})")
    return jobs, ignored


def _describe(picture):
    """``'640x480 RGB, uint8'``: a picture's size, layout and pixel type."""
    name = {"L": "gray", "LA": "gray + alpha"}.get(picture.mode, picture.mode)
    height, width = picture.pixels.shape[:2]
    return f"{width}x{height} {name}, {picture.pixels.dtype}"


def _megapixels(text):
    """``--max-megapixels``: a number of millions of pixels; 0 means no limit (None)."""
    import argparse
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of megapixels, 0 or more (0: no "
                                         f"limit), got {text!r}")
    return value or None


def build_parser():
    import argparse
    parser = argparse.ArgumentParser(
        prog="python sol5.py",
        description="Train and use the exercise-5 restoration networks (denoising of photos, "
                    "deblurring of text).")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true",
                        help="also show TensorFlow's and Keras' own messages and a line per file "
                             "(set SOL5_VERBOSE=1 too for TensorFlow's start-up notices)")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", parents=[common],
        help="train both models at the assignment's settings and restore held-out examples",
        description="Train the denoising and deblurring models (assignment settings), save them "
                    "as outputs/denoise.keras and outputs/deblur.keras (each with a .json record "
                    "of the command, machine, time and photos), restore one "
                    "held-out image per task and save outputs/restoration_examples.png.")
    train.add_argument("--tasks", nargs="+", choices=list(TASKS), default=["denoise", "deblur"],
                       help="what to train (default: denoise deblur)")
    train.add_argument("--num-res-blocks", type=int, default=5)
    train.add_argument("--quick", action="store_true", help="the assignment's quick mode (10, 3, 2, 30)")
    train.add_argument("--bf16", action="store_true",
                       help="train in mixed bfloat16 (faster on CPUs with AVX512-BF16 or AMX)")
    train.add_argument("--max-minutes", type=float, default=None,
                       help="train each model for this many minutes at most, the step size "
                            "decaying over that time")
    train.add_argument("--init-from", default=None, metavar="MODEL",
                       help="continue training from this saved model (same task and preset; "
                            "denoise-colour also starts from a gray denoiser of the same preset)")
    train.add_argument("--extra-photos", nargs="+", default=None, metavar="FOLDER",
                       help="photo tasks (denoise, denoise-colour, superres-x2/x3): also train "
                            "on the .jpg/.png photos of these folders (docs/training-data.md "
                            "names a package that installs some)")
    train.add_argument("--low-sigma-share", type=float, default=0.0, metavar="P",
                       help="denoise and denoise-colour: draw each patch's sigma from [0, 0.1] "
                            "instead of [0, 0.2] with probability P (default 0)")
    train.add_argument("--preset", choices=["extended", "strong", "long"], default=None,
                       help="train a stronger recipe instead of the assignment's settings: "
                            "extended (deblur only: the assignment's network, 4x the steps), "
                            "strong (wider and deeper, for a CPU) or long (deeper and "
                            "longer, for a GPU); saved as outputs/TASK_PRESET.keras")
    train.set_defaults(func=_cmd_train)

    restore = commands.add_parser(
        "restore", parents=[common],
        help="restore an image file, or a folder of images, with a saved model",
        description="Restore INPUT (a file, or every image in a folder) with a trained model and "
                    "write OUTPUT (a file, or a folder) in the same layout and bit depth: gray "
                    "stays gray, colour is restored channel by channel, alpha is kept, 16-bit "
                    "stays 16-bit, CMYK stays CMYK in JPEG and TIFF; palettes and transparent "
                    "colour keys become RGB(A). The picture is written upright, with its ICC "
                    "profile, EXIF (orientation 1), XMP, text and resolution where the output "
                    "format holds them; a line says what was converted or not kept "
                    "(docs/image-files.md). Existing outputs are kept unless --overwrite is "
                    "given; unreadable or refused files are named and skipped, and the exit "
                    "status is then non-zero. Example: python sol5.py restore --task denoise "
                    "photos/ restored/")
    restore.add_argument("--task", choices=list(TASKS), required=True,
                         help="which model to use (denoise: photos with Gaussian noise; "
                              "deblur: text with motion blur; superres-xN: enlarge N times)")
    restore.add_argument("--model", help="a saved .keras model (default outputs/TASK.keras)")
    restore.add_argument("input", help="image file or folder to restore (.png, .jpg, .tif, ...)")
    restore.add_argument("output", help="output file (its extension picks the format) or folder")
    restore.add_argument("--colour-model", metavar="PATH",
                         help="a colour network (sol5.build_color_nn_model) for RGB and RGBA "
                              "files; gray and CMYK files keep --model (for denoise without "
                              "--model the default is models/denoise-colour_long.keras, when that "
                              "file exists)")
    restore.add_argument("--overwrite", action="store_true",
                         help="replace outputs that already exist (inputs are never replaced)")
    restore.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto",
                         help="the network's arithmetic: bfloat16 is faster on CPUs with AMX or "
                              "AVX512-BF16 and differs slightly (docs/speed.md); auto (default) "
                              "takes it where the machine has it, float32 elsewhere")
    restore.add_argument("--symmetries", type=int, choices=_tiling.SYMMETRY_COUNTS, default=1,
                         help="average the network's results over this many turned and "
                              "mirrored copies of each image (a geometric self-ensemble): a "
                              "little more PSNR for as many times the work (default 1)")
    restore.add_argument("--sure", action="store_true",
                         help="denoising with a gray network only: remove the share of the "
                              "network's residual that Stein's unbiased risk estimate finds "
                              "best in each part of the image, at the noise level read from it "
                              "(gives back fine texture a blind network smooths at light noise; "
                              "twice the work)")
    restore.add_argument("--max-megapixels", type=_megapixels,
                         default=_files.DEFAULT_MAX_MEGAPIXELS, metavar="N",
                         help="refuse images of more than N million pixels, from the file's "
                              "header before decoding it (default "
                              f"{_files.DEFAULT_MAX_MEGAPIXELS}: a small file can claim a huge "
                              "size); raise it for a large file you trust, 0 for no limit")
    restore.set_defaults(func=_cmd_restore)

    depth = commands.add_parser(
        "depth-study", parents=[common],
        help="section 7.3: validation MSE against depth 1-5, plots and figure",
        description="Train each task at the assignment's settings for 1 to 5 residual blocks and "
                    "several seeds, append every run to results/depth_study.json (runs already "
                    "there are skipped), then draw depth_plot_denoise.png, depth_plot_deblur.png "
                    "and depth_examples.png from that file.")
    depth.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    depth.add_argument("--tasks", nargs="+", choices=["denoise", "deblur"],
                       default=["denoise", "deblur"])
    depth.add_argument("--plots-only", action="store_true",
                       help="only redraw the plots and the table from the results file")
    depth.set_defaults(func=_cmd_depth_study)

    evaluate = commands.add_parser(
        "evaluate", parents=[common],
        help="compare our models with classical restorers on held-out images",
        description="Score the noisy/blurred input, classical methods (TV, wavelet, BM3D if the "
                    "optional bm3d package is installed; Wiener and Richardson-Lucy given the true "
                    "kernel) and our trained models (outputs/TASK.keras, models/TASK_long.keras) "
                    "on images never used for training. Prints a table, writes "
                    "results/evaluation.json and docs/figures/evaluation_*.png.")
    evaluate.add_argument("--parts", nargs="+", choices=experiments.EVALUATION_PARTS,
                          default=list(experiments.EVALUATION_PARTS),
                          help="rerun only these parts; the others are kept from "
                               "results/evaluation.json (default: all)")
    evaluate.set_defaults(func=_cmd_evaluate)

    pages = commands.add_parser(
        "report", parents=[common],
        help="write the measured tables of docs/ and the README from results/",
        description="Generate docs/evaluation.md, docs/speed.md, docs/depth-study.md, "
                    "docs/deep-prior-results.md, docs/training-logs.md and the README's headline "
                    "table from the results files (evaluate and depth-study do this last).")
    pages.add_argument("--check", action="store_true",
                       help="write nothing; exit with status 1 if a page is out of date")
    pages.add_argument("--clean-log", nargs=2, metavar=("RAW", "LOG"), help=report.CLEAN_LOG_HELP)
    pages.set_defaults(func=_cmd_report)
    return parser


def _cmd_report(args):
    status = report.main((["--check"] if args.check else [])
                         + (["--clean-log", *args.clean_log] if args.clean_log else []))
    if status:
        raise SystemExit(status)


def _write_docs():
    for path in report.write_report(readme=_data.ROOT / "README.md"):
        print(f"sol5: wrote {path}")


def _cmd_evaluate(args):
    print(experiments.format_evaluation(experiments.run_evaluation(parts=args.parts)))
    _write_docs()


def _cmd_depth_study(args):
    if args.plots_only:
        results = experiments.load_results(experiments.DEPTH_RESULTS)
        if not results["runs"]:
            raise SystemExit(f"sol5: no runs in {experiments.DEPTH_RESULTS}; "
                             "run 'python sol5.py depth-study' first")
    else:
        results = experiments.run_depth_study(tasks=args.tasks, seeds=tuple(args.seeds))
    print(experiments.format_depth_table(results))
    for path in experiments.plot_depth_study(results):
        print(f"sol5: saved {path}")
    missing = experiments.missing_depth_models()
    if missing:
        print(f"sol5: skipped depth_examples.png: {len(missing)} per-depth models are missing "
              f"from {experiments.depth_model_dir()} (a full 'python sol5.py depth-study' "
              "saves them)")
    else:
        print(f"sol5: saved {experiments.plot_depth_examples()}")
    _write_docs()


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # for the record saved beside a trained model
    with _library_chatter(args.verbose):
        args.func(args)


@contextlib.contextmanager
def _library_chatter(verbose):
    """Unless ``verbose``, hide TensorFlow's and Keras' own log lines and warnings for a command."""
    if verbose:
        yield
        return
    import logging
    import warnings
    loggers = [logging.getLogger(name) for name in ("tensorflow", "absl", "keras")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), _native_log_filter():
            for module in ("keras", "tensorflow", "absl"):
                warnings.filterwarnings("ignore", module=module)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


#: The info and warning lines TensorFlow's C++ core writes straight to file descriptor 2
#: (``I0000 00:00:1795.. 123 file.cc:45] message``); errors (E, F) still go through.
_NATIVE_LOG_LINE = re.compile(rb"^[IW]\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] ")


@contextlib.contextmanager
def _native_log_filter():
    """Pass file descriptor 2 through a thread that drops TensorFlow's native info lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb") as source, os.fdopen(os.dup(saved), "wb") as sink:
            for line in source:
                if not _NATIVE_LOG_LINE.match(line):
                    sink.write(line)
                    sink.flush()
    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last writer: the pump reads to the end and stops
        thread.join(timeout=5)
        os.close(saved)
