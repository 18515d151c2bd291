"""The report of a scaling study: its sections and figures as document blocks,
rendered to report.md and a self-contained report.html.

`finscale.scale.write_run_report` reads a run directory's records and calls
`write_report` here.
"""

from finscale.report.coord_check_figure import coord_check_figure
from finscale.report.figures import png
from finscale.report.sections import scaling_blocks, scaling_table_markdown
from finscale.report.study_files import StudyFiles
from finscale.report.text import fmt_interval
from finscale.report.write import REPORT_HTML, REPORT_MD, build_blocks, write_report

__all__ = [
    "REPORT_HTML",
    "REPORT_MD",
    "StudyFiles",
    "build_blocks",
    "coord_check_figure",
    "fmt_interval",
    "png",
    "scaling_blocks",
    "scaling_table_markdown",
    "write_report",
]
