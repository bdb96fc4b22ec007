"""Figures written to files: pyplot without a display, and rows of gray image panels."""

import sys


def pyplot():
    """``matplotlib.pyplot``, on the file-only Agg backend unless pyplot is already in use (as in
    a notebook, whose inline backend is then kept)."""
    import matplotlib
    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_panel_rows(rows, path, title=None, panel_size=3.2, fontsize=9, dpi=90):
    """Write a figure of gray images in [0, 1], one list of ``(label, image)`` panels per row.

    Rows may differ in length; their unused places stay blank.  Returns ``path``.

    Examples
    --------
    >>> import pathlib, tempfile, numpy as np
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "panels.png"
    >>> flat, ramp = np.full((8, 8), 0.5), np.tile(np.linspace(0, 1, 8), (8, 1))
    >>> save_panel_rows([[("flat", flat), ("ramp", ramp)], [("ramp", ramp)]], path).is_file()
    True
    """
    plt = pyplot()
    width = max(len(row) for row in rows)
    label_lines = [max(label.count("\n") + 1 for label, _ in row) for row in rows]
    heights = [panel_size * max(image.shape[0] / image.shape[1] for _, image in row)
               + 0.2 + 1.5 * lines * fontsize / 72  # each row as tall as its tallest panel
               for row, lines in zip(rows, label_lines)]  # ... plus its labels
    fig, axes = plt.subplots(len(rows), width, squeeze=False,
                             figsize=(panel_size * width, sum(heights) + (0.5 if title else 0)),
                             gridspec_kw={"height_ratios": heights})
    for places, row in zip(axes, rows):
        for ax in places:
            ax.axis("off")
        for ax, (label, image) in zip(places, row):
            ax.imshow(image, cmap="gray", vmin=0, vmax=1)
            ax.set_title(label, fontsize=fontsize)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight() if title else 1))
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
