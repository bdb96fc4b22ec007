"""Section 7.3: the depth study's bookkeeping, plots and the quoted numbers."""
import json
import os
import pathlib
import re

import numpy as np
import pytest
from PIL import Image

from restoration import experiments

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_quick_study_records_every_run_and_resumes(tmp_path):
    path = tmp_path / "study.json"
    results = experiments.run_depth_study(tasks=("deblur",), depths=(1, 2), seeds=(0,), path=path,
                                          model_dir=tmp_path / "models", quick=True)
    runs = results["runs"]
    assert [(r["task"], r["depth"], r["seed"]) for r in runs] == [("deblur", 1, 0), ("deblur", 2, 0)]
    assert all(len(r["val_curve"]) == 2 and r["val_mse"] == r["val_curve"][-1] for r in runs)
    assert (tmp_path / "models" / "deblur_2.keras").is_file()
    again = experiments.run_depth_study(tasks=("deblur",), depths=(1, 2), seeds=(0,), path=path,
                                        model_dir=tmp_path / "models", quick=True)
    assert len(again["runs"]) == 2  # nothing retrained
    assert json.loads(path.read_text())["machine"]["cpu_count"] == os.cpu_count()


def test_summary_and_plot_come_from_the_file(tmp_path):
    runs = [{"task": "denoise", "depth": d, "seed": s, "schedule": [1, 1, 2, 1],
             "val_mse": 0.01 / d + 0.001 * s, "val_curve": [0.02, 0.01 / d + 0.001 * s],
             "train_curve": [0.02, 0.01]} for d in (1, 2, 3) for s in (0, 1)]
    results = {"machine": {}, "runs": runs}
    rows = experiments.depth_summary(results, "denoise")
    assert [r[0] for r in rows] == [1, 2, 3]
    assert rows[0][1] == pytest.approx(0.0105) and rows[0][2] == pytest.approx(0.001 / np.sqrt(2))
    (plot,) = experiments.plot_depth_study(results, out_dir=tmp_path)
    stored = json.loads(Image.open(plot).info["Description"])
    assert stored["mean_val_mse"] == pytest.approx([r[1] for r in rows])


@pytest.mark.skipif(not experiments.DEPTH_RESULTS.is_file(), reason="no depth study results yet")
@pytest.mark.parametrize("task", ["denoise", "deblur"])
def test_committed_plots_match_the_results_file(task):
    results = json.loads(experiments.DEPTH_RESULTS.read_text())
    means = [row[1] for row in experiments.depth_summary(results, task)]
    stored = json.loads(Image.open(ROOT / f"depth_plot_{task}.png").info["Description"])
    assert stored["mean_val_mse"] == pytest.approx(means)


@pytest.mark.skipif(not experiments.DEPTH_RESULTS.is_file(), reason="no depth study results yet")
def test_answer_q1_quotes_the_results_file():
    results = json.loads(experiments.DEPTH_RESULTS.read_text())
    text = (ROOT / "answer_q1.txt").read_text()
    quoted = re.findall(r"(denoise|deblur) depth (\d): ([0-9.]+) ± ([0-9.]+)", text)
    assert len(quoted) == 10
    for task, depth, mean, std in quoted:
        rows = {row[0]: row for row in experiments.depth_summary(results, task)}
        assert float(mean) == pytest.approx(rows[int(depth)][1], abs=5e-7)
        assert float(std) == pytest.approx(rows[int(depth)][2], abs=5e-7)
