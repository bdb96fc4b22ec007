"""Neural networks for image restoration (exercise 5 of Image Processing 67829).

Small ResNet-style networks are trained on randomly corrupted patches and then
applied, fully convolutionally, to whole images: Gaussian denoising of photos,
motion deblurring of text, super-resolution (the recipe of question 2), and the
Deep Image Prior (section 8, no training).

The sections of this module follow the assignment's sections.  It takes from
``sol5_utils``, the course's helper, only the course's interface (the file lists
and ``motion_blur_kernel``), so the course's own copy can replace ours.  The
machinery that makes the sections fast or convenient lives in the package
``restoration`` beside this file, imported one way (package helpers ->
machinery -> this module -> experiments -> command line):

* ``restoration._corruption``, ``_training``, ``_presets``, ``_tiling``,
  ``_deep_prior``: batched corruption of training patches, the training feed
  and recipes, tiled restoration, the Deep Image Prior's network;
* ``restoration.experiments``: depth study and evaluation;
  ``restoration.cli``: the command line (``python sol5.py --help``).

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
  Python generators (through ``restoration._training.fit_feed``, a small
  ``tf.data`` pipeline that casts the float64 batches to float32) and whole
  numbers of steps.
* ``scipy.ndimage.filters.convolve`` is now ``scipy.ndimage.convolve``.
* Keras 3 refuses to call a model built for 24x24 inputs on a larger tensor, so
  ``restore_image`` clones the base model onto an input of any size, *sharing*
  its layers (and so its weights).
"""

import math
import os
import sys
import weakref

import imageio.v3 as imageio
import numpy as np
import scipy.ndimage
import skimage.transform

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The usual two ways in: as a submodule of a package (the course's harness runs
# ``import current.sol5``), or as a top-level module from the repository's folder
# (``import sol5``, ``python sol5.py``).  ``sol5_utils`` is the course's helper; the project's
# own machinery is the package ``restoration`` beside this file (it imports TensorFlow quietly).
if __package__:
    from . import sol5_utils
    from .restoration import (_checks, _corruption, _data, _deep_prior, _noise, _presets,
                              _tiling, _training)
else:
    import sol5_utils
    from restoration import (_checks, _corruption, _data, _deep_prior, _noise, _presets, _tiling,
                             _training)
as_gray_image, check_int, check_kernel_size = (_checks.as_gray_image, _checks.check_int,
                                               _checks.check_kernel_size)
quantize, to_float_image, warn_once = _checks.quantize, _checks.to_float_image, _checks.warn_once
PRESETS, Recipe, Schedule, learning_rate = (_presets.PRESETS, _presets.Recipe, _presets.Schedule,
                                            _presets.learning_rate)

import keras  # noqa: E402
from keras.layers import Activation, Add, Conv2D, Input  # noqa: E402
from keras.models import Model  # noqa: E402
from keras.optimizers import Adam  # noqa: E402


# ==========================================================================
# Reading images (from the course's first exercise)
# ==========================================================================

def read_image(filename, representation):
    """Read an image file as a float64 array in [0, 1].

    Parameters
    ----------
    filename : str or path-like
        Path of the image file.
    representation : {1, 2}
        1 for a grayscale image of shape ``(H, W)``, 2 for an RGB image of
        shape ``(H, W, 3)``.  An alpha channel is dropped; a CMYK file is converted to RGB
        first.

    Returns
    -------
    image : ndarray of float64
        Values in [0, 1].

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file cannot be decoded as an image, or ``representation`` is
        not 1 or 2.

    Examples
    --------
    >>> import pathlib, tempfile, imageio.v3 as iio
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.png"
    >>> iio.imwrite(path, np.full((4, 6, 3), 255, np.uint8))
    >>> im = read_image(path, 1)
    >>> im.dtype, im.shape, float(im.max())
    (dtype('float64'), (4, 6), 1.0)
    """
    if representation not in (1, 2):
        raise ValueError(f"representation must be 1 (grayscale) or 2 (RGB), got {representation!r}")
    if not os.path.isfile(filename):
        raise FileNotFoundError(f"image file not found: {os.fspath(filename)!r}; check the path")
    try:
        raw = imageio.imread(filename)
        if raw.ndim == 3 and raw.shape[-1] == 4 and imageio.immeta(filename).get("mode") == "CMYK":
            raw = imageio.imread(filename, mode="RGB")  # inks, not red, green, blue and alpha
    except Exception as exc:  # imageio raises many kinds of errors
        raise ValueError(f"cannot read {os.fspath(filename)!r} as an image ({exc}); "
                         "is it a valid .png/.jpg file?") from exc
    return to_float_image(raw, representation, name=os.fspath(filename))


# ==========================================================================
# 3  Dataset handling
# ==========================================================================

def load_dataset(filenames, batch_size, corruption_func, crop_size, *, representation=1):
    """Endless generator of (corrupted, clean) patch batches.

    Each sample picks a random file (read once, then cached), cuts a random
    crop three times ``crop_size``, corrupts that crop with
    ``corruption_func`` and takes one random ``crop_size`` patch at the same
    place from the clean and the corrupted crop.  Both are shifted by -0.5.

    A corruption function may carry a batched form (see
    :func:`_corruption.with_patch_form`; the task corruptions
    :func:`denoising_corruption` and :func:`deblurring_corruption` do): then a
    whole batch is corrupted in one call, with the same patch positions and the
    same distribution of corruptions, at a fraction of the cost.  Any other
    function is called on each large crop, as above.

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
    representation : {1, 2}, optional
        Keyword only (not in the assignment).  1 reads the images as
        grayscale, as graded; 2 reads them as RGB, for a colour network
        (:func:`build_color_nn_model`), and ``corruption_func`` then gets
        RGB crops.

    Returns
    -------
    generator
        Yields ``(source_batch, target_batch)``, each a float64 array of shape
        ``(batch_size, height, width, 1)`` (``3`` channels for
        ``representation=2``) with values in [-0.5, 0.5]; ``source_batch``
        holds the corrupted patches.

    Raises
    ------
    ValueError
        For an empty file list, a bad batch or crop size (at once), and, when
        the file is first drawn, for an unreadable image or one smaller than
        ``crop_size``.  An image smaller than three times ``crop_size`` is
        used with a smaller large crop (its whole extent) and a warning.

    Examples
    --------
    >>> import pathlib, tempfile, imageio.v3 as iio
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "photo.png"
    >>> iio.imwrite(path, np.random.default_rng(0).integers(0, 256, (90, 90), dtype=np.uint8))
    >>> data = load_dataset([str(path)], 4, lambda im: add_gaussian_noise(im, 0, 0.2), (24, 24))
    >>> source, target = next(data)
    >>> source.shape, target.shape, float(target.min()) >= -0.5
    ((4, 24, 24, 1), (4, 24, 24, 1), True)
    """
    filenames = list(filenames) if not isinstance(filenames, str) else [filenames]
    if not filenames:
        raise ValueError("filenames is empty: pass at least one image path "
                         "(for instance sol5_utils.images_for_denoising())")
    batch_size = check_int(batch_size, "batch_size")
    crop_size = _check_crop_size(crop_size)
    if not callable(corruption_func):
        raise ValueError(f"corruption_func must be callable, got {corruption_func!r}")
    if representation not in (1, 2):
        raise ValueError(f"representation must be 1 (grayscale) or 2 (RGB), got {representation!r}")
    return _patch_batches(filenames, batch_size, corruption_func, crop_size, representation)


def _patch_batches(filenames, batch_size, corruption_func, crop_size, representation):
    cache = {}
    patch_form = getattr(corruption_func, "patch_form", None)
    if patch_form is not None and patch_form.margin > min(crop_size):
        patch_form = None
    batches_per_chunk = (1 if patch_form is None
                         else max(1, _corruption.SAMPLES_PER_CHUNK // batch_size))
    while True:
        picks = np.random.randint(len(filenames), size=batch_size * batches_per_chunk)
        images = [_cached_image(filenames[k], cache, crop_size, representation) for k in picks]
        crop_origins, crop_shapes, patch_offsets = _crop_positions(images, crop_size)
        if patch_form is None:
            source, target = _corrupt_large_crops(images, crop_origins, crop_shapes, patch_offsets,
                                                  corruption_func, crop_size)
        else:
            source, target = _corruption.corrupt_bordered_patches(
                images, crop_origins, crop_shapes, patch_offsets, patch_form, crop_size)
        if representation == 1:  # one channel axis for the network
            source, target = source[..., None], target[..., None]
        source = (source - 0.5).astype(np.float64, copy=False)
        target = (target - 0.5).astype(np.float64, copy=False)
        for start in range(0, len(picks), batch_size):
            yield source[start:start + batch_size], target[start:start + batch_size]


def _crop_positions(images, crop_size):
    """Random large crops (3x the patch, clipped to the image) and a random patch in each.

    Returns the crops' origins and shapes in their images, and the patches' offsets in their
    crops, each an int array of shape (n, 2); every position is uniform over its range.
    """
    image_shapes = np.array([image.shape[:2] for image in images])
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
    source = np.empty((len(images), height, width) + images[0].shape[2:])
    target = np.empty_like(source)
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


def _cached_image(name, cache, crop_size, representation=1):
    """Read ``name`` once (grayscale, or RGB for ``representation=2``); later calls return the
    cached array."""
    image = cache.get(name)
    if image is None:
        image = read_image(name, representation)
        if image.shape[0] < crop_size[0] or image.shape[1] < crop_size[1]:
            raise ValueError(f"image {name!r} of shape {image.shape[:2]} is smaller than the patch "
                             f"size {crop_size}; remove it from the list or use smaller patches")
        if image.shape[0] < 3 * crop_size[0] or image.shape[1] < 3 * crop_size[1]:
            warn_once(f"image {name!r} of shape {image.shape[:2]} is smaller than 3x the "
                      f"patch size {crop_size}: its large crops are clipped to the image")
        cache[name] = image
    return image


def _check_crop_size(crop_size):
    try:
        height, width = crop_size
    except (TypeError, ValueError):
        raise ValueError(f"crop_size must be a (height, width) pair, got {crop_size!r}") from None
    return check_int(height, "crop height"), check_int(width, "crop width")


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
    return _figure_1_network(height, width, 1, num_channels, num_res_blocks)


def build_color_nn_model(height, width, num_channels, num_res_blocks):
    """Figure 1's network for colour images: three channels in and out (not graded).

    The same layer kinds, residual blocks and global skip as :func:`build_nn_model`; only the
    first convolution reads, and the last writes, red, green and blue together, so the network
    can use what the channels share.  :func:`restore_color_image` runs it on RGB(A) images.

    Examples
    --------
    >>> build_color_nn_model(24, 24, 8, 1).output_shape
    (None, 24, 24, 3)
    """
    return _figure_1_network(height, width, 3, num_channels, num_res_blocks)


def _figure_1_network(height, width, image_channels, num_channels, num_res_blocks):
    """Head (conv, ReLU), body (residual blocks), tail (conv to ``image_channels``) and the
    global skip: the layers learn the correction to the input."""
    height = check_int(height, "height")
    width = check_int(width, "width")
    num_channels = check_int(num_channels, "num_channels")
    num_res_blocks = check_int(num_res_blocks, "num_res_blocks", minimum=0)
    corrupted = Input(shape=(height, width, image_channels))
    features = Conv2D(num_channels, (3, 3), padding="same")(corrupted)
    features = Activation("relu")(features)
    for _ in range(num_res_blocks):
        features = resblock(features, num_channels)
    correction = Conv2D(image_channels, (3, 3), padding="same")(features)
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
                steps_per_epoch, num_epochs, num_valid_samples, *, learning_rate=0.001,
                callbacks=()):
    """Train ``model`` on corrupted patches of ``images`` (80/20 train/validation).

    The model is compiled with the mean squared error and ``Adam(beta_2=0.9)``
    and fitted with ``Model.fit`` (today's ``fit_generator``) on two
    :func:`load_dataset` generators whose patch size is the model's input size.

    Parameters
    ----------
    model : keras.Model
        A restoration network with a fixed ``(height, width, 1)`` input (or
        ``(height, width, 3)``: a colour network then trains on RGB patches).
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
    callbacks : sequence of keras.callbacks.Callback, optional
        Keyword only. Passed to ``Model.fit`` (for instance a time limit).

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
    batch_size = check_int(batch_size, "batch_size")
    steps_per_epoch = check_int(steps_per_epoch, "steps_per_epoch")
    num_epochs = check_int(num_epochs, "num_epochs")
    num_valid_samples = check_int(num_valid_samples, "num_valid_samples")
    crop_size = tuple(model.input_shape[1:3])
    if None in crop_size:
        raise ValueError(f"the model's input must have a fixed size to train on patches, "
                         f"got input shape {model.input_shape}")
    colour = {"representation": 2} if _image_channels(model) == 3 else {}  # RGB patches
    train_images, valid_images = split_train_valid(images)
    train_set, valid_set = (_training.fit_feed(load_dataset(part, batch_size, corruption_func,
                                                            crop_size, **colour))
                            for part in (train_images, valid_images))
    model.compile(loss="mean_squared_error", optimizer=Adam(learning_rate=learning_rate, beta_2=0.9))
    return model.fit(train_set, steps_per_epoch=steps_per_epoch, epochs=num_epochs,
                     validation_data=valid_set, shuffle=False,
                     validation_steps=max(1, math.ceil(num_valid_samples / batch_size)),
                     callbacks=list(callbacks))


# ==========================================================================
# 6  Image restoration of complete images
# ==========================================================================

#: Per base model, one model of any input size that shares its layers.
_ANY_SIZE_MODELS = weakref.WeakKeyDictionary()


def model_for_any_size(base_model):
    """A model on ``Input(shape=(None, None, channels))`` that shares ``base_model``'s layers.

    The assignment's note builds a new model for each image size; Keras 3 lets one model of
    undefined height and width serve every size.  Because the layers (not copies) are shared,
    later training of the base model is seen by the returned model.  One such model is kept per
    base model.

    Examples
    --------
    >>> model_for_any_size(build_nn_model(24, 24, 8, 1)).input_shape
    (None, None, None, 1)
    """
    if tuple(base_model.input_shape[1:3]) == (None, None):
        return base_model
    any_size = _ANY_SIZE_MODELS.get(base_model)
    if any_size is None:
        channels = base_model.input_shape[-1]
        any_size = keras.models.clone_model(base_model,
                                            input_tensors=Input(shape=(None, None, channels)),
                                            clone_function=lambda layer: layer)
        _ANY_SIZE_MODELS[base_model] = any_size
    return any_size


def restore_image(corrupted_image, base_model, *, precision="float32", symmetries=1, sure=False):
    """Restore a whole image with a network trained on small patches.

    The network is applied fully convolutionally.  An image larger than
    ``restoration._tiling.TILE`` (448) pixels on a side goes through it in
    overlapping tiles whose overlap covers the network's receptive field, read
    from the model: the result equals a whole-image call up to float32
    rounding, with memory bounded by one tile.

    Parameters
    ----------
    corrupted_image : ndarray, shape (height, width)
        Grayscale float64 image in [0, 1] (integer images are converted).
    base_model : keras.Model
        A trained restoration network (inputs and outputs in [-0.5, 0.5]).
    precision : {'float32', 'mixed_bfloat16'}, optional
        Keyword only. ``'mixed_bfloat16'`` runs the network's layers in
        bfloat16, faster where the CPU (AMX, AVX512-BF16) or GPU has bfloat16
        units, at a small cost in PSNR (docs/speed.md).  Where the machine has
        no fast bfloat16 it warns and uses float32.
    symmetries : {1, 2, 4, 8}, optional
        Keyword only.  Average the network's results on this many turned and
        mirrored copies of the image, each turned back (a geometric
        self-ensemble): a little more PSNR for as many times the work
        (``restoration._tiling.SYMMETRIES`` lists them in order).
    sure : bool, optional
        Keyword only; for a denoiser of Gaussian noise only.  Remove only the share of the
        network's residual that Stein's unbiased risk estimate (SURE) finds best, block by
        block, at the noise level estimated from the image
        (``restoration._noise.sure_residual_scale``): the network runs twice.  A blind network
        that takes fine texture for light noise smooths it away; this gives some of it back.

    Returns
    -------
    restored : ndarray of float64, shape (height, width)
        Clipped to [0, 1].

    Raises
    ------
    ValueError
        If the image is not 2-D (see :func:`restore_color_image` for colour),
        its values are outside [0, 1], for an unknown precision, or for
        ``symmetries`` other than 1, 2, 4 or 8.

    Examples
    --------
    >>> noisy = add_gaussian_noise(np.full((40, 50), 0.5), 0.1, 0.1)
    >>> restored = restore_image(noisy, build_nn_model(24, 24, 8, 1))
    >>> restored.shape, restored.dtype, bool(restored.min() >= 0 and restored.max() <= 1)
    ((40, 50), dtype('float64'), True)
    """
    image = as_gray_image(corrupted_image, "corrupted_image")
    precision = _training.check_precision(precision)
    symmetries = _tiling.check_symmetries(symmetries)
    if _image_channels(base_model) != 1:
        raise ValueError(f"base_model reads {_image_channels(base_model)} channels; restore_image "
                         "restores gray images with a gray network (see restore_color_image)")
    return _restore_planes(image, base_model, precision=precision, symmetries=symmetries,
                           sure=sure).astype(np.float64)


def _image_channels(model):
    """How many image channels a restoration network reads (1: gray, 3: colour)."""
    return model.input_shape[-1]


def _restore_planes(planes, base_model, progress=None, precision="float32", symmetries=1,
                    sure=False):
    """The network on a 2-D channel or an (H, W, C) stack in [0, 1] (any real dtype); float32
    in [0, 1] out, the same shape.  With ``sure`` (2-D only), the share of the residual that
    ``_noise.sure_residual_scale`` finds best at each pixel is removed."""
    network = _tiling.network_runner(model_for_any_size(base_model), precision)
    run = _tiling.averaged_over_symmetries(network.run, symmetries)
    tile = _tiling.TILE if network.radius is not None else max(planes.shape[:2])  # strided

    def denoise(image, progress=None):
        shifted = image.astype(np.float32)
        shifted -= 0.5
        restored = _tiling.restore_tiled(shifted, run, network.radius or 0, tile, progress)
        restored += 0.5
        return np.clip(restored, 0.0, 1.0, out=restored)
    restored = denoise(planes, progress)
    if not sure:
        return restored

    def denoise_again(image):  # SURE's probe: the progress bar counts its tiles too
        if progress is not None and progress.target is not None:
            progress.target += (1 if network.radius is None
                                else _tiling.tile_count(image.shape, network.radius))
        return denoise(image, progress)
    scale = _noise.sure_residual_scale(planes, restored, denoise_again)
    if np.ndim(scale) == 0:  # the residual kept whole
        return restored
    planes = planes.astype(np.float32)
    return np.clip(planes - scale * (planes - restored), 0.0, 1.0)


def restore_color_image(corrupted_image, base_model, *, out_dtype=np.float64, progress=None,
                        precision="float32", colour_space="rgb", symmetries=1, sure=False):
    """Restore a colour (or gray) image with a gray network, channel by channel, or a colour one.

    With a gray network (:func:`build_nn_model`) each colour channel is restored on its own, as
    :func:`restore_image` restores a gray image: the task's noise is drawn independently per
    channel and a motion blur is shared by all channels, so every channel is a gray image
    corrupted as in training.  A colour network (:func:`build_color_nn_model`) restores red,
    green and blue together.  An alpha channel is passed through unchanged.

    Parameters
    ----------
    corrupted_image : ndarray
        ``(H, W)``, ``(H, W, 2)`` (gray + alpha), ``(H, W, 3)`` (RGB) or ``(H, W, 4)`` (RGBA);
        float in [0, 1], or integers scaled by their dtype's range (uint8 by 255, uint16 by
        65535).
    base_model : keras.Model
        A trained restoration network, as for :func:`restore_image`: gray (one channel in and
        out) or colour (three; then the image must be RGB or RGBA).
    out_dtype : dtype, optional
        Keyword only.  float64 (default) gives values in [0, 1]; an unsigned integer dtype
        gives its full range (uint16: 0 to 65535), built channel by channel without a float
        copy of the whole image.
    progress : keras.utils.Progbar, optional
        Keyword only.  Its target is set to the number of tiles the network will run on,
        and it is advanced once per tile.
    precision : {'float32', 'mixed_bfloat16'}, optional
        Keyword only.  As for :func:`restore_image`.
    colour_space : {'rgb', 'opponent'}, optional
        Keyword only.  Where a gray network restores a colour image: in its red, green and
        blue channels, or in an opponent space (:func:`to_opponent`: the mean of the three and
        two colour differences), whose channels each carry less of the noise than a colour
        channel, then back to RGB.  A colour network always works in RGB.
    symmetries : {1, 2, 4, 8}, optional
        Keyword only.  As for :func:`restore_image`.
    sure : bool, optional
        Keyword only.  As for :func:`restore_image`, channel by channel: with a gray network
        only.

    Returns
    -------
    restored : ndarray of ``out_dtype``, the input's shape

    Raises
    ------
    ValueError
        For another layout, NaNs, float values outside [0, 1], an unknown precision, colour
        space or number of symmetries, a colour network given a gray image, or ``sure`` with a
        colour network.

    Examples
    --------
    >>> rgb = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    >>> restored = restore_color_image(rgb, build_nn_model(24, 24, 8, 1), out_dtype=np.uint8)
    >>> restored.shape, restored.dtype
    ((30, 40, 3), dtype('uint8'))
    """
    image = np.asarray(corrupted_image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"corrupted_image must be gray (H, W), gray + alpha (H, W, 2), RGB "
                         f"(H, W, 3) or RGBA (H, W, 4); got shape {image.shape}")
    out_dtype = np.dtype(out_dtype)
    precision = _training.check_precision(precision)
    symmetries = _tiling.check_symmetries(symmetries)
    colours = 1 if image.shape[-1] <= 2 else 3
    if colour_space not in ("rgb", "opponent"):
        raise ValueError(f"colour_space must be 'rgb' or 'opponent', got {colour_space!r}")
    together = _image_channels(base_model) == 3
    if together and colours != 3:
        raise ValueError(f"a colour network restores RGB or RGBA images, got shape {image.shape}; "
                         "restore gray images with a gray network")
    if together and sure:
        raise ValueError("sure=True works channel by channel, with a gray network; a colour "
                         "network restores the three channels together (pass sure=False)")
    opponent = colour_space == "opponent" and colours == 3 and not together
    if progress is not None:
        radius = _tiling.network_runner(model_for_any_size(base_model)).radius
        progress.target = (1 if together else colours) * (
            1 if radius is None else _tiling.tile_count(image.shape[:2], radius))
    restored = np.empty(image.shape, out_dtype)
    if together or opponent:  # the three colours at once
        colour = np.dstack([as_gray_image(image[..., c], "corrupted_image").astype(np.float32)
                            for c in range(3)])
        if opponent:  # each opponent channel is a gray image, then back to RGB
            colour = np.clip(from_opponent(np.stack(
                [_restore_planes(plane, base_model, progress, precision, symmetries, sure)
                 for plane in np.moveaxis(to_opponent(colour), -1, 0)], axis=-1)), 0.0, 1.0)
        else:
            colour = _restore_planes(colour, base_model, progress, precision, symmetries)
        restored[..., :3] = _to_dtype(colour, out_dtype)
    for c in range(3 if together or opponent else 0, image.shape[-1]):  # one channel at a time
        channel = as_gray_image(image[..., c], "corrupted_image")
        if c < colours:
            channel = _restore_planes(channel, base_model, progress, precision, symmetries, sure)
        restored[..., c] = _to_dtype(channel, out_dtype)
    return restored[..., 0] if np.asarray(corrupted_image).ndim == 2 else restored


def to_opponent(rgb):
    """An opponent colour space for RGB values in [0, 1]: the mean of the three channels, then
    (red - blue) / 2 and (red - 2 green + blue) / 4, both shifted by 0.5; all in [0, 1].

    Noise drawn independently in each colour channel, of deviation sigma, has deviation
    0.58, 0.71 and 0.61 times sigma in these channels, and stays independent.

    Examples
    --------
    >>> to_opponent(np.array([[[1.0, 0.0, 0.0]]]))
    array([[[0.33333333, 1.        , 0.75      ]]])
    >>> rgb = np.random.default_rng(0).random((4, 5, 3))
    >>> bool(np.allclose(from_opponent(to_opponent(rgb)), rgb))
    True
    """
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.stack([(red + green + blue) / 3, (red - blue) / 2 + 0.5,
                     (red - 2 * green + blue) / 4 + 0.5], axis=-1)


def from_opponent(planes):
    """The inverse of :func:`to_opponent`: red, green and blue from the mean and differences."""
    mean, red_blue, purple_green = planes[..., 0], planes[..., 1] - 0.5, planes[..., 2] - 0.5
    return np.stack([mean + red_blue + purple_green * 2 / 3, mean - purple_green * 4 / 3,
                     mean - red_blue + purple_green * 2 / 3], axis=-1)


def _to_dtype(channel, dtype):
    """Values in [0, 1] as ``dtype``: unchanged for floats, rounded onto the full integer range."""
    if np.issubdtype(dtype, np.floating):
        return channel
    return np.round(channel * np.iinfo(dtype).max)


# ==========================================================================
# 7  Application to image denoising and deblurring
# ==========================================================================

#: The assignment's numbers: schedules (batch size, steps per epoch, epochs, validation
#: samples), patch sizes, channels and corruptions.
QUICK_SCHEDULE = Schedule(10, 3, 2, 30)
DENOISE_SCHEDULE = Schedule(100, 100, 5, 1000)
DEBLUR_SCHEDULE = Schedule(100, 100, 10, 1000)
DENOISE_PATCH, DENOISE_CHANNELS, DENOISE_SIGMAS = (24, 24), 48, (0.0, 0.2)
DEBLUR_PATCH, DEBLUR_CHANNELS, DEBLUR_KERNEL_SIZES = (16, 16), 32, [7]
SUPER_RES_PATCH, SUPER_RES_CHANNELS, SUPER_RES_SCHEDULE = (24, 24), 48, DENOISE_SCHEDULE


# 7.1  Denoising

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


@_corruption.with_patch_form(0, lambda patches: _corruption.gaussian_noise_on_patches(
    patches, *DENOISE_SIGMAS), augment=True)
def denoising_corruption(image):
    """The denoising task's corruption: Gaussian noise with sigma drawn from [0, 0.2].

    Its batched form for :func:`load_dataset` also turns each clean patch by a random one of
    the square's 8 symmetries (flips, 90-degree turns): photos have no preferred orientation.
    """
    return add_gaussian_noise(image, *DENOISE_SIGMAS)


def _check_low_sigma_share(share):
    """``share`` as a float if it is a probability, for the ``*_corruption_with`` factories."""
    share = float(share)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"low_sigma_share is a probability in [0, 1], got {share}")
    return share


def denoising_corruption_with(low_sigma_share=0.0):
    """The denoising corruption with a share of its noise levels from the lower half.

    Parameters
    ----------
    low_sigma_share : float, optional
        Probability, in [0, 1], that an image's sigma is drawn from [0, 0.1] instead of
        [0, 0.2] (:func:`_corruption.draw_sigmas`).  More low sigmas weigh the training loss,
        which the larger errors of high sigmas otherwise dominate, towards light noise.

    Returns
    -------
    callable
        ``corruption(image)`` for gray images, with a batched patch form;
        :func:`denoising_corruption` itself for a share of 0.

    Raises
    ------
    ValueError
        If ``low_sigma_share`` is outside [0, 1].

    Examples
    --------
    >>> denoising_corruption_with(0.0) is denoising_corruption
    True
    >>> noisy = denoising_corruption_with(1.0)(np.full((20, 20), 0.5))
    >>> noisy.shape, bool(np.std(noisy) < 0.11)
    ((20, 20), True)
    """
    low_sigma_share = _check_low_sigma_share(low_sigma_share)
    if low_sigma_share == 0.0:
        return denoising_corruption

    @_corruption.with_patch_form(0, lambda patches: _corruption.gaussian_noise_on_patches(
        patches, *DENOISE_SIGMAS, low_share=low_sigma_share), augment=True)
    def lighter_denoising_corruption(image):
        """:func:`denoising_corruption` with more of its sigmas from [0, 0.1]."""
        image = as_gray_image(image)
        sigma = _corruption.draw_sigmas(1, *DENOISE_SIGMAS, low_share=low_sigma_share)[0]
        return quantize(image + np.random.normal(0.0, sigma, image.shape))
    return lighter_denoising_corruption


def learn_denoising_model(num_res_blocks=5, quick_mode=False, *, preset=None, precision="float32",
                          max_minutes=None, init_from=None, extra_photos=(), checkpoint=None,
                          low_sigma_share=0.0):
    """Train a network that removes Gaussian noise of unknown sigma in [0, 0.2].

    24x24 patches, 48 channels; batches of 100, 100 steps per epoch, 5 epochs,
    1000 validation samples (quick mode: 10, 3, 2, 30).  The images come from
    :func:`sol5_utils.images_for_denoising`.

    Parameters
    ----------
    num_res_blocks : int, optional
        Depth of the network.
    quick_mode : bool, optional
        Train on the quick schedule (10, 3, 2, 30), same code path.
    preset : {None, 'strong', 'long'}, optional
        Keyword only. None trains the assignment's network; ``'strong'`` a
        bigger one for a CPU (``PRESETS['denoise']['strong']``: 8 blocks, 64
        channels, 40x40 patches, 6000 steps, cosine step size), ``'long'`` a
        deeper one for a GPU (the shipped weights); then ``num_res_blocks``
        must stay at its default.
    precision : {'float32', 'mixed_bfloat16'}, optional
        Keyword only. ``'mixed_bfloat16'`` computes in bfloat16, faster on CPUs
        with AVX512-BF16/AMX and on recent GPUs (elsewhere it warns and uses
        float32); the returned model is an ordinary float32 network either way.
    max_minutes : float, optional
        Keyword only. Train for this much wall time at most, the step size
        decaying over it (for the long presets on a lent machine).
    init_from : str or path-like, optional
        Keyword only. Continue from the weights of this saved model (same
        network), the step size starting at ``CONTINUE_RATE``.
    extra_photos : sequence of str or path-like, optional
        Keyword only. Folders of further photos (``.jpg``/``.png``) to train
        on beside the dataset, read in gray.
    checkpoint : str or path-like, optional
        Keyword only. Save the model there after every epoch.
    low_sigma_share : float, optional
        Keyword only. Share of the patches whose sigma is drawn from
        [0, 0.1] instead of [0, 0.2] (:func:`denoising_corruption_with`);
        0, the default, is the assignment's corruption.

    Returns
    -------
    keras.Model
        The trained model (24x24 input; use :func:`restore_image` for whole images).

    Raises
    ------
    ValueError
        For an unknown preset or precision, a preset together with
        ``num_res_blocks``, or ``low_sigma_share`` outside [0, 1].
    """
    corruption = denoising_corruption_with(low_sigma_share)
    recipe = choose_recipe("denoise", preset, num_res_blocks, quick_mode)
    images = _data.with_extra_photos(sol5_utils.images_for_denoising(), extra_photos)
    return learn_with_recipe("denoising", images, corruption,
                             recipe, precision, max_minutes, init_from, checkpoint=checkpoint)


# 7.2  Deblurring

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
        check_kernel_size(size)
    angle = np.random.uniform(0, np.pi)
    kernel_size = sizes[np.random.randint(len(sizes))]
    return quantize(add_motion_blur(image, kernel_size, angle))


@_corruption.with_patch_form(
    max(DEBLUR_KERNEL_SIZES) // 2, lambda patches: _corruption.random_motion_blur_on_patches(
        patches, DEBLUR_KERNEL_SIZES, sol5_utils.motion_blur_kernel))
def deblurring_corruption(image):
    """The deblurring task's corruption: a 7-pixel motion blur at a random angle."""
    return random_motion_blur(image, DEBLUR_KERNEL_SIZES)


def learn_deblurring_model(num_res_blocks=5, quick_mode=False, *, preset=None, precision="float32",
                           max_minutes=None, init_from=None):
    """Train a network that removes 7-pixel motion blur of any angle from text.

    16x16 patches, 32 channels; batches of 100, 100 steps per epoch, 10
    epochs, 1000 validation samples (quick mode: 10, 3, 2, 30).  The images
    come from :func:`sol5_utils.images_for_deblurring`.

    Parameters
    ----------
    num_res_blocks : int, optional
        Depth of the network.
    quick_mode : bool, optional
        Train on the quick schedule (10, 3, 2, 30), same code path.
    preset : {None, 'extended', 'strong', 'long'}, optional
        Keyword only. As for :func:`learn_denoising_model`, with the presets of
        ``PRESETS['deblur']``; ``'extended'`` is the assignment's network and
        patches trained for 4 times as many steps (4000).
    precision, max_minutes, init_from : optional
        Keyword only, as for :func:`learn_denoising_model`.

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
    recipe = choose_recipe("deblur", preset, num_res_blocks, quick_mode)
    return learn_with_recipe("deblurring", sol5_utils.images_for_deblurring(),
                             deblurring_corruption, recipe, precision, max_minutes, init_from)


# The recipe every learn_* function fills in

#: The assignment's recipe of each task (the depth is ``learn_*``'s default, 5).
ASSIGNMENT_RECIPES = {
    "denoise": Recipe(DENOISE_PATCH, DENOISE_CHANNELS, 5, DENOISE_SCHEDULE, 0.001),
    "deblur": Recipe(DEBLUR_PATCH, DEBLUR_CHANNELS, 5, DEBLUR_SCHEDULE, 0.001),
    "superres": Recipe(SUPER_RES_PATCH, SUPER_RES_CHANNELS, 5, SUPER_RES_SCHEDULE, 0.001),
}
#: Adam's first step size when training continues from saved weights (``init_from``).
CONTINUE_RATE = 3e-4


def choose_recipe(task, preset=None, num_res_blocks=5, quick_mode=False):
    """The recipe of a ``learn_*`` call: the assignment's for ``task``, or a named preset.

    Parameters
    ----------
    task : {'denoise', 'deblur', 'superres', 'denoise-colour'}
        The task's key in ``PRESETS``, and without a preset in
        :data:`ASSIGNMENT_RECIPES` (``'denoise-colour'`` takes the denoising one).
    preset : str, optional
        None for the assignment's recipe with ``num_res_blocks`` blocks, else a key of
        ``PRESETS[task]`` (which fixes its own depth).
    num_res_blocks : int, optional
    quick_mode : bool, optional
        Replace the schedule by the quick one (10, 3, 2, 30).

    Returns
    -------
    Recipe

    Raises
    ------
    ValueError
        For an unknown preset, or a preset together with another depth than the default.

    Examples
    --------
    >>> choose_recipe("deblur", quick_mode=True).schedule
    Schedule(batch_size=10, steps_per_epoch=3, num_epochs=2, num_valid_samples=30)
    """
    if preset is None:  # the colour denoiser's default is the denoising recipe
        recipe = ASSIGNMENT_RECIPES[task.removesuffix("-colour")]._replace(
            num_res_blocks=num_res_blocks)
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


def learn_with_recipe(label, images, corruption_func, recipe, precision="float32",
                      max_minutes=None, init_from=None, *, image_channels=1, checkpoint=None):
    """What every ``learn_*`` function does: train a network of ``recipe`` (a
    ``restoration._presets.Recipe``) on ``images`` corrupted by ``corruption_func``; ``label``
    names the model in the message that says where the images come from.

    With ``precision='mixed_bfloat16'`` the network is trained in bfloat16 arithmetic (float32
    weights), and its weights are then moved into an ordinary float32 network, which is returned.
    With ``max_minutes``, training stops after the step that passes that much wall time, and
    the step size decays over that time (``_training.TimeBudget``).  With ``init_from`` (a
    saved model of the same architecture, or for a colour network the gray one: see
    ``_training.starting_weights``) training continues from its weights, with the step size
    starting at ``CONTINUE_RATE``.  ``image_channels=3`` trains a colour network
    (:func:`build_color_nn_model`); with ``checkpoint`` (a ``.keras`` path) the model is saved
    there after every epoch, for ``init_from`` should the run be cut short.
    """
    precision = _training.check_precision(precision)
    print(f"sol5: training the {label} model on {_data.describe_source(images)}"
          + (" in mixed bfloat16" if precision != "float32" else ""))
    build = build_color_nn_model if image_channels == 3 else build_nn_model
    shape = (recipe.patch[0], recipe.patch[1], recipe.channels, recipe.num_res_blocks)
    with _training.dtype_policy(precision):
        model = build(*shape)
    if init_from is not None:
        model.set_weights(_training.starting_weights(
            model, keras.models.load_model(init_from, compile=False)))
        final = recipe.learning_rate[1] if isinstance(recipe.learning_rate, tuple) else CONTINUE_RATE
        recipe = recipe._replace(learning_rate=(CONTINUE_RATE, min(final, CONTINUE_RATE)))
    rate, callbacks = learning_rate(recipe), []
    if max_minutes:  # the step size decays over the time budget instead of the step count
        initial, final = (recipe.learning_rate if isinstance(recipe.learning_rate, tuple)
                          else (recipe.learning_rate,) * 2)
        rate, callbacks = initial, [_training.TimeBudget(60 * max_minutes, initial, final)]
    if checkpoint is not None:
        callbacks.append(keras.callbacks.ModelCheckpoint(os.fspath(checkpoint)))
    train_model(model, images, corruption_func, *recipe.schedule, learning_rate=rate,
                callbacks=callbacks)
    if precision != "float32":
        trained, model = model, build(*shape)
        model.set_weights(trained.get_weights())
        model.compile(loss="mean_squared_error", optimizer=Adam(beta_2=0.9))
    return model


# ==========================================================================
# 7.4  Super-resolution (the Q2 recipe, implemented)
# ==========================================================================

def _check_scale(scale):
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer, float)) \
            or not np.isfinite(scale) or scale < 2:
        raise ValueError(f"scale must be a number >= 2 (how many times smaller the low-resolution "
                         f"image is), got {scale!r}")
    return float(scale)


def enlarge(image, shape):
    """Resize ``image`` to ``shape`` with cubic-spline interpolation (scikit-image, order 3),
    clipped to [0, 1] (not to the input's own range, so a crop is enlarged as the same pixels of
    the whole image would be)."""
    return np.clip(skimage.transform.resize(image, shape, order=3, mode="reflect",
                                            anti_aliasing=False, clip=False), 0.0, 1.0)


def downscale(image, scale):
    """Shrink ``image`` by ``scale`` (anti-aliased cubic resampling), rounded to i/255 and
    clipped to [0, 1]."""
    scale = _check_scale(scale)
    small_shape = tuple(max(1, int(round(n / scale))) for n in image.shape)
    return quantize(skimage.transform.resize(image, small_shape, order=3, mode="reflect",
                                             anti_aliasing=True, clip=False))


def lose_resolution(image, scale):
    """The super-resolution corruption: shrink by ``scale``, then enlarge back to the same shape.

    The network then learns to restore the detail that the round trip lost.
    """
    image = as_gray_image(image)
    return quantize(enlarge(downscale(image, scale), image.shape))


def super_resolution_corruption(scale):
    """The corruption :func:`learn_super_resolution_model` trains on: :func:`lose_resolution`.

    For an integer ``scale`` it carries a batched patch form
    (:func:`_corruption.resolution_loss_on_patches`): each patch is shrunk and enlarged
    with a border of ``6 * scale`` pixels instead of a whole crop of 3x the patch (about a third
    of the cost), and turned by a random symmetry of the square, as the denoising patches are.
    Other scales are corrupted crop by crop.
    """
    scale = _check_scale(scale)

    def corruption(image):
        return lose_resolution(image, scale)
    if scale.is_integer():
        whole = int(scale)
        corruption = _corruption.with_patch_form(
            _corruption.resolution_margin(whole),
            lambda patches: _corruption.resolution_loss_on_patches(
                patches, whole, lose_resolution), augment=True)(corruption)
    return corruption


def learn_super_resolution_model(num_res_blocks=5, quick_mode=False, scale=2, *, preset=None,
                                 precision="float32", max_minutes=None, init_from=None,
                                 extra_photos=()):
    """Train a network that restores the detail lost by shrinking photos ``scale`` times.

    Same recipe as :func:`learn_denoising_model` (24x24 patches, 48 channels, 100 x 100 x 5
    steps, quick mode 10, 3, 2, 30) with :func:`lose_resolution` as the corruption.

    Parameters
    ----------
    num_res_blocks : int, optional
        Depth of the network.
    quick_mode : bool, optional
        Train on the quick schedule (10, 3, 2, 30), same code path.
    scale : float, optional
        Enlargement factor the model is for, at least 2.
    preset, precision, max_minutes, init_from, extra_photos : optional
        Keyword only, as for :func:`learn_denoising_model` (presets of
        ``_presets.PRESETS['superres']``).

    Returns
    -------
    keras.Model
        Use it with :func:`super_resolve_image`.

    Raises
    ------
    ValueError
        If ``scale < 2``.
    """
    corruption = super_resolution_corruption(scale)
    recipe = choose_recipe("superres", preset, num_res_blocks, quick_mode)
    images = _data.with_extra_photos(sol5_utils.images_for_super_resolution(), extra_photos)
    return learn_with_recipe(f"x{scale:g} super-resolution", images, corruption, recipe,
                             precision, max_minutes, init_from)


def super_resolve_image(low_res_image, base_model, scale=2, *, precision="float32", symmetries=1):
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
    precision : {'float32', 'mixed_bfloat16'}, optional
        Keyword only.  As for :func:`restore_image`.
    symmetries : {1, 2, 4, 8}, optional
        Keyword only.  As for :func:`restore_image`.

    Returns
    -------
    ndarray of float64, shape (round(height * scale), round(width * scale))

    Raises
    ------
    ValueError
        If ``scale < 2``, the image is not a 2-D image in [0, 1], or for
        ``symmetries`` other than 1, 2, 4 or 8.
    """
    scale = _check_scale(scale)
    image = as_gray_image(low_res_image, "low_res_image")
    shape = tuple(int(round(n * scale)) for n in image.shape)
    return restore_image(enlarge(image, shape), base_model, precision=precision,
                         symmetries=symmetries)


# ==========================================================================
# 7.5  Colour denoising (an extra: the graded functions stay gray)
# ==========================================================================

def colour_denoising_corruption_with(low_sigma_share=0.0):
    """The colour denoiser's corruption, with a share of its noise levels from the lower half.

    Parameters
    ----------
    low_sigma_share : float, optional
        As for :func:`denoising_corruption_with`: the probability that an image's sigma is
        drawn from [0, 0.1] instead of [0, 0.2].

    Returns
    -------
    callable
        ``corruption(image)`` for RGB images, with a batched patch form.

    Raises
    ------
    ValueError
        If ``low_sigma_share`` is outside [0, 1].
    """
    low_sigma_share = _check_low_sigma_share(low_sigma_share)

    @_corruption.with_patch_form(0, lambda patches: _corruption.gaussian_noise_on_patches(
        patches, *DENOISE_SIGMAS, low_share=low_sigma_share), augment=True)
    def colour_denoising_corruption(image):
        """:func:`denoising_corruption` for an RGB image ``(height, width, 3)``: one sigma drawn
        from [0, 0.2], independent noise on every channel, rounded to i/255 and clipped."""
        image = np.asarray(image, dtype=np.float64)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"colour_denoising_corruption corrupts RGB images (height, width, 3), "
                             f"got shape {image.shape}; use denoising_corruption for gray ones")
        sigma = _corruption.draw_sigmas(1, *DENOISE_SIGMAS, low_share=low_sigma_share)[0]
        return quantize(image + np.random.normal(0.0, sigma, image.shape))
    return colour_denoising_corruption


#: The colour denoiser's corruption with sigma drawn uniformly from [0, 0.2].
colour_denoising_corruption = colour_denoising_corruption_with()


def learn_color_denoising_model(num_res_blocks=5, quick_mode=False, *, preset=None,
                                precision="float32", max_minutes=None, init_from=None,
                                extra_photos=(), checkpoint=None, low_sigma_share=0.0):
    """Train a colour network (:func:`build_color_nn_model`) that removes Gaussian noise of
    unknown sigma in [0, 0.2] from RGB photos; :func:`restore_color_image` runs it.

    The denoising recipe (24x24 patches, 48 channels, 100 x 100 x 5 steps; quick mode 10, 3, 2,
    30) on RGB patches of the offline photos (``restoration._data.colour_training_photos``).

    Parameters
    ----------
    num_res_blocks, quick_mode, preset, precision, max_minutes : optional
        As for :func:`learn_denoising_model` (presets of ``PRESETS['denoise-colour']``).
    init_from : str or path-like, optional
        Keyword only. A saved colour network to continue, or a gray denoiser of the same body
        to start from.
    extra_photos : sequence of str or path-like, optional
        Keyword only. Folders of further photos to train on (``.jpg``/``.png``).
    checkpoint : str or path-like, optional
        Keyword only. Save the model there after every epoch.
    low_sigma_share : float, optional
        Keyword only. Share of the patches whose sigma is drawn from [0, 0.1] instead of
        [0, 0.2] (:func:`colour_denoising_corruption_with`).

    Returns
    -------
    keras.Model
        Three channels in and out.

    Raises
    ------
    ValueError
        If ``low_sigma_share`` is outside [0, 1].
    """
    corruption = colour_denoising_corruption_with(low_sigma_share)
    recipe = choose_recipe("denoise-colour", preset, num_res_blocks, quick_mode)
    return learn_with_recipe("colour denoising", _data.colour_training_photos(extra_photos),
                             corruption, recipe, precision, max_minutes,
                             init_from, image_channels=3, checkpoint=checkpoint)


# ==========================================================================
# 8  Bonus: Deep Image Prior
# ==========================================================================

def deep_prior_restore_image(corrupted_image, *, seed=0, max_steps=None, verbose=False):
    """Restore a noisy grayscale image with a Deep Image Prior.

    Nothing is learned from other images, and the method is blind: it uses
    neither a clean image nor the true noise level.  The noise level is
    estimated from the image itself (from the smallest principal components
    of its patches).  A freshly drawn hourglass network (an encoder-decoder
    with thin skip connections at every scale) turns a fixed random tensor
    into an image and is fitted to the corrupted image by Adam, with a small
    new random perturbation of the input at every step; its estimate is the
    running (exponential) mean of its outputs.  Such a network reproduces the
    image's structure before its noise, so the fit is stopped early: at the
    knee of the running mean's distance to the corrupted image, once that
    mean squared difference is within ``_deep_prior.DIP_KNEE_RATIO`` (1.1)
    times the estimated noise variance and has stopped falling, or in any
    case once it is down to ``_deep_prior.DIP_STOP_RATIO`` (0.75) times it
    (``_deep_prior.DIP_QUICK_STOP_RATIO``, 0.95, for an image whose fit
    reached the knee's ratio within its first ``_deep_prior.DIP_QUICK_STEPS``
    steps: with little texture, what it fits below the noise level is noise).
    The network's estimate then guides a collaborative Wiener pass (the
    second stage of BM3D): similar 8x8 patches are grouped, the corrupted
    image's groups are shrunk in a 3-D transform domain by the estimate's
    Wiener gain for the estimated noise level, and put back.  Below an
    estimated sigma of ``_deep_prior.DIP_REPILOT_SIGMA`` (0.07) the pass runs
    a second time, guided by its own first result.

    Parameters
    ----------
    corrupted_image : array_like, shape (height, width)
        Grayscale image.  Floats must lie in [0, 1]; integer images are scaled
        by their dtype's range with :func:`skimage.util.img_as_float64`.  Any
        size works, also small ones: the network halves the size
        ``_deep_prior.DIP_LEVELS`` (3) times, so it works on a grid padded (by
        reflection) up to multiples of 8; only the image's own pixels enter
        the fit, and the result is cropped back to the input's shape.
    seed : int, optional
        Seeds the weights, the input tensor and its perturbations.  Calls with
        the same image and seed give the same result.  The global random
        states of numpy, TensorFlow and Keras are neither used nor changed.
    max_steps : int, optional
        Upper bound on the number of Adam steps (default ``_deep_prior.DIP_MAX_STEPS``,
        600).  Only texture at low noise runs that long; smooth images stop
        after a few dozen.
    verbose : bool, optional
        Print the progress of the fit every ``_deep_prior.DIP_CHUNK`` steps.

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
    graph; later calls of that size reuse it.

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
    image = as_gray_image(corrupted_image, "corrupted_image")
    max_steps = _deep_prior.DIP_MAX_STEPS if max_steps is None else check_int(max_steps, "max_steps")
    return _deep_prior.fit_and_restore(image, seed, max_steps, verbose)


if __name__ == "__main__":
    # Register this very module under its own name before the command line loads: the layers
    # above (experiments, command line) import ``sol5`` and would otherwise load a second copy.
    sys.modules.setdefault(__spec__.name if __spec__ else "sol5", sys.modules[__name__])
    if __package__:
        from .restoration import cli
    else:
        from restoration import cli
    cli.main()
