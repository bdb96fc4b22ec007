"""Deep Image Prior machinery behind ``sol5.deep_prior_restore_image`` (section 8).

The noise level is estimated from the image itself (principal components of
its least textured patches).  An hourglass network with thin skip connections, drawn afresh
for every image, is fitted to the corrupted image by Adam with a jittered
random input; the running mean of its outputs is the network's estimate, and
the fit stops at the knee of that mean's distance to the input, close to the
noise level.  That estimate then guides a collaborative Wiener pass (BM3D's
second stage: similar patches grouped, shrunk in a 3-D transform domain by
the estimate's Wiener gain, averaged back); at low noise a second such pass
is guided by the first one's result.  Blind: no clean image and no true
sigma are used.  Written in plain TensorFlow (the assignment allows it for the
bonus): the fit runs thousands of tiny steps, and Keras layers add a per-operation
overhead to each.

Nothing here is graded; ``sol5.deep_prior_restore_image`` validates its input and calls
:func:`fit_and_restore`.
"""

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._checks import import_tensorflow_quietly
from ._noise import noise_sigma

tf = import_tensorflow_quietly()

DIP_LEVELS = 3            # number of stride-2 stages; sizes are padded to 2**DIP_LEVELS
DIP_DOWN_CHANNELS = 24    # channels of the encoder and decoder stages
DIP_SKIP_CHANNELS = 4     # channels of the skip connections
DIP_TOP_KERNEL = 1        # side of the first kernel of the decoder's full-size stage
DIP_INPUT_CHANNELS = 16   # channels of the fixed random input tensor
DIP_INPUT_SCALE = 0.1     # the input is uniform in [0, DIP_INPUT_SCALE)
DIP_INPUT_JITTER = 1 / 30  # std of the fresh Gaussian perturbation of the input each step
DIP_LEARNING_RATE = 0.01
DIP_EMA = 0.99            # weight of the old average in the running mean of the outputs
DIP_CHUNK = 10            # steps run per call of the compiled graph
DIP_MAX_STEPS = 600       # cap, reached on texture at low noise
DIP_MIN_STEPS = 30        # never stop before this (the first outputs are nearly flat)
# Stopping rule, on the ratio r = MSE(running mean, input) / estimated noise variance, checked
# every DIP_CHUNK steps: stop at the knee (r <= DIP_KNEE_RATIO and r fell by at most
# DIP_KNEE_DROP over the last DIP_KNEE_STEPS steps), or once r <= DIP_STOP_RATIO; an image
# whose r came down to DIP_KNEE_RATIO within its first DIP_QUICK_STEPS steps stops once
# r <= DIP_QUICK_STOP_RATIO instead.
DIP_KNEE_RATIO = 1.1      # the knee only counts this close to the noise level
DIP_KNEE_DROP = 0.01      # r still falling faster than this means texture is being fitted
DIP_KNEE_STEPS = 10       # span (a multiple of DIP_CHUNK) over which the drop is measured
DIP_STOP_RATIO = 0.75     # stop here in any case (later, the fit mostly reproduces noise)
DIP_QUICK_STEPS = 50      # an image fitted to the knee ratio this soon has little texture...
DIP_QUICK_STOP_RATIO = 0.95  # ...so below the noise level its fit reproduces noise sooner
DIP_CW_PATCH = 8          # side of the patches of the collaborative Wiener pass
DIP_CW_STEP = 3           # distance between its reference patches
DIP_CW_SEARCH = 16        # its patches are matched within +-this many pixels
DIP_CW_GROUP = 64         # most patches per group (a power of 2)
DIP_CW_BATCH = 512        # groups filtered at once (bounds its memory on large images)
DIP_REPILOT_SIGMA = 0.07  # below this estimated sigma, a second pass is guided by the first
DIP_MATCH_PIXELS = 2 ** 20  # pixels the matching compares at once (bounds its memory)


def _param_shapes():
    """Shapes of the network's parameters, in the order :func:`_forward` uses them."""
    shapes, channels = [], DIP_INPUT_CHANNELS
    for _ in range(DIP_LEVELS):
        shapes += [(1, 1, channels, DIP_SKIP_CHANNELS), (DIP_SKIP_CHANNELS,) * 2,
                   (3, 3, channels, DIP_DOWN_CHANNELS), (DIP_DOWN_CHANNELS,) * 2,
                   (3, 3, DIP_DOWN_CHANNELS, DIP_DOWN_CHANNELS), (DIP_DOWN_CHANNELS,) * 2]
        channels = DIP_DOWN_CHANNELS
    both = DIP_DOWN_CHANNELS + DIP_SKIP_CHANNELS
    for level in reversed(range(DIP_LEVELS)):
        side = DIP_TOP_KERNEL if level == 0 else 3
        shapes += [(both,) * 2,
                   (side, side, both, DIP_DOWN_CHANNELS), (DIP_DOWN_CHANNELS,) * 2,
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


def _pointwise(x, kernel):
    """A 1x1 convolution of ``x`` (batch, height, width, in) with ``kernel`` (1, 1, in, out),
    as one matrix product over all pixels."""
    pixels = tf.reshape(x, [-1, kernel.shape[2]]) @ kernel[0, 0]
    return tf.reshape(pixels, tf.concat([tf.shape(x)[:3], [kernel.shape[3]]], axis=0))


def _forward(params, z):
    """The hourglass: DIP_LEVELS stride-2 stages down, bilinear upsampling back
    up, and a thin skip connection at every scale; batch normalisation and
    leaky ReLU after every convolution, sigmoid output."""
    params = iter(params)

    def norm(x, act=True):
        x, _, _ = tf.compat.v1.nn.fused_batch_norm(x, next(params), next(params), is_training=True)
        return tf.nn.leaky_relu(x, 0.2) if act else x

    def conv(x, strides=1, act=True):
        kernel = next(params)
        if kernel.shape[0] == 1 and strides == 1:   # a matrix product, cheaper than conv2d
            return norm(_pointwise(x, kernel), act)
        return norm(tf.nn.conv2d(x, kernel, strides, "SAME"), act)

    x, skips = z, []
    for _ in range(DIP_LEVELS):
        skips.append(conv(x))
        x = conv(conv(x, strides=2))
    for skip in reversed(skips):
        x = tf.image.resize(x, tf.shape(skip)[1:3], method="bilinear")
        x = norm(tf.concat([x, skip], axis=-1), act=False)
        x = conv(conv(x))
    return tf.sigmoid(_pointwise(x, next(params)) + next(params))


def _flatten(arrays):
    """The arrays' values end to end in one float32 vector."""
    return np.concatenate([a.ravel() for a in arrays]).astype(np.float32)


class _Fitter:
    """Parameters, Adam state and compiled training loop for one padded size.

    Built once per (padded height, padded width) and reused: every call of
    :func:`deep_prior_restore_image` re-initialises the weights and the Adam
    state from its seed, so the graph is traced only once per size.
    """

    def __init__(self, height, width):
        initial = _initial_params(np.random.default_rng(0))
        self.shapes = [value.shape for value in initial]
        self.sizes = [value.size for value in initial]
        # All parameters live in one flat vector, so that one Adam update serves them all.
        self.weights = tf.Variable(_flatten(initial))
        self.m = tf.Variable(tf.zeros_like(self.weights))
        self.v = tf.Variable(tf.zeros_like(self.weights))
        self.t = tf.Variable(0.0)
        self.ema = tf.Variable(tf.zeros((1, height, width, 1)))
        self.z = tf.Variable(tf.zeros((1, height, width, DIP_INPUT_CHANNELS)))
        self.target = tf.Variable(tf.zeros((1, height, width, 1)))
        self.mask = tf.Variable(tf.zeros((1, height, width, 1)))
        self.seed = tf.Variable(0, dtype=tf.int64)
        self.run = tf.function(self._run, input_signature=[tf.TensorSpec((), tf.int32)])

    def reset(self, target, mask, rng):
        """Load a new image and draw fresh weights, input and jitter seed from ``rng``."""
        self.weights.assign(_flatten(_initial_params(rng)))
        self.m.assign(tf.zeros_like(self.m))
        self.v.assign(tf.zeros_like(self.v))
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
            params = [tf.reshape(piece, shape) for piece, shape
                      in zip(tf.split(self.weights, self.sizes), self.shapes)]
            out = _forward(params, self.z + jitter)
            loss = tf.reduce_sum(self.mask * tf.square(out - self.target)) / tf.reduce_sum(self.mask)
        b1, b2 = 0.9, 0.999
        tf.raw_ops.ResourceApplyAdam(var=self.weights.handle, m=self.m.handle, v=self.v.handle,
                                     beta1_power=b1 ** self.t, beta2_power=b2 ** self.t,
                                     lr=DIP_LEARNING_RATE, beta1=b1, beta2=b2, epsilon=1e-8,
                                     grad=tape.gradient(loss, self.weights))
        self.ema.assign(DIP_EMA * self.ema + (1 - DIP_EMA) * out)
        return loss

    def _run(self, steps):
        loss = tf.constant(0.0)
        for _ in tf.range(steps):
            loss = self._step()
        ema = self.ema / (1 - DIP_EMA ** self.t)   # bias-corrected running mean
        ema_mse = tf.reduce_sum(self.mask * tf.square(ema - self.target)) / tf.reduce_sum(self.mask)
        return loss, ema_mse, ema[0, :, :, 0]


#: Padded sizes whose traced training graph is kept (least recently used ones are dropped).
FITTERS_KEPT = 4


@functools.lru_cache(maxsize=FITTERS_KEPT)
def _fitter_for(height, width):
    return _Fitter(height, width)


def _dct_matrix(size):
    """Orthonormal DCT-II matrix: ``_dct_matrix(n) @ x`` transforms a length-n vector."""
    k = np.arange(size)
    matrix = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * size)) * np.sqrt(2 / size)
    matrix[0] /= np.sqrt(2)
    return matrix


def _haar_matrix(size):
    """Orthonormal Haar matrix for a power-of-two ``size``."""
    matrix = np.ones((1, 1))
    while len(matrix) < size:
        matrix = np.vstack([np.kron(matrix, [1, 1]), np.kron(np.eye(len(matrix)), [1, -1])])
        matrix /= np.sqrt(2)
    return matrix


def _grid(length, patch, step):
    """Top-left corners every ``step`` pixels, the last one flush with the far edge."""
    corners = list(range(0, length - patch + 1, step))
    if corners[-1] != length - patch:
        corners.append(length - patch)
    return np.array(corners)


def _match(pilot, patch, step, search, group):
    """Block matching on the pilot (BM3D's grouping).

    For reference patches on a grid every ``step`` pixels, the ``group``
    patches within ``search`` pixels whose squared distance to it is smallest
    (the reference itself first).  Returns the rows and the columns of their
    top-left corners, each of shape (references, group).
    """
    height, width = pilot.shape
    rows, cols = _grid(height, patch, step), _grid(width, patch, step)
    shifts = np.arange(-search, search + 1)
    dy, dx = np.repeat(shifts, len(shifts)), np.tile(shifts, len(shifts))
    shifted = sliding_window_view(np.pad(pilot, search, mode="reflect"), pilot.shape)
    top, left = rows[:, None], cols[None, :]
    batch = max(1, DIP_MATCH_PIXELS // pilot.size)   # shifts compared at once
    sums = np.zeros((min(batch, len(dy)), height + 1, width + 1))   # summed-area tables
    distance = np.empty((len(dy), len(rows), len(cols)))
    for first in range(0, len(dy), batch):
        ys, xs = dy[first:first + batch] + search, dx[first:first + batch] + search
        tables = sums[:len(ys)]
        np.cumsum(((pilot - shifted[ys, xs]) ** 2).cumsum(1), axis=2, out=tables[:, 1:, 1:])
        distance[first:first + len(ys)] = (
            tables[:, top + patch, left + patch] - tables[:, top, left + patch]
            - tables[:, top + patch, left] + tables[:, top, left])
    row_of = rows[None, :, None] + dy[:, None, None]
    col_of = cols[None, None, :] + dx[:, None, None]
    inside = (row_of >= 0) & (row_of <= height - patch) & (col_of >= 0) & (col_of <= width - patch)
    distance = np.where(inside, distance, np.inf)
    distance[len(dy) // 2] = -1.0   # the reference patch itself always comes first
    # the ``group`` nearest candidates, in index order so that equal distances keep it
    nearest = np.sort(np.argpartition(distance, group - 1, axis=0)[:group], axis=0)
    order = np.argsort(np.take_along_axis(distance, nearest, axis=0), axis=0, kind="stable")
    best = np.take_along_axis(nearest, order, axis=0)
    row_of = np.take_along_axis(np.broadcast_to(row_of, distance.shape), best, axis=0)
    col_of = np.take_along_axis(np.broadcast_to(col_of, distance.shape), best, axis=0)
    return row_of.reshape(group, -1).T, col_of.reshape(group, -1).T


def _collaborative_wiener(noisy, pilot, sigma):
    """Empirical Wiener filtering of groups of similar patches (BM3D's second stage).

    Patches of ``pilot`` (the network's estimate) are grouped by
    :func:`_match`; every group of the noisy image is taken to a 3-D
    transform domain (2-D DCT of each patch, Haar across the group), each
    coefficient is scaled by the pilot's Wiener gain ``p**2 / (p**2 +
    sigma**2)``, and the groups, back in the image domain, are averaged
    where they overlap, each weighted by the inverse of its group's residual
    noise energy as in BM3D (without BM3D's Kaiser window).  Returns
    ``pilot`` unchanged when the image is smaller than a patch.
    """
    height, width = noisy.shape
    patch = DIP_CW_PATCH
    if min(height, width) < patch:
        return pilot
    # candidates of the worst-placed (corner) reference
    available = (min(DIP_CW_SEARCH + 1, height - patch + 1)
                 * min(DIP_CW_SEARCH + 1, width - patch + 1))
    group = 2 ** int(np.log2(min(DIP_CW_GROUP, available)))
    rows, cols = _match(pilot, patch, DIP_CW_STEP, DIP_CW_SEARCH, group)
    total, norm = np.zeros(height * width), np.zeros(height * width)
    for first in range(0, len(rows), DIP_CW_BATCH):   # bounded memory on large images
        chunk = slice(first, first + DIP_CW_BATCH)
        _wiener_groups(noisy, pilot, rows[chunk], cols[chunk], sigma, total, norm)
    return (total / norm).reshape(height, width)


def _wiener_groups(noisy, pilot, rows, cols, sigma, total, norm):
    """Filter the groups whose patches start at ``rows``, ``cols`` (each of shape (references,
    group)) and add their weighted pixels to ``total`` and their weights to ``norm`` (both
    flat, one entry per pixel)."""
    patch, width = DIP_CW_PATCH, noisy.shape[1]
    pilot_groups = sliding_window_view(pilot, (patch, patch))[rows, cols]
    noisy_groups = sliding_window_view(noisy, (patch, patch))[rows, cols]
    dct, haar = _dct_matrix(patch), _haar_matrix(rows.shape[1])

    def across(matrix, groups):   # ``matrix`` applied along the group axis
        return (matrix @ groups.reshape(len(groups), len(matrix), -1)).reshape(groups.shape)

    def forward(groups):
        return across(haar, dct @ groups @ dct.T)

    coefficients = forward(pilot_groups)
    gain = coefficients ** 2 / (coefficients ** 2 + sigma ** 2)
    filtered = dct.T @ across(haar.T, gain * forward(noisy_groups)) @ dct
    weights = 1.0 / (sigma ** 2 * np.sum(gain ** 2, axis=(1, 2, 3)) + 1e-12)
    weights = np.broadcast_to(weights[:, None, None, None], filtered.shape)
    offsets = np.arange(patch)
    index = ((rows[:, :, None, None] + offsets[:, None]) * width
             + cols[:, :, None, None] + offsets[None, :]).ravel()
    total += np.bincount(index, (weights * filtered).ravel(), minlength=total.size)
    norm += np.bincount(index, weights.ravel(), minlength=norm.size)


def _pad_and_mask(image):
    """The image padded (by reflection where possible) to multiples of ``2**DIP_LEVELS`` and
    the mask of its own pixels."""
    height, width = image.shape
    factor = 2 ** DIP_LEVELS
    padded_h, padded_w = -(-height // factor) * factor, -(-width // factor) * factor
    target = np.pad(image, ((0, padded_h - height), (0, padded_w - width)), mode="reflect"
                    if padded_h - height < height and padded_w - width < width else "edge")
    mask = np.zeros((padded_h, padded_w))
    mask[:height, :width] = 1.0
    return target, mask


def _should_stop(ratios):
    """The stopping rule, given the ratios r (MSE of the running mean over the estimated
    noise variance) seen so far, one per chunk of ``DIP_CHUNK`` steps.

    >>> _should_stop([1.3, 1.2, 1.1]), _should_stop([1.11, 1.1, 1.1])
    (False, True)
    >>> _should_stop([0.95, 0.9, 0.84]), _should_stop([0.84, 0.8])
    (True, False)

    Quickly fitted, it stops sooner below the noise level:

    >>> slow = [2.0, 1.8, 1.6, 1.4, 1.2, 1.0]
    >>> _should_stop(slow + [0.94]), _should_stop([1.2, 1.05, 1.0, 0.97, 0.94])
    (False, True)
    """
    if len(ratios) * DIP_CHUNK < DIP_MIN_STEPS:
        return False
    ratio, lag = ratios[-1], DIP_KNEE_STEPS // DIP_CHUNK
    quick = min(ratios[:DIP_QUICK_STEPS // DIP_CHUNK]) <= DIP_KNEE_RATIO
    if ratio <= (DIP_QUICK_STOP_RATIO if quick else DIP_STOP_RATIO):
        return True
    return len(ratios) > lag and ratio <= DIP_KNEE_RATIO and \
        ratios[-1 - lag] - ratio <= DIP_KNEE_DROP


def _fit_chunks(image, seed, max_steps):
    """Fit a fresh network to ``image``, ``DIP_CHUNK`` steps at a time, up to ``max_steps``.

    After every chunk, yields the steps done so far, the training loss, the mean squared
    distance of the running mean of the outputs to the image, and that running mean (a tensor
    of the padded size; :func:`_as_image` crops it to the image).
    """
    target, mask = _pad_and_mask(image)
    fitter = _fitter_for(*target.shape)
    fitter.reset(target, mask, np.random.default_rng(seed))
    done = 0
    while done < max_steps:
        steps = min(DIP_CHUNK, max_steps - done)
        loss, ema_mse, ema = fitter.run(tf.constant(steps, tf.int32))
        done += steps
        yield done, float(loss), float(ema_mse), ema


def _as_image(running_mean, shape):
    """A padded running mean from :func:`_fit_chunks`, cropped to ``shape``, as float64."""
    return running_mean.numpy()[:shape[0], :shape[1]].astype(np.float64)


def _fit_network(image, noise_var, seed, max_steps, verbose):
    """Run the early-stopped fit; return the running mean of the network's outputs and the
    number of steps taken."""
    ratios = []
    for done, loss, ema_mse, running_mean in _fit_chunks(image, seed, max_steps):
        ratios.append(ema_mse / noise_var)
        if verbose:
            print(f"step {done}: loss {loss:.5f}, mean-output loss {ema_mse:.5f}, "
                  f"noise variance {noise_var:.5f}")
        if _should_stop(ratios):
            break
    return _as_image(running_mean, image.shape), done


def _guided_wiener(noisy, pilot, sigma):
    """The collaborative Wiener pass of ``noisy`` guided by ``pilot``, clipped to [0, 1].

    Below an estimated ``sigma`` of ``DIP_REPILOT_SIGMA`` the pass runs a second time,
    guided by its own first result: at low noise that result is a closer guide than the
    network's estimate, while at higher noise a second pass lowers the gain.
    """
    restored = pilot
    for _ in range(2 if sigma < DIP_REPILOT_SIGMA else 1):
        restored = np.clip(_collaborative_wiener(noisy, restored, sigma), 0.0, 1.0)
    return restored


def fit_and_restore(image, seed=0, max_steps=DIP_MAX_STEPS, verbose=False, details=None):
    """Restore ``image`` (2-D float64 in [0, 1], already validated); the result is clipped
    to [0, 1].

    The noise level is estimated (:func:`._noise.noise_sigma`), a fresh hourglass is
    fitted until its running-mean output is as close to the image as that
    noise allows, and the network's estimate guides a collaborative Wiener
    pass (:func:`_guided_wiener`).  ``details``, a dict, receives the
    estimated ``"sigma"``, the ``"network"``'s estimate before the Wiener pass and
    the number of ``"steps"``.
    """
    sigma = noise_sigma(image)
    network, steps = _fit_network(image, sigma ** 2, seed, max_steps, verbose)
    if details is not None:
        details.update(sigma=sigma, network=np.clip(network, 0.0, 1.0), steps=steps)
    return _guided_wiener(image, network, sigma)
