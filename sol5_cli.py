"""Command line of sol5: ``python sol5.py COMMAND`` (``--help`` lists the commands).

train the models, restore your own images, evaluate against classical methods, run the depth
study.  This module sits on top of the others (helpers -> machinery -> sol5 -> experiments ->
command line) and holds no restoration logic of its own.
"""

import os

import sol5  # first: it imports TensorFlow quietly
import sol5_experiments as experiments
import sol5_utils

import keras  # noqa: E402  (already loaded by sol5)
import skimage.util  # noqa: E402


def _super_resolution_task(scale):
    return {"label": f"x{scale} super-resolution",
            "learn": lambda **kwargs: sol5.learn_super_resolution_model(scale=scale, **kwargs),
            "apply": lambda image, model: sol5.super_resolve_image(image, model, scale)}


#: What the command line can train and apply.
TASKS = {
    "denoise": {"label": "denoising", "learn": sol5.learn_denoising_model, "apply": sol5.restore_image},
    "deblur": {"label": "deblurring", "learn": sol5.learn_deblurring_model, "apply": sol5.restore_image},
    "superres-x2": _super_resolution_task(2),
    "superres-x3": _super_resolution_task(3),
}


def default_model_path(task, preset=None):
    """Where ``train`` saves a task's model and ``restore`` looks for it."""
    return sol5_utils.output_dir() / f"{task}{'_' + preset if preset else ''}.keras"


def _cmd_train(args):
    """Train the chosen models, save them, restore one held-out example each."""
    import time
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.metrics import peak_signal_noise_ratio as psnr

    options = {}
    if args.preset or args.bf16:
        if any(task.startswith("superres") for task in args.tasks):
            raise SystemExit("sol5: --preset and --bf16 apply to denoise and deblur only")
        options = {"preset": args.preset, "precision": "mixed_bfloat16" if args.bf16 else "float32"}
    out_dir = sol5_utils.output_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    examples = experiments.held_out_examples()
    fig, axes = plt.subplots(len(args.tasks), 3, figsize=(12, 3.3 * len(args.tasks)), squeeze=False)
    for row, task in enumerate(args.tasks):
        spec = TASKS[task]
        start = time.perf_counter()
        model = spec["learn"](num_res_blocks=args.num_res_blocks, quick_mode=args.quick, **options)
        seconds = time.perf_counter() - start
        path = default_model_path(task, args.preset)
        model.save(path)
        clean, corrupted, corrupted_view = examples[task]
        restored = spec["apply"](corrupted, model)
        before, after = psnr(clean, corrupted_view, data_range=1), psnr(clean, restored, data_range=1)
        print(f"sol5: {task}: trained in {seconds:.0f} s, saved {path}; "
              f"held-out PSNR {before:.2f} dB -> {after:.2f} dB")
        for ax, image, title in zip(axes[row], (corrupted_view, restored, clean),
                                    (f"corrupted ({before:.1f} dB)", f"restored ({after:.1f} dB)",
                                     "clean")):
            ax.imshow(image, cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{spec['label']}: {title}")
            ax.axis("off")
    figure_path = out_dir / f"restoration_examples{'_' + args.preset if args.preset else ''}.png"
    fig.tight_layout()
    fig.savefig(figure_path, dpi=100)
    print(f"sol5: saved {figure_path}")


def _cmd_restore(args):
    """Restore (or, for super-resolution, enlarge) one image file with a saved model."""
    import imageio.v3 as iio
    model_path = args.model or default_model_path(args.task)
    if not os.path.isfile(model_path):
        raise SystemExit(f"sol5: no model at '{model_path}'; train one first with "
                         f"'python sol5.py train --tasks {args.task}' or pass --model PATH")
    model = keras.models.load_model(model_path, compile=False)
    image = sol5.read_image(args.input, 1)
    restored = TASKS[args.task]["apply"](image, model)
    iio.imwrite(args.output, skimage.util.img_as_ubyte(restored))
    print(f"sol5: restored {args.input} ({image.shape[1]}x{image.shape[0]}) with {model_path} "
          f"-> {args.output} ({restored.shape[1]}x{restored.shape[0]})")


def build_parser():
    import argparse
    parser = argparse.ArgumentParser(
        prog="python sol5.py",
        description="Train and use the exercise-5 restoration networks (denoising of photos, "
                    "deblurring of text).")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", help="train both models at the assignment's settings and restore held-out examples",
        description="Train the denoising and deblurring models (assignment settings), save them "
                    "as outputs/denoise.keras and outputs/deblur.keras, restore one "
                    "held-out image per task and save outputs/restoration_examples.png.")
    train.add_argument("--tasks", nargs="+", choices=list(TASKS), default=["denoise", "deblur"],
                       help="what to train (default: denoise deblur)")
    train.add_argument("--num-res-blocks", type=int, default=5)
    train.add_argument("--quick", action="store_true", help="the assignment's quick mode (seconds)")
    train.add_argument("--bf16", action="store_true",
                       help="train in mixed bfloat16 (about 2x faster on CPUs with AVX512-BF16)")
    train.add_argument("--preset", choices=["strong"], default=None,
                       help="train the stronger preset instead of the assignment's settings "
                            "(under an hour per model on 2 CPU cores); saved as outputs/TASK_strong.keras")
    train.set_defaults(func=_cmd_train)

    restore = commands.add_parser(
        "restore", help="restore an image file with a saved model",
        description="Restore a grayscale version of INPUT with a trained model and write OUTPUT "
                    "(8-bit). Example: python sol5.py restore --task denoise noisy.png clean.png")
    restore.add_argument("--task", choices=list(TASKS), required=True,
                         help="which model to use (denoise: photos with Gaussian noise; "
                              "deblur: text with motion blur; superres-xN: enlarge N times)")
    restore.add_argument("--model", help="a saved .keras model (default outputs/TASK.keras)")
    restore.add_argument("input", help="image file to restore (.png, .jpg; RGB is made gray)")
    restore.add_argument("output", help="where to write the restored image (.png)")
    restore.set_defaults(func=_cmd_restore)

    depth = commands.add_parser(
        "depth-study", help="section 7.3: validation MSE against depth 1-5, plots and figure",
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
        "evaluate", help="compare our models with classical restorers on held-out images",
        description="Score the noisy/blurred input, classical methods (TV, wavelet, BM3D if the "
                    "optional bm3d package is installed; Wiener and Richardson-Lucy given the true "
                    "kernel) and our trained models (outputs/TASK.keras, models/TASK_strong.keras) "
                    "on images never used for training. Prints a table, writes "
                    "results/evaluation.json and figures/evaluation_*.png.")
    evaluate.set_defaults(func=_cmd_evaluate)
    return parser


def _cmd_evaluate(args):
    print(experiments.format_evaluation(experiments.run_evaluation()))


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


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.func(args)
