"""Small shared helpers: input checks, the i/255 grid, one-time warnings, a quiet TensorFlow import.

Every other module of the package (and ``sol5``) validates its inputs with these, so an error
names the argument and the fix in the same words everywhere.
"""

import contextlib
import os
import sys
import warnings

import numpy as np
import skimage.color
import skimage.util


def to_float_image(raw, representation=1, name="image"):
    """Convert a decoded image array to float64 in [0, 1] (gray or RGB)."""
    raw = np.asarray(raw)
    if raw.ndim == 3 and raw.shape[-1] in (2, 4):
        raw = raw[..., :-1]  # drop alpha
    if raw.ndim == 3 and raw.shape[-1] == 1:
        raw = raw[..., 0]
    if raw.ndim not in (2, 3) or (raw.ndim == 3 and raw.shape[-1] != 3):
        raise ValueError(f"{name}: unsupported image shape {raw.shape}; expected gray (H, W), "
                         "gray + alpha (H, W, 2), RGB (H, W, 3) or RGBA (H, W, 4)")
    image = skimage.util.img_as_float64(raw)
    if representation == 1 and image.ndim == 3:
        image = skimage.color.rgb2gray(image)
    elif representation == 2 and image.ndim == 2:
        image = skimage.color.gray2rgb(image)
    return np.clip(image, 0.0, 1.0)


def check_int(value, name, minimum=1):
    """Return ``value`` as an int if it is an integer (not a bool) of at least ``minimum``.

    Raises
    ------
    ValueError
        Naming ``name`` and the smallest allowed value.

    Examples
    --------
    >>> check_int(3, "num_res_blocks", minimum=0)
    3
    >>> check_int(True, "batch_size")
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be an integer >= 1, got True
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def quantize(image):
    """Round to the nearest i/255 and clip to [0, 1].

    Examples
    --------
    >>> quantize(np.array([-0.1, 0.5, 0.1234, 1.7])) * 255
    array([  0., 128.,  31., 255.])
    """
    return np.clip(np.round(image * 255) / 255, 0.0, 1.0)


def as_gray_image(image, name="image"):
    """Validate a grayscale image and return it as float64 in [0, 1].

    Integer and boolean images are converted by their dtype's range (uint8 is
    divided by 255); an ``(H, W, 1)`` array is squeezed to ``(H, W)``.

    Examples
    --------
    >>> as_gray_image(np.array([[0, 255]], dtype=np.uint8))
    array([[0., 1.]])

    Raises
    ------
    ValueError
        For RGB or other non-2-D input, NaNs, or float values outside [0, 1].
    """
    image = np.asarray(image)
    if image.size == 0:
        raise ValueError(f"{name} is empty (shape {image.shape})")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        raise ValueError(f"{name} must be a 2-D grayscale image, got shape {image.shape} (RGB?); "
                         "convert it with skimage.color.rgb2gray or read it with read_image(path, 1); "
                         "sol5.restore_color_image restores colour images")
    if image.ndim != 2:
        raise ValueError(f"{name} must be a 2-D grayscale image of shape (height, width), "
                         f"got shape {image.shape}")
    if image.dtype == bool or np.issubdtype(image.dtype, np.integer):
        return skimage.util.img_as_float64(image)
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"{name} must hold numbers, got dtype {image.dtype}")
    image = image.astype(np.float64, copy=False)
    low, high = image.min(initial=0.0), image.max(initial=0.0)
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if low < -1e-6 or high > 1 + 1e-6:
        raise ValueError(f"{name} values must lie in [0, 1], got [{low:.3g}, {high:.3g}]; "
                         "divide an 8-bit image by 255")
    return image


def check_kernel_size(kernel_size):
    """Raise ValueError unless ``kernel_size`` is an odd positive integer."""
    try:
        size = check_int(kernel_size, "kernel size")
    except ValueError:
        size = 0
    if size % 2 == 0:
        raise ValueError(f"kernel size must be an odd positive integer (1, 3, 5, 7, ...), "
                         f"got {kernel_size!r}; an even kernel has no centre")


@contextlib.contextmanager
def numpy_seed(seed):
    """Seed numpy's global generator for a block, then give the caller its old state back."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


#: The messages :func:`warn_once` has issued in this process.
_WARNED = set()


def warn_once(message):
    """Issue a UserWarning the first time a given message appears in this process."""
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, stacklevel=3)


def import_tensorflow_quietly():
    """Import TensorFlow with its native start-up notices hidden; return it (None if missing).

    While it loads, TensorFlow's C++ core writes absl and oneDNN notices straight to file
    descriptor 2, before ``TF_CPP_MIN_LOG_LEVEL`` is read.  For the import alone that descriptor
    points at ``/dev/null``; Python errors still surface as exceptions.  Set ``SOL5_VERBOSE=1``
    to see the notices.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or os.environ.get("SOL5_VERBOSE"):
        try:
            import tensorflow
        except ImportError:
            return None
        return tensorflow
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                import tensorflow
            except ImportError:
                tensorflow = None
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)
    return tensorflow

