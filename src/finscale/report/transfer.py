"""The report's section on hyperparameter transfer: the parametrization, what each
budget's study took from the smallest's winner, what each search cost, and, beside
another run (`finscale report --compare`), the same budgets searched the other way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from finscale.document import Alert, Block, Heading, Paragraph, Table
from finscale.hpo.space import TRAINING_PARAMS
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


def _settings_text(transfer: Mapping[str, Any]) -> str:
    d, layers = transfer["base_shape"]
    shape = ""
    if transfer["parametrization"] != "standard":
        # Runs written before the readout knob had the zero readout.
        readout = transfer.get("readout_init", "zero")
        shape = f" relative to the base shape d{d}/L{layers}, readout init {readout}"

    mode = f"`search.transfer: {transfer['mode']}`"
    return f"parametrization `{transfer['parametrization']}`{shape}, {mode}"


def _compute_text(compute: Mapping[str, Any] | None) -> tuple[str, str, str]:
    if not compute:
        return "—", "—", "—"
    return (
        f"{compute['trials']} ({compute['trained']})",
        str(compute["epochs"]),
        format_duration(compute["seconds"]),
    )


def _paired_text(paired: Mapping[str, Any] | None) -> str:
    """'+0.0043 [+0.0010, +0.0079]: worsens' (this run minus the other, paired on the
    test dates), with what it could have detected where it shows no difference."""
    if not paired:
        return "—"
    return f"{difference_text(paired)}: {verdict_text(paired)}"


def transfer_blocks(results: Mapping[str, Any]) -> list[Block]:
    transfer = results.get("transfer")
    comparison = results.get("comparison")
    if transfer is None or (
        transfer["mode"] == "none" and transfer["parametrization"] == "standard" and not comparison
    ):
        return []
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
    if transfer["mode"] != "none" and transfer["parametrization"] == "standard":
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
                f"Set beside: run `{comparison['study']}` ({comparison['run_dir']}), "
                f"{_settings_text(comparison['transfer'])}. Search cost: trials (trained), "
                "epochs and training time of the study; test log loss: seed mean and its "
                "test-date interval. The change to here is this run's test log loss minus the "
                "other's, paired on the shared test dates (block bootstrap of dates, each run's "
                "seeds redrawn), with its verdict."
            )
        )
    for horizon, h in results["horizons"].items():
        other = (comparison or {}).get("horizons", {}).get(horizon, {})
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
        rows = []
        for row in h["budgets"]:
            source = row.get("transfer")
            values = _values_text(row["params"])
            if source:
                values += f" (from trial {source['from_trial']} of {source['from_study']})"
            cells = [
                format_budget(row["budget"]),
                values,
                *_compute_text(row.get("hpo_compute")),
                dates_text(row["metrics"]["log_loss"], 4, with_mean=True),
            ]
            there = other.get(str(row["budget"])) or other.get(row["budget"])
            if comparison and there:
                cells += [
                    *_compute_text(there["hpo_compute"]),
                    dates_text(there["test_log_loss"], 4, with_mean=True),
                    fmt(there["own_values_margin"], signed=True),
                    _paired_text(there.get("paired")),
                ]
            elif comparison:
                cells += ["—"] * 6
            rows.append(tuple(cells))
        blocks += [Heading(f"h={horizon}", 3), Table(tuple(header), tuple(rows), "ll" + "r" * 10)]
        if comparison and other:
            here_epochs = sum((r.get("hpo_compute") or {}).get("epochs", 0) for r in h["budgets"])
            there_epochs = sum(v["hpo_compute"]["epochs"] for v in other.values())
            here_s = sum((r.get("hpo_compute") or {}).get("seconds", 0.0) for r in h["budgets"])
            there_s = sum(v["hpo_compute"]["seconds"] for v in other.values())
            if there_epochs and there_s:
                blocks.append(
                    Paragraph(
                        f"Search compute, every budget together: {here_epochs} epochs in "
                        f"{format_duration(here_s)} here, {there_epochs} in "
                        f"{format_duration(there_s)} there ({here_epochs / there_epochs:.0%} "
                        f"of the epochs, {here_s / there_s:.0%} of the time)."
                    )
                )
    return blocks
