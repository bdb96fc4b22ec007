"""Tiled restoration: run a fully convolutional network over an image of any size in bounded memory.

A whole-image call holds every activation of the image at once (48 channels of float32 per pixel
and layer for the denoiser: gigabytes for a photo).  Here the image is cut into tiles of a fixed
size that overlap by the network's receptive radius; each tile's centre, the *core*, is far
enough from the tile's cut edges to be computed exactly as in a whole-image call, and the cores
tile the image.  The cost is the overlap (a few percent for the assignment's denoiser:
``benchmarks/scaling.py``), and the memory is that of one tile.

The radius is read from the model's layers, so a deeper model than ours gets a wider overlap.
"""

import collections
import math
import weakref

import numpy as np

from ._checks import import_tensorflow_quietly, warn_once

tf = import_tensorflow_quietly()
import keras  # noqa: E402

#: Side of the square tiles the network sees (pixels); smaller images go through in one call.
TILE = 448

#: How a network of any input size is run: ``run(batch)`` and its receptive radius (None when
#: it cannot be tiled).  Kept per model, then per precision.
NetworkRunner = collections.namedtuple("NetworkRunner", "run radius")
_RUNNERS = weakref.WeakKeyDictionary()


def network_runner(model, precision="float32"):
    """``model`` (any input size) wrapped for :func:`restore_tiled`, kept once per model and precision.

    On the TensorFlow backend it runs through one ``tf.function`` with ``reduce_retracing``, so
    tiles of every size share a traced graph after the second size: faster and leaner than
    eager calls, without ``predict``'s retracing for every new model.  A model with strided
    layers gets ``radius=None`` and a warning: it can only be run on the whole image.

    With ``precision="mixed_bfloat16"`` the tiles go through a copy of the network whose layers
    compute in bfloat16 (:func:`bfloat16_copy`); each call first copies the model's current
    weights into it, so later training of ``model`` is seen.  The caller checks that the machine
    runs bfloat16 fast (``_training.check_precision``).
    """
    runners = _RUNNERS.setdefault(model, {})
    runner = runners.get(precision)
    if runner is None:
        try:
            radius = receptive_radius(model)
        except ValueError as exc:
            warn_once(f"restoring whole images in one call: {exc}")
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

    Where the CPU or GPU has fast bfloat16 units this runs faster than float32, at a small cost
    in PSNR (``benchmarks/speed.py --precision`` measures both).
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
        for pixel, so tiles cannot be stitched).

    Examples
    --------
    >>> inputs = keras.Input((None, None, 1))
    >>> features = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    >>> outputs = keras.layers.Conv2D(1, 5, padding="same", dilation_rate=2)(features)
    >>> receptive_radius(keras.Model(inputs, outputs))  # 1 + 2 * (5 - 1) / 2
    5
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


def tile_starts(length, tile, core):
    """Per core along one axis: (core start, core end, tile start), tiles of ``tile`` pixels.

    The cores ``[k core, (k + 1) core)`` cut ``[0, length)``; each tile covers its core plus
    ``(tile - core) / 2`` pixels on each side, or reaches the image's edge, where the network
    sees the same border as in a whole-image call.

    Examples
    --------
    >>> tile_starts(10, 6, 2)
    [(0, 2, 0), (2, 4, 0), (4, 6, 2), (6, 8, 4), (8, 10, 4)]
    """
    margin = (tile - core) // 2
    spans = []
    for start in range(0, length, core):
        end = min(start + core, length)
        spans.append((start, end, min(max(start - margin, 0), length - tile)))
    return spans


def axis_tiles(length, tile, radius):
    """How one axis is cut: the (core start, core end, tile start) triples and the tile size.

    As few tiles as fit in ``tile`` pixels, with cores of equal length (so an image a little
    larger than one tile costs two half-size tiles, not two full ones).

    Examples
    --------
    >>> axis_tiles(500, 448, 12)
    ([(0, 250, 0), (250, 500, 226)], 274)
    >>> axis_tiles(300, 448, 12)
    ([(0, 300, 0)], 300)
    """
    if length <= tile:
        return [(0, length, 0)], length
    count = math.ceil(length / (tile - 2 * radius))
    core = math.ceil(length / count)
    size = min(core + 2 * radius, length)
    return tile_starts(length, size, core), size


def tile_count(shape, radius):
    """How many tiles :func:`restore_tiled` runs for an image of ``shape``.

    Examples
    --------
    >>> tile_count((1000, 300), 12)
    3
    """
    return len(axis_tiles(shape[0], TILE, radius)[0]) * len(axis_tiles(shape[1], TILE, radius)[0])


#: The square's symmetries as (quarter turns, mirrored), in the order
#: :func:`averaged_over_symmetries` takes them: the first 4 keep a tile's shape, the last 4
#: swap its height and width.
SYMMETRIES = ((0, False), (0, True), (2, False), (2, True),
              (1, False), (1, True), (3, False), (3, True))


#: The counts of symmetries one may average over: the first 1, 2, 4 or all 8 of ``SYMMETRIES``.
SYMMETRY_COUNTS = (1, 2, 4, 8)


def check_symmetries(count):
    """``count`` as an int if it is one of ``SYMMETRY_COUNTS`` (how many to average over)."""
    if isinstance(count, bool) or count not in SYMMETRY_COUNTS:
        raise ValueError(f"symmetries must be 1, 2, 4 or 8, got {count!r}")
    return int(count)


def averaged_over_symmetries(run, count):
    """``run`` applied to ``count`` turned and mirrored copies of each batch, each output turned
    back, and the outputs averaged (a geometric self-ensemble).

    A network trained on patches in every orientation makes slightly different errors on each
    copy, so the mean is closer to the truth, at ``count`` times the cost.  The receptive radius
    is unchanged, so tiles stitch as before.  ``count`` 1 returns ``run`` itself.

    Examples
    --------
    A function that sees orientation (the column index) is evened out over the mirror image:

    >>> batch = np.zeros((1, 2, 3, 1), np.float32)
    >>> columns = lambda b: b + np.arange(b.shape[2], dtype=np.float32)[None, None, :, None]
    >>> averaged_over_symmetries(columns, 2)(batch)[0, :, :, 0]
    array([[1., 1., 1.],
           [1., 1., 1.]], dtype=float32)
    """
    count = check_symmetries(count)
    if count == 1:
        return run

    def averaged(batch):
        total = None
        for turns, mirrored in SYMMETRIES[:count]:
            moved = np.rot90(batch, turns, axes=(1, 2))
            moved = moved[:, :, ::-1] if mirrored else moved
            out = np.asarray(run(np.ascontiguousarray(moved)), np.float32)
            out = np.rot90(out[:, :, ::-1] if mirrored else out, -turns, axes=(1, 2))
            total = out.copy() if total is None else total + out
        total /= count
        return total
    return averaged


def restore_tiled(image, run, radius, tile=TILE, progress=None):
    """Apply ``run`` to ``image`` tile by tile; equal to ``run(image)`` up to float rounding.

    Parameters
    ----------
    image : ndarray, shape (height, width) or (height, width, channels)
        The network's input (float32); a 2-D image is one channel.
    run : callable
        ``run(batch)``: ``(1, h, w, channels)`` float32 in, the same shape out; translation
        equivariant with a receptive radius of at most ``radius``, as a convolutional network.
    radius : int
        Overlap each tile keeps on each side of its core.
    tile : int, optional
        Largest side of the tiles.  An image no larger than that goes through in one call.
    progress : keras.utils.Progbar, optional
        Advanced by one per tile (see :func:`tile_count` for its target).

    Returns
    -------
    ndarray of float32, the shape of ``image``

    Examples
    --------
    A 3x3 mean with zero padding, like a 'same' convolution, has a radius of 1:

    >>> import scipy.ndimage
    >>> box = lambda batch: scipy.ndimage.uniform_filter(batch, (1, 3, 3, 1), mode="constant")
    >>> image = np.random.default_rng(0).random((50, 70)).astype(np.float32)
    >>> tiled = restore_tiled(image, box, radius=1, tile=16)
    >>> bool(np.allclose(tiled, box(image[None, :, :, None])[0, :, :, 0], atol=1e-6))
    True
    """
    if tile <= 2 * radius:
        raise ValueError(f"tiles of {tile} pixels leave no core with an overlap of {radius} "
                         f"pixels; use tiles larger than {2 * radius}")
    planes = image if image.ndim == 3 else image[..., None]
    height, width = planes.shape[:2]
    rows, tile_h = axis_tiles(height, tile, radius)
    cols, tile_w = axis_tiles(width, tile, radius)
    restored = np.empty(planes.shape, np.float32)
    for top, bottom, row in rows:
        for left, right, col in cols:
            piece = planes[row:row + tile_h, col:col + tile_w]
            out = np.asarray(run(piece[None]))[0]
            restored[top:bottom, left:right] = out[top - row:bottom - row, left - col:right - col]
            if progress is not None:
                progress.add(1)
    return restored if image.ndim == 3 else restored[..., 0]
