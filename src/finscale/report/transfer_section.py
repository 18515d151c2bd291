"""The report's section on hyperparameter transfer: the parametrization, what each
budget's study took from the smallest's winner, what each search cost, and, beside
another run (`finscale report --compare`), the same budgets searched the other way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from finscale.analysis import (
    ComparedBudget,
    HorizonResult,
    PairedDifference,
    RunComparison,
    ScalingResults,
    ScalingRow,
    SearchCompute,
    TransferSettings,
)
from finscale.document import Alert, Block, Heading, Paragraph, Table
from finscale.hpo import TRAINING_PARAMS
from finscale.report.figures import fmt
from finscale.report.text import dates_text, difference_text, verdict_text
from finscale.units import format_budget, format_duration


def _values_text(values: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{name} {values[name]:.3g}"
        if isinstance(values[name], float)
        else f"{name} {values[name]}"
        for name in TRAINING_PARAMS
        if name in values
    )


def _settings_text(transfer: TransferSettings) -> str:
    d, layers = transfer.base_shape
    shape = ""
    if transfer.parametrization != "standard":
        shape = f" relative to the base shape d{d}/L{layers}, readout init {transfer.readout_init}"
    mode = f"`search.transfer: {transfer.mode}`"
    return f"parametrization `{transfer.parametrization}`{shape}, {mode}"


def _compute_text(compute: SearchCompute | None) -> tuple[str, str, str]:
    if not compute:
        return "—", "—", "—"
    return (
        f"{compute.trials} ({compute.trained})",
        str(compute.epochs),
        format_duration(compute.seconds),
    )


def _paired_text(paired: PairedDifference | None) -> str:
    """'+0.0043 [+0.0010, +0.0079]: worsens' (this run minus the other, paired on the
    test dates), with what it could have detected where it shows no difference."""
    if not paired:
        return "—"
    return f"{difference_text(paired)}: {verdict_text(paired)}"


def _intro_blocks(transfer: TransferSettings, comparison: RunComparison | None) -> list[Block]:
    """What transfer means, the control it is under the standard parametrization, and
    the run set beside this one."""
    blocks: list[Block] = [
        Heading("Hyperparameter transfer"),
        Paragraph(
            f"This run: {_settings_text(transfer)}. Under `smallest` the smallest budget's study "
            "searches architecture and training values; every larger budget searches its "
            "architecture only, its training values carried over from the smallest's winner "
            "(the parametrization rescales them per layer). Such budgets share their training "
            "values, so the cross-budget matrix has nothing to compare among them; a run "
            "without transfer, set beside this one, shows what a search of its own finds."
        ),
    ]
    if transfer.mode != "none" and transfer.parametrization == "standard":
        blocks.append(
            Alert(
                "Transfer under the standard parametrization is the control experiment: there "
                "the optimal learning rate moves with width and depth, so the carried-over "
                "values are not expected to stay optimal."
            )
        )
    if comparison:
        blocks.append(
            Paragraph(
                f"Set beside: run `{comparison.study}` ({comparison.run_dir}), "
                f"{_settings_text(comparison.transfer)}. Search cost: trials (trained), "
                "epochs and training time of the study; test log loss: seed mean and its "
                "test-date interval. The change to here is this run's test log loss minus the "
                "other's, paired on the shared test dates (block bootstrap of dates, each run's "
                "seeds redrawn), with its verdict."
            )
        )
    return blocks


def _row_cells(row: ScalingRow, compared: bool, there: ComparedBudget | None) -> tuple[str, ...]:
    """A budget's training values (and where they came from), its search's cost and test
    log loss, and beside it the compared run's."""
    source = row.transfer
    values = _values_text(row.params)
    if source:
        values += f" (from trial {source['from_trial']} of {source['from_study']})"
    cells = [
        format_budget(row.budget),
        values,
        *_compute_text(row.hpo_compute),
        dates_text(row.metrics["log_loss"], 4, with_mean=True),
    ]
    if compared and there:
        cells += [
            *_compute_text(there.hpo_compute),
            dates_text(there.test_log_loss, 4, with_mean=True),
            fmt(there.own_values_margin, signed=True),
            _paired_text(there.paired),
        ]
    elif compared:
        cells += ["—"] * 6
    return tuple(cells)


def _compute_blocks(h: HorizonResult, other: Mapping[Any, ComparedBudget]) -> list[Block]:
    """Every budget's search compute together, here and there."""
    here = [r.hpo_compute for r in h.budgets if r.hpo_compute]
    there = [v.hpo_compute for v in other.values() if v.hpo_compute]
    here_epochs, here_s = sum(c.epochs for c in here), sum(c.seconds for c in here)
    there_epochs, there_s = sum(c.epochs for c in there), sum(c.seconds for c in there)
    if not (there_epochs and there_s):
        return []
    return [
        Paragraph(
            f"Search compute, every budget together: {here_epochs} epochs in "
            f"{format_duration(here_s)} here, {there_epochs} in "
            f"{format_duration(there_s)} there ({here_epochs / there_epochs:.0%} "
            f"of the epochs, {here_s / there_s:.0%} of the time)."
        )
    ]


def transfer_blocks(results: ScalingResults) -> list[Block]:
    transfer, comparison = results.transfer, results.comparison
    if transfer is None or (
        transfer.mode == "none" and transfer.parametrization == "standard" and not comparison
    ):
        return []
    blocks = _intro_blocks(transfer, comparison)
    header = ["budget", "training values", "trials", "epochs", "search time", "test log loss"]
    if comparison:
        header += [
            "there: trials",
            "epochs",
            "search time",
            "test log loss",
            "own-values margin",
            "change to here, paired",
        ]
    for horizon, h in results.horizons.items():
        other = comparison.horizons.get(horizon, {}) if comparison else {}
        rows = tuple(
            _row_cells(row, bool(comparison), other.get(str(row.budget)) or other.get(row.budget))
            for row in h.budgets
        )
        blocks += [Heading(f"h={horizon}", 3), Table(tuple(header), rows, "ll" + "r" * 10)]
        if comparison and other:
            blocks += _compute_blocks(h, other)
    return blocks
