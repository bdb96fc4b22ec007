"""Section 7.4 implemented: the super-resolution corruption, training and enlarging."""
import numpy as np
import pytest

import sol5


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


def test_quick_super_resolution_model():
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
