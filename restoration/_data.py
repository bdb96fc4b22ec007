"""Offline training data: photos that ship with scikit-image and typeset pages of text.

When the course folders ``image_dataset/train`` and ``text_dataset/train`` are absent, the
``images_for_*`` functions of ``sol5_utils`` train on these instead:

* photos: the natural images that ship inside scikit-image (and matplotlib's ``grace_hopper``),
  in grayscale at several scales, plus the red, green and blue channels of the colour ones
  (``camera``, ``astronaut``, ``coffee``, ``text`` and ``page`` are held out for evaluation and
  never trained on);
* text: document images typeset in the font families that ship with matplotlib (DejaVu, STIX,
  Computer Modern), with headings, bold and italic runs, justified paragraphs, bullets, code and
  page numbers, varied sizes, spacing, ink and paper levels, uneven illumination and a little
  sensor noise; a share of them hold hand-drawn-looking strokes instead.

Both sets are written once, deterministically, into a cache folder (``$SOL5_CACHE``, else
``$XDG_CACHE_HOME/sol5``, else ``~/.cache/sol5``).
"""

import os
import pathlib
import shutil

import imageio.v3 as iio
import numpy as np
import scipy.ndimage
import skimage.color
import skimage.data
import skimage.transform
import skimage.util

from ._checks import to_float_image

#: The repository (the folder that holds ``sol5.py`` and this package).
ROOT = pathlib.Path(__file__).resolve().parent.parent
#: Seed of the generated pages (and of the course helper's fixed shuffle of a file list).
LIST_SEED = 1234
#: Photos shipped with scikit-image (and matplotlib's ``grace_hopper``) that the offline data
#: trains on: every natural photo in them that is not held out.
TRAIN_PHOTOS = ("brick", "chelsea", "clock", "coins", "grass", "gravel", "hubble_deep_field",
                "moon", "rocket", "retina", "immunohistochemistry", "cell",
                "motorcycle_left", "motorcycle_right", "grace_hopper")
#: Scales at which every training photo is stored (structures at several sizes).
PHOTO_SCALES = (1.0, 0.75, 0.5)
#: scikit-image photos kept for evaluation only: never in a training list.
HELD_OUT_PHOTOS = ("camera", "astronaut", "coffee")
#: Colour photos among OpenCV's sample images (Debian's ``opencv-doc`` installs them), kept for
#: evaluation only: the photos nobody here trains or tunes on (``evaluate --parts unseen
#: unseen-superres``).
UNSEEN_PHOTOS = ("aero1", "apple", "baboon", "board", "building", "butterfly", "fruits", "home",
                 "leuvenA", "messi5", "orange", "smarties", "squirrel_cls", "stuff")
#: Where ``opencv-doc`` puts them; ``$SOL5_UNSEEN_PHOTOS`` names another folder.
OPENCV_SAMPLES = pathlib.Path("/usr/share/doc/opencv-doc/examples/data")
#: Side of the centre crop scored of each unseen photo.
UNSEEN_CROP = 256
#: scikit-image text images kept for evaluation only: never in a training list.
HELD_OUT_TEXT = ("text", "page")
#: Number of generated text pages, and how many of them are held out.
N_TEXT_PAGES = 360
N_TEXT_HELD_OUT = 48
#: Bump when a generator changes, so stale caches are rebuilt.
PHOTO_CACHE_VERSION = "v3"
TEXT_CACHE_VERSION = "v3"
COLOUR_CACHE_VERSION = "v1"
#: Longest side of a stored training photo (larger ones are shrunk: a smaller cache that reads
#: faster, and less of a JPEG's compression pattern).
MAX_PHOTO_SIDE = 1024
#: Extensions of the photos an extra folder (``--extra-photos``) contributes.
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png")


def unseen_photos_dir():
    """The folder of :data:`UNSEEN_PHOTOS`: ``$SOL5_UNSEEN_PHOTOS``, else :data:`OPENCV_SAMPLES`."""
    return pathlib.Path(os.environ.get("SOL5_UNSEEN_PHOTOS") or OPENCV_SAMPLES)


def unseen_photos():
    """Name -> RGB centre crop (:data:`UNSEEN_CROP` pixels square, float64) of each of
    :data:`UNSEEN_PHOTOS` found in :func:`unseen_photos_dir` (an empty dict without them)."""
    photos = {}
    for name in UNSEEN_PHOTOS:
        found = [p for p in (unseen_photos_dir() / f"{name}{ext}" for ext in PHOTO_EXTENSIONS)
                 if p.is_file()]
        if found:
            image = to_float_image(iio.imread(found[0]), 2, name=str(found[0]))
            top, left = ((n - UNSEEN_CROP) // 2 for n in image.shape[:2])
            photos[name] = image[top:top + UNSEEN_CROP, left:left + UNSEEN_CROP]
    return photos


def offline_training_folder(kind):
    """The folder of offline training images of ``kind`` ('photos' or 'text'), built on first use.

    Raises
    ------
    ValueError
        For another ``kind``.
    """
    if kind == "photos":
        return fallback_photos_dir()
    if kind == "text":
        return fallback_text_dir() / "train"
    raise ValueError(f"kind must be 'photos' or 'text', got {kind!r}")


def cache_dir():
    """Folder where the offline fallback data is written."""
    if os.environ.get("SOL5_CACHE"):
        return pathlib.Path(os.environ["SOL5_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "sol5"


def output_dir():
    """Folder where ``python sol5.py train`` saves models and the other commands look for them:
    ``$SOL5_OUTPUTS`` if set, else ``outputs/`` in the repository (whatever the current folder)."""
    if os.environ.get("SOL5_OUTPUTS"):
        return pathlib.Path(os.environ["SOL5_OUTPUTS"])
    return ROOT / "outputs"


def describe_source(paths):
    """One line saying where a training list comes from."""
    folders = sorted({pathlib.Path(p).parent for p in paths}) or [pathlib.Path("?")]
    origin = ("offline training data (cache)" if cache_dir() in folders[0].parents
              else "course data")
    return f"{len(paths)} images from {origin} in {', '.join(map(str, folders))}"


# --------------------------------------------------------------------------
# Offline fallback data
# --------------------------------------------------------------------------

def load_skimage_photo(name, representation=1):
    """A sample photo shipped with scikit-image (or matplotlib's ``grace_hopper``) as float64
    in [0, 1]: grayscale (``representation=1``) or RGB (2)."""
    if name.startswith("motorcycle"):
        left, right, _ = skimage.data.stereo_motorcycle()
        raw = left if name == "motorcycle_left" else right
    elif name == "grace_hopper":
        import matplotlib.cbook
        raw = iio.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg"))
    else:
        raw = getattr(skimage.data, name)()
    return to_float_image(raw, representation, name=name)


def _save_png(path, image):
    iio.imwrite(path, skimage.util.img_as_ubyte(np.clip(image, 0, 1)))


def build_once(folder, build):
    """Run ``build(tmp_folder)`` unless ``folder`` is complete (holds ``.complete``).

    The data is built in a private temporary folder and moved into place by an atomic rename.
    When another process completed ``folder`` meanwhile, its data is kept and ours dropped; only
    a folder without ``.complete`` (left by an interrupted build) is replaced.
    """
    done = folder / ".complete"
    if done.exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    count = build(tmp)
    (tmp / ".complete").touch()
    if folder.exists() and not done.exists():  # an interrupted build: move it aside, then drop it
        stale = folder.with_name(f"{folder.name}.stale{os.getpid()}")
        try:
            os.replace(folder, stale)
            shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass
    try:
        os.replace(tmp, folder)  # fails if another process has put a complete folder there
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return folder
    print(f"sol5: wrote {count} offline training images to {folder} (done once)")
    return folder


def fallback_photos_dir():
    """Folder of grayscale training photos (built once).

    Each photo is stored at the scales of :data:`PHOTO_SCALES`, so that patches see structures
    at several sizes; a colour photo also gives each of its red, green and blue channels as a
    gray image of its own (their contrasts differ from the luminance's).
    """
    def build(tmp):
        count = 0
        for name in TRAIN_PHOTOS:
            colour = load_skimage_photo(name, 2)
            grays = {"": skimage.color.rgb2gray(colour)}
            if np.ptp(colour - colour.mean(axis=-1, keepdims=True)) > 0.05:  # a colour photo
                grays.update({f"_{c}": colour[..., i] for i, c in enumerate("rgb")})
            for suffix, image in grays.items():
                scales = PHOTO_SCALES if not suffix else (1.0,)
                count += _save_scaled(tmp, f"{name}{suffix}", image, scales)
        return count
    return build_once(cache_dir() / f"photos-{PHOTO_CACHE_VERSION}", build)


def _save_scaled(folder, stem, image, scales):
    """Save ``image`` (gray or RGB, at most :data:`MAX_PHOTO_SIDE` on its longer side) at each of
    ``scales`` as ``STEM_PERCENT.png``; returns how many files it wrote."""
    side = max(image.shape[:2])
    if side > MAX_PHOTO_SIDE:
        image = skimage.transform.rescale(image, MAX_PHOTO_SIDE / side, anti_aliasing=True,
                                          channel_axis=-1 if image.ndim == 3 else None)
    for scale in scales:
        scaled = image if scale == 1 else skimage.transform.rescale(
            image, scale, anti_aliasing=True, channel_axis=-1 if image.ndim == 3 else None)
        _save_png(folder / f"{stem}_{round(100 * scale)}.png", scaled)
    return len(scales)


def colour_photos_dir():
    """Folder of RGB training photos for the colour denoiser (built once): every photo of
    :data:`TRAIN_PHOTOS` at the scales of :data:`PHOTO_SCALES`, the gray ones with three equal
    channels (so that the network learns to keep gray gray)."""
    def build(tmp):
        return sum(_save_scaled(tmp, name, load_skimage_photo(name, 2), PHOTO_SCALES)
                   for name in TRAIN_PHOTOS)
    return build_once(cache_dir() / f"colour-photos-{COLOUR_CACHE_VERSION}", build)


def photo_files(folder):
    """The ``.jpg``, ``.jpeg`` and ``.png`` files of ``folder`` (not its subfolders), sorted."""
    return sorted(f for f in pathlib.Path(folder).iterdir() if f.suffix.lower() in PHOTO_EXTENSIONS)


def extra_photos_dir(folder):
    """The photos of ``folder`` (``.jpg``, ``.jpeg``, ``.png``, not its subfolders) in RGB, shrunk to
    :data:`MAX_PHOTO_SIDE` and stored at the scales of :data:`PHOTO_SCALES`, built once into
    the cache (a folder named by a digest of the files' names and contents).

    Raises
    ------
    ValueError
        If ``folder`` is not a folder, or holds no photo.
    """
    import hashlib
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise ValueError(f"extra photos: {str(folder)!r} is not a folder; pass a folder of "
                         ".jpg/.png photos (docs/training-data.md shows one that a package installs)")
    files = photo_files(folder)
    if not files:
        raise ValueError(f"extra photos: {str(folder)!r} holds no .jpg or .png file")
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b"\0" + hashlib.sha256(file.read_bytes()).digest())

    def build(tmp):
        return sum(_save_scaled(tmp, file.stem, to_float_image(iio.imread(file), 2, name=str(file)),
                                PHOTO_SCALES) for file in files)
    return build_once(cache_dir() / f"extra-photos-{COLOUR_CACHE_VERSION}-{digest.hexdigest()[:16]}",
                      build)


def extra_photo_paths(extra_folders):
    """Paths of the cached photos of each of ``extra_folders`` (:func:`extra_photos_dir`), sorted;
    a gray task reads them in gray."""
    return sorted(str(p) for folder in extra_folders for p in extra_photos_dir(folder).glob("*.png"))


def _shuffled(paths):
    """``paths`` sorted, then in one fixed shuffle (seed :data:`LIST_SEED`), as
    ``sol5_utils.list_images`` orders a folder, so that the 80/20 split mixes every source."""
    import random
    paths = sorted(paths)
    random.Random(LIST_SEED).shuffle(paths)
    return paths


def with_extra_photos(paths, extra_folders=()):
    """A gray task's training list: ``paths`` as given, or with the photos of ``extra_folders``
    (:func:`extra_photo_paths`) added and all of them shuffled (:func:`_shuffled`)."""
    if not extra_folders:
        return list(paths)
    return _shuffled(list(paths) + extra_photo_paths(extra_folders))


def colour_training_photos(extra_folders=()):
    """Paths of the colour denoiser's training photos: :func:`colour_photos_dir` and the photos of
    each of ``extra_folders`` (:func:`extra_photo_paths`), shuffled (:func:`_shuffled`)."""
    return _shuffled([str(p) for p in colour_photos_dir().glob("*.png")]
                     + extra_photo_paths(extra_folders))


def fallback_text_dir():
    """Folder of generated text pages, with ``train/`` and ``heldout/`` (built once)."""
    def build(tmp):
        (tmp / "train").mkdir()
        (tmp / "heldout").mkdir()
        for i in range(N_TEXT_PAGES):
            rng = np.random.default_rng([LIST_SEED, i])
            family = "hand" if rng.random() < HANDWRITTEN_SHARE else FAMILY_NAMES[i % len(FAMILY_NAMES)]
            sub = "heldout" if i < N_TEXT_HELD_OUT else "train"
            _save_png(tmp / sub / f"page_{i:04d}_{family}.png", render_page(rng, family))
        return N_TEXT_PAGES
    return build_once(cache_dir() / f"text-{TEXT_CACHE_VERSION}", build)


def page_family(path):
    """The font family (or ``'hand'``) a generated page was drawn in, from its file name."""
    return pathlib.Path(path).stem.rsplit("_", 1)[-1]


#: The font families of the generated pages, all shipped with matplotlib.  Each family has faces
#: (a regular, bold, italic and monospace file each); a typeset page uses one face throughout.
FONT_FAMILIES = {
    "dejavu": [
        dict(roman="DejaVuSans", bold="DejaVuSans-Bold", italic="DejaVuSans-Oblique", mono="DejaVuSansMono"),
        dict(roman="DejaVuSerif", bold="DejaVuSerif-Bold", italic="DejaVuSerif-Italic",
             mono="DejaVuSansMono"),
        dict(roman="DejaVuSansMono", bold="DejaVuSansMono-Bold", italic="DejaVuSansMono-Oblique",
             mono="DejaVuSansMono"),
    ],
    "stix": [  # Times-like; STIX has no monospace face
        dict(roman="STIXGeneral", bold="STIXGeneralBol", italic="STIXGeneralItalic", mono="STIXGeneral"),
    ],
    "cm": [  # Computer Modern: roman, sans and typewriter
        dict(roman="cmr10", bold="cmb10", italic="cmti10", mono="cmtt10"),
        dict(roman="cmss10", bold="cmb10", italic="cmti10", mono="cmtt10"),
        dict(roman="cmtt10", bold="cmtt10", italic="cmtt10", mono="cmtt10"),
    ],
}
FAMILY_NAMES = tuple(FONT_FAMILIES)
#: Share of the generated pages drawn as hand-drawn-looking strokes instead of type.
HANDWRITTEN_SHARE = 0.2


def font_file(name):
    """Path of one of matplotlib's TrueType fonts, e.g. ``font_file("cmr10")``."""
    import matplotlib
    path = pathlib.Path(matplotlib.get_data_path()) / "fonts" / "ttf" / f"{name}.ttf"
    if not path.is_file():
        raise FileNotFoundError(f"font {str(path)!r} is missing; reinstall matplotlib")
    return path


_LETTERS = "etaoinshrdlcumwfgypbvkjxqz"
_LETTER_P = np.array([12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8,
                      2.4, 2.4, 2.2, 2.0, 2.0, 1.9, 1.5, 1.0, 0.8, 0.2, 0.2, 0.1, 0.1])
_LETTER_P = _LETTER_P / _LETTER_P.sum()


def _random_word(rng):
    """A pseudo-English word, now and then a number, a symbol, a capital or punctuation."""
    kind = rng.random()
    if kind < 0.06:
        return "".join(rng.choice(list("0123456789"), rng.integers(1, 5)))
    if kind < 0.09:
        return str(rng.choice(["=", "+", "-", "(x)", "f(s)", "->", "&", "%", "/", ">>>"]))
    word = "".join(rng.choice(list(_LETTERS), rng.integers(1, 10), p=_LETTER_P))
    if rng.random() < 0.15:
        word = word.capitalize()
    if rng.random() < 0.12:
        word += str(rng.choice(list(".,;:?!")))
    return word


def _random_line(rng, n_chars):
    """Words up to about ``n_chars`` characters."""
    words, length = [], 0
    while length < n_chars:
        words.append(_random_word(rng))
        length += len(words[-1]) + 1
    return " ".join(words)


def _scribble_line(draw, rng, y, width, glyph_px, stroke):
    """A line of hand-drawn-looking glyphs: short smooth random strokes."""
    x = rng.uniform(-glyph_px, 2 * glyph_px)
    while x < width:
        if rng.random() < 0.18:  # a gap between words
            x += glyph_px * rng.uniform(0.6, 1.5)
            continue
        points = np.cumsum(rng.normal(0, glyph_px / 3, (int(rng.integers(3, 7)), 2)), axis=0)
        points = points - points.mean(axis=0) + [x + glyph_px / 2, y + glyph_px / 2]
        draw.line([tuple(p) for p in points], fill=255, width=stroke, joint="curve")
        x += glyph_px * rng.uniform(0.5, 1.1)


class _Typesetter:
    """Words of one face drawn onto a canvas, line by line, as a document lays them out."""

    def __init__(self, draw, rng, face, left, right, line_spacing):
        self.draw, self.rng, self.face = draw, rng, face
        self.left, self.right, self.line_spacing = left, right, line_spacing
        self._fonts = {}

    def font(self, style, size):
        key = (self.face[style], int(size))
        if key not in self._fonts:
            from PIL import ImageFont
            self._fonts[key] = ImageFont.truetype(str(font_file(key[0])), key[1])
        return self._fonts[key]

    def styled_words(self, count):
        """(word, style) pairs: roman text with runs of bold and italic."""
        words, style = [], "roman"
        for _ in range(count):
            if style == "roman" and self.rng.random() < 0.06:
                style = str(self.rng.choice(["bold", "italic"]))
            elif style != "roman" and self.rng.random() < 0.35:
                style = "roman"
            words.append((_random_word(self.rng), style))
        return words

    def paragraph(self, y, words, size, justify, indent=0.0, inset=0.0):
        """Fill lines from ``y``, ``inset`` pixels in from the left margin (the first line
        ``indent`` more); justified lines stretch their spaces to the right margin."""
        left = self.left + inset
        space = self.font("roman", size).getlength(" ")
        line, width = [], indent
        lines = []
        for word, style in words:
            length = self.font(style, size).getlength(word)
            if line and width + space + length > self.right - left:
                lines.append((line, width, indent))
                line, width, indent = [], 0.0, 0.0
            line.append((word, style, length))
            width += (space if len(line) > 1 else 0) + length
        if line:
            lines.append((line, width, indent))
        for k, (line, width, start) in enumerate(lines):
            gap = space
            if justify and k < len(lines) - 1 and len(line) > 1:
                gap = space + (self.right - left - width) / (len(line) - 1)
            x = left + start
            for word, style, length in line:
                self.draw.text((x, y), word, fill=255, font=self.font(style, size))
                x += length + gap
            y += size * self.line_spacing
        return y


def _heading(setter, y, body_px, layout):
    """A bold heading, now and then numbered; returns the ``y`` below it."""
    rng = setter.rng
    size = body_px * rng.uniform(1.2, 2.0)
    number = f"{rng.integers(1, 10)}. " if rng.random() < 0.5 else ""
    title = number + " ".join(_random_word(rng).capitalize() for _ in range(rng.integers(1, 6)))
    setter.draw.text((setter.left, y), title, fill=255, font=setter.font("bold", size))
    return y + size * 1.7


def _body_paragraph(setter, y, body_px, layout):
    """A paragraph of styled words, its first line indented half the time."""
    rng = setter.rng
    words = setter.styled_words(int(rng.integers(8, 90)))
    indent = body_px * 2 if rng.random() < 0.5 else 0.0
    return (setter.paragraph(y, words, body_px, layout["justify"], indent)
            + body_px * rng.uniform(0.3, 1.0))


def _bullet_list(setter, y, body_px, layout):
    """Two to five items, each behind a bullet or a number, their text inset."""
    rng = setter.rng
    for _ in range(rng.integers(2, 6)):
        mark = layout["bullet"] if rng.random() < 0.7 else f"{rng.integers(1, 10)}."
        setter.draw.text((setter.left + body_px, y), mark, fill=255,
                         font=setter.font("roman", body_px))
        words = setter.styled_words(int(rng.integers(3, 25)))
        y = setter.paragraph(y, words, body_px, False, inset=2.5 * body_px)
    return y + body_px * 0.6


def _code_block(setter, y, body_px, layout):
    """Lines in the face's monospace font, indented, sometimes on a shaded box."""
    rng = setter.rng
    size = body_px * rng.uniform(0.85, 1.0)
    lines = [" " * int(rng.integers(0, 4) * 2) + _random_line(rng, int(rng.integers(5, 40)))
             .replace(" ", str(rng.choice([" ", "_", "(", ", ", " = "])), 2)
             for _ in range(rng.integers(2, 8))]
    height = len(lines) * size * 1.25
    if rng.random() < 0.4:
        setter.draw.rectangle([setter.left, y - 0.2 * size, setter.right, y + height],
                              fill=int(rng.integers(15, 50)))
    for k, text in enumerate(lines):
        setter.draw.text((setter.left + body_px, y + k * size * 1.25), text, fill=255,
                         font=setter.font("mono", size))
    return y + height + body_px * 0.8


#: The blocks a document page is made of, and how often each is drawn.
_PAGE_BLOCKS = {_heading: 0.15, _body_paragraph: 0.5, _bullet_list: 0.18, _code_block: 0.17}


def _typeset_page(draw, rng, face, canvas_w, canvas_h, body_px):
    """A page of a document: blocks of :data:`_PAGE_BLOCKS` from top to bottom, then now and
    then a page number."""
    left = rng.uniform(-0.05, 0.12) * canvas_w
    right = canvas_w - rng.uniform(-0.05, 0.12) * canvas_w
    setter = _Typesetter(draw, rng, face, left, right, line_spacing=rng.uniform(1.1, 1.6))
    layout = {"justify": rng.random() < 0.6,
              "bullet": "•" if face["roman"].startswith(("DejaVu", "STIX")) else "-"}
    numbered = rng.random() < 0.5
    number_px = body_px * rng.uniform(0.8, 1.0)
    bottom = canvas_h - 3 * number_px if numbered else canvas_h
    y = rng.uniform(-0.5, 0.3) * body_px * 4
    blocks, weights = list(_PAGE_BLOCKS), list(_PAGE_BLOCKS.values())
    while y < bottom:
        block = blocks[rng.choice(len(blocks), p=weights)]
        y = block(setter, y, body_px, layout)
    if numbered:  # a page number in the bottom margin, centred or at the outer edge
        x = canvas_w / 2 if rng.random() < 0.7 else right - 3 * number_px
        draw.rectangle([0, bottom, canvas_w, canvas_h], fill=0)  # text stops above the margin
        draw.text((x, canvas_h - 1.6 * number_px), str(rng.integers(1, 400)), fill=255,
                  font=setter.font("roman", number_px))


def render_page(rng, family=None):
    """A synthetic grayscale photo or scan of text, float64 in [0, 1].

    Typeset pages use one face of ``family`` (a key of :data:`FONT_FAMILIES`; None draws one);
    most are laid out as documents (headings, justified paragraphs with bold and italic runs,
    bullets, code, page numbers), the others as plain lines of text.  With ``family="hand"`` the
    page holds hand-drawn-looking strokes instead.  Font size, spacing, ink and paper levels
    (contrast down to 0.1), tilt, ruled lines, uneven illumination, paper texture, softness and
    sensor noise are all drawn from ``rng``, so a seeded generator gives the same page every time.

    Examples
    --------
    >>> page = render_page(np.random.default_rng(0), family="cm")
    >>> page.ndim, page.dtype, bool(0 <= page.min() and page.max() <= 1)
    (2, dtype('float64'), True)
    """
    from PIL import Image, ImageDraw

    if family is None:
        family = str(rng.choice(list(FONT_FAMILIES)))
    if family != "hand" and family not in FONT_FAMILIES:
        raise ValueError(f"unknown font family {family!r}; choose one of "
                         f"{sorted(FONT_FAMILIES)} or 'hand'")
    height, width = int(rng.integers(160, 321)), int(rng.integers(200, 401))
    supersample = 3
    font_px = int(rng.integers(8, 31))
    canvas = Image.new("L", (width * supersample, height * supersample), 0)
    draw = ImageDraw.Draw(canvas)
    ruled = rng.random() < 0.15
    spacing = font_px * supersample * rng.uniform(1.05, 1.9)
    if family != "hand" and rng.random() < 0.7:
        faces = FONT_FAMILIES[family]
        face = faces[int(rng.integers(len(faces)))]
        _typeset_page(draw, rng, face, canvas.width, canvas.height, font_px * supersample)
        ruled = False
    else:
        _plain_lines(draw, rng, family, canvas.size, font_px, supersample, spacing, ruled)
    ink_mask = np.asarray(canvas, dtype=np.float64) / 255.0
    angle = rng.normal(0.0, 4.0) if rng.random() < 0.6 else 0.0
    ink_mask = skimage.transform.rotate(ink_mask, angle, mode="constant")
    ink_mask = skimage.transform.downscale_local_mean(ink_mask, (supersample, supersample))
    return _on_paper(ink_mask[:height, :width], rng)


def _plain_lines(draw, rng, family, canvas_size, font_px, supersample, spacing, ruled):
    """Lines of text in one face of ``family`` (or hand-drawn strokes), now and then blank,
    on ruled paper if ``ruled``."""
    from PIL import ImageFont
    canvas_w, canvas_h = canvas_size
    if family != "hand":
        faces = FONT_FAMILIES[family]
        face = faces[int(rng.integers(len(faces)))]
        font = ImageFont.truetype(str(font_file(face[str(rng.choice(list(face)))])),
                                  font_px * supersample)
    margin = rng.integers(-font_px, 3 * font_px) * supersample
    y = rng.uniform(-0.8, 0.5) * spacing
    chars_per_line = int(2.2 * (canvas_w // supersample) / font_px) + 2
    stroke = int(supersample * rng.uniform(0.8, 3.0))
    while y < canvas_h:
        if rng.random() < 0.9:  # some lines are blank, like paragraph breaks
            if family == "hand":
                _scribble_line(draw, rng, y, canvas_w, font_px * supersample, stroke)
            else:
                draw.text((margin, y), _random_line(rng, chars_per_line), fill=255, font=font)
        if ruled:
            line_y = y + 1.05 * font_px * supersample
            draw.line([(0, line_y), (canvas_w, line_y)], fill=int(rng.integers(60, 200)),
                      width=supersample)
        y += spacing


def _on_paper(ink_mask, rng):
    """Ink (a mask in [0, 1]) on paper as a photo or scan shows it: ink and paper levels, uneven
    illumination, paper grain, softness and sensor noise."""
    height, width = ink_mask.shape
    paper = rng.uniform(0.35, 1.0)
    ink = rng.uniform(0.0, max(0.0, paper - 0.1))
    page = paper + (ink - paper) * ink_mask
    # uneven illumination: a tilted plane times a smooth random field
    rows, cols = np.mgrid[0:height, 0:width] / max(height, width)
    plane = 1 + rng.uniform(-0.3, 0.3) * (rows - 0.5) + rng.uniform(-0.3, 0.3) * (cols - 0.5)
    field = scipy.ndimage.gaussian_filter(rng.standard_normal((height, width)), max(height, width) / 6)
    field = field / (np.abs(field).max() + 1e-12)
    page = page * plane * (1 + rng.uniform(0.0, 0.25) * field)
    # paper texture: fine band-limited grain
    grain = scipy.ndimage.gaussian_filter(rng.standard_normal((height, width)), rng.uniform(0.5, 2.0))
    page = page * (1 + rng.uniform(0.0, 0.04) * grain / (grain.std() + 1e-12))
    page = scipy.ndimage.gaussian_filter(page, rng.uniform(0.0, 1.2))  # lens / scanner softness
    page = page + rng.normal(0.0, rng.uniform(0.0, 0.03), page.shape)  # sensor noise
    return np.clip(page, 0.0, 1.0)
