"""Training the colour denoiser: RGB patch batches, the gray start, the photos it trains on."""
import imageio.v3 as iio
import keras
import numpy as np
import pytest

import sol5
from restoration import _corruption, _data, _training


@pytest.fixture
def rgb_images(write_images, tmp_path):
    """Six random RGB images, each at least 3x a 24x24 patch."""
    return write_images(tmp_path / "rgb", [(80 + 4 * i, 90, 3) for i in range(6)])


def test_rgb_batches_have_three_channels_on_the_i_over_255_grid(rgb_images):
    source, target = next(sol5.load_dataset(rgb_images, 16, sol5.colour_denoising_corruption,
                                            (24, 24), representation=2))
    assert source.shape == target.shape == (16, 24, 24, 3)
    assert source.dtype == target.dtype == np.float64
    assert source.min() >= -0.5 and source.max() <= 0.5
    grid = (source + 0.5) * 255
    np.testing.assert_allclose(grid, np.round(grid), atol=1e-6)
    assert np.abs(source - target).max() > 0  # noise was added
    # the noise differs between the channels of a pixel: drawn per channel, not per pixel
    noise = source - target
    assert np.abs(noise[..., 0] - noise[..., 1]).max() > 0


def test_gray_batches_are_unchanged_by_the_colour_option(small_images):
    np.random.seed(3)
    gray = next(sol5.load_dataset(small_images, 4, sol5.denoising_corruption, (24, 24)))
    np.random.seed(3)
    explicit = next(sol5.load_dataset(small_images, 4, sol5.denoising_corruption, (24, 24),
                                      representation=1))
    assert gray[0].shape == (4, 24, 24, 1)
    np.testing.assert_array_equal(gray[0], explicit[0])


def test_rgb_batches_without_a_patch_form_corrupt_rgb_crops(rgb_images):
    seen = []

    def invert(image):
        seen.append(image.shape)
        return 1.0 - image
    source, target = next(sol5.load_dataset(rgb_images, 3, invert, (24, 24), representation=2))
    assert all(len(shape) == 3 and shape[-1] == 3 for shape in seen)
    np.testing.assert_allclose(source, -target)


def test_load_dataset_refuses_an_unknown_representation(rgb_images):
    with pytest.raises(ValueError, match="representation"):
        sol5.load_dataset(rgb_images, 4, sol5.colour_denoising_corruption, (24, 24),
                          representation=3)


def test_colour_corruption_refuses_gray_images():
    with pytest.raises(ValueError, match="RGB"):
        sol5.colour_denoising_corruption(np.zeros((30, 30)))


def test_colour_noise_on_patches_has_one_sigma_per_patch():
    patches = np.full((400, 12, 12, 3), 0.5, np.float32)
    noisy = _corruption.gaussian_noise_on_patches(patches, 0.0, 0.2)
    spread = (noisy - 0.5).reshape(400, -1, 3).std(axis=1)  # per patch and channel
    np.testing.assert_allclose(spread[:, 0], spread[:, 1], rtol=0.35, atol=0.01)
    assert spread.max() > 0.15 and spread.min() < 0.05


def test_low_sigma_share_draws_that_share_of_sigmas_from_the_lower_half():
    np.random.seed(3)
    uniform = np.random.uniform(0.0, 0.2, 4000)
    np.random.seed(3)
    np.testing.assert_array_equal(_corruption.draw_sigmas(4000, 0.0, 0.2), uniform)
    np.random.seed(3)
    sigmas = _corruption.draw_sigmas(4000, 0.0, 0.2, low_share=0.5)
    assert sigmas.min() >= 0.0 and sigmas.max() <= 0.2
    assert np.mean(sigmas < 0.1) == pytest.approx(0.75, abs=0.03)  # half of 1/2, plus 1/2


def test_colour_corruption_with_every_sigma_low_adds_light_noise_only():
    np.random.seed(4)
    corruption = sol5.colour_denoising_corruption_with(low_sigma_share=1.0)
    clean = np.full((40, 40, 3), 0.5)
    assert max(np.std(corruption(clean) - clean) for _ in range(30)) < 0.11
    patches = np.full((300, 12, 12, 3), 0.5, np.float32)
    noisy = corruption.patch_form.corrupt(patches)
    assert (noisy - 0.5).reshape(300, -1).std(axis=1).max() < 0.11


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_colour_corruption_refuses_a_share_outside_0_1(share):
    with pytest.raises(ValueError, match="low_sigma_share"):
        sol5.learn_color_denoising_model(quick_mode=True, low_sigma_share=share)
    with pytest.raises(ValueError, match="low_sigma_share"):
        sol5.learn_denoising_model(quick_mode=True, low_sigma_share=share)


def test_gray_corruption_with_every_sigma_low_adds_light_noise_only():
    np.random.seed(5)
    assert sol5.denoising_corruption_with(0.0) is sol5.denoising_corruption  # the graded one
    corruption = sol5.denoising_corruption_with(low_sigma_share=1.0)
    clean = np.full((40, 40), 0.5)
    noisy = [corruption(clean) for _ in range(30)]
    assert all(n.shape == clean.shape and n.dtype == np.float64 for n in noisy)
    assert max(np.std(n - clean) for n in noisy) < 0.11
    assert np.allclose(np.asarray(noisy) * 255, np.round(np.asarray(noisy) * 255))  # i/255
    patches = np.full((300, 20, 20, 1), 0.5, np.float32)
    light = corruption.patch_form.corrupt(patches)
    assert (light - 0.5).reshape(300, -1).std(axis=1).max() < 0.12  # sigma 0.1 at most
    heavy = sol5.denoising_corruption.patch_form.corrupt(patches)
    assert (heavy - 0.5).reshape(300, -1).std(axis=1).max() > 0.15  # the graded one reaches 0.2


def test_gray_denoiser_trains_on_the_share_it_is_given(monkeypatch):
    seen = []
    monkeypatch.setattr(sol5, "learn_with_recipe",
                        lambda name, images, corruption, *rest, **kw: seen.append(corruption))
    sol5.learn_denoising_model(quick_mode=True)
    sol5.learn_denoising_model(quick_mode=True, low_sigma_share=0.5)
    assert seen[0] is sol5.denoising_corruption and seen[1] is not sol5.denoising_corruption


def test_random_symmetries_turn_colour_patches_whole():
    patches = np.random.default_rng(0).random((64, 5, 5, 3)).astype(np.float32)
    turned = _corruption.random_symmetries(patches.copy())
    for before, after in zip(patches, turned):  # each pixel keeps its three channels together
        assert sorted(map(tuple, before.reshape(-1, 3))) == sorted(map(tuple, after.reshape(-1, 3)))
    assert not np.array_equal(turned, patches)


def test_a_gray_network_starts_a_colour_network_that_restores_gray_images_alike():
    gray = sol5.build_nn_model(16, 16, 6, 2)
    for weight in gray.weights:
        weight.assign(np.random.default_rng(1).normal(0, 0.3, weight.shape))
    colour = sol5.build_color_nn_model(16, 16, 6, 2)
    colour.set_weights(_training.starting_weights(colour, gray))
    image = np.random.default_rng(2).random((30, 34))
    expected = sol5.restore_image(image, gray)
    restored = sol5.restore_color_image(np.dstack([image] * 3), colour)
    for channel in range(3):
        np.testing.assert_allclose(restored[..., channel], expected, atol=1e-5)


def test_starting_weights_refuse_another_architecture():
    with pytest.raises(ValueError, match="does not match"):
        _training.starting_weights(sol5.build_color_nn_model(8, 8, 6, 2),
                                   sol5.build_nn_model(8, 8, 6, 1))
    with pytest.raises(ValueError, match="does not match"):
        _training.starting_weights(sol5.build_nn_model(8, 8, 6, 1),
                                   sol5.build_color_nn_model(8, 8, 6, 1))


def test_quick_colour_training_returns_a_colour_network_and_saves_checkpoints(tmp_path, rgb_images,
                                                                              monkeypatch):
    monkeypatch.setattr(_data, "colour_training_photos", lambda extra=(): rgb_images)
    gray = sol5.build_nn_model(24, 24, 48, 1)
    gray.save(tmp_path / "gray.keras")
    checkpoint = tmp_path / "checkpoint.keras"
    model = sol5.learn_color_denoising_model(1, quick_mode=True, init_from=tmp_path / "gray.keras",
                                             checkpoint=checkpoint)
    assert model.input_shape == model.output_shape == (None, 24, 24, 3)
    saved = keras.models.load_model(checkpoint, compile=False)
    assert saved.output_shape == (None, 24, 24, 3)


def test_extra_photo_folders_join_the_training_list(tmp_path, write_images):
    folder = tmp_path / "extra"
    write_images(folder, [(120, 100, 3), (90, 140)], suffix=".png")
    (folder / "notes.txt").write_text("not a photo")
    paths = _data.colour_training_photos([folder])
    extra = [p for p in paths if "extra-photos" in p]
    assert len(extra) == 2 * len(_data.PHOTO_SCALES)
    assert all(iio.imread(p).shape[-1] == 3 for p in extra)  # gray photos are stored as RGB
    assert paths == _data.colour_training_photos([folder])  # a fixed order
    with pytest.raises(ValueError, match="not a folder"):
        _data.colour_training_photos([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .jpg or .png"):
        _data.colour_training_photos([tmp_path / "empty"])


def test_colour_training_photos_hold_no_held_out_photo():
    held_out = [_data.load_skimage_photo(name, 2) for name in _data.HELD_OUT_PHOTOS]
    for path in _data.colour_training_photos():
        image = sol5.read_image(path, 2)
        for photo in held_out:
            assert image.shape != photo.shape or not np.allclose(image, photo, atol=2 / 255)


def test_unseen_photos_are_centre_crops_of_the_named_files(tmp_path, monkeypatch):
    rgb = np.random.default_rng(4).integers(0, 256, (300, 280, 3), dtype=np.uint8)
    iio.imwrite(tmp_path / "baboon.png", rgb)
    iio.imwrite(tmp_path / "not_listed.png", rgb)
    monkeypatch.setenv("SOL5_UNSEEN_PHOTOS", str(tmp_path))
    photos = _data.unseen_photos()
    assert list(photos) == ["baboon"]
    side = _data.UNSEEN_CROP
    top, left = (300 - side) // 2, (280 - side) // 2
    np.testing.assert_allclose(photos["baboon"], rgb[top:top + side, left:left + side] / 255,
                               atol=1e-12)


def test_command_line_takes_extra_photos_for_photo_tasks_only():
    from restoration import cli
    with pytest.raises(SystemExit, match="extra-photos.*deblur"):
        cli.main(["train", "--tasks", "denoise", "deblur", "--quick", "--extra-photos", "somewhere"])


def test_extra_photos_join_a_gray_training_list_mixed_through_both_parts(tmp_path, write_images):
    extra = tmp_path / "extra"
    write_images(extra, [(120, 100, 3), (100, 130, 3)], suffix=".jpg")
    base = [f"/data/photo_{i}.jpg" for i in range(10)]
    assert _data.with_extra_photos(base) == base  # without extras, the list as given
    mixed = _data.with_extra_photos(base, [extra])
    added = _data.extra_photo_paths([extra])
    assert sorted(mixed) == sorted(base + added) and len(added) == 2 * len(_data.PHOTO_SCALES)
    train, valid = sol5.split_train_valid(mixed)
    assert any(p in added for p in train) and any(p in base for p in valid)
    assert sol5.read_image(added[0], 1).ndim == 2  # a gray task reads them in gray


def test_super_resolution_trains_on_extra_photos(tmp_path, write_images, monkeypatch):
    extra = tmp_path / "extra"
    write_images(extra, [(120, 100, 3)], suffix=".jpg")
    seen = []
    monkeypatch.setattr(sol5, "learn_with_recipe", lambda name, images, *rest, **kw: seen.extend(images))
    sol5.learn_super_resolution_model(quick_mode=True, extra_photos=[extra])
    assert set(_data.extra_photo_paths([extra])) <= set(seen)
    assert len(seen) > len(_data.extra_photo_paths([extra]))


def test_command_line_takes_a_low_sigma_share_for_the_denoisers_only():
    from restoration import cli
    for tasks in (["deblur"], ["denoise", "superres-x2"]):
        with pytest.raises(SystemExit, match="low-sigma-share.*--tasks among denoise, denoise-colour"):
            cli.main(["train", "--tasks", *tasks, "--quick", "--low-sigma-share", "0.5"])


def test_command_line_gives_the_gray_denoiser_its_share_and_a_checkpoint(monkeypatch, tmp_path):
    from restoration import cli
    seen = {}

    def learn(**kwargs):
        seen.update(kwargs)
        raise SystemExit("stop before training")
    monkeypatch.setitem(cli.TASKS["denoise"], "learn", learn)
    monkeypatch.setenv("SOL5_OUTPUTS", str(tmp_path))
    with pytest.raises(SystemExit, match="stop before training"):
        cli.main(["train", "--tasks", "denoise", "--quick", "--low-sigma-share", "0.25"])
    assert seen["low_sigma_share"] == 0.25
    assert str(seen["checkpoint"]).endswith("denoise.checkpoint.keras")


def test_a_continued_model_keeps_the_record_of_the_model_it_continued(tmp_path):
    import json
    from restoration import experiments
    earlier = {"command": ["python", "sol5.py", "train", "--tasks", "denoise-colour"],
               "training_seconds": 60}
    (tmp_path / "first.json").write_text(json.dumps(earlier))
    record = experiments.training_record(["python", "sol5.py", "train"], 30.4,
                                         init_from=tmp_path / "first.keras")
    assert record["continued_from"] == earlier and record["training_seconds"] == 30
    assert "continued_from" not in experiments.training_record(["python"], 1.0,
                                                               init_from=tmp_path / "none.keras")


def test_command_line_trains_the_colour_denoiser_and_records_what_trained_it(tmp_path, write_images):
    import hashlib
    import json
    from restoration import cli
    extra = tmp_path / "extra"
    write_images(extra, [(100, 110, 3)], suffix=".jpg")
    argv = ["train", "--quick", "--tasks", "denoise-colour", "--num-res-blocks", "1",
            "--extra-photos", str(extra)]
    cli.main(argv)
    outputs = tmp_path / "outputs"  # conftest points SOL5_OUTPUTS here
    model = keras.models.load_model(outputs / "denoise-colour.keras", compile=False)
    assert model.output_shape == (None, 24, 24, 3)
    record = json.loads((outputs / "denoise-colour.json").read_text())
    assert record["command"] == ["python", "sol5.py", *argv]
    digest = hashlib.sha256((extra / "img_000.jpg").read_bytes()).hexdigest()
    assert record["extra_photos"] == {str(extra): {"img_000.jpg": digest}}
    assert record["offline_photos"] == list(_data.TRAIN_PHOTOS)
    assert record["training_seconds"] >= 0 and record["machine"]["cpu_count"] >= 1
