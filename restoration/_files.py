"""Image files as people have them: read and write keeping mode, bit depth and orientation.

``sol5_utils.read_image`` gives the assignment's float images (gray or RGB).  The command line
instead restores a person's file and writes back what it read: gray stays gray, RGB stays RGB, an
alpha channel is carried through untouched, 16-bit stays 16-bit, and a phone photo whose EXIF
tag says "rotated" is turned the right way up when it is read (and written upright).

Pillow (through imageio) reads and writes almost everything; 16-bit colour PNG, which Pillow
narrows to 8 bits, goes through ``pypng``, and TIFF through ``tifffile``.
"""

import os
import pathlib

import imageio.v3 as iio
import numpy as np

#: Extensions the folder mode of the command line picks up.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
JPEG_QUALITY = 95
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_picture(path):
    """Read an image file as stored: integer or float pixels, with EXIF orientation applied.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    pixels : ndarray
        Shape ``(H, W)`` (gray), ``(H, W, 2)`` (gray + alpha), ``(H, W, 3)`` (RGB) or
        ``(H, W, 4)`` (RGBA); dtype as stored (uint8, uint16, or float in [0, 1]).

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        Naming the file: not an image, truncated, no pixels, an unsupported layout, NaNs, or
        float values outside [0, 1].

    Examples
    --------
    >>> import tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "deep.png"
    >>> write_picture(path, np.full((2, 3, 3), 40000, np.uint16))
    >>> pixels = read_picture(path)
    >>> pixels.dtype, pixels.shape, int(pixels.max())
    (dtype('uint16'), (2, 3, 3), 40000)
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file; check the path")
    try:
        if _is_deep_colour_png(path):
            pixels = _read_deep_png(path)
        else:
            pixels = _read_with_pillow(path)
    except Exception as exc:  # decoders raise many kinds of errors
        raise ValueError(f"{path}: cannot be read as an image ({exc}); is it a complete, "
                         "valid image file?") from exc
    return _check_pixels(np.asarray(pixels), path)


def _read_with_pillow(path):
    if path.suffix.lower() in (".tif", ".tiff"):  # Pillow narrows 16-bit colour TIFF to 8 bits
        return iio.imread(path, plugin="tifffile")
    return iio.imread(path, plugin="pillow", rotate=True)


def _check_pixels(pixels, path):
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[-1] not in (2, 3, 4)):
        raise ValueError(f"{path}: unsupported image layout {pixels.shape}; expected gray, gray + "
                         "alpha, RGB or RGBA (one frame)")
    if pixels.size == 0:
        raise ValueError(f"{path}: the image has no pixels (shape {pixels.shape})")
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    if np.issubdtype(pixels.dtype, np.floating):
        if not np.isfinite(pixels).all():
            raise ValueError(f"{path}: the image holds NaN or infinite values; repair or "
                             "re-export it")
        low, high = pixels.min(), pixels.max()
        if low < 0 or high > 1:
            raise ValueError(f"{path}: float pixel values must lie in [0, 1], got "
                             f"[{low:.3g}, {high:.3g}]")
    elif pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{path}: unsupported pixel type {pixels.dtype}; save it as 8- or "
                         "16-bit")
    return pixels


def write_picture(path, pixels):
    """Write ``pixels`` (as :func:`read_picture` returns them) to ``path``, atomically.

    The format follows the extension.  16-bit data stays 16-bit in PNG and TIFF; JPEG, which
    holds 8 bits and no alpha, gets 8-bit data (quality ``JPEG_QUALITY``).  The file appears
    complete or not at all: it is written beside its target, then renamed.

    Raises
    ------
    ValueError
        For alpha into a JPEG, or an extension no writer knows.
    OSError
        If the folder cannot be written.
    """
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    pixels = np.asarray(pixels)
    is_jpeg = suffix in (".jpg", ".jpeg")
    if is_jpeg and pixels.ndim == 3 and pixels.shape[-1] in (2, 4):
        raise ValueError(f"{path}: JPEG cannot hold the image's alpha channel; write a .png")
    if is_jpeg and pixels.dtype == np.uint16:
        pixels = (pixels // 257).astype(np.uint8)
    tmp = path.with_name(f".{path.stem}.partial{os.getpid()}{path.suffix}")
    try:
        if suffix == ".png" and pixels.dtype == np.uint16 and pixels.ndim == 3:
            _write_deep_png(tmp, pixels)
        elif is_jpeg:
            iio.imwrite(tmp, pixels, quality=JPEG_QUALITY)
        else:
            iio.imwrite(tmp, pixels)
        os.replace(tmp, path)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        if tmp.exists():
            tmp.unlink()
        if isinstance(exc, OSError):
            raise
        kind = suffix or "a file without an extension"
        raise ValueError(f"{path}: cannot write this image as {kind} ({exc}); "
                         "use .png, .tif or .jpg") from exc


def _is_deep_colour_png(path):
    """True for a PNG with 16 bits per sample and colour (Pillow reads those as 8-bit)."""
    with open(path, "rb") as file:
        head = file.read(26)
    # the IHDR chunk follows the signature: length, type, width, height, bit depth, colour type
    return (head[:8] == _PNG_SIGNATURE and len(head) == 26 and head[24] == 16
            and head[25] in (2, 6))


def _read_deep_png(path):
    import png
    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    planes = info["planes"]
    pixels = np.vstack([np.asarray(row, np.uint16) for row in rows])
    return pixels.reshape(height, width, planes)


def _write_deep_png(path, pixels):
    import png
    height, width, planes = pixels.shape
    writer = png.Writer(width, height, greyscale=planes < 3, alpha=planes in (2, 4), bitdepth=16)
    with open(path, "wb") as file:
        writer.write(file, pixels.reshape(height, width * planes))
