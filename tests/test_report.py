"""The generated docs pages: made from small synthetic results files, and in step with results/."""
import json
import pathlib
import re

import pytest

from restoration import report

ROOT = pathlib.Path(__file__).resolve().parents[1]

MACHINE = {"date": "2031-04-05T06:07:08+00:00", "python": "3.99.1", "tensorflow": "9.8.7",
           "keras": "6.5.4", "numpy": "3.2.1", "cpu_count": 17, "machine": "riscv64", "gpus": 3}


def _row(method, images, level, psnr, ssim=0.5, seconds=0.25, n=2):
    return {"method": method, "images": images, "level": level, "psnr": psnr, "ssim": ssim,
            "seconds": seconds, "n": n}


def _evaluation():
    denoise = []
    for level, base in ((0.05, 26.0), (0.1, 20.0)):
        denoise += [_row("noisy input", "photos", level, base),
                    _row("TV (best weight)", "photos", level, base + 4.0),
                    _row("BM3D (true sigma)", "photos", level, base + 6.5),
                    _row("ours, assignment settings", "photos", level, base + 5.0),
                    _row("ours, long preset (shipped)", "photos", level, base + 7.25)]
    deblur = [_row("blurred input", "page", "all", 19.5),
              _row("Wiener (true kernel, balance 0.01)", "page", "all", 22.125),
              _row("Richardson-Lucy (true kernel, 20 it.)", "page", "all", 21.0),
              _row("ours, assignment settings", "page", "all", 23.0, ssim=0.8125),
              _row("ours, long preset (shipped)", "page", "all", 34.5)]
    superres = [_row("cubic-spline enlargement", "photos", "x2", 30.0),
                _row("ours, assignment-sized", "photos", "x2", 31.0),
                _row("cubic-spline enlargement", "photos", "x3", 27.0),
                _row("ours, assignment-sized", "photos", "x3", 28.0)]
    unseen = [{"photo": "lighthouse", "level": "x2", "cubic": 40.0, "ours": 41.5, "gain": 1.5},
              {"photo": "mean", "level": "x2", "cubic": 40.0, "ours": 41.5, "gain": 1.5}]
    return {"machine": MACHINE, "denoise": denoise, "tv_weights": {"0.05": 0.03, "0.1": 0.07},
            "deblur": deblur, "superres": superres, "superres_unseen": unseen}


def _depth_study():
    runs = []
    for task, base in (("denoise", 0.002), ("deblur", 0.004)):
        for depth in (1, 2):
            for seed, offset in ((0, -0.0001), (1, 0.0001)):
                runs.append({"task": task, "depth": depth, "seed": seed, "schedule": [100, 7, 3],
                             "val_mse": base / depth + offset, "val_curve": [], "train_curve": [],
                             "seconds": 10.0 * depth + seed})
    return {"machine": MACHINE, "runs": runs, "study_seconds": 600}


def _speed():
    machine = dict(MACHINE, load_average_at_start=1.25)
    return {
        "data": {"machine": machine, "batches": 50, "repeats": 5,
                 "rows": [{"task": "denoise", "batch_size": 100, "window_ms": 2.0,
                           "per_crop_ms": 17.0}]},
        "restore": {"machine": machine, "repeats": 7, "shape": [512, 512], "clone_ms": 600.0,
                    "restore_ms": 480.0, "speed_ratio": 1.25, "calls": 100, "sizes": 12,
                    "memory_before_mib": 2000.0, "memory_after_mib": 2003.0,
                    "retracing_warnings": 0},
    }


def _scaling():
    return {"machine": MACHINE, "rounds": 2, "rows": [
        {"megapixels": 1.0, "shape": [1000, 1000], "mode": "tiled", "seconds": 2.0,
         "seconds_per_mp": 2.0, "peak_rss_mib": 900.0, "runs": 2},
        {"megapixels": 24.0, "shape": [4000, 6000], "mode": "tiled", "seconds": 60.0,
         "seconds_per_mp": 2.5, "peak_rss_mib": 1400.0, "runs": 2}]}


def _dip():
    crop = {"crop": "grass[0:64, 0:64]", "dip": 1.5, "dip_net": 1.0, "tv": 0.75,
            "sigma_estimate": 0.071, "steps": 400}
    row = {"sigma": 0.05, "crops": 1, "tv_weight": 0.05, "dip_mean": 1.5, "dip_worst": 1.5,
           "dip_worst_crop": "grass[0:64, 0:64]", "dip_seconds": 4.5, "dip_steps": 400.0,
           "dip_net_mean": 1.0, "tv_mean": 0.75, "tv_worst": 0.75, "bm3d_mean": None,
           "bm3d_worst": None, "bm3d_seconds": None, "per_crop": [crop]}
    return {"machine": MACHINE, "quick": True, "crop": 64, "noise_seed": 1,
            "first_call_seconds": 2.5, "bm3d": None, "sets": {"report": [row]}}


def _dip_with_bm3d():
    """:func:`_dip` with BM3D's gains beside its report row, which the targets page needs."""
    data = _dip()
    data["sets"]["report"][0].update(bm3d_mean=1.75, bm3d_worst=1.0)
    return data


LOG = """sol5: training the deblurring model on 42 images from offline fallback data (cache) in /x
Epoch 1/2
250/250 ━━━━━━━━━━━━━━━━━━━━ 8s 16ms/step - loss: 0.0343 - val_loss: 0.0028
Epoch 2/2
250/250 ━━━━━━━━━━━━━━━━━━━━ 3s 12ms/step - loss: 0.0023 - val_loss: 0.0021
sol5: deblur: trained in 77 s, saved /root/out/deblur_long.keras; held-out PSNR 18.00 dB -> 30.50 dB
"""


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    (folder / "training_logs").mkdir(parents=True)
    for name, data in (("evaluation", _evaluation()), ("depth_study", _depth_study()),
                       ("speed", _speed()), ("scaling", _scaling()),
                       ("deep_prior_quick", _dip())):
        (folder / f"{name}.json").write_text(json.dumps(data))
    (folder / "training_logs" / "run9_deblur.txt").write_text(LOG, encoding="utf-8")
    return folder


def _lines(text):
    return text.splitlines()


def test_pages_written_with_note_machine_and_date(results, tmp_path):
    docs = tmp_path / "docs"
    written = report.write_report(results, docs)
    names = sorted(p.name for p in written)
    assert names == ["deep-prior-results.md", "depth-study.md", "evaluation.md", "speed.md",
                     "targets.md", "training-logs.md"]
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("<!-- generated by python sol5.py report from results/")
        assert "do not edit" in text.splitlines()[0]
        if path.name != "training-logs.md":  # the logs carry no machine record
            assert "17-core riscv64 CPU, 3 GPUs" in text
            assert "Date: 2031-04-05." in text
            assert "TensorFlow 9.8.7" in text


def test_evaluation_rows(results):
    page = report.render(results)["evaluation.md"]
    assert "| BM3D (true sigma) | photos | 0.05 | 32.50 | 0.500 | 0.25 |" in _lines(page)
    assert "| ours, assignment settings | page | all | 23.00 | 0.812 | 0.25 |" in _lines(page)
    assert "| lighthouse | 40.00 | 41.50 | +1.50 |" in _lines(page)
    assert "TV weights chosen: 0.03 at sigma 0.05, 0.07 at sigma 0.1." in page
    # a part that the results file lacks gets no section; figures carry command, machine, date
    assert "colour" not in page.lower()
    assert "![Denoising photos](figures/evaluation_denoise.png)" in page
    assert "*Denoising photos: drawn by `python sol5.py evaluate`. Machine: 17-core" in page


def test_headline_picks_best_classical_and_ours(results):
    block = report.headline_block(json.loads((results / "evaluation.json").read_text()))
    lines = _lines(block)
    assert lines[0] == report.HEADLINE_BEGIN and lines[-1] == report.HEADLINE_END
    assert ("| denoising | photos | 0.05 | 26.00 | BM3D (true sigma): 32.50 | 31.00 | 33.25 |"
            in lines)
    assert ("| deblurring | page | all | 19.50 | Wiener (true kernel, balance 0.01): 22.12 | "
            "23.00 | 34.50 |") in lines
    assert "| super-resolution | photos | x2 |  | cubic-spline enlargement: 30.00 | 31.00 |  |" in lines
    assert not any("| x3 |" in line for line in lines)  # the headline keeps x2 only
    assert "2031-04-05" in block


def test_headline_lists_three_dates_as_a_sentence(results):
    evaluation = json.loads((results / "evaluation.json").read_text())
    evaluation["part_machines"] = {part: {"date": date} for part, date in
                                   (("denoise", "2030-01-02"), ("deblur", "2030-01-01"),
                                    ("superres", "2030-01-03"), ("colour", "2030-01-09"))}
    block = report.headline_block(evaluation)
    assert "`python sol5.py evaluate`, 2030-01-01, 2030-01-02 and 2030-01-03 (" in block


def test_readme_block_replaced_in_place(results, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n\n{report.HEADLINE_BEGIN}\nold 99.99\n"
                      f"{report.HEADLINE_END}\n\nafter\n", encoding="utf-8")
    written = report.write_report(results, tmp_path / "docs", readme)
    assert readme in written
    text = readme.read_text(encoding="utf-8")
    assert "old 99.99" not in text
    assert text.startswith("# title\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert "BM3D (true sigma): 32.50" in text
    assert report.stale_pages(results, tmp_path / "docs", readme) == []
    with pytest.raises(ValueError, match="markers"):
        report.replace_headline("no markers here", "x")


def test_depth_means_and_std(results):
    page = report.render(results)["depth-study.md"]
    # seeds at 0.002 - 0.0001 and 0.002 + 0.0001: mean 0.002, sample std 0.000141
    assert "| 1 | 0.002000 | 0.000141 | 2 | 10 |" in _lines(page)
    assert "| 2 | 0.002000 | 0.000141 | 2 | 20 |" in _lines(page)  # deblur depth 2: 0.004 / 2
    assert "Schedule: 100 images a batch, 7 steps an epoch, 3 epochs." in page
    assert "10.0 minutes" in page
    assert page.index("## Denoising") < page.index("## Deblurring")
    assert "](../depth_plot_deblur.png)" in page


def test_speed_parts_and_scaling(results):
    page = report.render(results)["speed.md"]
    assert "| denoise | 100 | 2.00 | 17.00 | 8.5x |" in _lines(page)
    assert "| speed ratio | 1.25 |" in _lines(page)
    assert "| resident memory before / after (MiB) | 2000 / 2003 |" in _lines(page)
    assert "one-minute load average 1.25 before the run" in page
    # parts with no results are named with the command that makes them
    assert "training (`python benchmarks/speed.py --training-only`)" in page
    assert "| 6000x4000 | 24.00 | tiled | 60.00 | 2.50 | 1400 |" in _lines(page)
    assert "(1 MP, tiled): 1.250." in page


def test_speed_commands_carry_the_options_used():
    assert report.speed_command("training", {"repeats": 3, "steps": 20}) == \
        "python benchmarks/speed.py --training-only --repeats 3 --steps 20"
    assert report.speed_command("training", {"repeats": 7, "steps": 40}) == \
        "python benchmarks/speed.py --training-only"
    assert report.speed_command("precision", {"repeats": 5}) == \
        "python benchmarks/speed.py --precision --repeats 5"
    assert report.speed_command("data", {"repeats": 5}) == "python benchmarks/speed.py --data-only"


def test_scaling_without_machine_record_says_so(results):
    data = _scaling()
    del data["machine"]
    (results / "scaling.json").write_text(json.dumps(data))
    page = report.render(results)["speed.md"]
    assert "Machine and date: not recorded in the results file." in page


def test_deep_prior_and_logs(results):
    pages = report.render(results)
    dip = pages["deep-prior-results.md"]
    assert "`python benchmarks/dip_bench.py --quick`" in dip
    assert "| 0.05 | 1 | 1.50 | 1.50 (grass[0:64, 0:64]) | 4.50 / 400 | 1.00 | 0.75 / 0.75 |  |" \
        in _lines(dip)
    assert "| grass[0:64, 0:64] | 0.05 | 0.071 | 1.50 | 1.00 | 0.75 |  | 400 |" in _lines(dip)
    assert "not installed" in dip
    data = _dip()
    data["sets"]["report"][0]["per_crop"][0]["bm3d"] = 2.125
    (results / "deep_prior_quick.json").write_text(json.dumps(data))
    dip = report.render(results)["deep-prior-results.md"]
    assert "| grass[0:64, 0:64] | 0.05 | 0.071 | 1.50 | 1.00 | 0.75 | 2.12 | 400 |" in _lines(dip)
    logs = pages["training-logs.md"]
    assert ("| [run9_deblur.txt](../results/training_logs/run9_deblur.txt) | deblur | 42 | 2 of 2 | "
            "250 | 14 | 77 | 0.0021 | 18.00 -> 30.50 |") in _lines(logs)


def test_training_logs_in_run_order(results):
    for name in ("run10_deblur.txt", "run2_denoise.txt", "run10_denoise.txt"):
        (results / "training_logs" / name).write_text(LOG, encoding="utf-8")
    logs = report.render(results)["training-logs.md"]
    listed = re.findall(r"^\| \[(run[^]]+)\]", logs, flags=re.M)
    assert listed == ["run2_denoise.txt", "run9_deblur.txt", "run10_deblur.txt",
                      "run10_denoise.txt"]


def _deep_prior_page_from(results, data):
    """The Deep Image Prior page made from ``data`` stored as the quick results file."""
    (results / "deep_prior_quick.json").write_text(json.dumps(data))
    return report.render(results)["deep-prior-results.md"]


def test_deep_prior_page_sets_each_step_cost_against_the_crops_size(results):
    data = _dip()
    assert "Cost of one step" not in report.render(results)["deep-prior-results.md"]
    data["step_cost"] = {"command": "python benchmarks/dip_bench.py --quick --step-cost-only",
                         "rounds": 7, "chunk": 10, "machine": MACHINE,
                         "rows": [{"side": 16, "ms_per_step": 12.0},
                                  {"side": 64, "ms_per_step": 20.0}]}
    dip = _deep_prior_page_from(results, data)
    assert "## Cost of one step of the fit" in dip
    assert "`python benchmarks/dip_bench.py --quick --step-cost-only`" in dip
    assert "| 16x16 | 12.0 | 0.60 | 0.062 |" in _lines(dip)
    assert "| 64x64 | 20.0 | 1.00 | 1.000 |" in _lines(dip)


def test_deep_prior_page_sets_the_stopping_rule_against_the_best_step(results):
    data = _dip()
    assert "stopping rule against" not in report.render(results)["deep-prior-results.md"]
    data["sets"]["report"][0].update(bm3d_mean=2.25, bm3d_worst=2.0)
    crops = [{"crop": "a", "rule_gain": 1.0, "rule_steps": 100, "best_gain": 1.5,
              "best_steps": 300, "rule_ratio": 0.95, "best_ratio": 0.8},
             {"crop": "b", "rule_gain": 2.0, "rule_steps": 200, "best_gain": 2.25,
              "best_steps": 50}]   # measured before the ratios were recorded
    data["best_stop"] = {"command": "python benchmarks/dip_bench.py --quick --best-stop-only",
                         "machine": MACHINE, "max_steps": 400,
                         "sets": {"report": [{"sigma": 0.05, "crops": 2, "rule_mean": 1.5,
                                              "best_mean": 1.875, "per_crop": crops}],
                                  "tune": [{"sigma": 0.1, "crops": 2, "rule_mean": 1.5,
                                            "best_mean": 1.5, "per_crop": crops}]}}
    dip = _deep_prior_page_from(results, data)
    assert "## The stopping rule against the best step" in dip
    assert "fitted to 400 steps" in dip
    # medians of the two crops' steps; the report set's BM3D column from its own table
    assert "| 0.05 | 2 | 1.50 / 150 | 1.88 / 175 | +0.38 | 2.25 |" in _lines(dip)
    assert "| 0.1 | 2 | 1.50 / 150 | 1.50 / 175 | +0.00 |  |" in _lines(dip)
    # every crop: steps / r / gain at the rule's step and at the best one
    assert "| a | 0.05 | 100 / 0.95 / 1.00 | 300 / 0.80 / 1.50 |" in _lines(dip)
    assert "| b | 0.1 | 200 /  / 2.00 | 50 /  / 2.25 |" in _lines(dip)


def test_deep_prior_page_gives_the_rules_gain_under_other_step_caps(results):
    data = _dip()
    crops = [{"crop": "a", "rule_gain": 1.0, "rule_steps": 100, "best_gain": 1.5,
              "best_steps": 300}]
    row = {"sigma": 0.05, "crops": 1, "rule_mean": 1.0, "best_mean": 1.5, "per_crop": crops}
    data["best_stop"] = {"command": "python benchmarks/dip_bench.py --best-stop-only",
                         "machine": MACHINE, "max_steps": 400, "sets": {"report": [row]}}
    assert "under other step caps" not in _deep_prior_page_from(results, data)
    row["caps"] = [{"cap": 200, "mean": 0.5, "worst": -1.25, "median_steps": 200},
                   {"cap": 400, "mean": 1.0, "worst": 0.5, "median_steps": 300}]
    data["best_stop"]["fitted_steps"] = 800
    dip = _deep_prior_page_from(results, data)
    assert "fitted to 800 steps" in dip and "shipped cap of 400" in dip
    assert "| sigma | cap 200 | cap 400 |" in _lines(dip)
    assert "| 0.05 | 0.50 / -1.25 / 200 | 1.00 / 0.50 / 300 |" in _lines(dip)


def test_a_log_whose_steps_take_seconds_keeps_every_epoch():
    # Keras prints "2s/step" once a step takes a second or more; such epochs still count, their
    # step time taken from the epoch's seconds over its steps.
    log = LOG.replace("3s 12ms/step", "480s 2s/step")
    facts = report.parse_training_log(log)
    assert facts["epochs"] == 2
    assert facts["step_ms"] == [16, 1920]
    assert facts["last_val_loss"] == "0.0021"


def test_the_epoch_a_time_budget_cut_is_set_apart():
    # Keras draws the cut epoch's bar as complete (250/250, in a few seconds); neither its time
    # nor the epoch counts.  The budget's line gives its steps; without it (older logs), a run
    # that ended before its planned epochs is known to have been cut.
    cut = (LOG.replace("Epoch 1/2", "Epoch 1/3").replace("Epoch 2/2", "Epoch 2/3")
           .replace("3s 12ms/step", "1s 4ms/step"))
    facts = report.parse_training_log(cut)
    assert (facts["epochs"], facts["partial"], facts["step_ms"]) == (1, True, [16])
    said = cut.replace("Epoch 2/3\n", "Epoch 2/3\nsol5: time budget spent after 8 of 250 steps "
                       "of epoch 2\n")
    facts = report.parse_training_log(said)
    assert (facts["epochs"], facts["partial"]) == (1, 8)
    assert report._epochs_cell(facts) == "1 of 3 + 8 steps"
    on_the_last_step = said.replace("after 8 of 250", "after 250 of 250")
    assert report.parse_training_log(on_the_last_step)["epochs"] == 2  # it ended on its last step
    whole = report.parse_training_log(LOG)
    assert (whole["epochs"], "partial" in whole) == (2, False)


def _console_capture(log):
    """``log`` as Keras writes it to a file: each epoch's bar redrawn in place, in colour, with a
    warning in between."""
    raw = []
    for line in log.splitlines():
        if line.startswith("250/250"):
            bar = line.split(" ", 1)[1]
            raw.append("\r\x1b[1m  1/250\x1b[0m \x1b[37m━━\x1b[0m 9:99 1s/step - loss: 0.9"
                       + "\x08" * 12 + "\r\x1b[1m250/250\x1b[0m " + bar)
        else:
            raw.append(line)
    return "\n".join(raw[:2] + ["W0000 00:00 some warning"] + raw[2:]) + "\n"


def test_a_console_capture_cleans_to_the_log_the_page_reads(tmp_path):
    raw = tmp_path / "raw.log"
    raw.write_text(_console_capture(LOG), encoding="utf-8")
    assert report.parse_training_log(raw.read_text())["epochs"] == 0  # the raw bars do not parse
    log = tmp_path / "run9_deblur.txt"
    from restoration import cli
    cli.main(["report", "--clean-log", str(raw), str(log)])
    assert log.read_text(encoding="utf-8") == LOG
    assert report.parse_training_log(log.read_text())["epochs"] == 2


def test_missing_results_give_no_pages(tmp_path):
    assert report.render(tmp_path) == {}
    assert report.main(["--results", str(tmp_path), "--docs", str(tmp_path / "docs"),
                        "--readme", str(tmp_path / "none.md"), "--check"]) == 0


def test_check_catches_a_hand_edit(results, tmp_path, capsys):
    docs = tmp_path / "docs"
    args = ["--results", str(results), "--docs", str(docs), "--readme", str(tmp_path / "none.md")]
    assert report.main(args) == 0
    assert report.main(args + ["--check"]) == 0
    page = docs / "evaluation.md"
    page.write_text(page.read_text().replace("32.50", "32.60"))
    assert report.main(args + ["--check"]) == 1
    assert "evaluation.md" in capsys.readouterr().err


def test_committed_docs_match_committed_results():
    """docs/ and the README's headline table are what ``python sol5.py report`` makes of results/."""
    pages = report.render(ROOT / "results")
    assert pages, "results/ gives no pages"
    for name, text in pages.items():
        committed = ROOT / "docs" / name
        assert committed.is_file(), f"docs/{name} is missing: run python sol5.py report"
        assert committed.read_text(encoding="utf-8") == text, \
            f"docs/{name} differs from what results/ gives: run python sol5.py report"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert report.HEADLINE_BEGIN in readme
    assert report.render_readme(ROOT / "results", readme) == readme, \
        "the README's headline table differs from results/evaluation.json: run python sol5.py report"


def test_targets_set_each_result_against_its_anchor_and_time_share():
    colour = [_row("CBM3D (true sigma)", "unseen colour photos", 0.1, 30.0, seconds=6.0),
              _row("ours, long preset (shipped), colour network", "unseen colour photos", 0.1,
                   30.5, seconds=3.0),
              _row("ours, long preset (shipped), colour network, bfloat16",
                   "unseen colour photos", 0.1, 30.25, seconds=1.5)]
    gray = [_row("BM3D (true sigma)", "unseen photos, gray", 0.1, 28.0, seconds=2.0),
            _row("ours, long preset (shipped)", "unseen photos, gray", 0.1, 28.25, seconds=0.25)]
    evaluation = dict(_evaluation(), unseen_colour=colour, unseen_gray=gray)
    dip = _dip_with_bm3d()
    rows = {(r[0], r[2]): r for r in report.target_rows(evaluation, dip)
            if r[1] != "photos left out of training"}
    # the colour row takes the bfloat16 run (what restore uses): +0.25 dB, a quarter of the time
    assert rows[("colour", "0.1")][4].endswith("bfloat16")
    assert rows[("colour", "0.1")][6:] == ["+0.25", "0.25 (at most 0.33)", "yes"]
    # gray needs BM3D + 0.5 dB: 0.25 dB short, though 8 times faster
    assert rows[("gray", "0.1")][6:] == ["-0.25", "0.12 (at most 0.25)", "no"]
    assert rows[("super-resolution", "x2")][3:7] == [  # no shipped x2 row: the assignment's
        "cubic + 1 dB", "ours, assignment-sized", "31.00 vs 30.00", "+0.00"]
    assert rows[("Deep Image Prior", "0.05")][-1] == "no"  # 1.5 dB worst gain, 4.5 s
    page = report.targets_page(evaluation, dip, ["results/evaluation.json"])
    assert "| colour | unseen colour photos | 0.1 |" in page


def test_targets_name_each_parts_machine_only_where_the_parts_were_measured_apart():
    evaluation = _evaluation()
    together = report.targets_page(evaluation, _dip_with_bm3d(), ["results/evaluation.json"])
    assert together.count("Machine:") == 1 and "--parts" not in together
    later = dict(MACHINE, date="2021-05-06T00:00:00")
    evaluation["part_machines"] = {"unseen": MACHINE, "unseen-superres": later,
                                   "unseen-sure": MACHINE}
    evaluation["unseen_gray"] = [_row("BM3D (true sigma)", "unseen photos, gray", 0.1, 28.0)]
    evaluation["unseen_superres"] = [_row("cubic-spline enlargement", "unseen photos, gray",
                                          "x2", 30.0)]
    apart = report.targets_page(evaluation, _dip_with_bm3d(), ["results/evaluation.json"])
    assert apart.count("Machine:") == 5  # no line for unseen-sure: none of its rows is here
    assert "--parts unseen-sure`" not in apart
    assert "`benchmarks/dip_bench.py` (the Deep Image Prior rows): Machine:" in apart
    assert "`evaluate --parts unseen-superres`: Machine:" in apart and "2021-05-06" in apart
    assert "`evaluate --parts superres-folds`: Machine:" in apart


def test_targets_name_the_machine_that_timed_the_deep_prior_rows():
    dip = dict(_dip_with_bm3d(), machine=dict(MACHINE, cpu="Some CPU", date="2021-05-06T00:00:00"))
    page = report.targets_page(_evaluation(), dip, ["results/evaluation.json"])
    line = next(line for line in page.splitlines() if "dip_bench.py" in line)
    assert "(Some CPU)" in line and "2021-05-06" in line
    measured = {"superres", "superres-folds"}  # the parts whose rows _evaluation() holds
    assert page.count("Machine:") == len(measured) + 1


def test_targets_leave_out_the_deep_prior_machine_where_no_deep_prior_row_is_shown():
    # without BM3D's gains there is no anchor, so no Deep Image Prior row and no line for its run
    dip = dict(_dip(), machine=dict(MACHINE, cpu="Some CPU", date="2021-05-06T00:00:00"))
    page = report.targets_page(_evaluation(), dip, ["results/evaluation.json"])
    assert "| Deep Image Prior |" not in page
    assert "dip_bench.py" not in page and page.count("Machine:") == 1


def _weights_record(folder, name, date):
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps({"machine": dict(MACHINE, date=date)}))


def test_a_part_measured_before_its_shipped_weights_were_trained_says_so(results):
    models = results.parent / "models"
    _weights_record(models, "denoise_long", "2031-04-05T07:00:00+00:00")  # an hour after
    _weights_record(models, "deblur_long", "2031-04-05T05:00:00+00:00")  # an hour before
    pages = report.render(results)
    denoise, deblur = pages["evaluation.md"].split("## Deblurring text")
    assert ("The shipped weights `models/denoise_long.keras` were trained after this part was "
            "measured") in denoise
    assert "`python sol5.py evaluate --parts denoise` updates them." in denoise
    assert "were trained after" not in deblur
    assert "were trained after" not in pages["targets.md"]  # its parts here score other weights
    _weights_record(models, "superres-x2_long", "2031-04-06T00:00:00+00:00")
    targets = report.render(results)["targets.md"]
    assert "- `evaluate --parts superres`: The shipped weights `models/superres-x2_long.keras`" in targets
    assert "unseen-superres`: The shipped" not in targets  # a part with no rows here
    assert report.render(results, models_dir=results / "none")["targets.md"].count(
        "were trained after") == 0


def test_the_readme_headline_names_the_parts_measured_before_their_weights(results, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"{report.HEADLINE_BEGIN}\nold\n{report.HEADLINE_END}\n", encoding="utf-8")
    assert "measured before" not in report.render_readme(results, readme.read_text())
    _weights_record(results.parent / "models", "deblur_long", "2031-04-06T00:00:00+00:00")
    block = report.render_readme(results, readme.read_text())
    assert "The shipped weights' rows of `--parts deblur` were measured before" in block


def test_weights_without_a_dated_record_are_not_called_newer():
    measured = {"date": "2031-04-05T06:07:08+00:00"}
    assert report.newer_weights("unseen", measured, {"denoise_long": {}}) == []
    assert report.newer_weights("unseen", {}, {
        "denoise_long": {"machine": {"date": "2031-04-06T00:00:00+00:00"}}}) == []
    assert report.newer_weights("superres-folds", measured, {
        "superres-x2_long": {"machine": {"date": "2031-04-06T00:00:00+00:00"}}}) == []


def test_targets_add_a_row_per_symmetry_count_of_the_shipped_weights_fewest_first():
    shipped = "ours, long preset (shipped), colour network, bfloat16"
    colour = [_row("CBM3D (true sigma)", "unseen colour photos", 0.05, 30.0, seconds=8.0),
              _row(shipped + ", 8 symmetries", "unseen colour photos", 0.05, 30.25, seconds=3.0),
              _row(shipped, "unseen colour photos", 0.05, 29.75, seconds=0.5),
              _row(shipped + ", 4 symmetries", "unseen colour photos", 0.05, 30.125, seconds=1.5),
              _row(shipped + ", 4 symmetries", "unseen colour photos", 0.1, 27.0, seconds=1.5),
              _row(shipped + ", 4 symmetries, other", "unseen colour photos", 0.05, 31.0)]
    rows = [r for r in report.target_rows(dict(_evaluation(), unseen_colour=colour))
            if r[0] == "colour"]
    assert [r[4] for r in rows] == [shipped, shipped + ", 4 symmetries", shipped + ", 8 symmetries"]
    assert [r[6:] for r in rows] == [["-0.25", "0.06 (at most 0.33)", "no"],
                                     ["+0.12", "0.19 (at most 0.33)", "yes"],
                                     ["+0.25", "0.38 (at most 0.33)", "no"]]


def test_gray_targets_take_the_sure_part_after_the_plain_rows_of_each_symmetry_count():
    shipped = "ours, long preset (shipped)"
    rows = [_row("BM3D (true sigma)", "unseen photos, gray", 0.05, 30.0, seconds=2.0),
            _row(shipped + ", SURE", "unseen photos, gray", 0.05, 30.5, seconds=1.0),
            _row(shipped, "unseen photos, gray", 0.05, 30.25, seconds=0.5),
            _row(shipped + ", 4 symmetries, SURE", "unseen photos, gray", 0.05, 30.75,
                 seconds=4.0),
            _row(shipped + ", 4 symmetries", "unseen photos, gray", 0.05, 30.5, seconds=2.0)]
    gray = [r for r in report.target_rows(dict(_evaluation(), unseen_gray_sure=rows))
            if r[0] == "gray"]
    assert [r[4] for r in gray] == [shipped, shipped + ", 4 symmetries", shipped + ", SURE",
                                    shipped + ", 4 symmetries, SURE"]
    assert [r[6:] for r in gray] == [["-0.25", "0.25 (at most 0.25)", "no"],
                                     ["+0.00", "1.00 (at most 0.25)", "no"],
                                     ["+0.00", "0.50 (at most 0.25)", "no"],
                                     ["+0.25", "2.00 (at most 0.25)", "no"]]


def test_targets_score_super_resolution_on_the_unseen_photos_before_the_held_out_ones():
    unseen = [_row("cubic-spline enlargement", "unseen photos, gray", "x2", 28.0),
              _row("ours, long preset (shipped)", "unseen photos, gray", "x2", 30.5)]
    rows = [r for r in report.target_rows(dict(_evaluation(), unseen_superres=unseen))
            if r[0] == "super-resolution"]
    assert rows[0][1:3] == ["unseen photos, gray", "x2"]
    assert rows[0][3:] == ["cubic + 2 dB", "ours, long preset (shipped)", "30.50 vs 28.00",
                           "+0.50", "", "yes"]
    assert rows[1][1] == "held-out photos" and len(rows) > 1


def test_super_resolution_targets_take_the_shipped_bfloat16_run_then_each_symmetry_count():
    shipped = "ours, long preset (shipped)"
    unseen = [_row("cubic-spline enlargement", "unseen photos, gray", "x2", 28.0),
              _row(shipped, "unseen photos, gray", "x2", 29.5),
              _row(shipped + ", bfloat16, 8 symmetries", "unseen photos, gray", "x2", 30.25),
              _row(shipped + ", bfloat16", "unseen photos, gray", "x2", 29.5),
              _row("ours, assignment-sized", "unseen photos, gray", "x2", 28.75),
              _row(shipped + ", bfloat16, 8 symmetries", "unseen photos, gray", "x3", 31.0)]
    rows = [r for r in report.target_rows(dict(_evaluation(), unseen_superres=unseen))
            if r[:2] == ["super-resolution", "unseen photos, gray"]]
    assert [r[4] for r in rows] == [shipped + ", bfloat16", shipped + ", bfloat16, 8 symmetries",
                                    "ours, assignment-sized"]
    assert [r[6] for r in rows] == ["-0.50", "+0.25", "-0.25"]
    assert [r[-1] for r in rows] == ["no", "yes", "no"]


def test_evaluate_and_the_depth_study_also_rewrite_the_readme_headline(monkeypatch):
    from restoration import cli
    calls = []
    monkeypatch.setattr(report, "write_report", lambda **kwargs: calls.append(kwargs) or [])
    cli._write_docs()
    assert calls == [{"readme": ROOT / "README.md"}]


def test_machine_line_names_the_keras_backend_and_omits_a_missing_tensorflow():
    jax_machine = {k: v for k, v in MACHINE.items() if k != "tensorflow"}
    line = report.machine_line(dict(jax_machine, keras_backend="jax"))
    assert "TensorFlow" not in line
    assert "Keras 6.5.4 on jax, numpy 3.2.1" in line
    assert "TensorFlow 9.8.7, Keras 6.5.4, numpy 3.2.1" in report.machine_line(MACHINE)


def test_machine_line_names_the_cpu_and_the_bm3d_build_when_recorded():
    line = report.machine_line(dict(MACHINE, cpu="Example CPU 9000", bm3d="4.5.6"))
    assert "17-core riscv64 CPU (Example CPU 9000), 3 GPUs" in line
    assert "numpy 3.2.1, bm3d 4.5.6." in line
    assert "(" not in report.machine_line(MACHINE)


def test_the_trajectories_are_named_only_when_their_file_exists():
    assert report._trajectories_line("results/no_such_results.json") == ""
    line = report._trajectories_line("results/deep_prior.json")   # written by --best-stop-only
    assert "`results/deep_prior_trajectories.json`" in line and "--replay" in line


def _per_photo_rows(method, images, level, scores):
    return dict(_row(method, images, level, sum(scores.values()) / len(scores)), per_image=scores)


def test_per_photo_tables_subtract_the_anchor_photo_by_photo_with_mean_and_median():
    gray = [_per_photo_rows("BM3D (true sigma)", "unseen photos, gray", 0.05,
                            {"leaf": 30.0, "wing": 29.0, "wall": 35.0}),
            _per_photo_rows("ours, long preset (shipped)", "unseen photos, gray", 0.05,
                            {"leaf": 31.0, "wing": 24.0, "wall": 35.5}),
            _per_photo_rows("ours, long preset (shipped), bfloat16", "unseen photos, gray", 0.05,
                            {"leaf": 30.75, "wing": 24.5, "wall": 35.25})]
    evaluation = dict(_evaluation(), unseen_gray=gray)
    differences = report.per_photo_differences(gray, "unseen photos, gray", "BM3D (true sigma)")
    # the bfloat16 run, as the goal's first row takes it
    assert differences == {0.05: {"leaf": 0.75, "wing": -4.5, "wall": 0.25}}
    page = report.targets_page(evaluation, _dip(), ["results/evaluation.json"])
    section = page[page.index("## Per photo"):]
    assert "| wing | -4.50 |" in section
    assert "| **mean** | -1.17 |" in section and "| **median** | +0.25 |" in section
    assert "The goal asks for a mean of at least +0.5 dB." in section


def test_no_per_photo_section_for_results_without_per_photo_scores():
    gray = [_row("BM3D (true sigma)", "unseen photos, gray", 0.05, 30.0),
            _row("ours, long preset (shipped)", "unseen photos, gray", 0.05, 30.5)]
    evaluation = dict(_evaluation(), unseen_gray=gray)
    assert report.per_photo_differences(gray, "unseen photos, gray", "BM3D (true sigma)") == {}
    assert "## Per photo" not in report.targets_page(evaluation, _dip(),
                                                     ["results/evaluation.json"])
