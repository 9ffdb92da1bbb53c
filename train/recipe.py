"""The shipped models' recipes: ``python -m train fit`` argument lists, written down once.

``stage1``/``stage2``: v8, the shipped autoencoder. ``residual``: the candidate that
may replace it (train/model.py ``build_residual``; issue "A denoiser that helps real
pages"), one run; not shipped yet (docs/model-history.md says why).

The model card's command, the DIBCO leave-one-year-out check
(``benchmarks/dibco_folds.py``) and anyone reproducing the model run these same
argument lists, so the held-out DIBCO figure measures the recipe that made the
shipped model and not a cousin of it.

Stage 1 learns the page: synthetic pages with every damage kind plus the real
NoisyOffice pairs. Stage 2 starts from stage 1 and adds the real DIBCO pairs
(historical pages, binary ground truth) with the same synthetic mix, at a lower
learning rate. DIBCO is also the evaluation set, so stage 2 can hold a year out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

#: Where ``../shared/data`` is for a checkout at its usual place.
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
DIBCO_YEARS = ("2009", "2010", "2011", "2012", "2013")

_MODEL = ["--arch", "shuffle", "--width", "32", "--skips", "true", "--page-norm", "true",
          "--black-ink", "true", "--ink-fraction", "0.5"]


#: Real page folders whose *selection* half gives the residual model its paper.
PAPER = ("ehri-dev", "sroie-dev/img", "funsd-train/images")


def residual(data: Path = DEFAULT_DATA) -> list[str]:
    """``fit`` arguments of the residual candidate: output = input + a correction that
    starts at zero; its synthetic pages all drawn from ``train.real_damage``'s kinds on
    paper cut from real selection pages (``synth``'s bleed-through taught the first
    candidate to erase faint print); NoisyOffice's real pairs; targets as printed (grey
    edges, strokes as wide as the font's); MSE (L1 erased uncertain ink). Width 16:
    onnxruntime runs 16-channel convolutions in one AVX-512 block, so it costs what v8
    costs (24 costs 2.9x). 10 epochs: 21 minutes on 2 cores (1,254 s)."""
    return ["--arch", "residual", "--width", "16", "--latent-width", "32",
            "--loss", "mean_squared_error", "--batch-size", "256",
            "--synthetic-patches", "500000", "--real-fraction", "1.0",
            "--paper", *(str(data / p) for p in PAPER),
            "--real-patches", "100000", "--pairs", str(data / "noisyoffice" / "train"),
            "--ink-fraction", "0.5", "--damage-fraction", "0.2",
            "--epochs", "10", "--learning-rate", "0.002"]


def stage1(data: Path = DEFAULT_DATA) -> list[str]:
    """``fit`` arguments (without ``--out``) of the base model. 16 epochs since v8:
    v7's 8 were what fitted in an hour on the CPU it was trained on; on the Intel
    AVX-512 CPU v8 was trained on, 16 take 36 minutes, and the figures improved
    (the model card's "v8")."""
    return [*_MODEL, "--damage-fraction", "0.2",
            "--synthetic-patches", "700000", "--real-patches", "175000",
            "--pairs", str(data / "noisyoffice" / "train"),
            "--epochs", "16", "--learning-rate", "0.002"]


def stage2(init: str | Path, data: Path = DEFAULT_DATA,
           hold_out: str | None = None, extra: Sequence[str] = ()) -> list[str]:
    """``fit`` arguments of the fine-tune from the stage-1 checkpoint ``init``,
    on every DIBCO year but ``hold_out``. Its synthetic pages favour the kinds stage 1
    left worst (bleed-through, salt-and-pepper), and more of its patches sit on false
    ink (0.3 against 0.2): v7. ``extra`` flags go last, and ``fit``'s parser takes the
    last of a repeated flag, so a candidate recipe (``dibco_folds.py --stage2-args``)
    is this one with those flags changed."""
    if hold_out is not None and hold_out not in DIBCO_YEARS:
        raise ValueError(f"hold_out must be one of {DIBCO_YEARS}, not {hold_out!r}")
    years = [y for y in DIBCO_YEARS if y != hold_out]
    return [*_MODEL, "--init", str(init),
            "--kind-weights", "bleed_through=8,salt_pepper=3", "--damage-fraction", "0.3",
            "--synthetic-patches", "60000", "--real-patches", "120000",
            "--pairs", str(data / "noisyoffice" / "train"),
            *(str(data / "dibco" / y) for y in years),
            "--epochs", "6", "--learning-rate", "0.0005", *extra]
