"""Deep Image Prior machinery behind ``sol5.deep_prior_restore_image`` (section 8).

An hourglass network with thin skip connections, drawn afresh for every image, is fitted to
the corrupted image by Adam with a jittered random input; the running mean of its outputs is
the estimate, the fit stops when that mean is as close to the input as the noise allows, and a
local Wiener gain returns the part of the residual that is more than noise.  Written in plain
TensorFlow (the assignment allows it for the bonus): the per-operation overhead of Keras
layers doubled the step time on 2 CPU cores.

Nothing here is graded; ``sol5.deep_prior_restore_image`` validates its input and calls
:func:`fit_and_restore`.
"""

import functools

import numpy as np
import skimage.filters

import sol5_utils

tf = sol5_utils.import_tensorflow_quietly()

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


#: Padded sizes whose traced training graph is kept (least recently used ones are dropped).
FITTERS_KEPT = 4


@functools.lru_cache(maxsize=FITTERS_KEPT)
def _fitter_for(height, width):
    return _Fitter(height, width)


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



def fit_and_restore(image, seed=0, max_steps=DIP_MAX_STEPS, verbose=False, history=None):
    """Fit a fresh hourglass to ``image`` (2-D float64 in [0, 1], already validated) and return
    the restored image, clipped to [0, 1].  ``history``, a list, receives
    ``(step, loss, mean-output loss, mean output)`` after every ``DIP_CHUNK`` steps."""
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
