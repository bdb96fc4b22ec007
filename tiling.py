"""Tiled restoration: run a fully convolutional network over an image of any size in bounded memory.

A whole-image call holds every activation of the image at once (48 channels of float32 per pixel
and layer for the denoiser: gigabytes for a photo).  Here the image is cut into windows of a fixed
size that overlap by the network's receptive radius; each window's centre, the *core*, is far
enough from the window's cut edges to be computed exactly as in a whole-image call, and the cores
tile the image.  The cost is the overlap (a few percent for the assignment's denoiser:
``benchmarks/scaling.py``), and the memory is that of one window.

The radius is read from the model's layers, so a deeper model than ours gets a wider overlap.
"""

import collections
import math
import weakref

import numpy as np

import sol5_utils

tf = sol5_utils.import_tensorflow_quietly()
import keras  # noqa: E402

#: Side of the square windows the network sees (pixels); smaller images go through in one call.
WINDOW = 448

#: How a network of any input size is run: ``run(batch)`` and its receptive radius (None when
#: it cannot be tiled).  Kept per model, then per precision.
NetworkRunner = collections.namedtuple("NetworkRunner", "run radius")
_RUNNERS = weakref.WeakKeyDictionary()


def network_runner(model, precision="float32"):
    """``model`` (any input size) wrapped for :func:`restore_tiled`, kept once per model and precision.

    On the TensorFlow backend it runs through one ``tf.function`` with ``reduce_retracing``, so
    windows of every size share a traced graph after the second size: faster and leaner than
    eager calls, without ``predict``'s retracing for every new model.  A model with strided
    layers gets ``radius=None`` and a warning: it can only be run on the whole image.

    With ``precision="mixed_bfloat16"`` the windows go through a copy of the network whose layers
    compute in bfloat16 (:func:`bfloat16_copy`); each call first copies the model's current
    weights into it, so later training of ``model`` is seen.  The caller checks that the machine
    runs bfloat16 fast (``fast_training.check_precision``).
    """
    runners = _RUNNERS.setdefault(model, {})
    runner = runners.get(precision)
    if runner is None:
        try:
            radius = receptive_radius(model)
        except ValueError as exc:
            sol5_utils.warn_once(f"restoring whole images in one call: {exc}")
            radius = None
        network = model if precision == "float32" else bfloat16_copy(model)

        def forward(batch):
            if network is not model:
                for copy, weight in zip(network.weights, model.weights):
                    copy.assign(weight)
            return network(batch, training=False)
        if keras.backend.backend() == "tensorflow":
            forward = tf.function(forward, reduce_retracing=True)
        runner = runners[precision] = NetworkRunner(forward, radius)
    return runner


def bfloat16_copy(model):
    """A copy of ``model`` whose layers compute in bfloat16 (weights kept in float32), except its
    output layers, which add the global skip in float32 so the result is not rounded to bfloat16.

    On a CPU with AMX this ran 1.4 to 2.2 times as fast as float32 (the wider network gaining
    more), and the restored images differ by about 0.01 dB in PSNR (``benchmarks/speed.py --precision``).
    """
    outputs = model.get_config()["output_layers"]  # [name, node, index], or a list of those
    outputs = {outputs[0]} if isinstance(outputs[0], str) else {name for name, *_ in outputs}

    def in_bfloat16(layer):
        config = layer.get_config()
        if layer.name not in outputs and not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = "mixed_bfloat16"
        return layer.__class__.from_config(config)
    copy = keras.models.clone_model(model, clone_function=in_bfloat16)
    copy.set_weights(model.get_weights())
    return copy


def receptive_radius(model):
    """How far, in pixels, an output pixel of ``model`` can see from its position.

    The sum over the model's convolution and pooling layers of ``dilation * (kernel - 1) / 2``
    (rounded up): an upper bound for any wiring of the layers, exact for a chain such as
    figure 1's network.  Nested models are followed.

    Raises
    ------
    ValueError
        For a layer with a stride other than 1 (the output then does not follow the input pixel
        for pixel, so windows cannot be stitched).

    Examples
    --------
    >>> import sol5
    >>> receptive_radius(sol5.build_nn_model(24, 24, 8, 5))  # 12 convolutions of 3x3
    12
    """
    radius = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            radius += receptive_radius(layer)
            continue
        strides = getattr(layer, "strides", None) or (1,)
        if any(s != 1 for s in np.atleast_1d(strides)):
            raise ValueError(f"layer {layer.name!r} has strides {strides}: tiled restoration needs "
                             "a network whose output follows its input pixel for pixel")
        size = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
        if size is None:
            continue
        dilation = np.atleast_1d(getattr(layer, "dilation_rate", 1))
        radius += int(np.max(np.ceil(dilation * (np.atleast_1d(size) - 1) / 2)))
    return radius


def window_starts(length, window, core):
    """Per core along one axis: (core start, core end, window start), windows of ``window`` pixels.

    The cores ``[k core, (k + 1) core)`` cut ``[0, length)``; each window covers its core plus
    ``(window - core) / 2`` pixels on each side, or reaches the image's edge, where the network
    sees the same border as in a whole-image call.

    Examples
    --------
    >>> window_starts(10, 6, 2)
    [(0, 2, 0), (2, 4, 0), (4, 6, 2), (6, 8, 4), (8, 10, 4)]
    """
    margin = (window - core) // 2
    spans = []
    for start in range(0, length, core):
        end = min(start + core, length)
        spans.append((start, end, min(max(start - margin, 0), length - window)))
    return spans


def axis_windows(length, window, radius):
    """How one axis is cut: the (core start, core end, window start) triples and the window size.

    As few windows as fit in ``window`` pixels, with cores of equal length (so an image a little
    larger than one window costs two half-size windows, not two full ones).

    Examples
    --------
    >>> axis_windows(500, 448, 12)
    ([(0, 250, 0), (250, 500, 226)], 274)
    >>> axis_windows(300, 448, 12)
    ([(0, 300, 0)], 300)
    """
    if length <= window:
        return [(0, length, 0)], length
    count = math.ceil(length / (window - 2 * radius))
    core = math.ceil(length / count)
    size = min(core + 2 * radius, length)
    return window_starts(length, size, core), size


def window_count(shape, radius, window=None):
    """How many windows :func:`restore_tiled` runs for an image of ``shape``.

    Examples
    --------
    >>> window_count((1000, 300), 12)
    3
    """
    window = window or WINDOW
    return len(axis_windows(shape[0], window, radius)[0]) * len(axis_windows(shape[1], window, radius)[0])


def restore_tiled(image, run, radius, window=WINDOW, progress=None):
    """Apply ``run`` to ``image`` window by window; equal to ``run(image)`` up to float rounding.

    Parameters
    ----------
    image : ndarray, shape (height, width)
        The network's input (float32).
    run : callable
        ``run(batch)``: ``(1, h, w, 1)`` float32 in, the same shape out; translation
        equivariant with a receptive radius of at most ``radius``, as a convolutional network.
    radius : int
        Overlap each window keeps on each side of its core.
    window : int, optional
        Largest side of the windows.  An image no larger than that goes through in one call.
    progress : keras.utils.Progbar, optional
        Advanced by one per window (see :func:`window_count` for its target).

    Returns
    -------
    ndarray of float32, shape (height, width)

    Examples
    --------
    A 3x3 mean with zero padding, like a 'same' convolution, has a radius of 1:

    >>> import scipy.ndimage
    >>> box = lambda batch: scipy.ndimage.uniform_filter(batch, (1, 3, 3, 1), mode="constant")
    >>> image = np.random.default_rng(0).random((50, 70)).astype(np.float32)
    >>> tiled = restore_tiled(image, box, radius=1, window=16)
    >>> bool(np.allclose(tiled, box(image[None, :, :, None])[0, :, :, 0], atol=1e-6))
    True
    """
    if window <= 2 * radius:
        raise ValueError(f"windows of {window} pixels leave no core with an overlap of {radius} "
                         f"pixels; use windows larger than {2 * radius}")
    height, width = image.shape
    rows, window_h = axis_windows(height, window, radius)
    cols, window_w = axis_windows(width, window, radius)
    restored = np.empty((height, width), np.float32)
    for top, bottom, row in rows:
        for left, right, col in cols:
            tile = image[row:row + window_h, col:col + window_w]
            out = np.asarray(run(tile[None, :, :, None]))[0, :, :, 0]
            restored[top:bottom, left:right] = out[top - row:bottom - row, left - col:right - col]
            if progress is not None:
                progress.add(1)
    return restored
