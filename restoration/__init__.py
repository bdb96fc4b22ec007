"""The machinery of ``sol5``: offline data, batched corruption, fast training, tiled restoration.

``sol5.py`` holds the assignment's graded functions and reads like a model answer; this package
holds what makes them fast and convenient, in private modules, with one public surface below.
Its names are imported on first use, so ``import restoration`` is cheap and pulls in
TensorFlow only when a name that needs it is touched.

Imports run one way: the helpers (``_checks``, ``_data``) -> the machinery (``_corruption``,
``_training``, ``_presets``, ``_tiling``, ``_files``, ``_noise``, ``_deep_prior``) -> ``sol5`` ->
``experiments`` (depth study, evaluation) -> ``report`` and ``cli`` (the command line).
"""

import importlib

_HOME = {
    # input checks and conversions
    "as_gray_image": "_checks", "check_int": "_checks", "quantize": "_checks",
    "to_float_image": "_checks",
    # offline training data
    "offline_training_folder": "_data", "load_skimage_photo": "_data", "render_page": "_data",
    "cache_dir": "_data", "output_dir": "_data",
    # training machinery
    "with_patch_form": "_corruption", "fit_feed": "_training", "TimeBudget": "_training",
    "bfloat16_supported": "_training", "PRESETS": "_presets", "Recipe": "_presets",
    "Schedule": "_presets",
    # restoring whole images and files
    "restore_tiled": "_tiling", "receptive_radius": "_tiling",
    "read_picture": "_files", "write_picture": "_files", "Picture": "_files",
}
__all__ = sorted(_HOME)


def __getattr__(name):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)


def __dir__():
    return __all__


def _beside(name):
    """The module ``name`` that lies beside this package (``sol5``, ``sol5_utils``): a sibling
    in the parent package when there is one (``current.sol5``), else a top-level module.

    Only the layers above ``sol5`` (experiments, report, command line) use it."""
    parent = __name__.rpartition(".")[0]
    return importlib.import_module(f"{parent}.{name}" if parent else name)
