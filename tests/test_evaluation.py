"""The evaluation command's pieces: held-out data, metrics, parameter choice, aggregation."""

import numpy as np
import pytest

import sol5
import sol5_utils
from restoration import _data, experiments


def test_held_out_photos_are_never_trained_on(no_course_data):
    """By content, not by name: no training image equals a held-out photo at a stored scale."""
    import skimage.transform
    import skimage.util
    held_out = experiments.held_out_photos()
    assert len(held_out) >= 2
    variants = [skimage.util.img_as_ubyte(photo if scale == 1 else skimage.transform.rescale(
                    photo, scale, anti_aliasing=True))
                for photo in held_out.values() for scale in _data.PHOTO_SCALES]
    for path in sol5_utils.images_for_denoising():
        pixels = skimage.util.img_as_ubyte(sol5.read_image(path, 1))
        for variant in variants:
            if pixels.shape == variant.shape:
                assert np.abs(pixels.astype(int) - variant).mean() > 2, path


def test_held_out_text_is_never_trained_on(no_course_data):
    """By content: no training page equals a held-out page (scanned or rendered)."""
    texts = experiments.held_out_text()
    assert {"text", "page"} <= set(texts)
    assert sum(name.startswith("render:") for name in texts) == experiments.EVAL_RENDERED_PAGES
    held_out = {name: np.round(image * 255) for name, image in texts.items()}
    for path in sol5_utils.images_for_deblurring():
        pixels = np.round(sol5.read_image(path, 1) * 255)
        for name, image in held_out.items():
            if pixels.shape == image.shape:
                assert np.abs(pixels - image).mean() > 2, (path, name)


def test_colour_cases_have_independent_noise_per_channel():
    cases = experiments.color_denoise_cases()
    assert {c["image"] for c in cases} == set(experiments.COLOUR_PHOTOS)
    case = next(c for c in cases if c["level"] == 0.1)
    noise = (case["corrupted"] - case["clean"]).reshape(-1, 3)
    assert abs(np.corrcoef(noise.T)[0, 1]) < 0.1  # not the same noise in every channel
    assert 0.08 < noise.std() < 0.11


def test_psnr_and_ssim_take_pixel_values_in_0_1_and_colour_channels():
    rng = np.random.default_rng(0)
    clean = rng.uniform(0.2, 0.8, (64, 64))
    # a data range of 1, not the float dtype's default of 2 (which would give 26.02 dB)
    assert experiments.psnr_ssim(clean, clean + 0.1)[0] == pytest.approx(20.0)
    colour = rng.uniform(0.2, 0.8, (64, 64, 3))
    noisy = np.clip(colour + rng.normal(0, 0.1, colour.shape), 0, 1)
    per_channel = [experiments.psnr_ssim(colour[..., c], noisy[..., c])[1] for c in range(3)]
    # colour SSIM is the mean over the channels, not SSIM of a 64x64x3 volume
    assert experiments.psnr_ssim(colour, noisy)[1] == pytest.approx(np.mean(per_channel))


def test_best_parameter_picks_the_highest_mean_psnr():
    clean = np.full((16, 16), 0.5)
    cases = [{"clean": clean, "corrupted": clean}]
    best = experiments.best_parameter(cases, lambda case, offset: case["clean"] + offset,
                                      (0.3, -0.05, 0.02, 0.1))
    assert best == 0.02


def test_denoise_cases_are_seeded_and_cover_every_sigma():
    first, again = experiments.denoise_cases(), experiments.denoise_cases()
    assert {c["level"] for c in first} == set(experiments.EVAL_SIGMAS)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["corrupted"], b["corrupted"])
    case = next(c for c in first if c["level"] == 0.1)
    assert (case["corrupted"] - case["clean"]).std() == pytest.approx(0.1, abs=0.01)


def test_deblur_cases_use_the_assignment_blur(no_course_data):
    cases = experiments.deblur_cases()
    assert {c["level"] for c in cases} == {0, 45, 90, 135}
    case = next(c for c in cases if c["image"] == "page" and c["level"] == 45)
    expected = sol5.quantize(sol5.add_motion_blur(case["clean"], 7, np.pi / 4))
    np.testing.assert_array_equal(case["corrupted"], expected)
    np.testing.assert_array_equal(case["kernel"], sol5_utils.motion_blur_kernel(7, np.pi / 4))


def test_score_methods_averages_per_group_and_level():
    clean = np.full((8, 8), 0.5)
    cases = [{"image": name, "level": level, "clean": clean, "corrupted": clean + offset}
             for name, level, offset in (("a", 1, 0.1), ("b", 1, 0.01), ("a", 2, 0.1))]
    rows, outputs = experiments.score_methods({"input": lambda case: case["corrupted"]}, cases,
                                              group=lambda case: "all")
    by_level = {r["level"]: r for r in rows}
    assert by_level[1]["n"] == 2 and by_level[2]["n"] == 1
    assert by_level[1]["psnr"] == pytest.approx((20.0 + 40.0) / 2)
    assert by_level[2]["psnr"] == pytest.approx(20.0)
    assert set(outputs) == {("input", "a", 1), ("input", "b", 1), ("input", "a", 2)}
    assert by_level[1]["per_image"] == {"a": pytest.approx(20.0), "b": pytest.approx(40.0)}
    assert by_level[2]["per_image"] == {"a": pytest.approx(20.0)}


def test_unpadded_deconvolution_keeps_the_shape():
    case = {"corrupted": np.random.uniform(0, 1, (30, 41))}
    out = experiments.unpadded(lambda image: image * 2, case)
    assert out.shape == (30, 41)
    np.testing.assert_allclose(out, np.clip(case["corrupted"] * 2, 0, 1))


def test_super_resolution_baseline_rows_score_cubic_enlargement_of_each_held_out_photo():
    rows = experiments.super_resolution_rows({})
    assert [r["level"] for r in rows] == ["x2", "x3"]
    photos = list(experiments.held_out_photos().values())
    for row, scale in zip(rows, (2, 3)):
        scores = [experiments.super_resolution_score(clean, sol5.enlarge, scale)[0]
                  for clean in photos]
        assert row["method"] == "cubic-spline enlargement" and row["n"] == len(photos)
        assert row["psnr"] == pytest.approx(np.mean(scores))
        assert list(row["per_image"]) == list(experiments.held_out_photos())
        assert list(row["per_image"].values()) == pytest.approx(scores)
    assert rows[1]["psnr"] < rows[0]["psnr"]  # shrinking 3x loses more than 2x


def test_super_resolution_rows_also_average_the_shipped_weights_over_symmetries(monkeypatch):
    monkeypatch.setattr(experiments._training, "bfloat16_supported", lambda: False)
    calls = []

    def enlarge_and_count(low, model, scale, precision="float32", symmetries=1):
        calls.append((model, scale, symmetries))
        return sol5.enlarge(low, (round(low.shape[0] * scale), round(low.shape[1] * scale)))

    monkeypatch.setattr(sol5, "super_resolve_image", enlarge_and_count)
    photo = np.random.default_rng(0).uniform(0, 1, (40, 36))
    rows = experiments.super_resolution_rows({2: {experiments.SHIPPED_LABEL: "s"}},
                                             {"noise": photo}, "noise")
    labels = [r["method"] for r in rows if r["level"] == "x2"]
    assert labels == ["cubic-spline enlargement", experiments.SHIPPED_LABEL] + [
        experiments.SHIPPED_LABEL + experiments.symmetries_suffix(count)
        for count in experiments.SUPERRES_SYMMETRIES]
    assert calls == [("s", 2, 1)] + [("s", 2, count) for count in experiments.SUPERRES_SYMMETRIES]


@pytest.mark.parametrize("fast_machine", [True, False])
def test_shipped_weights_are_also_scored_in_bfloat16_where_fast(monkeypatch, fast_machine):
    monkeypatch.setattr(experiments._training, "bfloat16_supported", lambda: fast_machine)
    calls = []
    methods = experiments.our_methods(
        {"ours, assignment settings": "a", experiments.SHIPPED_LABEL: "s"},
        lambda case, model, precision: calls.append((model, precision)), suffix=", x")
    for restore in methods.values():
        restore(None)
    expected = {"ours, assignment settings, x", experiments.SHIPPED_LABEL + ", x"}
    if fast_machine:
        expected.add(experiments.SHIPPED_LABEL + ", x" + experiments.BFLOAT16_SUFFIX)
    assert set(methods) == expected
    assert sorted(calls) == sorted([("a", "float32"), ("s", "float32")]
                                   + [("s", "mixed_bfloat16")] * fast_machine)


@pytest.mark.parametrize("fast_machine", [True, False])
def test_shipped_weights_are_also_averaged_over_each_symmetry_count(monkeypatch, fast_machine):
    monkeypatch.setattr(experiments._training, "bfloat16_supported", lambda: fast_machine)
    calls = []
    methods = experiments.our_methods(
        {"ours, assignment settings": "a", experiments.SHIPPED_LABEL: "s"},
        lambda case, model, precision, symmetries=1: calls.append((model, precision, symmetries)),
        symmetries=(2, 8))
    for restore in methods.values():
        restore(None)
    fast = experiments.BFLOAT16_SUFFIX if fast_machine else ""
    precision = "mixed_bfloat16" if fast_machine else "float32"
    assert {experiments.SHIPPED_LABEL + fast + ", 2 symmetries",
            experiments.SHIPPED_LABEL + fast + ", 8 symmetries"} <= set(methods)
    assert not any("assignment" in label and "symmetries" in label for label in methods)
    assert ("s", precision, 2) in calls and ("s", precision, 8) in calls
    assert ("a", "float32", 1) in calls and len(calls) == len(methods)


@pytest.mark.parametrize("fast_machine", [True, False])
def test_sure_part_scores_the_shipped_denoiser_with_and_without_sure_per_symmetry_count(
        monkeypatch, fast_machine):
    monkeypatch.setattr(experiments._training, "bfloat16_supported", lambda: fast_machine)
    monkeypatch.setattr(experiments, "_optional_bm3d", lambda: None)
    calls = []
    monkeypatch.setattr(experiments, "restore_case",
                        lambda case, model, precision, symmetries=1, sure=False:
                        calls.append((model, precision, symmetries, sure)))
    methods = experiments.sure_methods(
        {"ours, assignment settings": "a", experiments.SHIPPED_LABEL: "s"})
    for restore in methods.values():
        restore(None)
    shipped = experiments.SHIPPED_LABEL + (experiments.BFLOAT16_SUFFIX if fast_machine else "")
    assert list(methods) == [shipped, shipped + ", SURE", shipped + ", 4 symmetries",
                             shipped + ", 4 symmetries, SURE", shipped + ", 8 symmetries",
                             shipped + ", 8 symmetries, SURE"]
    precision = "mixed_bfloat16" if fast_machine else "float32"
    assert calls == [("s", precision, count, sure) for count in (1, 4, 8)
                     for sure in (False, True)]


def test_photo_folds_split_the_training_photos_and_keep_the_motorcycle_together():
    folds = experiments.photo_folds(3, seed=0)
    names = [name for fold in folds for name in fold]
    assert sorted(names) == sorted(_data.TRAIN_PHOTOS)  # each photo in exactly one fold
    assert any({"motorcycle_left", "motorcycle_right"} <= set(fold) for fold in folds)
    assert experiments.photo_folds(3, seed=0) == folds and experiments.photo_folds(3, seed=1) != folds


@pytest.mark.parametrize("stem, photo", [("retina_b_100", "retina"), ("motorcycle_left_g_75",
                                         "motorcycle_left"), ("hubble_deep_field_50", "hubble_deep_field")])
def test_photo_of_names_the_source_photo(stem, photo):
    assert experiments.photo_of(f"/cache/{stem}.png") == photo


def test_photo_of_refuses_a_foreign_file():
    with pytest.raises(ValueError, match="shipped training photo"):
        experiments.photo_of("/somewhere/astronaut_100.png")


def test_unseen_super_resolution_scores_each_fold_with_a_model_trained_without_it(monkeypatch):
    trained_without = []

    def fake_training(photos, scale, seed):
        trained_without.append(list(photos))
        return sol5.build_nn_model(8, 8, 2, 0)  # zero blocks: a network that keeps its input
    monkeypatch.setattr(experiments, "train_super_resolver_without", fake_training)
    monkeypatch.setattr(_data, "load_skimage_photo",
                        lambda name: np.random.default_rng(len(name)).random((40, 36)))
    rows = experiments.super_resolution_unseen_rows(scale=2, folds=3, seed=0)
    assert trained_without == experiments.photo_folds(3, 0)
    assert [r["photo"] for r in rows[:-1]] == [n for fold in trained_without for n in fold]
    assert rows[-1]["photo"] == "mean"
    assert rows[-1]["gain"] == pytest.approx(np.mean([r["gain"] for r in rows[:-1]]))


def test_a_partial_evaluation_keeps_what_another_run_saved_meanwhile(tmp_path, monkeypatch):
    path = tmp_path / "evaluation.json"
    experiments._save_results({"denoise": ["old"], "superres_unseen": ["old"]}, path)

    def unseen_rows_while_another_run_saves():
        experiments._save_results({"denoise": ["new"], "superres_unseen": ["old"]}, path)
        return ["mine"]
    monkeypatch.setattr(experiments, "super_resolution_unseen_rows", unseen_rows_while_another_run_saves)
    report = experiments.run_evaluation(models={}, figure_dir=tmp_path, path=path,
                                        parts=("superres-folds",))
    saved = experiments.load_results(path)
    assert saved["denoise"] == ["new"] and saved["superres_unseen"] == ["mine"]
    assert report["denoise"] == ["new"] and "machine" in saved


def test_a_partial_evaluation_records_which_machine_measured_each_part(tmp_path, monkeypatch):
    from restoration import report
    path = tmp_path / "evaluation.json"
    old_machine = {"date": "2020-01-02T00:00:00", "cpu_count": 8, "machine": "x86_64"}
    row = {"method": "noisy input", "images": "photos", "level": 0.1, "psnr": 20.0, "ssim": 0.3,
           "seconds": 0.0, "n": 1}
    experiments._save_results({"machine": old_machine, "denoise": [row]}, path)
    monkeypatch.setattr(experiments, "_evaluate_colour",
                        lambda models, figure_dir: {"denoise_colour": [dict(row, images="c")]})
    monkeypatch.setitem(experiments.EVALUATION_PARTS, "colour", experiments._evaluate_colour)
    saved = experiments.run_evaluation(models={}, figure_dir=tmp_path, path=path,
                                       parts=("colour",))
    assert saved["machine"] == old_machine  # the record of the other parts stays
    assert saved["part_machines"]["denoise"] == old_machine
    assert saved["part_machines"]["colour"]["date"][:10] != "2020-01-02"
    page = report.evaluation_page(saved)
    assert "measured separately" in page and "--parts colour" in page and "2020-01-02" in page


def test_a_part_rerun_replaces_its_own_machine_record(tmp_path, monkeypatch):
    path = tmp_path / "evaluation.json"
    old_machine = {"date": "2020-01-02T00:00:00", "cpu_count": 8, "machine": "x86_64"}
    experiments._save_results({"machine": old_machine, "denoise": ["old"],
                               "part_machines": {"denoise": old_machine, "colour": old_machine}}, path)
    monkeypatch.setitem(experiments.EVALUATION_PARTS, "colour",
                        lambda models, figure_dir: {"denoise_colour": ["rerun"]})
    saved = experiments.run_evaluation(models={}, figure_dir=tmp_path, path=path, parts=("colour",))
    assert saved["denoise_colour"] == ["rerun"] and saved["denoise"] == ["old"]
    assert saved["part_machines"]["denoise"] == old_machine
    assert saved["part_machines"]["colour"]["date"][:10] != "2020-01-02"
    # the part's record names the CPU and, where installed, the bm3d build that timed it
    assert saved["part_machines"]["colour"]["cpu"] == experiments.cpu_name()
    assert "bm3d" in saved["part_machines"]["colour"] or experiments._optional_bm3d() is None


def test_a_rerun_that_loses_a_models_rows_names_them_and_the_fix(tmp_path, monkeypatch, capsys):
    path = tmp_path / "evaluation.json"
    row = {"method": "cubic", "images": "photos", "level": "x2", "psnr": 30.0}
    saved_rows = [row, dict(row, method="ours"), dict(row, method="ours", level="x3")]
    experiments._save_results({"superres": saved_rows}, path)
    monkeypatch.setitem(experiments.EVALUATION_PARTS, "superres",
                        lambda models, figure_dir: {"superres": saved_rows[:2]})
    experiments.run_evaluation(models={}, figure_dir=tmp_path, path=path, parts=("superres",))
    printed = capsys.readouterr().out
    assert "'superres'" in printed and "ours (x3)" in printed and "sol5.py train" in printed
    assert "cubic" not in printed


def test_the_unseen_parts_score_colour_gray_and_super_resolution_on_the_same_photos(
        tmp_path, monkeypatch):
    rgb = np.random.default_rng(5).random((48, 48, 3))
    monkeypatch.setattr(experiments._data, "unseen_photos", lambda: {"tiny": rgb})
    report = experiments._evaluate_unseen({}, tmp_path)
    assert report["unseen_photos"] == ["tiny"]
    assert {r["images"] for r in report["unseen_colour"]} == {"unseen colour photos"}
    assert {r["images"] for r in report["unseen_gray"]} == {"unseen photos, gray"}
    assert "BM3D per channel (true sigma)" not in {r["method"] for r in report["unseen_colour"]}
    assert "unseen_superres" not in report  # a part of its own, rerun without the denoisers
    superres = experiments._evaluate_unseen_superres({}, tmp_path)
    assert superres["unseen_photos"] == ["tiny"]
    assert {r["images"] for r in superres["unseen_superres"]} == {"unseen photos, gray"}
    assert {r["method"] for r in superres["unseen_superres"]} == {"cubic-spline enlargement"}
    assert {r["level"] for r in superres["unseen_superres"]} == {f"x{s}" for s in experiments.SR_SCALES}


@pytest.mark.parametrize("part", ["unseen", "unseen-superres"])
def test_an_unseen_part_without_the_photos_is_skipped_and_says_how_to_get_them(
        part, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(experiments._data, "unseen_photos", lambda: {})
    assert experiments.EVALUATION_PARTS[part]({}, tmp_path) == {}
    printed = capsys.readouterr().out
    assert f"part '{part}' skipped" in printed and "training-data.md" in printed


def test_machine_facts_leave_tensorflow_out_where_it_is_missing(monkeypatch):
    # A GPU machine may train on Keras' JAX backend with no TensorFlow installed.
    from restoration import _training
    monkeypatch.setattr(_training, "tf", None)
    monkeypatch.setattr(_training, "gpu_compute_capabilities", lambda: [(9, 0)])
    facts = experiments.machine_facts()
    assert "tensorflow" not in facts
    assert facts["gpus"] == 1
    assert {"date", "python", "keras", "numpy", "cpu_count", "machine"} <= set(facts)
