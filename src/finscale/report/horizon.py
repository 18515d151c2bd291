"""The sections of one horizon of the scaling report: the scaling-law fit, the
baselines, calibration, cross-budget transfer and the hyperparameter search,
each followed by its figures."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from finscale.analysis import (
    CrossBudgetMatrix,
    Estimate,
    HorizonResult,
    ScalingResults,
    ScalingRow,
)
from finscale.document import Alert, Block, Heading, Paragraph, Table, table_header
from finscale.report.figures import AUC_DIGITS, LOSS_DIGITS, fmt
from finscale.report.images import horizon_figures
from finscale.report.long_short import long_short_blocks
from finscale.report.study_files import StudyFiles
from finscale.report.text import (
    NA_TEXT,
    beats_text,
    called,
    dates_text,
    difference_text,
    fmt_interval,
    pbo_text,
    sharpe_text,
)
from finscale.units import architecture_label, format_budget


def fit_blocks(results: ScalingResults, horizon: str, h: HorizonResult) -> list[Block]:
    """The L(N) fit: where the runs do not identify it, that sentence first and why, then
    its numbers (kept for whoever wants them)."""
    law = h.fit.law
    if law is None:
        return [Paragraph(f"Scaling-law fit skipped: {h.fit.skipped}.")]
    E, A, alpha = law.E, law.A, law.alpha
    blocks: list[Block] = []
    judged = h.law_identification()
    if judged is not None and not judged.identified:
        blocks.append(
            Paragraph(
                f"**The scaling law is not identified by these runs**: {judged.why}. The "
                "fitted numbers follow for reference; they do not measure how loss falls "
                "with size."
            )
        )
    blocks += [
        Paragraph(
            f"L(N) = E + A·N^-alpha fitted to {law.fit.n_points} runs: "
            f"E = {fmt_interval(E.value, E.low, E.high)}, "
            f"A = {A.value:.4g} [{A.low:.4g}, {A.high:.4g}], "
            f"fitted alpha {fmt_interval(alpha.value, alpha.low, alpha.high)} "
            f"({law.draws.level:.0%} bootstrap over runs within each budget and over the test "
            "dates of the comparisons; "
            f"{law.draws.n_converged} of {law.draws.n_resamples} resamples converged)."
        )
    ]
    if not law.fit.converged:
        blocks.append(Alert(f"h={horizon}: the full-sample scaling-law fit did not converge."))
    if results.seeds < 2:
        blocks.append(
            Alert(
                "one run per budget: the bootstrap over runs cannot vary the data, so the "
                "fit's intervals have zero width and say nothing about its uncertainty"
            )
        )
    return blocks


def baseline_blocks(h: HorizonResult) -> list[Block]:
    if not h.baselines:
        return [Paragraph("No baselines stored for this horizon.")]
    scores = tuple(
        (
            f"`{name}`",
            dates_text(b.metrics["log_loss"], LOSS_DIGITS, with_mean=True),
            dates_text(b.metrics["roc_auc"], AUC_DIGITS, with_mean=True),
        )
        for name, b in sorted(h.baselines.items())
    )
    diffs = tuple(
        (
            r.budget_label,
            f"`{name}`",
            difference_text(c.log_loss),
            difference_text(c.roc_auc, AUC_DIGITS),
            f"**{beats_text(c)}**",
        )
        for r in h.budgets
        for name, c in sorted(r.vs_baselines.items())
    )
    return [
        Paragraph(
            "Baselines on the same splits and test dates (deterministic: one run, so only the "
            "test-date interval):"
        ),
        Table(table_header("baseline | test log loss [dates] | test AUC [dates]"), scores, "lrr"),
        Paragraph(
            "Paired differences, transformer minus baseline, on the same resampled test dates "
            "(log loss: negative is better; AUC: positive is better). A transformer **beats** a "
            "baseline only when its log-loss interval lies wholly below zero."
        ),
        Table(
            table_header("budget | baseline | log loss difference | AUC difference | verdict"),
            diffs,
            "llrrl",
        ),
    ]


def folds_blocks(h: HorizonResult) -> list[Block]:
    """Walk-forward: each budget's and baseline's test log loss per fold, and each budget
    step per fold."""
    folds = h.folds
    header = (
        "model",
        *(f"fold {f.fold}: {f.test_start} - {f.test_end}" for f in folds),
        "pooled",
    )
    rows = [
        (
            f"transformer {r.budget_label}",
            *(dates_text(f.log_loss, LOSS_DIGITS, with_mean=True) for f in r.folds),
            dates_text(r.metrics["log_loss"], LOSS_DIGITS, with_mean=True),
        )
        for r in h.budgets
    ]
    rows += [
        (
            f"`{name}`",
            *(dates_text(f.log_loss, LOSS_DIGITS, with_mean=True) for f in b.folds),
            dates_text(b.metrics["log_loss"], LOSS_DIGITS, with_mean=True),
        )
        for name, b in sorted(h.baselines.items())
        if b.folds is not None
    ]
    steps = [
        (
            f"{format_budget(s.from_budget)} -> {format_budget(s.to_budget)}",
            *(f"{difference_text(f)} {called(f)}" for f in s.per_fold or ()),
            f"{difference_text(s.log_loss)} {called(s.log_loss)}",
        )
        for s in h.steps
    ]
    align = "l" + "r" * (len(folds) + 1)
    training = "; ".join(f"fold {f.fold} trains on {f.train_start} - {f.train_end}" for f in folds)
    blocks: list[Block] = [
        Paragraph(
            "The search saw only the history before the first fold. Each fold's winner is "
            "retrained with every seed on the history before the fold (early-stopped on its "
            f"last part) and scored once on the fold ({training}). Each cell: test log loss "
            "(seed mean) [test-date interval of that fold]; pooled: all folds' test dates "
            "together, resampled in blocks that never cross a fold boundary."
        ),
        Table(header, tuple(rows), align),
    ]
    if steps:
        blocks += [
            Paragraph("Budget steps on each fold (test log loss change [interval], verdict):"),
            Table(("step", *header[1:]), tuple(steps), align),
        ]
    return blocks


def symbols_blocks(h: HorizonResult) -> list[Block]:
    """A panel's test log loss per symbol, for every budget and baseline."""
    symbols = h.symbols
    header = ("model", *(f"`{s.symbol}` ({s.n_test:,} test samples)" for s in symbols))
    rows = [
        (
            f"transformer {format_budget(entry.budget)}",
            *(dates_text(s.budgets[k].log_loss, LOSS_DIGITS, with_mean=True) for s in symbols),
        )
        for k, entry in enumerate(symbols[0].budgets)
    ]
    rows += [
        (
            f"`{name}`",
            *(dates_text(s.baselines[name], LOSS_DIGITS, with_mean=True) for s in symbols),
        )
        for name in sorted(symbols[0].baselines)
    ]
    return [
        Paragraph(
            "The panel's test log loss on each symbol's own test samples (seed mean "
            "[interval over that symbol's resampled dates]); the pooled figures above resample "
            "dates with every symbol of a date together, so the symbols' correlation never "
            "narrows an interval."
        ),
        Table(header, tuple(rows), "l" + "r" * len(symbols)),
    ]


def calibration_blocks(h: HorizonResult) -> list[Block]:
    rows = []
    for r in h.budgets:
        cal = r.calibration
        for name, entry in cal.methods.items():
            test, cv = entry.test, entry.val_cv
            rows.append(
                (
                    r.budget_label,
                    name + " (chosen)" * (name == cal.best),
                    fmt(cv.log_loss if cv else None),
                    fmt(test.log_loss),
                    fmt(test.brier),
                    fmt(test.ece),
                )
            )
    header = table_header(
        "budget | method | val log loss (cross-fitted) | test log loss | test Brier | test ECE"
    )
    skipped = [
        Alert(f"budget {r.budget_label}: {r.calibration.skipped}")
        for r in h.budgets
        if r.calibration.skipped
    ]
    return [
        Paragraph(
            "Each method is fitted on each seed's validation predictions and scored on its test "
            "predictions (means over seeds). The method is **chosen on validation** log loss, "
            "cross-fitted over blocks of days, never on test; the test columns are only scores."
        ),
        *skipped,
        Table(header, tuple(rows), "llrrrr"),
    ]


def cross_budget_blocks(cross: CrossBudgetMatrix | None) -> list[Block]:
    if cross is None:
        return [Paragraph("No cross-budget matrix for this horizon.")]
    labels = [format_budget(b) for b in cross.budgets]
    rows = [
        (f"values of {labels[i]}", *map(fmt, values)) for i, values in enumerate(cross.val_log_loss)
    ]
    rows.append(("own-values margin", *(fmt(v, signed=True) for v in cross.own_values_margin)))
    return [
        Paragraph(
            "Validation log loss of each budget's winning architecture (columns) trained with "
            f"the winning training values of each budget (rows), seed {cross.seed}; the "
            "diagonal is the winner itself, its final-evaluation run of that seed. Margin: best "
            "off-diagonal cell minus the diagonal (positive: the budget's own values are the "
            "best of those tried)."
        ),
        Table(
            ("", *(f"architecture of {x}" for x in labels)), tuple(rows), "l" + "r" * len(labels)
        ),
    ]


def _budget_table(
    h: HorizonResult, header: str, align: str, cells: Callable[[ScalingRow], tuple[str, ...]]
) -> Table:
    """A table of one row per budget: its label, then `cells` of its row."""
    rows = tuple((r.budget_label, *cells(r)) for r in h.budgets)
    return Table(table_header(header), rows, align)


def hpo_blocks(h: HorizonResult, files: Mapping[int, StudyFiles]) -> list[Block]:
    def cells(r: ScalingRow) -> tuple[str, ...]:
        trials = files[r.budget].trials
        counts = [sum(t["state"] == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL")]
        duplicates = sum(t.get("duplicate_of") is not None for t in trials)
        values = ", ".join(
            f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in sorted(r.params.items())
        )
        return (
            f"`{r.study}`",
            *map(str, (len(trials), *counts, duplicates)),
            str(r.hpo_trial),
            fmt(r.hpo_val_log_loss),
            f"{architecture_label(r.architecture)}, d_ff {r.architecture['d_ff']}",
            values,
        )

    header = (
        "budget | study | trials | complete | pruned | failed | duplicates | best trial | "
        "best val log loss | architecture | training values"
    )
    note = (
        "Duplicates are complete trials whose configuration was within the duplicate tolerance "
        "of an earlier one: they reused its value instead of training again."
    )
    return [_budget_table(h, header, "llrrrrrrrll", cells), Paragraph(note)]


def _pbo_cells(r: ScalingRow) -> tuple[str, ...]:
    pbo = r.pbo
    if pbo is None or pbo.value is None:
        trials, blocks = (pbo.trials, pbo.blocks) if pbo else (0, "")
        return (str(trials), str(blocks), "", "n/a", "", "", fmt(None), fmt(None), pbo_text(pbo))
    ref = pbo.null_reference
    return (
        str(pbo.trials),
        str(pbo.blocks),
        f"{pbo.combinations:,}",
        fmt(pbo.value, 2),
        "n/a" if ref is None else f"{fmt(ref.q05, 2)} / {fmt(ref.q50, 2)} / {fmt(ref.q95, 2)}",
        "n/a" if pbo.null_quantile is None else fmt(pbo.null_quantile, 2),
        fmt(pbo.logit_quartiles[1], 2),
        fmt(pbo.degradation_slope, 2),
        pbo_text(pbo),
    )


def overfitting_blocks(h: HorizonResult) -> list[Block]:
    """Each study's probability of backtest overfitting (CSCV over its trials), set
    against its distribution under the null."""
    references = [r.pbo.null_reference for r in h.budgets if r.pbo and r.pbo.null_reference]
    count = f"{max(ref.simulations for ref in references):,} " if references else ""
    header = (
        "budget | trials | blocks | splits | PBO | null 5% / 50% / 95% | null quantile | "
        "median logit | degradation slope | reading"
    )
    return [
        Paragraph(
            "Probability of backtest overfitting (Bailey, Borwein, Lopez de Prado and Zhu 2015) "
            "by combinatorially symmetric cross-validation: each study's validation dates are "
            "cut into contiguous blocks; for every way to take half of them as in-sample, the "
            "trial with the lowest in-sample log loss is ranked among all trials on the other "
            "half. PBO is the share of splits where it ranks below the median. One search's "
            "PBO is noisy: pure noise gives 0.5 on average, but a single noise-only search "
            "ranges widely, so a value below 0.5 alone says nothing. Each PBO is therefore set "
            f"against its null reference: the PBOs of {count}simulated searches of the same "
            "shape (trials, dates, blocks) in which no trial is better than another "
            "(independent noise per trial and date; a loss shared by every trial on a date "
            "changes no ranking, so it needs no simulating). The null quantile is where the "
            "study's PBO falls among them. Only below the null's 5% quantile does the ranking "
            "carry out of sample more often than pure noise does (a 5% test); trials that "
            "resemble each other in clusters, which this null does not model, widen the spread "
            "of a real search's PBO. The degradation slope regresses the winner's "
            "out-of-sample loss on its in-sample loss (near zero or negative: in-sample success "
            "says nothing out of sample). Complete, trained trials only; duplicates reused a "
            "value and are left out."
        ),
        _budget_table(h, header, "lrrrrrrrrl", _pbo_cells),
    ]


def _economic_cells(r: ScalingRow) -> tuple[str, ...]:
    sharpe, dsr, psr = r.sharpe, r.dsr, r.psr
    known_psr = psr is not None and psr.value is not None
    known_dsr = dsr is not None and dsr.value is not None
    return (
        sharpe_text(sharpe),
        fmt(sharpe.annual_return if sharpe else None, 3),
        fmt(sharpe.annual_volatility if sharpe else None, 3),
        fmt(psr.value, 2) if known_psr else NA_TEXT,
        fmt_interval(psr.annualised_sharpe, *psr.annualised_interval, 2) if known_psr else NA_TEXT,
        fmt(dsr.annualised_sharpe, 2) if known_dsr else NA_TEXT,
        str(dsr.trials if dsr else 0),
        fmt(dsr.annualised_benchmark_sharpe if dsr else None, 2),
        fmt(dsr.value, 2) if known_dsr else NA_TEXT,
    )


def economic_blocks(h: HorizonResult) -> list[Block]:
    """The long/flat illustration of each budget's winner: its test Sharpe ratio with its
    PSR against zero, and the Deflated Sharpe Ratio of its validation Sharpe ratio."""
    costs = [r.sharpe.cost_bps for r in h.budgets if r.sharpe and r.sharpe.cost_bps is not None]
    header = (
        "budget | test Sharpe (annualised) | annual return | annual volatility | "
        "PSR (test Sharpe > 0) | test Sharpe, asymptotic interval | winner's validation "
        "Sharpe (annualised) | trials | SR_0 (annualised) | DSR"
    )
    cost_words = f"{costs[-1]:g} bp" if costs else "the configured cost"
    return [
        Alert(
            "An illustration of what the probabilities are worth, not a trading system: one "
            "target, no capacity, financing or slippage model, one cost figure."
        ),
        Paragraph(
            "Long/flat signal: long when the predicted probability exceeds a threshold chosen "
            "on each run's validation dates, held over the label horizon in overlapping "
            f"tranches, net of {cost_words} per unit of position change; the seeds share the "
            "capital equally. Two questions, two figures. Is the test Sharpe ratio above "
            "zero? Nothing was selected on the test dates, so the probabilistic Sharpe ratio "
            "(PSR, Bailey and Lopez de Prado 2012) answers it: the probability that the true "
            "Sharpe ratio exceeds zero, from the skew- and kurtosis-adjusted standard error of "
            "the test Sharpe ratio; its interval comes from the same standard error (the "
            "first column's interval is over the block-bootstrap draws of test dates, which "
            "also allow for dependence between days). Was the selected validation edge "
            "luck? The search picked its winner among its trials on the validation dates, so "
            "the Deflated Sharpe Ratio (DSR, Bailey and Lopez de Prado 2014) takes the "
            "winner's Sharpe ratio there (its stored validation predictions, at the threshold "
            "best there) and gives the probability that its true Sharpe ratio exceeds SR_0, "
            "the best expected of as many unskilled trials as the study ran given the spread "
            "of all its trials' validation Sharpe ratios, centred on what choosing a "
            "threshold on the same dates gives without skill. The search crowns by log loss, "
            "not by Sharpe ratio, so the DSR is a conservative test of its winner. A PSR or "
            "DSR of 0.95 or more is the 5% one-sided call; below it the figure is not "
            "distinguishable from zero (PSR) or from the luck of the search (DSR)."
        ),
        _budget_table(h, header, "lrrrrrrrrr", _economic_cells),
    ]


def joint_law_blocks(h: HorizonResult) -> list[Block]:
    """The L(N, D) fit, its table and the marginal value of each resource."""
    joint = h.joint_fit
    if joint is None:
        return [Paragraph("No joint law for this horizon (no data-scaling runs stored).")]
    law, m = joint.law, joint.marginal
    if law is None or m is None:
        return [
            Paragraph(
                f"Joint law L(N, D) skipped: {joint.skipped}. The L(N) fit above stands; "
                "`scale.data_fractions` (e.g. [0.25, 0.5, 1.0]) retrains every winner on "
                "the most recent part of its training data to measure D."
            )
        ]
    estimates = {name: getattr(law, name) for name in ("E", "A", "alpha", "B", "beta")}
    rows = tuple(
        (name, f"{e.value:.4g}", f"[{e.low:.4g}, {e.high:.4g}]") for name, e in estimates.items()
    )

    def change(entry: Estimate) -> str:
        return fmt_interval(entry.value, entry.low, entry.high, signed=True)

    lead: list[Block] = []
    if joint.identified is False:
        lead.append(
            Paragraph(
                f"**The joint law is not identified by these runs**: {joint.why}. Its numbers "
                "and the marginal values follow for reference."
            )
        )
    return [
        *lead,
        Paragraph(
            f"L(N, D) = E + A·N^-alpha + B·D^-beta fitted to {law.fit.n_points} runs "
            "(every seed at every budget and data fraction; D = training samples), Huber loss "
            "of log residuals from a grid of starts (Besiroglu et al. 2024's replication of "
            f"Hoffmann et al. 2022); {law.draws.level:.0%} intervals over the runs within each "
            "(N, D) cell and the comparisons' test-date draws "
            f"({law.draws.n_converged} of {law.draws.n_resamples} resamples converged)."
        ),
        Table(table_header("parameter | estimate | interval"), rows, "lrr"),
        Paragraph(
            f"Marginal value at the largest run (N = {m.n_params:,.0f}, D = "
            f"{m.n_samples:,.0f}): predicted change of test log loss for "
            f"{m.factor:g}x parameters {change(m.params)}, for {m.factor:g}x data "
            f"{change(m.data)}; data minus parameters {change(m.difference)}: "
            + (f"**{m.wording()}**." if m.calibrated else f"{m.wording()}.")
        ),
    ]


def horizon_blocks(
    results: ScalingResults, horizon: str, h: HorizonResult, files: Mapping[int, StudyFiles]
) -> list[Block]:
    """Fit, baselines, calibration, cross-budget and HPO of one horizon, with its figures;
    `files` holds each budget's study files."""
    figures = horizon_figures(horizon, h, files)
    return [
        Heading(f"Horizon h={horizon}"),
        Heading("Scaling-law fit", 3),
        *fit_blocks(results, horizon, h),
        figures["scaling"],
        *(
            [Heading("Joint law: parameters and data", 3), *joint_law_blocks(h)]
            + ([figures["joint_law"]] if "joint_law" in figures else [])
            if h.joint_fit
            else []
        ),
        Heading("Baselines", 3),
        *baseline_blocks(h),
        figures["baselines"],
        *(
            [Heading("Walk-forward folds", 3), *folds_blocks(h), figures["folds"]]
            if h.folds
            else []
        ),
        *([Heading("Per symbol", 3), *symbols_blocks(h)] if h.symbols else []),
        Heading("Calibration", 3),
        *calibration_blocks(h),
        figures["reliability"],
        Heading("Cross-budget transfer", 3),
        *cross_budget_blocks(h.cross_budget),
        *([figures["cross_budget"]] if "cross_budget" in figures else []),
        Heading("Hyperparameter search", 3),
        *hpo_blocks(h, files),
        figures["hpo"],
        figures["architecture"],
        figures["learning_curves"],
        Heading("Overfitting of the search", 3),
        *overfitting_blocks(h),
        figures["pbo"],
        Heading("Economic illustration (not a trading system)", 3),
        *(long_short_blocks(h) or economic_blocks(h)),
    ]
