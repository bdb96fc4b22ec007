"""Restoring people's files: image file round trips and the command line's file and folder modes."""
import functools
import warnings

import imageio.v3 as iio
import keras
import numpy as np
import pytest
import tifffile
from PIL import Image

import sol5
from restoration import _files, cli


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
    ("gray_alpha16.png", np.random.default_rng(10).integers(0, 65536, (17, 23, 2), dtype=np.uint16)),
    ("gray16.png", np.random.default_rng(4).integers(0, 65536, (17, 23), dtype=np.uint16)),
    ("rgb16.png", np.random.default_rng(5).integers(0, 65536, (17, 23, 3), dtype=np.uint16)),
    ("rgba16.png", np.random.default_rng(6).integers(0, 65536, (17, 23, 4), dtype=np.uint16)),
    ("rgb16.tif", np.random.default_rng(7).integers(0, 65536, (17, 23, 3), dtype=np.uint16)),
    ("strip.png", np.random.default_rng(8).integers(0, 256, (1, 40), dtype=np.uint8)),
])
def test_layout_and_bit_depth_survive_the_round_trip(tmp_path, identity_model_path, name, pixels):
    source = tmp_path / name
    _files.write_picture(source, pixels)
    np.testing.assert_array_equal(_files.read_picture(source).pixels, pixels)
    restore("--model", identity_model_path, source, tmp_path / f"out_{name}")
    out = _files.read_picture(tmp_path / f"out_{name}").pixels
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


def test_symmetries_option_reaches_the_network(tmp_path):
    model = sol5.build_nn_model(8, 8, 4, 1)
    path = tmp_path / "m.keras"
    model.save(path)
    rgb = np.random.default_rng(11).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    iio.imwrite(tmp_path / "in.png", rgb)
    restore("--model", path, "--symmetries", 8, tmp_path / "in.png", tmp_path / "out.png")
    expected = functools.partial(sol5.restore_color_image, rgb, model, out_dtype=np.uint8,
                                 precision=cli.restore_precision("auto"))
    out = iio.imread(tmp_path / "out.png")
    np.testing.assert_array_equal(out, expected(symmetries=8))
    assert not np.array_equal(out, expected())
    with pytest.raises(SystemExit):
        restore("--model", path, "--symmetries", 3, tmp_path / "in.png", tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_sure_option_reaches_the_network_and_only_for_denoising_with_a_gray_one(tmp_path,
                                                                              monkeypatch):
    model = sol5.build_nn_model(8, 8, 4, 1)
    path = tmp_path / "m.keras"
    model.save(path)
    gray = np.random.default_rng(12).integers(60, 200, (40, 50), dtype=np.uint8)
    iio.imwrite(tmp_path / "in.png", gray)
    monkeypatch.setattr(sol5._noise, "sure_residual_scale",
                        lambda noisy, restored, denoise: np.full(noisy.shape, 0.5))
    restore("--model", path, "--sure", tmp_path / "in.png", tmp_path / "out.png")
    expected = functools.partial(sol5.restore_color_image, gray, model, out_dtype=np.uint8,
                                 precision=cli.restore_precision("auto"))
    out = iio.imread(tmp_path / "out.png")
    np.testing.assert_array_equal(out, expected(sure=True))
    assert not np.array_equal(out, expected())
    with pytest.raises(SystemExit, match="--sure is for --task denoise"):
        cli.main(["restore", "--task", "deblur", "--model", str(path), "--sure",
                  str(tmp_path / "in.png"), str(tmp_path / "deblurred.png")])
    colour_path = tmp_path / "c.keras"
    sol5.build_color_nn_model(8, 8, 4, 1).save(colour_path)
    iio.imwrite(tmp_path / "rgb.png", np.dstack([gray] * 3))
    with pytest.raises(SystemExit, match="--model models/denoise_long.keras"):
        restore("--model", path, "--colour-model", colour_path, "--sure", tmp_path / "rgb.png",
                tmp_path / "rgb_out.png")
    assert not (tmp_path / "rgb_out.png").exists()


def test_progress_stages_grow_by_what_a_stage_adds_to_its_own_target():
    bar = keras.utils.Progbar(None, verbose=0)
    stages = cli._ProgressStages(bar)
    first = stages.next()
    first.target = 4
    first.add(4)
    second = stages.next()
    second.target = 3
    second.target += 3  # a restore that runs its tiles twice (SURE's probe)
    assert second.target == 6 and bar.target == 10


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 30, 3), np.uint8)
    pixels[:5, :, 0] = 255  # a red band along the top of the stored image
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    Image.fromarray(pixels).save(tmp_path / "phone.jpg", exif=exif, quality=100)
    upright = _files.read_picture(tmp_path / "phone.jpg").pixels
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


# -- every layout Pillow and tifffile read: restored correctly or refused clearly ------------------

def smooth_planes(shape, seed):
    """Smooth random planes (JPEG keeps them close) spanning most of 0..255."""
    rng = np.random.default_rng(seed)
    height, width, planes = shape
    y, x = np.mgrid[:height, :width] / max(height, width)
    out = [127 + 100 * np.sin(6 * x * rng.uniform(0.5, 1.5) + 6 * y * rng.uniform(0.5, 1.5)
                              + rng.uniform(0, 6)) for _ in range(planes)]
    return np.stack(out, axis=-1).round().astype(np.uint8)


def cmyk_jpeg(path, seed=0):
    Image.fromarray(smooth_planes((24, 32, 4), seed), "CMYK").save(path, quality=95)
    return np.asarray(Image.open(path))  # the CMYK values as decoded


def test_cmyk_jpeg_stays_cmyk_in_jpeg_and_tiff(tmp_path, identity_model_path):
    stored = cmyk_jpeg(tmp_path / "scan.jpg")
    restore("--model", identity_model_path, tmp_path / "scan.jpg", tmp_path / "out.jpg")
    out = Image.open(tmp_path / "out.jpg")
    assert out.mode == "CMYK"  # not RGBA: the black plane is not taken for transparency
    assert np.abs(np.asarray(out).astype(int) - stored).mean() < 2  # only re-encoding changed it
    restore("--model", identity_model_path, tmp_path / "scan.jpg", tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.SEPARATED
        np.testing.assert_array_equal(tif.pages[0].asarray(), stored)  # exact


def test_all_four_ink_planes_are_restored(tmp_path):
    model = sol5.build_nn_model(8, 8, 4, 1)  # random weights: every restored plane changes
    model.save(tmp_path / "m.keras")
    stored = cmyk_jpeg(tmp_path / "scan.jpg", seed=1)
    restore("--model", tmp_path / "m.keras", tmp_path / "scan.jpg", tmp_path / "out.tif")
    out = tifffile.imread(tmp_path / "out.tif")
    # each ink plane goes through the network as the light it lets through (255 - ink)
    precision = cli.restore_precision("auto")
    expected = 255 - np.dstack([
        sol5.restore_color_image(255 - stored[..., :3], model, out_dtype=np.uint8, precision=precision),
        sol5.restore_color_image(255 - stored[..., 3], model, out_dtype=np.uint8, precision=precision)])
    np.testing.assert_array_equal(out, expected)
    assert not np.array_equal(out[..., 3], stored[..., 3])


def test_cmyk_into_png_becomes_rgb_and_says_so(tmp_path, identity_model_path, capsys):
    stored = cmyk_jpeg(tmp_path / "scan.jpg", seed=2)
    restore("--model", identity_model_path, tmp_path / "scan.jpg", tmp_path / "out.png")
    out = Image.open(tmp_path / "out.png")
    assert out.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(out),
                                  np.asarray(Image.fromarray(stored, "CMYK").convert("RGB")))
    printed = capsys.readouterr().out
    assert "CMYK" in printed and "RGB" in printed and "out.png" in printed


def palette_image(seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    return Image.fromarray(pixels).quantize(colors=8)


@pytest.mark.parametrize("name, make, mode", [
    ("palette.png", lambda: palette_image(), "RGB"),
    ("palette_key.png", lambda: palette_image(1), "RGBA"),  # saved with a transparent entry
    ("palette.gif", lambda: palette_image(2), "RGB"),
    ("gray_key.png", lambda: Image.fromarray(np.arange(96, dtype=np.uint8).reshape(8, 12)), "LA"),
    ("rgb_key.png", lambda: Image.fromarray(np.dstack([np.arange(96, dtype=np.uint8).reshape(8, 12)] * 3)),
     "RGBA"),
    ("bilevel.png", lambda: Image.fromarray(np.arange(96).reshape(8, 12) % 3 == 0), "L"),
])
def test_palettes_transparency_keys_and_bilevel_images(tmp_path, identity_model_path, name, make, mode):
    image = make()
    options = {"transparency": 5} if name.endswith("key.png") else {}
    if name == "rgb_key.png":
        options = {"transparency": (5, 5, 5)}
    image.save(tmp_path / name, **options)
    expected = Image.open(tmp_path / name).convert(mode)  # what Pillow shows
    restore("--model", identity_model_path, tmp_path / name, tmp_path / "out.png")
    out = Image.open(tmp_path / "out.png")
    assert out.mode == mode
    np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))
    if "key" in name:
        assert (np.asarray(out)[..., -1] == 0).any()  # the keyed colour became transparent


def test_sixteen_bit_gray_with_a_transparency_key(tmp_path, identity_model_path):
    import png
    pixels = np.random.default_rng(3).integers(0, 65536, (6, 8), dtype=np.uint16)
    pixels[0, :3] = 1000
    with open(tmp_path / "key16.png", "wb") as file:
        png.Writer(8, 6, greyscale=True, bitdepth=16, transparent=1000).write(file, pixels)
    restore("--model", identity_model_path, tmp_path / "key16.png", tmp_path / "out.png")
    out = _files.read_picture(tmp_path / "out.png").pixels
    assert out.dtype == np.uint16 and out.shape == (6, 8, 2)
    np.testing.assert_array_equal(out[..., 0], pixels)
    np.testing.assert_array_equal(out[..., 1], np.where(pixels == 1000, 0, 65535))


def test_tiff_layouts_pillow_and_tifffile_read(tmp_path, identity_model_path):
    rgb = smooth_planes((10, 14, 3), 4)
    gray = rgb[..., 0]
    Image.fromarray(rgb).convert("YCbCr").save(tmp_path / "ycbcr.tif")
    Image.fromarray(rgb).quantize(colors=16).save(tmp_path / "palette.tif")
    Image.fromarray(rgb).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    tifffile.imwrite(tmp_path / "fax.tif", gray > 128, photometric="miniswhite")  # 1 is black
    tifffile.imwrite(tmp_path / "negative.tif", gray, photometric="miniswhite")
    tifffile.imwrite(tmp_path / "planes.tif", np.moveaxis(rgb, -1, 0), photometric="rgb",
                     planarconfig="separate")
    expected = {"ycbcr.tif": np.asarray(Image.open(tmp_path / "ycbcr.tif").convert("RGB")),
                "palette.tif": np.asarray(Image.open(tmp_path / "palette.tif").convert("RGB")),
                "lzw.tif": rgb, "fax.tif": np.where(gray > 128, 0, 255), "negative.tif": 255 - gray,
                "planes.tif": rgb}
    for name, pixels in expected.items():
        restore("--model", identity_model_path, tmp_path / name, tmp_path / f"out_{name}")
        out = tifffile.imread(tmp_path / f"out_{name}")
        assert out.dtype == np.uint8, name
        np.testing.assert_array_equal(out, pixels, err_msg=name)


def test_float_tiffs_are_restored_in_range_and_refused_outside_it(tmp_path, identity_model_path):
    pixels = np.random.default_rng(5).random((9, 11)).astype(np.float32)
    tifffile.imwrite(tmp_path / "float.tif", pixels)
    restore("--model", identity_model_path, tmp_path / "float.tif", tmp_path / "out.tif")
    out = tifffile.imread(tmp_path / "out.tif")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, pixels, atol=1e-6)
    tifffile.imwrite(tmp_path / "hdr.tif", pixels * 4)
    with pytest.raises(SystemExit, match=r"hdr.tif.*\[0, 1\]"):
        restore("--model", identity_model_path, tmp_path / "hdr.tif", tmp_path / "out2.tif")


def test_lab_tiff_is_refused_clearly(tmp_path, identity_model_path):
    lab = np.random.default_rng(6).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "lab.tif", lab, photometric="cielab")
    with pytest.raises(SystemExit, match=r"lab.tif.*L\*a\*b\*.*RGB"):
        restore("--model", identity_model_path, tmp_path / "lab.tif", tmp_path / "out.tif")
    assert not (tmp_path / "out.tif").exists()


def test_animations_and_multi_page_files_are_refused_phone_mpo_keeps_its_main_picture(
        tmp_path, identity_model_path, capsys):
    frames = [Image.fromarray(smooth_planes((16, 20, 3), seed)) for seed in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(SystemExit, match="anim.gif.*3 frames"):
        restore("--model", identity_model_path, tmp_path / "anim.gif", tmp_path / "out.png")
    tifffile.imwrite(tmp_path / "pages.tif", np.stack([np.asarray(f) for f in frames[:2]]),
                     photometric="rgb")
    with pytest.raises(SystemExit, match="pages.tif.*2 pages"):
        restore("--model", identity_model_path, tmp_path / "pages.tif", tmp_path / "out.tif")
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out.tif").exists()
    frames[0].save(tmp_path / "phone.jpg", format="MPO", save_all=True, append_images=frames[1:2])
    main_picture = np.asarray(Image.open(tmp_path / "phone.jpg"))
    restore("--model", identity_model_path, tmp_path / "phone.jpg", tmp_path / "out.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), main_picture)
    assert "2 images" in capsys.readouterr().out


# -- what a file carries comes through --------------------------------------------------------------

@functools.cache
def srgb_profile():
    """One sRGB profile for the whole run (a new one would carry another creation time)."""
    from PIL import ImageCms
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
       b'22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
       b'xmlns:dc="http://purl.org/dc/elements/1.1/" tiff:Orientation="6" dc:format="image/jpeg"/>'
       b'</rdf:RDF></x:xmpmeta>')
XMP_UPRIGHT = XMP.replace(b' tiff:Orientation="6"', b"")  # Pillow turns pictures by XMP too


def phone_photo(path):
    """A JPEG stored on its side (EXIF orientation 6) with a profile, camera, date and XMP."""
    pixels = np.zeros((20, 30, 3), np.uint8)
    pixels[:5, :, 0] = 255  # a red band along the top of the stored image
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0132] = "PhoneMaker", "Phone 9", "2024:01:02 03:04:05"
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    exif.get_ifd(0x8769)[0x9003] = "2024:01:02 03:04:05"  # DateTimeOriginal
    Image.fromarray(pixels).save(path, exif=exif, icc_profile=srgb_profile(), xmp=XMP, quality=95,
                                 dpi=(72, 72))


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_profile_exif_and_xmp_survive_and_the_photo_is_stored_upright(
        tmp_path, identity_model_path, suffix):
    phone_photo(tmp_path / "phone.jpg")
    restore("--model", identity_model_path, tmp_path / "phone.jpg", tmp_path / f"out{suffix}")
    out = Image.open(tmp_path / f"out{suffix}")
    assert out.info["icc_profile"] == srgb_profile()  # byte for byte
    exif = out.getexif()
    assert exif[0x0112] == 1  # no viewer turns it a second time
    assert (exif[0x010F], exif[0x0110], exif[0x0132]) == ("PhoneMaker", "Phone 9", "2024:01:02 03:04:05")
    assert exif.get_ifd(0x8769)[0x9003] == "2024:01:02 03:04:05"
    assert out.size == (20, 30)  # stored upright: 20 wide, 30 tall
    pixels = np.asarray(out)
    assert pixels[:, -5:, 0].mean() > 200 and pixels[:, :5, 0].mean() < 50  # band now on the right
    assert b'dc:format="image/jpeg"' in out.info["xmp"] and b"tiff:Orientation" not in out.info["xmp"]
    assert abs(out.info["dpi"][0] - 72) < 0.01


def test_png_text_xmp_and_density_survive(tmp_path, identity_model_path, capsys):
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "Grandma's garden")
    info.add_text("Author", "R. Person", zip=True)
    info.add_itxt("Description", "caf\u00e9 \u2615", lang="fr")
    info.add_itxt("XML:com.adobe.xmp", XMP_UPRIGHT.decode())
    pixels = np.random.default_rng(7).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "in.png", pnginfo=info, dpi=(300, 300))
    restore("--model", identity_model_path, tmp_path / "in.png", tmp_path / "out.png")
    out = Image.open(tmp_path / "out.png")
    out.load()
    text = {k: v for k, v in out.text.items() if k != "XML:com.adobe.xmp"}
    assert text == {"Title": "Grandma's garden", "Author": "R. Person", "Description": "caf\u00e9 \u2615"}
    assert out.info["xmp"] == XMP_UPRIGHT
    assert abs(out.info["dpi"][0] - 300) < 0.01
    capsys.readouterr()
    restore("--model", identity_model_path, tmp_path / "in.png", tmp_path / "out.jpg")
    assert Image.open(tmp_path / "out.jpg").info["xmp"] == XMP_UPRIGHT
    printed = capsys.readouterr().out
    assert "text" in printed and "Title" in printed  # JPEG cannot hold them, and the user is told


@pytest.mark.parametrize("shape", [(9, 13, 3), (9, 13)])
def test_sixteen_bit_tiff_keeps_resolution_profile_and_xmp(tmp_path, identity_model_path, shape):
    pixels = np.random.default_rng(8).integers(0, 65536, shape, dtype=np.uint16)
    tifffile.imwrite(tmp_path / "scan.tif", pixels, photometric="rgb" if len(shape) == 3 else None,
                     resolution=(300, 300), resolutionunit="INCH", iccprofile=srgb_profile(),
                     extratags=[(700, "B", len(XMP), XMP, True)], description="slide 12",
                     metadata=None)
    restore("--model", identity_model_path, tmp_path / "scan.tif", tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        page = tif.pages[0]
        np.testing.assert_array_equal(page.asarray(), pixels)
        tags = page.tags
        assert tags["XResolution"].value == (300, 1) and tags["YResolution"].value == (300, 1)
        assert tags["ResolutionUnit"].value == tifffile.RESUNIT.INCH
        assert tags["InterColorProfile"].value == srgb_profile()
        assert bytes(tags["XMP"].value) == XMP
        assert tags["ImageDescription"].value == "slide 12"


# -- huge files ----------------------------------------------------------------------------------

def png_claiming(path, width, height):
    """A tiny PNG whose header (IHDR) claims ``width`` x ``height`` pixels."""
    import struct
    import zlib
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def test_a_huge_png_is_refused_before_decoding_with_size_limit_and_fix(
        tmp_path, identity_model_path, monkeypatch):
    png_claiming(tmp_path / "poster.png", 20000, 20000)

    def decoded(*args, **kwargs):
        raise AssertionError("the pixels were decoded")
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", decoded)
    with pytest.raises(SystemExit) as info:
        restore("--model", identity_model_path, tmp_path / "poster.png", tmp_path / "out.png")
    message = str(info.value)
    for words in ("poster.png", "20000x20000", "400 megapixels",
                  f"limit of {_files.DEFAULT_MAX_MEGAPIXELS:g} megapixels", "--max-megapixels 400"):
        assert words in message
    assert "unknown error" not in message and not (tmp_path / "out.png").exists()


def test_max_megapixels_lowers_raises_or_lifts_the_limit(tmp_path, identity_model_path):
    pixels = np.random.default_rng(9).integers(0, 256, (300, 400), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    with pytest.raises(SystemExit, match=r"400x300 .*limit of 0.1 megapixels"):
        restore("--model", identity_model_path, "--max-megapixels", "0.1", tmp_path / "wide.png",
                tmp_path / "out.png")
    for limit in ("0.2", "0"):  # 0: no limit
        restore("--model", identity_model_path, "--max-megapixels", limit, "--overwrite",
                tmp_path / "wide.png", tmp_path / "out.png")
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png")), pixels)
    with pytest.raises(SystemExit):
        restore("--model", identity_model_path, "--max-megapixels", "-1", tmp_path / "wide.png",
                tmp_path / "out.png")


# -- nothing lost on failure ---------------------------------------------------------------------

def snapshot(path):
    return path.read_bytes(), path.stat().st_mtime_ns


def test_an_interrupted_restore_leaves_no_partial_output_and_the_input_untouched(
        tmp_path, identity_model_path, monkeypatch):
    (tmp_path / "in").mkdir()
    phone_photo(tmp_path / "in" / "phone.jpg")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "phone.jpg").write_bytes(b"yesterday's result")
    before = snapshot(tmp_path / "in" / "phone.jpg")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(_files.os, "replace", interrupted)  # Ctrl-C just before the rename
    with pytest.raises(KeyboardInterrupt):
        restore("--model", identity_model_path, "--overwrite", tmp_path / "in" / "phone.jpg",
                tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["phone.jpg"]
    assert (tmp_path / "out" / "phone.jpg").read_bytes() == b"yesterday's result"
    assert [p.name for p in (tmp_path / "in").iterdir()] == ["phone.jpg"]
    assert snapshot(tmp_path / "in" / "phone.jpg") == before
    monkeypatch.undo()
    restore("--model", identity_model_path, "--overwrite", tmp_path / "in" / "phone.jpg",
            tmp_path / "out")
    assert snapshot(tmp_path / "in" / "phone.jpg") == before  # a good run reads it only
    assert Image.open(tmp_path / "out" / "phone.jpg").size == (20, 30)


def test_a_failed_write_leaves_no_partial_output(tmp_path, identity_model_path):
    palette_image(1).save(tmp_path / "logo.png", transparency=5)
    before = snapshot(tmp_path / "logo.png")
    with pytest.raises(SystemExit, match="logo.jpg.*alpha.*png"):
        restore("--model", identity_model_path, tmp_path / "logo.png", tmp_path / "logo.jpg")
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".keras"] == ["logo.png"]
    assert snapshot(tmp_path / "logo.png") == before
