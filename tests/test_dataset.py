"""Section 3: the patch generator."""
import numpy as np
import pytest
import scipy.ndimage

from restoration import _corruption
from restoration import _training
import sol5
import sol5_utils


def identity(image):
    return image.copy()


def test_batches_have_the_promised_shape_dtype_and_range(small_images):
    source, target = next(sol5.load_dataset(small_images, 7, identity, (24, 20)))
    for batch in (source, target):
        assert batch.shape == (7, 24, 20, 1)
        assert batch.dtype == np.float64
        assert batch.min() >= -0.5 and batch.max() <= 0.5


def test_patches_are_shifted_by_minus_half(tmp_path):
    # a constant image of value 200/255 must come out as 200/255 - 0.5
    import imageio.v3 as iio
    path = tmp_path / "flat.png"
    iio.imwrite(path, np.full((90, 90), 200, np.uint8))
    source, target = next(sol5.load_dataset([str(path)], 3, identity, (24, 24)))
    np.testing.assert_allclose(target, 200 / 255 - 0.5, atol=1e-6)
    np.testing.assert_allclose(source, 200 / 255 - 0.5, atol=1e-6)


def test_source_is_the_corrupted_target_at_the_same_place(small_images):
    # an invertible, position-dependent corruption: source must equal f(target) exactly
    def flip_values(image):
        return 1.0 - image
    source, target = next(sol5.load_dataset(small_images, 16, flip_values, (24, 24)))
    np.testing.assert_allclose(source + 0.5, 1.0 - (target + 0.5), atol=1e-6)


def test_target_is_a_real_crop_of_an_image(tmp_path):
    # every pixel value is unique, so the crop position can be read back
    import imageio.v3 as iio
    image = (np.arange(100 * 120).reshape(100, 120) % 65536).astype(np.uint16)
    path = tmp_path / "ramp.png"
    iio.imwrite(path, image)
    _, target = next(sol5.load_dataset([str(path)], 5, identity, (10, 12)))
    values = np.rint((target[..., 0] + 0.5) * 65535).astype(int)
    for patch in values:
        row, col = divmod(int(patch[0, 0]), 120)
        np.testing.assert_array_equal(patch, image[row:row + 10, col:col + 12])


def test_corruption_sees_a_crop_three_times_the_patch(small_images):
    seen = []

    def record(image):
        seen.append(image.shape)
        return image
    next(sol5.load_dataset(small_images, 4, record, (10, 8)))
    assert seen == [(30, 24)] * 4


def test_each_file_is_read_once(small_images, monkeypatch):
    calls = []
    real_read = sol5.read_image

    def counting_read(name, representation):
        calls.append(name)
        return real_read(name, representation)
    monkeypatch.setattr(sol5, "read_image", counting_read)
    data = sol5.load_dataset(small_images[:2], 10, identity, (8, 8))
    for _ in range(5):
        next(data)
    assert sorted(calls) == sorted(small_images[:2])


def test_images_are_drawn_from_the_whole_list(small_images, monkeypatch):
    calls = []
    real_read = sol5.read_image
    monkeypatch.setattr(sol5, "read_image", lambda n, r: calls.append(n) or real_read(n, r))
    next(sol5.load_dataset(small_images, 200, identity, (8, 8)))
    assert set(calls) == set(small_images)


def test_empty_file_list_is_refused():
    with pytest.raises(ValueError, match="empty"):
        sol5.load_dataset([], 10, identity, (24, 24))


@pytest.mark.parametrize("batch_size", [0, -3, 2.5])
def test_bad_batch_size_is_refused(small_images, batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        sol5.load_dataset(small_images, batch_size, identity, (24, 24))


def test_bad_crop_size_is_refused(small_images):
    with pytest.raises(ValueError, match="crop"):
        sol5.load_dataset(small_images, 4, identity, (24,))
    with pytest.raises(ValueError, match="crop"):
        sol5.load_dataset(small_images, 4, identity, (0, 24))


def test_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not an image")
    with pytest.raises(ValueError, match="broken.png"):
        next(sol5.load_dataset([str(bad)], 2, identity, (8, 8)))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        next(sol5.load_dataset([str(tmp_path / "nowhere.png")], 2, identity, (8, 8)))


def test_image_smaller_than_the_patch_is_refused(tmp_path, write_images):
    paths = write_images(tmp_path, [(20, 40)])
    with pytest.raises(ValueError, match="smaller than the patch"):
        next(sol5.load_dataset(paths, 2, identity, (24, 24)))


def test_image_smaller_than_three_patches_warns_and_still_works(tmp_path, write_images):
    paths = write_images(tmp_path, [(30, 50)])
    with pytest.warns(UserWarning, match="smaller than 3x"):
        source, _ = next(sol5.load_dataset(paths, 3, identity, (24, 24)))
    assert source.shape == (3, 24, 24, 1)


def test_corruption_that_changes_the_shape_is_reported(small_images):
    with pytest.raises(ValueError, match="keep the shape"):
        next(sol5.load_dataset(small_images, 2, lambda im: im[1:], (8, 8)))


# --- the batched ("window") form of a corruption -----------------------------------------------

def fixed_blur(angle):
    """A deterministic blur, plain and with a window form, to compare the two data paths."""
    kernel = sol5_utils.motion_blur_kernel(7, angle)

    def plain(image):
        return sol5.add_motion_blur(image, 7, angle)

    @_corruption.with_patch_form(3, lambda w: _corruption.motion_blur_on_patches(
        w, kernel[None], np.zeros(len(w), int)))
    def windowed(image):
        return plain(image)
    return plain, windowed


@pytest.mark.parametrize("angle", [0.0, 0.4, 2.0])
def test_patch_form_gives_the_patches_of_corrupting_the_large_crop(small_images, angle):
    # same seed, same positions: the window path must reproduce the assignment's recipe,
    # including the mirrored border where a patch touches the edge of its large crop
    plain, windowed = fixed_blur(angle)
    np.random.seed(3)
    source_plain, target_plain = next(sol5.load_dataset(small_images, 300, plain, (12, 10)))
    np.random.seed(3)
    source_fast, target_fast = next(sol5.load_dataset(small_images, 300, windowed, (12, 10)))
    np.testing.assert_allclose(target_fast, target_plain, atol=1e-6)
    np.testing.assert_allclose(source_fast, source_plain, atol=1e-6)


def test_patch_form_is_used_instead_of_the_function(small_images):
    calls = []

    @_corruption.with_patch_form(0, lambda windows: 1.0 - windows)
    def flip(image):
        calls.append(image.shape)
        return 1.0 - image
    source, target = next(sol5.load_dataset(small_images, 8, flip, (10, 10)))
    assert calls == []
    np.testing.assert_allclose(source + 0.5, 1.0 - (target + 0.5), atol=1e-6)


def test_patch_form_wider_than_the_patch_falls_back_to_the_function(small_images):
    calls = []

    @_corruption.with_patch_form(9, lambda windows: windows[:, 9:-9, 9:-9])
    def identity_logged(image):
        calls.append(image.shape)
        return image
    next(sol5.load_dataset(small_images, 4, identity_logged, (8, 8)))
    assert calls == [(24, 24)] * 4


def test_patch_form_of_the_wrong_shape_is_reported(small_images):
    @_corruption.with_patch_form(1, lambda windows: windows)  # forgot to cut the border
    def broken(image):
        return image
    with pytest.raises(ValueError, match="patch form"):
        next(sol5.load_dataset(small_images, 2, broken, (8, 8)))


def test_random_motion_blur_on_patches_matches_scipy_with_the_drawn_kernel():
    import scipy.ndimage
    windows = np.random.rand(60, 22, 22).astype(np.float32)
    state = np.random.get_state()
    blurred = _corruption.random_motion_blur_on_patches(windows, [7], sol5_utils.motion_blur_kernel)
    np.random.set_state(state)
    angles = np.random.uniform(0, np.pi, 60)  # the draws the window form makes first
    expected = np.stack([sol5.quantize(scipy.ndimage.convolve(
        window.astype(float), sol5_utils.motion_blur_kernel(7, angle))[3:-3, 3:-3])
        for window, angle in zip(windows, angles)])
    assert blurred.shape == (60, 16, 16)
    off = np.abs(blurred - expected)
    assert off.max() <= 1 / 255 + 1e-6  # float32 arithmetic may flip a rounding
    assert np.mean(off > 1e-6) < 0.01


def test_batched_blur_takes_its_kernels_from_the_given_function():
    """A grader's sol5_utils brings its own kernel: the batched blur must use exactly that one."""
    calls = []

    def vertical_kernel(size, angle):  # another convention: every angle drawn vertically
        calls.append((size, angle))
        kernel = np.zeros((size, size))
        kernel[:, size // 2] = 1 / size
        return kernel
    windows = np.random.rand(40, 22, 22).astype(np.float32)
    blurred = _corruption.random_motion_blur_on_patches(windows, [7], vertical_kernel)
    expected = sol5.quantize(np.stack([scipy.ndimage.convolve(
        window.astype(float), vertical_kernel(7, 0.0))[3:-3, 3:-3] for window in windows]))
    assert len(calls) == 40 + 40 and all(size == 7 and 0 <= angle < np.pi for size, angle in calls)
    assert np.abs(blurred - expected).max() <= 1 / 255 + 1e-6


def test_deblurring_corruption_blurs_with_the_course_helpers_kernel(small_images, monkeypatch):
    seen = []
    real = sol5_utils.motion_blur_kernel
    monkeypatch.setattr(sol5_utils, "motion_blur_kernel",
                        lambda size, angle: seen.append(size) or real(size, angle))
    next(sol5.load_dataset(small_images, 20, sol5.deblurring_corruption, (16, 16)))
    assert len(seen) >= 20


def test_random_motion_blur_on_patches_mixes_kernel_sizes():
    windows = np.zeros((200, 15, 15), np.float32)
    windows[:, 7, 7] = 1.0  # an impulse: the blurred centre shows the kernel's size
    blurred = _corruption.random_motion_blur_on_patches(windows, [3, 7],
                                                        sol5_utils.motion_blur_kernel)
    assert blurred.shape == (200, 9, 9)
    taps = (blurred > 0).sum(axis=(1, 2))
    assert set(taps.tolist()) == {3, 7}


def test_denoising_batches_carry_one_random_sigma_per_patch_on_the_i_over_255_grid(small_images):
    source, target = next(sol5.load_dataset(small_images, 400, sol5.denoising_corruption, (24, 24)))
    values = (source + 0.5) * 255
    np.testing.assert_allclose(values, np.round(values), atol=1e-3)
    assert source.min() >= -0.5 and source.max() <= 0.5
    spread = (source - target).std(axis=(1, 2, 3))
    assert spread.max() < 0.2 + 0.02
    # sigma is drawn uniformly from [0, 0.2] for each patch, not once per batch
    assert spread.min() < 0.02 and spread.max() > 0.17
    low, high = np.quantile(spread, [0.25, 0.75])
    assert 0.03 < low < 0.08 and 0.12 < high < 0.17


def test_deblurring_batches_are_blurred_targets(small_images):
    source, target = next(sol5.load_dataset(small_images, 50, sol5.deblurring_corruption, (16, 16)))
    values = (source + 0.5) * 255
    np.testing.assert_allclose(values, np.round(values), atol=1e-3)
    # a blur keeps the mean and lowers the local contrast of random-noise images
    assert np.abs(source.mean() - target.mean()) < 0.01
    assert np.abs(np.diff(source, axis=2)).mean() < 0.7 * np.abs(np.diff(target, axis=2)).mean()


def test_fit_feed_continues_one_stream_across_iterators():
    import tensorflow as tf

    def numbered(count=100, rows=_corruption.SAMPLES_PER_CHUNK // 4):
        for i in range(count):
            yield (np.full((rows, 3), i, np.float32), np.full((rows, 3), -i, np.float32))
    feed = _training.fit_feed(numbered())
    assert isinstance(feed, tf.data.Dataset)
    first = [int(x[0, 0]) for x, _ in feed.take(3)]
    second = [int(x[0, 0]) for x, _ in feed.take(3)]
    assert first == [0, 1, 2]
    # a new iterator goes on where the stream is (batches read ahead by the old one are dropped)
    assert first[-1] < second[0] <= 12 and second == list(range(second[0], second[0] + 3))
    # a finite generator ends the feed, with its last short group
    assert [int(x[0, 0]) for x, _ in _training.fit_feed(numbered(6))] == list(range(6))


def test_fit_feed_hands_the_float64_batches_to_the_network_as_float32(small_images):
    feed = _training.fit_feed(sol5.load_dataset(small_images, 5, identity, (16, 16)))
    source, target = next(iter(feed))
    assert source.dtype == target.dtype == "float32" and tuple(source.shape) == (5, 16, 16, 1)


@pytest.mark.parametrize("margin", [-1, 1.5, True])
def test_patch_form_needs_a_whole_margin(margin):
    with pytest.raises(ValueError, match="margin"):
        _corruption.with_patch_form(margin, lambda windows: windows)


def test_random_symmetries_draw_all_eight_evenly():
    window = np.arange(9.0).reshape(1, 3, 3)
    np.random.seed(0)
    seen = [tuple(_corruption.random_symmetries(np.repeat(window, 4000, 0)).reshape(4000, 9)[i])
            for i in range(4000)]
    counts = np.unique(np.array(seen), axis=0, return_counts=True)[1]
    assert len(counts) == 8 and counts.min() > 400  # about 500 each
