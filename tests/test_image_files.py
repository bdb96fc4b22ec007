"""The image-file module on its own: layouts, metadata, size limits and atomic writes, on small files made here."""
import functools
import struct

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

from restoration import _files


@functools.cache
def srgb_profile():
    """One sRGB profile for the whole run (a new one would carry another creation time)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def random_pixels(shape, dtype=np.uint8, seed=0):
    return np.random.default_rng(seed).integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


def claim_size_in_tiff(path, width, height):
    """Overwrite the width and height tags of a small TIFF so that its header claims another size."""
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        patches = [(tags["ImageWidth"], width), (tags["ImageLength"], height)]
        byteorder = tif.byteorder
    data = bytearray(path.read_bytes())
    for tag, value in patches:
        code = {3: "H", 4: "I"}[int(tag.dtype)]
        struct.pack_into(byteorder + code, data, tag.valueoffset, value)
    path.write_bytes(bytes(data))


# -- layouts --------------------------------------------------------------------------------------

def test_cmyk_written_as_png_becomes_rgb_by_pillows_formula_and_says_so(tmp_path):
    cmyk = random_pixels((7, 9, 4), seed=1)
    notes = _files.write_picture(tmp_path / "x.png", cmyk, _files.Picture(cmyk, mode="CMYK"))
    picture = _files.read_picture(tmp_path / "x.png")
    assert picture.mode == "RGB"
    np.testing.assert_array_equal(picture.pixels, np.asarray(Image.fromarray(cmyk, "CMYK").convert("RGB")))
    assert any("CMYK" in note and "RGB" in note for note in notes)


def test_cmyk_tiff_round_trip_is_exact_at_16_bits(tmp_path):
    cmyk = random_pixels((6, 5, 4), np.uint16, seed=2)
    assert _files.write_picture(tmp_path / "x.tif", cmyk, _files.Picture(cmyk, mode="CMYK")) == []
    picture = _files.read_picture(tmp_path / "x.tif")
    assert picture.mode == "CMYK" and picture.pixels.dtype == np.uint16
    np.testing.assert_array_equal(picture.pixels, cmyk)
    with tifffile.TiffFile(tmp_path / "x.tif") as tif:
        assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.SEPARATED


def test_four_channels_without_metadata_are_rgba(tmp_path):
    rgba = random_pixels((4, 4, 4), seed=3)
    _files.write_picture(tmp_path / "x.png", rgba)
    assert Image.open(tmp_path / "x.png").mode == "RGBA"
    assert _files.read_picture(tmp_path / "x.png").mode == "RGBA"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_orientation_tag_is_applied_like_pillow_applies_exif(tmp_path, orientation):
    pixels = random_pixels((5, 7, 3), seed=orientation)
    tifffile.imwrite(tmp_path / "o.tif", pixels, photometric="rgb",
                     extratags=[(274, "H", 1, orientation, True)])
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(tmp_path / "o.png", exif=exif)
    from PIL import ImageOps
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")))
    np.testing.assert_array_equal(_files.read_picture(tmp_path / "o.tif").pixels, expected)
    np.testing.assert_array_equal(_files.read_picture(tmp_path / "o.png").pixels, expected)


def test_gray_alpha_at_16_bits_survives_a_png(tmp_path):
    pixels = random_pixels((5, 6, 2), np.uint16, seed=4)
    _files.write_picture(tmp_path / "x.png", pixels)
    picture = _files.read_picture(tmp_path / "x.png")
    assert picture.mode == "LA"
    np.testing.assert_array_equal(picture.pixels, pixels)


def test_premultiplied_alpha_tiff_is_read_as_straight_alpha(tmp_path):
    straight = random_pixels((4, 5, 4), seed=5)
    straight[..., 3] = np.array([0, 51, 102, 255, 255])
    straight[..., :3][straight[..., 3] == 0] = 0
    alpha = straight[..., 3:].astype(np.float64) / 255
    premultiplied = np.dstack([np.round(straight[..., :3] * alpha), straight[..., 3]]).astype(np.uint8)
    tifffile.imwrite(tmp_path / "p.tif", premultiplied, photometric="rgb", extrasamples=["assocalpha"])
    picture = _files.read_picture(tmp_path / "p.tif")
    assert picture.mode == "RGBA"
    np.testing.assert_allclose(picture.pixels.astype(float), straight, atol=3)
    assert any("premultiplied" in note for note in picture.notes)


def test_float_pixels_keep_their_type_in_tiff_and_become_16_bit_in_png(tmp_path):
    pixels = np.random.default_rng(6).random((5, 4)).astype(np.float32)
    _files.write_picture(tmp_path / "x.tif", pixels)
    np.testing.assert_array_equal(_files.read_picture(tmp_path / "x.tif").pixels, pixels)
    notes = _files.write_picture(tmp_path / "x.png", pixels)
    back = _files.read_picture(tmp_path / "x.png").pixels
    assert back.dtype == np.uint16 and any("16-bit" in note for note in notes)
    np.testing.assert_allclose(back / 65535, pixels, atol=1 / 65535)


def test_sixteen_bits_into_jpeg_are_narrowed_and_that_is_said(tmp_path):
    pixels = np.full((8, 8, 3), 40000, np.uint16)
    notes = _files.write_picture(tmp_path / "x.jpg", pixels)
    assert any("8 bits" in note for note in notes)
    assert abs(int(_files.read_picture(tmp_path / "x.jpg").pixels.mean()) - 40000 // 257) <= 1


def test_lzw_tiff_of_16_bit_colour_needs_imagecodecs_and_says_so(tmp_path, monkeypatch):
    tifffile.imwrite(tmp_path / "x.tif", random_pixels((4, 4, 3), np.uint16), photometric="rgb")

    def needs_codec(self, *args, **kwargs):
        raise ValueError("<COMPRESSION.LZW: 5> requires the 'imagecodecs' package")
    monkeypatch.setattr(tifffile.TiffPage, "asarray", needs_codec)
    with pytest.raises(ValueError, match="x.tif.*imagecodecs"):
        _files.read_picture(tmp_path / "x.tif")


# -- metadata -------------------------------------------------------------------------------------

def test_exif_keeps_its_tags_and_gets_orientation_1_and_xmp_loses_its_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Maker", "Model 7", 8
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
           b'22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
           b'tiff:Orientation="8"/></rdf:RDF></x:xmpmeta>')
    Image.fromarray(random_pixels((6, 10, 3))).save(tmp_path / "in.jpg", exif=exif, xmp=xmp)
    picture = _files.read_picture(tmp_path / "in.jpg")
    assert picture.pixels.shape == (10, 6, 3)
    read = Image.Exif()
    read.load(picture.exif)
    assert read[0x0112] == 1 and read[0x010F] == "Maker" and read[0x0110] == "Model 7"
    assert read.get_ifd(0x8769)[0x9003] == "2024:05:06 07:08:09"
    assert b"tiff:Orientation" not in picture.xmp and b"xmpmeta" in picture.xmp


def test_jpeg_comment_and_density_survive(tmp_path):
    Image.fromarray(random_pixels((8, 8, 3))).save(tmp_path / "in.jpg", comment=b"scanned at home",
                                                   dpi=(300, 300))
    picture = _files.read_picture(tmp_path / "in.jpg")
    assert picture.text == {"Comment": "scanned at home"}
    assert picture.resolution == (300, 300, "inch")
    _files.write_picture(tmp_path / "out.jpg", picture.pixels, picture)
    out = Image.open(tmp_path / "out.jpg")
    assert out.info["comment"] == b"scanned at home" and out.info["dpi"] == (300, 300)


def test_webp_keeps_profile_exif_and_xmp(tmp_path):
    icc = srgb_profile()
    exif = Image.Exif()
    exif[0x010F] = "Maker"
    Image.fromarray(random_pixels((8, 8, 3))).save(tmp_path / "in.png", icc_profile=icc, exif=exif)
    picture = _files.read_picture(tmp_path / "in.png")
    picture = _files.Picture(picture.pixels, mode="RGB", icc_profile=icc, exif=picture.exif,
                             xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
    assert _files.write_picture(tmp_path / "out.webp", picture.pixels, picture) == []
    back = _files.read_picture(tmp_path / "out.webp")
    assert back.icc_profile == icc and back.xmp == picture.xmp
    assert Image.open(tmp_path / "out.webp").getexif()[0x010F] == "Maker"


def test_sixteen_bit_colour_png_keeps_profile_exif_text_and_density(tmp_path):
    pixels = random_pixels((5, 7, 3), np.uint16, seed=7)
    exif = Image.Exif()
    exif[0x010F] = "Maker"
    meta = _files.Picture(pixels, mode="RGB", icc_profile=srgb_profile(), exif=exif.tobytes(),
                          xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>", text={"Title": "deep"},
                          resolution=(300.0, 300.0, "inch"))
    assert _files.write_picture(tmp_path / "deep.png", pixels, meta) == []
    back = _files.read_picture(tmp_path / "deep.png")
    np.testing.assert_array_equal(back.pixels, pixels)
    assert back.icc_profile == meta.icc_profile and back.xmp == meta.xmp
    assert back.text == {"Title": "deep"}
    assert Image.open(tmp_path / "deep.png").getexif()[0x010F] == "Maker"
    assert back.resolution[2] == "inch" and abs(back.resolution[0] - 300) < 0.01


def test_what_a_format_cannot_hold_is_named(tmp_path):
    pixels = random_pixels((4, 4, 3))
    meta = _files.Picture(pixels, mode="RGB", icc_profile=srgb_profile(), exif=Image.Exif().tobytes(),
                          xmp=b"<x/>", text={"Title": "t"}, resolution=(72.0, 72.0, "inch"))
    notes = " ".join(_files.write_picture(tmp_path / "x.bmp", pixels, meta))
    for word in ("ICC profile", "XMP", "text", "BMP"):
        assert word in notes
    assert "resolution" not in notes  # BMP holds it
    notes = " ".join(_files.write_picture(tmp_path / "x.tif", pixels, meta))
    assert "EXIF" in notes and "ICC" not in notes


def test_tiff_text_tags_and_centimetre_resolution_survive(tmp_path):
    pixels = random_pixels((5, 5), np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", pixels, resolution=((11811, 100), (11811, 100)),
                     resolutionunit="CENTIMETER", description="plate 3", metadata=None,
                     extratags=[(315, "s", 0, "A. Person", True)])
    picture = _files.read_picture(tmp_path / "in.tif")
    assert picture.text == {"Description": "plate 3", "Author": "A. Person"}
    _files.write_picture(tmp_path / "out.tif", picture.pixels, picture)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        tags = tif.pages[0].tags
        assert tags["XResolution"].value == (11811, 100) and tags["YResolution"].value == (11811, 100)
        assert tags["ResolutionUnit"].value == tifffile.RESUNIT.CENTIMETER
        assert tags["ImageDescription"].value == "plate 3" and tags["Artist"].value == "A. Person"


# -- size limit -----------------------------------------------------------------------------------

def test_a_tiff_header_claiming_a_huge_size_is_refused_before_decoding(tmp_path, monkeypatch):
    tifffile.imwrite(tmp_path / "big.tif", random_pixels((4, 4)), photometric="minisblack")
    claim_size_in_tiff(tmp_path / "big.tif", 30000, 20000)

    def decoded(*args, **kwargs):
        raise AssertionError("the pixels were decoded")
    monkeypatch.setattr(tifffile.TiffPage, "asarray", decoded)
    with pytest.raises(ValueError) as info:
        _files.read_picture(tmp_path / "big.tif")
    message = str(info.value)
    for words in ("big.tif", "30000x20000", "600 megapixels", f"{_files.DEFAULT_MAX_MEGAPIXELS:g}",
                  "--max-megapixels 600"):
        assert words in message


def test_the_limit_can_be_raised_or_lifted(tmp_path):
    pixels = random_pixels((300, 400))
    _files.write_picture(tmp_path / "x.png", pixels)
    with pytest.raises(ValueError, match="400x300"):
        _files.read_picture(tmp_path / "x.png", max_megapixels=0.1)
    for limit in (0.2, None):
        np.testing.assert_array_equal(_files.read_picture(tmp_path / "x.png", max_megapixels=limit).pixels,
                                      pixels)
    with pytest.raises(ValueError, match="max_megapixels"):
        _files.read_picture(tmp_path / "x.png", max_megapixels=-1)


def test_pillows_own_bomb_limit_does_not_get_in_the_way(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses above twice this
    pixels = random_pixels((60, 50))
    Image.fromarray(pixels).save(tmp_path / "x.png")
    np.testing.assert_array_equal(_files.read_picture(tmp_path / "x.png").pixels, pixels)
    assert Image.MAX_IMAGE_PIXELS == 1000  # put back


# -- failures -------------------------------------------------------------------------------------

@pytest.mark.parametrize("interruption", [KeyboardInterrupt, OSError])
def test_an_interrupted_write_leaves_no_file_behind(tmp_path, monkeypatch, interruption):
    target = tmp_path / "out.png"
    target.write_bytes(b"the previous result")

    def interrupted(*args, **kwargs):
        raise interruption("stopped")
    monkeypatch.setattr(_files.os, "replace", interrupted)
    with pytest.raises(interruption):
        _files.write_picture(target, random_pixels((20, 20, 3)))
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert target.read_bytes() == b"the previous result"


def test_a_failure_inside_the_encoder_leaves_no_file_behind(tmp_path, monkeypatch):
    def broken(self, fp, *args, **kwargs):
        with open(fp, "wb") as file:
            file.write(b"half a picture")
        raise KeyboardInterrupt
    monkeypatch.setattr(Image.Image, "save", broken)
    with pytest.raises(KeyboardInterrupt):
        _files.write_picture(tmp_path / "out.jpg", random_pixels((20, 20, 3)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("pixels, words", [
    (np.zeros((4, 4, 5), np.uint8), "layout"),
    (np.zeros((0, 4), np.uint8), "no pixels"),
    (np.zeros((4, 4), np.int32), "int32"),
    (np.full((4, 4), 2.0), r"\[0, 1\]"),
])
def test_write_refuses_pixels_it_cannot_store(tmp_path, pixels, words):
    with pytest.raises(ValueError, match=words):
        _files.write_picture(tmp_path / "x.png", pixels)
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_cmyk_metadata_on_other_layouts_and_an_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match="CMYK"):
        _files.write_picture(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8),
                             _files.Picture(np.zeros((4, 4, 4), np.uint8), mode="CMYK"))
    with pytest.raises(ValueError, match="x.xyz.*png"):
        _files.write_picture(tmp_path / "x.xyz", np.zeros((4, 4), np.uint8))
    with pytest.raises(TypeError, match="Picture"):
        _files.write_picture(tmp_path / "x.png", np.zeros((4, 4), np.uint8), {"mode": "L"})
    assert list(tmp_path.iterdir()) == []
