"""Gaussian noise read from an image alone: its level, and how much of a denoiser's residual to
keep.

:func:`noise_sigma` estimates the noise's standard deviation from the principal components of
the image's least textured patches; the Deep Image Prior stops its fit by it.
:func:`sure_residual_scale` uses that estimate to choose, by Stein's unbiased risk estimate
(SURE), the blend of a denoiser's result and its input with the least expected error, block by
block.
"""

import numpy as np
import scipy.stats
from numpy.lib.stride_tricks import sliding_window_view

QUANT_VAR = 1.0 / (12 * 255 ** 2)  # variance of rounding to 8 bits (floor of the estimate)
NOISE_PATCH = 7           # side of the patches of the principal-component estimate
NOISE_CONFIDENCE = 0.999  # quantile of the noise-only difference energy that marks texture
NOISE_ROUNDS = 5          # most refinements of the estimate and of the weakly textured patches
NOISE_MAX_PATCHES = 2 ** 18  # patches on a regular grid at most (bounds memory on large images)
SURE_MARGIN = 3           # pixels this many sigmas or less from 0 or 1 are clipped: left out
SURE_MIN_SHARE = 0.25     # below this share of unclipped pixels the residual is kept whole,
SURE_MIN_PATCHES = 4096   # and below this many unclipped patches to estimate the noise from
SURE_PROBE = 0.01         # size of the probing perturbation, relative to the estimated sigma
SURE_BLOCK = 32           # side of the blocks that each get their own factor


def _tail_variance(patches):
    """Noise variance from flattened patches (one per row): the mean of the smallest eigenvalues
    of their covariance, over the largest such tail whose mean is not above its median (a tail
    made of noise alone is flat; image content adds a few large eigenvalues)."""
    centred = patches - patches.mean(axis=0)
    eigenvalues = np.linalg.eigvalsh(centred.T @ centred / len(centred))  # ascending
    for count in range(len(eigenvalues), 1, -1):
        tail = eigenvalues[:count]
        if tail.mean() <= np.median(tail):
            return tail.mean()
    return eigenvalues[0]


def _box_sums(values, height, width):
    """Sum of ``values`` over every ``height`` x ``width`` window (top-left corners), by a
    summed-area table."""
    table = np.zeros((values.shape[0] + 1, values.shape[1] + 1))
    np.cumsum(np.cumsum(values, axis=0), axis=1, out=table[1:, 1:])
    return (table[height:, width:] - table[:-height, width:]
            - table[height:, :-width] + table[:-height, :-width])


def noise_sigma(image, usable=None):
    """Standard deviation of the noise, estimated from the image alone.

    The principal-component estimate of Chen, Zhu and Heng (ICCV 2015), :func:`_tail_variance`,
    taken over the weakly textured patches only, as Liu, Tanaka and Okutomi (IEEE TIP 2013)
    choose them: a patch is kept while the energy of its horizontal and vertical differences is
    below what noise of the current estimate alone would exceed with probability
    ``1 - NOISE_CONFIDENCE`` (a gamma law); the estimate and the choice are refined in turn, at
    most ``NOISE_ROUNDS`` times.  Strong fine texture (grass, gravel) would otherwise read as
    noise.  On a large image the patches are taken on a regular grid, at most
    ``NOISE_MAX_PATCHES`` of them.  Never below the standard deviation of rounding to 8 bits.

    Parameters
    ----------
    image : ndarray, shape (height, width)
        Float image.
    usable : ndarray of bool, optional
        One entry per ``NOISE_PATCH``-square patch, by its top-left corner (shape
        ``(height - NOISE_PATCH + 1, width - NOISE_PATCH + 1)``): only patches marked True
        are considered.  All by default.

    Returns
    -------
    float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ramp = np.linspace(0, 1, 64)[None, :] * np.ones((64, 1))
    >>> round(noise_sigma(ramp + rng.normal(0, 0.1, ramp.shape)), 2)
    0.1
    """
    patch = NOISE_PATCH
    if min(image.shape) < patch + 1:
        return float(np.sqrt(QUANT_VAR))
    texture = (_box_sums(np.diff(image, axis=1) ** 2, patch, patch - 1)
               + _box_sums(np.diff(image, axis=0) ** 2, patch - 1, patch))
    stride = max(1, int(np.ceil(np.sqrt(texture.size / NOISE_MAX_PATCHES))))
    keep = np.ones(texture.shape, bool) if usable is None else np.asarray(usable, bool)
    rows, cols = np.nonzero(keep[::stride, ::stride])
    rows, cols = rows * stride, cols * stride
    if len(rows) <= patch * patch:  # too few patches for a covariance
        return noise_sigma(image) if usable is not None else float(np.sqrt(QUANT_VAR))
    patches = sliding_window_view(image, (patch, patch))[rows, cols].reshape(len(rows), -1)
    texture = texture[rows, cols]
    # Noise of variance v alone gives a patch's difference energy a gamma law of shape size/2
    # and mean v * differences, each of the 2 * patch * (patch - 1) differences adding 2 v.
    size, differences = patch * patch, 2 * patch * (patch - 1)
    bound = scipy.stats.gamma.ppf(NOISE_CONFIDENCE, size / 2, scale=4 * differences / size)
    variance = _tail_variance(patches)
    for _ in range(NOISE_ROUNDS):
        weak = texture < variance * bound
        if weak.sum() <= size:  # too few patches for a covariance: keep the last estimate
            break
        refined = _tail_variance(patches[weak])
        if refined == variance:
            break
        variance = refined
    return float(np.sqrt(max(variance, QUANT_VAR)))


def _unclipped(restored, sigma):
    """Where ``restored`` lies more than ``SURE_MARGIN * sigma`` inside (0, 1): there the
    noise was hardly ever clipped, so it is still Gaussian of deviation ``sigma``."""
    margin = SURE_MARGIN * sigma
    return (restored > margin) & (restored < 1 - margin)


def _block_sums(values, block):
    """Sums of ``values`` over ``block`` x ``block`` squares tiling it (the last row and column
    of squares may be cut short)."""
    height, width = values.shape
    rows, cols = -(-height // block), -(-width // block)
    padded = np.zeros((rows * block, cols * block))
    padded[:height, :width] = values
    return padded.reshape(rows, block, cols, block).sum(axis=(1, 3))


def _spread(per_block, block, shape):
    """A value per pixel from one per ``block``-sided square: linear between the squares'
    centres, constant beyond the outer ones (rows first, then columns)."""
    def weights(length, count):
        position = np.clip((np.arange(length) + 0.5) / block - 0.5, 0, count - 1)
        low = np.floor(position).astype(int)
        return low, np.minimum(low + 1, count - 1), position - low
    low, high, t = weights(shape[0], per_block.shape[0])
    rows = per_block[low] * (1 - t)[:, None] + per_block[high] * t[:, None]
    low, high, t = weights(shape[1], per_block.shape[1])
    return rows[:, low] * (1 - t) + rows[:, high] * t


def sure_residual_scale(noisy, restored, denoise, seed=0):
    """The share of a denoiser's residual to remove, block by block: ``noisy - scale * (noisy -
    restored)`` has the least expected squared error by SURE.

    A blind network that mistakes fine texture for noise removes too much of it; an image
    noisier than it learned, too little.  Stein's unbiased risk estimate of the blend
    ``noisy - a * r`` (``r`` the residual ``noisy - restored``) over ``n`` pixels,
    ``a**2 |r|**2 - n sigma**2 + 2 sigma**2 (n - a (n - div))`` (``div`` the divergence of the
    denoiser), is least at ``a = sigma**2 (n - div) / |r|**2``, clipped to [0, 1] (a convex
    blend of the input and the result).  It is taken over each ``SURE_BLOCK``-sided square of
    the image, so that texture and flat ground get their own factor, and spread linearly between
    the squares' centres; a square with too few usable pixels takes the factor of the whole
    image.  ``sigma`` is :func:`noise_sigma`'s estimate over the patches the result keeps away
    from 0 and 1, and the sums run over those pixels only: noise clipped at black or white is
    not Gaussian.  The divergence is probed once (Ramani, Blu and Unser, IEEE TIP 2008):
    ``b . (denoise(noisy + e b) - restored) / e`` for a seeded normal ``b`` and a small ``e``.
    Where fewer than ``SURE_MIN_PATCHES`` patches or ``SURE_MIN_SHARE`` of the pixels are clear
    of clipping (heavy noise, much of the image black or white, a small image), the scale is 1
    and ``denoise`` is not called again.

    Parameters
    ----------
    noisy : ndarray, shape (height, width)
        The denoiser's input, in [0, 1].
    restored : ndarray, shape (height, width)
        ``denoise(noisy)``.
    denoise : callable
        The denoiser: an image (any real values) in, an image of the same shape out.
    seed : int, optional
        Seed of the probe ``b``: the same inputs give the same scale.

    Returns
    -------
    float or ndarray of float64, shape (height, width)
        1.0 where the residual is kept whole, else a factor in [0, 1] per pixel.

    Examples
    --------
    Blurring removes far more than noise from a fine checkerboard; SURE keeps most of it:

    >>> import scipy.ndimage
    >>> rng = np.random.default_rng(0)
    >>> board = 0.3 + 0.4 * (np.indices((96, 96)).sum(0) % 2)
    >>> noisy = board + rng.normal(0, 0.02, board.shape)
    >>> blur = lambda image: scipy.ndimage.uniform_filter(image, 3)
    >>> scale = sure_residual_scale(noisy, blur(noisy), blur)
    >>> scale.shape, bool(scale.max() < 0.1)
    ((96, 96), True)
    """
    noisy = np.asarray(noisy, np.float64)
    restored = np.asarray(restored)
    if min(noisy.shape) <= NOISE_PATCH:
        return 1.0
    unclipped = _unclipped(restored, noise_sigma(noisy)).astype(np.float64)
    clear = _box_sums(unclipped, NOISE_PATCH, NOISE_PATCH) > NOISE_PATCH ** 2 - 0.5  # patches
    if clear.sum() < SURE_MIN_PATCHES:
        return 1.0
    sigma = noise_sigma(noisy, usable=clear)  # estimated again, clear of clipping
    kept = _unclipped(restored, sigma)
    if kept.mean() < SURE_MIN_SHARE:
        return 1.0
    probe = np.random.default_rng(seed).standard_normal(noisy.shape, dtype=np.float32)
    step = SURE_PROBE * sigma
    moved = np.asarray(denoise(noisy + step * probe))
    divergence = np.where(kept, probe * (moved - restored), 0) / step
    residual_energy = np.where(kept, (noisy - restored) ** 2, 0)
    if not residual_energy.any():
        return 1.0

    def factor(pixels, divergence, energy):
        return np.clip(sigma ** 2 * (pixels - divergence) / np.maximum(energy, 1e-300), 0, 1)
    whole = factor(kept.sum(), divergence.sum(), residual_energy.sum())
    pixels, energy = _block_sums(kept, SURE_BLOCK), _block_sums(residual_energy, SURE_BLOCK)
    usable = (pixels >= SURE_MIN_SHARE * SURE_BLOCK ** 2) & (energy > 0)
    per_block = np.where(usable, factor(pixels, _block_sums(divergence, SURE_BLOCK), energy),
                         whole)
    return _spread(per_block, SURE_BLOCK, noisy.shape)
