"""The weight-comparison benchmark: its photo sets and its mean PSNR per level."""

import keras
import numpy as np
import pytest

import sol5


@pytest.fixture(scope="module")
def compare_weights(load_benchmark):
    return load_benchmark("compare_weights")


def _network_with_last_bias(bias, channels=1):
    """A one-block network whose last convolution adds ``bias`` everywhere (zero: identity)."""
    if channels == 1:
        model = sol5.build_nn_model(16, 16, 4, 1)
    else:
        model = sol5.build_color_nn_model(16, 16, 4, 1)
    last = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][-1]
    kernel, offset = last.get_weights()
    last.set_weights([np.zeros_like(kernel), np.full_like(offset, bias)])
    return model


def test_an_identity_denoiser_scores_the_noisy_images_psnr(compare_weights):
    clean = np.full((20, 20), 0.5)
    noisy = clean + 0.1 * (np.indices((20, 20)).sum(axis=0) % 2)  # mean squared error 0.005
    cases = [{"level": 0.1, "clean": clean, "corrupted": noisy},
             {"level": 0.2, "clean": clean, "corrupted": clean + 0.2}]
    scores = compare_weights.mean_psnr("denoise", _network_with_last_bias(0.0), cases)
    assert scores == pytest.approx({0.1: 10 * np.log10(1 / 0.005), 0.2: 10 * np.log10(1 / 0.04)})


def test_the_colour_network_is_scored_on_all_three_channels(compare_weights):
    rng = np.random.default_rng(5)
    clean = rng.uniform(0.3, 0.7, (18, 22, 3))
    cases = [{"level": 0.05, "clean": clean, "corrupted": clean}]
    exact = compare_weights.mean_psnr("denoise-colour", _network_with_last_bias(0.0, 3), cases)
    shifted = compare_weights.mean_psnr("denoise-colour", _network_with_last_bias(0.1, 3), cases)
    assert exact[0.05] > 60
    assert shifted[0.05] == pytest.approx(20.0, abs=0.1)  # every value 0.1 off


def test_an_identity_super_resolution_network_scores_cubic(compare_weights):
    rng = np.random.default_rng(6)
    clean = 0.2 + 0.6 * rng.random((36, 40))
    cubic = compare_weights.experiments.super_resolution_score(
        clean, lambda low, shape: sol5.enlarge(low, shape), 2)[0]
    scores = compare_weights.mean_psnr("superres-x2", _network_with_last_bias(0.0),
                                       [{"level": "x2", "clean": clean}])
    assert scores["x2"] == pytest.approx(cubic, abs=0.05)


def test_the_photo_sets_follow_the_task(compare_weights):
    rng = np.random.default_rng(7)
    unseen = {"a": rng.random((30, 34, 3)), "b": rng.random((28, 26, 3))}
    gray = compare_weights.photo_cases("denoise", unseen)
    assert list(gray) == ["held-out photos", "unseen photos, gray"]
    assert all(case["corrupted"].ndim == 2 for case in gray["unseen photos, gray"])
    assert len(gray["unseen photos, gray"]) == 2 * len({c["level"] for c in gray["held-out photos"]})
    colour = compare_weights.photo_cases("denoise-colour", unseen)
    assert all(case["corrupted"].shape[-1] == 3 for cases in colour.values() for case in cases)
    superres = compare_weights.photo_cases("superres-x2")
    assert list(superres) == ["held-out photos"]
    assert {case["level"] for case in superres["held-out photos"]} == {"x2"}
    assert [case["image"] for case in gray["unseen photos, gray"][::len(
        gray["unseen photos, gray"]) // 2]] == ["a", "b"]
    assert [case["image"] for case in superres["held-out photos"]] == list(
        compare_weights.experiments.held_out_photos())
    with pytest.raises(ValueError, match="task must be one of"):
        compare_weights.photo_cases("deblur")


def test_per_photo_scores_are_named_and_average_to_the_mean(compare_weights):
    clean = np.full((20, 20), 0.5)
    cases = [{"image": "flat", "level": 0.1, "clean": clean, "corrupted": clean + 0.1},
             {"image": "brighter", "level": 0.1, "clean": clean, "corrupted": clean + 0.01}]
    model = _network_with_last_bias(0.0)
    by_photo = compare_weights.photo_psnr("denoise", model, cases)
    assert by_photo == {0.1: {"flat": pytest.approx(20.0), "brighter": pytest.approx(40.0)}}
    assert compare_weights.mean_psnr("denoise", model, cases) == {0.1: pytest.approx(30.0)}
