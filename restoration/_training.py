"""Training speed machinery: the ``tf.data`` feed of ``sol5.train_model`` and bfloat16 training.

Nothing here changes what is learned; it changes how fast a CPU (or a GPU) gets there.
"""

import contextlib
import functools
import math
import os
import time

import numpy as np

from ._checks import import_tensorflow_quietly, warn_once
from ._corruption import SAMPLES_PER_CHUNK

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
tf = import_tensorflow_quietly()  # None on a machine without TensorFlow
import keras  # noqa: E402


#: Batches the training feed keeps ready while the network trains.
PREFETCH_BATCHES = 2


def fit_feed(batches):
    """What ``sol5.train_model`` hands to ``Model.fit`` for a generator of ``(source, target)``.

    The batches (float64, as :func:`sol5.load_dataset` yields them) are cast to float32, the
    network's own precision.  On the TensorFlow backend the generator is wrapped in a ``tf.data``
    pipeline that takes several batches from it per call into Python
    (``_corruption.SAMPLES_PER_CHUNK`` samples) and keeps ``PREFETCH_BATCHES`` batches ready
    while the network trains, with tf.data's autotuning off: Keras' own wrapper (one Python call
    per batch, ``prefetch(AUTOTUNE)``) lets a whole ``fit`` call fall into a markedly slower mode
    at random on a machine with few cores (``benchmarks/speed.py`` compares the two).
    """
    as_float32 = ((source.astype(np.float32), target.astype(np.float32))
                  for source, target in batches)
    if keras.backend.backend() != "tensorflow":
        return as_float32
    first = next(as_float32)  # read one batch now, for the shapes and any error in the data
    per_call = max(1, SAMPLES_PER_CHUNK // len(first[0]))
    spec = tuple(tf.TensorSpec((None,) + part.shape, tf.float32) for part in first)
    pending = [first]

    def chunks():  # every new iterator (Keras makes one per validation) continues the stream
        while True:
            while len(pending) < per_call:
                batch = next(as_float32, None)
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
            .unbatch().prefetch(PREFETCH_BATCHES).with_options(options))


PRECISIONS = ("float32", "mixed_bfloat16")


@functools.lru_cache(maxsize=None)
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
    return any(capability >= (8, 0) for capability in gpu_compute_capabilities())


def gpu_compute_capabilities():
    """(major, minor) of each GPU the Keras backend (TensorFlow or JAX) trains on."""
    if keras.backend.backend() == "jax":
        import jax
        return [tuple(int(part) for part in str(getattr(device, "compute_capability", "0.0"))
                      .split(".")[:2]) for device in jax.devices() if device.platform == "gpu"]
    if tf is None:
        return []
    return [tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)))
            for gpu in tf.config.list_physical_devices("GPU")]


@contextlib.contextmanager
def dtype_policy(name):
    """Build layers under Keras dtype policy ``name``; the global policy is restored after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def check_precision(precision):
    """``precision`` if this machine runs it fast, else float32 (with a warning once)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "mixed_bfloat16" and not bfloat16_supported():
        warn_once("this machine has no fast bfloat16 (no AVX512-BF16/AMX CPU, no GPU of "
                  "compute capability 8+): using float32 instead")
        return "float32"
    return precision


class TimeBudget(keras.callbacks.Callback):
    """Fit for a wall-clock budget instead of a step count.

    Adam's step size follows a cosine from ``initial`` down to ``final`` over the budget, or over
    the fit's epochs where they would end first, so a fast machine still ends at ``final`` (set at
    the start of every epoch, as ``keras.callbacks.LearningRateScheduler`` does, so keep epochs
    short), and training stops after the first step that ends past the budget, saying after how
    many steps of which epoch (Keras still draws that epoch's bar as complete).
    """

    def __init__(self, seconds, initial, final):
        super().__init__()
        self.seconds, self.initial, self.final = float(seconds), float(initial), float(final)

    def _elapsed(self):
        return time.monotonic() - self._start

    def on_train_begin(self, logs=None):
        self._start = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        by_time = self._elapsed() / self.seconds if self.seconds > 0 else 1.0
        epochs = self.params.get("epochs") or 0
        by_epochs = epoch / (epochs - 1) if epochs > 1 else 0.0
        done = min(1.0, max(by_time, by_epochs))
        self.model.optimizer.learning_rate = (
            self.final + 0.5 * (self.initial - self.final) * (1 + math.cos(math.pi * done)))

    def on_train_batch_end(self, batch, logs=None):
        if self._elapsed() > self.seconds and not self.model.stop_training:
            self.model.stop_training = True
            print(f"\nsol5: time budget spent after {batch + 1} of {self.params.get('steps')} "
                  f"steps of epoch {self._epoch + 1}", flush=True)


def starting_weights(model, saved):
    """The weights of ``saved`` (a trained network) to start training ``model`` from.

    The same architecture gives its weights as they are.  A gray network (one channel in and
    out) of the same body starts a colour network (``sol5.build_color_nn_model``): the head reads
    a third of each channel (their mean, as the gray network read one channel), and the tail
    writes the gray correction to every channel.  Training then learns what differs in colour.

    Raises
    ------
    ValueError
        If ``saved`` is neither ``model``'s architecture nor its gray counterpart.

    Examples
    --------
    >>> import keras
    >>> def net(channels):
    ...     image = keras.Input((8, 8, channels))
    ...     features = keras.layers.Conv2D(4, 3, padding="same")(image)
    ...     return keras.Model(image, keras.layers.Conv2D(channels, 3, padding="same")(features))
    >>> weights = starting_weights(net(3), net(1))
    >>> [w.shape for w in weights]
    [(3, 3, 3, 4), (4,), (3, 3, 4, 3), (3,)]
    """
    target = [w.shape for w in model.get_weights()]
    weights = saved.get_weights()
    if [w.shape for w in weights] == target:
        return weights
    if len(weights) == len(target) and len(weights) >= 4:
        channels = target[0][2]
        head, tail, tail_bias = weights[0], weights[-2], weights[-1]
        grown = ([np.repeat(head / channels, channels, axis=2)] + weights[1:-2]
                 + [np.repeat(tail, channels, axis=3), np.repeat(tail_bias, channels)])
        if head.shape[2] == 1 and [w.shape for w in grown] == target:
            return grown
    raise ValueError(f"init_from: the saved network ({saved.input_shape[-1]} channel(s), "
                     f"{len(weights)} weight arrays) does not match the network to train "
                     f"({model.input_shape[-1]} channel(s), {len(target)} weight arrays); pass a "
                     "model saved from the same preset (or, for a colour network, the gray one)")
