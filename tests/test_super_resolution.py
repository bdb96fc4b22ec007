"""Section 7.4 implemented: the super-resolution corruption, training and enlarging."""
import pathlib

import imageio.v3 as iio
import numpy as np
import pytest

from restoration import _corruption
import sol5
import sol5_utils


@pytest.mark.parametrize("scale", [2, 3])
@pytest.mark.parametrize("shape", [(72, 72), (61, 47)])
def test_lose_resolution_keeps_shape_and_grid(scale, shape):
    image = np.random.uniform(0, 1, shape)
    corrupted = sol5.lose_resolution(image, scale)
    assert corrupted.shape == shape
    assert np.allclose(corrupted * 255, np.round(corrupted * 255))
    assert corrupted.min() >= 0 and corrupted.max() <= 1


def test_lose_resolution_removes_fine_detail_only():
    rows = np.arange(64)[:, None] * np.ones((1, 64))
    fine = 0.5 + 0.4 * np.cos(np.pi * rows)          # period 2: gone after shrinking by 2
    coarse = 0.5 + 0.4 * np.cos(2 * np.pi * rows / 32)  # period 32: survives
    assert np.abs(sol5.lose_resolution(fine, 2) - 0.5).max() < 0.1
    assert np.abs(sol5.lose_resolution(coarse, 2) - coarse)[8:-8].max() < 0.03


@pytest.mark.parametrize("scale, low, high", [(2, (17, 23), (34, 46)), (3, (17, 23), (51, 69))])
def test_super_resolve_shapes(scale, low, high):
    model = sol5.build_nn_model(24, 24, 4, 1)
    result = sol5.super_resolve_image(np.random.uniform(0, 1, low), model, scale)
    assert result.shape == high and result.dtype == np.float64
    assert result.min() >= 0 and result.max() <= 1


def test_quick_super_resolution_model_trains_on_the_super_resolution_list(no_course_data,
                                                                          write_images):
    photos = write_images(no_course_data / "image_dataset" / "train", [(90, 100)] * 6)
    assert sorted(sol5_utils.images_for_super_resolution()) == sorted(photos)
    model = sol5.learn_super_resolution_model(num_res_blocks=1, quick_mode=True, scale=3)
    assert model.input_shape == (None, 24, 24, 1)
    assert sol5.super_resolve_image(np.random.uniform(0, 1, (20, 30)), model, 3).shape == (60, 90)


@pytest.mark.parametrize("scale", [1, 1.5, 0, -2, np.nan])
def test_scale_below_two_is_refused(scale):
    model = sol5.build_nn_model(8, 8, 2, 0)
    with pytest.raises(ValueError, match="scale must be a number >= 2"):
        sol5.super_resolve_image(np.zeros((10, 10)), model, scale)
    with pytest.raises(ValueError, match="scale must be a number >= 2"):
        sol5.learn_super_resolution_model(quick_mode=True, scale=scale)


@pytest.mark.parametrize("scale", [2, 3])
def test_patch_form_of_lose_resolution_matches_the_whole_image(scale):
    """A window whose shifted part starts on the image's low-resolution grid gives the image's
    own result at the patch, up to the cut edges' faint effect and i/255 rounding."""
    import scipy.ndimage
    rng = np.random.default_rng(scale)
    image = np.clip(scipy.ndimage.gaussian_filter(rng.random((240, 240)), 1.5) * 4 - 1.5, 0, 1)
    whole = sol5.lose_resolution(image, scale)
    margin, patch = _corruption.resolution_margin(scale), 24
    starts = [(60, 90), (61, 100), (95, 62), (100, 101)]
    phases = np.array([[(-r) % scale, (-c) % scale] for r, c in starts])  # onto the image's grid
    windows = np.stack([image[r:r + patch + 2 * margin, c:c + patch + 2 * margin]
                        for r, c in starts]).astype(np.float32)
    centres = _corruption.resolution_loss_on_patches(windows, scale, sol5.lose_resolution,
                                                     phases)
    expected = np.stack([whole[r + margin:r + margin + patch, c + margin:c + margin + patch]
                         for r, c in starts])
    assert centres.shape == expected.shape
    assert np.abs(centres - expected).max() <= 1 / 255 + 1e-6
    levels, expected_levels = np.round(centres * 255), np.round(expected * 255)
    assert np.mean(levels != expected_levels) < 0.01
    # with another phase the grid falls elsewhere on the patch, and the result differs
    other = _corruption.resolution_loss_on_patches(windows, scale, sol5.lose_resolution,
                                                   (phases + 1) % scale)
    assert np.mean(np.round(other * 255) != expected_levels) > 0.1


def test_super_resolution_corruption_is_batched_for_integer_scales_only():
    assert sol5.super_resolution_corruption(2).patch_form.margin == 12
    assert sol5.super_resolution_corruption(3).patch_form.augment
    assert not hasattr(sol5.super_resolution_corruption(2.5), "patch_form")


def test_super_resolution_batches_are_the_corruption_of_their_targets(tmp_path):
    """Through load_dataset's batched path: every source patch is a blurred copy of its target."""
    rng = np.random.default_rng(0)
    folder = pathlib.Path(tmp_path)
    iio.imwrite(folder / "a.png", (rng.random((100, 120)) * 255).astype(np.uint8))
    np.random.seed(0)
    source, target = next(sol5.load_dataset([str(folder / "a.png")], 8,
                                            sol5.super_resolution_corruption(2), (24, 24)))
    assert source.shape == target.shape == (8, 24, 24, 1)
    # shrinking removes most of the energy of white noise: the source is much smoother
    assert np.std(np.diff(source, axis=1)) < 0.6 * np.std(np.diff(target, axis=1))
    assert np.all(np.abs(np.round((source + 0.5) * 255) - (source + 0.5) * 255) < 1e-3)  # i/255
