"""Experiments behind the answers, plots and tables: ``python sol5.py depth-study`` and friends.

Nothing here is graded; every figure and number the project quotes is produced by a command that
lands in this module, so anyone can rerun it.
"""

import datetime
import json
import os
import pathlib
import platform
import time

import numpy as np

import sol5
import sol5_utils

ROOT = pathlib.Path(__file__).resolve().parent
RESULTS_DIR = ROOT / "results"
DEPTH_RESULTS = RESULTS_DIR / "depth_study.json"
DEPTHS = (1, 2, 3, 4, 5)
DEPTH_TASKS = {
    "denoise": dict(images=sol5_utils.images_for_denoising, patch=sol5.DENOISE_PATCH,
                    channels=sol5.DENOISE_CHANNELS, schedule=sol5.DENOISE_SCHEDULE,
                    title="Denoising (Gaussian noise, sigma ~ U[0, 0.2])"),
    "deblur": dict(images=sol5_utils.images_for_deblurring, patch=sol5.DEBLUR_PATCH,
                   channels=sol5.DEBLUR_CHANNELS, schedule=sol5.DEBLUR_SCHEDULE,
                   title="Deblurring (7-pixel motion blur, random angle)"),
}


def corruption_for(task):
    """The corruption function a ``learn_*`` call trains ``task`` with."""
    if task == "denoise":
        return lambda image: sol5.add_gaussian_noise(image, *sol5.DENOISE_SIGMAS)
    return lambda image: sol5.random_motion_blur(image, sol5.DEBLUR_KERNEL_SIZES)


def machine_facts():
    """Date, versions and machine size, stored beside every result."""
    import keras
    import tensorflow as tf
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__,
            "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "gpus": len(tf.config.list_physical_devices("GPU"))}


# --------------------------------------------------------------------------
# Section 7.3: depth study
# --------------------------------------------------------------------------

def _load_results(path):
    if pathlib.Path(path).is_file():
        return json.loads(pathlib.Path(path).read_text())
    return {"machine": machine_facts(), "runs": []}


def _save_results(results, path):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, path)


def run_depth_study(tasks=tuple(DEPTH_TASKS), depths=DEPTHS, seeds=(0, 1, 2),
                    path=DEPTH_RESULTS, model_dir=ROOT / "outputs" / "depth", quick=False):
    """Train every (task, depth, seed) at the assignment's settings; record validation MSE.

    Each finished run is appended to the JSON results file at once, and runs already in the
    file are skipped, so an interrupted study resumes where it stopped.  The seed-0 model of
    every depth is saved for the companion figure.
    """
    import keras
    results = _load_results(path)
    done = {(r["task"], r["depth"], r["seed"]) for r in results["runs"]}
    start = time.perf_counter()
    for seed in seeds:
        for task in tasks:
            spec = DEPTH_TASKS[task]
            schedule = sol5.QUICK_SCHEDULE if quick else spec["schedule"]
            for depth in depths:
                if (task, depth, seed) in done:
                    continue
                print(f"depth study: {task}, {depth} residual blocks, seed {seed}")
                keras.utils.set_random_seed(seed)
                model = sol5.build_nn_model(*spec["patch"], spec["channels"], depth)
                began = time.perf_counter()
                history = sol5.train_model(model, spec["images"](), corruption_for(task), *schedule)
                results["runs"].append({
                    "task": task, "depth": depth, "seed": seed, "schedule": list(schedule),
                    "val_mse": history.history["val_loss"][-1],
                    "val_curve": history.history["val_loss"], "train_curve": history.history["loss"],
                    "seconds": round(time.perf_counter() - began, 1)})
                _save_results(results, path)
                if seed == seeds[0]:
                    model_dir.mkdir(parents=True, exist_ok=True)
                    model.save(model_dir / f"{task}_{depth}.keras")
    results["machine"] = machine_facts()
    results["study_seconds"] = results.get("study_seconds", 0) + round(time.perf_counter() - start)
    _save_results(results, path)
    return results


def depth_summary(results, task):
    """Per depth: (depth, mean validation MSE, sample std over seeds, number of seeds)."""
    rows = []
    for depth in sorted({r["depth"] for r in results["runs"] if r["task"] == task}):
        values = np.array([r["val_mse"] for r in results["runs"]
                           if r["task"] == task and r["depth"] == depth])
        std = values.std(ddof=1) if len(values) > 1 else 0.0
        rows.append((depth, float(values.mean()), float(std), len(values)))
    return rows


def format_depth_table(results):
    lines = []
    for task in DEPTH_TASKS:
        rows = depth_summary(results, task)
        if not rows:
            continue
        lines.append(f"{task}: validation MSE by number of residual blocks (mean ± std over seeds)")
        for depth, mean, std, n in rows:
            lines.append(f"  {task} depth {depth}: {mean:.6f} ± {std:.6f} (n={n})")
    return "\n".join(lines)


def plot_depth_study(results, out_dir=ROOT):
    """Draw ``depth_plot_<task>.png`` from the results only; the plotted means go in its metadata."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    written = []
    for task, spec in DEPTH_TASKS.items():
        rows = depth_summary(results, task)
        if not rows:
            continue
        depths, means, stds, counts = map(np.array, zip(*rows))
        fig, (ax_mse, ax_curve) = plt.subplots(1, 2, figsize=(11, 4.2))
        ax_mse.errorbar(depths, means, yerr=stds, marker="o", capsize=4)
        for run in results["runs"]:
            if run["task"] == task:
                ax_mse.plot(run["depth"], run["val_mse"], ".", color="gray", alpha=0.6)
        ax_mse.set_xticks(depths)
        ax_mse.set_xlabel("number of residual blocks")
        ax_mse.set_ylabel("validation MSE (pixel values in [0, 1])")
        ax_mse.set_title(f"final validation MSE, mean ± std over {counts.min()}-{counts.max()} seeds")
        ax_mse.grid(alpha=0.3)
        for depth in depths:
            curves = np.array([r["val_curve"] for r in results["runs"]
                               if r["task"] == task and r["depth"] == depth])
            epochs = np.arange(1, curves.shape[1] + 1)
            ax_curve.plot(epochs, curves.mean(axis=0), marker=".", label=f"{depth} blocks")
        ax_curve.set_xlabel("epoch")
        ax_curve.set_ylabel("validation MSE")
        ax_curve.set_yscale("log")
        ax_curve.set_title("validation MSE during training (mean over seeds)")
        ax_curve.legend()
        ax_curve.grid(alpha=0.3)
        schedule = next(r["schedule"] for r in results["runs"] if r["task"] == task)
        fig.suptitle(f"{spec['title']}: {spec['channels']} channels, {spec['patch'][0]}x"
                     f"{spec['patch'][1]} patches, batch/steps/epochs/valid = "
                     + "/".join(str(v) for v in schedule))
        fig.tight_layout()
        path = pathlib.Path(out_dir) / f"depth_plot_{task}.png"
        metadata = {"Description": json.dumps({"task": task, "depths": depths.tolist(),
                                                "mean_val_mse": means.tolist()})}
        fig.savefig(path, dpi=100, metadata=metadata)
        plt.close(fig)
        written.append(path)
    return written


def plot_depth_examples(model_dir=ROOT / "outputs" / "depth", out_path=ROOT / "depth_examples.png"):
    """The same held-out image restored by each depth's seed-0 model, for each task."""
    import keras
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.metrics import peak_signal_noise_ratio as psnr
    examples = sol5.held_out_examples()
    crops = {"denoise": (slice(60, 316), slice(150, 406)), "deblur": (slice(0, 150), slice(0, 280))}
    fig, axes = plt.subplots(2, len(DEPTHS) + 2, figsize=(3 * (len(DEPTHS) + 2), 6.4))
    for row, task in enumerate(DEPTH_TASKS):
        clean, corrupted = examples[task]
        panels = [("corrupted", corrupted)]
        for depth in DEPTHS:
            model = keras.models.load_model(pathlib.Path(model_dir) / f"{task}_{depth}.keras",
                                            compile=False)
            panels.append((f"{depth} blocks", sol5.restore_image(corrupted, model)))
        panels.append(("clean", clean))
        for ax, (name, image) in zip(axes[row], panels):
            score = "" if name == "clean" else f"\n{psnr(clean, image, data_range=1):.2f} dB"
            ax.imshow(image[crops[task]], cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{task}: {name}{score}", fontsize=9)
            ax.axis("off")
    fig.suptitle("Held-out images (scikit-image camera, sigma 0.1; page, 7-px blur at 3pi/4) "
                 "restored by the seed-0 model of each depth (crops shown, PSNR on the whole image)")
    fig.tight_layout()
    fig.savefig(out_path, dpi=90)
    plt.close(fig)
    return out_path
