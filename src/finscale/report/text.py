"""How the report words its numbers: intervals, differences, verdicts, the chosen row.

Shared by every section so a figure reads the same wherever it appears.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from finscale.analysis import (
    NO_DIFFERENCE,
    WORSENS,
    BaselineComparison,
    BudgetStep,
    FoldAgreement,
    HorizonResult,
    PBOSummary,
    ScalingResults,
    ScalingRow,
    SharpeView,
)
from finscale.report.figures import LOSS_DIGITS, all_finite, as_float, fmt
from finscale.units import format_budget


def fmt_interval(value: Any, low: Any, high: Any, digits: int = LOSS_DIGITS, signed=False) -> str:
    """'0.3126 [0.3080, 0.3171]'; the level is stated once per section, not per number."""
    return f"{fmt(value, digits, signed)} [{fmt(low, digits, signed)}, {fmt(high, digits, signed)}]"


def seeds_text(metric: Any, digits: int) -> str:
    """A metric's seed mean with its interval over seeds (a `MetricSummary`'s or a
    `LossSummary`'s)."""
    return fmt_interval(metric.mean, metric.seed_low, metric.seed_high, digits)


def dates_text(metric: Any, digits: int, with_mean: bool = False) -> str:
    """A metric's interval over test dates, after its mean when `with_mean`."""
    interval = f"[{fmt(metric.boot_low, digits)}, {fmt(metric.boot_high, digits)}]"
    return f"{fmt(metric.mean, digits)} {interval}" if with_mean else interval


def difference_text(diff: Any, digits: int = LOSS_DIGITS) -> str:
    """A difference with its interval (a `PairedDifference`'s or a `FoldDifference`'s)."""
    return fmt_interval(diff.difference, diff.low, diff.high, digits, signed=True)


def mean_of(values: Sequence[Any]) -> float:
    """The mean of the finite values (scaling.json stores NaN as None); NaN if none."""
    finite = [as_float(v) for v in values if all_finite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def level_note(results: ScalingResults, h: HorizonResult) -> str:
    return (
        f"Intervals are {results.confidence_level:.0%}: across {results.seeds} training "
        f"seeds (Student t of the seed mean) and over test dates (circular block bootstrap, "
        f"{h.block_days}-day blocks, {h.bootstrap_resamples} resamples)."
    )


def verdict_text(diff: Any, verdict: str | None = None) -> str:
    """'**no detectable difference**; this study could detect a change of 0.011 or larger':
    a verdict of no difference always says how large a change it could have seen."""
    verdict = verdict or diff.verdict
    return f"**{verdict}**{could_detect_text(diff)}"


def could_detect_text(diff: Any) -> str:
    """'; this study could detect a change of 0.011 or larger' after a verdict of no
    detectable difference ('' after any other verdict)."""
    if diff.verdict != NO_DIFFERENCE or not all_finite(diff.mde):
        return ""
    return f"; this study could detect a change of {fmt(diff.mde)} or larger"


def folds_text(agree: FoldAgreement | None, better: str = "lower") -> str:
    """'; lower in 4 of 5 folds (detectably in 1)', or '' without folds."""
    if not agree:
        return ""
    detectably = f", detectably in {agree.improves}" if agree.improves else ""
    worse = f", detectably worse in {agree.worsens}" if agree.worsens else ""
    return f"; {better} in {agree.lower} of {agree.folds} folds{detectably}{worse}"


def step_text(step: BudgetStep) -> str:
    return (
        f"{format_budget(step.from_budget)} -> {format_budget(step.to_budget)} "
        f"({step.from_params:,} -> {step.to_params:,} parameters): "
        f"{verdict_text(step.log_loss, step.verdict)} "
        f"(test log loss change {difference_text(step.log_loss)}"
        f"{folds_text(step.folds_agree)})"
    )


def steps_text(h: HorizonResult) -> list[str]:
    return [step_text(s) for s in h.steps] or ["one budget: no budget step to compare"]


def fit_text(h: HorizonResult) -> str:
    """'fitted alpha 0.31 [0.12, 0.52]', led by 'not identified by these runs' where the
    runs do not identify L(N), or why the fit was skipped."""
    fit = h.fit
    if fit.law is None:
        return f"fit skipped: {fit.skipped}"
    alpha = fit.law.alpha
    numbers = f"fitted alpha {fmt_interval(alpha.value, alpha.low, alpha.high)}"
    judged = h.law_identification()
    if judged is not None and not judged.identified:
        return f"not identified by these runs ({numbers})"
    return numbers


def best_row(h: HorizonResult) -> ScalingRow:
    """The transformer a user would pick: the lowest mean validation log loss of its final
    runs (picking the lowest test loss would select on the test split)."""
    return min(h.budgets, key=lambda r: (mean_of(r.val_log_loss), r.budget))


def beats_text(comparison: BaselineComparison) -> str:
    """'beats', 'does not beat' or, when its log loss is detectably higher, 'is beaten by'."""
    if comparison.beats:
        return "beats"
    return "is beaten by" if comparison.log_loss.verdict == WORSENS else "does not beat"


# A PBO at or above this share says the search's winner is indistinguishable from luck.
LUCK_PBO = 0.5


def pbo_text(pbo: PBOSummary | None) -> str:
    """'PBO 0.56 over 16 trials (luck: ...)', or why it is not known."""
    if pbo is None or pbo.value is None:
        return f"PBO n/a ({(pbo and pbo.skipped) or 'not computed'})"
    words = (
        "the in-sample best trial is no better than a random one out of sample: luck"
        if pbo.value >= LUCK_PBO
        else "the search's ranking mostly holds out of sample"
        if pbo.value < 0.2
        else "the search's ranking partly holds out of sample"
    )
    return f"PBO {fmt(pbo.value, 2)} over {pbo.trials} trials ({words})"


def is_luck(pbo: PBOSummary | None) -> bool:
    return pbo is not None and pbo.value is not None and pbo.value >= LUCK_PBO


def sharpe_text(sharpe: SharpeView | None) -> str:
    """'0.41 [-0.52, 1.33]' (annualised), or 'n/a'."""
    if sharpe is None or sharpe.value is None:
        return NA_TEXT
    low, high = sharpe.interval
    return fmt_interval(sharpe.value, low, high, 2)


NA_TEXT = "n/a"
