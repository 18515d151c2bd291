"""What the report says of the study's controls and of its sensitivity.

- A null control (`data.null_control` shuffle or random_walk) says so in the report's
  first line, and in the CLI's summary before anything else: nothing there can be
  learned, so every call should be null.
- A planted-scaling control (labels drawn from known probabilities) says so near
  the top, with each budget's test log loss beside the Bayes log loss and the
  law's E set against it.
- Every report says what the study could see: the primary test's minimum
  detectable slope beside the slope the `control` preset measured (a shipped
  reference figure), and whether the study is data-limited.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from finscale.analysis import HorizonResult, ScalingResults
from finscale.config import ControlReference, control_reference
from finscale.document import Alert, Block, Heading, Paragraph, Table, table_header
from finscale.report.figures import LOSS_DIGITS, all_finite, fmt
from finscale.report.text import dates_text, fmt_interval, seeds_text
from finscale.units import format_budget

# What each null control did to the data, in words.
NULL_CONTROL_WHAT = {
    "shuffle": (
        "the labels are permuted in blocks of days within each split and test fold, so "
        "each keeps its base rate and loses any link to the features"
    ),
    "random_walk": (
        "the target's prices are a driftless random walk at the series' volatility, so no "
        "feature carries anything about the next move"
    ),
}
# What a null control must show: the calls that should all be null.
NULL_CALLS = (
    "no budget step an improvement, no win over the base rate, no alpha interval above 0, "
    "no significant DSR"
)


def null_control_line(results: ScalingResults) -> str | None:
    """'**Null control (shuffle)**: ...; nothing here can be learned; every call below
    should be null (...)', or None for a study on real labels."""
    kind = results.null_control
    if kind == "none":
        return None
    what = NULL_CONTROL_WHAT.get(kind, "the data carries no learnable signal")
    return (
        f"**Null control ({kind})**: {what}; nothing here can be learned; every call below "
        f"should be null ({NULL_CALLS}). Any of those made here is a false call of the "
        "machinery, not a finding. A bigger model detectably worse is not one: on noise it "
        "fits the noise (overfitting, never scaling)."
    )


def null_control_blocks(results: ScalingResults) -> list[Block]:
    """The null control's line, to stand first in the report and the CLI's summary."""
    line = null_control_line(results)
    return [] if line is None else [Paragraph(line)]


def _planted_text(results: ScalingResults) -> str:
    d = results.config.get("data") or {}
    s = d.get("synthetic") or {}
    market = ""
    if s:
        market = (
            f" ({s.get('symbols')} series of {s.get('days')} days, seed {s.get('seed')}; "
            f"a teacher of width {s.get('teacher_width')} reading the last "
            f"{s.get('teacher_days')} days of each window, signal {s.get('signal')})"
        )
    return (
        "**Planted-scaling control**: a synthetic market whose labels are drawn from known "
        f"probabilities, a fixed teacher network's p of each window{market}. The Bayes log "
        "loss, the mean binary entropy of p over the scored test rows, is the least any "
        "model can reach in expectation. The study should find what was planted: test loss "
        "falling with model size toward the Bayes loss, and no budget below it beyond its "
        "interval (that could only be a leak or a bug)."
    )


def e_against_bayes_text(h: HorizonResult) -> str:
    """The law's E set beside the horizon's Bayes log loss (scaling.json's
    `bayes_check`), in words."""
    bayes = fmt(h.bayes_log_loss)
    check = h.bayes_check
    if check is None or check.E is None:
        why = f" ({h.fit.skipped})" if h.fit.skipped else ""
        return f"No law fitted{why}: no E to set beside the Bayes log loss {bayes}."
    E = check.E
    head = (
        f"The law's E (its loss at unlimited size) {fmt_interval(E.value, E.low, E.high)} "
        f"against the Bayes log loss {bayes}: "
    )
    if check.E_covers_bayes is None:
        where = "E's interval is not known"
    elif check.E_covers_bayes:
        where = "the Bayes loss lies inside E's interval"
    elif E.low > h.bayes_log_loss:
        where = (
            "E's interval lies above the Bayes loss: the law levels off short of the planted "
            "floor at these sizes"
        )
    else:
        where = (
            "E's interval lies below the Bayes loss: the law extrapolates below what any "
            "model can reach (a misfit, or a leak)"
        )
    judged = h.law_identification()
    unidentified = judged is not None and not judged.identified
    caveat = " (the law is not identified by these runs)" if unidentified else ""
    return f"{head}{where}{caveat}."


def planted_blocks(results: ScalingResults) -> list[Block]:
    """Near the top of a planted study's report: what was planted, each budget's test
    log loss beside the Bayes log loss, the law's E against it, and an alert for any
    budget better than Bayes beyond its interval. None for market data."""
    planted = {k: h for k, h in results.horizons.items() if h.bayes_log_loss is not None}
    if not planted:
        return []
    blocks: list[Block] = [Heading("Planted-scaling control"), Paragraph(_planted_text(results))]
    header = table_header(
        "budget | params | test log loss | log loss, dates | Bayes log loss | above Bayes"
    )
    for horizon, h in planted.items():
        bayes = h.bayes_log_loss
        rows = tuple(
            (
                r.budget_label,
                f"{r.param_count:,}",
                seeds_text(r.metrics["log_loss"], LOSS_DIGITS),
                dates_text(r.metrics["log_loss"], LOSS_DIGITS),
                fmt(bayes),
                fmt(_minus(r.metrics["log_loss"].mean, bayes), signed=True),
            )
            for r in h.budgets
        )
        blocks += [
            Heading(f"h={horizon}: test log loss against the Bayes log loss", 3),
            Table(header, rows, "lrrrrr"),
            Paragraph(e_against_bayes_text(h)),
        ]
        below = h.bayes_check.below_bayes if h.bayes_check is not None else ()
        if below:
            names = ", ".join(format_budget(b) for b in below)
            blocks.append(
                Alert(
                    f"h={horizon}: budget {names} scores below the Bayes log loss beyond its "
                    "intervals: better than any model can be, so a leak or a bug, not a result"
                )
            )
    return blocks


def _minus(value: Any, other: float) -> float:
    return float(value) - other if all_finite(value) else math.nan


# ---------------------------------------------------------------- what the study could see


def reference_text(reference: ControlReference | None, detectable: float | None) -> str:
    """The `control` preset's measured slope (a shipped reference figure) against this
    study's minimum detectable slope `detectable` (nats per decade; None: no primary)."""
    if reference is None:
        return (
            "The control preset's measured slope, a shipped reference figure: no reference "
            "(its file, control_reference.json beside the presets, is missing or unreadable)."
        )
    low, high = reference.interval
    slope = fmt_interval(reference.slope_per_decade, low, high, signed=True)
    text = (
        f"The control preset's measured slope, a shipped reference figure: {slope} nats per "
        f"decade of parameters (`{reference.command}`; measured: {reference.measured}), the "
        "planted effect this machinery finds on a market built to scale."
    )
    if detectable is None or not all_finite(detectable):
        return text
    size = abs(reference.slope_per_decade)
    if size >= detectable:
        return (
            f"{text} An effect that size lies above this study's minimum detectable slope: "
            "this study would have seen it."
        )
    return (
        f"{text} An effect that size lies below this study's minimum detectable slope "
        f"({detectable / size:.1f} times smaller): this study could have missed it, and its "
        "verdict does not rule it out."
    )


def data_limited_text(results: ScalingResults) -> str:
    """One line: whether the study is data-limited, and why (its fewest training samples
    per parameter against the threshold `scale.min_samples_per_param`)."""
    threshold = (results.config.get("scale") or {}).get("min_samples_per_param")
    runs = [(horizon, r) for horizon, h in results.horizons.items() for r in h.budgets]
    if not runs:
        return "No budget runs: nothing to judge."
    horizon, fewest = min(runs, key=lambda hr: hr[1].samples_per_param)
    least = (
        f"the fewest, {fewest.samples_per_param:.3g} training samples per parameter, at "
        f"{fewest.budget_label} (h={horizon})"
    )
    limited = sum(r.data_limited for _, r in runs)
    below = f"fewer than {threshold:g}" if threshold is not None else "too few"
    if limited:
        return (
            f"**Data-limited**: {limited} of {len(runs)} budget runs have {below} training "
            f"samples per parameter ({least}): they can memorise their training split, so a "
            "flat or rising loss with size says more about the data than about model size."
        )
    at_least = f"at least {threshold:g}" if threshold is not None else "enough"
    return (
        f"Not data-limited: every budget run has {at_least} training samples per parameter "
        f"({least})."
    )


def sensitivity_blocks(results: ScalingResults, reference_path: Path | None = None) -> list[Block]:
    """'What this study could see': the primary test's minimum detectable slope beside
    the control preset's measured slope (read from `reference_path`, default the shipped
    reference file), and the one-line data-limited reason. The samples-per-parameter
    table follows it (`finscale.report.sections.samples_blocks`)."""
    reference = control_reference(reference_path)
    primary = results.primary
    if primary is None:
        lead = (
            "No primary test (it needs at least two distinct parameter counts): this study "
            "could see no slope."
        )
        detectable = None
    else:
        low, high = primary.interval
        detectable = primary.min_detectable_slope
        lead = (
            f"The primary test (h={primary.horizon_days}) would have detected a slope of test "
            f"log loss against log10 parameters steeper than {fmt(detectable)} nats per decade "
            f"with 80% power; it measured "
            f"{fmt_interval(primary.slope_per_decade, low, high, signed=True)}."
        )
    return [
        Heading("What this study could see"),
        Paragraph(lead),
        Paragraph(reference_text(reference, detectable)),
        Paragraph(data_limited_text(results)),
    ]
