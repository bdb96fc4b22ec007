"""The seed-spread benchmark's score: a network's mean gain over cubic-spline enlargement."""

import keras
import numpy as np
import pytest

import sol5


@pytest.fixture(scope="module")
def superres_seeds(load_benchmark):
    return load_benchmark("superres_seeds")


def _network_with_last_bias(bias):
    """A one-block network whose last convolution adds ``bias`` everywhere (zero: identity)."""
    model = sol5.build_nn_model(24, 24, 8, 1)
    last = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][-1]
    kernel, offset = last.get_weights()
    last.set_weights([np.zeros_like(kernel), np.full_like(offset, bias)])
    return model


@pytest.fixture
def photos():
    """Smooth ramps in [0.2, 0.8] (cubic enlarges them well), of sizes the scale cuts."""
    rng = np.random.default_rng(3)
    return [0.2 + 0.6 * np.add.outer(np.linspace(0, 0.5, h), np.linspace(0, 0.5, w))
            + 0.01 * rng.random((h, w)) for h, w in ((40, 36), (33, 50))]


def test_an_identity_network_gains_nothing_over_cubic(superres_seeds, photos):
    assert abs(superres_seeds.mean_gain(_network_with_last_bias(0.0), photos)) < 1e-6


def test_a_network_that_shifts_every_pixel_loses_to_cubic(superres_seeds, photos):
    assert superres_seeds.mean_gain(_network_with_last_bias(0.05), photos) < -1.0
