"""Where a scaling study keeps what it made: the layout of its run directory.

    scale.json                       the config and the plan
    studies/{tier}_{budget}_h{h}/    each HPO study (journal, trial records, summary)
    evaluation/{study}/seed_{k}.json final evaluation of the study's winner
    evaluation/{study}/fold_{f}/seed_{k}.json   the same, per test fold (walk-forward)
    evaluation/{study}/data_{x}/[fold_{f}/]seed_{k}.json   trained on the most recent
                                     fraction x of the training data (scale.data_fractions)
    baselines/h{h}.json              base rate, logistic, volatility-only logistic
    baselines/h{h}/fold_{f}.json     the same, per test fold (walk-forward)
    cross_budget/h{h}/{A}_to_{B}.json
    experiment_results.csv, scaling.json, report.md, report.html, figures/

Every stored unit carries the hash of its inputs under "key": `stored` finds a
unit whose inputs have not changed, so a rerun skips it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from finscale.units import format_budget

SCALE_FILE = "scale.json"
STUDIES_DIR = "studies"
EVALUATION_DIR = "evaluation"
BASELINES_DIR = "baselines"
CROSS_BUDGET_DIR = "cross_budget"
RESULTS_CSV = "experiment_results.csv"
SCALING_JSON = "scaling.json"


def is_scale_run_dir(run_dir: Path) -> bool:
    """Whether `run_dir` holds a scaling study (rather than one HPO study)."""
    return (run_dir / SCALE_FILE).exists()


def study_dir(run_dir: Path, study: str) -> Path:
    return run_dir / STUDIES_DIR / study


def study_dirs(run_dir: Path) -> list[Path]:
    """Every folder under studies/, whether or not its study has started."""
    return sorted((run_dir / STUDIES_DIR).glob("*"))


def evaluation_path(
    run_dir: Path, study: str, seed: int, fold: int | None = None, data_fraction: float = 1.0
) -> Path:
    folder = run_dir / EVALUATION_DIR / study
    if data_fraction != 1.0:
        folder = folder / f"data_{data_fraction:g}"
    if fold is not None:
        folder = folder / f"fold_{fold}"
    return folder / f"seed_{seed}.json"


def baselines_path(run_dir: Path, horizon_days: int, fold: int | None = None) -> Path:
    if fold is None:
        return run_dir / BASELINES_DIR / f"h{horizon_days}.json"
    return run_dir / BASELINES_DIR / f"h{horizon_days}" / f"fold_{fold}.json"


def cross_budget_path(run_dir: Path, horizon_days: int, source: int, target: int) -> Path:
    name = f"{format_budget(source)}_to_{format_budget(target)}.json"
    return run_dir / CROSS_BUDGET_DIR / f"h{horizon_days}" / name


def read_json(path: Path) -> dict[str, Any] | None:
    """A stored result, or None when it is missing (or unreadable, or not a mapping:
    it is redone)."""
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


def stored(path: Path, key: str) -> dict[str, Any] | None:
    """The stored result at `path` when it was made from the inputs hashed to `key`."""
    record = read_json(path)
    return record if record is not None and record.get("key") == key else None
