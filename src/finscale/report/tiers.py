"""The report's "Features" section: does a study on more features predict better?

A study on several feature tiers (`scale.tiers`, `finscale.analysis.tiers`) compares
each tier with the next at every budget and horizon, on the test dates both have.
The section draws every tier's test log loss against budget on the dates all tiers
share, tables each comparison with its interval, MDE and verdicts, and answers the
question in one sentence no stronger than the Holm verdicts allow. A study of one
tier (`results.tiers` None) has no such section.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from finscale.analysis import (
    IMPROVES,
    TIER_FAMILY_KIND,
    WORSENS,
    LossSummary,
    ScalingResults,
    TierComparison,
    TierInfo,
    TierResults,
)
from finscale.document import Block, Heading, Image, Paragraph, Table, table_header
from finscale.report.figures import all_finite, as_float, fmt, panel_grid, png
from finscale.report.text import called, difference_text
from finscale.units import format_budget

# The figure's id and file stem (one figure, a panel per horizon).
TIERS_FIGURE = "tiers"


def tiers_text(results: ScalingResults, why: bool = True) -> str:
    """The study's tiers in words: "feature tier `a25`", or in a study of several
    tiers "feature tiers `a25`, `a50`", followed where `why` by "(model size on `a25`;
    each tier against the next under **Features**)"."""
    if results.tiers is None:
        return f"feature tier `{results.tier}`"
    names = ", ".join(f"`{t.tier}`" for t in results.tiers.tiers)
    if not why:
        return f"feature tiers {names}"
    return (
        f"feature tiers {names} (model size on `{results.tier}`; each tier against the next "
        "under **Features**)"
    )


def _names(tiers: TierResults) -> dict[str, str]:
    """Each tier as the sentence names it: "`a50` (50 features)"."""
    return {t.tier: f"`{t.tier}` ({t.n_features} features)" for t in tiers.tiers}


def _where(comparisons: Sequence[TierComparison], horizons: int) -> str:
    """The budgets of one pair's comparisons, "20K, 200K"; horizon by horizon
    ("h=1: 20K; h=5: 2M") where the study has several."""
    by_horizon: dict[int, list[int]] = {}
    for c in comparisons:
        by_horizon.setdefault(c.horizon_days, []).append(c.budget)
    return "; ".join(
        ("" if horizons == 1 else f"h={h}: ") + ", ".join(map(format_budget, budgets))
        for h, budgets in by_horizon.items()
    )


def _called_text(
    comparisons: Sequence[TierComparison], names: dict[str, str], horizons: int, word: str
) -> str:
    """The calls of `comparisons` in words, "`a50` (50 features) predicts better than
    `a25` (25 features) at 20K, 200K" for each pair of tiers, joined by '; '."""
    pairs: dict[tuple[str, str], list[TierComparison]] = {}
    for c in comparisons:
        pairs.setdefault((c.tier, c.next_tier), []).append(c)
    return "; ".join(
        f"{names[b]} predicts {word} than {names[a]} at {_where(group, horizons)}"
        for (a, b), group in pairs.items()
    )


def features_answer(tiers: TierResults) -> str:
    """One sentence that answers "did more features help?" from the comparisons'
    Holm verdicts (each one's own where the study made no correction): a tier is said
    to predict better or worse only where its call survives the family's correction,
    and every other comparison is no detectable difference, with the smallest change
    those could have seen."""
    comparisons = tiers.comparisons
    horizons = len({c.horizon_days for c in comparisons})
    names = _names(tiers)
    by_call: dict[str, list[TierComparison]] = {IMPROVES: [], WORSENS: [], "": []}
    for c in comparisons:
        call = called(c.log_loss)
        by_call[call if call in (IMPROVES, WORSENS) else ""].append(c)
    better, worse, rest = by_call[IMPROVES], by_call[WORSENS], by_call[""]
    mdes = [as_float(c.log_loss.mde) for c in rest if all_finite(c.log_loss.mde)]
    smallest = (
        f"the smallest change {'they' if len(rest) > 1 else 'it'} could detect with 80% "
        f"power was {fmt(min(mdes))} nats"
        if mdes
        else "the change it could detect is not known"
    )
    taken_back = sum(1 for c in rest if c.log_loss.verdict in (IMPROVES, WORSENS))
    back = (
        f"; {taken_back} of them exclude{'s' if taken_back == 1 else ''} zero on their own "
        "interval, not after the family's "
        "correction"
        if taken_back
        else ""
    )
    if not better and not worse:
        where = "budget" if horizons == 1 else "budget or horizon"
        return (
            f"**Did more features help?** **No detectable difference** between tiers at any "
            f"{where} after Holm correction; {smallest}{back}."
        )
    calls = [
        _called_text(group, names, horizons, word)
        for group, word in ((better, "**better**"), (worse, "**worse**"))
        if group
    ]
    # Every comparison better: yes; some, none worse: in part; worse only: no.
    leads = {(True, False): "In part" if rest else "Yes", (True, True): "Mixed"}
    lead = leads.get((bool(better), bool(worse)), "No")
    others = (
        f"; the other {len(rest)} comparison{'s show' if len(rest) > 1 else ' shows'} "
        f"**no detectable difference** ({smallest}{back})"
        if rest
        else ""
    )
    return f"**Did more features help?** {lead}: {'; '.join(calls)} (Holm-corrected){others}."


def family_text(results: ScalingResults) -> str:
    """How the tier comparisons enter the study's family, and that the primary
    hypothesis stays model size."""
    family = results.family
    primary = (
        f"The primary hypothesis stays model size: the primary test is on tier "
        f"`{results.tier}` alone, and no tier comparison enters it."
    )
    if family is None:
        return f"These results hold no family of comparisons: no Holm verdict. {primary}"
    n = family.members.get(TIER_FAMILY_KIND, 0)
    return (
        f"The {n} tier comparisons join the study's family of secondary comparisons, which "
        f"grows to {family.size}: Holm's correction of every secondary call, the budget "
        f"steps' included, is over all {family.size}. {primary}"
    )


def _shared_days_text(tiers: TierResults) -> str:
    """The days every tier shares, horizon by horizon: "h=1: 300 test days,
    2015-05-21 to 2016-07-14"."""
    parts = []
    for horizon in sorted({loss.horizon_days for loss in tiers.losses}):
        days = sorted({x.shared_test_days for x in tiers.losses if x.horizon_days == horizon})
        count = str(days[0]) if len(days) == 1 else f"{days[0]}-{days[-1]}"
        rows = [x for x in tiers.losses if x.horizon_days == horizon]
        first = min(x.first_shared_date for x in rows)
        last = max(x.last_shared_date for x in rows)
        parts.append(f"h={horizon}: {count} test days, {first} to {last}")
    return "; ".join(parts)


def tiers_figure(
    panels: Sequence[tuple[str, Sequence[int], dict[str, Sequence[LossSummary]]]],
) -> Figure:
    """Test log loss against budget (log x), one line per tier with its test-date
    interval as a band, a panel per horizon: (title, budgets, {tier: a log-loss
    summary per budget})."""
    fig, axes = panel_grid(len(panels), width=5.0, height=3.8)
    for ax, (title, budgets, by_tier) in zip(axes, panels, strict=True):
        x = np.asarray(budgets, dtype=float)
        for color, (tier, losses) in enumerate(by_tier.items()):
            mean, low, high = (
                [as_float(getattr(m, key)) for m in losses]
                for key in ("mean", "boot_low", "boot_high")
            )
            ax.fill_between(x, low, high, color=f"C{color}", alpha=0.15)
            if x.size == 1:  # a band of one budget has no width: its interval as a bar
                ax.vlines(x, low, high, color=f"C{color}", alpha=0.4, lw=6)
            ax.plot(x, mean, marker="o", color=f"C{color}", lw=2, label=tier)
        ax.set_xscale("log")
        ax.set_xticks(x, [format_budget(b) for b in budgets])
        ax.minorticks_off()  # the budgets are the only ticks that mean anything
        ax.set(xlabel="parameter budget (log scale)", ylabel="test log loss (nats)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, title="tier", title_fontsize=8)
    return fig


def _figure(tiers: TierResults) -> Image:
    order = [t.tier for t in tiers.tiers]
    panels = []
    for horizon in sorted({loss.horizon_days for loss in tiers.losses}):
        losses = sorted(
            (x for x in tiers.losses if x.horizon_days == horizon), key=lambda x: x.budget
        )
        panels.append(
            (
                f"h={horizon}: {losses[0].shared_test_days} shared test days",
                [x.budget for x in losses],
                {t: [x.log_loss[t] for x in losses] for t in order},
            )
        )
    return Image(
        TIERS_FIGURE,
        "Feature tiers: test log loss against budget, one line per tier",
        "Each tier's test log loss (seed mean; band: test-date interval) at each parameter "
        "budget, on the test days every tier shares "
        f"({_shared_days_text(tiers)}); budgets on a log axis.",
        png(tiers_figure(panels)),
    )


def _comparison_row(c: TierComparison) -> tuple[str, ...]:
    d = c.log_loss
    return (
        f"h={c.horizon_days}",
        format_budget(c.budget),
        f"{c.tier} -> {c.next_tier}",
        f"{c.shared_test_days:,}",
        f"{c.first_shared_date} to {c.last_shared_date}",
        difference_text(d),
        fmt(d.mde),
        d.verdict or "n/a",
        f"**{d.holm_verdict}**" if d.holm_verdict else "n/a",
    )


def _info_row(t: TierInfo) -> tuple[str, ...]:
    return (
        f"`{t.tier}`",
        str(t.n_features),
        f"{t.test_samples:,}",
        f"{t.train_samples:,}",
        f"{t.first_test_date} to {t.last_test_date}",
    )


def tier_blocks(results: ScalingResults) -> list[Block]:
    """The "Features" section of a study on several feature tiers; nothing for a study
    of one tier."""
    tiers = results.tiers
    if tiers is None:
        return []
    blocks: list[Block] = [
        Heading("Features"),
        Paragraph(
            f"The study runs every budget and horizon on each of "
            f"{len(tiers.tiers)} feature tiers and compares each tier with the next on the "
            "test days both have: the paired change in test log loss, next tier minus this "
            "tier (negative: the next tier predicts better), with its "
            f"{results.confidence_level:.0%} interval over resampled shared test dates and "
            "seeds, its MDE, its verdict on its own interval and its verdict after Holm's "
            "correction over the study's family. A tier whose history starts later shortens "
            "the shared span, and fewer shared days widen the interval and the MDE."
        ),
        Paragraph(features_answer(tiers)),
        Paragraph(family_text(results)),
    ]
    if tiers.losses:
        blocks.append(_figure(tiers))
    else:
        blocks.append(Paragraph("No test day is shared by every tier: no figure."))
    header = table_header(
        "horizon | budget | tiers | shared test days | shared span | change [interval] | MDE | "
        "verdict | Holm verdict"
    )
    blocks += [
        Table(header, tuple(map(_comparison_row, tiers.comparisons)), "lllrlrrll"),
        Paragraph(
            "Each tier's own test samples (pooled over folds, first horizon), the training "
            "samples of its last fold (the most history) and the span of its test dates:"
        ),
        Table(
            table_header("tier | features | test samples | training samples | test span"),
            tuple(map(_info_row, tiers.tiers)),
            "lrrrl",
        ),
    ]
    return blocks
