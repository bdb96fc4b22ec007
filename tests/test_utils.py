"""sol5_utils: reading, file lists (course folders and offline fallback)."""
import pathlib
import re

import imageio.v3 as iio
import numpy as np
import pytest

import sol5_utils


def test_read_image_gray_and_rgb(tmp_path):
    rgb = np.random.randint(0, 256, (12, 15, 3)).astype(np.uint8)
    iio.imwrite(tmp_path / "c.png", rgb)
    gray = sol5_utils.read_image(tmp_path / "c.png", 1)
    assert gray.shape == (12, 15) and gray.dtype == np.float64
    assert 0 <= gray.min() and gray.max() <= 1
    colour = sol5_utils.read_image(tmp_path / "c.png", 2)
    np.testing.assert_allclose(colour, rgb / 255)


def test_read_image_of_16_bit_gray(tmp_path):
    iio.imwrite(tmp_path / "g.png", np.array([[0, 65535]], np.uint16))
    np.testing.assert_allclose(sol5_utils.read_image(tmp_path / "g.png", 1), [[0.0, 1.0]])


def test_read_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        sol5_utils.read_image(tmp_path / "missing.png", 1)
    (tmp_path / "junk.jpg").write_text("not a picture")
    with pytest.raises(ValueError, match="junk.jpg"):
        sol5_utils.read_image(tmp_path / "junk.jpg", 1)
    with pytest.raises(ValueError, match="representation"):
        sol5_utils.read_image(tmp_path / "junk.jpg", 3)


@pytest.fixture
def module_dir(tmp_path, monkeypatch):
    """Pretend sol5_utils lives in an empty folder (no course data beside it)."""
    monkeypatch.setattr(sol5_utils, "MODULE_DIR", tmp_path)
    return tmp_path


def test_course_folders_are_used_when_present(module_dir, write_images):
    photos = write_images(module_dir / "image_dataset" / "train", [(30, 30)] * 6, suffix=".jpg")
    texts = write_images(module_dir / "text_dataset" / "train", [(30, 30)] * 5)
    (module_dir / "image_dataset" / "train" / "notes.txt").write_text("ignored")
    listed = sol5_utils.images_for_denoising()
    assert sorted(listed) == sorted(photos)
    assert sorted(sol5_utils.images_for_deblurring()) == sorted(texts)
    assert listed == sol5_utils.images_for_denoising()  # a fixed order
    assert listed != sorted(listed)  # ... which is shuffled


def test_listing_does_not_touch_the_global_random_state(module_dir, write_images):
    write_images(module_dir / "image_dataset" / "train", [(30, 30)] * 6)
    np.random.seed(5)
    expected = np.random.rand()
    np.random.seed(5)
    sol5_utils.images_for_denoising()
    assert np.random.rand() == expected


def test_course_folder_without_train_is_an_error(module_dir):
    (module_dir / "image_dataset").mkdir()
    with pytest.raises(FileNotFoundError, match="train"):
        sol5_utils.images_for_denoising()


def test_empty_course_folder_is_an_error(module_dir):
    (module_dir / "text_dataset" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="no .jpg/.png images"):
        sol5_utils.images_for_deblurring()


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        sol5_utils.list_images(tmp_path / "nope")


def test_offline_photos_exclude_held_out_images(module_dir):
    paths = sol5_utils.images_for_denoising()
    assert len(paths) >= 10
    stems = {re.sub(r"(_[rgb])?_\d+$", "", pathlib.Path(p).stem) for p in paths}
    assert stems == set(sol5_utils.TRAIN_PHOTOS)
    assert any(pathlib.Path(p).stem.endswith("_r_100") for p in paths)  # colour channels too
    assert len(paths) >= len(sol5_utils.TRAIN_PHOTOS) * len(sol5_utils.PHOTO_SCALES)
    assert not stems & set(sol5_utils.HELD_OUT_PHOTOS + sol5_utils.HELD_OUT_TEXT)
    image = sol5_utils.read_image(paths[0], 1)
    assert image.ndim == 2 and min(image.shape) >= 72


def test_offline_text_pages_exclude_held_out_pages(module_dir):
    train = sol5_utils.images_for_deblurring()
    held_out = sol5_utils.list_images(sol5_utils.fallback_text_dir() / "heldout")
    assert len(train) == sol5_utils.N_TEXT_PAGES - sol5_utils.N_TEXT_HELD_OUT
    assert len(held_out) == sol5_utils.N_TEXT_HELD_OUT
    assert not {pathlib.Path(p).name for p in train} & {pathlib.Path(p).name for p in held_out}


def test_offline_data_is_written_once(module_dir, capsys):
    sol5_utils.images_for_denoising()
    capsys.readouterr()
    sol5_utils.images_for_denoising()
    assert "wrote" not in capsys.readouterr().out


def test_text_pages_are_deterministic_and_varied():
    first = sol5_utils.render_page(np.random.default_rng(3))
    again = sol5_utils.render_page(np.random.default_rng(3))
    other = sol5_utils.render_page(np.random.default_rng(4))
    np.testing.assert_array_equal(first, again)
    assert first.shape != other.shape or not np.allclose(first, other)
    for page in (first, other):
        assert page.min() >= 0 and page.max() <= 1
        assert np.percentile(page, 99) - np.percentile(page, 1) > 0.1  # ink on paper


def test_numpy_seed_replays_and_restores_the_global_state():
    np.random.seed(11)
    expected_after = np.random.rand()
    np.random.seed(11)
    with sol5_utils.numpy_seed(3):
        first = np.random.rand()
    assert np.random.rand() == expected_after  # the caller's stream goes on untouched
    with sol5_utils.numpy_seed(3):
        assert np.random.rand() == first


def test_motion_blur_kernel_returns_a_private_copy_of_the_cached_line():
    kernel = sol5_utils.motion_blur_kernel(7, 0.3)
    kernel[:] = 0.0  # must not spoil the cache behind it
    again = sol5_utils.motion_blur_kernel(7, 0.3)
    assert again.sum() == pytest.approx(1.0)


def test_line_ends_point_along_the_angle():
    angles = np.linspace(0, np.pi, 97, endpoint=False)
    ends = sol5_utils.line_ends(7, angles)
    assert ends.shape == (97, 2)
    assert (np.abs(ends).max(axis=1) == 3).all()  # every line spans the whole kernel
    # the end's direction (rows grow downwards) is the angle, up to rounding onto the pixel grid
    drawn = np.arctan2(-ends[:, 0], ends[:, 1]) % np.pi
    error = np.abs((drawn - angles + np.pi / 2) % np.pi - np.pi / 2)
    assert error.max() <= np.arctan(0.5 / 3) + 1e-9
    for angle, (row, col) in zip(angles[::8], ends[::8]):
        kernel = sol5_utils.motion_blur_kernel(7, angle)
        assert kernel[3 + row, 3 + col] > 0 and kernel[3 - row, 3 - col] > 0


def test_every_font_family_is_in_the_training_and_held_out_pages(module_dir):
    families = {sol5_utils.page_family(p) for p in sol5_utils.images_for_deblurring()}
    held_out = {sol5_utils.page_family(p)
                for p in (sol5_utils.fallback_text_dir() / "heldout").glob("*.png")}
    assert families == held_out == set(sol5_utils.FONT_FAMILIES) | {"hand"}


@pytest.mark.parametrize("family", sorted(sol5_utils.FONT_FAMILIES))
def test_each_family_renders_with_its_own_fonts(family, monkeypatch):
    used = []
    real = sol5_utils.font_file
    monkeypatch.setattr(sol5_utils, "font_file", lambda name: used.append(name) or real(name))
    for seed in range(6):
        page = sol5_utils.render_page(np.random.default_rng(seed), family)
        assert np.percentile(page, 99) - np.percentile(page, 1) > 0.05
    faces = {name for face in sol5_utils.FONT_FAMILIES[family] for name in face.values()}
    assert used and set(used) <= faces


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="font family"):
        sol5_utils.render_page(np.random.default_rng(0), "comic")


def test_cache_build_keeps_a_folder_another_process_completed(tmp_path):
    folder = tmp_path / "data"

    def build(tmp):  # meanwhile, another process completes the same folder
        folder.mkdir()
        (folder / "theirs.png").write_text("x")
        (folder / ".complete").touch()
        (tmp / "ours.png").write_text("y")
        return 1
    assert sol5_utils.build_once(folder, build) == folder
    assert (folder / "theirs.png").exists() and not (folder / "ours.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # our temporary folder is gone


def test_cache_build_replaces_an_interrupted_folder(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "half.png").write_text("x")  # no .complete: an interrupted build
    sol5_utils.build_once(folder, lambda tmp: (tmp / "ours.png").write_text("y") and 1)
    assert (folder / "ours.png").exists() and (folder / ".complete").exists()
    assert not (folder / "half.png").exists()
