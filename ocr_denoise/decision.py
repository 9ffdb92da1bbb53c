"""What the pipeline decides for a page, as values: the ``Plan`` and the ``PageRecord``.

The page pipeline (``ocr_denoise.pipeline``) first decides, from cheap
measurements of the page, what it will do: at what scale the page comes out
and whether the model runs, and why (``Plan``). The stages after that carry
the plan out. One check follows the model (``guard.after``): it may still hand
back the page as it came. The ``PageRecord`` is the plan plus that check's
conclusion: what happened to the page, and why, in words and as a stable
rule name a program can count (``RULES``).

Callers read records from ``denoise_page(img, explain=True)``,
``Denoiser.denoise(img, explain=True)``, ``FileResult.decisions`` and the
command line's ``--report`` file (docs/cli.md has its JSON schema). Nothing
here measures or runs anything.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

#: What happened to a page: the model's output was kept (``denoised``), the page
#: came out as it came in, as 8-bit grey (``left``), it was enlarged and then
#: left (``enlarged``) or enlarged and denoised (``enlarged+denoised``).
Action = Literal["denoised", "left", "enlarged", "enlarged+denoised"]
ACTIONS: tuple[Action, ...] = ("denoised", "left", "enlarged", "enlarged+denoised")

#: Every ``rule`` a record can name, with what it means. The guard's rules come
#: from ``ocr_denoise.guard``; ``guard-off`` is ``guard=False``.
RULES: Mapping[str, str] = {
    "guard-off": "the guard is off: the model runs on every page",
    "smooth": "a very smooth (blurred) page: the model sharpens nothing",
    "enlarged": "small print enlarged, sent to the model (guard.ENLARGED)",
    "noise": "noise on the paper the model removes",
    "fine-noise": "fine noise (grain, sensor noise) on the paper",
    "stain": "discoloured paper (stains, shadows)",
    "faint-blurred": "faint, blurred print: the model erases its letters",
    "grey": "grey damage away from the ink (bleed-through, crumples)",
    "faint": "faint ink the model restores",
    "no-damage": "none of the damage the model removes",
    "light": "grainy paper, not noisy: sent to the light model (Denoiser(light=...))",
    "light-no": "not for the light model (its reason is added to the guard's)",
    "noisy": "a very noisy page: the model's output is kept",
    "small-text": "text smaller than the model learnt",
    "text-size": "text the size the model learnt",
    "no-text-rule": "no check after the model",
}


@dataclass(frozen=True)
class Plan:
    """What the pipeline will do with a page, decided before any of the work.

    ``scale``: the output is ``scale`` times the page (1: its own size;
    ``upscale``). ``model``: whether the model runs. ``rule`` / ``reason``: why,
    as a ``RULES`` name and in words with the measured values.
    ``measurements``: the guard's measurements of the page (``guard.PageStats``
    as a name -> float mapping; empty with the guard off). ``light``: the
    model that runs is the ``Denoiser``'s light model (``Denoiser(light=...)``,
    rule ``light``: grainy paper the guard sends there first), not its own; no
    check follows it.
    """

    scale: int
    model: bool
    rule: str
    reason: str
    measurements: Mapping[str, float] = field(default_factory=dict)
    light: bool = False


@dataclass(frozen=True)
class PageRecord:
    """What happened to one page, and why: the ``Plan`` and the after-check.

    ``action``: one of ``ACTIONS``. ``scale``: the output's size over the
    page's (1 unless enlarged). ``rule`` / ``reason``: the decision that
    settled it (the plan's, or the after-check's when that one handed the page
    back); ``stage``: ``"before"`` (the check before the model decided) or
    ``"after"`` (the model ran, then the check after it refused its output).
    ``guard``: the rule set's name (``guard.NAME``), None with the guard off.
    ``measurements``: as in ``Plan``. ``seconds``: the page's time in the pipeline.
    """

    action: Action
    scale: int
    rule: str
    reason: str
    stage: Literal["before", "after"]
    guard: str | None
    measurements: Mapping[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def denoised(self) -> bool:
        """Whether the returned page is the model's output."""
        return self.action in ("denoised", "enlarged+denoised")

    def as_dict(self) -> dict[str, Any]:
        """The record as plain JSON-ready values (the ``--report`` page fields)."""
        d = dataclasses.asdict(self)
        d["measurements"] = {k: round(float(v), 6) for k, v in self.measurements.items()}
        d["seconds"] = round(self.seconds, 6)
        return d


def record(plan: Plan, *, kept: bool, guard: str | None, seconds: float,
           after: tuple[str, str] | None = None) -> PageRecord:
    """The record of a page carried out under ``plan``. ``kept``: whether the
    model's output was kept (False when the plan did not run the model, or the
    after-check refused it). ``after``: the after-check's (rule, reason), when
    it ran."""
    enlarged = plan.scale > 1
    if kept:
        action: Action = "enlarged+denoised" if enlarged else "denoised"
    else:
        action = "enlarged" if enlarged else "left"
    rule, reason = plan.rule, plan.reason
    stage: Literal["before", "after"] = "before"
    if after is not None and plan.model and not kept:
        # the after-check handed the page back: its reason decides
        (rule, reason), stage = after, "after"
    return PageRecord(action, plan.scale, rule, reason, stage, guard,
                      dict(plan.measurements), seconds)


#: How each action reads in a summary.
_WORDS: Mapping[str, str] = {"denoised": "denoised", "left": "left as they came",
                             "enlarged": "enlarged only", "enlarged+denoised":
                             "enlarged and denoised"}


def describe(records: Sequence[PageRecord]) -> str:
    """Records in a few words: one page's action and reason ("left: no damage
    the model removes (noise 0.4, ...)"), or several pages' counts by action
    ("2 denoised, 1 left as they came")."""
    if not records:
        return ""
    if len(records) == 1:
        return f"{records[0].action}: {records[0].reason}"
    return ", ".join(f"{n} {_WORDS[a]}" for a, n in count_actions(records).items())


def count_actions(records: Iterable[PageRecord]) -> dict[str, int]:
    """Pages per action, in ``ACTIONS`` order, actions with no page left out."""
    counts = Counter(r.action for r in records)
    return {a: counts[a] for a in ACTIONS if counts[a]}


def summary_lines(records: Sequence[PageRecord]) -> list[str]:
    """One line per action, with its pages counted by rule: what a run's
    summary prints ("7 left as they came: 7 no damage the model removes")."""
    lines = []
    for action, n in count_actions(records).items():
        rules = Counter(r.rule for r in records if r.action == action)
        why = ", ".join(f"{k} {RULES.get(rule, rule)}" for rule, k in rules.most_common())
        lines.append(f"  {n} {_WORDS[action]}: {why}")
    return lines
