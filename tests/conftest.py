"""Shared fixtures: seeded random state, a private data cache, small images on disk."""
import os
import pathlib
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same random state, so a failure can be replayed."""
    import keras
    keras.utils.set_random_seed(0)  # seeds numpy's global generator too
    yield


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Build the offline fallback data once per session, away from the user's cache."""
    folder = tmp_path_factory.mktemp("sol5-cache")
    old = os.environ.get("SOL5_CACHE")
    os.environ["SOL5_CACHE"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("SOL5_CACHE", None)
    else:
        os.environ["SOL5_CACHE"] = old


def write_images(folder, shapes, seed=0, suffix=".png"):
    """Write random 8-bit grayscale images of the given shapes; return their paths."""
    import imageio.v3 as iio
    rng = np.random.default_rng(seed)
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, shape in enumerate(shapes):
        path = folder / f"img_{i:03d}{suffix}"
        iio.imwrite(path, rng.integers(0, 256, shape, dtype=np.uint8))
        paths.append(str(path))
    return paths


@pytest.fixture
def small_images(tmp_path):
    """Ten synthetic 8-bit images of varied sizes, all at least 3x a 24x24 patch."""
    shapes = [(80 + 3 * i, 90 + 5 * i) for i in range(10)]
    return write_images(tmp_path / "images", shapes)
