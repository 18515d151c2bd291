"""A tiny study for the HPO tests: six architectures of under 11K parameters on the
bundled S&P 500 from 2012, trained for a few epochs (well under a second per trial)."""

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from finscale.config import load_study_config
from finscale.execution.storage import open_storage
from finscale.hpo.spec import JOURNAL_FILE, StudySpec

TINY_BUDGET = 8000
# The same settings as `--set` flags, for the CLI tests.
TINY_SETS = {
    "data.start": "2012-01-01",
    "model.d_models": [8, 16],
    "model.n_layers": [1, 2],
    "model.n_heads": [2, 4],
    "model.budget_tolerance": 0.5,
    "train.max_epochs": 3,
    "train.patience": 3,
    "train.effective_batch": 256,
    "search.trials": 8,
    "search.n_startup_trials": 4,
    "search.pruner": "none",
}


def set_flags(base: dict | None = None, **overrides) -> list[str]:
    """`--set` flags of `base` (default: TINY_SETS) updated by `overrides`."""
    flags = []
    for key, value in {**(TINY_SETS if base is None else base), **overrides}.items():
        text = "[" + ",".join(map(str, value)) + "]" if isinstance(value, list) else str(value)
        flags += ["--set", f"{key}={text}"]
    return flags


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory) -> Path:
    """One data store for every HPO test: the dataset is built once."""
    return tmp_path_factory.mktemp("store")


@pytest.fixture
def make_spec(tmp_path, store_dir):
    def make(run_dir: Path | None = None, budget: int = TINY_BUDGET, **overrides) -> StudySpec:
        config = load_study_config(overrides={**TINY_SETS, **overrides})
        run_dir = run_dir or tmp_path / "run"
        return StudySpec(
            config=config,
            budget=budget,
            study_name="tiny",
            run_dir=run_dir,
            storage=str(run_dir / JOURNAL_FILE),
            store_dir=store_dir,
        )

    return make


def load(spec):
    """The spec's study, read afresh from its storage."""
    return optuna.load_study(study_name=spec.study_name, storage=open_storage(spec.storage))


def finished(study):
    return [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
