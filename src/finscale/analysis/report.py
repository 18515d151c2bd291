"""The report of a scaling study: report.md, a self-contained report.html and PNG figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finscale.atomic import write_text_atomic
from finscale.model.grid import format_budget


def _interval(metric: dict[str, Any], digits: int = 4) -> str:
    return (
        f"{metric['mean']:.{digits}f} (seeds {metric['seed_low']:.{digits}f} to "
        f"{metric['seed_high']:.{digits}f}; dates {metric['boot_low']:.{digits}f} to "
        f"{metric['boot_high']:.{digits}f})"
    )


def scaling_table_markdown(results: dict[str, Any]) -> str:
    """The scaling table and verdicts of every horizon, as markdown."""
    lines = []
    for horizon, h in results["horizons"].items():
        lines += [
            f"### h={horizon}: test log loss by budget",
            "",
            "| budget | architecture | params | samples/param | test log loss | test AUC |",
            "|---|---|---|---|---|---|",
        ]
        for row in h["budgets"]:
            arch = row["architecture"]
            m = row["metrics"]
            lines.append(
                f"| {row['budget_label']} | d{arch['d_model']}/L{arch['n_layers']}/"
                f"h{arch['n_heads']} | {row['param_count']:,} | {row['samples_per_param']:.3g} | "
                f"{_interval(m['log_loss'])} | {_interval(m['roc_auc'], 3)} |"
            )
        lines.append("")
        for step in h["steps"]:
            d = step["log_loss"]
            lines.append(
                f"- {format_budget(step['from_budget'])} -> {format_budget(step['to_budget'])}: "
                f"**{step['verdict']}** (log loss change {d['difference']:+.4f}, "
                f"{round(100 * results['confidence_level'])}% interval {d['low']:+.4f} to "
                f"{d['high']:+.4f})"
            )
        lines.append("")
    return "\n".join(lines)


def write_report(run_dir: Path, results: dict[str, Any]) -> list[Path]:
    return [write_text_atomic(run_dir / "report.md", scaling_table_markdown(results))]
