"""sol5_utils and the offline data: reading, file lists (course folders and offline data)."""
import pathlib
import re

import imageio.v3 as iio
import numpy as np
import pytest

import sol5
import sol5_utils
from restoration import _checks, _data


def test_read_image_gray_and_rgb(tmp_path):
    rgb = np.random.randint(0, 256, (12, 15, 3)).astype(np.uint8)
    iio.imwrite(tmp_path / "c.png", rgb)
    gray = sol5.read_image(tmp_path / "c.png", 1)
    assert gray.shape == (12, 15) and gray.dtype == np.float64
    assert 0 <= gray.min() and gray.max() <= 1
    colour = sol5.read_image(tmp_path / "c.png", 2)
    np.testing.assert_allclose(colour, rgb / 255)


def test_read_image_of_16_bit_gray(tmp_path):
    iio.imwrite(tmp_path / "g.png", np.array([[0, 65535]], np.uint16))
    np.testing.assert_allclose(sol5.read_image(tmp_path / "g.png", 1), [[0.0, 1.0]])


@pytest.mark.parametrize("mode", ["CMYK", "P", "LA", "RGBA"])
def test_read_image_converts_other_layouts_to_the_same_gray_and_rgb(tmp_path, mode):
    from PIL import Image
    rgb = np.random.default_rng(1).integers(0, 256, (12, 15, 3), dtype=np.uint8)
    converted = Image.fromarray(rgb).convert(mode)
    suffix = ".jpg" if mode == "CMYK" else ".png"
    converted.save(tmp_path / f"x{suffix}", **({"quality": 100} if mode == "CMYK" else {}))
    expected = np.asarray(converted.convert("RGB"), np.float64) / 255  # what the file shows
    if mode == "LA":
        expected = np.asarray(converted.convert("L"), np.float64)[..., None].repeat(3, -1) / 255
    colour = sol5.read_image(tmp_path / f"x{suffix}", 2)
    assert colour.shape == (12, 15, 3) and colour.dtype == np.float64
    np.testing.assert_allclose(colour, expected, atol=3 / 255 if mode == "CMYK" else 1e-12)
    assert sol5.read_image(tmp_path / f"x{suffix}", 1).shape == (12, 15)


def test_read_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        sol5.read_image(tmp_path / "missing.png", 1)
    (tmp_path / "junk.jpg").write_text("not a picture")
    with pytest.raises(ValueError, match="junk.jpg"):
        sol5.read_image(tmp_path / "junk.jpg", 1)
    with pytest.raises(ValueError, match="representation"):
        sol5.read_image(tmp_path / "junk.jpg", 3)


def test_course_folders_are_used_when_present(no_course_data, write_images):
    photos = write_images(no_course_data / "image_dataset" / "train", [(30, 30)] * 6, suffix=".jpg")
    texts = write_images(no_course_data / "text_dataset" / "train", [(30, 30)] * 5)
    (no_course_data / "image_dataset" / "train" / "notes.txt").write_text("ignored")
    listed = sol5_utils.images_for_denoising()
    assert sorted(listed) == sorted(photos)
    assert sorted(sol5_utils.images_for_deblurring()) == sorted(texts)
    assert listed == sol5_utils.images_for_denoising()  # a fixed order
    assert listed != sorted(listed)  # ... which is shuffled


def test_listing_does_not_touch_the_global_random_state(no_course_data, write_images):
    write_images(no_course_data / "image_dataset" / "train", [(30, 30)] * 6)
    np.random.seed(5)
    expected = np.random.rand()
    np.random.seed(5)
    sol5_utils.images_for_denoising()
    assert np.random.rand() == expected


def test_course_folder_without_train_is_an_error(no_course_data):
    (no_course_data / "image_dataset").mkdir()
    with pytest.raises(FileNotFoundError, match="train"):
        sol5_utils.images_for_denoising()


def test_empty_course_folder_is_an_error(no_course_data):
    (no_course_data / "text_dataset" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="no .jpg/.png images"):
        sol5_utils.images_for_deblurring()


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        sol5_utils.list_images(tmp_path / "nope")


def test_list_images_shuffles_as_the_course_helper_does(tmp_path, write_images):
    """The course's helper shuffles the names with ``random.seed(1234)`` and gives the caller
    its random state back."""
    import random
    paths = write_images(tmp_path, [(8, 8)] * 7)
    state = random.getstate()
    random.seed(1234)
    expected = sorted(paths)
    random.shuffle(expected)
    random.setstate(state)
    before = random.random()
    random.setstate(state)
    assert sol5_utils.list_images(tmp_path) == expected
    assert random.random() == before
    assert sol5_utils.list_images(tmp_path, use_shuffle=False) == sorted(paths)


def test_offline_data_is_announced_once(no_course_data, capsys, monkeypatch):
    monkeypatch.setattr(sol5_utils, "_announced", set())
    first = sol5_utils.images_for_denoising()
    assert first == sol5_utils.images_for_super_resolution()
    out = capsys.readouterr().out
    assert out.count("no image_dataset/") == 1 and "offline photos" in out


def test_offline_photos_exclude_held_out_images(no_course_data):
    paths = sol5_utils.images_for_denoising()
    assert len(paths) >= 10
    stems = {re.sub(r"(_[rgb])?_\d+$", "", pathlib.Path(p).stem) for p in paths}
    assert stems == set(_data.TRAIN_PHOTOS)
    assert any(pathlib.Path(p).stem.endswith("_r_100") for p in paths)  # colour channels too
    assert len(paths) >= len(_data.TRAIN_PHOTOS) * len(_data.PHOTO_SCALES)
    assert not stems & set(_data.HELD_OUT_PHOTOS + _data.HELD_OUT_TEXT)
    image = sol5.read_image(paths[0], 1)
    assert image.ndim == 2 and min(image.shape) >= 72


def test_offline_text_pages_exclude_held_out_pages(no_course_data):
    train = sol5_utils.images_for_deblurring()
    held_out = sol5_utils.list_images(_data.fallback_text_dir() / "heldout")
    assert len(train) == _data.N_TEXT_PAGES - _data.N_TEXT_HELD_OUT
    assert len(held_out) == _data.N_TEXT_HELD_OUT
    assert not {pathlib.Path(p).name for p in train} & {pathlib.Path(p).name for p in held_out}


def test_offline_data_is_written_once(no_course_data, capsys):
    sol5_utils.images_for_denoising()
    capsys.readouterr()
    sol5_utils.images_for_denoising()
    assert "wrote" not in capsys.readouterr().out


def test_text_pages_are_deterministic_and_varied():
    first = _data.render_page(np.random.default_rng(3))
    again = _data.render_page(np.random.default_rng(3))
    other = _data.render_page(np.random.default_rng(4))
    np.testing.assert_array_equal(first, again)
    assert first.shape != other.shape or not np.allclose(first, other)
    for page in (first, other):
        assert page.min() >= 0 and page.max() <= 1
        assert np.percentile(page, 99) - np.percentile(page, 1) > 0.1  # ink on paper


def test_numpy_seed_replays_and_restores_the_global_state():
    np.random.seed(11)
    expected_after = np.random.rand()
    np.random.seed(11)
    with _checks.numpy_seed(3):
        first = np.random.rand()
    assert np.random.rand() == expected_after  # the caller's stream goes on untouched
    with _checks.numpy_seed(3):
        assert np.random.rand() == first


@pytest.mark.parametrize("angle", np.linspace(0, np.pi, 29))
def test_motion_blur_kernel_is_a_line_along_the_angle(angle):
    kernel = sol5_utils.motion_blur_kernel(7, angle)
    assert kernel.sum() == pytest.approx(1.0) and kernel.min() >= 0
    rows, cols = np.nonzero(kernel)
    assert kernel[3, 3] > 0 and np.allclose(kernel[rows, cols], kernel[3, 3])  # equal weights
    np.testing.assert_array_equal(kernel, kernel[::-1, ::-1])  # symmetric about the centre
    offsets = np.stack([-(rows - 3), cols - 3], axis=1)  # (up, right) from the centre
    far = offsets[np.abs(offsets).max(axis=1) == 3]
    assert len(far) == 2  # the line reaches the kernel's border at both ends
    # its direction (counter-clockwise from the horizontal) is the angle, up to the pixel grid
    drawn = np.arctan2(far[0, 0], far[0, 1]) % np.pi
    assert abs((drawn - angle + np.pi / 2) % np.pi - np.pi / 2) <= np.arctan(0.5 / 3) + 1e-9


def test_every_font_family_is_in_the_training_and_held_out_pages(no_course_data):
    families = {_data.page_family(p) for p in sol5_utils.images_for_deblurring()}
    held_out = {_data.page_family(p)
                for p in (_data.fallback_text_dir() / "heldout").glob("*.png")}
    assert families == held_out == set(_data.FONT_FAMILIES) | {"hand"}


@pytest.mark.parametrize("family", sorted(_data.FONT_FAMILIES))
def test_each_family_renders_with_its_own_fonts(family, monkeypatch):
    used = []
    real = _data.font_file
    monkeypatch.setattr(_data, "font_file", lambda name: used.append(name) or real(name))
    for seed in range(6):
        page = _data.render_page(np.random.default_rng(seed), family)
        assert np.percentile(page, 99) - np.percentile(page, 1) > 0.05
    faces = {name for face in _data.FONT_FAMILIES[family] for name in face.values()}
    assert used and set(used) <= faces


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="font family"):
        _data.render_page(np.random.default_rng(0), "comic")


def test_cache_build_keeps_a_folder_another_process_completed(tmp_path):
    folder = tmp_path / "data"

    def build(tmp):  # meanwhile, another process completes the same folder
        folder.mkdir()
        (folder / "theirs.png").write_text("x")
        (folder / ".complete").touch()
        (tmp / "ours.png").write_text("y")
        return 1
    assert _data.build_once(folder, build) == folder
    assert (folder / "theirs.png").exists() and not (folder / "ours.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # our temporary folder is gone


def test_cache_build_replaces_an_interrupted_folder(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "half.png").write_text("x")  # no .complete: an interrupted build
    _data.build_once(folder, lambda tmp: (tmp / "ours.png").write_text("y") and 1)
    assert (folder / "ours.png").exists() and (folder / ".complete").exists()
    assert not (folder / "half.png").exists()
