"""The Deep Image Prior benchmark's replay of the stopping rule under other step caps."""

import json

import numpy as np
import pytest

from restoration import _deep_prior


@pytest.fixture(scope="module")
def dip_bench(load_benchmark):
    return load_benchmark("dip_bench")


def test_the_caps_reported_are_the_shipped_one_and_the_multiples_up_to_the_fit(dip_bench):
    spacing = dip_bench.CAP_SPACING
    caps = dip_bench._caps_up_to(4 * spacing)
    assert caps == sorted({_deep_prior.DIP_MAX_STEPS, spacing, 2 * spacing, 3 * spacing,
                           4 * spacing})
    assert _deep_prior.DIP_MAX_STEPS > spacing
    assert dip_bench._caps_up_to(spacing + 1) == [spacing]   # none beyond the fit


def test_a_capped_fit_ends_at_the_rules_stop_or_at_the_cap_whichever_is_first(dip_bench):
    chunk = _deep_prior.DIP_CHUNK
    steps = [chunk * (k + 1) for k in range(60)]
    slow = [3.0 - 0.05 * k for k in range(60)]   # falls steadily: stops at DIP_STOP_RATIO
    stop = next(k for k in range(60) if _deep_prior._should_stop(slow[:k + 1]))
    assert slow[stop] <= _deep_prior.DIP_STOP_RATIO < slow[stop - 1]
    assert dip_bench._rule_stop(slow, steps, steps[-1]) == stop
    assert dip_bench._rule_stop(slow, steps, steps[stop]) == stop
    assert dip_bench._rule_stop(slow, steps, steps[stop - 5]) == stop - 5   # the cap comes first
    never = [3.0] * 60
    assert dip_bench._rule_stop(never, steps, 10 ** 6) == 59   # the fit's own end


def _stop_table(chunk, chunks, seed):
    """A --best-stop-only table of two crops with made-up per-chunk trajectories."""
    rng = np.random.default_rng(seed)
    steps = [chunk * (k + 1) for k in range(chunks)]
    per_crop = []
    for label in ("a[0:64,0:64]", "b[0:64,0:64]"):
        ratios = list(np.linspace(3.0, 0.3, chunks) + rng.normal(0, 0.01, chunks))
        gains = list(rng.normal(5.0, 1.0, chunks))
        stop = _deep_prior._should_stop
        rule = next((k for k in range(chunks) if stop(ratios[:k + 1])), chunks - 1)
        per_crop.append({"crop": label, "rule_gain": gains[rule], "rule_steps": steps[rule],
                         "trajectory": {"steps": steps, "ratios": ratios, "gains": gains}})
    return [{"sigma": 0.1, "crops": 2, "rule_mean": float(np.mean([c["rule_gain"]
                                                                     for c in per_crop])),
             "per_crop": per_crop}]


def test_trajectories_are_stored_apart_and_the_rule_replays_on_them(dip_bench, tmp_path):
    chunk, chunks = _deep_prior.DIP_CHUNK, _deep_prior.DIP_MAX_STEPS // _deep_prior.DIP_CHUNK
    table = _stop_table(chunk, chunks, seed=0)
    expected = [c["rule_gain"] for c in table[0]["per_crop"]]
    trajectories = {c["crop"]: c["trajectory"] for c in table[0]["per_crop"]}
    path = tmp_path / "deep_prior.json"
    dip_bench.save_results(path, {}, None, False, None, {"tune": table}, chunk * chunks)
    assert "trajectory" not in path.read_text()   # the results file stays small
    stored = json.loads(dip_bench.trajectories_path(path).read_text())
    assert stored["fitted_steps"] == chunk * chunks
    assert stored["sets"]["tune"]["0.1"] == trajectories
    row, = dip_bench.replay(path)["tune"]
    assert row["mean"] == pytest.approx(np.mean(expected))
    assert row["worst"] == pytest.approx(min(expected))
    assert row["stored_mean"] == pytest.approx(np.mean(expected))
    # a run of the other set keeps this set's trajectories
    dip_bench.save_results(path, {}, None, False, None, {"report": _stop_table(chunk, chunks, 1)},
                           chunk * chunks)
    assert set(dip_bench.replay(path)) == {"tune", "report"}


def test_replay_refuses_fits_shorter_than_the_cap_or_missing(dip_bench, tmp_path):
    path = tmp_path / "deep_prior.json"
    with pytest.raises(SystemExit, match="--best-stop-only"):
        dip_bench.replay(path)
    short = _deep_prior.DIP_MAX_STEPS // 2
    dip_bench.save_results(path, {}, None, False, None,
                           {"tune": _stop_table(_deep_prior.DIP_CHUNK, 5, 0)}, short)
    with pytest.raises(SystemExit, match=f"--max-steps {_deep_prior.DIP_MAX_STEPS}"):
        dip_bench.replay(path)


def test_stored_timings_name_the_cpu_they_were_measured_on(dip_bench, tmp_path):
    from restoration import experiments
    path = tmp_path / "deep_prior.json"
    dip_bench.save_results(path, {"tune": []}, 1.0, False, [{"side": 16, "ms_per_step": 1.0}])
    results = json.loads(path.read_text())
    assert results["machine"]["cpu"] == experiments.cpu_name()
    assert results["step_cost"]["machine"]["cpu"] == experiments.cpu_name()
