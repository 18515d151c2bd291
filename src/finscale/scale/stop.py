"""Stopping a scaling study, or one HPO study, by the STOP files its workers watch.

A scaling study's stages watch the STOP file of its run directory, and each of
its HPO studies the one of its own folder: a stop asked of the scaling study is
written to all of them, and a new run clears them all.
"""

from __future__ import annotations

from pathlib import Path

from finscale.errors import InputError
from finscale.execution import clear_stop, request_stop
from finscale.hpo import STUDY_FILE
from finscale.scale.layout import SCALE_FILE, is_scale_run_dir, study_dirs


def stop_run_dir(run_dir: Path) -> Path:
    """Ask every worker of the study in `run_dir` (a scaling study's, with all of its
    HPO studies, or a single HPO study's) to stop after its current epoch; returns the
    STOP file of `run_dir`. Raises `InputError` when `run_dir` holds neither."""
    if is_scale_run_dir(run_dir):
        for folder in study_dirs(run_dir):
            if (folder / STUDY_FILE).exists():
                request_stop(folder)
    elif not (run_dir / STUDY_FILE).exists():
        raise InputError(
            f"{run_dir} is not a study's run directory (no {STUDY_FILE} or {SCALE_FILE})",
            "RUN_DIR",
        )
    return request_stop(run_dir)


def clear_stops(run_dir: Path) -> None:
    """Remove the STOP files of a scaling study and of each of its HPO studies, so a
    new run is not stopped by the last one's request."""
    clear_stop(run_dir)
    for folder in study_dirs(run_dir):
        clear_stop(folder)
