"""Experiments behind the answers, plots and tables: ``python sol5.py depth-study`` and friends.

Nothing here is graded; every figure and number the project quotes is produced by a command that
lands in this module, so anyone can rerun it.
"""

import datetime
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import platform
import time

import numpy as np

from . import _beside, _checks, _data, _training
from ._figures import pyplot, save_panel_rows

sol5 = _beside("sol5")
sol5_utils = _beside("sol5_utils")

ROOT = _data.ROOT
RESULTS_DIR = ROOT / "results"
FIGURES_DIR = ROOT / "docs" / "figures"
DEPTH_RESULTS = RESULTS_DIR / "depth_study.json"
DEPTHS = (1, 2, 3, 4, 5)
#: The tasks of the depth study: their training images, the assignment's recipe (of which the
#: depth varies) and the title of their plot.
DEPTH_TASKS = {
    "denoise": dict(images=sol5_utils.images_for_denoising,
                    recipe=sol5.ASSIGNMENT_RECIPES["denoise"],
                    title="Denoising (Gaussian noise, sigma ~ U[0, 0.2])"),
    "deblur": dict(images=sol5_utils.images_for_deblurring,
                   recipe=sol5.ASSIGNMENT_RECIPES["deblur"],
                   title="Deblurring (7-pixel motion blur, random angle)"),
}


def held_out_examples(seed=0):
    """Per task, a held-out (clean, corrupted, corrupted at full size) triple.

    Never part of any training list.  Denoising: scikit-image's ``camera`` with sigma 0.1
    noise (colour denoising: ``astronaut`` with sigma 0.1 noise on each channel); deblurring:
    scikit-image's scanned ``page`` blurred by a 7-pixel line at 3*pi/4
    (the assignment's figure), rounded to i/255; super-resolution: ``camera`` shrunk 2 or 3
    times (its full-size view is the cubic-spline enlargement).
    """
    with _checks.numpy_seed(seed):
        camera = _data.load_skimage_photo("camera")
        page = _data.load_skimage_photo("page")
        noisy = sol5.add_gaussian_noise(camera, 0.1, 0.1)
        blurred = sol5.quantize(sol5.add_motion_blur(page, 7, 3 * np.pi / 4))
        astronaut = _data.load_skimage_photo("astronaut", 2)
        noisy_colour = sol5.quantize(astronaut + np.random.normal(0, 0.1, astronaut.shape))
        examples = {"denoise": (camera, noisy, noisy), "deblur": (page, blurred, blurred),
                    "denoise-colour": (astronaut, noisy_colour, noisy_colour)}
        for scale in (2, 3):
            clean = camera[:camera.shape[0] // scale * scale, :camera.shape[1] // scale * scale]
            low = sol5.downscale(clean, scale)
            examples[f"superres-x{scale}"] = (clean, low, sol5.enlarge(low, clean.shape))
        return examples


def corruption_for(task):
    """The corruption function a ``learn_*`` call trains ``task`` with."""
    return sol5.denoising_corruption if task == "denoise" else sol5.deblurring_corruption


def machine_facts(cpu=False):
    """Date, versions and machine size, stored beside every result; with ``cpu``, also the
    CPU's name (:func:`cpu_name`), for results whose timings depend on it."""
    import keras
    facts = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "python": platform.python_version()}
    if _training.tf is not None:
        facts["tensorflow"] = _training.tf.__version__
    if keras.backend.backend() != "tensorflow":
        facts["keras_backend"] = keras.backend.backend()
    facts.update(keras=keras.__version__, numpy=np.__version__, cpu_count=os.cpu_count(),
                 machine=platform.machine(), gpus=len(_training.gpu_compute_capabilities()))
    if cpu:
        facts["cpu"] = cpu_name()
    return facts


def training_record(command, seconds, extra_folders=(), init_from=None):
    """What made a trained model (saved beside it as ``TASK_PRESET.json`` by ``sol5.py train``):
    the command, the machine (with its CPU's name), the training time, the offline photos by name
    and every photo of ``extra_folders`` by file name with its SHA-256 digest.  A model continued
    from ``init_from`` also keeps the record saved beside that model, if any, as
    ``continued_from``, so a chain of runs is recorded whole."""
    import hashlib
    extra = {}
    for folder in extra_folders:
        extra[str(folder)] = {f.name: hashlib.sha256(f.read_bytes()).hexdigest()
                              for f in _data.photo_files(folder)}
    record = {"command": command, "machine": machine_facts(cpu=True),
              "training_seconds": round(seconds), "offline_photos": list(_data.TRAIN_PHOTOS),
              "extra_photos": extra}
    earlier = pathlib.Path(init_from).with_suffix(".json") if init_from else None
    if earlier is not None and earlier.is_file():
        record["continued_from"] = json.loads(earlier.read_text())
    return record


def cpu_name():
    """The CPU's model name as the system reports it."""
    return next((line.split(":", 1)[1].strip() for line in _read_lines("/proc/cpuinfo")
                 if line.startswith("model name")), platform.processor())


def _read_lines(path):
    try:
        with open(path) as lines:
            return lines.read().splitlines()
    except OSError:
        return []


# --------------------------------------------------------------------------
# Section 7.3: depth study
# --------------------------------------------------------------------------

def load_results(path):
    """The results stored at ``path`` (JSON), or an empty set of results with today's machine facts."""
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
                    path=DEPTH_RESULTS, model_dir=None, quick=False):
    """Train every (task, depth, seed) at the assignment's settings; record validation MSE.

    Each finished run is appended to the JSON results file at once, and runs already in the
    file are skipped, so an interrupted study resumes where it stopped.  The seed-0 model of
    every depth is saved for the companion figure.
    """
    import keras
    results = load_results(path)
    done = {(r["task"], r["depth"], r["seed"]) for r in results["runs"]}
    start = time.perf_counter()
    for seed in seeds:
        for task in tasks:
            spec = DEPTH_TASKS[task]
            recipe = spec["recipe"]
            schedule = sol5.QUICK_SCHEDULE if quick else recipe.schedule
            for depth in depths:
                if (task, depth, seed) in done:
                    continue
                print(f"depth study: {task}, {depth} residual blocks, seed {seed}")
                keras.utils.set_random_seed(seed)
                model = sol5.build_nn_model(*recipe.patch, recipe.channels, depth)
                began = time.perf_counter()
                history = sol5.train_model(model, spec["images"](), corruption_for(task), *schedule)
                results["runs"].append({
                    "task": task, "depth": depth, "seed": seed, "schedule": list(schedule),
                    "val_mse": history.history["val_loss"][-1],
                    "val_curve": history.history["val_loss"], "train_curve": history.history["loss"],
                    "seconds": round(time.perf_counter() - began, 1)})
                _save_results(results, path)
                if seed == seeds[0]:
                    model_dir = pathlib.Path(model_dir or depth_model_dir())
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
    plt = pyplot()
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
        seeds = f"{counts.min()}" if counts.min() == counts.max() else f"{counts.min()}-{counts.max()}"
        ax_mse.set_title(f"final validation MSE, mean ± std over {seeds} seeds")
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
        recipe = spec["recipe"]
        fig.suptitle(f"{spec['title']}: {recipe.channels} channels, {recipe.patch[0]}x"
                     f"{recipe.patch[1]} patches, batch/steps/epochs/valid = "
                     + "/".join(str(v) for v in schedule))
        fig.tight_layout()
        path = pathlib.Path(out_dir) / f"depth_plot_{task}.png"
        metadata = {"Description": json.dumps({"task": task, "depths": depths.tolist(),
                                               "mean_val_mse": means.tolist()})}
        fig.savefig(path, dpi=100, metadata=metadata)
        plt.close(fig)
        written.append(path)
    return written


def depth_model_dir():
    """Where the depth study keeps the seed-0 model of every depth (``outputs/depth``)."""
    return _data.output_dir() / "depth"


def missing_depth_models(model_dir=None):
    """The per-depth model files that :func:`plot_depth_examples` needs and that are absent."""
    model_dir = pathlib.Path(model_dir or depth_model_dir())
    return [model_dir / f"{task}_{depth}.keras" for task in DEPTH_TASKS for depth in DEPTHS
            if not (model_dir / f"{task}_{depth}.keras").is_file()]


def plot_depth_examples(model_dir=None, out_path=FIGURES_DIR / "depth_examples.png"):
    """The same held-out image restored by each depth's seed-0 model, for each task.

    Raises
    ------
    FileNotFoundError
        Naming the missing models, which only a full depth study leaves behind.
    """
    import keras
    model_dir = pathlib.Path(model_dir or depth_model_dir())
    missing = missing_depth_models(model_dir)
    if missing:
        raise FileNotFoundError(f"{len(missing)} per-depth models are missing (first: "
                                f"{missing[0]}); run 'python sol5.py depth-study' to train them")
    examples = held_out_examples()
    crops = {"denoise": (slice(60, 316), slice(150, 406)), "deblur": (slice(0, 150), slice(0, 280))}
    rows = []
    for task in DEPTH_TASKS:
        clean, corrupted, _ = examples[task]
        outputs = [("corrupted", corrupted)]
        for depth in DEPTHS:
            model = keras.models.load_model(model_dir / f"{task}_{depth}.keras", compile=False)
            outputs.append((f"{depth} blocks", sol5.restore_image(corrupted, model)))
        rows.append([(f"{task}: {name}\n{psnr_ssim(clean, image)[0]:.2f} dB", image[crops[task]])
                     for name, image in outputs] + [(f"{task}: clean", clean[crops[task]])])
    return save_panel_rows(rows, out_path, "Held-out images (scikit-image camera, sigma 0.1; page, "
                           "7-px blur at 3pi/4) restored by the seed-0 model of each depth (crops "
                           "shown, PSNR on the whole image)", panel_size=3.0)


# --------------------------------------------------------------------------
# Evaluation against classical methods, on held-out images
# --------------------------------------------------------------------------

EVAL_SIGMAS = (0.05, 0.1, 0.2)
EVAL_ANGLES = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)
EVAL_RENDERED_PAGES = 4
TV_WEIGHTS = (0.02, 0.04, 0.06, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25)
WAVELET_SIGMA_FACTORS = (0.6, 0.8, 1.0, 1.2, 1.5)
WIENER_BALANCES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)
RL_ITERATIONS = (5, 10, 20, 30, 50)


def held_out_photos():
    """The natural photos kept out of every training list: name -> grayscale image."""
    return {name: _data.load_skimage_photo(name) for name in _data.HELD_OUT_PHOTOS}


def held_out_text():
    """Real text (scikit-image's ``page`` and ``text``) and held-out generated pages."""
    images = {name: _data.load_skimage_photo(name) for name in _data.HELD_OUT_TEXT}
    rendered = sorted(str(p) for p in (_data.fallback_text_dir() / "heldout").glob("*.png"))
    for path in rendered[:EVAL_RENDERED_PAGES]:
        images["render:" + pathlib.Path(path).stem] = sol5.read_image(path, 1)
    return images


def denoise_cases(seed=0, photos=None):
    """(image name, sigma, clean, noisy) for every held-out photo (or of ``photos``, name -> gray
    image) and sigma, seeded."""
    cases = []
    for i, (name, clean) in enumerate((photos or held_out_photos()).items()):
        for j, sigma in enumerate(EVAL_SIGMAS):
            with _checks.numpy_seed([seed, i, j]):
                noisy = sol5.add_gaussian_noise(clean, sigma, sigma)
            cases.append({"image": name, "level": sigma, "clean": clean, "corrupted": noisy})
    return cases


def deblur_cases():
    """(image name, angle, clean, blurred, kernel) for every held-out text image and angle."""
    cases = []
    for name, clean in held_out_text().items():
        for angle in EVAL_ANGLES:
            kernel = sol5_utils.motion_blur_kernel(7, angle)
            blurred = sol5.quantize(sol5.add_motion_blur(clean, 7, angle))
            cases.append({"image": name, "level": round(float(np.degrees(angle))), "clean": clean,
                          "corrupted": blurred, "kernel": kernel})
    return cases


def psnr_ssim(clean, restored):
    """PSNR (dB) and SSIM of ``restored`` against ``clean``, both in [0, 1] (gray or colour)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    channel_axis = -1 if np.ndim(clean) == 3 else None
    return (float(peak_signal_noise_ratio(clean, restored, data_range=1)),
            float(structural_similarity(clean, restored, data_range=1, channel_axis=channel_axis)))


def best_parameter(cases, restore, grid):
    """The grid value with the best mean PSNR over ``cases`` (an oracle choice: favours the method)."""
    scores = [np.mean([psnr_ssim(c["clean"], restore(c, value))[0] for c in cases]) for value in grid]
    return grid[int(np.argmax(scores))]


def best_per_sigma(cases, restore, grid, key):
    """Store in every case, under ``key``, the grid value that is best over the cases of its sigma."""
    for sigma in {c["level"] for c in cases}:
        at_sigma = [c for c in cases if c["level"] == sigma]
        best = best_parameter(at_sigma, restore, grid)
        for c in at_sigma:
            c[key] = best


def _optional_bm3d():
    """The ``bm3d`` package (BM3D and its colour version CBM3D), or None with a note when the
    optional package is not installed."""
    try:
        import bm3d
    except ImportError:
        print("evaluate: the optional 'bm3d' package is not installed; skipping BM3D and CBM3D")
        return None
    return bm3d


def bm3d_method():
    """``{"BM3D (true sigma)": restore(case)}`` for a gray case, or ``{}`` without the optional
    ``bm3d`` package."""
    bm3d = _optional_bm3d()
    if bm3d is None:
        return {}
    return {"BM3D (true sigma)": lambda case: np.clip(
        bm3d.bm3d(case["corrupted"], sigma_psd=case["level"]), 0, 1)}


def denoise_methods(models, cases, symmetries=()):
    """Name -> restore(case) for the classical denoisers, BM3D if installed, and our models
    (the shipped weights also averaged over each count of ``symmetries``)."""
    import skimage.restoration as restoration
    methods = {"noisy input": lambda case: case["corrupted"]}

    def tv(case, weight):
        return restoration.denoise_tv_chambolle(case["corrupted"], weight=weight)

    def wavelet(case, factor):
        return restoration.denoise_wavelet(case["corrupted"], sigma=factor * case["level"],
                                           method="BayesShrink", mode="soft", rescale_sigma=True)
    best_per_sigma(cases, tv, TV_WEIGHTS, "tv_weight")
    best_per_sigma(cases, wavelet, WAVELET_SIGMA_FACTORS, "wavelet_factor")
    methods["TV (best weight)"] = lambda case: tv(case, case["tv_weight"])
    methods["wavelet (true sigma, best factor)"] = lambda case: wavelet(case, case["wavelet_factor"])
    methods.update(bm3d_method())
    methods.update(our_methods(models, restore_case, symmetries=symmetries))
    return methods


def restore_case(case, model, precision, symmetries=1, sure=False):
    """A gray case's corrupted image restored by ``model`` in ``precision``."""
    return sol5.restore_image(case["corrupted"], model, precision=precision,
                              symmetries=symmetries, sure=sure)


def symmetries_suffix(count):
    """Added to a label of weights averaged over ``count`` symmetries (``restore --symmetries``)."""
    return f", {count} symmetries"


def our_methods(models, restore, suffix="", symmetries=()):
    """Label -> restore(case) for our models ``{label: model}``, each in float32, and the shipped
    weights also in bfloat16 where this machine runs it fast (what ``restore --precision auto``
    then uses), and so again averaged over each count of ``symmetries``.
    ``restore(case, model, precision)``, given ``symmetries=count`` for those rows; ``suffix``
    is appended to the labels."""
    methods = {}
    for label, model in models.items():
        methods[label + suffix] = lambda case, model=model: restore(case, model, "float32")
        if label != SHIPPED_LABEL:
            continue
        fast = _training.bfloat16_supported()
        if fast:
            methods[label + suffix + BFLOAT16_SUFFIX] = (
                lambda case, model=model: restore(case, model, "mixed_bfloat16"))
        for count in symmetries:
            methods[label + suffix + (BFLOAT16_SUFFIX if fast else "") + symmetries_suffix(count)] = (
                lambda case, model=model, count=count: restore(
                    case, model, "mixed_bfloat16" if fast else "float32", symmetries=count))
    return methods


def deblur_methods(models, cases):
    """Name -> restore(case) for non-blind Wiener / Richardson-Lucy (true kernel) and our models."""
    import skimage.restoration as restoration
    methods = {"blurred input": lambda case: case["corrupted"]}

    def wiener(case, balance):
        return unpadded(lambda image: restoration.wiener(image, case["kernel"], balance), case)

    def lucy(case, iterations):
        return unpadded(lambda image: restoration.richardson_lucy(
            image, case["kernel"], num_iter=iterations), case)
    balance = best_parameter(cases, wiener, WIENER_BALANCES)
    iterations = best_parameter(cases, lucy, RL_ITERATIONS)
    methods[f"Wiener (true kernel, balance {balance})"] = lambda case: wiener(case, balance)
    methods[f"Richardson-Lucy (true kernel, {iterations} it.)"] = lambda case: lucy(case, iterations)
    methods.update(our_methods(models, restore_case))
    return methods


def unpadded(deconvolve, case, pad=16):
    """Deconvolve a mirror-padded copy (the blur reflected at the borders too), crop back, clip."""
    padded = np.pad(case["corrupted"], pad, mode="symmetric")
    return np.clip(deconvolve(padded)[pad:-pad, pad:-pad], 0, 1)


def score_methods(methods, cases, group):
    """Rows of {method, images, level, psnr, ssim, seconds, n, per_image}: means over the images
    of a group, the median time, and each image's PSNR by its name."""
    rows = []
    outputs = {}
    for name, restore in methods.items():
        per_case = []
        for case in cases:
            began = time.perf_counter()
            restored = restore(case)
            seconds = time.perf_counter() - began
            psnr, ssim = psnr_ssim(case["clean"], restored)
            per_case.append((group(case), case["level"], psnr, ssim, seconds, case["image"]))
            outputs[(name, case["image"], case["level"])] = restored
        for key in sorted({(g, level) for g, level, *_ in per_case}, key=str):
            chosen = [r for r in per_case if (r[0], r[1]) == key]
            rows.append({"method": name, "images": key[0], "level": key[1],
                         "psnr": float(np.mean([r[2] for r in chosen])),
                         "ssim": float(np.mean([r[3] for r in chosen])),
                         "seconds": float(np.median([r[4] for r in chosen])), "n": len(chosen),
                         "per_image": {r[5]: float(r[2]) for r in chosen}})
    return rows, outputs


def format_rows(rows, level_name):
    lines = [f"| method | images | {level_name} | PSNR (dB) | SSIM | s / image |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['images']} | {r['level']} | {r['psnr']:.2f} | "
                     f"{r['ssim']:.3f} | {r['seconds']:.2f} |")
    return "\n".join(lines)


#: Panels per row of an evaluation figure, and characters per line of a panel's label.
FIGURE_COLUMNS, LABEL_WIDTH = 5, 34


def in_rows(panels, columns=FIGURE_COLUMNS):
    """``panels`` cut into rows of at most ``columns``, in order.

    Examples
    --------
    >>> [len(row) for row in in_rows(list(range(12)), 5)]
    [5, 5, 2]
    """
    return [panels[start:start + columns] for start in range(0, len(panels), columns)]


def _figure(cases, outputs, methods, pick, path, title, crop=(slice(None), slice(None))):
    import textwrap
    case = pick(cases)
    panels = []
    for name in methods:
        image = outputs[(name, case["image"], case["level"])]
        panels.append((f"{textwrap.fill(name, LABEL_WIDTH)}\n"
                       f"{psnr_ssim(case['clean'], image)[0]:.2f} dB", image[crop]))
    return save_panel_rows(in_rows(panels + [("clean", case["clean"][crop])]), path, title,
                           fontsize=8)


#: Label of the shipped weights (``models/TASK_long.keras``) in the tables, and what is added
#: to it for the same weights run in bfloat16.
SHIPPED_LABEL = "ours, long preset (shipped)"
BFLOAT16_SUFFIX = ", bfloat16"
#: Added to a colour network's label in the colour tables (the gray ones say how they ran).
COLOUR_NETWORK_SUFFIX = ", colour network"
#: Label of the CPU preset's models (``outputs/TASK_strong.keras``, ``train --preset strong``).
STRONG_LABEL = "ours, strong preset (CPU)"


def default_models():
    """Our trained models that exist: assignment settings and the CPU ``strong`` preset
    (outputs/, from ``sol5.py train``) and the shipped weights (models/).

    Returns ``{"denoise": {label: model}, "deblur": {...}, "denoise-colour": {...},
    "superres": {scale: {label: model}}}``.
    """
    import keras
    found = {"denoise": {}, "deblur": {}, "denoise-colour": {}, "superres": {}}
    for task in ("denoise", "deblur", "denoise-colour"):
        for label, path in (("ours, assignment settings", _data.output_dir() / f"{task}.keras"),
                            (STRONG_LABEL, _data.output_dir() / f"{task}_strong.keras"),
                            (SHIPPED_LABEL, ROOT / "models" / f"{task}_long.keras")):
            if path.is_file():
                found[task][label] = keras.models.load_model(path, compile=False)
    for scale in SR_SCALES:
        for label, path in (("ours, assignment-sized", _data.output_dir() / f"superres-x{scale}.keras"),
                            (SHIPPED_LABEL, ROOT / "models" / f"superres-x{scale}_long.keras")):
            if path.is_file():
                found["superres"].setdefault(scale, {})[label] = keras.models.load_model(
                    path, compile=False)
    return found


def _evaluate_denoise(models, figure_dir):
    cases = denoise_cases()
    methods = denoise_methods(models.get("denoise", {}), cases)
    rows, outputs = score_methods(methods, cases, group=lambda case: "photos")
    _figure(cases, outputs, methods,
            lambda cs: next(c for c in cs if c["image"] == "camera" and c["level"] == 0.1),
            figure_dir / "evaluation_denoise.png",
            "Blind denoising of the held-out 'camera' photo, sigma 0.1 (crop shown; PSNR of "
            "the whole image)", crop=(slice(60, 316), slice(150, 406)))
    return {"denoise": rows, "tv_weights": {str(c["level"]): c["tv_weight"] for c in cases}}


#: How many symmetries the shipped denoisers are also averaged over in the colour and unseen
#: parts: counts whose cost reaches up to about the goals' time shares of CBM3D and BM3D.
COLOUR_SYMMETRIES, GRAY_SYMMETRIES = (4, 8), (2, 4, 8)
#: ... and the shipped super-resolution weights (their goal sets no time share).
SUPERRES_SYMMETRIES = (8,)


def _evaluate_colour(models, figure_dir):
    cases = color_denoise_cases()
    methods = color_denoise_methods(models.get("denoise", {}), cases, models.get("denoise-colour"),
                                    COLOUR_SYMMETRIES)
    rows, outputs = score_methods(methods, cases, group=lambda case: "colour photos")
    _figure(cases, outputs, methods,
            lambda cs: next(c for c in cs if c["image"] == "astronaut" and c["level"] == 0.1),
            figure_dir / "evaluation_colour.png",
            "Colour denoising of the held-out 'astronaut', sigma 0.1 per channel (crop shown; "
            "PSNR of the whole image)", crop=(slice(0, 256), slice(128, 384)))
    return {"denoise_colour": rows}


def _lighter(methods):
    """``methods`` without BM3D per channel (CBM3D is the colour anchor) and without the float32
    runs of weights that also run in bfloat16 (the same PSNR to a hundredth of a dB, see the
    tables above): the unseen part scores many photos."""
    return {label: method for label, method in methods.items()
            if label != "BM3D per channel (true sigma)" and label + BFLOAT16_SUFFIX not in methods}


def _unseen_photos_for(part):
    """:func:`_data.unseen_photos`, or None (saying that ``part`` is skipped) where none are
    installed."""
    photos = _data.unseen_photos()
    if not photos:
        print(f"sol5: evaluate: no unseen photos in {_data.unseen_photos_dir()} "
              f"(docs/training-data.md says how to install them); part '{part}' skipped")
        return None
    return photos


def gray_photos(photos):
    """``photos`` (name -> RGB image) turned to gray by ``skimage.color.rgb2gray``."""
    import skimage.color
    return {name: skimage.color.rgb2gray(image) for name, image in photos.items()}


def _evaluate_unseen(models, figure_dir):
    photos = _unseen_photos_for("unseen")
    if photos is None:
        return {}
    colour_cases = color_denoise_cases(photos=photos)
    colour_rows, _ = score_methods(_lighter(color_denoise_methods(
        models.get("denoise", {}), colour_cases, models.get("denoise-colour"), COLOUR_SYMMETRIES)),
        colour_cases, group=lambda case: "unseen colour photos")
    gray_cases = denoise_cases(photos=gray_photos(photos))
    gray_rows, _ = score_methods(_lighter(denoise_methods(models.get("denoise", {}), gray_cases,
                                                          GRAY_SYMMETRIES)),
                                 gray_cases, group=lambda case: "unseen photos, gray")
    return {"unseen_colour": colour_rows, "unseen_gray": gray_rows, "unseen_photos": list(photos)}


#: Added to a label of weights whose residual is scaled by SURE (``restore --sure``), and the
#: counts of symmetries the SURE part scores the shipped gray denoiser over, with and without it.
SURE_SUFFIX = ", SURE"
SURE_SYMMETRIES = (1, 4, 8)


def sure_methods(models):
    """BM3D given the true sigma (when installed), then the shipped gray denoiser of ``models``
    averaged over each count of ``SURE_SYMMETRIES``, each without and with SURE, in bfloat16
    where this machine runs it fast."""
    methods = bm3d_method()
    model = models.get(SHIPPED_LABEL)
    if model is None:
        return methods
    fast = _training.bfloat16_supported()
    precision = "mixed_bfloat16" if fast else "float32"
    for count in SURE_SYMMETRIES:
        label = (SHIPPED_LABEL + (BFLOAT16_SUFFIX if fast else "")
                 + (symmetries_suffix(count) if count > 1 else ""))
        for suffix, sure in (("", False), (SURE_SUFFIX, True)):
            methods[label + suffix] = (lambda case, count=count, sure=sure: restore_case(
                case, model, precision, symmetries=count, sure=sure))
    return methods


def _evaluate_unseen_sure(models, figure_dir):
    photos = _unseen_photos_for("unseen-sure")
    if photos is None:
        return {}
    cases = denoise_cases(photos=gray_photos(photos))
    rows, _ = score_methods(sure_methods(models.get("denoise", {})), cases,
                            group=lambda case: "unseen photos, gray")
    return {"unseen_gray_sure": rows, "unseen_photos": list(photos)}


def _evaluate_unseen_superres(models, figure_dir):
    photos = _unseen_photos_for("unseen-superres")
    if photos is None:
        return {}
    return {"unseen_superres": super_resolution_rows(models.get("superres", {}),
                                                     gray_photos(photos), "unseen photos, gray"),
            "unseen_photos": list(photos)}


def _evaluate_deblur(models, figure_dir):
    cases = deblur_cases()
    methods = deblur_methods(models.get("deblur", {}), cases)
    rows, outputs = score_methods(methods, cases, group=lambda case: (
        "rendered" if case["image"].startswith("render:") else case["image"]))
    _figure(cases, outputs, methods,
            lambda cs: next(c for c in cs if c["image"] == "page" and c["level"] == 135),
            figure_dir / "evaluation_deblur.png",
            "Deblurring of the held-out scanned 'page', 7-pixel line at 135 degrees")
    return {"deblur": [dict(r, level="all") for r in _pool_levels(rows)]}


def _evaluate_fonts(models, figure_dir):
    return {"deblur_fonts": font_generalisation_rows(models.get("deblur", {}))}


def _evaluate_superres(models, figure_dir):
    if models.get("superres", {}).get(2):
        super_resolution_figure(models["superres"][2], figure_dir / "evaluation_superres.png")
    return {"superres": super_resolution_rows(models.get("superres", {}))}


def _evaluate_superres_folds(models, figure_dir):
    return {"superres_unseen": super_resolution_unseen_rows()}


#: The parts of the evaluation, in order: name -> ``part(models, figure_dir)``, which scores its
#: methods, draws its figure and returns its entries of the results file.
EVALUATION_PARTS = {"denoise": _evaluate_denoise, "colour": _evaluate_colour,
                    "unseen": _evaluate_unseen, "unseen-sure": _evaluate_unseen_sure,
                    "unseen-superres": _evaluate_unseen_superres,
                    "deblur": _evaluate_deblur, "fonts": _evaluate_fonts,
                    "superres": _evaluate_superres, "superres-folds": _evaluate_superres_folds}


def _scored_rows(rows):
    """The (method, images, level) of each scored row of one table (other entries ignored)."""
    if not isinstance(rows, list):
        return set()
    return {(row["method"], row.get("images"), row.get("level"))
            for row in rows if isinstance(row, dict) and "method" in row}


def dropped_methods(saved, rerun):
    """``{table: ["method (levels)", ...]}`` for the tables of ``rerun`` that lack rows ``saved``
    has: what a rerun would lose (a model missing), sorted by method.

    Examples
    --------
    >>> row = lambda method, level: {"method": method, "images": "photos", "level": level}
    >>> saved = {"superres": [row("cubic", "x2"), row("ours", "x2"), row("ours", "x3")]}
    >>> dropped_methods(saved, {"superres": [row("cubic", "x2"), row("ours", "x2")]})
    {'superres': ['ours (x3)']}
    """
    dropped = {}
    for table, rows in rerun.items():
        lost = {}
        for method, _, level in _scored_rows(saved.get(table)) - _scored_rows(rows):
            lost.setdefault(method, set()).add(str(level))
        if lost:
            dropped[table] = [f"{method} ({', '.join(sorted(levels))})"
                              for method, levels in sorted(lost.items())]
    return dropped


def run_evaluation(models=None, figure_dir=FIGURES_DIR, path=RESULTS_DIR / "evaluation.json",
                   parts=tuple(EVALUATION_PARTS)):
    """Score every method on the held-out images, save a table (JSON) and the figures.

    With ``parts``, only those parts are rerun; the others are kept from the saved results, read
    when this run saves (so runs of different parts side by side keep each other's results).
    """
    unknown = set(parts) - set(EVALUATION_PARTS)
    if unknown:
        raise ValueError(f"unknown evaluation parts {sorted(unknown)}; "
                         f"choose from {list(EVALUATION_PARTS)}")
    models = default_models() if models is None else models
    figure_dir = pathlib.Path(figure_dir)
    figure_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_facts(cpu=True)  # timings depend on the CPU and BM3D's build
    if importlib.util.find_spec("bm3d") is not None:
        machine["bm3d"] = importlib.metadata.version("bm3d")
    report = {"machine": machine}
    for name, evaluate_part in EVALUATION_PARTS.items():
        if name in parts:
            report.update(evaluate_part(models, figure_dir))
    machines = {name: machine for name in parts}  # which machine measured each part, and when
    saved = load_results(path)  # read the file again now: another run may have saved
    for table, methods in dropped_methods(saved, report).items():
        print(f"sol5: evaluate: table '{table}' has no rows now for {'; '.join(methods)}, which "
              "the saved results had: a model they need was not found (outputs/ from 'python "
              "sol5.py train', or models/); make it and rerun this part to restore them")
    if set(parts) != set(EVALUATION_PARTS):
        saved.pop("runs", None)
        machines = {**{name: saved["machine"] for name in EVALUATION_PARTS if "machine" in saved},
                    **saved.get("part_machines", {}), **machines}  # later entries win
        report = dict(saved, **report)
        report["machine"] = saved.get("machine", machine)  # the record of the full run stays
    report["part_machines"] = machines
    _save_results(report, path)
    return report


def family_cases(family):
    """The held-out generated pages typeset in ``family``, blurred at every evaluation angle."""
    pages = sorted(p for p in (_data.fallback_text_dir() / "heldout").glob("*.png")
                   if _data.page_family(p) == family)
    cases = []
    for path in pages:
        clean = sol5.read_image(path, 1)
        for angle in EVAL_ANGLES:
            cases.append({"image": path.stem, "family": family, "level": round(float(np.degrees(angle))),
                          "clean": clean, "kernel": sol5_utils.motion_blur_kernel(7, angle),
                          "corrupted": sol5.quantize(sol5.add_motion_blur(clean, 7, angle))})
    return cases


def train_deblurrer_without(family, seed=0, preset=None):
    """The deblurrer of ``preset`` (None: the assignment's network, schedule and corruption)
    trained on the generated pages of every family but ``family`` (handwritten pages included).

    A preset is trained in bfloat16 where the machine runs it fast (the assignment's recipe
    always in float32)."""
    import keras
    pages = [p for p in sol5_utils.list_images(_data.fallback_text_dir() / "train")
             if _data.page_family(p) != family]
    recipe = sol5.choose_recipe("deblur", preset)
    keras.utils.set_random_seed(seed)
    return sol5.learn_with_recipe(f"deblurring ({preset or 'assignment settings'}, without {family})",
                                  pages, sol5.deblurring_corruption, recipe,
                                  "float32" if preset is None else "mixed_bfloat16")


#: The deblurrers trained without the family they are scored on: label -> preset.
UNSEEN_FAMILY_MODELS = {"ours, assignment settings, never saw this family": None,
                        "ours, extended preset (assignment network, 4x steps), never saw this family":
                            "extended"}


def font_generalisation_rows(models, seed=0):
    """Leave one font family out: per family, the assignment's deblurrer and the extended preset
    trained without it, our other models and non-blind Wiener, on held-out pages typeset only
    in that family."""
    rows = []
    cases = {family: family_cases(family) for family in _data.FAMILY_NAMES}
    all_cases = [c for family_cases_ in cases.values() for c in family_cases_]
    wiener_methods = deblur_methods({}, all_cases)  # Wiener's balance chosen over all the pages
    for family, family_cases_ in cases.items():
        methods = dict(wiener_methods)
        for label, preset in UNSEEN_FAMILY_MODELS.items():
            methods[label] = lambda case, model=train_deblurrer_without(family, seed, preset): (
                sol5.restore_image(case["corrupted"], model))
        methods.update(our_methods(models, restore_case))
        family_rows, _ = score_methods(methods, family_cases_, group=lambda case: case["family"])
        rows += [dict(r, level="all") for r in _pool_levels(family_rows)]
    return rows


#: Held-out photos that scikit-image ships in colour.
COLOUR_PHOTOS = ("astronaut", "coffee")


def color_denoise_cases(seed=0, photos=None):
    """Held-out colour photos (or ``photos``, name -> RGB image) with Gaussian noise drawn
    independently in each channel."""
    photos = photos or {name: _data.load_skimage_photo(name, 2) for name in COLOUR_PHOTOS}
    cases = []
    for i, (name, clean) in enumerate(photos.items()):
        for j, sigma in enumerate(EVAL_SIGMAS):
            with _checks.numpy_seed([seed, 100 + i, j]):
                noisy = np.stack([sol5.add_gaussian_noise(clean[..., c], sigma, sigma)
                                  for c in range(3)], axis=-1)
            cases.append({"image": name, "level": sigma, "clean": clean, "corrupted": noisy})
    return cases


def color_denoise_methods(models, cases, colour_models=None, symmetries=()):
    """Colour TV (best weight per sigma), BM3D per channel and CBM3D if installed, our gray
    ``models`` per channel and in opponent space, and our ``colour_models`` (colour networks;
    the shipped one also averaged over each count of ``symmetries``)."""
    import skimage.restoration as restoration
    methods = {"noisy input": lambda case: case["corrupted"]}

    def tv(case, weight):
        return restoration.denoise_tv_chambolle(case["corrupted"], weight=weight, channel_axis=-1)
    best_per_sigma(cases, tv, TV_WEIGHTS, "tv_weight")
    methods["TV, colour (best weight)"] = lambda case: tv(case, case["tv_weight"])
    bm3d = _optional_bm3d()
    if bm3d is not None:
        methods["BM3D per channel (true sigma)"] = lambda case: np.clip(np.stack(
            [bm3d.bm3d(case["corrupted"][..., c], sigma_psd=case["level"]) for c in range(3)],
            axis=-1), 0, 1)
        methods["CBM3D (true sigma)"] = lambda case: np.clip(
            bm3d.bm3d_rgb(case["corrupted"], sigma_psd=case["level"]), 0, 1)
    for space, suffix in (("rgb", ", per channel"), ("opponent", ", opponent space")):
        methods.update(our_methods(models, lambda case, model, precision, space=space:
                                   sol5.restore_color_image(case["corrupted"], model,
                                                            precision=precision,
                                                            colour_space=space), suffix=suffix))
    methods.update(our_methods(colour_models or {}, lambda case, model, precision, symmetries=1:
                               sol5.restore_color_image(case["corrupted"], model,
                                                        precision=precision,
                                                        symmetries=symmetries),
                               suffix=COLOUR_NETWORK_SUFFIX, symmetries=symmetries))
    return methods


SR_SCALES = (2, 3)


def super_resolution_figure(models, path, scale=2):
    """Camera shrunk ``scale`` times: cubic-spline enlargement, our models ``{label: model}``,
    and the original (crops)."""
    clean = held_out_photos()["camera"]
    clean = clean[:clean.shape[0] // scale * scale, :clean.shape[1] // scale * scale]
    low = sol5.downscale(clean, scale)
    panels = ([("cubic-spline enlargement", sol5.enlarge(low, clean.shape))]
              + [(label, sol5.super_resolve_image(low, model, scale)) for label, model in models.items()]
              + [("original", clean)])
    crop = (slice(60, 316), slice(150, 406))
    panels = [(name if name == "original" else
               f"{name}\n{psnr_ssim(clean, image)[0]:.2f} dB (whole image)", image[crop])
              for name, image in panels]
    return save_panel_rows([panels], path, f"Held-out 'camera' shrunk {scale}x and enlarged back "
                           "(crop shown)", panel_size=3.4)


def super_resolution_score(clean, method, scale):
    """PSNR, SSIM and seconds of ``method(low, shape)`` on ``clean`` shrunk ``scale`` times.

    The photo is cut to a multiple of the scale, shrunk (anti-aliased, rounded to i/255) and
    enlarged back; PSNR and SSIM leave out a border of ``2 * scale`` pixels.
    """
    clean = clean[:clean.shape[0] // scale * scale, :clean.shape[1] // scale * scale]
    low = sol5.downscale(clean, scale)
    began = time.perf_counter()
    enlarged = method(low, clean.shape)
    seconds = time.perf_counter() - began
    inner = (slice(2 * scale, -2 * scale),) * 2
    return psnr_ssim(clean[inner], enlarged[inner]) + (seconds,)


def super_resolution_rows(models, photos=None, images="photos"):
    """Cubic-spline enlargement against our models on the held-out photos (or ``photos``, name ->
    gray image, the rows' images named ``images``), per scale (scored by
    :func:`super_resolution_score`); the shipped weights also averaged over
    ``SUPERRES_SYMMETRIES``.  Each row also holds each photo's PSNR by its name (``per_image``)."""
    rows = []
    photos = photos or held_out_photos()
    for scale in SR_SCALES:
        methods = {"cubic-spline enlargement": lambda low, shape: sol5.enlarge(low, shape)}
        def enlarge(case, model, precision, symmetries=1, scale=scale):
            return sol5.super_resolve_image(case[0], model, scale, precision=precision,
                                            symmetries=symmetries)

        ours = our_methods(models.get(scale, {}), enlarge, symmetries=SUPERRES_SYMMETRIES)
        for label, restore in ours.items():
            methods[label] = lambda low, shape, restore=restore: restore((low, shape))
        for name, method in methods.items():
            scores = {photo: super_resolution_score(clean, method, scale)
                      for photo, clean in photos.items()}
            rows.append({"method": name, "images": images, "level": f"x{scale}",
                         "psnr": float(np.mean([p for p, _, _ in scores.values()])),
                         "ssim": float(np.mean([q for _, q, _ in scores.values()])),
                         "seconds": float(np.median([t for _, _, t in scores.values()])),
                         "n": len(scores),
                         "per_image": {photo: float(p) for photo, (p, _, _) in scores.items()}})
    return rows


def photo_of(path):
    """The training photo (``_data.TRAIN_PHOTOS``) a fallback photo file was made from."""
    stem = pathlib.Path(path).stem
    names = [n for n in _data.TRAIN_PHOTOS if stem == n or stem.startswith(n + "_")]
    if not names:
        raise ValueError(f"{path!r} was not made from a shipped training photo")
    return max(names, key=len)


def photo_folds(folds=3, seed=0):
    """The training photos cut into ``folds`` groups by a seeded shuffle; the two views of the
    motorcycle stay in one group (they show the same scene)."""
    scenes = sorted({name.replace("_right", "_left") for name in _data.TRAIN_PHOTOS})
    order = np.random.default_rng(seed).permutation(len(scenes))
    groups = [[] for _ in range(folds)]
    for rank, index in enumerate(order):
        scene = scenes[index]
        groups[rank % folds] += [scene, scene.replace("_left", "_right")] if "_left" in scene else [scene]
    return groups


def train_super_resolver_without(photos, scale=2, seed=0):
    """The assignment-sized x``scale`` model (``learn_super_resolution_model``'s network, patches
    and schedule) trained on the fallback photos except every copy of ``photos``."""
    import keras
    images = [p for p in sol5_utils.list_images(_data.fallback_photos_dir())
              if photo_of(p) not in photos]
    recipe = sol5.choose_recipe("superres")
    keras.utils.set_random_seed(seed)
    return sol5.learn_with_recipe(f"x{scale} super-resolution (without {', '.join(photos)})", images,
                                  sol5.super_resolution_corruption(scale), recipe)


def super_resolution_unseen_rows(scale=2, folds=3, seed=0):
    """Super-resolution on photos outside the training list: per fold of :func:`photo_folds`,
    the assignment-sized model trained without the fold, scored on the fold's photos (gray, full
    size) against cubic-spline enlargement.  One row per photo, then their mean."""
    rows = []
    for fold in photo_folds(folds, seed):
        model = train_super_resolver_without(fold, scale, seed)
        for name in fold:
            clean = _data.load_skimage_photo(name)
            cubic = super_resolution_score(clean, sol5.enlarge, scale)[0]
            ours = super_resolution_score(
                clean, lambda low, shape: sol5.super_resolve_image(low, model, scale), scale)[0]
            rows.append({"photo": name, "level": f"x{scale}", "cubic": cubic, "ours": ours,
                         "gain": ours - cubic})
    rows.append({"photo": "mean", "level": f"x{scale}",
                 **{key: float(np.mean([r[key] for r in rows])) for key in ("cubic", "ours", "gain")}})
    return rows


def _pool_levels(rows):
    """Average the deblurring rows over the angles (each angle has the same number of images)."""
    pooled = {}
    for r in rows:
        pooled.setdefault((r["method"], r["images"]), []).append(r)
    return [{"method": m, "images": g, "psnr": float(np.mean([r["psnr"] for r in rs])),
             "ssim": float(np.mean([r["ssim"] for r in rs])),
             "seconds": float(np.median([r["seconds"] for r in rs])), "n": sum(r["n"] for r in rs)}
            for (m, g), rs in pooled.items()]


def format_evaluation(report):
    return ("Denoising, held-out photos (camera, astronaut, coffee), blind Gaussian noise:\n"
            + format_rows(report.get("denoise", []), "sigma")
            + "\n\nColour denoising, held-out colour photos (astronaut, coffee), noise drawn per "
              "channel:\n" + format_rows(report.get("denoise_colour", []), "sigma")
            + "\n\nDeblurring, 7-pixel motion blur at 0, 45, 90 and 135 degrees (mean over angles):\n"
            + format_rows(report.get("deblur", []), "angles")
            + "\n\nDeblurring, leave one font family out (held-out pages typeset in that family only; "
              "7-pixel blur at 4 angles):\n" + format_rows(report.get("deblur_fonts", []), "angles")
            + "\n\nSuper-resolution, held-out photos shrunk 2x and 3x:\n"
            + format_rows(report.get("superres", []), "scale")
            + "\n\nSuper-resolution x2 on training photos left out of training (three folds, each "
              "model trained without its fold):\n" + format_unseen_rows(report.get("superres_unseen", [])))


def format_unseen_rows(rows):
    lines = ["| photo | cubic-spline (dB) | ours, assignment-sized (dB) | gain (dB) |", "|---|---|---|---|"]
    lines += [f"| {r['photo']} | {r['cubic']:.2f} | {r['ours']:.2f} | {r['gain']:+.2f} |" for r in rows]
    return "\n".join(lines)
