"""Speed benchmark: training throughput, restore speed, memory.

    python benchmarks/speed.py [--repeats 7] [--steps 40] [--training-only | --restore-only
                                                          | --presets | --precision | --data-only]

Prints, with the machine's core count:
* training: steps per second of ``Model.fit`` on what ``train_model`` feeds it (``load_dataset``
  through ``_training.fit_feed``) against a compute-only ``fit`` of the same model and batch shape (one
  pre-made batch repeated in memory), and against the generator handed to ``fit`` directly, for
  both tasks, with the ratios (medians over rounds in which the feeds take turns);
* data: milliseconds per ``load_dataset`` batch with the task corruptions' patch form and
  with the per-crop recipe;
* restoring: ``restore_image`` (one clone of any size per model, run through a ``tf.function``)
  on a 512x512 image against the plain way, an eager call of a clone built for 512x512, and
  their ratio;
* memory: resident size before and after 100 ``restore_image`` calls on mixed sizes;
* the number of tf.function retracing warnings seen during all of this;
* with ``--precision``: ``restore_image`` in float32 against ``precision="mixed_bfloat16"`` on a
  1024x1024 image, for the assignment's denoiser and the shipped ``models/denoise_long.keras``
  (medians of rounds in which the two take turns, and their ratio), and the mean PSNR of the
  shipped weights on the held-out photos in each precision;
* with ``--presets``: seconds per compute-only training step of the assignment's networks and of
  the strong presets, side by side, and the presets' implied training time.

Every part it measures is also stored in ``results/speed.json`` under the part's name (``data``,
``training``, ``restore``, ``precision``, ``presets``) with the machine facts and the options it
ran with; a run replaces only the parts it measured, and ``python sol5.py report`` turns the
file into ``docs/speed.md``.
"""
import argparse
import json
import logging
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

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results" / "speed.json"
LOAD_AT_START = os.getloadavg()[0]  # one-minute load average before this benchmark's own work

TASKS = {"denoise": (sol5.DENOISE_PATCH, sol5.DENOISE_CHANNELS, sol5.DENOISE_SCHEDULE.batch_size),
         "deblur": (sol5.DEBLUR_PATCH, sol5.DEBLUR_CHANNELS, sol5.DEBLUR_SCHEDULE.batch_size)}
#: The tasks whose batches are timed: the two above and x2 super-resolution.
GENERATOR_TASKS = dict(TASKS, **{"superres-x2": (sol5.SUPER_RES_PATCH, sol5.SUPER_RES_CHANNELS,
                                                 sol5.SUPER_RES_SCHEDULE.batch_size)})


def resident_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def repeat_batch(batch):
    while True:
        yield batch


def fit_seconds(model, data, steps):
    began = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return time.perf_counter() - began


def task_data(task):
    """The task's file list and its corruption."""
    from sol5_utils import images_for_denoising, images_for_deblurring
    if task == "superres-x2":
        return images_for_denoising(), sol5.super_resolution_corruption(2)
    images = (images_for_denoising if task == "denoise" else images_for_deblurring)()
    return images, experiments.corruption_for(task)


FEEDS = {
    "compute-only": "in-memory tf.data pipeline repeating one batch (no data work at all)",
    "train_model": "_training.fit_feed(load_dataset(...)), exactly what train_model fits on",
    "keras-default": "the load_dataset generator handed to fit directly (Keras' own wrapper)",
}


def training_speeds(task, steps, repeats):
    """Steps per second of ``fit`` on the three feeds of ``FEEDS``, same model and batch shape.

    The feeds take turns in a rotating order, and each round's ratios to the compute-only
    feed are taken within the round, so a slow spell of the shared machine hits both sides of
    a ratio; returns the medians of the speeds and of the per-round ratios.
    """
    import tensorflow as tf
    patch, channels, batch_size = TASKS[task]
    images, corruption = task_data(task)
    train_images, _ = sol5.split_train_valid(images)
    model = sol5.build_nn_model(*patch, channels, 5)
    model.compile(loss="mean_squared_error", optimizer=keras.optimizers.Adam(beta_2=0.9))
    batch = next(sol5.load_dataset(train_images, batch_size, corruption, patch))
    options = tf.data.Options()
    options.autotune.enabled = False
    feeds = {
        "compute-only": tf.data.Dataset.from_tensors(batch).repeat().prefetch(2).with_options(options),
        "train_model": _training.fit_feed(sol5.load_dataset(train_images, batch_size, corruption, patch)),
        "keras-default": sol5.load_dataset(train_images, batch_size, corruption, patch),
    }
    for feed in feeds.values():  # warm up every path
        fit_seconds(model, feed, 5)
    speeds = {name: [] for name in feeds}
    ratios = {name: [] for name in feeds}
    names = list(feeds)
    for i in range(repeats):
        this_round = {}
        for name in names[i % len(names):] + names[:i % len(names)]:
            this_round[name] = steps / fit_seconds(model, feeds[name], steps)
            speeds[name].append(this_round[name])
        for name in names:
            ratios[name].append(this_round[name] / this_round["compute-only"])
    return ({name: np.median(v) for name, v in speeds.items()},
            {name: np.median(v) for name, v in ratios.items()})


def generator_milliseconds(task, batches=50, repeats=5):
    """Milliseconds per ``load_dataset`` batch with the task corruption's patch form, and with
    the same corruption called on every 3x crop (the function without its patch form)."""
    patch, _, batch_size = GENERATOR_TASKS[task]
    images, corruption = task_data(task)

    def per_crop(image):  # no patch_form attribute: load_dataset takes the per-crop path
        return corruption(image)
    result = []
    for func in (corruption, per_crop):
        data = sol5.load_dataset(images, batch_size, func, patch)
        for _ in range(10):
            next(data)
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            for _ in range(batches):
                next(data)
            times.append((time.perf_counter() - began) / batches * 1000)
        result.append(np.median(times))
    return result


def step_seconds(patch, channels, blocks, batch_size, steps=20):
    """Seconds per compute-only training step (fp32) of one network and batch shape."""
    model = sol5.build_nn_model(*patch, channels, blocks)
    model.compile(loss="mean_squared_error", optimizer=keras.optimizers.Adam(beta_2=0.9))
    batch = np.random.default_rng(0).uniform(-0.5, 0.5, (batch_size, *patch, 1)).astype(np.float32)
    fit_seconds(model, repeat_batch((batch, batch)), 3)
    return fit_seconds(model, repeat_batch((batch, batch)), steps) / steps


def preset_timings():
    rows = []
    for task, (patch, channels, batch_size) in TASKS.items():
        seconds = step_seconds(patch, channels, 5, batch_size)
        print(f"step, {task} assignment network: {seconds:.3f} s")
        rows.append({"task": task, "network": "assignment", "seconds_per_step": seconds})
        recipe = sol5.PRESETS[task]["strong"]
        seconds = step_seconds(recipe.patch, recipe.channels, recipe.num_res_blocks,
                               recipe.schedule.batch_size)
        total = recipe.schedule.steps_per_epoch * recipe.schedule.num_epochs
        print(f"step, {task} strong preset: {seconds:.3f} s; x {total} steps = "
              f"{seconds * total / 60:.0f} min of training steps")
        rows.append({"task": task, "network": "strong", "seconds_per_step": seconds, "steps": total})
    save_part("presets", {"precision": "float32", "rows": rows})


def restore_ratio(repeats):
    model = sol5.build_nn_model(24, 24, 48, 5)
    image = np.random.default_rng(0).uniform(0, 1, (512, 512))
    # the plain way: a clone built for exactly this size, called eagerly
    bare = keras.models.clone_model(model, input_tensors=keras.Input((512, 512, 1)),
                                    clone_function=lambda layer: layer)
    batch = (image.astype(np.float32) - 0.5)[None, :, :, None]
    bare(batch, training=False)
    sol5.restore_image(image, model)
    bare_times, restore_times = [], []
    for _ in range(repeats):
        began = time.perf_counter()
        keras.ops.convert_to_numpy(bare(batch, training=False))
        bare_times.append(time.perf_counter() - began)
        began = time.perf_counter()
        sol5.restore_image(image, model)
        restore_times.append(time.perf_counter() - began)
    return np.median(bare_times), np.median(restore_times), model


def precision_comparison(repeats):
    """float32 against bfloat16 restores: timings per network, then PSNR on held-out photos."""
    networks = {"assignment denoiser (5 blocks, 48 channels)": sol5.build_nn_model(24, 24, 48, 5)}
    path = pathlib.Path(__file__).resolve().parents[1] / "models" / "denoise_long.keras"
    shipped = keras.models.load_model(path, compile=False) if path.is_file() else None
    if shipped is not None:
        networks["shipped denoise_long (12 blocks, 64 channels)"] = shipped
    image = np.random.default_rng(0).uniform(0, 1, (1024, 1024))
    precisions = ("float32", "mixed_bfloat16")
    record = {"fast_bfloat16": bool(_training.bfloat16_supported()), "repeats": repeats,
              "shape": list(image.shape), "rows": [], "psnr": []}
    for name, model in networks.items():
        for precision in precisions:
            sol5.restore_image(image, model, precision=precision)  # trace once
        times = {precision: [] for precision in precisions}
        for _ in range(repeats):
            for precision in precisions:
                began = time.perf_counter()
                sol5.restore_image(image, model, precision=precision)
                times[precision].append(time.perf_counter() - began)
        ratios = np.array(times["float32"]) / np.array(times["mixed_bfloat16"])
        print(f"restore 1024x1024, {name}: float32 {np.median(times['float32']):.2f} s, "
              f"bfloat16 {np.median(times['mixed_bfloat16']):.2f} s, "
              f"speed-up {np.median(ratios):.2f}x (median of {repeats} rounds)", flush=True)
        record["rows"].append({"network": name, "float32_s": float(np.median(times["float32"])),
                               "bfloat16_s": float(np.median(times["mixed_bfloat16"])),
                               "speedup": float(np.median(ratios))})
    if shipped is not None:
        cases = experiments.denoise_cases()
        for sigma in experiments.EVAL_SIGMAS:
            scores = {precision: np.mean([experiments.psnr_ssim(c["clean"], sol5.restore_image(
                c["corrupted"], shipped, precision=precision))[0] for c in cases if c["level"] == sigma])
                for precision in precisions}
            print(f"held-out photos, sigma {sigma}, shipped weights: float32 {scores['float32']:.3f} dB,"
                  f" bfloat16 {scores['mixed_bfloat16']:.3f} dB "
                  f"({scores['mixed_bfloat16'] - scores['float32']:+.3f})", flush=True)
            record["psnr"].append({"sigma": sigma, "float32": float(scores["float32"]),
                                   "bfloat16": float(scores["mixed_bfloat16"])})
    save_part("precision", record)


def memory_growth(model, calls=100):
    rng = np.random.default_rng(1)
    sizes = [(int(h), int(w)) for h, w in rng.integers(24, 200, (12, 2))]
    for size in sizes:  # first sight of every size
        sol5.restore_image(rng.uniform(0, 1, size), model)
    before = resident_mib()
    for i in range(calls):
        sol5.restore_image(rng.uniform(0, 1, sizes[i % len(sizes)]), model)
    return before, resident_mib()


def save_part(part, record):
    """Store one measured part in ``results/speed.json``, keeping the parts this run did not measure."""
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results[part] = dict(machine=dict(experiments.machine_facts(), load_average_at_start=LOAD_AT_START),
                         **record)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")


class RetraceCounter(logging.Handler):
    count = 0

    def emit(self, record):
        if "retracing" in record.getMessage():
            RetraceCounter.count += 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--presets", action="store_true", help="only time the preset networks")
    parser.add_argument("--training-only", action="store_true",
                        help="only the training ratios (skip restore and memory)")
    parser.add_argument("--restore-only", action="store_true",
                        help="only restore speed, memory and retracing (skip training)")
    parser.add_argument("--precision", action="store_true",
                        help="only restore_image in float32 against bfloat16")
    parser.add_argument("--data-only", action="store_true",
                        help="only the cost of a load_dataset batch, with and without patch forms")
    args = parser.parse_args()
    if args.presets:
        return preset_timings()
    if args.precision:
        print(f"machine: {os.cpu_count()} cores; fast bfloat16: {_training.bfloat16_supported()}")
        return precision_comparison(max(5, args.repeats))
    import tensorflow as tf
    tf.get_logger().addHandler(RetraceCounter())
    print(f"machine: {os.cpu_count()} cores, TensorFlow {tf.__version__}, Keras {keras.__version__}")
    for name, meaning in FEEDS.items():
        print(f"  feed {name}: {meaning}")
    data_rows = []
    for task in GENERATOR_TASKS if not args.restore_only else ():
        windowed, per_crop = generator_milliseconds(task)
        print(f"load_dataset {task}, batch of {GENERATOR_TASKS[task][2]}: {windowed:.2f} ms with the window "
              f"form, {per_crop:.2f} ms corrupting every 3x crop ({per_crop / windowed:.1f}x)",
              flush=True)
        data_rows.append({"task": task, "batch_size": GENERATOR_TASKS[task][2],
                          "window_ms": float(windowed), "per_crop_ms": float(per_crop)})
    if data_rows:
        save_part("data", {"batches": 50, "repeats": 5, "rows": data_rows})
    if args.data_only:
        return
    training_rows = []
    for task in TASKS if not args.restore_only else ():
        speeds, ratios = training_speeds(task, args.steps, args.repeats)
        print(f"training {task} (medians of {args.repeats} rounds of {args.steps} steps per feed): "
              + ", ".join(f"{name} {speeds[name]:.2f} steps/s" for name in FEEDS)
              + f"; ratio train_model / compute-only {ratios['train_model']:.3f}, "
              f"keras-default / compute-only {ratios['keras-default']:.3f}", flush=True)
        training_rows.append({"task": task,
                              "steps_per_second": {k: float(v) for k, v in speeds.items()},
                              "ratio_to_compute_only": {k: float(v) for k, v in ratios.items()}})
    if training_rows:
        save_part("training", {"repeats": args.repeats, "steps": args.steps, "feeds": FEEDS,
                               "rows": training_rows})
    if args.training_only:
        return
    bare, restore, model = restore_ratio(max(5, args.repeats))
    print(f"restore 512x512: a clone built for 512x512, called eagerly {bare * 1000:.0f} ms, restore_image "
          f"{restore * 1000:.0f} ms, speed ratio {bare / restore:.3f}")
    before, after = memory_growth(model)
    print(f"memory: {before:.0f} MiB before, {after:.0f} MiB after 100 restores of 12 mixed sizes "
          f"(+{after - before:.1f} MiB)")
    print(f"tf.function retracing warnings: {RetraceCounter.count}")
    save_part("restore", {"repeats": max(5, args.repeats), "shape": [512, 512],
                          "clone_ms": float(bare * 1000), "restore_ms": float(restore * 1000),
                          "speed_ratio": float(bare / restore), "calls": 100, "sizes": 12,
                          "memory_before_mib": float(before), "memory_after_mib": float(after),
                          "retracing_warnings": RetraceCounter.count})


if __name__ == "__main__":
    main()
