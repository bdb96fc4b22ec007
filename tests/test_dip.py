"""Tests of the Deep Image Prior bonus (sol5.deep_prior_restore_image)."""

import numpy as np
import pytest
import skimage.data
import skimage.util

from restoration import _deep_prior, _noise
from sol5 import deep_prior_restore_image


def _noisy(clean, sigma, seed):
    rng = np.random.default_rng(seed)
    return np.clip(np.round((clean + rng.normal(0.0, sigma, clean.shape)) * 255) / 255, 0.0, 1.0)


@pytest.fixture(scope="module")
def camera_crop():
    """A smooth-ish 64x64 crop of the camera photo (sky and the top of the tripod)."""
    return skimage.util.img_as_float64(skimage.data.camera())[20:84, 330:394]


@pytest.mark.parametrize("shape", [(64, 64), (37, 50), (20, 30), (6, 9), (1, 40)])
def test_any_shape_comes_back_float64_and_less_noisy(shape):
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    clean = 0.5 + 0.3 * np.sin(rows / 5.0) * np.cos(cols / 7.0)  # smooth, as a photo's sky
    noisy = _noisy(clean, 0.1, 1)
    restored = deep_prior_restore_image(noisy, max_steps=40)
    assert restored.shape == shape and restored.dtype == np.float64
    assert restored.min() >= 0.0 and restored.max() <= 1.0
    assert np.mean((restored - clean) ** 2) < 0.7 * np.mean((noisy - clean) ** 2)


def test_uint8_input_is_read_on_the_i_over_255_scale():
    image = (np.random.default_rng(2).random((32, 32)) * 255).astype(np.uint8)
    restored = deep_prior_restore_image(image, max_steps=10)
    assert restored.dtype == np.float64
    np.testing.assert_allclose(restored, deep_prior_restore_image(image / 255.0, max_steps=10),
                               atol=1e-6)


def test_same_seed_same_result_and_other_seed_differs(camera_crop):
    noisy = _noisy(camera_crop, 0.1, 0)
    first = deep_prior_restore_image(noisy, seed=3, max_steps=40)
    second = deep_prior_restore_image(noisy, seed=3, max_steps=40)
    other = deep_prior_restore_image(noisy, seed=4, max_steps=40)
    np.testing.assert_allclose(first, second, rtol=0, atol=1e-6)
    assert np.abs(first - other).max() > 1e-4


def test_global_random_state_untouched(camera_crop):
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    deep_prior_restore_image(_noisy(camera_crop, 0.1, 0), max_steps=10)
    np.testing.assert_array_equal(np.random.random(3), expected)


@pytest.mark.parametrize("bad, words", [
    (np.zeros((16, 16, 3)), "rgb2gray"),
    (np.zeros(64), "2-D"),
    (np.full((8, 8), 1.5), "[0, 1]"),
    (np.full((8, 8), -0.1), "[0, 1]"),
])
def test_bad_input_raises_value_error(bad, words):
    with pytest.raises(ValueError, match=None) as info:
        deep_prior_restore_image(bad)
    assert words in str(info.value)


def test_bad_max_steps_raises(camera_crop):
    with pytest.raises(ValueError, match="max_steps"):
        deep_prior_restore_image(camera_crop, max_steps=0)


def test_denoises_camera_crop(camera_crop):
    noisy = _noisy(camera_crop, 0.1, 0)
    restored = deep_prior_restore_image(noisy)
    mse_noisy = np.mean((noisy - camera_crop) ** 2)
    mse_restored = np.mean((restored - camera_crop) ** 2)
    # Require a clear improvement (at least 2x lower error, i.e. +3 dB), not just any.
    assert mse_restored < 0.5 * mse_noisy, (mse_restored, mse_noisy)


def _texture_crop(name):
    """A 64x64 crop of a scikit-image texture, away from the benchmark's crops."""
    return skimage.util.img_as_float64(getattr(skimage.data, name)())[300:364, 100:164]


@pytest.mark.parametrize("name", ["brick", "gravel", "grass"])
@pytest.mark.parametrize("sigma", [0.05, 0.1, 0.2])
def test_noise_estimate_holds_on_texture(name, sigma):
    # Texture must not be mistaken for noise: within 15% of the true sigma, fine grass at
    # low noise included.
    estimate = _noise.noise_sigma(_noisy(_texture_crop(name), sigma, 5))
    assert abs(estimate - sigma) < 0.15 * sigma, estimate


def test_collaborative_wiener_with_clean_pilot(camera_crop):
    # With a perfect pilot the Wiener pass alone must remove most of the noise; a broken
    # transform, grouping or aggregation would not.
    noisy = _noisy(camera_crop, 0.1, 3)
    filtered = _deep_prior._collaborative_wiener(noisy, camera_crop, 0.1)
    assert filtered.shape == noisy.shape
    assert np.mean((filtered - camera_crop) ** 2) < 0.2 * np.mean((noisy - camera_crop) ** 2)


@pytest.mark.parametrize("shape", [(40, 40), (29, 45)])
def test_matching_finds_the_nearest_patches_in_any_batching(shape, monkeypatch):
    # Each group must start with its reference and hold the patches nearest to it, ordered by
    # distance; comparing many shifts at once must not change which, however they are batched.
    pilot = np.random.default_rng(7).random(shape)
    patch, step, search, group = 8, 3, 5, 16
    rows, cols = _deep_prior._match(pilot, patch, step, search, group)
    monkeypatch.setattr(_deep_prior, "DIP_MATCH_PIXELS", 1)   # one shift at a time
    one_by_one = _deep_prior._match(pilot, patch, step, search, group)
    assert np.array_equal(rows, one_by_one[0]) and np.array_equal(cols, one_by_one[1])
    references = [(i, j) for i in _deep_prior._grid(shape[0], patch, step)
                  for j in _deep_prior._grid(shape[1], patch, step)]
    for k in (0, len(references) // 2, len(references) - 1):
        i, j = references[k]
        assert (rows[k, 0], cols[k, 0]) == (i, j)
        reference = pilot[i:i + patch, j:j + patch]
        ys = range(max(0, i - search), min(shape[0] - patch, i + search) + 1)
        xs = range(max(0, j - search), min(shape[1] - patch, j + search) + 1)
        candidates = sorted(np.sum((pilot[y:y + patch, x:x + patch] - reference) ** 2)
                            for y in ys for x in xs)
        found = [np.sum((pilot[y:y + patch, x:x + patch] - reference) ** 2)
                 for y, x in zip(rows[k], cols[k])]
        np.testing.assert_allclose(found, candidates[:group], atol=1e-9)


def test_grass_at_low_noise_improves():
    # The known weak spot of the previous version: strong fine texture at sigma 0.05 came out
    # below the noisy input.
    clean = _texture_crop("grass")
    noisy = _noisy(clean, 0.05, 4)
    restored = deep_prior_restore_image(noisy)
    assert np.mean((restored - clean) ** 2) < np.mean((noisy - clean) ** 2)


@pytest.mark.parametrize("shape", [(64, 64), (37, 50), (6, 9), (1, 40)])
def test_padding_fits_the_hourglass_and_masks_only_the_image(shape):
    # Every stride-2 stage must see an even size, and padded pixels must stay out of the loss.
    image = np.random.default_rng(6).random(shape)
    target, mask = _deep_prior._pad_and_mask(image)
    factor = 2 ** _deep_prior.DIP_LEVELS
    assert target.shape[0] % factor == 0 and target.shape[1] % factor == 0
    assert target.shape[0] - shape[0] < factor and target.shape[1] - shape[1] < factor
    np.testing.assert_array_equal(target[:shape[0], :shape[1]], image)
    assert mask.sum() == image.size and mask[:shape[0], :shape[1]].all()


@pytest.mark.parametrize("share, passes", [(0.5, 2), (0.99, 2), (1.0, 1), (2.0, 1)])
def test_second_wiener_pass_only_at_low_estimated_noise(share, passes, monkeypatch):
    # Each pass is guided by the clipped result before it; the network's estimate guides the first.
    calls = []

    def recorded_pass(noisy, pilot, sigma):
        calls.append(pilot)
        return pilot + 0.3   # pushes values past 1, which the clip must undo

    monkeypatch.setattr(_deep_prior, "_collaborative_wiener", recorded_pass)
    noisy = np.random.default_rng(10).random((16, 16))
    pilot = np.full((16, 16), 0.8)
    restored = _deep_prior._guided_wiener(noisy, pilot, share * _deep_prior.DIP_REPILOT_SIGMA)
    assert len(calls) == passes and calls[0] is pilot
    if passes == 2:
        np.testing.assert_array_equal(calls[1], np.ones((16, 16)))
    np.testing.assert_array_equal(restored, np.ones((16, 16)))


@pytest.mark.parametrize("shape", [(1, 8, 8, 16), (1, 5, 12, 28)])
def test_pointwise_product_is_the_1x1_convolution(shape):
    rng = np.random.default_rng(7)
    tf = _deep_prior.tf
    x = tf.constant(rng.normal(size=shape), tf.float32)
    kernel = tf.constant(rng.normal(size=(1, 1, shape[-1], 5)), tf.float32)
    product = _deep_prior._pointwise(x, kernel).numpy()
    assert product.shape == shape[:3] + (5,)
    np.testing.assert_allclose(product, tf.nn.conv2d(x, kernel, 1, "SAME").numpy(),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("top_kernel", [1, 3])
def test_only_the_decoders_full_size_stage_takes_the_top_kernel(top_kernel, monkeypatch):
    monkeypatch.setattr(_deep_prior, "DIP_TOP_KERNEL", top_kernel)
    both = _deep_prior.DIP_DOWN_CHANNELS + _deep_prior.DIP_SKIP_CHANNELS
    decoder_kernels = [s for s in _deep_prior._param_shapes() if len(s) == 4 and s[2] == both]
    # The decoder's stages run coarsest first, so the full-size stage is the last one.
    assert [k[:2] for k in decoder_kernels] == [(3, 3)] * (_deep_prior.DIP_LEVELS - 1) + [
        (top_kernel, top_kernel)]
    tf = _deep_prior.tf
    params = [tf.constant(p) for p in _deep_prior._initial_params(np.random.default_rng(8))]
    z = tf.constant(np.random.default_rng(9).random((1, 16, 24, _deep_prior.DIP_INPUT_CHANNELS)),
                    tf.float32)
    image = _deep_prior._forward(params, z).numpy()
    assert image.shape == (1, 16, 24, 1) and ((image > 0) & (image < 1)).all()


def test_one_flat_vector_holds_every_parameter_in_order():
    initial = _deep_prior._initial_params(np.random.default_rng(3))
    flat = _deep_prior._flatten(initial)
    assert flat.dtype == np.float32 and flat.size == sum(p.size for p in initial)
    fitter = _deep_prior._fitter_for(16, 16)
    pieces = np.split(flat, np.cumsum(fitter.sizes)[:-1])
    for piece, shape, value in zip(pieces, fitter.shapes, initial):
        np.testing.assert_array_equal(piece.reshape(shape), value)
