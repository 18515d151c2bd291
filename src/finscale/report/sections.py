"""The study-wide sections of the scaling report: the short answer, the data and
splits, the scaling table, samples per parameter, and the methods."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from finscale.analysis import (
    PairedDifference,
    ScalingResults,
    evaluation_seeds,
    projected_mde,
    z_sum,
)
from finscale.config import StudyConfig
from finscale.document import (
    Alert,
    Block,
    Bullets,
    Heading,
    Paragraph,
    Table,
    render_markdown,
    table_header,
)
from finscale.execution import SPLITS_ATTR
from finscale.report.controls import null_control_blocks
from finscale.report.figures import AUC_DIGITS, LOSS_DIGITS, all_finite, fmt
from finscale.report.study_files import StudyFiles
from finscale.report.text import (
    beats_text,
    best_row,
    blocks_text,
    could_detect_text,
    dates_text,
    difference_text,
    fit_text,
    fmt_interval,
    folds_text,
    is_luck,
    level_note,
    pbo_text,
    seeds_text,
    steps_text,
    trend_text,
    uncorrected_text,
)
from finscale.report.tiers import features_answer, tiers_text
from finscale.units import architecture_label, format_budget

METHODOLOGY_DOC = "docs/methodology.md"


def scaling_blocks(results: ScalingResults) -> list[Block]:
    """The scaling table and budget-step verdicts of every horizon."""
    blocks: list[Block] = []
    for horizon, h in results.horizons.items():
        rows = tuple(
            (
                r.budget_label,
                architecture_label(r.architecture),
                f"{r.param_count:,}",
                f"{r.samples_per_param:.3g}",
                seeds_text(r.metrics["log_loss"], LOSS_DIGITS),
                dates_text(r.metrics["log_loss"], LOSS_DIGITS),
                seeds_text(r.metrics["roc_auc"], AUC_DIGITS),
                dates_text(r.metrics["roc_auc"], AUC_DIGITS),
            )
            for r in h.budgets
        )
        header = table_header(
            "budget | architecture | params | samples/param | test log loss | log loss, dates | "
            "test AUC | AUC, dates"
        )
        blocks += [
            Heading(f"h={horizon}: test log loss by budget", 3),
            Paragraph(
                f"{level_note(results, h)} Architecture: d_model/layers/heads. Each metric: "
                "seed mean [seed interval], then its test-date interval."
            ),
            Table(header, rows, "llrrrrrr"),
            Bullets(tuple(steps_text(h))),
        ]
    return blocks


def scaling_table_markdown(results: ScalingResults) -> str:
    """The primary test, then the scaling table and verdicts of every horizon, as
    markdown (the CLI prints it); a null control says so first."""
    return render_markdown(
        [*null_control_blocks(results), *primary_blocks(results), *scaling_blocks(results)]
    )


def primary_blocks(results: ScalingResults) -> list[Block]:
    """The study's one primary test, stated before anything else, and the family of
    secondary comparisons that follows it."""
    primary = results.primary
    if primary is None:
        lead = (
            "**Primary test** (does test log loss fall with model size?): not made; it needs "
            "at least two distinct parameter counts."
        )
    else:
        lead = (
            f"**Primary test** (declared before any comparison: does test log loss fall with "
            f"model size? h={primary.horizon_days}, every budget, pooled over folds and "
            f"seeds): {trend_text(primary)}."
        )
    blocks: list[Block] = [Paragraph(lead)]
    family = results.family
    if family is not None and family.size:
        blocks.append(
            Paragraph(
                f"Everything else is secondary: {family.size} comparisons ("
                + "; ".join(f"{kind}: {n}" for kind, n in family.members.items())
                + f"), corrected together with Holm's method at {1 - family.level:.0%} "
                f"family-wise. {family.raw_detectable} of them exclude zero on their own "
                f"interval; {family.detectable} stay detectable after the correction, and "
                "only those are called below. Each keeps its raw interval."
            )
        )
    return blocks


def short_answer_blocks(results: ScalingResults) -> list[Block]:
    blocks: list[Block] = [
        Heading("Short answer"),
        *primary_blocks(results),
        Paragraph(
            f"All intervals in this report are {results.confidence_level:.0%} intervals. A "
            "difference is called only when its interval excludes zero and its call survives "
            "the family's correction; otherwise the verdict is **no detectable difference**."
        ),
    ]
    if results.tiers is not None:
        # The rows below are one tier's; the tiers' own answer leads so none reads as it.
        blocks.append(
            Paragraph(
                f"{features_answer(results.tiers)} Everything below in this section is tier "
                f"`{results.tier}`'s; the tiers are compared under **Features**."
            )
        )
    for horizon, h in results.horizons.items():
        best = best_row(h)
        items = []
        if h.size_trend is not None and (
            results.primary is None or h.horizon_days != results.primary.horizon_days
        ):
            items.append(f"size trend (secondary): {trend_text(h.size_trend)}")
        items += steps_text(h)
        for name, c in sorted(best.vs_baselines.items()):
            could = could_detect_text(c.log_loss)
            items.append(
                f"best transformer ({best.budget_label}, chosen on validation) vs `{name}`: "
                f"**{beats_text(c)}** it{could}{uncorrected_text(c.log_loss)} (test log loss "
                "difference "
                f"{difference_text(c.log_loss)}; negative = transformer better"
                f"{folds_text(c.folds_agree)})"
            )
        caveat = "" if h.fit.law is None else " (interval over seeds and test dates)"
        items.append(f"scaling law: {fit_text(h)}{caveat}")
        m = h.joint_fit.marginal if h.joint_fit else None
        if m is not None:
            d = m.difference
            statement = f"**{m.wording()}**" if m.calibrated else m.wording()
            items.append(
                f"data or parameters: {statement} (at the largest run, {m.factor:g}x "
                f"data minus {m.factor:g}x parameters: "
                f"{fmt_interval(d.value, d.low, d.high, signed=True)})"
            )
        items += [
            f"the search at {r.budget_label}: **its winner is indistinguishable from luck**, "
            f"{pbo_text(r.pbo)}; its validation score overstates what it will do"
            for r in h.budgets
            if is_luck(r.pbo)
        ]
        blocks += [Paragraph(f"**h={horizon}** ({horizon}-day horizon):"), Bullets(tuple(items))]
    runs = [r for h in results.horizons.values() for r in h.budgets]
    limited = sum(r.data_limited for r in runs)
    if limited:
        blocks.append(
            Alert(
                f"{limited} of {len(runs)} budget runs are in a data-limited regime (too few "
                "training samples per parameter); see **Samples per parameter** below."
            )
        )
    return blocks


def data_blocks(
    results: ScalingResults, files: Mapping[tuple[str, int], StudyFiles]
) -> list[Block]:
    d = results.config["data"]
    fractions = "/".join(f"{f:g}" for f in d["split_fractions"])
    # The threshold the labels used: the stored one, or the label mode's default.
    threshold = StudyConfig(**results.config).data.label_threshold
    label = (
        f"labels relative to the panel's equal-weight return (margin {threshold:g})"
        if results.label_mode == "relative"
        else f"label rule `{d['label_rule']}`, threshold {threshold:g} ({d['threshold_mode']})"
    )
    blocks: list[Block] = [
        Heading("Data and splits"),
        Paragraph(
            f"{_targets_text(d, results)} (source {d['source']}, "
            f"{tiers_text(results, why=False)}) from "
            f"{d['start'] or 'the first day of the data'} to "
            f"{d['end'] or 'the last day of the data'}; {label}; "
            f"{d['context_days']}-day context windows; "
            f"{_scheme_text(results, d['split'], fractions)}"
            " Split boundaries are purged by the label horizon; the test data is scored once, "
            "in final evaluation."
            + (
                ""
                if results.tiers is None
                else f" The split statistics below are tier `{results.tier}`'s; each tier's "
                "test span is under **Features**."
            )
        ),
    ]
    header = table_header("split | first date | last date | samples | positives | positive rate")
    for horizon, h in results.horizons.items():
        stats = files[(horizon, h.budgets[0].budget)].info.get(SPLITS_ATTR)
        blocks.append(Heading(f"h={horizon}", 3))
        if not stats:
            blocks.append(Paragraph("Split statistics not stored (no study.json)."))
            continue
        rows = tuple(
            (
                name,
                s["first_date"],
                s["last_date"],
                f"{s['samples']:,}",
                f"{s['positives']:,}",
                fmt(s["positive_rate"], 3),
            )
            for name, s in ((n, stats[n]) for n in ("train", "val", "test") if n in stats)
        )
        blocks.append(Table(header, rows, "lllrrr"))
    return blocks


def _targets_text(d: Mapping[str, Any], results: ScalingResults) -> str:
    """'Target `SP500`', or for a panel 'Panel of `SP500`, `NASDAQ`, ...' (of all N
    symbols of a source, under `targets: all`), its features each from its own series."""
    targets = d.get("targets") or []
    own = "each featured on its own series, with shared split dates,"
    if list(targets) == ["all"]:
        return f"Panel of {results.target}, {own}"
    if len(targets) > 1:
        return f"Panel of {', '.join(f'`{t}`' for t in targets)}, {own}"
    return f"Target `{d['target']}`"


def _scheme_text(results: ScalingResults, split: str, fractions: str) -> str:
    evaluation = results.config.get("evaluation") or {}
    if evaluation.get("scheme") != "walk_forward":
        return f"{split} split {fractions}."
    window = (
        "all history before it"
        if evaluation["window"] == "expanding"
        else f"its last {evaluation['rolling_days']} trading days"
    )
    return (
        f"walk-forward evaluation: the search sees the first {evaluation['search_fraction']:.0%} "
        f"of the samples (train, then val, by the {fractions} train:val ratio), and the rest is "
        f"tiled into {evaluation['folds']} test folds, each scored by models retrained on "
        f"{window} (see **Walk-forward folds**)."
    )


def samples_blocks(results: ScalingResults, level: int = 2) -> list[Block]:
    """Each budget's training samples per parameter (the rows' own figures) against
    `scale.min_samples_per_param`, under a heading of `level`, and the data-limited
    warnings."""
    threshold = results.config["scale"]["min_samples_per_param"]
    rows = tuple(
        (
            f"h={horizon}",
            r.budget_label,
            f"{r.param_count:,}",
            f"{r.n_train:,}",
            f"{r.samples_per_param:.3g}",
            "**data-limited**" if r.data_limited else "ok",
        )
        for horizon, h in results.horizons.items()
        for r in h.budgets
    )
    header = table_header("horizon | budget | params | training samples | samples/param | regime")
    return [
        Heading("Samples per parameter", level),
        Paragraph(
            f"Training samples per trainable parameter; below {threshold:g} a model can memorise "
            "its training split, and a flat or rising loss curve says more about the data than "
            "about model size. In this report **data-limited** means this regime only (fewer "
            f"than {threshold:g} training samples per parameter); whether more data would help "
            "more than more parameters is the joint law's question, worded apart."
        ),
        Table(header, rows, "llrrrl"),
        *(Alert(w) for w in results.warnings),
    ]


# (days factor, seeds factor) columns of the power table.
POWER_PROJECTIONS = ((2, 1), (4, 1), (1, 2), (1, 4), (4, 4))


def _power_row(name: str, diff: PairedDifference, level: float) -> tuple[str, ...]:
    if not all_finite(diff.date_spread, diff.seed_spread):
        return (
            name,
            difference_text(diff),
            fmt(diff.mde),
            *("n/a",) * len(POWER_PROJECTIONS),
        )
    projected = (
        projected_mde(diff.date_spread, diff.seed_spread, level, days_factor=k, seeds_factor=m)
        for k, m in POWER_PROJECTIONS
    )
    return (name, difference_text(diff), fmt(diff.mde), *map(fmt, projected))


def power_blocks(results: ScalingResults) -> list[Block]:
    """The minimum detectable effect of every comparison, and what more test days or
    seeds would buy."""
    level = results.confidence_level
    blocks: list[Block] = [
        Heading("Power"),
        Paragraph(
            f"The minimum detectable effect (MDE) of a comparison is the smallest true change of "
            f"test log loss it detects with 80% power at the {level:.0%} level: "
            f"{z_sum(level):.2f} times the bootstrap standard error of the paired difference. "
            "A verdict of no detectable difference says nothing about changes below it. The "
            "standard error has a test-date part, which shrinks like 1/sqrt(test days), and a "
            "training-seed part, which shrinks like 1/sqrt(seeds); the columns project the MDE "
            "for k times the test days (more history after the search, or a smaller "
            "search_fraction under walk-forward; more folds over the same days add regimes, "
            "not days) and m times the seeds."
        ),
    ]
    header = table_header(
        "comparison | difference | MDE | 2x days | 4x days | 2x seeds | 4x seeds | "
        "4x days, 4x seeds"
    )
    for horizon, h in results.horizons.items():
        rows = [
            _power_row(
                f"{format_budget(st.from_budget)} -> {format_budget(st.to_budget)}",
                st.log_loss,
                level,
            )
            for st in h.steps
        ]
        rows += [
            _power_row(f"{r.budget_label} vs `{name}`", c.log_loss, level)
            for r in h.budgets
            for name, c in sorted(r.vs_baselines.items())
        ]
        blocks += [Heading(f"h={horizon}", 3), Table(header, tuple(rows), "lrrrrrrr")]
    return blocks


def _seed_list(results: ScalingResults) -> str:
    """The evaluation seeds of `results`' config, as words: "seeds 3, 4, 5"."""
    seeds = evaluation_seeds(StudyConfig(**results.config))
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds))


def methods_blocks(results: ScalingResults) -> list[Block]:
    blocks = "; ".join(f"h={k}: {blocks_text(h)}" for k, h in results.horizons.items())
    return [
        Heading("Methods"),
        Bullets(
            (
                f"Each budget's HPO winner is retrained with {results.seeds} seeds "
                f"({_seed_list(results)}, none of them a seed its search trained with, so no "
                "run repeats the one the search selected) and scored once on the test split; "
                "the search itself sees validation only.",
                "Seed intervals: Student t of the mean over seeds. Test-date intervals: circular "
                "block bootstrap over test dates, each walk-forward fold resampled within "
                "itself with its own block length, read from its per-date losses "
                f"(Politis-White) and never shorter than the label horizon ({blocks}).",
                "Comparisons (budget steps, transformer vs baseline) are paired: every model of a "
                "horizon is scored on the same resampled dates, and each resample also redraws "
                "each model's seeds, the redraw scaled by sqrt(k/(k-1)) so that k seeds carry "
                "their whole variance. Each log-loss comparison also records a Newey-West "
                "standard error (`newey_west_spread`) as a cross-check of the bootstrap's.",
                "Primary test: the least-squares slope of test log loss against log10 of the "
                "parameter count over every budget of the first horizon, its interval from the "
                "same draws of dates and seeds.",
                "Verdict rule: a difference is called (improves, worsens, beats) only when its "
                "interval excludes zero and Holm's correction over the study's family of "
                "secondary comparisons keeps it (p-values from each comparison's bootstrap "
                "standard error); otherwise **no detectable difference**.",
                "Scaling law L(N) = E + A·N^-alpha: Huber loss of log losses, L-BFGS from a grid "
                "of starts (Hoffmann et al. 2022); its intervals come from refitting on each "
                "resample of the test dates (the comparisons' own draws) with the runs redrawn "
                "within each budget (their spread stretched by sqrt(k/(k-1)), as a bootstrap "
                "of k seeds draws only (k-1)/k of their variance), so they carry date and seed "
                "noise. Where an estimate or its interval leans on a bound of the fit (alpha at "
                "0 or 3, E toward 0, A over many decades) the report says the runs do not "
                "identify the law.",
                f"Data handling (causal features, purged splits, labels): see `{METHODOLOGY_DOC}`.",
            )
        ),
    ]
