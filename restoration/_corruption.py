"""Batched corruption of training patches: the speed machinery behind ``sol5.load_dataset``.

The assignment corrupts a crop three times the patch size and keeps one patch of it, so 8/9 of
every corruption is thrown away.  A corruption that reads only a small neighbourhood of each
pixel can instead be applied to each patch plus that border (mirrored where the border leaves
the large crop, as ``scipy.ndimage``'s default ``'reflect'`` border does), for a whole batch in
one numpy call.  A corruption function opts in with :func:`with_patch_form`; the patches then
come out as by the assignment's recipe (same positions, same distribution of corruptions).
"""

import collections

import numpy as np

from ._checks import check_int, quantize

#: Samples prepared together by the patch-form path (and batches fetched together by
#: ``_training.fit_feed``): per-call overheads are paid once for about this many samples.
SAMPLES_PER_CHUNK = 512


#: The batched form of a corruption that :func:`with_patch_form` attaches (its arguments).
PatchForm = collections.namedtuple("PatchForm", "margin corrupt augment")


def with_patch_form(margin, corrupt, augment=False):
    """Decorator: give a corruption function a batched form for :func:`load_dataset`.

    Parameters
    ----------
    margin : int
        How far, in pixels, the corruption of one pixel reads around it (0 for noise added
        pixel by pixel, ``k // 2`` for a ``k x k`` convolution).  A margin wider than the
        patch makes :func:`load_dataset` call the function on each large crop instead.
    corrupt : callable
        ``corrupt(patches)``: float32 patches ``(n, h + 2 margin, w + 2 margin)`` in, their
        corrupted centres ``(n, h, w)`` out, each with its own random draws from numpy's
        global generator, distributed as the decorated function would corrupt them.
    augment : bool, optional
        Also flip and rotate each clean bordered patch by a random one of the square's 8 symmetries
        (flips only for oblong patches) before corrupting it: more varied training data for a
        task whose images have no preferred orientation, such as photos.

    Returns
    -------
    callable
        A decorator that sets ``corruption_func.patch_form`` and returns the function
        unchanged, so it still works on single images.

    Examples
    --------
    >>> @with_patch_form(0, lambda patches: quantize(1.0 - patches))
    ... def invert(image):
    ...     return quantize(1.0 - image)
    >>> invert.patch_form.margin
    0
    >>> invert(np.zeros((2, 2)))
    array([[1., 1.],
           [1., 1.]])
    """
    margin = check_int(margin, "margin", minimum=0)
    if not callable(corrupt):
        raise ValueError(f"corrupt must be callable, got {corrupt!r}")

    def attach(corruption_func):
        corruption_func.patch_form = PatchForm(margin, corrupt, bool(augment))
        return corruption_func
    return attach


def corrupt_bordered_patches(images, crop_origins, crop_shapes, patch_offsets, patch_form, crop_size):
    """The same result for a corruption with a patch form, corrupting a whole batch at once.

    Each patch is cut with a border of ``margin`` pixels; where that border leaves the large crop
    it is mirrored, as ``scipy.ndimage``'s default ``'reflect'`` border does at the crop's edges.
    """
    margin = patch_form.margin
    height, width = crop_size
    rows = bordered_indices(crop_origins[:, 0], crop_shapes[:, 0], patch_offsets[:, 0], height, margin)
    cols = bordered_indices(crop_origins[:, 1], crop_shapes[:, 1], patch_offsets[:, 1], width, margin)
    patches = np.empty((len(images), rows.shape[1], cols.shape[1]) + images[0].shape[2:], np.float32)
    unmirrored = ((rows[:, -1] - rows[:, 0] == rows.shape[1] - 1)
                  & (cols[:, -1] - cols[:, 0] == cols.shape[1] - 1))
    for i, (image, top, left, plain) in enumerate(zip(images, rows[:, 0].tolist(),
                                                      cols[:, 0].tolist(), unmirrored.tolist())):
        if plain:  # a slice is much faster than fancy indexing, and the usual case
            patches[i] = image[top:top + rows.shape[1], left:left + cols.shape[1]]
        else:
            patches[i] = image[rows[i][:, None], cols[i][None, :]]
    if patch_form.augment:
        patches = random_symmetries(patches)
    target = patches[:, margin:margin + height, margin:margin + width]
    source = np.asarray(patch_form.corrupt(patches))
    if source.shape != target.shape:
        raise ValueError(f"the patch form of the corruption returned shape {source.shape}, "
                         f"expected {target.shape}")
    return source, target


def random_symmetries(patches):
    """Flip each patch of ``(n, h, w)`` (or ``(n, h, w, channels)``) up-down, left-right and (if square) transpose it, each
    with probability 1/2 (a uniform draw from the square's 8 symmetries), in place.

    Examples
    --------
    >>> patches = np.arange(8.0).reshape(2, 2, 2)
    >>> sorted(random_symmetries(patches)[0].ravel().tolist())
    [0.0, 1.0, 2.0, 3.0]
    """
    flips = np.random.random_sample((3, len(patches))) < 0.5
    patches[flips[0]] = patches[flips[0], ::-1, :]
    patches[flips[1]] = patches[flips[1], :, ::-1]
    if patches.shape[1] == patches.shape[2]:
        patches[flips[2]] = np.swapaxes(patches[flips[2]], 1, 2)
    return patches


def bordered_indices(crop_origin, crop_length, patch_offset, patch_length, margin):
    """Image indices, shape (n, patch_length + 2 margin), of each patch and its border along one
    axis, mirrored (half-sample symmetric) at the edges of the large crop."""
    inside = patch_offset[:, None] + np.arange(-margin, patch_length + margin)
    inside = np.where(inside < 0, -inside - 1, inside)
    inside = np.where(inside >= crop_length[:, None], 2 * crop_length[:, None] - 1 - inside, inside)
    return crop_origin[:, None] + inside


def draw_sigmas(count, min_sigma, max_sigma, low_share=0.0):
    """``count`` noise levels drawn uniformly from [min_sigma, max_sigma]; with ``low_share > 0``
    each of them is, with that probability, drawn from the lower half of the range instead.

    ``low_share=0`` takes exactly the uniform draw (the same numbers from numpy's global
    generator).

    Examples
    --------
    >>> np.random.seed(0)
    >>> bool(np.all(draw_sigmas(1000, 0.0, 0.2, low_share=1.0) <= 0.1))
    True
    """
    sigmas = np.random.uniform(min_sigma, max_sigma, size=count)
    if low_share:
        lower = np.random.random_sample(count) < low_share
        sigmas[lower] = min_sigma + (sigmas[lower] - min_sigma) / 2
    return sigmas


def gaussian_noise_on_patches(patches, min_sigma, max_sigma, low_share=0.0):
    """:func:`add_gaussian_noise` on a stack of images ``(n, h, w)`` at once, one sigma each
    (the same sigma on every channel of a colour stack ``(n, h, w, channels)``), drawn by
    :func:`draw_sigmas`."""
    sigmas = draw_sigmas(len(patches), min_sigma, max_sigma, low_share)
    sigmas = sigmas.reshape((len(patches),) + (1,) * (patches.ndim - 1))
    return quantize(patches + sigmas * np.random.standard_normal(patches.shape))


def motion_blur_on_patches(patches, kernels, kernel_of_patch):
    """Motion blur of the centres of ``patches`` (n, h + 2m, w + 2m).

    Patch ``i`` is blurred with ``kernels[kernel_of_patch[i]]`` (``kernels`` has shape
    (k, 2m + 1, 2m + 1)); the result (n, h, w) equals ``scipy.ndimage.convolve`` of each patch
    with its kernel, cut to the centre.  Patches that share a kernel are blurred together, over
    the kernel's non-zero taps only.
    """
    side = kernels.shape[-1]
    height, width = patches.shape[1] - side + 1, patches.shape[2] - side + 1
    flipped = kernels[:, ::-1, ::-1].reshape(len(kernels), -1)  # convolving = correlating flipped
    blurred = np.empty((len(patches), height, width), patches.dtype)
    for kernel_index, kernel in enumerate(flipped):
        members = np.flatnonzero(kernel_of_patch == kernel_index)
        if not len(members):
            continue
        group = patches[members]
        total = np.zeros((len(members), height, width), patches.dtype)
        for tap in np.flatnonzero(kernel):
            row, col = divmod(tap, side)
            total += kernel[tap].astype(patches.dtype) * group[:, row:row + height, col:col + width]
        blurred[members] = total
    return blurred


def random_motion_blur_on_patches(patches, list_of_kernel_sizes, motion_blur_kernel):
    """:func:`random_motion_blur` on a stack of patches with a border of ``max(sizes) // 2``.

    Each patch draws its angle and size as ``sol5.random_motion_blur`` does, and gets its kernel
    from ``motion_blur_kernel(size, angle)`` (the course helper's function, passed in); patches
    whose kernels come out equal are blurred together.
    """
    side = max(list_of_kernel_sizes)
    angles = np.random.uniform(0, np.pi, size=len(patches))
    sizes = np.asarray(list_of_kernel_sizes)[np.random.randint(len(list_of_kernel_sizes),
                                                               size=len(patches))]
    kernels = np.zeros((len(patches), side, side))
    for kernel, size, angle in zip(kernels, sizes.tolist(), angles.tolist()):
        pad = (side - size) // 2
        kernel[pad:side - pad, pad:side - pad] = motion_blur_kernel(size, angle)
    distinct, kernel_of_patch = np.unique(kernels.reshape(len(patches), -1), axis=0,
                                          return_inverse=True)
    return quantize(motion_blur_on_patches(patches, distinct.reshape(-1, side, side),
                                           kernel_of_patch.ravel()))


def resolution_margin(scale):
    """The border :func:`resolution_loss_on_patches` needs around a patch for an integer
    ``scale``: six times the scale, so that the cut edges of a patch sit five low-resolution
    pixels or more from the patch, where their effect on the cubic splines has fallen below 0.2%
    (a spline's prefilter decays by a factor 0.27 a pixel)."""
    return 6 * check_int(scale, "scale", minimum=2)


def resolution_loss_on_patches(patches, scale, lose_resolution, phases=None):
    """``lose_resolution(image, scale)`` on the centres of ``patches`` (n, h + 2m, w + 2m),
    ``m = resolution_margin(scale)``.

    Each patch is shrunk and enlarged in a part whose sides are multiples of ``scale`` (so the
    factor is exactly ``scale``, as on a large crop of 3x the patch) and whose start is shifted by
    a random phase in ``[0, scale)`` along each axis, drawn per patch (or given as ``phases``,
    shape (n, 2)): where the low-resolution grid falls on the patch is then uniform, as it is for
    a patch at a random place in a large crop.
    """
    margin = resolution_margin(scale)
    height, width = patches.shape[1] - 2 * margin, patches.shape[2] - 2 * margin
    if phases is None:
        phases = np.random.randint(scale, size=(len(patches), 2))
    part_h = scale * ((patches.shape[1] - scale + 1) // scale)
    part_w = scale * ((patches.shape[2] - scale + 1) // scale)
    centres = np.empty((len(patches), height, width), patches.dtype)
    for i, (row, col) in enumerate(np.asarray(phases).tolist()):
        low_high = lose_resolution(patches[i, row:row + part_h, col:col + part_w], scale)
        centres[i] = low_high[margin - row:margin - row + height, margin - col:margin - col + width]
    return centres
