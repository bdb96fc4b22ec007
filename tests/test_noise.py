"""The noise estimate and SURE's share of a denoiser's residual (restoration/_noise.py), and
``sure=True`` in the restore functions."""
import keras
import numpy as np
import pytest
import scipy.ndimage
import skimage.data
import skimage.util

import sol5
from restoration import _noise


def _texture(shape=(128, 128)):
    """A smooth texture in [0.25, 0.75], well clear of clipping."""
    rng = np.random.default_rng(7)
    return 0.5 + 0.25 * np.tanh(scipy.ndimage.gaussian_filter(rng.standard_normal(shape), 2) * 4)


def test_noise_estimate_reads_only_the_usable_patches():
    rng = np.random.default_rng(1)
    image = np.full((96, 128), 0.5)
    image[:, :64] += rng.normal(0, 0.1, (96, 64))
    image[:, 64:] += rng.normal(0, 0.02, (96, 64))
    usable = np.zeros((96 - 6, 128 - 6), bool)
    usable[:, :58] = True  # patches wholly in the left half
    assert abs(_noise.noise_sigma(image, usable=usable) - 0.1) < 0.01
    assert _noise.noise_sigma(image) < 0.03  # all patches: the calmer half is the least textured


def test_noise_estimate_on_a_grid_of_patches_for_large_images(monkeypatch):
    rng = np.random.default_rng(2)
    noisy = _texture((200, 240)) + rng.normal(0, 0.05, (200, 240))
    every = _noise.noise_sigma(noisy)
    monkeypatch.setattr(_noise, "NOISE_MAX_PATCHES", 4000)  # a stride of 4
    gridded = _noise.noise_sigma(noisy)
    assert gridded != every and abs(gridded - 0.05) < 0.005 and abs(every - 0.05) < 0.005


@pytest.mark.parametrize("blur", [1.0, 2.0])
def test_sure_scale_is_close_to_the_best_blend_known_from_the_clean_image(blur):
    # A Gaussian blur removes texture with the noise; the scale SURE picks without the clean
    # image must be near the one that is best with it.
    rng = np.random.default_rng(3)
    clean = _texture((160, 160))
    noisy = clean + rng.normal(0, 0.05, clean.shape)

    def denoise(image):
        return scipy.ndimage.gaussian_filter(image, blur)
    restored = denoise(noisy)
    residual = noisy - restored
    best = np.sum((noisy - clean) * residual) / np.sum(residual ** 2)
    scale = _noise.sure_residual_scale(noisy, restored, denoise)
    assert scale.shape == noisy.shape and 0 <= scale.min() and scale.max() <= 1
    # the texture is alike all over, so every block's factor is near the best single one
    assert 0 < best < 1 and np.abs(scale - best).max() < 0.15, (scale.min(), scale.max(), best)
    assert abs(np.median(scale) - best) < 0.03


def test_sure_scale_differs_between_texture_and_flat_ground():
    # A blur wipes out the checkerboard on the left but only noise on the right: the left
    # blocks must keep most of the input, the right ones take the blur.
    rng = np.random.default_rng(11)
    clean = np.full((128, 192), 0.5)
    clean[:, :96] = 0.3 + 0.4 * (np.indices((128, 96)).sum(0) % 2)
    noisy = clean + rng.normal(0, 0.03, clean.shape)
    blur = lambda image: scipy.ndimage.uniform_filter(image, 3)  # noqa: E731
    scale = _noise.sure_residual_scale(noisy, blur(noisy), blur)
    assert scale[:, :64].mean() < 0.2 and scale[:, 128:].mean() > 0.7


def test_sure_scale_is_whole_and_skips_the_probe_where_the_image_is_mostly_clipped():
    rng = np.random.default_rng(4)
    noisy = np.clip(np.ones((64, 64)) + rng.normal(0, 0.05, (64, 64)), 0, 1)  # white paper

    def never(image):
        raise AssertionError("the probe ran")
    assert _noise.sure_residual_scale(noisy, np.ones_like(noisy), never) == 1.0


def test_sure_scale_is_reproducible_for_a_seed():
    rng = np.random.default_rng(5)
    noisy = _texture((96, 96)) + rng.normal(0, 0.05, (96, 96))
    blur = lambda image: scipy.ndimage.uniform_filter(image, 5)  # noqa: E731
    first = _noise.sure_residual_scale(noisy, blur(noisy), blur, seed=3)
    np.testing.assert_array_equal(first, _noise.sure_residual_scale(noisy, blur(noisy), blur,
                                                                    seed=3))
    assert not np.array_equal(first, _noise.sure_residual_scale(noisy, blur(noisy), blur, seed=4))


def _identity_network():
    model = sol5.build_nn_model(8, 8, 2, 1)
    last = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][-1]
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    return model


def test_sure_restore_leaves_pixels_exact_where_the_network_changes_nothing():
    rng = np.random.default_rng(6)
    noisy = np.clip(_texture((80, 90)) + rng.normal(0, 0.05, (80, 90)), 0, 1)
    pixels = np.round(noisy * 255).astype(np.uint8)
    restored = sol5.restore_color_image(pixels, _identity_network(), out_dtype=np.uint8,
                                        sure=True)
    np.testing.assert_array_equal(restored, pixels)
    as_floats = sol5.restore_image(noisy, _identity_network(), sure=True)
    assert as_floats.dtype == np.float64 and as_floats.shape == noisy.shape


def test_sure_restore_blends_the_input_and_the_network_result(monkeypatch):
    rng = np.random.default_rng(8)
    noisy = np.clip(_texture((80, 90)) + rng.normal(0, 0.05, (80, 90)), 0, 1)
    model = sol5.build_nn_model(8, 8, 2, 1)
    plain = sol5.restore_image(noisy, model)
    scale = np.linspace(0, 1, noisy.size).reshape(noisy.shape)
    monkeypatch.setattr(_noise, "sure_residual_scale", lambda noisy, restored, denoise: scale)
    blended = sol5.restore_image(noisy, model, sure=True)
    np.testing.assert_allclose(blended, np.clip(noisy - scale * (noisy - plain), 0, 1), atol=1e-6)


def test_sure_is_refused_for_a_colour_network():
    rgb = np.random.default_rng(9).random((20, 24, 3))
    model = sol5.build_color_nn_model(8, 8, 2, 1)
    with pytest.raises(ValueError, match="gray network"):
        sol5.restore_color_image(rgb, model, sure=True)


def test_sure_counts_its_probe_in_the_progress_bar():
    noisy = np.clip(_texture((80, 90)) + np.random.default_rng(10).normal(0, 0.05, (80, 90)), 0, 1)

    class Bar:  # what the restore functions use of a keras.utils.Progbar
        target, done = None, 0

        def add(self, steps):
            self.done += steps
    bar = Bar()
    model = sol5.build_nn_model(8, 8, 2, 1)
    sol5.restore_color_image(noisy, model, progress=bar, sure=True)
    assert bar.target == 2 and bar.done == 2  # one tile, then the probe's tile
