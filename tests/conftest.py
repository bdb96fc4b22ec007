"""Shared fixtures: seeded random state, private model outputs, small images on disk.

The offline training data is built once into ``$SOL5_CACHE`` (or the user's cache) and reused
by every run; ``pytest.ini`` puts the repository on the import path.
"""
import os
import pathlib

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same random state, so a failure can be replayed."""
    import keras
    keras.utils.set_random_seed(0)  # seeds numpy's global generator too
    yield


@pytest.fixture(autouse=True)
def private_outputs(tmp_path, monkeypatch):
    """Models that a test trains and saves go to its own folder, never the repository's outputs/."""
    folder = tmp_path / "outputs"
    monkeypatch.setenv("SOL5_OUTPUTS", str(folder))
    return folder


@pytest.fixture(scope="session")
def load_benchmark():
    """``load_benchmark(name)``: the module ``benchmarks/NAME.py``, loaded once per session."""
    import functools
    import importlib.util

    @functools.cache
    def load(name):
        path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load


def _write_images(folder, shapes, seed=0, suffix=".png"):
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
def write_images():
    """``write_images(folder, shapes, seed=0, suffix='.png')``: random 8-bit images; their paths."""
    return _write_images


@pytest.fixture
def small_images(tmp_path):
    """Ten synthetic 8-bit images of varied sizes, all at least 3x a 24x24 patch."""
    shapes = [(80 + 3 * i, 90 + 5 * i) for i in range(10)]
    return _write_images(tmp_path / "images", shapes)


@pytest.fixture
def no_course_data(tmp_path, monkeypatch):
    """Pretend sol5_utils lives in an empty folder: no course data beside it.  Returns the folder,
    where a test may put ``image_dataset/train`` or ``text_dataset/train``."""
    import sol5_utils
    folder = tmp_path / "course"
    folder.mkdir()
    monkeypatch.setattr(sol5_utils, "relpath", lambda path: os.path.join(folder, path))
    return folder
