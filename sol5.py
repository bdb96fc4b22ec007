"""Neural networks for image restoration (exercise 5 of Image Processing 67829).

Small ResNet-style networks are trained on randomly corrupted patches and then
applied, fully convolutionally, to whole images: Gaussian denoising of photos,
motion deblurring of text, super-resolution (the recipe of question 2), and the
Deep Image Prior (section 8, no training).

The sections of this module follow the assignment's sections.  Run
``python sol5.py --help`` for the command-line entry points (train the two
models, restore a file, evaluate, depth study, benchmarks).

Conventions
-----------
* Images are 2-D float64 arrays in [0, 1].  Integer images (uint8, ...) are
  converted with :func:`skimage.util.img_as_float64`; RGB images and values
  outside [0, 1] raise a ValueError that says how to convert them.
* Networks see values shifted by -0.5, i.e. in [-0.5, 0.5].
* All randomness in data generation and corruption comes from numpy's global
  generator (``np.random.seed`` makes a run replayable; for the weights too use
  ``keras.utils.set_random_seed``).

API changes since 2020
----------------------
* ``fit_generator`` is gone: ``train_model`` calls ``Model.fit`` with the two
  Python generators (through :func:`fit_feed`, a small ``tf.data`` pipeline) and
  whole numbers of steps.
* ``scipy.ndimage.filters.convolve`` is now ``scipy.ndimage.convolve``.
* Keras 3 refuses to call a model built for 24x24 inputs on a larger tensor, so
  ``restore_image`` clones the base model onto an input of the image's size,
  *sharing* its layers (and so its weights).
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import collections  # noqa: E402
import contextlib  # noqa: E402
import math  # noqa: E402
import weakref  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import scipy.ndimage  # noqa: E402
import skimage.filters  # noqa: E402
import skimage.util  # noqa: E402
try:  # section 8 (and the GPU check) use TensorFlow directly; other Keras backends may lack it
    import tensorflow as tf  # noqa: E402
except ImportError:  # pragma: no cover
    tf = None
from keras.layers import Activation, Add, Conv2D, Input  # noqa: E402
from keras.models import Model  # noqa: E402
from keras.optimizers import Adam  # noqa: E402

import sol5_utils  # noqa: E402
from sol5_utils import read_image  # noqa: E402,F401  (the course's read_image, re-exported)


# ==========================================================================
# Input checks shared by the public functions
# ==========================================================================

def as_gray_image(image, name="image"):
    """Validate a grayscale image and return it as float64 in [0, 1].

    Integer and boolean images are converted by their dtype's range (uint8 is
    divided by 255); an ``(H, W, 1)`` array is squeezed to ``(H, W)``.

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
                         "convert it with skimage.color.rgb2gray or read it with read_image(path, 1)")
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


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_crop_size(crop_size):
    try:
        height, width = crop_size
    except (TypeError, ValueError):
        raise ValueError(f"crop_size must be a (height, width) pair, got {crop_size!r}") from None
    return _check_positive_int(height, "crop height"), _check_positive_int(width, "crop width")


# ==========================================================================
# 3  Dataset handling
# ==========================================================================

def load_dataset(filenames, batch_size, corruption_func, crop_size):
    """Endless generator of (corrupted, clean) patch batches.

    Each sample picks a random file (read once, then cached), cuts a random
    crop three times ``crop_size``, corrupts that crop with
    ``corruption_func`` and takes one random ``crop_size`` patch at the same
    place from the clean and the corrupted crop.  Both are shifted by -0.5.

    A corruption function may carry a batched form (see :func:`with_window_form`; the
    task corruptions :func:`denoising_corruption` and :func:`deblurring_corruption` do).
    Then each patch is cut with the small border the corruption reads, mirrored where it
    leaves the large crop, and the whole batch is corrupted in one vectorised call: the
    patches come out as by the recipe above (same positions, same distribution of
    corruptions) at a fraction of the cost, since 8/9 of every corrupted large crop would be
    thrown away.  Any other function is called on each large crop.

    Parameters
    ----------
    filenames : list of str
        Paths of clean images.
    batch_size : int
        Number of patch pairs per batch.
    corruption_func : callable
        ``corruption_func(image) -> corrupted image`` of the same shape.
    crop_size : tuple of int
        ``(height, width)`` of the patches.

    Returns
    -------
    generator
        Yields ``(source_batch, target_batch)``, each a float32 array of shape
        ``(batch_size, height, width, 1)`` with values in [-0.5, 0.5];
        ``source_batch`` holds the corrupted patches.

    Raises
    ------
    ValueError
        For an empty file list, a bad batch or crop size (at once), and, when
        the file is first drawn, for an unreadable image or one smaller than
        ``crop_size``.  An image smaller than three times ``crop_size`` is
        used with a smaller large crop (its whole extent) and a warning.

    Examples
    --------
    >>> data = load_dataset(paths, 100, lambda im: add_gaussian_noise(im, 0, 0.2), (24, 24))  # doctest: +SKIP
    >>> source, target = next(data)  # doctest: +SKIP
    """
    filenames = list(filenames) if not isinstance(filenames, str) else [filenames]
    if not filenames:
        raise ValueError("filenames is empty: pass at least one image path "
                         "(for instance sol5_utils.images_for_denoising())")
    batch_size = _check_positive_int(batch_size, "batch_size")
    crop_size = _check_crop_size(crop_size)
    if not callable(corruption_func):
        raise ValueError(f"corruption_func must be callable, got {corruption_func!r}")
    return _patch_batches(filenames, batch_size, corruption_func, crop_size)


#: Samples prepared together by the vectorised (window-form) path, and batches fetched together
#: by :func:`fit_feed`: per-call overheads are paid once for about this many samples.
SAMPLES_PER_CHUNK = 512


def _patch_batches(filenames, batch_size, corruption_func, crop_size):
    cache = {}
    window_form = getattr(corruption_func, "window_form", None)
    if window_form is not None and window_form.margin > min(crop_size):
        window_form = None
    batches_per_chunk = 1 if window_form is None else max(1, SAMPLES_PER_CHUNK // batch_size)
    while True:
        picks = np.random.randint(len(filenames), size=batch_size * batches_per_chunk)
        images = [_cached_image(filenames[k], cache, crop_size) for k in picks]
        crop_origins, crop_shapes, patch_offsets = _crop_positions(images, crop_size)
        if window_form is None:
            source, target = _corrupt_large_crops(images, crop_origins, crop_shapes, patch_offsets,
                                                  corruption_func, crop_size)
        else:
            source, target = _corrupt_windows(images, crop_origins, crop_shapes, patch_offsets,
                                              window_form, crop_size)
        source = (source - 0.5).astype(np.float32, copy=False)[..., None]
        target = (target - 0.5).astype(np.float32, copy=False)[..., None]
        for start in range(0, len(picks), batch_size):
            yield source[start:start + batch_size], target[start:start + batch_size]


def _crop_positions(images, crop_size):
    """Random large crops (3x the patch, clipped to the image) and a random patch in each.

    Returns the crops' origins and shapes in their images, and the patches' offsets in their
    crops, each an int array of shape (n, 2); every position is uniform over its range.
    """
    image_shapes = np.array([image.shape for image in images])
    patch = np.array(crop_size)
    crop_shapes = np.minimum(3 * patch, image_shapes)
    crop_origins = _uniform_integers(image_shapes - crop_shapes + 1)
    patch_offsets = _uniform_integers(crop_shapes - patch + 1)
    return crop_origins, crop_shapes, patch_offsets


def _uniform_integers(upper):
    """Integers drawn uniformly from [0, upper), element by element."""
    return np.minimum((np.random.random_sample(upper.shape) * upper).astype(int), upper - 1)


def _corrupt_large_crops(images, crop_origins, crop_shapes, patch_offsets, corruption_func,
                         crop_size):
    """The assignment's recipe: corrupt every large crop, then cut the patch from both versions."""
    height, width = crop_size
    source = np.empty((len(images), height, width))
    target = np.empty((len(images), height, width))
    for i, image in enumerate(images):
        (row, col), (crop_height, crop_width) = crop_origins[i], crop_shapes[i]
        clean_crop = image[row:row + crop_height, col:col + crop_width]
        corrupted_crop = np.asarray(corruption_func(clean_crop))
        if corrupted_crop.shape != clean_crop.shape:
            raise ValueError(f"corruption_func returned shape {corrupted_crop.shape} "
                             f"for an input of shape {clean_crop.shape}; it must keep the shape")
        patch_row, patch_col = patch_offsets[i]
        target[i] = clean_crop[patch_row:patch_row + height, patch_col:patch_col + width]
        source[i] = corrupted_crop[patch_row:patch_row + height, patch_col:patch_col + width]
    return source, target


def _corrupt_windows(images, crop_origins, crop_shapes, patch_offsets, window_form, crop_size):
    """The same result for a corruption with a window form, corrupting a whole batch at once.

    Each patch is cut with a border of ``margin`` pixels; where that border leaves the large crop
    it is mirrored, as ``scipy.ndimage``'s default ``'reflect'`` border does at the crop's edges.
    """
    margin = window_form.margin
    height, width = crop_size
    rows = _window_indices(crop_origins[:, 0], crop_shapes[:, 0], patch_offsets[:, 0], height, margin)
    cols = _window_indices(crop_origins[:, 1], crop_shapes[:, 1], patch_offsets[:, 1], width, margin)
    windows = np.empty((len(images), rows.shape[1], cols.shape[1]), np.float32)
    unmirrored = ((rows[:, -1] - rows[:, 0] == rows.shape[1] - 1)
                  & (cols[:, -1] - cols[:, 0] == cols.shape[1] - 1))
    for i, (image, top, left, plain) in enumerate(zip(images, rows[:, 0].tolist(),
                                                      cols[:, 0].tolist(), unmirrored.tolist())):
        if plain:  # a slice is much faster than fancy indexing, and the usual case
            windows[i] = image[top:top + rows.shape[1], left:left + cols.shape[1]]
        else:
            windows[i] = image[rows[i][:, None], cols[i][None, :]]
    target = windows[:, margin:margin + height, margin:margin + width]
    source = np.asarray(window_form.corrupt(windows))
    if source.shape != target.shape:
        raise ValueError(f"the window form of the corruption returned shape {source.shape}, "
                         f"expected {target.shape}")
    return source, target


def _window_indices(crop_origin, crop_length, patch_offset, patch_length, margin):
    """Image indices, shape (n, patch_length + 2 margin), of each patch and its border along one
    axis, mirrored (half-sample symmetric) at the edges of the large crop."""
    inside = patch_offset[:, None] + np.arange(-margin, patch_length + margin)
    inside = np.where(inside < 0, -inside - 1, inside)
    inside = np.where(inside >= crop_length[:, None], 2 * crop_length[:, None] - 1 - inside, inside)
    return crop_origin[:, None] + inside


#: The batched form of a corruption that :func:`with_window_form` attaches (its arguments).
WindowForm = collections.namedtuple("WindowForm", "margin corrupt")


def with_window_form(margin, corrupt):
    """Decorator: give a corruption function a batched form for :func:`load_dataset`.

    Parameters
    ----------
    margin : int
        How far, in pixels, the corruption of one pixel reads around it (0 for noise added
        pixel by pixel, ``k // 2`` for a ``k x k`` convolution).  A margin wider than the
        patch makes :func:`load_dataset` call the function on each large crop instead.
    corrupt : callable
        ``corrupt(windows)``: float32 windows ``(n, h + 2 margin, w + 2 margin)`` in, their
        corrupted centres ``(n, h, w)`` out, each with its own random draws from numpy's
        global generator, distributed as the decorated function would corrupt them.

    Returns
    -------
    callable
        A decorator that sets ``corruption_func.window_form`` and returns the function
        unchanged, so it still works on single images.

    Examples
    --------
    >>> @with_window_form(0, lambda windows: quantize(1.0 - windows))
    ... def invert(image):
    ...     return quantize(1.0 - image)
    >>> source, target = next(load_dataset(paths, 100, invert, (24, 24)))  # doctest: +SKIP
    """
    if isinstance(margin, bool) or not isinstance(margin, (int, np.integer)) or margin < 0:
        raise ValueError(f"margin must be a non-negative integer, got {margin!r}")
    if not callable(corrupt):
        raise ValueError(f"corrupt must be callable, got {corrupt!r}")

    def attach(corruption_func):
        corruption_func.window_form = WindowForm(int(margin), corrupt)
        return corruption_func
    return attach


def _cached_image(name, cache, crop_size):
    """Read ``name`` as grayscale once; later calls return the cached array."""
    image = cache.get(name)
    if image is None:
        image = read_image(name, 1)
        if image.shape[0] < crop_size[0] or image.shape[1] < crop_size[1]:
            raise ValueError(f"image {name!r} of shape {image.shape} is smaller than the patch "
                             f"size {crop_size}; remove it from the list or use smaller patches")
        if image.shape[0] < 3 * crop_size[0] or image.shape[1] < 3 * crop_size[1]:
            sol5_utils.warn_once(f"image {name!r} of shape {image.shape} is smaller than 3x the "
                                 f"patch size {crop_size}: its large crops are clipped to the image")
        cache[name] = image
    return image


# ==========================================================================
# 4  Neural network model
# ==========================================================================

def resblock(input_tensor, num_channels):
    """Residual block: ReLU(conv(ReLU(conv(x))) + x), 3x3 convolutions, same padding.

    Parameters
    ----------
    input_tensor : KerasTensor
        Symbolic input with ``num_channels`` channels.
    num_channels : int
        Filters of both convolutions.

    Returns
    -------
    KerasTensor
        The block's output, same shape as the input.
    """
    features = Conv2D(num_channels, (3, 3), padding="same")(input_tensor)
    features = Activation("relu")(features)
    features = Conv2D(num_channels, (3, 3), padding="same")(features)
    return Activation("relu")(Add()([features, input_tensor]))


def build_nn_model(height, width, num_channels, num_res_blocks):
    """The untrained (and uncompiled) restoration network of figure 1.

    conv -> ReLU -> ``num_res_blocks`` residual blocks -> conv to one channel,
    plus the network's input: the layers learn the correction to the input.

    Parameters
    ----------
    height, width : int
        Patch size the model is trained on (the model is fully convolutional).
    num_channels : int
        Filters of every convolution but the last (which has 1).
    num_res_blocks : int
        Number of residual blocks (0 is allowed).

    Returns
    -------
    keras.Model
        Input and output of shape ``(height, width, 1)``.

    Examples
    --------
    >>> model = build_nn_model(24, 24, 48, 5)
    >>> model.input_shape, model.output_shape
    ((None, 24, 24, 1), (None, 24, 24, 1))
    """
    height = _check_positive_int(height, "height")
    width = _check_positive_int(width, "width")
    num_channels = _check_positive_int(num_channels, "num_channels")
    if isinstance(num_res_blocks, bool) or not isinstance(num_res_blocks, (int, np.integer)) \
            or num_res_blocks < 0:
        raise ValueError(f"num_res_blocks must be a non-negative integer, got {num_res_blocks!r}")
    corrupted = Input(shape=(height, width, 1))
    features = Conv2D(num_channels, (3, 3), padding="same")(corrupted)
    features = Activation("relu")(features)
    for _ in range(num_res_blocks):
        features = resblock(features, num_channels)
    correction = Conv2D(1, (3, 3), padding="same")(features)
    restored = Add()([corrupted, correction])
    return Model(inputs=corrupted, outputs=restored)


# ==========================================================================
# 5  Training networks for image restoration
# ==========================================================================

def split_train_valid(images):
    """The assignment's 80/20 split of a file list, in list order (each part non-empty)."""
    images = list(images)
    if len(images) < 2:
        raise ValueError(f"need at least 2 images to split into training and validation sets, "
                         f"got {len(images)}")
    n_train = min(max(int(0.8 * len(images)), 1), len(images) - 1)
    return images[:n_train], images[n_train:]


def train_model(model, images, corruption_func, batch_size,
                steps_per_epoch, num_epochs, num_valid_samples, *, learning_rate=0.001):
    """Train ``model`` on corrupted patches of ``images`` (80/20 train/validation).

    The model is compiled with the mean squared error and ``Adam(beta_2=0.9)``
    and fitted with ``Model.fit`` (today's ``fit_generator``) on two
    :func:`load_dataset` generators whose patch size is the model's input size.

    Parameters
    ----------
    model : keras.Model
        A restoration network with a fixed ``(height, width, 1)`` input.
    images : list of str
        Complete paths of clean images; the first 80% train, the rest validate.
    corruption_func : callable
        As in :func:`load_dataset`.
    batch_size, steps_per_epoch, num_epochs : int
        The training schedule.
    num_valid_samples : int
        Patches to validate on after each epoch (rounded up to whole batches).
    learning_rate : float or keras.optimizers.schedules.LearningRateSchedule, optional
        Keyword only. Adam's step size; the default is Adam's own default, as
        the assignment asks.

    Returns
    -------
    keras.callbacks.History
        The losses per epoch (``history.history['val_loss']``...).

    Raises
    ------
    ValueError
        For fewer than two images, non-positive counts, or a model whose input
        size is not fixed.
    """
    batch_size = _check_positive_int(batch_size, "batch_size")
    steps_per_epoch = _check_positive_int(steps_per_epoch, "steps_per_epoch")
    num_epochs = _check_positive_int(num_epochs, "num_epochs")
    num_valid_samples = _check_positive_int(num_valid_samples, "num_valid_samples")
    crop_size = tuple(model.input_shape[1:3])
    if None in crop_size:
        raise ValueError(f"the model's input must have a fixed size to train on patches, "
                         f"got input shape {model.input_shape}")
    train_images, valid_images = split_train_valid(images)
    train_set = fit_feed(load_dataset(train_images, batch_size, corruption_func, crop_size))
    valid_set = fit_feed(load_dataset(valid_images, batch_size, corruption_func, crop_size))
    model.compile(loss="mean_squared_error", optimizer=Adam(learning_rate=learning_rate, beta_2=0.9))
    return model.fit(train_set, steps_per_epoch=steps_per_epoch, epochs=num_epochs,
                     validation_data=valid_set, shuffle=False,
                     validation_steps=max(1, math.ceil(num_valid_samples / batch_size)))


def fit_feed(batches, prefetch=2):
    """What :func:`train_model` hands to ``Model.fit`` for a generator of ``(source, target)``.

    On the TensorFlow backend the generator is wrapped in a ``tf.data`` pipeline that takes
    several batches from it per call into Python (``SAMPLES_PER_CHUNK`` samples) and keeps
    ``prefetch`` batches ready while the network trains, with tf.data's autotuning off: Keras'
    own wrapper (one Python call per batch, ``prefetch(AUTOTUNE)``) made whole ``fit`` calls
    settle at random into a markedly slower mode on a 2-core machine (``benchmarks/speed.py``
    compares the two).  On other backends the generator is returned as it is.
    """
    if keras.backend.backend() != "tensorflow":
        return batches
    first = next(batches)  # read one batch now, for the shapes and any error in the data
    per_call = max(1, SAMPLES_PER_CHUNK // len(first[0]))
    spec = tuple(tf.TensorSpec((None,) + part.shape, tf.as_dtype(part.dtype)) for part in first)
    pending = [first]

    def chunks():  # every new iterator (Keras makes one per validation) continues the stream
        while True:
            while len(pending) < per_call:
                batch = next(batches, None)
                if batch is None:
                    break
                pending.append(batch)
            if not pending:
                return
            group = pending[:]
            del pending[:]
            yield tuple(np.stack(parts) for parts in zip(*group))
    options = tf.data.Options()
    options.autotune.enabled = False
    return (tf.data.Dataset.from_generator(chunks, output_signature=spec)
            .unbatch().prefetch(prefetch).with_options(options))


# ==========================================================================
# 6  Image restoration of complete images
# ==========================================================================

#: Per base model, a few models of other input sizes sharing its layers.
_RESIZED_MODELS = weakref.WeakKeyDictionary()
_RESIZED_PER_MODEL = 8


def model_for_size(base_model, height, width):
    """A model with input ``(height, width, 1)`` that shares ``base_model``'s layers.

    Because the layers (not copies) are shared, later training of the base
    model is seen by the returned model.  A few sizes are cached per model.
    """
    if tuple(base_model.input_shape[1:3]) == (height, width):
        return base_model
    try:
        by_size = _RESIZED_MODELS.setdefault(base_model, collections.OrderedDict())
    except TypeError:  # not weak-referenceable: do not cache
        by_size = collections.OrderedDict()
    resized = by_size.get((height, width))
    if resized is None:
        try:
            resized = keras.models.clone_model(
                base_model, input_tensors=Input(shape=(height, width, 1)),
                clone_function=lambda layer: layer)
        except Exception:  # e.g. a subclassed model: it takes any size itself
            resized = base_model
        by_size[(height, width)] = resized
        while len(by_size) > _RESIZED_PER_MODEL:
            by_size.popitem(last=False)
    else:
        by_size.move_to_end((height, width))
    return resized


def restore_image(corrupted_image, base_model):
    """Restore a whole image with a network trained on small patches.

    Parameters
    ----------
    corrupted_image : ndarray, shape (height, width)
        Grayscale float64 image in [0, 1] (integer images are converted).
    base_model : keras.Model
        A trained restoration network (inputs and outputs in [-0.5, 0.5]).

    Returns
    -------
    restored : ndarray of float64, shape (height, width)
        Clipped to [0, 1].

    Raises
    ------
    ValueError
        If the image is not 2-D or its values are outside [0, 1].

    Examples
    --------
    >>> noisy = add_gaussian_noise(image, 0.1, 0.1)  # doctest: +SKIP
    >>> clean = restore_image(noisy, learn_denoising_model())  # doctest: +SKIP
    """
    image = as_gray_image(corrupted_image, "corrupted_image")
    model = model_for_size(base_model, *image.shape)
    batch = (image.astype(np.float32) - 0.5)[None, :, :, None]
    restored = keras.ops.convert_to_numpy(model(batch, training=False))[0, :, :, 0]
    return np.clip(restored.astype(np.float64) + 0.5, 0.0, 1.0)


# ==========================================================================
# 7  Application to image denoising and deblurring
# ==========================================================================

#: The assignment's schedules: batch size, steps per epoch, epochs, validation samples.
Schedule = collections.namedtuple("Schedule", "batch_size steps_per_epoch num_epochs num_valid_samples")
QUICK_SCHEDULE = Schedule(10, 3, 2, 30)
DENOISE_SCHEDULE = Schedule(100, 100, 5, 1000)
DEBLUR_SCHEDULE = Schedule(100, 100, 10, 1000)
DENOISE_PATCH, DENOISE_CHANNELS, DENOISE_SIGMAS = (24, 24), 48, (0.0, 0.2)
DEBLUR_PATCH, DEBLUR_CHANNELS, DEBLUR_KERNEL_SIZES = (16, 16), 32, [7]


def quantize(image):
    """Round to the nearest i/255 and clip to [0, 1]."""
    return np.clip(np.round(image * 255) / 255, 0.0, 1.0)


def add_gaussian_noise(image, min_sigma, max_sigma):
    """Add zero-mean Gaussian noise of a random standard deviation.

    Parameters
    ----------
    image : ndarray, shape (height, width)
        Grayscale image in [0, 1].
    min_sigma, max_sigma : float
        The standard deviation is drawn uniformly from [min_sigma, max_sigma].

    Returns
    -------
    corrupted : ndarray of float64
        Rounded to the nearest i/255 and clipped to [0, 1].

    Raises
    ------
    ValueError
        If ``min_sigma < 0`` or ``min_sigma > max_sigma``, or for a bad image.
    """
    image = as_gray_image(image)
    if not (np.isfinite(min_sigma) and np.isfinite(max_sigma)) or min_sigma < 0:
        raise ValueError(f"min_sigma must be a non-negative number, got {min_sigma!r}")
    if min_sigma > max_sigma:
        raise ValueError(f"min_sigma ({min_sigma}) is larger than max_sigma ({max_sigma}); swap them")
    sigma = np.random.uniform(min_sigma, max_sigma)
    return quantize(image + np.random.normal(0.0, sigma, image.shape))


#: A complete training recipe: network size, patch size, schedule and Adam's step size
#: (a float, or ``(initial, final)`` for a cosine decay over the whole run).
Preset = collections.namedtuple("Preset", "patch channels num_res_blocks schedule learning_rate")
#: Stronger recipes than the assignment's, each sized to train in under an hour on 2 CPU cores
#: (``python sol5.py train --preset strong``).  Shipped weights: models/TASK_strong.keras.
PRESETS = {
    "denoise": {"strong": Preset((40, 40), 64, 8, Schedule(32, 1000, 6, 1024), (1e-3, 2e-5))},
    "deblur": {"strong": Preset((32, 32), 64, 8, Schedule(32, 1000, 8, 1024), (1e-3, 2e-5))},
}


def _choose_preset(task, preset, num_res_blocks, patch, channels, schedule, quick_mode):
    """The recipe for a ``learn_*`` call: the assignment's, or a named preset."""
    if preset is None:
        recipe = Preset(patch, channels, num_res_blocks, schedule, 0.001)
    else:
        if preset not in PRESETS[task]:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS[task])} "
                             "or None for the assignment's settings")
        if num_res_blocks != 5:
            raise ValueError(f"preset {preset!r} fixes its own depth "
                             f"({PRESETS[task][preset].num_res_blocks} blocks); "
                             "leave num_res_blocks at its default")
        recipe = PRESETS[task][preset]
    if quick_mode:
        recipe = recipe._replace(schedule=QUICK_SCHEDULE)
    return recipe


def _learning_rate(recipe):
    if not isinstance(recipe.learning_rate, tuple):
        return recipe.learning_rate
    initial, final = recipe.learning_rate
    steps = recipe.schedule.steps_per_epoch * recipe.schedule.num_epochs
    return keras.optimizers.schedules.CosineDecay(initial, decay_steps=steps, alpha=final / initial)


PRECISIONS = ("float32", "mixed_bfloat16")


def bfloat16_supported():
    """True where training in bfloat16 is fast: a GPU of compute capability >= 8, or a CPU
    with AVX512-BF16 or AMX-BF16 instructions."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = cpuinfo.read()
    except OSError:
        flags = ""
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        return True
    for gpu in tf.config.list_physical_devices("GPU") if tf is not None else []:
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
        if capability >= (8, 0):
            return True
    return False


@contextlib.contextmanager
def _dtype_policy(name):
    """Build layers under Keras dtype policy ``name``; the global policy is restored after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _check_precision(precision):
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "mixed_bfloat16" and not bfloat16_supported():
        sol5_utils.warn_once("this machine has no fast bfloat16 (no AVX512-BF16/AMX CPU, no GPU of "
                             "compute capability 8+): training in float32 instead")
        return "float32"
    return precision


def gaussian_noise_on_windows(windows, min_sigma, max_sigma):
    """:func:`add_gaussian_noise` on a stack of images ``(n, h, w)`` at once, one sigma each."""
    sigmas = np.random.uniform(min_sigma, max_sigma, size=(len(windows), 1, 1))
    return quantize(windows + sigmas * np.random.standard_normal(windows.shape))


@with_window_form(0, lambda windows: gaussian_noise_on_windows(windows, *DENOISE_SIGMAS))
def denoising_corruption(image):
    """The denoising task's corruption: Gaussian noise with sigma drawn from [0, 0.2]."""
    return add_gaussian_noise(image, *DENOISE_SIGMAS)


def _learn_model(task, images, corruption_func, recipe, precision="float32"):
    """The training recipe both ``learn_*`` functions fill in.

    With ``precision='mixed_bfloat16'`` the network is trained in bfloat16 arithmetic (float32
    weights), and its weights are then moved into an ordinary float32 network, which is returned.
    """
    precision = _check_precision(precision)
    print(f"sol5: training the {task} model on {sol5_utils.describe_source(images)}"
          + (" in mixed bfloat16" if precision != "float32" else ""))
    shape = (recipe.patch[0], recipe.patch[1], recipe.channels, recipe.num_res_blocks)
    with _dtype_policy(precision):
        model = build_nn_model(*shape)
    train_model(model, images, corruption_func, *recipe.schedule,
                learning_rate=_learning_rate(recipe))
    if precision != "float32":
        trained, model = model, build_nn_model(*shape)
        model.set_weights(trained.get_weights())
        model.compile(loss="mean_squared_error", optimizer=Adam(beta_2=0.9))
    return model


def learn_denoising_model(num_res_blocks=5, quick_mode=False, *, preset=None, precision="float32"):
    """Train a network that removes Gaussian noise of unknown sigma in [0, 0.2].

    24x24 patches, 48 channels; batches of 100, 100 steps per epoch, 5 epochs,
    1000 validation samples (quick mode: 10, 3, 2, 30).  The images come from
    :func:`sol5_utils.images_for_denoising`.

    Parameters
    ----------
    num_res_blocks : int, optional
        Depth of the network.
    quick_mode : bool, optional
        Train on the tiny schedule (seconds), same code path.
    preset : {None, 'strong'}, optional
        Keyword only. None trains the assignment's network; ``'strong'`` a
        bigger one (``PRESETS['denoise']['strong']``: 8 blocks, 64 channels,
        40x40 patches, 6000 steps, cosine step size), then ``num_res_blocks``
        must stay at its default.
    precision : {'float32', 'mixed_bfloat16'}, optional
        Keyword only. ``'mixed_bfloat16'`` trains about twice as fast on CPUs
        with AVX512-BF16/AMX and on recent GPUs (elsewhere it warns and uses
        float32); the returned model is an ordinary float32 network either way.

    Returns
    -------
    keras.Model
        The trained model (24x24 input; use :func:`restore_image` for whole images).

    Raises
    ------
    ValueError
        For an unknown preset or precision, or a preset together with
        ``num_res_blocks``.
    """
    recipe = _choose_preset("denoise", preset, num_res_blocks, DENOISE_PATCH, DENOISE_CHANNELS,
                            DENOISE_SCHEDULE, quick_mode)
    return _learn_model("denoising", sol5_utils.images_for_denoising(), denoising_corruption,
                        recipe, precision)


def add_motion_blur(image, kernel_size, angle):
    """Blur ``image`` along a line of ``kernel_size`` pixels at ``angle`` radians.

    The kernel comes from :func:`sol5_utils.motion_blur_kernel` (angle 0 is a
    horizontal line, counter-clockwise positive); borders are reflected.

    Parameters
    ----------
    image : ndarray, shape (height, width)
        Grayscale image in [0, 1].
    kernel_size : int
        Odd positive kernel side.
    angle : float
        In radians, in [0, pi).

    Returns
    -------
    blurred : ndarray of float64
        Same shape (not rounded: :func:`random_motion_blur` rounds).

    Raises
    ------
    ValueError
        For an even or non-positive kernel size, an angle outside [0, pi) or a
        bad image.
    """
    image = as_gray_image(image)
    kernel = sol5_utils.motion_blur_kernel(kernel_size, angle)
    return scipy.ndimage.convolve(image, kernel)


def random_motion_blur(image, list_of_kernel_sizes):
    """Motion blur with a random angle in [0, pi) and a random size from the list.

    Returns
    -------
    blurred : ndarray of float64
        Rounded to the nearest i/255 and clipped to [0, 1].

    Raises
    ------
    ValueError
        For an empty list or a size that is not odd and positive.
    """
    if isinstance(list_of_kernel_sizes, (int, np.integer)):
        list_of_kernel_sizes = [list_of_kernel_sizes]
    sizes = list(list_of_kernel_sizes)
    if not sizes:
        raise ValueError("list_of_kernel_sizes is empty; pass odd sizes such as [7]")
    for size in sizes:
        sol5_utils.check_kernel_size(size)
    angle = np.random.uniform(0, np.pi)
    kernel_size = sizes[np.random.randint(len(sizes))]
    return quantize(add_motion_blur(image, kernel_size, angle))


def motion_blur_on_windows(windows, kernels, kernel_of_window):
    """Motion blur of the centres of ``windows`` (n, h + 2m, w + 2m).

    Window ``i`` is blurred with ``kernels[kernel_of_window[i]]`` (``kernels`` has shape
    (k, 2m + 1, 2m + 1)); the result (n, h, w) equals ``scipy.ndimage.convolve`` of each window
    with its kernel, cut to the centre.  Windows that share a kernel are blurred together, over
    the kernel's non-zero taps only.
    """
    side = kernels.shape[-1]
    height, width = windows.shape[1] - side + 1, windows.shape[2] - side + 1
    flipped = kernels[:, ::-1, ::-1].reshape(len(kernels), -1)  # convolving = correlating flipped
    blurred = np.empty((len(windows), height, width), windows.dtype)
    for kernel_index, kernel in enumerate(flipped):
        members = np.flatnonzero(kernel_of_window == kernel_index)
        if not len(members):
            continue
        group = windows[members]
        total = np.zeros((len(members), height, width), windows.dtype)
        for tap in np.flatnonzero(kernel):
            row, col = divmod(tap, side)
            total += kernel[tap].astype(windows.dtype) * group[:, row:row + height, col:col + width]
        blurred[members] = total
    return blurred


def random_motion_blur_on_windows(windows, list_of_kernel_sizes):
    """:func:`random_motion_blur` on a stack of windows with a border of ``max(sizes) // 2``."""
    side = max(list_of_kernel_sizes)
    angles = np.random.uniform(0, np.pi, size=len(windows))
    sizes = np.asarray(list_of_kernel_sizes)[np.random.randint(len(list_of_kernel_sizes),
                                                               size=len(windows))]
    ends = np.empty((len(windows), 2), int)
    for size in set(sizes.tolist()):
        ends[sizes == size] = sol5_utils.line_ends(size, angles[sizes == size])
    # a kernel is named by (size, end row, end col): number the distinct ones
    codes = (sizes * (2 * side + 1) + ends[:, 0] + side) * (2 * side + 1) + ends[:, 1] + side
    _, first_window, kernel_of_window = np.unique(codes, return_index=True, return_inverse=True)
    kernels = np.zeros((len(first_window), side, side))
    for kernel, i in zip(kernels, first_window):
        pad = (side - sizes[i]) // 2
        kernel[pad:side - pad, pad:side - pad] = sol5_utils.line_kernel(int(sizes[i]), *ends[i])
    return quantize(motion_blur_on_windows(windows, kernels, kernel_of_window))


@with_window_form(max(DEBLUR_KERNEL_SIZES) // 2,
                  lambda windows: random_motion_blur_on_windows(windows, DEBLUR_KERNEL_SIZES))
def deblurring_corruption(image):
    """The deblurring task's corruption: a 7-pixel motion blur at a random angle."""
    return random_motion_blur(image, DEBLUR_KERNEL_SIZES)


def learn_deblurring_model(num_res_blocks=5, quick_mode=False, *, preset=None, precision="float32"):
    """Train a network that removes 7-pixel motion blur of any angle from text.

    16x16 patches, 32 channels; batches of 100, 100 steps per epoch, 10
    epochs, 1000 validation samples (quick mode: 10, 3, 2, 30).  The images
    come from :func:`sol5_utils.images_for_deblurring`.

    Parameters
    ----------
    num_res_blocks : int, optional
        Depth of the network.
    quick_mode : bool, optional
        Train on the tiny schedule (seconds), same code path.
    preset : {None, 'strong'}, optional
        Keyword only. None trains the assignment's network; ``'strong'`` a
        bigger one (``PRESETS['deblur']['strong']``: 8 blocks, 64 channels,
        32x32 patches, 8000 steps, cosine step size), then ``num_res_blocks``
        must stay at its default.
    precision : {'float32', 'mixed_bfloat16'}, optional
        Keyword only. ``'mixed_bfloat16'`` trains about twice as fast on CPUs
        with AVX512-BF16/AMX and on recent GPUs (elsewhere it warns and uses
        float32); the returned model is an ordinary float32 network either way.

    Returns
    -------
    keras.Model
        The trained model (16x16 input; use :func:`restore_image` for whole images).

    Raises
    ------
    ValueError
        For an unknown preset or precision, or a preset together with
        ``num_res_blocks``.
    """
    recipe = _choose_preset("deblur", preset, num_res_blocks, DEBLUR_PATCH, DEBLUR_CHANNELS,
                            DEBLUR_SCHEDULE, quick_mode)
    return _learn_model("deblurring", sol5_utils.images_for_deblurring(), deblurring_corruption,
                        recipe, precision)


# ==========================================================================
# 7.4  Super-resolution (the Q2 recipe, implemented)
# ==========================================================================

SUPER_RES_PATCH, SUPER_RES_CHANNELS = (24, 24), 48
SUPER_RES_SCHEDULE = DENOISE_SCHEDULE


def _check_scale(scale):
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer, float)) \
            or not np.isfinite(scale) or scale < 2:
        raise ValueError(f"scale must be a number >= 2 (how many times smaller the low-resolution "
                         f"image is), got {scale!r}")
    return float(scale)


def enlarge(image, shape):
    """Resize ``image`` to ``shape`` with cubic-spline interpolation (scikit-image, order 3)."""
    import skimage.transform
    return np.clip(skimage.transform.resize(image, shape, order=3, mode="reflect",
                                            anti_aliasing=False), 0.0, 1.0)


def downscale(image, scale):
    """Shrink ``image`` by ``scale`` (anti-aliased cubic resampling), rounded to i/255."""
    import skimage.transform
    scale = _check_scale(scale)
    small_shape = tuple(max(1, int(round(n / scale))) for n in image.shape)
    return quantize(skimage.transform.resize(image, small_shape, order=3, mode="reflect",
                                             anti_aliasing=True))


def lose_resolution(image, scale):
    """The super-resolution corruption: shrink by ``scale``, then enlarge back to the same shape.

    The network then learns to restore the detail that the round trip lost.
    """
    image = as_gray_image(image)
    return quantize(enlarge(downscale(image, scale), image.shape))


def learn_super_resolution_model(num_res_blocks=5, quick_mode=False, scale=2):
    """Train a network that restores the detail lost by shrinking photos ``scale`` times.

    Same recipe as :func:`learn_denoising_model` (24x24 patches, 48 channels, 100 x 100 x 5
    steps, quick mode 10, 3, 2, 30) with :func:`lose_resolution` as the corruption.

    Parameters
    ----------
    num_res_blocks : int, optional
        Depth of the network.
    quick_mode : bool, optional
        Train on the tiny schedule (seconds), same code path.
    scale : float, optional
        Enlargement factor the model is for, at least 2.

    Returns
    -------
    keras.Model
        Use it with :func:`super_resolve_image`.

    Raises
    ------
    ValueError
        If ``scale < 2``.
    """
    scale = _check_scale(scale)

    def corruption(image):
        return lose_resolution(image, scale)
    recipe = Preset(SUPER_RES_PATCH, SUPER_RES_CHANNELS, num_res_blocks,
                    QUICK_SCHEDULE if quick_mode else SUPER_RES_SCHEDULE, 0.001)
    return _learn_model(f"x{scale:g} super-resolution", sol5_utils.images_for_denoising(),
                        corruption, recipe)


def super_resolve_image(low_res_image, base_model, scale=2):
    """Enlarge ``low_res_image`` ``scale`` times and restore its detail with ``base_model``.

    The image is first enlarged by the same cubic-spline interpolation the training corruption
    used, then restored by :func:`restore_image`.

    Parameters
    ----------
    low_res_image : ndarray, shape (height, width)
        Grayscale image in [0, 1].
    base_model : keras.Model
        From :func:`learn_super_resolution_model` with the same ``scale``.
    scale : float, optional
        At least 2.

    Returns
    -------
    ndarray of float64, shape (round(height * scale), round(width * scale))

    Raises
    ------
    ValueError
        If ``scale < 2`` or the image is not a 2-D image in [0, 1].
    """
    scale = _check_scale(scale)
    image = as_gray_image(low_res_image, "low_res_image")
    shape = tuple(int(round(n * scale)) for n in image.shape)
    return restore_image(enlarge(image, shape), base_model)


# ==========================================================================
# 8  Bonus: Deep Image Prior
# ==========================================================================

DIP_LEVELS = 4            # number of stride-2 stages; sizes are padded to 2**DIP_LEVELS
DIP_DOWN_CHANNELS = 32    # channels of the encoder and decoder stages
DIP_SKIP_CHANNELS = 4     # channels of the skip connections
DIP_INPUT_CHANNELS = 16   # channels of the fixed random input tensor
DIP_INPUT_SCALE = 0.1     # the input is uniform in [0, DIP_INPUT_SCALE)
DIP_INPUT_JITTER = 1 / 30  # std of the fresh Gaussian perturbation of the input each step
DIP_LEARNING_RATE = 0.01
DIP_EMA = 0.99            # weight of the old average in the running mean of the outputs
DIP_CHUNK = 10            # steps run per call of the compiled graph
DIP_MAX_STEPS = 300       # cap (about 3-5 s on 2 CPU cores) when the stopping rule never fires
DIP_MIN_STEPS = 100       # never stop before this (the first outputs are nearly flat)
DIP_STOP_FACTOR = 0.9     # stop once MSE(output, input) <= factor * estimated noise variance
DIP_QUANT_VAR = 1.0 / (12 * 255 ** 2)  # variance of rounding to 8 bits (floor of the estimate)
DIP_WIENER_SIGMA = 2.0    # width (pixels) of the local window of the residual Wiener step


# The network: a small hourglass with skip connections, in plain TensorFlow (allowed for the
# bonus): per-operation overhead of Keras layers doubled the step time on 2 CPU cores.

def _param_shapes():
    """Shapes of the network's parameters, in the order :func:`_forward` uses them."""
    shapes, channels = [], DIP_INPUT_CHANNELS
    for _ in range(DIP_LEVELS):
        shapes += [(1, 1, channels, DIP_SKIP_CHANNELS), (DIP_SKIP_CHANNELS,) * 2,
                   (3, 3, channels, DIP_DOWN_CHANNELS), (DIP_DOWN_CHANNELS,) * 2,
                   (3, 3, DIP_DOWN_CHANNELS, DIP_DOWN_CHANNELS), (DIP_DOWN_CHANNELS,) * 2]
        channels = DIP_DOWN_CHANNELS
    both = DIP_DOWN_CHANNELS + DIP_SKIP_CHANNELS
    for _ in range(DIP_LEVELS):
        shapes += [(both,) * 2,
                   (3, 3, both, DIP_DOWN_CHANNELS), (DIP_DOWN_CHANNELS,) * 2,
                   (1, 1, DIP_DOWN_CHANNELS, DIP_DOWN_CHANNELS), (DIP_DOWN_CHANNELS,) * 2]
    shapes += [(1, 1, DIP_DOWN_CHANNELS, 1), (1,)]
    return shapes


def _initial_params(rng):
    """He-uniform conv kernels, BN scales 1 and offsets 0, output bias 0."""
    values = []
    for shape in _param_shapes():
        if len(shape) == 4:
            limit = np.sqrt(6.0 / (shape[0] * shape[1] * shape[2]))
            values.append(rng.uniform(-limit, limit, shape))
        elif len(shape) == 2:  # (scale, offset) pair of a batch normalisation
            values += [np.ones(shape[0]), np.zeros(shape[0])]
        else:
            values.append(np.zeros(shape))
    return [v.astype(np.float32) for v in values]


def _forward(params, z):
    """The hourglass: DIP_LEVELS stride-2 stages down, bilinear upsampling back
    up, and a thin skip connection at every scale; batch normalisation and
    leaky ReLU after every convolution, sigmoid output."""
    params = iter(params)

    def norm(x, act=True):
        x, _, _ = tf.compat.v1.nn.fused_batch_norm(x, next(params), next(params), is_training=True)
        return tf.nn.leaky_relu(x, 0.2) if act else x

    def conv(x, strides=1, act=True):
        return norm(tf.nn.conv2d(x, next(params), strides, "SAME"), act)

    x, skips = z, []
    for _ in range(DIP_LEVELS):
        skips.append(conv(x))
        x = conv(conv(x, strides=2))
    for skip in reversed(skips):
        x = tf.image.resize(x, tf.shape(skip)[1:3], method="bilinear")
        x = norm(tf.concat([x, skip], axis=-1), act=False)
        x = conv(conv(x))
    return tf.sigmoid(tf.nn.conv2d(x, next(params), 1, "SAME") + next(params))


class _Fitter:
    """Parameters, Adam state and compiled training loop for one padded size.

    Built once per (padded height, padded width) and reused: every call of
    :func:`deep_prior_restore_image` re-initialises the weights and the Adam
    state from its seed, so the graph is traced only once per size.
    """

    def __init__(self, height, width):
        shapes = _initial_params(np.random.default_rng(0))
        self.params = [tf.Variable(v) for v in shapes]
        self.m = [tf.Variable(tf.zeros_like(v)) for v in shapes]
        self.v = [tf.Variable(tf.zeros_like(v)) for v in shapes]
        self.t = tf.Variable(0.0)
        self.ema = tf.Variable(tf.zeros((1, height, width, 1)))
        self.z = tf.Variable(tf.zeros((1, height, width, DIP_INPUT_CHANNELS)))
        self.target = tf.Variable(tf.zeros((1, height, width, 1)))
        self.mask = tf.Variable(tf.zeros((1, height, width, 1)))
        self.seed = tf.Variable(0, dtype=tf.int64)
        self.run = tf.function(self._run, input_signature=[tf.TensorSpec((), tf.int32)])

    def reset(self, target, mask, rng):
        """Load a new image and draw fresh weights, input and jitter seed from ``rng``."""
        for var, value in zip(self.params, _initial_params(rng)):
            var.assign(value)
        for var in self.m + self.v:
            var.assign(tf.zeros_like(var))
        self.t.assign(0.0)
        self.ema.assign(tf.zeros_like(self.ema))
        self.z.assign(rng.uniform(0, DIP_INPUT_SCALE, self.z.shape).astype(np.float32))
        self.target.assign(target[None, :, :, None].astype(np.float32))
        self.mask.assign(mask[None, :, :, None].astype(np.float32))
        self.seed.assign(int(rng.integers(2 ** 62)))

    def _step(self):
        self.t.assign_add(1.0)
        jitter = tf.random.stateless_normal(self.z.shape, stddev=DIP_INPUT_JITTER,
                                            seed=tf.stack([self.seed, tf.cast(self.t, tf.int64)]))
        with tf.GradientTape() as tape:
            out = _forward(self.params, self.z + jitter)
            loss = tf.reduce_sum(self.mask * tf.square(out - self.target)) / tf.reduce_sum(self.mask)
        grads = tape.gradient(loss, self.params)
        b1, b2 = 0.9, 0.999
        for var, grad, m, v in zip(self.params, grads, self.m, self.v):
            tf.raw_ops.ResourceApplyAdam(var=var.handle, m=m.handle, v=v.handle,
                                         beta1_power=b1 ** self.t, beta2_power=b2 ** self.t,
                                         lr=DIP_LEARNING_RATE, beta1=b1, beta2=b2, epsilon=1e-8,
                                         grad=grad)
        self.ema.assign(DIP_EMA * self.ema + (1 - DIP_EMA) * out)
        return loss

    def _run(self, steps):
        loss = tf.constant(0.0)
        for _ in tf.range(steps):
            loss = self._step()
        ema = self.ema / (1 - DIP_EMA ** self.t)   # bias-corrected running mean
        ema_mse = tf.reduce_sum(self.mask * tf.square(ema - self.target)) / tf.reduce_sum(self.mask)
        return loss, ema_mse, ema[0, :, :, 0]


_FITTERS = {}


def _fitter_for(height, width):
    key = (height, width)
    if key not in _FITTERS:
        _FITTERS[key] = _Fitter(height, width)
    return _FITTERS[key]


def _noise_variance(image):
    """Noise variance estimated from the image alone.

    Donoho's robust estimate: the median absolute value of the finest diagonal
    (Haar) wavelet detail, divided by 0.6745.  Smooth image content barely
    reaches that band, so what is left is mostly noise (rounding included).
    Written with numpy because ``skimage.restoration.estimate_sigma`` needs
    the optional PyWavelets package.
    """
    if min(image.shape) < 2:
        return DIP_QUANT_VAR
    detail = (image[:-1, :-1] - image[:-1, 1:] - image[1:, :-1] + image[1:, 1:]) / 2
    sigma = np.median(np.abs(detail)) / 0.6745
    return max(sigma ** 2, DIP_QUANT_VAR)


def _residual_wiener(estimate, noisy, noise_var):
    """Give back the part of the residual that is more than noise.

    Where the early-stopped network has not yet reproduced some texture, the
    local energy of ``noisy - estimate`` exceeds the noise variance; a local
    Wiener gain ``max(E - noise_var, 0) / E`` returns that share of the
    residual.  Where the fit is complete, E is close to the noise variance and
    almost nothing is added.
    """
    residual = noisy - estimate
    energy = skimage.filters.gaussian(residual ** 2, sigma=DIP_WIENER_SIGMA, mode="reflect",
                                      preserve_range=True)
    gain = np.maximum(energy - noise_var, 0.0) / np.maximum(energy, 1e-12)
    return estimate + gain * residual


def deep_prior_restore_image(corrupted_image, *, seed=0, max_steps=None, verbose=False):
    """Restore a noisy grayscale image with a Deep Image Prior.

    Nothing is learned from other images.  A freshly drawn hourglass network
    (an encoder-decoder with thin skip connections at every scale) turns a
    fixed random tensor into an image and is fitted to the corrupted image by
    Adam, with a small new random perturbation of the input at every step; the
    result is the running (exponential) mean of the network's outputs.  Such
    a network reproduces the image's structure before its noise, so the fit
    is stopped early: as soon as the running mean is as close to the
    corrupted image as the noise alone would allow, i.e. its mean squared
    difference falls below ``DIP_STOP_FACTOR`` (0.9) times the noise variance
    estimated from the image itself (median absolute diagonal wavelet
    detail), but never before ``DIP_MIN_STEPS`` (100) steps.  Fine texture
    that the network had not reached yet is then partly returned from the
    residual by a local Wiener gain.

    Parameters
    ----------
    corrupted_image : array_like, shape (height, width)
        Grayscale image.  Floats must lie in [0, 1]; integer images are scaled
        by their dtype's range with :func:`skimage.util.img_as_float64`.  Any
        size works, also small ones: the network halves the size
        ``DIP_LEVELS`` (4) times, so it works on a grid padded (by
        reflection) up to multiples of 16; only the image's own pixels enter
        the fit, and the result is cropped back to the input's shape.
    seed : int, optional
        Seeds the weights, the input tensor and its perturbations.  Calls with
        the same image and seed give the same result.  The global random
        states of numpy, TensorFlow and Keras are neither used nor changed.
    max_steps : int, optional
        Upper bound on the number of Adam steps (default ``DIP_MAX_STEPS``,
        300, about 3 to 5 seconds for 64x64 on two CPU cores).  Smooth or
        very noisy images usually stop earlier.
    verbose : bool, optional
        Print the progress of the fit every ``DIP_CHUNK`` steps.

    Returns
    -------
    restored : ndarray of float64, shape (height, width)
        The restored image, clipped to [0, 1].

    Raises
    ------
    ValueError
        If the image is not 2-D (for RGB, convert it with
        ``skimage.color.rgb2gray`` first), is empty, holds NaNs, has float
        values outside [0, 1], or if ``max_steps`` is not a positive integer.

    Notes
    -----
    The first call for a given padded size builds and traces the training
    graph (about a second or two); later calls of that size reuse it.

    Examples
    --------
    >>> import numpy as np, skimage.data
    >>> clean = skimage.data.camera()[40:104, 200:264] / 255.0
    >>> rng = np.random.default_rng(0)
    >>> noisy = np.clip(np.round((clean + rng.normal(0, 0.1, clean.shape)) * 255) / 255, 0, 1)
    >>> restored = deep_prior_restore_image(noisy)
    >>> restored.shape, restored.dtype
    ((64, 64), dtype('float64'))
    >>> bool(np.mean((restored - clean) ** 2) < np.mean((noisy - clean) ** 2))
    True
    """
    return _restore(corrupted_image, seed, max_steps, verbose, None)


def _restore(corrupted_image, seed, max_steps, verbose, history):
    """Body of :func:`deep_prior_restore_image`; appends progress to ``history`` if given."""
    image = as_gray_image(corrupted_image, "corrupted_image")
    if max_steps is None:
        max_steps = DIP_MAX_STEPS
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
    height, width = image.shape
    factor = 2 ** DIP_LEVELS
    padded_h, padded_w = -(-height // factor) * factor, -(-width // factor) * factor
    target = np.pad(image, ((0, padded_h - height), (0, padded_w - width)), mode="reflect"
                    if padded_h - height < height and padded_w - width < width else "edge")
    mask = np.zeros((padded_h, padded_w))
    mask[:height, :width] = 1.0

    noise_var = _noise_variance(image)
    fitter = _fitter_for(padded_h, padded_w)
    fitter.reset(target, mask, np.random.default_rng(seed))
    done = 0
    while done < max_steps:
        steps = min(DIP_CHUNK, max_steps - done)
        loss, ema_mse, ema = fitter.run(tf.constant(steps, tf.int32))
        done += steps
        loss, ema_mse = float(loss), float(ema_mse)
        if history is not None:
            history.append((done, loss, ema_mse, ema.numpy()[:height, :width].astype(np.float64)))
        if verbose:
            print(f"step {done}: loss {loss:.5f}, mean-output loss {ema_mse:.5f}, "
                  f"noise variance {noise_var:.5f}")
        if done >= DIP_MIN_STEPS and ema_mse <= DIP_STOP_FACTOR * noise_var:
            break
    result = ema.numpy()[:height, :width].astype(np.float64)
    return np.clip(_residual_wiener(result, image, noise_var), 0.0, 1.0)


# ==========================================================================
# Command line: train both models, restore a file, and the experiments
# ==========================================================================

OUTPUT_DIR = "outputs"


def _super_resolution_task(scale):
    return {"label": f"x{scale} super-resolution",
            "learn": lambda **kwargs: learn_super_resolution_model(scale=scale, **kwargs),
            "apply": lambda image, model: super_resolve_image(image, model, scale)}


#: What the command line can train and apply.
TASKS = {
    "denoise": {"label": "denoising", "learn": learn_denoising_model, "apply": restore_image},
    "deblur": {"label": "deblurring", "learn": learn_deblurring_model, "apply": restore_image},
    "superres-x2": _super_resolution_task(2),
    "superres-x3": _super_resolution_task(3),
}


def held_out_examples(seed=0):
    """Per task, a held-out (clean, corrupted, corrupted at full size) triple.

    Never part of any training list.  Denoising: scikit-image's ``camera`` with sigma 0.1
    noise; deblurring: scikit-image's scanned ``page`` blurred by a 7-pixel line at 3*pi/4
    (the assignment's figure), rounded to i/255; super-resolution: ``camera`` shrunk 2 or 3
    times (its full-size view is the cubic-spline enlargement).
    """
    with sol5_utils.numpy_seed(seed):
        camera = sol5_utils.load_skimage_photo("camera")
        page = sol5_utils.load_skimage_photo("page")
        noisy = add_gaussian_noise(camera, 0.1, 0.1)
        blurred = quantize(add_motion_blur(page, 7, 3 * np.pi / 4))
        examples = {"denoise": (camera, noisy, noisy), "deblur": (page, blurred, blurred)}
        for scale in (2, 3):
            clean = camera[:camera.shape[0] // scale * scale, :camera.shape[1] // scale * scale]
            low = downscale(clean, scale)
            examples[f"superres-x{scale}"] = (clean, low, enlarge(low, clean.shape))
        return examples


def default_model_path(task, preset=None):
    return os.path.join(OUTPUT_DIR, f"{task}{'_' + preset if preset else ''}.keras")


def _cmd_train(args):
    """Train the chosen models, save them, restore one held-out example each."""
    import time
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.metrics import peak_signal_noise_ratio as psnr

    options = {}
    if args.preset or args.bf16:
        if any(task.startswith("superres") for task in args.tasks):
            raise SystemExit("sol5: --preset and --bf16 apply to denoise and deblur only")
        options = {"preset": args.preset, "precision": "mixed_bfloat16" if args.bf16 else "float32"}
    os.makedirs(OUTPUT_DIR, exist_ok=True)
    examples = held_out_examples()
    fig, axes = plt.subplots(len(args.tasks), 3, figsize=(12, 3.3 * len(args.tasks)), squeeze=False)
    for row, task in enumerate(args.tasks):
        spec = TASKS[task]
        start = time.perf_counter()
        model = spec["learn"](num_res_blocks=args.num_res_blocks, quick_mode=args.quick, **options)
        seconds = time.perf_counter() - start
        path = default_model_path(task, args.preset)
        model.save(path)
        clean, corrupted, corrupted_view = examples[task]
        restored = spec["apply"](corrupted, model)
        before, after = psnr(clean, corrupted_view, data_range=1), psnr(clean, restored, data_range=1)
        print(f"sol5: {task}: trained in {seconds:.0f} s, saved {path}; "
              f"held-out PSNR {before:.2f} dB -> {after:.2f} dB")
        for ax, image, title in zip(axes[row], (corrupted_view, restored, clean),
                                    (f"corrupted ({before:.1f} dB)", f"restored ({after:.1f} dB)",
                                     "clean")):
            ax.imshow(image, cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{spec['label']}: {title}")
            ax.axis("off")
    figure_path = os.path.join(OUTPUT_DIR, f"restoration_examples{'_' + args.preset if args.preset else ''}.png")
    fig.tight_layout()
    fig.savefig(figure_path, dpi=100)
    print(f"sol5: saved {figure_path}")


def _cmd_restore(args):
    """Restore (or, for super-resolution, enlarge) one image file with a saved model."""
    import imageio.v3 as iio
    model_path = args.model or default_model_path(args.task)
    if not os.path.isfile(model_path):
        raise SystemExit(f"sol5: no model at {model_path!r}; train one first with "
                         f"'python sol5.py train --tasks {args.task}' or pass --model PATH")
    model = keras.models.load_model(model_path, compile=False)
    image = read_image(args.input, 1)
    restored = TASKS[args.task]["apply"](image, model)
    iio.imwrite(args.output, skimage.util.img_as_ubyte(restored))
    print(f"sol5: restored {args.input} ({image.shape[1]}x{image.shape[0]}) with {model_path} "
          f"-> {args.output} ({restored.shape[1]}x{restored.shape[0]})")


def build_parser():
    import argparse
    parser = argparse.ArgumentParser(
        prog="python sol5.py",
        description="Train and use the exercise-5 restoration networks (denoising of photos, "
                    "deblurring of text).")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", help="train both models at the assignment's settings and restore held-out examples",
        description=f"Train the denoising and deblurring models (assignment settings), save them "
                    f"as {OUTPUT_DIR}/denoise.keras and {OUTPUT_DIR}/deblur.keras, restore one "
                    f"held-out image per task and save {OUTPUT_DIR}/restoration_examples.png.")
    train.add_argument("--tasks", nargs="+", choices=list(TASKS), default=["denoise", "deblur"],
                       help="what to train (default: denoise deblur)")
    train.add_argument("--num-res-blocks", type=int, default=5)
    train.add_argument("--quick", action="store_true", help="the assignment's quick mode (seconds)")
    train.add_argument("--bf16", action="store_true",
                       help="train in mixed bfloat16 (about 2x faster on CPUs with AVX512-BF16)")
    train.add_argument("--preset", choices=["strong"], default=None,
                       help="train the stronger preset instead of the assignment's settings "
                            "(under an hour per model on 2 CPU cores); saved as outputs/TASK_strong.keras")
    train.set_defaults(func=_cmd_train)

    restore = commands.add_parser(
        "restore", help="restore an image file with a saved model",
        description="Restore a grayscale version of INPUT with a trained model and write OUTPUT "
                    "(8-bit). Example: python sol5.py restore --task denoise noisy.png clean.png")
    restore.add_argument("--task", choices=list(TASKS), required=True,
                         help="which model to use (denoise: photos with Gaussian noise; "
                              "deblur: text with motion blur; superres-xN: enlarge N times)")
    restore.add_argument("--model", help=f"a saved .keras model (default {OUTPUT_DIR}/TASK.keras)")
    restore.add_argument("input", help="image file to restore (.png, .jpg; RGB is made gray)")
    restore.add_argument("output", help="where to write the restored image (.png)")
    restore.set_defaults(func=_cmd_restore)

    depth = commands.add_parser(
        "depth-study", help="section 7.3: validation MSE against depth 1-5, plots and figure",
        description="Train each task at the assignment's settings for 1 to 5 residual blocks and "
                    "several seeds, append every run to results/depth_study.json (runs already "
                    "there are skipped), then draw depth_plot_denoise.png, depth_plot_deblur.png "
                    "and depth_examples.png from that file.")
    depth.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    depth.add_argument("--tasks", nargs="+", choices=["denoise", "deblur"],
                       default=["denoise", "deblur"])
    depth.add_argument("--plots-only", action="store_true",
                       help="only redraw the plots and the table from the results file")
    depth.set_defaults(func=_cmd_depth_study)

    evaluate = commands.add_parser(
        "evaluate", help="compare our models with classical restorers on held-out images",
        description="Score the noisy/blurred input, classical methods (TV, wavelet, BM3D if the "
                    "optional bm3d package is installed; Wiener and Richardson-Lucy given the true "
                    "kernel) and our trained models (outputs/TASK.keras, models/TASK_strong.keras) "
                    "on images never used for training. Prints a table, writes "
                    "results/evaluation.json and figures/evaluation_*.png.")
    evaluate.set_defaults(func=_cmd_evaluate)
    return parser


def _cmd_evaluate(args):
    import sol5_experiments as experiments
    print(experiments.format_evaluation(experiments.run_evaluation()))


def _cmd_depth_study(args):
    import sol5_experiments as experiments
    if args.plots_only:
        results = experiments._load_results(experiments.DEPTH_RESULTS)
    else:
        results = experiments.run_depth_study(tasks=args.tasks, seeds=tuple(args.seeds))
    print(experiments.format_depth_table(results))
    for path in experiments.plot_depth_study(results):
        print(f"sol5: saved {path}")
    print(f"sol5: saved {experiments.plot_depth_examples()}")


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
