"""Synthetic training pages: real fonts, real prose, the damage real scans have.

No TensorFlow here (the OCR benchmark and the examples use it too). Pages are
float32 in [0, 1], white paper = 1. ``render_page`` draws clean text;
``DAMAGES`` maps each damage kind to a function ``(clean, rng, strength) -> noisy``
with strength in [0, 1]; ``make_pair`` draws a random page and random damage.
"""

from __future__ import annotations

import functools
import glob
import importlib
import inspect
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# -- fonts ------------------------------------------------------------------------

_FONT_DIRS = ["/usr/share/fonts/truetype", "/usr/share/fonts/opentype", "/usr/local/share/fonts"]
_FAMILIES = {
    "serif": ["LiberationSerif-Regular", "DejaVuSerif", "LiberationSerif-Bold",
              "LiberationSerif-Italic", "DejaVuSerifCondensed"],
    "sans": ["LiberationSans-Regular", "DejaVuSans", "LiberationSans-Bold",
             "LiberationSansNarrow-Regular", "DejaVuSansCondensed"],
    "mono": ["LiberationMono-Regular", "DejaVuSansMono", "NotoMono-Regular"],
}


@functools.cache
def available_fonts() -> dict[str, list[str]]:
    """Font files found on this machine, by family. Debian: fonts-liberation, fonts-dejavu-core."""
    found: dict[str, str] = {}
    for d in _FONT_DIRS:
        for f in glob.glob(os.path.join(d, "**", "*.ttf"), recursive=True):
            found[os.path.splitext(os.path.basename(f))[0]] = f
    out = {fam: [found[n] for n in names if n in found] for fam, names in _FAMILIES.items()}
    return {k: v for k, v in out.items() if v}


@functools.lru_cache(maxsize=256)
def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont:
    if path is None:
        return ImageFont.load_default(size)  # Pillow's scalable built-in font
    return ImageFont.truetype(path, size)


def font_path(rng: np.random.Generator, family: str) -> str | None:
    """One of ``family``'s font files, drawn at random (None: Pillow's built-in font,
    when the family has none here)."""
    paths = available_fonts().get(family) or [None]
    return paths[int(rng.integers(len(paths)))]


def font_size(x_height: float) -> int:
    """The em size (px) that draws letters of ``x_height`` px: the x-height is about
    0.5-0.55 of the em size."""
    return max(6, int(round(x_height / 0.53)))


# -- text -------------------------------------------------------------------------

_DOC_MODULES = [
    "argparse", "asyncio", "base64", "bisect", "calendar", "collections", "csv",
    "datetime", "decimal", "difflib", "email", "fractions", "ftplib", "functools",
    "gettext", "glob", "heapq", "http.client", "imaplib", "inspect", "ipaddress",
    "json", "logging", "mailbox", "netrc", "optparse", "pathlib", "pickle", "poplib",
    "pprint", "queue", "random", "sched", "shlex", "shutil", "smtplib", "statistics",
    "string", "subprocess", "tarfile", "tempfile", "textwrap", "threading", "timeit",
    "turtle", "typing", "unittest", "urllib.parse", "uuid", "wave", "zipfile",
]


@functools.lru_cache(maxsize=1)
def corpus() -> list[str]:
    """Sentences of English prose from the docstrings of Python's standard library.

    Read at run time from the installed interpreter, so no text lives in the repo.
    """
    seen: set[str] = set()
    words: list[str] = []
    for name in _DOC_MODULES:
        try:
            mod = importlib.import_module(name)
        except Exception:  # a module missing on this interpreter is fine
            continue
        docs = [inspect.getdoc(mod) or ""]
        for _, obj in sorted(vars(mod).items()):
            if inspect.isfunction(obj) or inspect.isclass(obj):
                docs.append(inspect.getdoc(obj) or "")
        for doc in docs:
            for para in doc.split("\n\n"):
                para = " ".join(para.split())
                if len(para) < 40 or para in seen or ">>>" in para:
                    continue
                if not re.fullmatch(r"[ -~]+", para):
                    continue
                seen.add(para)
                words.extend(para.split(" "))
    if not words:  # pragma: no cover - an interpreter without docstrings (-OO)
        words = "the quick brown fox jumps over the lazy dog".split() * 50
    return words


def random_text(rng: np.random.Generator, n_words: int) -> list[str]:
    words = corpus()
    start = int(rng.integers(0, max(1, len(words) - n_words)))
    return words[start : start + n_words]


# -- clean pages ------------------------------------------------------------------


@dataclass
class Page:
    clean: np.ndarray  # H x W float32, white = 1
    text: str  # the text drawn, lines joined by "\n"
    ink: float = 0.0  # grey level the text was drawn with (0 = black)

    def black_ink(self) -> np.ndarray:
        """The page as if drawn in black ink, anti-aliasing kept: darkness divided
        by the ink's darkness. The target for training on flattened pages, whose
        input no longer says how dark the ink was (flattening stretches it to black),
        and the look of the real pairs' clean sides (NoisyOffice, DIBCO)."""
        return np.clip(1.0 - (1.0 - self.clean) / (1.0 - self.ink), 0.0, 1.0).astype(np.float32)


def render_page(
    rng: np.random.Generator,
    height: int = 400,
    width: int = 400,
    *,
    x_height: float | None = None,
    family: str | None = None,
    ink: float | None = None,
    margin: int = 12,
) -> Page:
    """Draw lines of prose on white paper.

    ``x_height`` (pixels, default random in 10..40) sets the font size; ``ink`` is
    the ink's grey level (default random dark, 0..0.25). Returns the page and the
    exact text drawn, line by line, for OCR scoring.
    """
    fonts = available_fonts()
    if family is None:
        family = str(rng.choice(sorted(fonts))) if fonts else "default"
    path = font_path(rng, family)
    xh = float(x_height if x_height is not None else rng.uniform(10, 40))
    size = font_size(xh)
    font = _font(path, size)
    ink_level = float(ink if ink is not None else rng.uniform(0.0, 0.25))

    fill = int(round(ink_level * 255))
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    line_h = int(size * rng.uniform(1.2, 1.6))
    y = margin
    lines: list[str] = []
    words = random_text(rng, 400)
    wi = 0
    while y + size <= height - margin and wi < len(words):
        line = ""
        while wi < len(words):
            cand = (line + " " + words[wi]).strip()
            if draw.textlength(cand, font=font) > width - 2 * margin:
                break
            line, wi = cand, wi + 1
        if not line:  # a single word wider than the page: break it
            line, wi = words[wi][: max(1, len(words[wi]) // 2)], wi + 1
        draw.text((margin, y), line, fill=fill, font=font)
        lines.append(line)
        y += line_h
    clean = np.asarray(img, dtype=np.float32) / 255.0
    return Page(clean, "\n".join(lines), fill / 255.0)


# -- damage -------------------------------------------------------------------------
# Each takes (clean page, rng, strength in [0, 1]) and returns a new float32 page.


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Low-frequency noise in [-1, 1], features about ``scale`` pixels wide."""
    h, w = shape
    sh, sw = max(2, int(h / scale) + 2), max(2, int(w / scale) + 2)
    small = rng.standard_normal((sh, sw)).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    m = np.abs(big).max()
    return big / m if m > 0 else big


def gaussian(x: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    """Additive Gaussian noise up to the classic tutorials' x + 0.5 N(0,1)."""
    sigma = 0.05 + 0.45 * s
    return x + sigma * rng.standard_normal(x.shape).astype(np.float32)


def salt_pepper(x: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    """Salt-and-pepper pixels plus dust: small dark specks of a few pixels."""
    y = x.copy()
    p = 0.01 + 0.12 * s
    r = rng.random(x.shape)
    y[r < p / 2] = 0.0
    y[(r >= p / 2) & (r < p)] = 1.0
    n_dust = int((5 + 60 * s) * x.size / 1e5)
    h, w = x.shape
    for _ in range(n_dust):
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        rad = int(rng.integers(1, 4))
        cv2.circle(y, (cx, cy), rad, float(rng.uniform(0, 0.4)), -1)
    return y


def stains(x: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    """Coffee and water stains: darker blotches with a darker rim, multiplied in."""
    h, w = x.shape
    mult = np.ones_like(x)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(0.15, 0.5) * h, rng.uniform(0.15, 0.5) * w
        yy, xx = np.ogrid[:h, :w]
        d = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
        d = d + 0.15 * _smooth_noise(rng, (h, w), 40)
        depth = rng.uniform(0.15, 0.3 + 0.5 * s)
        inside = np.clip(1.2 - d, 0, 1) ** 0.5
        rim = np.exp(-(((d - 1.0) / 0.04) ** 2)) * rng.uniform(0.3, 1.0)
        mult *= 1.0 - depth * np.clip(0.6 * inside + rim, 0, 1)
    return x * mult


def illumination(x: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    """Uneven lighting: a gradient and a soft shadow from a book spine or hand."""
    h, w = x.shape
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    g = (np.cos(a) * xx / w + np.sin(a) * yy / h)
    g = (g - g.min()) / max(1e-6, g.max() - g.min())
    light = 1.0 - (0.25 + 0.5 * s) * g
    edge = rng.uniform(0.05, 0.3) * w
    shadow = 1.0 - (0.25 + 0.5 * s) * np.exp(-xx / edge)
    if rng.random() < 0.5:
        shadow = shadow[:, ::-1]
    return x * light * shadow


def crumple(x: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    """Crumpled or folded paper: shaded texture plus sharp fold lines."""
    h, w = x.shape
    tex = 0.5 * _smooth_noise(rng, (h, w), 60) + 0.3 * _smooth_noise(rng, (h, w), 15)
    gy, gx = np.gradient(tex)
    shade = 1.0 + (3 + 10 * s) * (gx + gy)
    y = x * np.clip(shade, 0.55, 1.1)
    for _ in range(int(rng.integers(1, 3))):
        p0 = (int(rng.integers(w)), 0)
        p1 = (int(rng.integers(w)), h - 1)
        if rng.random() < 0.5:
            p0, p1 = (0, int(rng.integers(h))), (w - 1, int(rng.integers(h)))
        fold = np.zeros_like(x)
        cv2.line(fold, p0, p1, 1.0, int(rng.integers(2, 6)))
        fold = cv2.GaussianBlur(fold, (0, 0), 2.0)
        y = y * (1.0 - (0.2 + 0.3 * s) * fold)
    return y


def faded(x: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    """Low contrast: grey paper and light ink (old photocopies, toner running out)."""
    paper = rng.uniform(0.7, 0.95)
    contrast = 0.55 - 0.45 * s  # ink-to-paper distance left
    return paper * (1.0 - (1.0 - x) * contrast)


def blur_jpeg(x: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    """Out of focus or motion blur, then heavy JPEG compression."""
    sigma = 0.6 + 2.0 * s
    y = cv2.GaussianBlur(x, (0, 0), sigma)
    return _jpeg(y, int(rng.integers(max(5, int(50 - 45 * s)), 60)))


def resample_jpeg(x: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    """Scanned at low resolution and scaled back up, then JPEG-compressed."""
    h, w = x.shape
    f = 1.0 / (1.3 + 1.2 * s)
    small = cv2.resize(x, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
    up = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return _jpeg(up, int(rng.integers(max(5, int(50 - 40 * s)), 80)))


def _jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    u8 = np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0


def bleed_through(x: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    """Text of the back side showing through, mirrored and blurred."""
    h, w = x.shape
    back = render_page(rng, h, w).clean[:, ::-1]
    back = cv2.GaussianBlur(back, (0, 0), rng.uniform(0.8, 2.0))
    k = 0.15 + 0.45 * s
    return x * (1.0 - k * (1.0 - back))


def fax(x: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    """Binarised fax-like page: thresholded with noise, with streaks and dropouts."""
    h, w = x.shape
    noisy = x + (0.1 + 0.25 * s) * rng.standard_normal(x.shape).astype(np.float32)
    y = (noisy > 0.5).astype(np.float32)
    for _ in range(int(rng.integers(1, 4 + int(8 * s)))):
        r = int(rng.integers(h))
        th = int(rng.integers(1, 3))
        if rng.random() < 0.7:
            y[r : r + th] = 0.0 if rng.random() < 0.6 else 1.0
        else:
            c = int(rng.integers(w))
            y[:, c : c + th] = 0.0
    return y


DAMAGES: dict[str, Callable[[np.ndarray, np.random.Generator, float], np.ndarray]] = {
    "gaussian": gaussian,
    "salt_pepper": salt_pepper,
    "stains": stains,
    "illumination": illumination,
    "crumple": crumple,
    "faded": faded,
    "blur_jpeg": blur_jpeg,
    "resample_jpeg": resample_jpeg,
    "bleed_through": bleed_through,
    "fax": fax,
}


def parse_kind_weights(spec: str) -> dict[str, float]:
    """``"bleed_through=3,salt_pepper=2"`` -> {kind: weight}; ``""`` -> {} (uniform).
    Raises ValueError naming an unknown kind or a weight that is not a positive number."""
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in DAMAGES:
            raise ValueError(f"kind weight {item!r}: expected KIND=WEIGHT with KIND one of "
                             f"{', '.join(DAMAGES)}")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"kind weight {item!r}: the weight must be a positive number")
        out[name] = weight
    return out


def damage(clean: np.ndarray, kind: str, rng: np.random.Generator,
           strength: float | None = None) -> np.ndarray:
    """Apply one damage kind with the given (or a random) strength; clip to [0, 1]."""
    s = float(rng.uniform(0, 1) if strength is None else strength)
    return np.clip(DAMAGES[kind](clean, rng, s), 0.0, 1.0).astype(np.float32)


def make_pair(rng: np.random.Generator, height: int = 256, width: int = 256,
              kinds: list[str] | None = None,
              clean_fraction: float = 0.05,
              max_damages: int = 3,
              black_ink: bool = False,
              kind_weights: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A damaged page and its target: the clean page, or with ``black_ink`` the
    clean page drawn in black (:meth:`Page.black_ink`). One to ``max_damages``
    damage kinds (none with probability ``clean_fraction``), drawn without
    replacement, uniformly or in proportion to ``kind_weights`` (kind -> weight;
    kinds not named weigh 1), for giving more practice on the kinds a model
    gets wrong.

    Photometric damage (stains, light, paper) goes first and sensor damage
    (noise, blur, JPEG) last, the order in which a real scan acquires them.
    """
    kinds = kinds or list(DAMAGES)
    page = render_page(rng, height, width)
    target = page.black_ink() if black_ink else page.clean
    if rng.random() < clean_fraction:  # clean in, clean out: do no harm to good pages
        return page.clean.copy(), target
    k = int(rng.integers(1, min(max_damages, len(kinds)) + 1))
    p = None
    if kind_weights:  # only then: unweighted draws stay those of earlier models
        w = np.array([float(kind_weights.get(name, 1.0)) for name in kinds])
        p = w / w.sum()
    chosen = list(rng.choice(kinds, size=k, replace=False, p=p))
    order = [k for k in DAMAGES if k in chosen]
    x = page.clean
    for k in order:
        x = damage(x, k, rng)
    return x, target
