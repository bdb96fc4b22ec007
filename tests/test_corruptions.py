"""Section 7: noise, motion blur and the kernel."""
import numpy as np
import pytest
import scipy.ndimage

import sol5
import sol5_utils


def on_255_grid(image):
    return np.allclose(image * 255, np.round(image * 255), atol=1e-9)


def test_gaussian_noise_is_rounded_and_clipped():
    image = np.random.uniform(0, 1, (64, 64))
    noisy = sol5.add_gaussian_noise(image, 0.3, 0.5)
    assert noisy.shape == image.shape and noisy.dtype == np.float64
    assert on_255_grid(noisy)
    assert noisy.min() == 0.0 and noisy.max() == 1.0  # this much noise must hit both bounds


def test_gaussian_noise_has_the_requested_sigma():
    image = np.full((200, 200), 0.5)
    noisy = sol5.add_gaussian_noise(image, 0.1, 0.1)
    assert abs((noisy - image).std() - 0.1) < 0.005
    assert abs((noisy - image).mean()) < 0.005


def test_gaussian_noise_sigma_is_drawn_from_the_range():
    image = np.full((100, 100), 0.5)
    stds = [(sol5.add_gaussian_noise(image, 0.02, 0.08) - image).std() for _ in range(40)]
    assert 0.015 < min(stds) and max(stds) < 0.085
    assert max(stds) - min(stds) > 0.03  # sigma really varies


def test_zero_sigma_only_rounds():
    image = np.random.uniform(0, 1, (10, 10))
    np.testing.assert_allclose(sol5.add_gaussian_noise(image, 0, 0), np.round(image * 255) / 255)


def test_bad_sigmas_are_refused():
    image = np.zeros((8, 8))
    with pytest.raises(ValueError, match="swap"):
        sol5.add_gaussian_noise(image, 0.2, 0.1)
    with pytest.raises(ValueError, match="non-negative"):
        sol5.add_gaussian_noise(image, -0.1, 0.1)


@pytest.mark.parametrize("size", [1, 3, 7, 15])
@pytest.mark.parametrize("angle", [0.0, 0.4, np.pi / 2, 2.0, 3 * np.pi / 4, 3.1])
def test_kernel_is_normalised_square_and_centred(size, angle):
    kernel = sol5_utils.motion_blur_kernel(size, angle)
    assert kernel.shape == (size, size)
    assert kernel.sum() == pytest.approx(1.0)
    assert kernel.min() >= 0
    assert kernel[size // 2, size // 2] > 0
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1])  # a line through the centre
    assert np.count_nonzero(kernel) == size  # one pixel per row or column


def test_kernel_directions():
    horizontal = sol5_utils.motion_blur_kernel(5, 0.0)
    assert np.count_nonzero(horizontal[2]) == 5
    vertical = sol5_utils.motion_blur_kernel(5, np.pi / 2)
    assert np.count_nonzero(vertical[:, 2]) == 5
    # 3*pi/4: from the upper left to the lower right (the assignment's figure)
    np.testing.assert_allclose(sol5_utils.motion_blur_kernel(5, 3 * np.pi / 4), np.eye(5) / 5)
    # pi/4: from the lower left to the upper right
    np.testing.assert_allclose(sol5_utils.motion_blur_kernel(5, np.pi / 4), np.fliplr(np.eye(5)) / 5)


@pytest.mark.parametrize("size", [0, 2, 6, -3, 7.0, True])
def test_bad_kernel_sizes_are_refused(size):
    with pytest.raises(ValueError, match="odd positive"):
        sol5_utils.motion_blur_kernel(size, 0.0)
    with pytest.raises(ValueError, match="odd positive"):
        sol5.add_motion_blur(np.zeros((9, 9)), size, 0.0)
    with pytest.raises(ValueError, match="odd positive"):
        sol5.random_motion_blur(np.zeros((9, 9)), [7, size])


@pytest.mark.parametrize("angle", [-0.1, np.pi + 0.01, 4.0, np.nan])
def test_angles_outside_0_pi_are_refused(angle):
    with pytest.raises(ValueError, match="pi"):
        sol5_utils.motion_blur_kernel(7, angle)


def test_angle_pi_is_the_same_line_as_zero():
    """The course's helper accepts the closed range [0, pi]; pi draws angle 0's line."""
    np.testing.assert_array_equal(sol5_utils.motion_blur_kernel(7, np.pi),
                                  sol5_utils.motion_blur_kernel(7, 0.0))


def test_motion_blur_convolves_with_the_kernel():
    image = np.random.uniform(0, 1, (30, 40))
    expected = scipy.ndimage.convolve(image, sol5_utils.motion_blur_kernel(7, 1.0))
    np.testing.assert_allclose(sol5.add_motion_blur(image, 7, 1.0), expected)


def test_motion_blur_of_a_dot_draws_the_line():
    image = np.zeros((21, 21))
    image[10, 10] = 1.0
    blurred = sol5.add_motion_blur(image, 7, 0.0)
    np.testing.assert_allclose(blurred[10, 7:14], 1 / 7)
    assert blurred.sum() == pytest.approx(1.0)


def test_motion_blur_uses_the_helper_kernel(monkeypatch):
    # a grader may drop in the course's own helper: its kernel must be the one used
    box = np.ones((3, 3)) / 9
    monkeypatch.setattr(sol5_utils, "motion_blur_kernel", lambda size, angle: box)
    image = np.random.uniform(0, 1, (12, 12))
    np.testing.assert_allclose(sol5.add_motion_blur(image, 3, 0.5), scipy.ndimage.convolve(image, box))


def test_random_motion_blur_is_rounded_and_uses_listed_sizes():
    image = np.zeros((31, 31))
    image[15, 15] = 1.0
    spans = set()
    for _ in range(30):
        blurred = sol5.random_motion_blur(image, [3, 9])
        assert on_255_grid(blurred) and blurred.min() >= 0 and blurred.max() <= 1
        rows, cols = np.nonzero(blurred)
        spans.add(max(np.ptp(rows), np.ptp(cols)) + 1)
    assert spans == {3, 9}


def test_random_motion_blur_needs_sizes():
    with pytest.raises(ValueError, match="empty"):
        sol5.random_motion_blur(np.zeros((9, 9)), [])


def test_corruptions_refuse_rgb_and_convert_uint8():
    with pytest.raises(ValueError, match="2-D"):
        sol5.add_gaussian_noise(np.zeros((9, 9, 3)), 0, 0.1)
    with pytest.raises(ValueError, match="2-D"):
        sol5.add_motion_blur(np.zeros((9, 9, 3)), 3, 0.0)
    as_uint8 = np.full((9, 9), 51, np.uint8)
    np.testing.assert_allclose(sol5.add_gaussian_noise(as_uint8, 0, 0), 0.2)
