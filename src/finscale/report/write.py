"""The report of a scaling study: report.md, a self-contained report.html and PNG figures.

The report is built once as a list of blocks (`finscale.document`) and rendered
twice, to markdown and to HTML, so the two files cannot say different things.
Everything comes from `results` (scaling.json's `ScalingResults`) and the
studies' stored records (`StudyFiles`); nothing is trained or scored here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from finscale.analysis import ScalingResults
from finscale.atomic import write_bytes_atomic, write_text_atomic
from finscale.document import (
    FIGURES_DIR,
    Block,
    Heading,
    Image,
    Paragraph,
    render_html,
    render_markdown,
)
from finscale.errors import InputError
from finscale.report.controls import null_control_blocks, planted_blocks, sensitivity_blocks
from finscale.report.horizon import horizon_blocks
from finscale.report.images import FIGURE_TEXT
from finscale.report.sections import (
    data_blocks,
    methods_blocks,
    power_blocks,
    samples_blocks,
    scaling_blocks,
    short_answer_blocks,
)
from finscale.report.study_files import StudyFiles
from finscale.report.tiers import TIERS_FIGURE, tier_blocks, tiers_text
from finscale.report.transfer_section import transfer_blocks
from finscale.units import format_budget

REPORT_MD = "report.md"
REPORT_HTML = "report.html"


def build_blocks(
    results: ScalingResults, files: Mapping[tuple[str, int], StudyFiles]
) -> list[Block]:
    """The whole report as blocks; figures are rendered to PNG bytes here. `files` holds
    the study files of every (horizon, budget) row of `results`."""
    budgets = sorted({budget for _, budget in files})
    blocks: list[Block] = [
        # A null control says so in the report's first line, before its title.
        *null_control_blocks(results),
        Heading(
            f"Scaling study {results.study}: does a bigger transformer predict "
            f"{results.target} better?",
            1,
        ),
        Paragraph(
            f"PatchTST classifiers at parameter budgets {', '.join(map(format_budget, budgets))}; "
            f"label horizons (days): {', '.join(results.horizons)}; {tiers_text(results)}; "
            f"{results.seeds} seeds per winner. Built from "
            "`scaling.json` and the run directory's records by `finscale report`."
        ),
        *planted_blocks(results),
        *short_answer_blocks(results),
        *data_blocks(results, files),
        Heading("Scaling table"),
        *scaling_blocks(results),
        *sensitivity_blocks(results),
        *samples_blocks(results, level=3),
        *power_blocks(results),
        *tier_blocks(results),
        *transfer_blocks(results),
    ]
    for horizon, h in results.horizons.items():
        by_budget = {r.budget: files[(horizon, r.budget)] for r in h.budgets}
        blocks += horizon_blocks(results, horizon, h, by_budget)
    return blocks + methods_blocks(results)


def write_report(
    run_dir: Path, results: ScalingResults, files: Mapping[tuple[str, int], StudyFiles]
) -> list[Path]:
    """Write figures/*.png, report.md and report.html into `run_dir`; returns the paths in
    the order written (figures first, so report.md never points at a missing file)."""
    run_dir = Path(run_dir)
    if not results.horizons:
        raise InputError("no scaling results to report; run `finscale scale` first", str(run_dir))
    blocks = build_blocks(results, files)
    paths = [
        write_bytes_atomic(run_dir / FIGURES_DIR / f"{b.figure_id}.png", b.png)
        for b in blocks
        if isinstance(b, Image)
    ]
    # A figure kind this run no longer draws (no cross-budget matrix, a dropped horizon)
    # must not linger next to the report as if it were current.
    drawn = set(paths)
    stale = re.compile(rf"(({'|'.join(FIGURE_TEXT)})_h\d+|{TIERS_FIGURE})\.png")
    for old in (run_dir / FIGURES_DIR).glob("*.png"):
        if old not in drawn and stale.fullmatch(old.name):
            old.unlink()
    title = next((b.text for b in blocks if isinstance(b, Heading)), "scaling study")
    paths.append(write_text_atomic(run_dir / REPORT_MD, render_markdown(blocks)))
    paths.append(write_text_atomic(run_dir / REPORT_HTML, render_html(blocks, title)))
    return paths
