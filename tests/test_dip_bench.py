"""The Deep Image Prior benchmark's replay of the stopping rule under other step caps."""

import importlib.util
import pathlib

import pytest

from restoration import _deep_prior

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "dip_bench.py"


@pytest.fixture(scope="module")
def dip_bench():
    spec = importlib.util.spec_from_file_location("dip_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
