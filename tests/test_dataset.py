"""Section 3: the patch generator."""
import numpy as np
import pytest

import sol5
from conftest import write_images


def identity(image):
    return image.copy()


def test_batches_have_the_promised_shape_dtype_and_range(small_images):
    source, target = next(sol5.load_dataset(small_images, 7, identity, (24, 20)))
    for batch in (source, target):
        assert batch.shape == (7, 24, 20, 1)
        assert batch.dtype == np.float32
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


def test_image_smaller_than_the_patch_is_refused(tmp_path):
    paths = write_images(tmp_path, [(20, 40)])
    with pytest.raises(ValueError, match="smaller than the patch"):
        next(sol5.load_dataset(paths, 2, identity, (24, 24)))


def test_image_smaller_than_three_patches_warns_and_still_works(tmp_path):
    paths = write_images(tmp_path, [(30, 50)])
    with pytest.warns(UserWarning, match="smaller than 3x"):
        source, _ = next(sol5.load_dataset(paths, 3, identity, (24, 24)))
    assert source.shape == (3, 24, 24, 1)


def test_corruption_that_changes_the_shape_is_reported(small_images):
    with pytest.raises(ValueError, match="keep the shape"):
        next(sol5.load_dataset(small_images, 2, lambda im: im[1:], (8, 8)))
