"""Synthetic pages that look like what real scans are: small print, forms, receipts, copies.

``synth`` draws prose at x-heights of 10-40 px in dark ink and damages it one way
at a time. Real pages users scan are often none of that (issue "Real scans"): office
forms at 75-150 DPI (x-heights of 5-8 px, 1-px serif hairlines, rules and
underlines touching the letters), thermal receipts (light, unevenly faded ink on
off-white paper), photocopies and phone captures (low contrast, blur, mild noise,
heavy JPEG). ``KINDS`` maps each such *page kind* to a function ``(rng, strength)
-> (clean Page, damaged page)``: unlike a ``synth.DAMAGES`` entry it draws its own
page, since the layout (a form, a narrow receipt) is part of what it is.

Pages are float32 in [0, 1], white = 1; ``Page.text`` is what OCR should read (a
stamp's ring and a check box's square are not text). Nothing here is used by
training by default: they are the benchmark's pages (``benchmarks/ocr_quality.py``), and
training draws them only with ``scan_fraction`` (``train/data.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image, ImageDraw

from ocr_denoise import rescale

from . import synth
from .synth import Page

#: Page size of the benchmark's scan-kind pages (width x height, px), as ocr_quality's.
WIDTH, HEIGHT = 640, 900
#: A receipt is narrow.
RECEIPT_WIDTH = (360, 440)


def _font_for(rng: np.random.Generator, family: str, x_height: float):
    """A font of ``family`` (or sans where this machine has none) for ``x_height``."""
    path = synth.font_path(rng, family if family in synth.available_fonts() else "sans")
    size = synth.font_size(x_height)
    return synth._font(path, size), size


def _margin(width: int) -> int:
    """30 px on a benchmark page, less on a small training page."""
    return min(30, max(4, width // 20))


def _scanned(x: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    """What an office scanner does to a page: a little optical blur and sensor noise,
    as much as FUNSD's 90-DPI forms have (``guard``'s paper-noise estimate: 0.3-1.5
    gray levels, 10th to 90th percentile; this gives 0.5-1.5 on a form)."""
    y = cv2.GaussianBlur(x, (0, 0), float(rng.uniform(0.35, 0.6)))
    return y + float(rng.uniform(0.2, 0.9) + 0.6 * s) / 255 * rng.standard_normal(
        x.shape).astype(np.float32)


def _jpeg(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return synth._jpeg(np.clip(x, 0, 1), int(rng.integers(10, 41)))


def small_serif(rng: np.random.Generator, s: float, height: int = HEIGHT,
                width: int = WIDTH) -> tuple[Page, np.ndarray]:
    """Serif prose at x-heights of 5-8 px (a page scanned at 75-150 DPI), scanned."""
    page = synth.render_page(rng, height, width, x_height=float(rng.uniform(5, 8)),
                             family="serif", ink=float(rng.uniform(0, 0.15)),
                             margin=_margin(width))
    return page, _scanned(page.clean, rng, s)


def render_form(rng: np.random.Generator, height: int = HEIGHT, width: int = WIDTH,
                x_height: float | None = None) -> Page:
    """A form: label and value lines with the value underlined (the rule touches the
    descenders), some lines boxed, check boxes before some lines, vertical rules at
    the margins and a stamp's ring over the text. ``Page.text``: the lines' words."""
    xh = float(x_height if x_height is not None else rng.uniform(6, 12))
    font, size = _font_for(rng, str(rng.choice(["sans", "serif"])), xh)
    ascent, _ = font.getmetrics()
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    margin = _margin(width)
    line_h = int(size * rng.uniform(1.8, 2.4))
    words = synth.random_text(rng, 400)
    wi, y, lines = 0, margin, []
    rule = max(1, int(round(size / 14)))
    draw.line([(margin // 2, margin), (margin // 2, height - margin)], fill=0, width=rule)
    draw.line([(width - margin // 2, margin), (width - margin // 2, height - margin)],
              fill=0, width=rule)
    while y + line_h <= height - margin and wi + 6 < len(words):
        x = margin
        if rng.random() < 0.2:  # a check box, then a gap, then its label
            b = int(size * 0.7)
            draw.rectangle([x, y + ascent - b, x + b, y + ascent], outline=0, width=1)
            if rng.random() < 0.5:
                draw.line([(x + 2, y + ascent - b + 2), (x + b - 2, y + ascent - 2)], fill=0)
            x += int(b * 2.5)
        n_label, n_value = int(rng.integers(1, 4)), int(rng.integers(1, 6))
        label = " ".join(words[wi:wi + n_label]).rstrip(".,;") + ":"
        value = " ".join(words[wi + n_label:wi + n_label + n_value])
        wi += n_label + n_value
        draw.text((x, y), label, fill=0, font=font)
        vx = x + int(draw.textlength(label, font=font)) + size
        # A value wider than the page is cut to what fits, word by word.
        while value and vx + draw.textlength(value, font=font) > width - margin:
            value = " ".join(value.split()[:-1])
        if value:
            draw.text((vx, y), value, fill=0, font=font)
            # The underline at the baseline + 1: descenders cross it, as on filled forms.
            uy = y + ascent + 1
            draw.line([(vx - 4, uy), (width - margin, uy)], fill=0, width=rule)
        if rng.random() < 0.15:  # a boxed line
            draw.rectangle([x - 6, y - 4, width - margin + 4, y + line_h - 6], outline=0,
                           width=rule)
        lines.append(f"{label} {value}".strip())
        y += line_h
    page = np.asarray(img, dtype=np.float32) / 255.0
    if rng.random() < 0.6:  # a stamp: an inked ring in mid grey across some lines
        ring = np.zeros_like(page)
        c = (int(rng.uniform(0.4, 0.8) * width), int(rng.uniform(0.2, 0.8) * height))
        r = int(rng.uniform(0.08, 0.15) * width)
        cv2.ellipse(ring, c, (r, int(r * rng.uniform(0.6, 1.0))), float(rng.uniform(0, 180)),
                    0, 360, 1.0, int(rng.integers(2, 5)))
        page = page * (1.0 - float(rng.uniform(0.3, 0.6)) * ring)
    return Page(page.astype(np.float32), "\n".join(lines), 0.0)


def form(rng: np.random.Generator, s: float, height: int = HEIGHT,
         width: int = WIDTH) -> tuple[Page, np.ndarray]:
    """A form at 6-12 px x-height, scanned."""
    page = render_form(rng, height, width)
    return page, _scanned(page.clean, rng, s)


def thermal(rng: np.random.Generator, s: float, height: int = HEIGHT,
            width: int = WIDTH) -> tuple[Page, np.ndarray]:
    """A thermal receipt: a narrow column of monospaced text, its ink light grey (45-80%
    of the paper's brightness), faded unevenly (along the paper, in streaks, and in
    patches), on off-white paper; scanned."""
    w = min(width, int(rng.integers(*RECEIPT_WIDTH)))
    page = synth.render_page(rng, height, w, x_height=float(rng.uniform(8, 13)),
                             family="mono", ink=0.0,
                             margin=20 if w >= RECEIPT_WIDTH[0] else _margin(w))
    paper = float(rng.uniform(0.82, 0.95))
    # Ink brightness as a share of the paper's: 0.45 (darkest) .. 0.8 (faintest).
    darkest = 0.45 + 0.2 * s * float(rng.random())
    streaks = 0.5 + 0.5 * synth._smooth_noise(rng, (1, w), float(rng.uniform(8, 40)))
    patches = 0.5 + 0.5 * synth._smooth_noise(rng, (height, w), float(rng.uniform(60, 200)))
    fade = np.clip(0.55 * streaks + 0.45 * patches, 0, 1)  # 0: as dark as it gets
    level = darkest + (0.8 - darkest) * fade * (0.4 + 0.6 * s)
    ink = 1.0 - page.clean  # 0 paper .. 1 ink
    noisy = paper * (1.0 - ink * (1.0 - level))
    return page, _scanned(noisy.astype(np.float32), rng, s)


def photocopy(rng: np.random.Generator, s: float, height: int = HEIGHT,
              width: int = WIDTH) -> tuple[Page, np.ndarray]:
    """A photocopy of a copy: grey paper, grey ink (low contrast), blurred, with mild
    noise, saved as JPEG at quality 10-40."""
    page = synth.render_page(rng, height, width, x_height=float(rng.uniform(8, 16)),
                             margin=_margin(width))
    paper = float(rng.uniform(0.75, 0.92))
    contrast = float(rng.uniform(0.35, 0.6)) * (1.0 - 0.4 * s)  # ink-to-paper distance
    y = paper * (1.0 - (1.0 - page.clean) * contrast)
    y = cv2.GaussianBlur(y.astype(np.float32), (0, 0), float(rng.uniform(0.4, 0.7) + 0.4 * s))
    y = y + float(rng.uniform(2, 5) + 3 * s) / 255 * rng.standard_normal(y.shape).astype(
        np.float32)
    return page, _jpeg(y, rng)


def phone(rng: np.random.Generator, s: float, height: int = HEIGHT,
          width: int = WIDTH) -> tuple[Page, np.ndarray]:
    """A phone capture: uneven light across the page, out-of-focus blur, sensor noise,
    JPEG at quality 10-40."""
    page = synth.render_page(rng, height, width, x_height=float(rng.uniform(8, 16)),
                             margin=_margin(width))
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    a = float(rng.uniform(0, 2 * np.pi))
    g = np.cos(a) * xx / width + np.sin(a) * yy / height
    g = (g - g.min()) / max(1e-6, float(g.max() - g.min()))
    light = float(rng.uniform(0.8, 0.95)) * (1.0 - (0.1 + 0.3 * s) * g)
    contrast = float(rng.uniform(0.55, 0.8))
    y = light * (1.0 - (1.0 - page.clean) * contrast)
    y = cv2.GaussianBlur(y.astype(np.float32), (0, 0), float(rng.uniform(0.6, 1.0) + 0.6 * s))
    y = y + float(rng.uniform(2, 4) + 3 * s) / 255 * rng.standard_normal(y.shape).astype(
        np.float32)
    return page, _jpeg(y, rng)


#: The scan kinds that stand alone.
#: A scan kind: ``(rng, strength, height, width) -> (clean Page, damaged page)``.
Kind = Callable[..., tuple[Page, np.ndarray]]
BASE: dict[str, Kind] = {
    "small_serif": small_serif,
    "form": form,
    "thermal": thermal,
    "photocopy": photocopy,
    "phone": phone,
}
#: Existing damage kinds a ``scan_mix`` page may carry as well (fax is a binarised
#: page of its own, not a second damage).
MIX_DAMAGES = ["gaussian", "salt_pepper", "stains", "illumination", "crumple",
               "bleed_through"]


def scan_mix(rng: np.random.Generator, s: float, height: int = HEIGHT,
             width: int = WIDTH) -> tuple[Page, np.ndarray]:
    """One of ``BASE``'s pages with one of ``synth``'s damages on it as well (a stained
    receipt, a crumpled form, a noisy photocopy)."""
    kind = str(rng.choice(sorted(BASE)))
    extra = str(rng.choice(MIX_DAMAGES))
    page, noisy = BASE[kind](rng, s, height, width)
    return page, synth.DAMAGES[extra](np.clip(noisy, 0, 1), rng, s)


def enlarged(rng: np.random.Generator, s: float, height: int = HEIGHT,
             width: int = WIDTH) -> tuple[Page, np.ndarray]:
    """Small print as ``upscale`` gives it to the model: a page scanned at half the
    resolution (x-height 5-8 px, serif or sans, scanner blur and noise, 8-bit),
    enlarged 2x as 8-bit by the runtime's own resize (``ocr_denoise.rescale``). The
    clean page is the same text rendered sharp at the enlarged size (x-height 10-16
    px): what a model should make of the enlargement, so it can read better than the
    interpolation alone (issue "Real scans": go past cubic)."""
    family = str(rng.choice(["serif", "sans"]))
    page = synth.render_page(rng, height, width, x_height=float(rng.uniform(10, 16)),
                             family=family, ink=float(rng.uniform(0, 0.15)),
                             margin=_margin(width))
    low = cv2.resize(page.clean, (max(1, width // 2), max(1, height // 2)),
                     interpolation=cv2.INTER_AREA)
    low8 = np.round(np.clip(_scanned(low, rng, s), 0, 1) * 255).astype(np.uint8)
    return page, rescale.to_size(low8, width, height).astype(np.float32) / 255


KINDS: dict[str, Kind] = {**BASE, "scan_mix": scan_mix, "enlarged": enlarged}


def make(kind: str, rng: np.random.Generator, strength: float, height: int = HEIGHT,
         width: int = WIDTH) -> tuple[Page, np.ndarray]:
    """A clean ``height`` x ``width`` page of ``kind`` (a receipt may be narrower) and
    its damaged version, clipped to [0, 1] float32. Raises KeyError naming the kind
    when it is not one of ``KINDS``."""
    if kind not in KINDS:
        raise KeyError(f"unknown scan kind {kind!r}; known: {', '.join(KINDS)}")
    page, noisy = KINDS[kind](rng, float(strength), height, width)
    return page, np.clip(noisy, 0.0, 1.0).astype(np.float32)
