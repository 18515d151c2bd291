"""How the report words its numbers: intervals, differences, verdicts, the chosen row.

Shared by every section so a figure reads the same wherever it appears.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from finscale.analysis import (
    IMPROVES,
    NO_DIFFERENCE,
    NO_TREND,
    RISES,
    RISES_MEANING,
    WORSENS,
    BaselineComparison,
    BudgetStep,
    FoldAgreement,
    HorizonResult,
    PBOSummary,
    ScalingResults,
    ScalingRow,
    SharpeView,
    SizeTrend,
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


def blocks_text(h: HorizonResult) -> str:
    """'blocks of 5, 3, 40 days (one per fold, read from the data)' or '8-day blocks'."""
    lengths = h.fold_block_days or (h.block_days,)
    how = {
        "politis_white": "read from the data (Politis-White), at least the horizon",
        "config": "scale.block_days",
    }.get(h.block_rule or "", "")
    per_fold = ", one per fold" if len(lengths) > 1 else ""
    days = ", ".join(str(n) for n in lengths)
    return f"blocks of {days} days{per_fold}" + (f", {how}" if how else "")


def level_note(results: ScalingResults, h: HorizonResult) -> str:
    return (
        f"Intervals are {results.confidence_level:.0%}: across {results.seeds} training "
        f"seeds (Student t of the seed mean) and over test dates (circular block bootstrap, "
        f"{blocks_text(h)}; {h.bootstrap_resamples} resamples)."
    )


def called(diff: Any) -> str | None:
    """The verdict a claim uses: the comparison's within the study's corrected family
    where it has one, its own interval's otherwise."""
    holm = getattr(diff, "holm_verdict", None)
    return holm if holm is not None else diff.verdict


def uncorrected_text(diff: Any) -> str:
    """' (its interval alone says worsens; not after the correction for the family)'
    where the correction took a call back, '' otherwise."""
    if called(diff) == diff.verdict or diff.verdict in (None, NO_DIFFERENCE):
        return ""
    return f" (its interval alone says {diff.verdict}; not after the family's correction)"


def verdict_text(diff: Any, verdict: str | None = None) -> str:
    """'**no detectable difference**; this study could detect a change of 0.011 or larger
    with 80% power': a verdict of no difference always says how large a change it could
    have seen."""
    verdict = called(diff) if verdict is None else verdict
    return f"**{verdict}**{could_detect_text(diff)}{uncorrected_text(diff)}"


def could_detect_text(diff: Any) -> str:
    """'; this study could detect a change of 0.011 or larger with 80% power' after a
    verdict of no detectable difference ('' after any other verdict)."""
    if called(diff) != NO_DIFFERENCE or not all_finite(diff.mde):
        return ""
    return f"; this study could detect a change of {fmt(diff.mde)} or larger with 80% power"


def folds_text(agree: FoldAgreement | None, better: str = "lower") -> str:
    """'; lower in 4 of 5 folds, detectably in 1', or '' without folds; 'detectably'
    counts the folds whose call survives the family's correction where it was made."""
    if not agree:
        return ""
    improves = agree.improves if agree.holm_improves is None else agree.holm_improves
    worsens = agree.worsens if agree.holm_worsens is None else agree.holm_worsens
    detectably = f", detectably in {improves}" if improves else ""
    worse = f", detectably worse in {worsens}" if worsens else ""
    return f"; {better} in {agree.lower} of {agree.folds} folds{detectably}{worse}"


def step_text(step: BudgetStep) -> str:
    return (
        f"{format_budget(step.from_budget)} -> {format_budget(step.to_budget)} "
        f"({step.from_params:,} -> {step.to_params:,} parameters): "
        f"{verdict_text(step.log_loss)} "
        f"(test log loss change {difference_text(step.log_loss)}"
        f"{folds_text(step.folds_agree)})"
    )


def trend_text(trend: SizeTrend) -> str:
    """'**no detectable trend** (slope +0.0014 [-0.0041, +0.0071] nats per decade of
    parameters over 3 budgets); a slope steeper than 0.0080 per decade would have been
    seen with 80% power'. A rising loss is called overfitting, never scaling."""
    low, high = trend.interval
    slope = (
        f"slope {fmt_interval(trend.slope_per_decade, low, high, signed=True)} nats per "
        f"decade of parameters over {trend.n_budgets} budgets"
    )
    if trend.verdict == RISES:
        return f"**{RISES}** ({slope}): {RISES_MEANING}"
    if trend.verdict != NO_TREND:
        return f"**{trend.verdict}** ({slope})"
    return (
        f"**{NO_TREND}** ({slope}); a slope steeper than {fmt(trend.min_detectable_slope)} "
        "per decade would have been seen with 80% power"
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
    """'beats', 'does not beat' or, when its log loss is detectably higher, 'is beaten by'
    (the call within the study's corrected family where it was made)."""
    call = called(comparison.log_loss)
    return "beats" if call == IMPROVES else "is beaten by" if call == WORSENS else "does not beat"


# A PBO at or above this share says the search's winner is indistinguishable from luck.
LUCK_PBO = 0.5


def percentile_text(share: float) -> str:
    """'40th percentile' of a share in [0, 1]; 'below the 1st percentile' and 'above the
    99th percentile' at the ends, where a rounded 0th or 100th would mislead."""
    percent = round(100 * share)
    if percent < 1:
        return "below the 1st percentile"
    if percent > 99:
        return "above the 99th percentile"
    teens = 10 <= percent % 100 <= 20
    suffix = "th" if teens else {1: "st", 2: "nd", 3: "rd"}.get(percent % 10, "th")
    return f"{percent}{suffix} percentile"


def pbo_text(pbo: PBOSummary | None) -> str:
    """'PBO 0.31 over 40 trials: 40th percentile of pure-noise searches of this shape
    (5-95%: 0.14-0.83): no evidence the ranking beats chance', or why it is not known.

    Only a PBO below its null's 5% quantile says the ranking carries out of sample; a
    value below 0.5 alone does not (one noise-only search's PBO ranges widely)."""
    if pbo is None or pbo.value is None:
        return f"PBO n/a ({(pbo and pbo.skipped) or 'not computed'})"
    head = f"PBO {fmt(pbo.value, 2)} over {pbo.trials} trials"
    ref = pbo.null_reference
    if ref is None or pbo.null_quantile is None:
        return (
            f"{head} (no null reference in these results: pure noise gives 0.5 on average, "
            "but one noise-only search ranges widely, so the value alone does not say "
            "whether the ranking beats chance; rebuilding the results adds it)"
        )
    where = (
        f"{percentile_text(pbo.null_quantile)} of pure-noise searches of this shape "
        f"(5-95%: {fmt(ref.q05, 2)}-{fmt(ref.q95, 2)})"
    )
    if pbo.beats_null:
        words = "the ranking carries out of sample more often than pure noise does"
    elif pbo.value > ref.q95:
        words = "the in-sample best does worse out of sample than pure noise would"
    else:
        words = "no evidence the ranking beats chance"
    return f"{head}: {where}: {words}"


def is_luck(pbo: PBOSummary | None) -> bool:
    return pbo is not None and pbo.value is not None and pbo.value >= LUCK_PBO


def sharpe_text(sharpe: SharpeView | None) -> str:
    """'0.41 [-0.52, 1.33]' (annualised), or 'n/a'."""
    if sharpe is None or sharpe.value is None:
        return NA_TEXT
    low, high = sharpe.interval
    return fmt_interval(sharpe.value, low, high, 2)


NA_TEXT = "n/a"
