"""A tiny scaling study on the bundled S&P 500 from 2012, run once per test session
through the real pipeline (HPO, final evaluation, baselines, cross-budget, results).

`tests/conftest.py` imports `tiny_scale_run`, so the scale and report tests (and any
other) share the one session's run."""

from pathlib import Path

import pytest

from finscale.config import load_study_config
from finscale.scale import Pipeline, ScaleSpec, write_scale_file

# Three budgets whose grids do not overlap, so the fit sees three parameter counts.
TINY_SCALE_SETS = {
    "data.start": "2012-01-01",
    "model.d_models": [4, 8, 16, 32],
    "model.n_layers": [1, 2],
    "model.n_heads": [2, 4],
    "model.budget_tolerance": 0.5,
    "train.max_epochs": 2,
    "train.patience": 2,
    "train.effective_batch": 256,
    "train.warmup_steps": 2,
    "search.trials": 3,
    "search.n_startup_trials": 2,
    "search.pruner": "none",
    "search.warmup_steps": [0, 4],
    "scale.budgets": "4K,16K,32K",
    "scale.seeds": 2,
    "scale.bootstrap_resamples": 200,
}


class QuietReporter:
    """Collects what the pipeline reports, for assertions."""

    def __init__(self) -> None:
        self.units: list[tuple[str, int | None, int, str, bool]] = []
        self._current: tuple[str, int | None, int, str] | None = None

    def stage(self, name: str, units: int) -> None:
        pass

    def unit(self, name: str, budget: int | None, horizon: int, detail: str) -> None:
        self._current = (name, budget, horizon, detail)

    def done(self, seconds: float, skipped: bool) -> None:
        assert self._current is not None
        self.units.append((*self._current, skipped))

    def hpo_callbacks(self, spec, prepared=None) -> dict:
        return {}


def tiny_scale_spec(run_dir: Path, store_dir: Path, **overrides) -> ScaleSpec:
    config = load_study_config(overrides={**TINY_SCALE_SETS, **overrides})
    return ScaleSpec(config=config, run_dir=run_dir, store_dir=store_dir)


def run_pipeline(spec: ScaleSpec) -> QuietReporter:
    reporter = QuietReporter()
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    write_scale_file(spec)
    pipeline = Pipeline(spec, reporter)
    pipeline.hpo()
    pipeline.evaluation()
    pipeline.baselines()
    pipeline.cross_budget()
    pipeline.tiers()
    return reporter


@pytest.fixture(scope="session")
def tiny_scale_run(tmp_path_factory) -> Path:
    """The run directory of a finished tiny scaling study (stages up to cross-budget;
    results and report are left to the tests)."""
    root = tmp_path_factory.mktemp("scale")
    spec = tiny_scale_spec(root / "run", root / "store")
    run_pipeline(spec)
    return spec.run_dir


# The same study scored walk-forward: the search sees the first half of history, the
# rest is three test folds.
TINY_WALK_FORWARD_SETS = {
    "evaluation.scheme": "walk_forward",
    "evaluation.folds": 3,
    "evaluation.search_fraction": 0.5,
    "scale.cross_budget": False,
}


@pytest.fixture(scope="session")
def tiny_walk_forward_run(tmp_path_factory) -> Path:
    """The run directory of the tiny study under walk-forward evaluation (stages up
    to baselines)."""
    root = tmp_path_factory.mktemp("walk_forward")
    spec = tiny_scale_spec(root / "run", root / "store", **TINY_WALK_FORWARD_SETS)
    run_pipeline(spec)
    return spec.run_dir


def spec_of(run_dir: Path, **overrides) -> ScaleSpec:
    """The spec of a copy of the tiny study (its store is the session's, beside it)."""
    return tiny_scale_spec(run_dir, run_dir.parent.parent / "store", **overrides)
