"""The course's helper module for exercise 5: training file lists and the motion-blur kernel.

A grader replaces this file with the course's own copy, so ``sol5`` uses nothing but the
course's interface: :func:`relpath`, :func:`list_images`, :func:`images_for_denoising`,
:func:`images_for_deblurring`, :func:`images_for_super_resolution` and
:func:`motion_blur_kernel`.

One addition serves people without the course's data: when ``image_dataset/`` or
``text_dataset/`` is missing beside this module, the ``images_for_*`` functions train on offline
data that the project's package builds (photos shipped with scikit-image, typeset pages of text),
and say so once.  The course's helper raises ``FileNotFoundError`` there instead.
"""

import importlib
import os
import random

import numpy as np
import skimage.draw

#: Seed of the fixed shuffle of a file list, so that the 80/20 split is random but reproducible.
LIST_SEED = 1234
_announced = set()


def relpath(path):
    """``path`` joined to the folder of this module.

    Examples
    --------
    >>> os.path.dirname(relpath("image_dataset/train")) == relpath("image_dataset")
    True
    """
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), path)


def list_images(path, use_shuffle=True):
    """The .jpg and .png files in the folder ``path``, as full paths.

    Parameters
    ----------
    path : str or path-like
        A folder.
    use_shuffle : bool, optional
        Shuffle the names in a fixed order (seed :data:`LIST_SEED`), without touching the global
        ``random`` state; otherwise they come sorted.

    Returns
    -------
    paths : list of str

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> for name in ("b.png", "a.jpg", "notes.txt"):
    ...     open(os.path.join(folder, name), "w").close()
    >>> [os.path.basename(p) for p in list_images(folder, use_shuffle=False)]
    ['a.jpg', 'b.png']
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"image folder not found: {path!r}; create it and put .jpg/.png "
                                "images in it")
    images = sorted(os.path.join(path, name) for name in os.listdir(path)
                    if os.path.splitext(name)[1].lower() in (".jpg", ".png"))
    if use_shuffle:
        random.Random(LIST_SEED).shuffle(images)
    return images


def images_for_denoising():
    """Paths of the photos to train the denoiser on: ``image_dataset/train/`` beside this module."""
    return _training_images("image_dataset", "photos")


def images_for_deblurring():
    """Paths of the text images to train the deblurrer on: ``text_dataset/train/``."""
    return _training_images("text_dataset", "text")


def images_for_super_resolution():
    """Paths of the photos to train super-resolution on: ``image_dataset/train/``."""
    return _training_images("image_dataset", "photos")


def _training_images(dataset, kind):
    """The course folder's images, or the offline ``kind`` of data when ``dataset/`` is absent."""
    if os.path.exists(relpath(dataset)):
        folder = relpath(os.path.join(dataset, "train"))
        images = list_images(folder)
        if not images:
            raise ValueError(f"no .jpg/.png images in {folder!r}; put the training images there")
        return images
    folder = _offline_data().offline_training_folder(kind)
    if dataset not in _announced:
        _announced.add(dataset)
        print(f"sol5_utils: no {dataset}/ beside {relpath('')}; training on the offline "
              f"{kind} in {folder}")
    return list_images(folder)


def _offline_data():
    """The project's package, imported only when its offline data is needed."""
    package = f"{__package__}.restoration" if __package__ else "restoration"
    return importlib.import_module(package)


def motion_blur_kernel(kernel_size, angle):
    """A square motion-blur kernel: a line of equal weights through its centre, summing to 1.

    Parameters
    ----------
    kernel_size : int
        Odd side of the kernel.
    angle : float
        Direction of the line in radians, in [0, pi], counter-clockwise from the positive
        horizontal axis: 0 is horizontal, pi/2 vertical, 3*pi/4 runs from the upper left to the
        lower right.  (The course's copy of this helper measures the angle from the vertical
        axis; the two agree at pi/4 and 3*pi/4, and training draws the angle uniformly.)

    Returns
    -------
    kernel : ndarray of float64, shape (kernel_size, kernel_size)

    Raises
    ------
    ValueError
        For an even or non-positive size, or an angle outside [0, pi].

    Examples
    --------
    >>> motion_blur_kernel(3, 0.0)
    array([[0.        , 0.        , 0.        ],
           [0.33333333, 0.33333333, 0.33333333],
           [0.        , 0.        , 0.        ]])
    """
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, (int, np.integer)) \
            or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be an odd positive integer (1, 3, 5, 7, ...), got "
                         f"{kernel_size!r}; an even kernel has no centre")
    if not np.isfinite(angle) or not 0 <= angle <= np.pi:
        raise ValueError(f"angle must be in radians in [0, pi], got {angle!r}; reduce it modulo pi")
    half = kernel_size // 2
    direction = np.array([-np.sin(angle), np.cos(angle)])  # (row, col): rows grow downwards
    end_row, end_col = np.round(direction * half / np.abs(direction).max()).astype(int)
    rows, cols = skimage.draw.line(half - end_row, half - end_col, half + end_row, half + end_col)
    kernel = np.zeros((kernel_size, kernel_size))
    kernel[rows, cols] = 1.0
    return kernel / kernel.sum()
