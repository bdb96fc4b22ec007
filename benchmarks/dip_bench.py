"""Benchmark of the Deep Image Prior restoration (sol5.deep_prior_restore_image).

Run from the repository root::

    python benchmarks/dip_bench.py            # both crop sets
    python benchmarks/dip_bench.py --quick    # one crop per photo (7 + 6)
    python benchmarks/dip_bench.py --quick --step-cost-only   # only the cost of one fit step
    python benchmarks/dip_bench.py --quick --best-stop-only   # only the stopping rule's headroom
    python benchmarks/dip_bench.py --best-stop-only --max-steps 800   # ... and other step caps
    python benchmarks/dip_bench.py --replay   # the current stopping rule on stored fits

Two disjoint sets of 64x64 grayscale crops are used, each at sigma 0.05, 0.1
and 0.2 (noise added as in the assignment:
``clip(round((clean + N(0, sigma)) * 255) / 255, 0, 1)``):

* the *tune* set, on which the method's constants were chosen: crops of
  scikit-image's ``moon``, ``coins``, ``chelsea`` and ``clock``, and of the
  textures ``grass``, ``brick`` and ``gravel`` taken from their top halves;
* the *report* set, never tuned on: the twelve crops of the held-out
  ``camera``, ``astronaut`` and ``coffee`` photos (seed 5), and crops of
  ``grass``, ``brick`` and ``gravel`` taken from their bottom halves.

For every set and sigma it prints, side by side, the mean and worst PSNR gain
(dB) over the noisy input and the median seconds per image of

* DIP: ``deep_prior_restore_image`` (blind: no clean image, no sigma), and
  the same fit before its collaborative Wiener pass (``DIP net``);
* TV: ``skimage.restoration.denoise_tv_chambolle`` with, per sigma, the
  weight that maximises the mean gain over the very crops reported (an
  oracle: it sees the clean crops);
* BM3D given the true sigma, when the optional ``bm3d`` package is installed.

The first DIP call, which builds and traces the network, is timed apart.
Times are wall-clock on whatever else the machine is doing.

Every run also times one step of the fit (forward pass, gradient, Adam update) on padded sizes
of 16x16, 32x32 and 64x64 pixels: a crop's fit takes about its steps times this cost.
``--step-cost-only`` measures just that and keeps the crop tables already stored.

``--best-stop-only`` measures how much the stopping rule leaves on the table: every crop of the
chosen set(s) is fitted to ``DIP_MAX_STEPS`` steps, the collaborative Wiener pass is applied to
the running mean after every chunk of steps, and the mean gain at the step where the rule stops
is set against the mean gain at each crop's best step (an oracle: it sees the clean crop).  It
keeps the other stored tables.  With ``--max-steps N`` the crops are fitted to N steps instead,
and the rule's mean gain, worst gain and median steps are also given under every step cap that
is a multiple of 200 up to N (and under the shipped cap): what raising the cap would buy.
Every crop's ratio r and gain after every chunk are kept in
``results/deep_prior_trajectories.json`` (``..._quick_...`` with ``--quick``).

``--replay`` fits nothing: it runs the stopping rule, with the constants as they are now in
``restoration/_deep_prior.py`` and within ``DIP_MAX_STEPS``, over those stored trajectories and
prints its mean gain, worst gain and median steps per set and sigma beside the gains stored
with them.  A change of the rule's constants (``DIP_KNEE_*``, ``DIP_STOP_RATIO``,
``DIP_QUICK_*``, ``DIP_MIN_STEPS``, ``DIP_MAX_STEPS`` up to the steps fitted) is measured in
seconds this way; a change of anything else (the network, its fit, the noise estimate, the
Wiener pass) changes the trajectories themselves and needs ``--best-stop-only`` again.

The tables are also stored, with every crop's figures and the machine facts, in
``results/deep_prior.json`` (``results/deep_prior_quick.json`` with ``--quick``); a run of one
set keeps the other set's table.  ``python sol5.py report`` turns the file into a page of
``docs/``.
"""

import argparse
import importlib.metadata
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import skimage.color  # noqa: E402
import skimage.data  # noqa: E402
import skimage.restoration  # noqa: E402
import skimage.util  # noqa: E402

from restoration import _deep_prior  # noqa: E402
from restoration.report import trajectories_path  # noqa: E402
from sol5 import deep_prior_restore_image  # noqa: E402

try:
    import bm3d
except ImportError:  # optional reference
    bm3d = None

RESULTS_DIR = pathlib.Path(__file__).resolve().parents[1] / "results"
LOAD_AT_START = os.getloadavg()[0]  # one-minute load average before this benchmark's own work
SIGMAS = (0.05, 0.1, 0.2)
CROP = 64
NOISE_SEED = 1
TV_WEIGHTS = np.geomspace(0.01, 0.5, 30)  # grid of the oracle's TV weight
STEP_COST_SIZES = (16, 32, 64)  # padded sides on which one step of the fit is timed
CAP_SPACING = 200               # --best-stop-only reports the rule under caps this far apart
STEP_COST_ROUNDS = 7             # rounds of DIP_CHUNK steps, the median of which is reported
# (photo, number of crops, rows the crops may start in as fractions of the height, seed).
TUNE_SET = (("grass", 2, (0.0, 0.5), 11), ("brick", 2, (0.0, 0.5), 12),
            ("gravel", 2, (0.0, 0.5), 13), ("moon", 2, (0.0, 1.0), 14),
            ("coins", 1, (0.0, 1.0), 15), ("chelsea", 2, (0.0, 1.0), 16),
            ("clock", 1, (0.0, 1.0), 17))
REPORT_SET = (("camera", 4, (0.0, 1.0), 5), ("astronaut", 4, (0.0, 1.0), 5),
              ("coffee", 4, (0.0, 1.0), 5), ("grass", 2, (0.5, 1.0), 21),
              ("brick", 2, (0.5, 1.0), 22), ("gravel", 2, (0.5, 1.0), 23))


def _gray(name):
    photo = getattr(skimage.data, name)()
    if photo.ndim == 3:
        photo = skimage.color.rgb2gray(photo)
    return skimage.util.img_as_float64(photo)


def crops_of(spec, quick=False):
    """The fixed list of (label, clean 64x64 float64 crop) that ``spec`` describes.

    With ``quick`` only the first crop of every photo is kept.
    """
    crops, rngs = [], {}
    for name, count, (top, bottom), seed in spec:
        photo = _gray(name)
        rng = rngs.setdefault(seed, np.random.default_rng(seed))  # one stream per seed
        first = int(top * photo.shape[0])
        last = min(int(bottom * photo.shape[0]), photo.shape[0]) - CROP
        for k in range(count):
            i = int(rng.integers(first, last + 1))
            j = int(rng.integers(0, photo.shape[1] - CROP + 1))
            if not quick or k == 0:
                crops.append((f"{name}[{i}:{i + CROP},{j}:{j + CROP}]",
                              photo[i:i + CROP, j:j + CROP]))
    return crops


def add_noise(clean, sigma, rng):
    """Gaussian noise, rounded to 8 bits and clipped, as in the assignment."""
    return np.clip(np.round((clean + rng.normal(0.0, sigma, clean.shape)) * 255) / 255, 0.0, 1.0)


def psnr_gain(clean, restored, noisy):
    """PSNR of ``restored`` minus PSNR of ``noisy`` (dB), both against ``clean``."""
    return 10 * np.log10(np.mean((noisy - clean) ** 2) / np.mean((restored - clean) ** 2))


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def oracle_tv(crops, noisy):
    """Gains of TV denoising at the weight that is best on average over ``crops``."""
    table = np.array([[psnr_gain(clean, skimage.restoration.denoise_tv_chambolle(n, weight=w), n)
                       for (_, clean), n in zip(crops, noisy)] for w in TV_WEIGHTS])
    best = int(np.argmax(table.mean(axis=1)))
    return table[best], TV_WEIGHTS[best]


def run_set(title, crops, verbose):
    """Print the table of one crop set; return its rows (one per sigma) for the results file."""
    rng = np.random.default_rng(NOISE_SEED)
    print(f"\n{title}: {len(crops)} crops of {CROP}x{CROP}")
    print(f"{'sigma':>5} | {'DIP mean':>8} {'worst':>6} {'s/img':>5} {'steps':>5} "
          f"{'worst crop':>26} | "
          f"{'DIP net':>7} | {'TV mean':>7} {'worst':>6} {'weight':>6} | "
          f"{'BM3D mean':>9} {'worst':>6} {'s/img':>5} | {'sigma est':>13}")
    rows = []
    for sigma in SIGMAS:
        noisy = [add_noise(clean, sigma, rng) for _, clean in crops]
        dip, dip_net, seconds, estimates, steps = [], [], [], [], []
        for (_, clean), n in zip(crops, noisy):
            details = {}
            restored, spent = _timed(_deep_prior.fit_and_restore, n, details=details)
            dip.append(psnr_gain(clean, restored, n))
            dip_net.append(psnr_gain(clean, details["network"], n))
            estimates.append(details["sigma"])
            steps.append(details["steps"])
            seconds.append(spent)
        tv, weight = oracle_tv(crops, noisy)
        if bm3d is not None:
            runs = [_timed(bm3d.bm3d, n, sigma) for n in noisy]
            ref = [psnr_gain(clean, np.clip(r, 0, 1), n) for ((_, clean), n), (r, _)
                   in zip(zip(crops, noisy), runs)]
            ref_text = (f"{np.mean(ref):>9.2f} {np.min(ref):>6.2f} "
                        f"{np.median([s for _, s in runs]):>5.2f}")
        else:
            ref, runs = None, None
            ref_text = f"{'(bm3d not installed)':>22}"
        worst = int(np.argmin(dip))
        print(f"{sigma:>5.2f} | {np.mean(dip):>8.2f} {dip[worst]:>6.2f} {np.median(seconds):>5.2f} "
              f"{np.median(steps):>5.0f} "
              f"{crops[worst][0]:>26} | {np.mean(dip_net):>7.2f} | {np.mean(tv):>7.2f} "
              f"{np.min(tv):>6.2f} {weight:>6.3f} | {ref_text} | "
              f"{np.min(estimates):.3f}-{np.max(estimates):.3f}", flush=True)
        if verbose:
            for (label, _), g, g_net, t, e, n in zip(crops, dip, dip_net, tv, estimates, steps):
                print(f"      {label:>28}: DIP {g:6.2f}  net {g_net:6.2f}  TV {t:6.2f}  "
                      f"sigma est {e:.4f}  steps {n}")
        rows.append({
            "sigma": sigma, "crops": len(crops), "tv_weight": float(weight),
            "dip_mean": float(np.mean(dip)), "dip_worst": float(dip[worst]),
            "dip_worst_crop": crops[worst][0], "dip_seconds": float(np.median(seconds)),
            "dip_steps": float(np.median(steps)), "dip_net_mean": float(np.mean(dip_net)),
            "tv_mean": float(np.mean(tv)), "tv_worst": float(np.min(tv)),
            "bm3d_mean": None if ref is None else float(np.mean(ref)),
            "bm3d_worst": None if ref is None else float(np.min(ref)),
            "bm3d_seconds": None if runs is None else float(np.median([t for _, t in runs])),
            "per_crop": [{"crop": label, "dip": float(g), "dip_net": float(g_net), "tv": float(t),
                          "bm3d": None if ref is None else float(ref[k]),
                          "sigma_estimate": float(e), "steps": int(n)}
                         for k, ((label, _), g, g_net, t, e, n)
                         in enumerate(zip(crops, dip, dip_net, tv, estimates, steps))]})
    return rows


def step_cost():
    """Median milliseconds of one step of the fit on each padded size of ``STEP_COST_SIZES``
    (a fitter loaded with uniform noise, already traced for that size)."""
    rng = np.random.default_rng(0)
    chunk = _deep_prior.tf.constant(_deep_prior.DIP_CHUNK, _deep_prior.tf.int32)
    rows = []
    for side in STEP_COST_SIZES:
        fitter = _deep_prior._fitter_for(side, side)
        fitter.reset(rng.uniform(size=(side, side)), np.ones((side, side)), rng)
        fitter.run(chunk)  # traces the graph for this size
        times = [_timed(lambda: float(fitter.run(chunk)[0]))[1] for _ in range(STEP_COST_ROUNDS)]
        rows.append({"side": side, "ms_per_step": 1000 * float(np.median(times))
                     / _deep_prior.DIP_CHUNK})
    largest = rows[-1]["ms_per_step"]
    print("one step of the fit: " + ", ".join(
        f"{r['side']}x{r['side']} {r['ms_per_step']:.1f} ms ({r['ms_per_step'] / largest:.2f} of "
        f"the {STEP_COST_SIZES[-1]}x{STEP_COST_SIZES[-1]} step)" for r in rows))
    return rows


def _caps_up_to(max_steps):
    """The step caps whose stopping-rule gains ``--best-stop-only`` reports: the shipped cap and
    every multiple of ``CAP_SPACING`` up to ``max_steps``."""
    caps = {_deep_prior.DIP_MAX_STEPS, *range(CAP_SPACING, max_steps + 1, CAP_SPACING)}
    return sorted(cap for cap in caps if cap <= max_steps)


def _rule_stop(ratios, steps, cap):
    """Index of the chunk at which a fit capped at ``cap`` steps ends, given the ratios r and
    the steps done after every chunk of a longer fit: the stopping rule's chunk, or the cap's."""
    for index, done in enumerate(steps):
        if _deep_prior._should_stop(ratios[:index + 1]) or done >= cap:
            return index
    return len(steps) - 1


def best_stop(crops, max_steps):
    """Per sigma, the mean gain at the stopping rule's step and at each crop's best step, and
    the rule's mean and worst gain under each cap of :func:`_caps_up_to`.

    Every crop is fitted to ``max_steps`` steps; the rule and the best step are those of the
    shipped cap ``DIP_MAX_STEPS`` (when ``max_steps`` reaches it).  The noise is drawn as in
    :func:`run_set`, so the rule's gains are those of its table.
    """
    rng = np.random.default_rng(NOISE_SEED)
    caps = _caps_up_to(max_steps)
    shipped = min(_deep_prior.DIP_MAX_STEPS, max_steps)
    rows = []
    for sigma in SIGMAS:
        noisy = [add_noise(clean, sigma, rng) for _, clean in crops]
        per_crop = []
        for (label, clean), n in zip(crops, noisy):
            sigma_est = _noise.noise_sigma(n)
            ratios, gains, steps = [], [], []
            for done, _, ema_mse, running_mean in _deep_prior._fit_chunks(n, 0, max_steps):
                ratios.append(ema_mse / sigma_est ** 2)
                restored = _deep_prior._guided_wiener(
                    n, _deep_prior._as_image(running_mean, n.shape), sigma_est)
                gains.append(psnr_gain(clean, restored, n))
                steps.append(done)
            stops = {cap: _rule_stop(ratios, steps, cap) for cap in caps}
            rule = _rule_stop(ratios, steps, shipped)
            within = next(i for i, done in enumerate(steps) if done >= shipped)  # shipped cap
            best = int(np.argmax(gains[:within + 1]))
            per_crop.append({"crop": label, "rule_gain": float(gains[rule]),
                             "rule_steps": steps[rule], "rule_ratio": float(ratios[rule]),
                             "best_gain": float(gains[best]), "best_steps": steps[best],
                             "best_ratio": float(ratios[best]),
                             "cap_gains": {str(c): float(gains[i]) for c, i in stops.items()},
                             "cap_steps": {str(c): steps[i] for c, i in stops.items()},
                             "trajectory": {"steps": steps, "ratios": [float(r) for r in ratios],
                                            "gains": [float(g) for g in gains]}})
        rule_mean = np.mean([c["rule_gain"] for c in per_crop])
        best_mean = np.mean([c["best_gain"] for c in per_crop])
        by_cap = [{"cap": cap, "mean": float(np.mean([c["cap_gains"][str(cap)] for c in per_crop])),
                   "worst": float(np.min([c["cap_gains"][str(cap)] for c in per_crop])),
                   "median_steps": float(np.median([c["cap_steps"][str(cap)]
                                                    for c in per_crop]))} for cap in caps]
        print(f"{sigma:>5.2f} | rule {rule_mean:6.2f} (median steps "
              f"{np.median([c['rule_steps'] for c in per_crop]):.0f}) | best step {best_mean:6.2f} "
              f"(median steps {np.median([c['best_steps'] for c in per_crop]):.0f}) | headroom "
              f"{best_mean - rule_mean:+.2f} | rule under cap " + ", ".join(
                  f"{r['cap']}: {r['mean']:.2f} / {r['worst']:.2f} / {r['median_steps']:.0f}"
                  for r in by_cap), flush=True)
        rows.append({"sigma": sigma, "crops": len(crops), "rule_mean": float(rule_mean),
                     "best_mean": float(best_mean), "caps": by_cap, "per_crop": per_crop})
    return rows


def _save_trajectories(path, stop_tables, command, fitted_steps):
    """Move every crop's ``trajectory`` out of ``stop_tables`` into the file ``path``, keeping
    the trajectories of the sets not in ``stop_tables``."""
    sets = json.loads(path.read_text())["sets"] if path.is_file() else {}
    for set_name, rows in stop_tables.items():
        sets[set_name] = {str(row["sigma"]): {crop["crop"]: crop.pop("trajectory")
                                              for crop in row["per_crop"]} for row in rows}
    path.write_text(json.dumps({"command": command, "fitted_steps": fitted_steps,
                                "sets": sets}) + "\n")


def replay(results_path):
    """The stopping rule as it is now, run over the stored trajectories (no fitting): per set and
    sigma, the mean gain, worst gain and median steps of its stops within ``DIP_MAX_STEPS``.

    Returns ``{set: [{"sigma", "mean", "worst", "median_steps", "stored_mean"}, ...]}``, where
    ``stored_mean`` is the rule's mean gain stored with the trajectories (the rule of that run).
    """
    path = trajectories_path(results_path)
    if not path.is_file():
        raise SystemExit(f"no {path.name} in {path.parent}: run "
                         "'python benchmarks/dip_bench.py --best-stop-only' first")
    stored = json.loads(path.read_text())
    cap = _deep_prior.DIP_MAX_STEPS
    if stored["fitted_steps"] < cap:
        raise SystemExit(f"the stored fits stop at {stored['fitted_steps']} steps, short of "
                         f"DIP_MAX_STEPS = {cap}: run 'python benchmarks/dip_bench.py "
                         f"--best-stop-only --max-steps {cap}' first")
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    stored_rows = results.get("best_stop", {}).get("sets", {})
    tables = {}
    for set_name, by_sigma in stored["sets"].items():
        rows = []
        for sigma, crops in by_sigma.items():
            stops = [_rule_stop(t["ratios"], t["steps"], cap) for t in crops.values()]
            gains = [t["gains"][i] for t, i in zip(crops.values(), stops)]
            before = next((r["rule_mean"] for r in stored_rows.get(set_name, [])
                           if str(r["sigma"]) == sigma), float("nan"))
            rows.append({"sigma": float(sigma), "mean": float(np.mean(gains)),
                         "worst": float(np.min(gains)),
                         "median_steps": float(np.median([t["steps"][i] for t, i
                                                          in zip(crops.values(), stops)])),
                         "stored_mean": before})
        tables[set_name] = rows
    return tables


def save_results(path, tables, first_call_seconds, quick, step_rows, stop_tables=None,
                 fitted_steps=None):
    """Store what this run measured in ``path`` (the step cost when ``step_rows`` is given, the
    sets' tables, the stopping rule's headroom), keeping what it did not measure."""
    from restoration import experiments
    results = json.loads(path.read_text()) if path.is_file() else {}
    machine = dict(experiments.machine_facts(cpu=True), load_average_at_start=LOAD_AT_START)
    command = " ".join(["python benchmarks/dip_bench.py", *sys.argv[1:]])
    if step_rows is not None:
        results["step_cost"] = {"command": command, "rounds": STEP_COST_ROUNDS,
                                "chunk": _deep_prior.DIP_CHUNK, "machine": machine,
                                "rows": step_rows}
    if stop_tables:
        _save_trajectories(trajectories_path(path), stop_tables, command, fitted_steps)
        stored = results.setdefault("best_stop", {})
        stored.setdefault("sets", {}).update(stop_tables)
        stored.update(command=command, machine=machine, max_steps=_deep_prior.DIP_MAX_STEPS,
                      fitted_steps=fitted_steps)
    if tables:
        results.setdefault("sets", {}).update(tables)
        results.update(machine=machine, quick=quick, crop=CROP, noise_seed=NOISE_SEED,
                       first_call_seconds=first_call_seconds,
                       bm3d=None if bm3d is None else importlib.metadata.version("bm3d"))
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {path.relative_to(path.parents[1])}")


def main():
    parser = argparse.ArgumentParser(description="Deep Image Prior benchmark: PSNR gain and time "
                                                 "per 64x64 crop at sigma 0.05, 0.1, 0.2, against "
                                                 "oracle-weight TV and BM3D given the true sigma.")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print every crop's gain")
    parser.add_argument("--quick", action="store_true",
                        help="one crop per photo and crop group (7 tune, 6 report crops)")
    parser.add_argument("--set", choices=("tune", "report", "both"), default="both",
                        help="which crop set(s) to run (default both)")
    parser.add_argument("--step-cost-only", action="store_true",
                        help="only time one step of the fit per padded size; keep the stored "
                             "crop tables")
    parser.add_argument("--best-stop-only", action="store_true",
                        help="only compare the stopping rule's step with each crop's best step "
                             "(fits every crop to the step cap); keep the other stored tables")
    parser.add_argument("--replay", action="store_true",
                        help="fit nothing: run the stopping rule as it is now over the "
                             "trajectories stored by --best-stop-only and print its gains")
    parser.add_argument("--max-steps", type=int, default=_deep_prior.DIP_MAX_STEPS,
                        help="with --best-stop-only: fit every crop this far and also report the "
                             f"rule's gains under every cap a multiple of {CAP_SPACING} steps up "
                             "to it (default: the shipped cap)")
    args = parser.parse_args()
    name = "deep_prior_quick.json" if args.quick else "deep_prior.json"
    if args.replay:
        print(f"the stopping rule within {_deep_prior.DIP_MAX_STEPS} steps, replayed on the stored "
              "fits: mean / worst gain (dB), median steps; the rule's mean stored with them")
        for set_name, rows in replay(RESULTS_DIR / name).items():
            for r in rows:
                print(f"{set_name:>6} {r['sigma']:>5.2f} | {r['mean']:6.2f} / {r['worst']:5.2f} / "
                      f"{r['median_steps']:4.0f} | stored {r['stored_mean']:6.2f}")
        return
    if args.best_stop_only:
        sets = {"tune": TUNE_SET, "report": REPORT_SET}
        chosen = ("tune", "report") if args.set == "both" else (args.set,)
        print("mean gain (dB) at the stopping rule's step and at each crop's best step (oracle)")
        tables = {}
        for set_name in chosen:
            print(f"\n{set_name.upper()} set")
            tables[set_name] = best_stop(crops_of(sets[set_name], args.quick), args.max_steps)
        save_results(RESULTS_DIR / name, {}, None, args.quick, None, tables, args.max_steps)
        return
    if args.step_cost_only:
        save_results(RESULTS_DIR / name, {}, None, args.quick, step_cost())
        return

    warm_up_image = add_noise(crops_of(REPORT_SET, quick=True)[0][1], 0.1,
                              np.random.default_rng(0))
    _, warm_up = _timed(deep_prior_restore_image, warm_up_image)
    print(f"Deep Image Prior benchmark, os.cpu_count() = {os.cpu_count()}; first call (build + "
          f"trace + one restoration): {warm_up:.2f} s")
    print("gains are dB of PSNR over the noisy input; DIP net = the network's estimate before the "
          "collaborative Wiener pass; TV weight = oracle, best mean gain over the crops shown; "
          "sigma est = range of DIP's blind noise estimates; s/img and steps: medians")
    tables = {}
    if args.set in ("tune", "both"):
        tables["tune"] = run_set("TUNE set (constants chosen on these)",
                                 crops_of(TUNE_SET, args.quick), args.verbose)
    if args.set in ("report", "both"):
        tables["report"] = run_set("REPORT set (never tuned on)", crops_of(REPORT_SET, args.quick),
                                   args.verbose)
    save_results(RESULTS_DIR / name, tables, warm_up, args.quick, step_cost())


if __name__ == "__main__":
    main()
