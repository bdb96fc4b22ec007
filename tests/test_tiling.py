"""Section 6 at any size: tiled restoration equals the whole-image call; colour restoration."""
import keras
import numpy as np
import pytest

import sol5
from restoration import _tiling
from restoration import _checks


def whole_image_call(model, image):
    """The reference: one call of a model built for the image's exact size, weights copied."""
    height, width = image.shape
    reference = keras.models.clone_model(model, input_tensors=keras.Input((height, width, 1)))
    reference.set_weights(model.get_weights())
    batch = (image.astype(np.float32) - 0.5)[None, :, :, None]
    return np.clip(np.asarray(reference(batch))[0, :, :, 0] + 0.5, 0, 1)


def trained_looking(model, scale=0.3):
    """Random weights large enough that every layer matters (biases too)."""
    rng = np.random.default_rng(7)
    model.set_weights([rng.normal(0, scale, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


@pytest.mark.parametrize("shape", [(61, 47), (40, 97), (1, 80), (80, 1), (33, 33)])
@pytest.mark.parametrize("blocks", [1, 7])
def test_tiled_equals_whole_image(monkeypatch, shape, blocks):
    model = trained_looking(sol5.build_nn_model(16, 16, 6, blocks))
    radius = _tiling.receptive_radius(model)
    assert radius == 2 + 2 * blocks
    window = 2 * radius + 5  # small windows, and sizes that are no multiple of the core
    monkeypatch.setattr(_tiling, "TILE", window)
    calls = []
    real = _tiling.restore_tiled
    monkeypatch.setattr(_tiling, "restore_tiled",
                        lambda image, run, *args: calls.append(image.shape) or real(image, run, *args))
    image = np.random.default_rng(1).random(shape)
    tiled = sol5.restore_image(image, model)
    np.testing.assert_allclose(tiled, whole_image_call(model, image), rtol=0, atol=1e-5)
    assert calls == [shape]


def unclipped_whole_image(model, image):
    """The network on the whole image in one call, without the final clipping."""
    batch = (image.astype(np.float32) - 0.5)[None, :, :, None]
    return np.asarray(sol5.model_for_any_size(model)(batch))[0, :, :, 0] + 0.5


@pytest.mark.parametrize("count", [2, 4, 8])
def test_symmetries_average_whole_image_restores_of_turned_and_mirrored_copies(monkeypatch, count):
    model = trained_looking(sol5.build_nn_model(8, 8, 4, 1), scale=0.2)
    monkeypatch.setattr(_tiling, "TILE", 2 * _tiling.receptive_radius(model) + 9)  # oblong tiles
    image = np.random.default_rng(4).random((37, 52))
    outputs = []
    for turns, mirrored in _tiling.SYMMETRIES[:count]:
        moved = np.rot90(image, turns)
        out = unclipped_whole_image(model, np.ascontiguousarray(moved[:, ::-1] if mirrored else moved))
        outputs.append(np.rot90(out[:, ::-1] if mirrored else out, -turns))
    averaged = sol5.restore_image(image, model, symmetries=count)
    np.testing.assert_allclose(averaged, np.clip(np.mean(outputs, axis=0), 0, 1), rtol=0, atol=1e-5)
    assert np.abs(averaged - sol5.restore_image(image, model)).max() > 1e-3  # it did average
    assert len(set(_tiling.SYMMETRIES)) == 8  # the square's eight, none twice


def test_symmetries_keep_alpha_and_16_bits_of_a_colour_network():
    model = sol5.build_color_nn_model(8, 8, 4, 1)
    rgba = np.random.default_rng(5).integers(0, 65536, (19, 26, 4), dtype=np.uint16)
    restored = sol5.restore_color_image(rgba, model, out_dtype=np.uint16, symmetries=4)
    assert restored.dtype == np.uint16 and restored.shape == rgba.shape
    np.testing.assert_array_equal(restored[..., 3], rgba[..., 3])


@pytest.mark.parametrize("count", [0, 3, 16, True, 2.5])
def test_other_symmetry_counts_are_refused(count):
    model = sol5.build_nn_model(8, 8, 2, 0)
    with pytest.raises(ValueError, match="1, 2, 4 or 8"):
        sol5.restore_image(np.zeros((8, 8)), model, symmetries=count)
    with pytest.raises(ValueError, match="1, 2, 4 or 8"):
        sol5.restore_color_image(np.zeros((8, 8, 3)), model, symmetries=count)


@pytest.mark.parametrize("length", [1, 30, 31, 449, 500, 1000, 6000])
def test_axis_plan_keeps_windows_small_and_overlapping(length):
    spans, size = _tiling.axis_tiles(length, 31, 5)
    assert size <= min(31, length)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))  # the cores meet
    if len(spans) > 1:
        assert size * len(spans) <= length + 2 * 5 * len(spans) + len(spans)  # about the overlap


def test_windows_cover_the_image_once_with_the_overlap():
    for length, window, core in [(10, 6, 2), (100, 30, 20), (31, 31, 31), (47, 16, 6)]:
        spans = _tiling.tile_starts(length, window, core)
        covered = np.zeros(length, int)
        for start, end, win in spans:
            covered[start:end] += 1
            assert 0 <= win and win + window <= length
            margin = (window - core) // 2
            assert win <= start - margin or win == 0
            assert win + window >= end + margin or win + window == length
        assert (covered == 1).all()


def test_radius_counts_dilation_and_nested_models():
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(2, 5, padding="same", dilation_rate=2)(inputs)
    inner = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(x))
    outer_in = keras.Input((None, None, 1))
    outer = keras.Model(outer_in, keras.layers.Conv2D(1, 7, padding="same")(inner(outer_in)))
    assert _tiling.receptive_radius(inner) == 4 + 1
    assert _tiling.receptive_radius(outer) == 5 + 3


def test_strided_model_is_refused_by_the_radius_and_restored_whole():
    inputs = keras.Input((16, 16, 1))
    down = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)
    up = keras.layers.UpSampling2D(2)(down)
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(up))
    with pytest.raises(ValueError, match="strides"):
        _tiling.receptive_radius(model)
    with pytest.warns(UserWarning, match="one call"):
        restored = sol5.restore_image(np.random.default_rng(0).random((32, 48)), model)
    assert restored.shape == (32, 48)


def test_progress_counts_windows(monkeypatch):
    monkeypatch.setattr(_tiling, "TILE", 20)
    model = sol5.build_nn_model(8, 8, 2, 0)
    class Counter:  # what restore_tiled uses of a keras.utils.Progbar
        target, seen = None, 0

        def add(self, n):
            self.seen += n
    progress = Counter()
    sol5.restore_color_image(np.random.default_rng(0).random((50, 30, 3)), model, progress=progress)
    # radius 2, windows of at most 20: 4 x 2 windows per channel, 3 channels
    assert progress.target == 24 and progress.seen == 24


def test_colour_is_restored_per_channel_and_alpha_untouched():
    model = trained_looking(sol5.build_nn_model(8, 8, 4, 1), scale=0.1)
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (21, 34, 4), dtype=np.uint8)
    restored = sol5.restore_color_image(rgba, model, out_dtype=np.uint8)
    assert restored.dtype == np.uint8 and restored.shape == rgba.shape
    np.testing.assert_array_equal(restored[..., 3], rgba[..., 3])
    for c in range(3):
        gray = sol5.restore_image(rgba[..., c], model)
        np.testing.assert_array_equal(restored[..., c], np.round(gray * 255).astype(np.uint8))
    as_float = sol5.restore_color_image(rgba[..., :3] / 255.0, model)
    assert as_float.dtype == np.float64 and np.abs(as_float * 255 - restored[..., :3]).max() <= 0.5 + 1e-6


def test_colour_keeps_16_bits_and_gray_stays_2d():
    model = sol5.build_nn_model(8, 8, 2, 0)
    deep = np.random.default_rng(4).integers(0, 65536, (12, 13, 3), dtype=np.uint16)
    out = sol5.restore_color_image(deep, model, out_dtype=np.uint16)
    assert out.dtype == np.uint16 and len(np.unique(out)) > 256  # not narrowed to 8 bits
    assert sol5.restore_color_image(np.random.default_rng(5).random((9, 11)), model).shape == (9, 11)


@pytest.mark.parametrize("bad, words", [(np.zeros((5, 5, 5)), "RGBA"), (np.zeros(5), "shape"),
                                        (np.full((4, 4, 3), np.nan), "NaN")])
def test_colour_refuses_bad_input(bad, words):
    with pytest.raises(ValueError, match=words):
        sol5.restore_color_image(bad, sol5.build_nn_model(8, 8, 2, 0))


def test_bfloat16_copy_computes_in_bfloat16_but_adds_the_skip_in_float32():
    model = sol5.model_for_any_size(sol5.build_nn_model(16, 16, 4, 2))
    copy = _tiling.bfloat16_copy(model)
    convolutions = [layer for layer in copy.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convolutions and all(layer.compute_dtype == "bfloat16" for layer in convolutions)
    assert all(w.dtype == "float32" for w in copy.weights)  # weights stay float32
    assert copy.layers[-1].compute_dtype == "float32" and copy.output.dtype == "float32"


def test_bfloat16_restore_is_close_and_follows_later_training(monkeypatch):
    monkeypatch.setattr(sol5._training, "bfloat16_supported", lambda: True)
    model = trained_looking(sol5.build_nn_model(16, 16, 6, 2), scale=0.2)
    image = np.random.default_rng(2).random((40, 52))
    exact = sol5.restore_image(image, model)
    fast = sol5.restore_image(image, model, precision="mixed_bfloat16")
    assert fast.dtype == np.float64 and fast.shape == image.shape
    assert 0 < np.abs(fast - exact).max() < 0.05  # rounded differently, but the same network
    trained_looking(model, scale=0.1)  # "training" after the first call must be seen
    np.testing.assert_allclose(sol5.restore_image(image, model, precision="mixed_bfloat16"),
                               sol5.restore_image(image, model), atol=0.05)
    assert np.abs(sol5.restore_image(image, model, precision="mixed_bfloat16") - fast).max() > 0.05


def test_bfloat16_falls_back_to_float32_with_a_warning(monkeypatch):
    monkeypatch.setattr(sol5._training, "bfloat16_supported", lambda: False)
    monkeypatch.setattr(_checks, "_WARNED", set())  # warn again in this test
    model = trained_looking(sol5.build_nn_model(16, 16, 4, 1), scale=0.2)
    image = np.random.default_rng(3).random((20, 30))
    with pytest.warns(UserWarning, match="float32"):
        fallback = sol5.restore_color_image(image, model, precision="mixed_bfloat16")
    np.testing.assert_array_equal(fallback, sol5.restore_image(image, model))


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision"):
        sol5.restore_image(np.zeros((8, 8)), sol5.build_nn_model(8, 8, 2, 0), precision="float16")
