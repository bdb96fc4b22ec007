"""The colour network (figure 1's design with three channels) and restoring colour images with it."""
import keras
import numpy as np
import pytest

import sol5
from restoration import _tiling


def zero_residual(model):
    """The network with its last convolution zeroed: it returns its input exactly."""
    last = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][-1]
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    return model


def test_colour_network_is_figure_1_with_three_channels():
    model = sol5.build_color_nn_model(16, 20, 8, 2)
    assert model.input_shape == (None, 16, 20, 3) and model.output_shape == (None, 16, 20, 3)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert kinds <= {"InputLayer", "Conv2D", "Activation", "Add"}
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [8] * 5 + [3]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" for c in convs)
    assert isinstance(model.layers[-1], keras.layers.Add)  # the global skip
    assert sol5.build_nn_model(16, 20, 8, 2).output_shape == (None, 16, 20, 1)  # graded: gray


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_zero_residual_leaves_rgba_pixels_exact_and_alpha_untouched(dtype):
    model = zero_residual(sol5.build_color_nn_model(16, 16, 4, 1))
    top = np.iinfo(dtype).max
    pixels = np.random.default_rng(0).integers(0, top + 1, (37, 29, 4)).astype(dtype)
    restored = sol5.restore_color_image(pixels, model, out_dtype=dtype)
    assert restored.dtype == dtype and restored.shape == pixels.shape
    np.testing.assert_array_equal(restored, pixels)


def test_colour_network_restores_the_channels_together():
    model = sol5.build_color_nn_model(16, 16, 6, 1)
    for weight in model.weights:  # large random weights, so every output reads every input
        weight.assign(np.random.default_rng(1).normal(0, 0.3, weight.shape))
    image = np.random.default_rng(2).random((24, 24, 3))
    changed = image.copy()
    changed[..., 1] = 1.0 - changed[..., 1]  # only green differs
    first, second = (sol5.restore_color_image(x, model) for x in (image, changed))
    assert first.dtype == np.float64 and first.shape == (24, 24, 3)
    assert np.abs(first[..., 0] - second[..., 0]).max() > 1e-3  # red saw green


def test_tiled_colour_restore_equals_the_whole_image_call(monkeypatch):
    model = sol5.build_color_nn_model(16, 16, 4, 2)
    for weight in model.weights:
        weight.assign(np.random.default_rng(3).normal(0, 0.2, weight.shape))
    image = np.random.default_rng(4).random((53, 41, 3)).astype(np.float32)
    whole = np.clip(np.asarray(sol5.model_for_any_size(model)(image[None] - 0.5))[0] + 0.5, 0, 1)
    radius = _tiling.receptive_radius(model)
    monkeypatch.setattr(_tiling, "TILE", 2 * radius + 7)
    assert _tiling.tile_count(image.shape[:2], radius) > 1
    np.testing.assert_allclose(sol5.restore_color_image(image, model), whole, atol=1e-5)


def test_colour_and_gray_networks_refuse_the_other_kind_of_image():
    colour = sol5.build_color_nn_model(16, 16, 4, 1)
    with pytest.raises(ValueError, match="colour network restores RGB"):
        sol5.restore_color_image(np.zeros((20, 20)), colour)
    with pytest.raises(ValueError, match="gray network"):
        sol5.restore_image(np.zeros((20, 20)), colour)


def test_command_line_restores_colour_files_with_the_colour_network(tmp_path):
    import imageio.v3 as iio
    from restoration import cli
    gray_model = sol5.build_nn_model(8, 8, 4, 1)  # random weights: it changes its input
    gray_model.save(tmp_path / "gray.keras")
    zero_residual(sol5.build_color_nn_model(8, 8, 4, 1)).save(tmp_path / "colour.keras")
    rgb = np.random.default_rng(5).integers(0, 256, (21, 30, 3), dtype=np.uint8)
    gray = rgb[..., 0].copy()
    iio.imwrite(tmp_path / "rgb.png", rgb)
    iio.imwrite(tmp_path / "gray.png", gray)
    for name in ("rgb", "gray"):
        cli.main(["restore", "--task", "denoise", "--model", str(tmp_path / "gray.keras"),
                  "--colour-model", str(tmp_path / "colour.keras"), "--precision", "float32",
                  str(tmp_path / f"{name}.png"), str(tmp_path / f"{name}_out.png")])
    np.testing.assert_array_equal(iio.imread(tmp_path / "rgb_out.png"), rgb)  # colour network
    np.testing.assert_array_equal(iio.imread(tmp_path / "gray_out.png"),
                                  sol5.restore_color_image(gray, gray_model, out_dtype=np.uint8))
    with pytest.raises(SystemExit, match="colour-model"):
        cli.main(["restore", "--task", "denoise", "--model", str(tmp_path / "gray.keras"),
                  "--colour-model", str(tmp_path / "missing.keras"),
                  str(tmp_path / "rgb.png"), str(tmp_path / "x.png")])


def test_opponent_space_round_trip_with_a_zero_residual_gray_network_is_exact():
    model = zero_residual(sol5.build_nn_model(16, 16, 4, 1))
    rgba = np.random.default_rng(6).integers(0, 256, (25, 31, 4), dtype=np.uint8)
    restored = sol5.restore_color_image(rgba, model, out_dtype=np.uint8, colour_space="opponent")
    np.testing.assert_array_equal(restored, rgba)


def test_opponent_space_restores_the_mean_and_differences_not_the_channels():
    model = sol5.build_nn_model(16, 16, 4, 1)
    for weight in model.weights:
        weight.assign(np.random.default_rng(7).normal(0, 0.3, weight.shape))
    rgb = np.random.default_rng(8).random((20, 22, 3))
    opponent = sol5.to_opponent(rgb)
    expected = np.clip(sol5.from_opponent(np.stack(
        [sol5.restore_image(opponent[..., c], model) for c in range(3)], axis=-1)), 0, 1)
    got = sol5.restore_color_image(rgb, model, colour_space="opponent")
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(got - sol5.restore_color_image(rgb, model)).max() > 1e-3
    with pytest.raises(ValueError, match="colour_space"):
        sol5.restore_color_image(rgb, model, colour_space="lab")


def test_restore_takes_the_default_colour_denoiser_only_without_a_model(tmp_path, monkeypatch):
    import imageio.v3 as iio
    from restoration import cli
    outputs = tmp_path / "outputs"  # conftest points SOL5_OUTPUTS here
    outputs.mkdir()
    gray_model = sol5.build_nn_model(8, 8, 4, 1)  # random weights: it changes its input
    gray_model.save(outputs / "denoise.keras")
    zero_residual(sol5.build_color_nn_model(8, 8, 4, 1)).save(tmp_path / "colour.keras")
    monkeypatch.setattr(cli, "COLOUR_DENOISER", tmp_path / "colour.keras")
    rgb = np.random.default_rng(9).integers(0, 256, (19, 23, 3), dtype=np.uint8)
    iio.imwrite(tmp_path / "rgb.png", rgb)
    common = ["restore", "--task", "denoise", "--precision", "float32", str(tmp_path / "rgb.png")]
    cli.main(common + [str(tmp_path / "default.png")])
    np.testing.assert_array_equal(iio.imread(tmp_path / "default.png"), rgb)  # colour network
    cli.main(common + [str(tmp_path / "named.png"), "--model", str(outputs / "denoise.keras")])
    np.testing.assert_array_equal(iio.imread(tmp_path / "named.png"),
                                  sol5.restore_color_image(rgb, gray_model, out_dtype=np.uint8))
