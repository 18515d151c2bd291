"""The summary of a study as a document: the blocks of summary.md, built from a
`summarize` result (or the summary.json it was written to) and rendered by
`finscale.document`, as the scaling report is.
"""

from __future__ import annotations

from typing import Any

from finscale.document import Block, Heading, Paragraph, Table
from finscale.document import render_markdown as render_blocks
from finscale.hpo.coverage import coverage_blocks
from finscale.hpo.space import DIMENSIONS, INTEGER_PARAMS, LOG_PARAMS, RANK_PARAMS, TRAINING_PARAMS
from finscale.units import format_budget

MISSING = "-"
# Architecture first, then training: the order a reader scans the sensitivity table in.
SENSITIVITY_ORDER = (*RANK_PARAMS, "param_count", *TRAINING_PARAMS)
COUNT_COLUMNS = ("complete", "pruned", "failed", "duplicates", "finished")
DISTRIBUTION_STATS = ("min", "q1", "median", "q3", "max", "mean", "std")
# Column titles of the trials table where they differ from the param's name.
COLUMN_TITLES = {"warmup_steps": "warmup"}


def sensitivity_rank(name: str) -> tuple[int, str]:
    known = name in SENSITIVITY_ORDER
    return (SENSITIVITY_ORDER.index(name) if known else len(SENSITIVITY_ORDER), name)


def _loss(value: Any) -> str:
    return MISSING if value is None else f"{value:.4f}"


def _sci(value: Any) -> str:
    return MISSING if value is None else f"{value:.2e}"


def _ratio(value: Any) -> str:
    return MISSING if value is None else f"{value:.3f}"


def _integer(value: Any) -> str:
    return MISSING if value is None else f"{int(value):,}"


def _seconds(value: Any) -> str:
    return MISSING if value is None else f"{value:.1f}"


def _text(value: Any) -> str:
    if value is None:
        return MISSING
    # A failure reason may hold newlines that would break the table (the renderer
    # escapes its pipes).
    return str(value).replace("\n", " ")


def _format_param(name: str, value: Any) -> str:
    """How a param's values read in a table: rates span decades, counts are integers."""
    if value is None:
        return MISSING
    if name in LOG_PARAMS:
        return _sci(value)
    if name in INTEGER_PARAMS or name == "param_count":
        return _integer(value)
    if name in TRAINING_PARAMS:
        return _ratio(value)
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def _table(header: list[str], rows: list[list[str]]) -> Table:
    """A table with every column right-aligned, as numbers read best."""
    return Table(tuple(header), tuple(tuple(row) for row in rows), align="r" * len(header))


def _numeric_order(cells: dict[str, Any]) -> list[tuple[str, Any]]:
    # A summary read back from summary.json has its keys sorted as text ("128" < "16").
    return sorted(cells.items(), key=lambda item: int(item[0]))


def _title(study: dict[str, Any]) -> Heading:
    budget = study.get("budget")
    parts = [f"budget {format_budget(budget)}" if budget is not None else None]
    if study.get("tier") is not None:
        parts.append(f"tier {study['tier']}")
    if study.get("horizon_days") is not None:
        days = study["horizon_days"]
        parts.append(f"horizon {days} day" + ("" if days == 1 else "s"))
    details = ", ".join(p for p in parts if p)
    name = study.get("name") or "(unnamed)"
    return Heading(f"Study {name}" + (f": {details}" if details else ""), level=1)


def _head(summary: dict[str, Any]) -> list[Block]:
    study, counts = summary["study"], summary["counts"]
    blocks: list[Block] = [_title(study)]
    if study.get("grid_hash"):
        blocks.append(
            Paragraph(
                f"Grid {str(study['grid_hash'])[:12]} ({_integer(study.get('grid_size'))} "
                f"architectures, excluded {study.get('excluded_archs') or 'none'}); "
                f"target {_integer(study.get('trials_target'))} finished trials."
            )
        )
    return [
        *blocks,
        Heading("Counts"),
        _table(list(COUNT_COLUMNS), [[str(counts[k]) for k in COUNT_COLUMNS]]),
    ]


def _best_section(best: dict[str, Any] | None) -> list[Block]:
    blocks: list[Block] = [Heading("Best trial")]
    if best is None:
        return [*blocks, Paragraph("No complete trial yet.")]
    arch = best.get("architecture") or {}
    forced = f", forced extreme '{best['forced_extreme']}'" if best.get("forced_extreme") else ""
    # Crowned by its finalists' re-runs: the mean is the figure, the one draw beside it.
    seeds = (
        f" (mean of {best['seeds']} seeds; its trial's own {_loss(best['trial_value'])})"
        if best.get("crowned_by") == "finalists"
        else ""
    )
    blocks.append(
        Paragraph(
            f"Trial {best['number']}: validation log loss **{_loss(best['value'])}**{seeds}, "
            f"d_model {arch.get('d_model', MISSING)}, n_layers {arch.get('n_layers', MISSING)}, "
            f"n_heads {arch.get('n_heads', MISSING)} "
            f"({_integer(arch.get('param_count'))} parameters){forced}."
        )
    )
    params = best.get("params") or {}
    training = [n for n in TRAINING_PARAMS if n in params]
    if training:
        blocks.append(
            Paragraph(", ".join(f"{n} {_format_param(n, params[n])}" for n in training) + ".")
        )
    matrix = best.get("confusion_matrix")
    if matrix:
        blocks += [
            Paragraph("Confusion matrix on validation (rows: actual, columns: predicted):"),
            _table(
                ["actual \\ predicted", "0", "1"],
                [[str(label), *(str(int(n)) for n in row)] for label, row in enumerate(matrix)],
            ),
        ]
    return [
        *blocks,
        Paragraph(
            f"Precision {_ratio(best.get('precision'))}, recall {_ratio(best.get('recall'))}, "
            f"F1 {_ratio(best.get('f1'))}, ROC AUC {_ratio(best.get('roc_auc'))}, "
            f"accuracy {_ratio(best.get('accuracy'))}; positive rate "
            f"{_ratio(best.get('positive_rate'))} of {_integer(best.get('n_samples'))} samples."
        ),
        Paragraph(
            f"Prediction range {_loss(best.get('prediction_range'))} (max - min predicted "
            "probability; near 0 means the model predicts a constant)."
        ),
    ]


def _spread_sections(summary: dict[str, Any]) -> list[Block]:
    """How the loss spreads: overall, by each dimension, and with each param."""
    dist = summary["distribution"]
    blocks: list[Block] = [
        Heading("Distribution of validation log loss"),
        Paragraph("Complete trials, duplicates left out."),
        _table(
            ["n", *DISTRIBUTION_STATS],
            [[str(dist["n"]), *(_loss(dist[k]) for k in DISTRIBUTION_STATS)]],
        ),
    ]
    for name in DIMENSIONS:
        rows = [
            [
                value,
                str(cell["complete"]),
                _loss(cell["best_value"]),
                MISSING if cell["best_trial"] is None else str(cell["best_trial"]),
                _loss(cell["mean_value"]),
                _loss(cell["median_value"]),
            ]
            for value, cell in _numeric_order(summary[f"by_{name}"])
        ]
        blocks += [
            Heading(f"By {name}"),
            _table([name, "complete", "best", "best trial", "mean", "median"], rows),
        ]
    rows = [
        [
            name,
            str(cell["n"]),
            _ratio(cell["spearman"]),
            _ratio(cell["p_value"]),
            _ratio(cell["importance"]),
        ]
        for name, cell in sorted(
            summary["sensitivity"].items(), key=lambda item: sensitivity_rank(item[0])
        )
    ]
    return [
        *blocks,
        Heading("Sensitivity"),
        Paragraph(
            "Spearman rank correlation of validation log loss with each param over complete, "
            "non-duplicate trials (positive: larger values lose more); importance from Optuna, "
            "normalised to sum 1."
        ),
        _table(["param", "n", "spearman", "p-value", "importance"], rows),
    ]


def _trials_section(trials: list[dict[str, Any]]) -> list[Block]:
    header = [
        "#",
        "state",
        "value",
        *DIMENSIONS,
        "params",
        *(COLUMN_TITLES.get(name, name) for name in TRAINING_PARAMS),
        "epochs",
        "seconds",
        "duplicate of",
        "forced",
        "failure",
    ]
    rows = [
        [
            str(row["number"]),
            row["state"] or MISSING,
            _loss(row["value"]),
            *(_text(row[name]) for name in DIMENSIONS),
            _integer(row["param_count"]),
            *(_format_param(name, row[name]) for name in TRAINING_PARAMS),
            _text(row["epochs_run"]),
            _seconds(row["duration_seconds"]),
            _text(row["duplicate_of"]),
            _text(row["forced_extreme"]),
            _text(row["failure_reason"]),
        ]
        for row in trials
    ]
    return [
        Heading("Trials"),
        Paragraph(
            "Value: validation log loss of a complete trial, the last epoch's of a pruned one."
        ),
        _table(header, rows),
    ]


def summary_blocks(summary: dict[str, Any]) -> list[Block]:
    """The document of a `summarize` result: counts, best trial, spread, coverage, trials."""
    return [
        *_head(summary),
        *_best_section(summary["best"]),
        *_spread_sections(summary),
        Heading("Coverage"),
        Paragraph("Trials per value of each dimension, by how they ended."),
        *coverage_blocks(summary["coverage"]),
        *_trials_section(summary["trials"]),
    ]


def summary_markdown(summary: dict[str, Any]) -> str:
    """summary.md: the markdown of `summary_blocks`."""
    return render_blocks(summary_blocks(summary))
