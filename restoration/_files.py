"""Image files as people have them: read and write keeping layout, bit depth and metadata.

``sol5.read_image`` gives the assignment's float images (gray or RGB).  The command line
instead restores a person's file and writes back what it read.  :func:`read_picture` returns a
:class:`Picture`: the pixels, turned the right way up, in one of five layouts (gray, gray + alpha,
RGB, RGBA, CMYK) at 8 or 16 bits (or float in [0, 1]), with what the file carries besides them:
its ICC profile, EXIF, XMP, text and resolution.  :func:`write_picture` writes pixels with that
metadata, keeping what the target format can hold, and says what it could not keep.

Everything else a file can hold is either converted to one of those layouts (palettes, a
transparent colour key, 1-bit, YCbCr, inverted gray, premultiplied alpha, the main picture of
a phone's multi-picture JPEG) or refused with a message that names the file and what to do
(CIE L*a*b* colour, animations and multi-page files, more than one extra channel, ...).  An
image with more pixels than a limit is refused from its header, before any pixel is decoded.

Pillow reads and writes almost everything; 16-bit PNG with alpha or colour, which Pillow
narrows to 8 bits, goes through ``pypng``, and TIFF through ``tifffile`` (through Pillow where
``tifffile`` lacks the codec, e.g. LZW or JPEG compression without ``imagecodecs``).
``docs/image-files.md`` has the table of layouts and metadata.
"""

import contextlib
import dataclasses
import fractions
import io
import math
import numbers
import os
import pathlib
import re
import warnings

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

#: Extensions the folder mode of the command line picks up, and the formats written.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
JPEG_QUALITY = 95
#: Images with more pixels than this (in millions) are refused unless the caller allows them.
DEFAULT_MAX_MEGAPIXELS = 250
#: The layouts a :class:`Picture` holds, with their number of channels.
MODES = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "CMYK": 4}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
            ".bmp": "BMP", ".webp": "WEBP"}
#: What each format written can hold besides the pixels ("comment": the text entry "Comment"
#: only; "tiff text": the entries Description, Author and Copyright).
_HOLDS = {"PNG": {"icc_profile", "exif", "xmp", "text", "resolution"},
          "JPEG": {"icc_profile", "exif", "xmp", "comment", "resolution"},
          "TIFF": {"icc_profile", "xmp", "tiff text", "resolution"},
          "WEBP": {"icc_profile", "exif", "xmp"},
          "BMP": {"resolution"}}
#: TIFF's text tags and the PNG keywords that mean the same.
_TIFF_TEXT_TAGS = {270: "Description", 315: "Author", 33432: "Copyright"}
_ORIENTATION = 0x0112
_NAMES = {"icc_profile": "ICC profile", "exif": "EXIF", "xmp": "XMP", "resolution": "resolution"}


@dataclasses.dataclass(frozen=True, eq=False)  # pixels are arrays: no == or hash
class Picture:
    """An image file's pixels, upright, and what the file carries besides them.

    Parameters
    ----------
    pixels : ndarray
        ``(H, W)`` gray, or ``(H, W, C)`` with ``C`` the channels of ``mode``; uint8, uint16,
        or float in [0, 1].
    mode : {'L', 'LA', 'RGB', 'RGBA', 'CMYK'}, optional
        The layout; by default the one the channel count suggests (4 channels: RGBA).
    icc_profile, exif, xmp : bytes, optional
        The ICC colour profile as stored; the EXIF block (Pillow's form, starting ``Exif``) with
        orientation 1 if the file had an orientation tag; the XMP packet.
    text : dict of str to str, optional
        PNG text chunks by keyword; a JPEG or GIF comment as ``"Comment"``; TIFF's
        ImageDescription, Artist and Copyright as ``"Description"``, ``"Author"``,
        ``"Copyright"``.
    resolution : (float, float, str or None), optional
        Pixels per unit across and down, and the unit: ``'inch'``, ``'cm'`` or None (a ratio
        only).
    format : str, optional
        The format read, as Pillow names it (``'JPEG'``, ``'PNG'``, ``'TIFF'``, ...).
    notes : tuple of str, optional
        What reading converted or could not keep, for the user.

    Raises
    ------
    ValueError
        For an unknown mode or one that does not match the pixels' channels.

    Examples
    --------
    >>> Picture(np.zeros((2, 3, 4), np.uint8)).mode
    'RGBA'
    >>> Picture(np.zeros((2, 3, 4), np.uint8), mode="CMYK").mode
    'CMYK'
    """

    pixels: np.ndarray
    mode: str = None
    icc_profile: bytes = None
    exif: bytes = None
    xmp: bytes = None
    text: dict = dataclasses.field(default_factory=dict)
    resolution: tuple = None
    format: str = None
    notes: tuple = ()

    def __post_init__(self):
        pixels = np.asarray(self.pixels)
        channels = 1 if pixels.ndim == 2 else pixels.shape[-1] if pixels.ndim == 3 else None
        mode = self.mode or {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}.get(channels)
        if mode not in MODES or MODES[mode] != channels:
            raise ValueError(f"Picture: mode {self.mode!r} does not fit pixels of shape "
                             f"{pixels.shape}; modes: " + ", ".join(
                                 f"{m} ({n} channel{'s' * (n > 1)})" for m, n in MODES.items()))
        object.__setattr__(self, "pixels", pixels)
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "text", dict(self.text or {}))
        object.__setattr__(self, "notes", tuple(self.notes))


class _Refused(Exception):
    """A file read but not accepted; the message says why and what to do."""


def read_picture(path, max_megapixels=DEFAULT_MAX_MEGAPIXELS):
    """Read an image file as stored: its pixels upright, with its profile and metadata.

    Parameters
    ----------
    path : str or path-like
    max_megapixels : float or None, optional
        Refuse images with more pixels than this many millions, from the file's header and
        before decoding (a small file can claim a huge size).  None or 0: no limit.

    Returns
    -------
    picture : Picture
        ``pixels`` in one of ``MODES``, dtype as stored (uint8, uint16, or float in [0, 1]),
        with EXIF orientation (TIFF: the Orientation tag) applied; the EXIF kept then says
        orientation 1, and an XMP orientation is removed.  ``notes`` says what was converted
        (a palette expanded, a transparent colour made alpha, ...) or not kept.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        Naming the file: not an image, truncated, more pixels than ``max_megapixels``, a
        layout it cannot restore (CIE L*a*b*, several frames or pages, ...), NaNs, or float
        values outside [0, 1]; or a negative ``max_megapixels``.

    Examples
    --------
    >>> import tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "deep.png"
    >>> _ = write_picture(path, np.full((2, 3, 3), 40000, np.uint16))
    >>> picture = read_picture(path)
    >>> picture.mode, picture.pixels.dtype, picture.pixels.shape, int(picture.pixels.max())
    ('RGB', dtype('uint16'), (2, 3, 3), 40000)
    >>> read_picture(path, max_megapixels=0.000001)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ...deep.png: the image is 3x2 pixels (6e-06 megapixels), more than the limit ...
    """
    limit = _pixel_limit(max_megapixels)
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file; check the path")
    try:
        with open(path, "rb") as file:
            head = file.read(26)
        with _without_pillows_bomb_check():
            if head[:4] in _TIFF_SIGNATURES:
                picture = _read_tiff(path, limit)
            else:
                picture = _read_with_pillow(path, head, limit)
    except _Refused as exc:
        raise ValueError(f"{path}: {exc}") from None
    except Exception as exc:  # decoders raise many kinds of errors
        raise ValueError(f"{path}: cannot be read as an image ({exc}); is it a complete, "
                         "valid image file?") from exc
    return picture


def _pixel_limit(max_megapixels):
    if max_megapixels is None:
        return None
    if isinstance(max_megapixels, bool) or not isinstance(max_megapixels, numbers.Real):
        raise TypeError(f"max_megapixels must be a number or None, got {max_megapixels!r}")
    if not max_megapixels >= 0:
        raise ValueError(f"max_megapixels must be positive (or 0 or None: no limit), got "
                         f"{max_megapixels}")
    return max_megapixels or None


def _check_size(width, height, limit):
    megapixels = width * height / 1e6
    if limit is not None and megapixels > limit:
        allow = math.ceil(megapixels)
        raise _Refused(
            f"the image is {width}x{height} pixels ({megapixels:.3g} megapixels), more than the "
            f"limit of {limit:g} megapixels. A small file can claim a huge size (a "
            "'decompression bomb'), so it was refused from its header, before decoding. If you "
            f"trust the file, allow it with --max-megapixels {allow} (max_megapixels={allow} "
            "from Python), or 0 for no limit; restoring needs memory in proportion to the "
            "pixels.")


@contextlib.contextmanager
def _without_pillows_bomb_check():
    """Pillow's own guard off: :func:`read_picture` checks the size itself, with its limit."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _read_with_pillow(path, head, limit):
    with Image.open(path) as image:
        _check_size(*image.size, limit)
        notes = []
        frames = getattr(image, "n_frames", 1)
        if frames > 1 and image.format != "MPO":
            raise _Refused(f"the file holds {frames} frames (an animation or a multi-frame "
                           "file); sol5 restores single pictures: save the frame you want as "
                           "a file of its own")
        if frames > 1:
            notes.append(f"the file holds {frames} images (a phone's main picture and "
                         f"{frames - 1} more, such as a preview, a depth map or an HDR gain "
                         "map); only the main picture is restored and written")
        orientation = image.getexif().get(_ORIENTATION)
        if head[:8] == _PNG_SIGNATURE and len(head) == 26 and head[24] == 16:
            pixels, mode = _read_deep_png(path, colour_type=head[25], notes=notes)
            pixels = _orient(pixels, orientation or 1)
            exif = image.getexif()
            xmp = image.info.get("xmp")
            if orientation not in (None, 1):
                xmp = _without_xmp_orientation(xmp)
        else:
            ImageOps.exif_transpose(image, in_place=True)  # also drops it from the XMP
            pixels, mode = _pillow_pixels(image, notes)
            exif, xmp = image.getexif(), image.info.get("xmp")
        if orientation is not None:
            exif[_ORIENTATION] = 1
        if image.format == "PNG":
            text = {key: str(value) for key, value in image.text.items()
                    if key not in ("XML:com.adobe.xmp", "Raw profile type exif")}
        else:
            text = {"Comment": _decoded(image.info["comment"])} if image.info.get("comment") else {}
        dpi = image.info.get("dpi")
        return Picture(_checked(pixels), mode, icc_profile=image.info.get("icc_profile") or None,
                       exif=exif.tobytes() if len(exif) else None, xmp=xmp or None, text=text,
                       resolution=(float(dpi[0]), float(dpi[1]), "inch") if dpi else None,
                       format=image.format, notes=notes)


def _decoded(comment):
    if isinstance(comment, str):
        return comment
    try:
        return comment.decode("utf-8")
    except UnicodeDecodeError:
        return comment.decode("latin-1")


def _pillow_pixels(image, notes):
    """An opened image's pixels in one of ``MODES``, converting what Pillow can convert exactly."""
    mode = image.mode
    if mode in ("LAB", "HSV"):
        raise _Refused(_LAB if mode == "LAB" else "the image stores HSV colour, which sol5 does "
                       "not restore; save it as RGB and restore that")
    if mode in ("P", "PA"):
        alpha = mode == "PA" or "transparency" in image.info
        target = "RGBA" if alpha else "RGB"
        notes.append(f"its palette colours were expanded to {target}" + (
            " (the transparent entry became alpha)" if mode == "P" and alpha else "")
            + "; it is written without a palette")
        image = image.convert(target)
    elif mode in ("L", "RGB") and "transparency" in image.info:
        image = image.convert(mode[0] + "A" if mode == "L" else "RGBA")
        notes.append(f"its transparent colour became an alpha channel; it is written as "
                     f"{image.mode}")
    elif mode == "1":
        image = image.convert("L")
        notes.append("its 1-bit pixels are restored and written as 8-bit gray")
    elif mode == "YCbCr":
        image = image.convert("RGB")
        notes.append("its YCbCr colour was converted to RGB; it is written as RGB")
    elif mode in ("RGBa", "La"):
        image = image.convert(mode.upper())
        notes.append("its premultiplied alpha was converted to straight alpha")
    elif mode == "RGBX":
        image = image.convert("RGB")
    pixels = np.asarray(image)
    if image.mode in MODES:
        return pixels, image.mode
    if image.mode.startswith("I;16"):
        return pixels.astype(np.uint16), "L"
    if image.mode == "I" and pixels.size and pixels.min() >= 0 and pixels.max() <= 65535:
        return pixels.astype(np.uint16), "L"
    if image.mode == "F":
        return pixels, "L"
    raise _Refused(f"its pixel layout (Pillow mode {image.mode}) is not one sol5 restores; save "
                   "it as 8- or 16-bit gray, RGB or RGBA")


_LAB = ("the image stores CIE L*a*b* colour, which sol5 does not restore; convert it to RGB "
        "first (e.g. in an image editor) and restore that")


def _read_deep_png(path, colour_type, notes):
    """A 16-bit PNG through pypng, which Pillow would narrow to 8 bits (a colour key -> alpha)."""
    import png
    with open(path, "rb") as file:
        width, height, rows, info = png.Reader(file=file).asDirect()
        planes = info["planes"]
        pixels = np.vstack([np.asarray(row, np.uint16) for row in rows])
    pixels = pixels.reshape(height, width, planes)
    if planes > {0: 1, 2: 3}.get(colour_type, planes):
        notes.append(f"its transparent colour became an alpha channel; it is written as "
                     f"{'LA' if planes == 2 else 'RGBA'}")
    return (pixels[..., 0] if planes == 1 else pixels), {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[planes]


def _read_tiff(path, limit):
    import tifffile
    with tifffile.TiffFile(path) as tif:
        # reduced-resolution copies (previews) and transparency masks are not pictures of their own
        pages = [page for page in tif.pages if not getattr(page, "subfiletype", 0) & 0b101]
        if not pages:
            raise _Refused("the TIFF holds no full-resolution image")
        page = pages[0]
        _check_size(page.imagewidth, page.imagelength, limit)
        if len(pages) > 1:
            raise _Refused(f"the TIFF holds {len(pages)} pages (a multi-page document or a "
                           "stack); sol5 restores single pictures: save the page you want as "
                           "a file of its own")
        photometric = tifffile.PHOTOMETRIC
        kind = page.photometric
        if kind in (photometric.CIELAB, photometric.ICCLAB, photometric.ITULAB):
            raise _Refused(_LAB)
        if kind not in (photometric.MINISWHITE, photometric.MINISBLACK, photometric.RGB,
                        photometric.SEPARATED, photometric.PALETTE, photometric.YCBCR):
            raise _Refused(f"the TIFF stores {kind.name} data, which sol5 does not restore; "
                           "save it as gray, RGB or CMYK")
        notes = []
        pixels = None
        if kind not in (photometric.PALETTE, photometric.YCBCR):
            try:
                pixels, mode = _tifffile_pixels(page, notes)
            except ValueError as exc:
                if "imagecodecs" not in str(exc):
                    raise
                if page.bitspersample > 8 and page.samplesperpixel > 1:
                    raise _Refused(f"it is compressed as {page.compression.name}, which needs "
                                   "the optional imagecodecs package to read at "
                                   f"{page.bitspersample} bits: pip install imagecodecs "
                                   "(or save it uncompressed or with Deflate)") from None
        if pixels is None:  # Pillow converts palettes and YCbCr and has libtiff's codecs
            with Image.open(path) as image:
                pixels, mode = _pillow_pixels(image, notes)
        picture = _tiff_metadata(page, notes)
    orientation = picture.pop("orientation")
    if orientation != 1:
        pixels = _orient(pixels, orientation)
        picture["xmp"] = _without_xmp_orientation(picture["xmp"])
    return Picture(_checked(pixels), mode, format="TIFF", notes=notes, **picture)


def _tifffile_pixels(page, notes):
    import tifffile
    photometric = tifffile.PHOTOMETRIC
    pixels = page.asarray()
    if "S" in page.axes and page.axes.index("S") == 0:  # planar: one plane after the other
        pixels = np.moveaxis(pixels, 0, -1)
    extras = len(page.extrasamples)
    colours = page.samplesperpixel - extras
    expected = {photometric.MINISWHITE: 1, photometric.MINISBLACK: 1, photometric.RGB: 3,
                photometric.SEPARATED: 4}[page.photometric]
    most_extras = 0 if page.photometric == photometric.SEPARATED else 1  # alpha, not for CMYK
    if pixels.ndim > 3 or colours != expected or extras > most_extras:
        raise _Refused(f"the TIFF holds {colours} {page.photometric.name} channel(s) and {extras} "
                       "extra channel(s); sol5 restores gray, RGB or CMYK with at most an alpha "
                       "channel (CMYK without)")
    if page.photometric == photometric.SEPARATED and getattr(page, "inkset", 1) != 1:
        raise _Refused("the TIFF stores inks other than CMYK, which sol5 does not restore")
    if pixels.dtype == bool:
        notes.append("its 1-bit pixels are restored and written as 8-bit gray")
    if page.photometric == photometric.MINISWHITE:
        if pixels.ndim == 2:
            pixels = _inverted(pixels)
        else:  # not the alpha channel
            pixels = np.concatenate([_inverted(pixels[..., :1]), pixels[..., 1:]], axis=-1)
        notes.append("its gray is stored with 0 as white; it is written with 0 as black")
    if extras and page.extrasamples[0] == tifffile.EXTRASAMPLE.ASSOCALPHA:
        pixels = _straight_alpha(pixels)
        notes.append("its premultiplied alpha was converted to straight alpha")
    mode = {1: "L", 3: "RGB", 4: "CMYK"}[colours] if not extras else {1: "LA", 3: "RGBA"}[colours]
    return pixels, mode


def _inverted(pixels):
    if pixels.dtype == bool:
        return ~pixels
    if np.issubdtype(pixels.dtype, np.integer):
        return np.iinfo(pixels.dtype).max - pixels
    return 1 - pixels


def _straight_alpha(pixels):
    """Premultiplied colours divided by their alpha (colour 0 where alpha is 0)."""
    alpha = pixels[..., -1:].astype(np.float64)
    colour = pixels[..., :-1] / np.where(alpha > 0, alpha, 1) * np.where(alpha > 0, 1, 0)
    if np.issubdtype(pixels.dtype, np.integer):
        top = np.iinfo(pixels.dtype).max
        colour = np.clip(np.round(colour * top), 0, top)
    out = pixels.copy()
    out[..., :-1] = colour
    return out


def _tiff_metadata(page, notes):
    import tifffile
    tags = page.tags

    def value(code):
        tag = tags.get(code)
        return None if tag is None else tag.value

    text = {}
    for code, key in _TIFF_TEXT_TAGS.items():
        entry = value(code)
        generated = code == 270 and (page.is_shaped or page.is_imagej or page.is_ome)
        if isinstance(entry, str) and entry.strip("\x00 ") and not generated:
            text[key] = entry
    resolution = None
    if value(282) and value(283):
        unit = {tifffile.RESUNIT.NONE: None, tifffile.RESUNIT.CENTIMETER: "cm"}.get(
            value(296), "inch")
        resolution = (_number(value(282)), _number(value(283)), unit)
    if value(34665) is not None or value(34853) is not None:
        notes.append("its EXIF and GPS blocks are not kept (sol5 does not copy them out of a "
                     "TIFF)")
    icc, xmp = value(34675), value(700)
    return {"icc_profile": bytes(icc) if icc is not None else None,
            "xmp": bytes(xmp) if xmp is not None else None, "text": text,
            "resolution": resolution, "orientation": int(value(274) or 1)}


def _number(rational):
    if isinstance(rational, tuple):
        return rational[0] / rational[1] if rational[1] else 0.0
    return float(rational)


def _orient(pixels, orientation):
    """Turn stored pixels upright by an EXIF/TIFF orientation (1-8), as Pillow does."""
    steps = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1],
             4: lambda a: a[::-1], 5: lambda a: a.swapaxes(0, 1),
             6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
             8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(steps.get(orientation, steps[1])(pixels))


def _without_xmp_orientation(xmp):
    """XMP without its tiff:Orientation, as Pillow's ``ImageOps.exif_transpose`` leaves it."""
    if not xmp:
        return xmp
    for pattern in (rb'tiff:Orientation="[0-9]"', rb"<tiff:Orientation>[0-9]</tiff:Orientation>"):
        xmp = re.sub(pattern, b"", xmp)
    return xmp


def _checked(pixels):
    """Pixels as a Picture holds them (bool -> uint8, native byte order), or _Refused why not."""
    pixels = np.asarray(pixels)
    if pixels.size == 0:
        raise _Refused(f"the image has no pixels (shape {pixels.shape})")
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[-1] not in (2, 3, 4)):
        raise _Refused(f"unsupported image layout {pixels.shape}; expected gray, gray + "
                       "alpha, RGB, RGBA or CMYK (one frame)")
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    if np.issubdtype(pixels.dtype, np.floating):
        if not np.isfinite(pixels).all():
            raise _Refused("the image holds NaN or infinite values; repair or "
                           "re-export it")
        low, high = pixels.min(), pixels.max()
        if low < 0 or high > 1:
            raise _Refused(f"float pixel values must lie in [0, 1], got "
                           f"[{low:.3g}, {high:.3g}]; scale them into [0, 1] or save the "
                           "image as 8- or 16-bit")
    elif pixels.dtype.kind != "u" or pixels.dtype.itemsize > 2:
        raise _Refused(f"unsupported pixel type {pixels.dtype}; save it as 8- or "
                       "16-bit")
    return pixels.astype(pixels.dtype.newbyteorder("="), copy=False)


def write_picture(path, pixels, metadata=None):
    """Write ``pixels`` to ``path`` atomically, with what ``metadata`` carries that the format holds.

    The format follows the extension (``IMAGE_SUFFIXES``).  16-bit data stays 16-bit in PNG
    and TIFF, float stays float in TIFF (16-bit in PNG); JPEG, WebP and BMP hold 8 bits.  CMYK
    (``metadata.mode``) stays CMYK in JPEG and TIFF and becomes RGB elsewhere (Pillow's
    conversion, without colour management).  The file appears complete or not at all: it is
    written beside its target, then renamed; on any error or interruption the partial file is
    removed.

    Parameters
    ----------
    path : str or path-like
    pixels : ndarray
        As :func:`read_picture` returns them (any size; 4 channels are RGBA unless
        ``metadata.mode`` is ``'CMYK'``).
    metadata : Picture, optional
        The picture the pixels came from: its mode, ICC profile, EXIF, XMP, text and
        resolution are written where the format holds them (its pixels are not used).

    Returns
    -------
    notes : list of str
        What was converted or not kept (e.g. "PNG cannot hold ..."); empty if nothing was.

    Raises
    ------
    TypeError
        If ``metadata`` is not a Picture.
    ValueError
        Naming the file: pixels of a layout or type no image holds, alpha into a JPEG, a CMYK
        mode on other than 4 channels, or an extension no writer knows.
    OSError
        If the folder cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> cmyk = Picture(np.full((2, 3, 4), 100, np.uint8), mode="CMYK", text={"Title": "ink"})
    >>> write_picture(folder / "ink.tif", cmyk.pixels, cmyk)  # TIFF keeps CMYK
    ['TIFF cannot hold the text entry Title; it is not kept']
    >>> notes = write_picture(folder / "ink.png", cmyk.pixels, cmyk)  # PNG has no CMYK
    >>> read_picture(folder / "ink.png").mode, read_picture(folder / "ink.png").text
    ('RGB', {'Title': 'ink'})
    """
    path = pathlib.Path(path)
    if metadata is not None and not isinstance(metadata, Picture):
        raise TypeError(f"metadata must be a Picture (as read_picture returns), got "
                        f"{type(metadata).__name__}")
    try:
        pixels = _checked(pixels)
    except _Refused as exc:
        raise ValueError(f"{path}: {exc}") from None
    channels = 1 if pixels.ndim == 2 else pixels.shape[-1]
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    if metadata is not None and metadata.mode == "CMYK":
        if channels != 4:
            raise ValueError(f"{path}: the metadata says CMYK but the pixels have {channels} "
                             "channel(s); CMYK has 4")
        mode = "CMYK"
    suffix = path.suffix.lower()
    kind = _FORMATS.get(suffix)
    if kind is None:
        raise ValueError(f"{path}: cannot write images as {suffix or 'a file without an extension'}; "
                         "use .png, .tif or .jpg (or .webp, .bmp)")
    if kind == "JPEG" and mode in ("LA", "RGBA"):
        raise ValueError(f"{path}: JPEG cannot hold the image's alpha channel; write a .png")
    if kind == "BMP" and mode in ("LA", "RGBA"):  # Pillow reads a BMP's alpha back as RGB
        raise ValueError(f"{path}: BMP does not keep the image's alpha channel; write a .png")
    meta = metadata if metadata is not None else Picture(pixels, mode)
    notes = []
    icc_profile = meta.icc_profile
    if mode == "CMYK" and kind not in ("JPEG", "TIFF"):
        pixels, mode = _cmyk_to_rgb(pixels), "RGB"
        notes.append(f"written as RGB: {kind} has no CMYK; converted with Pillow's formula "
                     "(no colour management, colours approximate); write .jpg or .tif to keep "
                     "the CMYK" + ("; its CMYK ICC profile is not kept" if icc_profile else ""))
        icc_profile = None
    if kind == "WEBP" and mode in ("L", "LA"):
        notes.append("written as RGB" + "A" * (mode == "LA") + ": WebP has no gray")
    pixels, note = _depth_for(kind, pixels)
    if note:
        notes.append(note)
    kept, dropped = _metadata_for(kind, meta, icc_profile)
    if dropped:
        notes.append(f"{kind} cannot hold the " + ", ".join(dropped) + "; "
                     + ("it is" if len(dropped) == 1 else "they are") + " not kept")
    tmp = path.with_name(f".{path.stem}.partial{os.getpid()}{path.suffix}")
    try:
        _SAVERS.get(kind, _save_with_pillow)(tmp, pixels, mode, kept, kind)
        os.replace(tmp, path)
    except BaseException as exc:  # an interruption too: never leave a partial file
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, (ValueError, TypeError, KeyError)):
            raise ValueError(f"{path}: cannot write this image as {suffix} ({exc}); "
                             "use .png, .tif or .jpg") from exc
        raise
    return notes


def _cmyk_to_rgb(pixels):
    """CMYK as RGB by Pillow's formula: R = (1 - C)(1 - K), on the dtype's range."""
    if pixels.dtype == np.uint8:
        return np.asarray(Image.fromarray(pixels, "CMYK").convert("RGB"))
    top = np.iinfo(pixels.dtype).max if pixels.dtype.kind == "u" else 1.0
    light = (top - pixels[..., :3].astype(np.float64)) * (top - pixels[..., 3:].astype(np.float64))
    light /= top
    return (np.round(light) if pixels.dtype.kind == "u" else light).astype(pixels.dtype)


def _depth_for(kind, pixels):
    """Pixels at a depth the format holds, and a note if they had to change."""
    if kind == "TIFF" or pixels.dtype == np.uint8 or (kind == "PNG" and pixels.dtype == np.uint16):
        return pixels, None
    if kind == "PNG":  # float
        return (np.round(pixels * 65535).astype(np.uint16),
                "written as 16-bit: PNG holds integers, not floats; write .tif to keep floats")
    if pixels.dtype == np.uint16:
        return ((pixels // 257).astype(np.uint8),
                f"narrowed to 8 bits: {kind} holds 8 bits per channel; write .png or .tif to keep "
                "16 bits")
    return (np.round(pixels * 255).astype(np.uint8),
            f"written as 8 bits: {kind} holds 8 bits per channel; write .tif to keep floats")


def _metadata_for(kind, meta, icc_profile):
    """``({what: value} the format keeps, [names of what it cannot hold])``."""
    holds = _HOLDS[kind]
    kept, dropped = {}, []
    for name, value in (("icc_profile", icc_profile), ("exif", meta.exif), ("xmp", meta.xmp),
                        ("resolution", meta.resolution)):
        if value is None:
            continue
        if name == "resolution" and value[2] is None and kind != "TIFF":
            value = None  # a ratio without a unit: only TIFF stores that
        if name in holds and value is not None:
            kept[name] = value
        elif value is None:
            dropped.append("resolution (a ratio without a unit)")
        else:
            dropped.append(_NAMES[name])
    allowed = (set(meta.text) if "text" in holds else {"Comment"} if "comment" in holds
               else set(_TIFF_TEXT_TAGS.values()) if "tiff text" in holds else set())
    kept["text"] = {key: value for key, value in meta.text.items() if key in allowed}
    lost = [key for key in meta.text if key not in allowed]
    if lost:
        dropped.append(f"text entr{'ies' if len(lost) > 1 else 'y'} " + ", ".join(lost))
    return kept, dropped


def _pillow_image(pixels, mode):
    if pixels.dtype == np.uint16:  # gray only: the rest goes through pypng or tifffile
        return Image.fromarray(pixels)
    return Image.fromarray(pixels, mode)


def _pillow_options(kind, kept):
    options = {}
    if "icc_profile" in kept:
        options["icc_profile"] = kept["icc_profile"]
    if "exif" in kept:
        options["exif"] = kept["exif"]
    if "resolution" in kept:
        x, y, unit = kept["resolution"]
        scale = 2.54 if unit == "cm" else 1.0
        options["dpi"] = (x * scale, y * scale)
    if kind == "JPEG":
        options["quality"] = JPEG_QUALITY
        if kept["text"].get("Comment"):
            options["comment"] = kept["text"]["Comment"].encode("utf-8")
    if "xmp" in kept and kind in ("JPEG", "WEBP"):
        options["xmp"] = kept["xmp"]
    if kind == "PNG":
        info = PngImagePlugin.PngInfo()
        for key, value in kept["text"].items():
            info.add_text(key, value)
        if "xmp" in kept:
            info.add_itxt("XML:com.adobe.xmp", kept["xmp"].decode("utf-8", "replace"))
        options["pnginfo"] = info
    return options


def _save_with_pillow(path, pixels, mode, kept, kind):
    _pillow_image(pixels, mode).save(str(path), format=kind, **_pillow_options(kind, kept))


def _save_png(path, pixels, mode, kept, kind):
    if pixels.dtype == np.uint16 and pixels.ndim == 3:
        _write_deep_png(path, pixels, kept)
    else:
        _save_with_pillow(path, pixels, mode, kept, kind)


def _write_deep_png(path, pixels, kept):
    """A 16-bit PNG with alpha or colour by pypng, with Pillow's metadata chunks spliced in."""
    import png
    height, width, planes = pixels.shape
    writer = png.Writer(width, height, greyscale=planes < 3, alpha=planes in (2, 4), bitdepth=16)
    carrier = io.BytesIO()  # a 1x1 PNG holding only the metadata, written by Pillow
    Image.new("L", (1, 1)).save(carrier, format="PNG", **_pillow_options("PNG", kept))
    extra = [chunk for chunk in png.Reader(bytes=carrier.getvalue()).chunks()
             if chunk[0] not in (b"IHDR", b"IDAT", b"IEND")]
    image = io.BytesIO()
    writer.write(image, pixels.reshape(height, width * planes))
    chunks = list(png.Reader(bytes=image.getvalue()).chunks())
    with open(path, "wb") as file:
        png.write_chunks(file, chunks[:1] + extra + chunks[1:])


def _save_tiff(path, pixels, mode, kept, kind):
    import tifffile
    text = kept["text"]
    extratags = [(code, "s", 0, text[key], True) for code, key in _TIFF_TEXT_TAGS.items()
                 if code != 270 and text.get(key)]
    if "xmp" in kept:
        extratags.append((700, "B", len(kept["xmp"]), kept["xmp"], True))
    options = {}
    if "resolution" in kept:
        x, y, unit = kept["resolution"]
        options["resolution"] = tuple(_rational(v) for v in (x, y))
        options["resolutionunit"] = {"inch": "INCH", "cm": "CENTIMETER", None: "NONE"}[unit]
    tifffile.imwrite(path, pixels, photometric={"L": "minisblack", "LA": "minisblack",
                                                "RGB": "rgb", "RGBA": "rgb",
                                                "CMYK": "separated"}[mode],
                     planarconfig="contig" if pixels.ndim == 3 else None,
                     extrasamples=["unassalpha"] if mode in ("LA", "RGBA") else None,
                     iccprofile=kept.get("icc_profile"), description=text.get("Description"),
                     metadata=None, extratags=extratags, **options)


def _rational(value):
    fraction = fractions.Fraction(value).limit_denominator(1_000_000)
    return fraction.numerator, fraction.denominator


_SAVERS = {"PNG": _save_png, "TIFF": _save_tiff}
