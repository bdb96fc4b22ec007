"""Restoring people's files: image_io round trips and the command line's file and folder modes."""
import warnings

import imageio.v3 as iio
import keras
import numpy as np
import pytest
from PIL import Image

from restoration import _files
import sol5
from restoration import cli


@pytest.fixture
def identity_model_path(tmp_path):
    """A saved network whose output equals its input (last convolution zeroed)."""
    model = sol5.build_nn_model(8, 8, 2, 1)
    last = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][-1]
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    path = tmp_path / "identity.keras"
    model.save(path)
    return str(path)


def restore(*args):
    cli.main(["restore", "--task", "denoise", *map(str, args)])


@pytest.mark.parametrize("name, pixels", [
    ("gray.png", np.random.default_rng(0).integers(0, 256, (17, 23), dtype=np.uint8)),
    ("rgb.png", np.random.default_rng(1).integers(0, 256, (17, 23, 3), dtype=np.uint8)),
    ("rgba.png", np.random.default_rng(2).integers(0, 256, (17, 23, 4), dtype=np.uint8)),
    ("gray_alpha.png", np.random.default_rng(3).integers(0, 256, (17, 23, 2), dtype=np.uint8)),
    ("gray16.png", np.random.default_rng(4).integers(0, 65536, (17, 23), dtype=np.uint16)),
    ("rgb16.png", np.random.default_rng(5).integers(0, 65536, (17, 23, 3), dtype=np.uint16)),
    ("rgba16.png", np.random.default_rng(6).integers(0, 65536, (17, 23, 4), dtype=np.uint16)),
    ("rgb16.tif", np.random.default_rng(7).integers(0, 65536, (17, 23, 3), dtype=np.uint16)),
    ("strip.png", np.random.default_rng(8).integers(0, 256, (1, 40), dtype=np.uint8)),
])
def test_layout_and_bit_depth_survive_the_round_trip(tmp_path, identity_model_path, name, pixels):
    source = tmp_path / name
    _files.write_picture(source, pixels)
    np.testing.assert_array_equal(_files.read_picture(source), pixels)
    restore("--model", identity_model_path, source, tmp_path / f"out_{name}")
    out = _files.read_picture(tmp_path / f"out_{name}")
    assert out.dtype == pixels.dtype and out.shape == pixels.shape
    np.testing.assert_array_equal(out, pixels)  # the identity network changes nothing


def test_colour_is_really_restored(tmp_path):
    model = sol5.build_nn_model(8, 8, 4, 1)  # random weights: the output differs from the input
    path = tmp_path / "m.keras"
    model.save(path)
    rgb = np.random.default_rng(9).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    iio.imwrite(tmp_path / "in.png", rgb)
    restore("--model", path, tmp_path / "in.png", tmp_path / "out.png")
    out = iio.imread(tmp_path / "out.png")
    assert out.shape == (20, 30, 3)
    expected = sol5.restore_color_image(rgb, model, out_dtype=np.uint8,
                                        precision=cli.restore_precision("auto"))
    np.testing.assert_array_equal(out, expected)
    assert not np.array_equal(out[..., 0], out[..., 1])  # not made gray


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 30, 3), np.uint8)
    pixels[:5, :, 0] = 255  # a red band along the top of the stored image
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    Image.fromarray(pixels).save(tmp_path / "phone.jpg", exif=exif, quality=100)
    upright = _files.read_picture(tmp_path / "phone.jpg")
    assert upright.shape == (30, 20, 3)
    assert upright[:, -5:, 0].mean() > 200 and upright[:, :5, 0].mean() < 50  # band now on the right


def test_folder_mode_skips_a_corrupt_file_keeps_outputs_and_exits_non_zero(
        tmp_path, identity_model_path, capsys):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for i in range(3):
        iio.imwrite(inputs / f"photo{i}.png", np.full((12, 14), 40 * i, np.uint8))
    iio.imwrite(tmp_path / "noisy.png", np.random.default_rng(0).integers(0, 256, (40, 40), np.uint8))
    full = (tmp_path / "noisy.png").read_bytes()
    (inputs / "truncated.png").write_bytes(full[:len(full) // 2])
    (inputs / "notes.txt").write_text("not an image")
    outputs.mkdir()
    (outputs / "photo1.png").write_bytes(b"already here")
    with pytest.raises(SystemExit) as info:
        restore("--model", identity_model_path, inputs, outputs)
    assert "truncated.png" in str(info.value) and "1 of 4" in str(info.value)
    assert (outputs / "photo1.png").read_bytes() == b"already here"  # kept
    np.testing.assert_array_equal(iio.imread(outputs / "photo2.png"), np.full((12, 14), 80))
    assert not (outputs / "truncated.png").exists() and not (outputs / "notes.txt").exists()
    printed = capsys.readouterr().out
    assert "kept 1 existing" in printed and "notes.txt" in printed
    restore("--model", identity_model_path, "--overwrite", inputs / "photo1.png", outputs)
    np.testing.assert_array_equal(iio.imread(outputs / "photo1.png"), np.full((12, 14), 40))


def test_inputs_are_never_overwritten(tmp_path, identity_model_path):
    iio.imwrite(tmp_path / "a.png", np.zeros((9, 9), np.uint8))
    with pytest.raises(SystemExit, match="input folder"):
        restore("--model", identity_model_path, "--overwrite", tmp_path, tmp_path)
    with pytest.raises(SystemExit, match="is the input"):
        restore("--model", identity_model_path, "--overwrite", tmp_path / "a.png", tmp_path / "a.png")


def test_single_file_output_that_exists_is_kept(tmp_path, identity_model_path):
    iio.imwrite(tmp_path / "a.png", np.zeros((9, 9), np.uint8))
    (tmp_path / "b.png").write_bytes(b"mine")
    with pytest.raises(SystemExit):
        restore("--model", identity_model_path, tmp_path / "a.png", tmp_path / "b.png")
    assert (tmp_path / "b.png").read_bytes() == b"mine"


def test_unwritable_output_folder_is_named(tmp_path, identity_model_path):
    iio.imwrite(tmp_path / "a.png", np.zeros((9, 9), np.uint8))
    (tmp_path / "file").write_text("a file, not a folder")
    with pytest.raises(SystemExit, match="cannot write to the output folder .*file"):
        restore("--model", identity_model_path, tmp_path / "a.png", tmp_path / "file" / "out.png")


def bad_files(folder):
    folder.mkdir(exist_ok=True)
    (folder / "words.png").write_text("this is text, not a picture")
    png = folder / "ok.png"
    iio.imwrite(png, np.random.default_rng(0).integers(0, 256, (30, 30), dtype=np.uint8))
    (folder / "cut.png").write_bytes(png.read_bytes()[:500])  # of about 1 kB
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        iio.imwrite(folder / "empty.tif", np.zeros((0, 5), np.uint8))
    nan = np.full((6, 6), 0.5, np.float32)
    nan[2, 3] = np.nan
    iio.imwrite(folder / "nan.tif", nan)
    return {"words.png": "cannot be read", "cut.png": "cannot be read",
            "empty.tif": "no pixels", "nan.tif": "NaN"}


def test_bad_files_give_errors_that_name_them(tmp_path):
    for name, words in bad_files(tmp_path / "bad").items():
        with pytest.raises(ValueError, match=words) as info:
            _files.read_picture(tmp_path / "bad" / name)
        assert name in str(info.value)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        _files.read_picture(tmp_path / "missing.png")


def test_jpeg_cannot_take_alpha(tmp_path):
    with pytest.raises(ValueError, match="alpha"):
        _files.write_picture(tmp_path / "x.jpg", np.zeros((4, 4, 4), np.uint8))
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.parametrize("fast_machine, choice, expected", [
    (True, "auto", "mixed_bfloat16"), (False, "auto", "float32"),
    (True, "float32", "float32"), (True, "bfloat16", "mixed_bfloat16")])
def test_restore_precision_choice(monkeypatch, fast_machine, choice, expected):
    monkeypatch.setattr(cli._training, "bfloat16_supported", lambda: fast_machine)
    assert cli.restore_precision(choice) == expected


def test_bfloat16_restore_keeps_an_identity_exact(tmp_path, identity_model_path, monkeypatch):
    """The global skip is added in float32, so a zero residual leaves 16-bit pixels untouched."""
    monkeypatch.setattr(sol5._training, "bfloat16_supported", lambda: True)
    pixels = np.random.default_rng(9).integers(0, 65536, (19, 21, 3), dtype=np.uint16)
    iio.imwrite(tmp_path / "in.png", pixels[..., 0])
    restore(tmp_path / "in.png", tmp_path / "out.png", "--model", identity_model_path,
            "--precision", "bfloat16")
    np.testing.assert_array_equal(iio.imread(tmp_path / "out.png"), pixels[..., 0])
