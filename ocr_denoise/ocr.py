"""Measure what denoising does for OCR: run tesseract and score its text.

Optional: needs the ``ocr`` extra (pytesseract) and the tesseract program
(Debian: ``tesseract-ocr``). The denoiser itself never imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import MissingDependencyError, SettingsError


def normalize_text(text: str) -> str:
    """Collapse all runs of whitespace to one space: OCR line breaks are layout, not text."""
    return " ".join(text.split())


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions of one character)."""
    try:
        from rapidfuzz.distance import Levenshtein
    except ImportError:  # pure-Python fallback, O(len(a) * len(b))
        prev = list(range(len(b) + 1))
        for i, ca in enumerate(a, 1):
            cur = [i]
            for j, cb in enumerate(b, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
            prev = cur
        return prev[-1]
    return int(Levenshtein.distance(a, b))


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate: edit distance / reference length, after whitespace folding.

    0 is perfect; can exceed 1 when OCR invents text. An empty reference scores 0
    against an empty hypothesis and 1 against anything else.
    """
    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return levenshtein(ref, hyp) / len(ref)


def tesseract_text(img: np.ndarray, *, lang: str = "eng", config: str = "") -> str:
    """OCR an H x W uint8 gray (or BGR) page with tesseract, through pytesseract."""
    try:
        import pytesseract
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "OCR needs the 'ocr' extra: pip install 'ocr-denoise[ocr]'") from e
    if img.ndim == 3:
        img = img[..., ::-1]  # BGR -> RGB for PIL
    return pytesseract.image_to_string(np.ascontiguousarray(img), lang=lang, config=config)


def available_languages() -> list[str]:
    """The languages the installed tesseract reads (``tesseract --list-langs``),
    sorted; ``MissingDependencyError`` when tesseract cannot be run."""
    import subprocess

    try:
        r = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True,
                           timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as e:
        raise MissingDependencyError(f"--ocr needs the tesseract program (Debian: apt install "
                                     f"tesseract-ocr): {e}") from e
    lines = (r.stdout + r.stderr).splitlines()
    return sorted(x.strip() for x in lines if x.strip() and not x.startswith("List of"))


def missing_languages(lang: str, have: Sequence[str] | None = None) -> list[str]:
    """The parts of a tesseract ``lang`` setting (``"eng+deu"``) that tesseract does
    not have (``have``: its languages, if already listed by ``available_languages``):
    a run with ``--ocr`` checks this before denoising anything, instead of failing
    every page afterwards."""
    known = set(available_languages() if have is None else have)
    return [part for part in lang.split("+") if part and part not in known]


def check_languages(lang: str, have: Sequence[str] | None = None, *,
                    setting: str = "ocr_lang") -> None:
    """``SettingsError`` unless tesseract has every part of ``lang`` (``"eng+deu"``),
    naming the missing ones and those it has (``have``: its languages, if already
    listed by ``available_languages``; ``setting``: the name the message gives the
    setting). ``MissingDependencyError`` when tesseract cannot be run."""
    have = available_languages() if have is None else list(have)
    missing = missing_languages(lang, have)
    if missing:
        raise SettingsError(
            f"{setting}={lang!r}: tesseract has no {'+'.join(missing)}; it has "
            f"{', '.join(have) or 'no languages'} (Debian: apt install "
            f"{' '.join('tesseract-ocr-' + m for m in missing)})")
