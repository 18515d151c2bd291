"""The scaling study, stage by stage: `finscale scale`.

    hpo -> evaluation -> baselines -> cross_budget -> results -> report

Every stage stores its results in the run directory (`finscale.scale.layout`),
one atomic file per unit of work (a study, a seed, a horizon, a pair of
budgets), each with the hash of its inputs: its resume key. A rerun skips every
unit whose stored key matches and runs only what is missing or changed, so a
crash or a stop costs at most the unit in flight. The HPO studies resume
through their Optuna storage; results and report are cheap and rebuilt on
every run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from finscale.analysis.baselines import C_GRID
from finscale.analysis.cross_budget import cell_key, cross_budget_cell, plan_pairs
from finscale.analysis.evaluate import evaluate_seed, evaluation_key, input_key, winner_of
from finscale.analysis.records import Winner
from finscale.atomic import write_json_atomic
from finscale.errors import InputError, RunError
from finscale.hpo import Prepared, StopRequested, StopSignal, StudySpec
from finscale.scale.layout import baselines_path, cross_budget_path, evaluation_path, stored
from finscale.scale.results import build_results, write_report
from finscale.scale.spec import ScaleSpec
from finscale.units import format_budget

STAGES = ("hpo", "evaluation", "baselines", "cross_budget", "results", "report")


class Reporter(Protocol):
    """What the pipeline tells its caller (the CLI draws progress from it)."""

    def stage(self, name: str, units: int) -> None: ...

    def unit(self, name: str, budget: int | None, horizon: int | None, detail: str) -> None: ...

    def done(self, seconds: float, skipped: bool) -> None: ...

    def hpo_callbacks(
        self, spec: StudySpec, prepared: Prepared | None = None
    ) -> dict[str, Callable | None]: ...


@dataclass(frozen=True)
class PlannedCell:
    """One training of the cross-budget matrix: `target`'s architecture with `source`'s
    training values, where it is stored, and what it would cost."""

    horizon_days: int
    source: Winner  # whose training values are used
    target: Winner  # whose architecture is trained, on its own budget's study
    path: Path
    key: str  # the cell's resume key
    stored: bool  # already stored with this key: a run skips it
    estimated_seconds: float  # upper bound; NaN when the winner's epoch time is unknown

    @property
    def values_from(self) -> int:
        return self.source.budget

    @property
    def architecture_of(self) -> int:
        return self.target.budget


class Pipeline:
    """Runs the stages of one `ScaleSpec`; each stage method is resumable alone."""

    def __init__(self, spec: ScaleSpec, reporter: Reporter) -> None:
        self.spec = spec
        self.reporter = reporter
        self._prepared: dict[tuple[int, int], Any] = {}
        self._fold_datasets: dict[tuple[int, int], list[Any]] = {}
        self.winners: dict[tuple[int, int], Winner] = {}
        self.report_paths: list[Path] = []

    def prepared(self, budget: int, horizon: int) -> Any:
        from finscale.hpo import prepare

        key = (budget, horizon)
        if key not in self._prepared:
            self._prepared[key] = prepare(self.spec.study_spec(budget, horizon))
        return self._prepared[key]

    def scored(self, budget: int, horizon: int, fold: int | None) -> Any:
        """The study's `Prepared` on the rows `fold` is scored on (the study's own under
        holdout): each fold's dataset is built once and shared by its budgets."""
        prepared = self.prepared(budget, horizon)
        if fold is None:
            return prepared
        key = (budget, horizon)
        if key not in self._fold_datasets:
            self._fold_datasets[key] = prepared.dataset.folds()
        return prepared.on(self._fold_datasets[key][fold])

    def _unit(
        self,
        name: str,
        budget: int | None,
        horizon: int | None,
        detail: str,
        run: Callable[[], bool],
    ) -> None:
        """Report, run and time one unit; `run` returns whether it was skipped."""
        self.reporter.unit(name, budget, horizon, detail)
        started = time.time()
        skipped = run()
        self.reporter.done(time.time() - started, skipped)

    def _check_stop(self, stop: StopSignal) -> None:
        reason = stop.requested()
        if reason:
            raise StopRequested(reason)

    def run(self) -> dict[str, Any]:
        """Every stage in order; returns the results (scaling.json). Raises
        `StopRequested` when a stop was asked for: rerunning resumes."""
        self.hpo()
        self.evaluation()
        self.baselines()
        self.cross_budget()
        return self.results_and_report()

    def results_and_report(self) -> dict[str, Any]:
        """Intervals, comparisons, fit and calibration from the stored runs, then the
        report; both cheap, rebuilt on every run."""
        box: dict[str, Any] = {}

        def results() -> bool:
            box["results"] = build_results(self.spec.run_dir)
            return False

        def report() -> bool:
            box["paths"] = write_report(self.spec.run_dir, box["results"])
            return False

        self.reporter.stage("results", 1)
        self._unit("results", None, None, "intervals, baselines, fit, calibration", results)
        self.reporter.stage("report", 1)
        self._unit("report", None, None, "figures, report.md, report.html", report)
        self.report_paths = box["paths"]
        return box["results"]

    # ------------------------------------------------------------ hpo

    def hpo(self) -> None:
        import torch

        threads = torch.get_num_threads()
        try:
            self._hpo()
        finally:
            # Workers share the cores (N workers, cores/N threads each); the stages
            # after the search train one model at a time on all of them.
            torch.set_num_threads(threads)

    def _hpo(self) -> None:
        from finscale.hpo import run_study, summarize_run

        studies = list(self.spec.studies())
        self.reporter.stage("hpo", len(studies))
        for budget, horizon in studies:
            # A stop asked for between two studies: the next one's folder had no STOP file.
            self._check_stop(StopSignal(self.spec.run_dir))
            study_spec = self.spec.study_spec(budget, horizon)
            box: dict[str, Any] = {}

            def run(study_spec=study_spec, budget=budget, horizon=horizon, box=box) -> bool:
                prepared = self.prepared(budget, horizon)
                callbacks = dict(self.reporter.hpo_callbacks(study_spec, prepared))
                on_start = callbacks.pop("on_start", None)

                def started(counts: dict[str, int]) -> None:
                    box["finished_before"] = counts["finished"]
                    if on_start is not None:
                        on_start(counts)

                box["outcome"] = outcome = run_study(
                    study_spec,
                    prepared=prepared,
                    on_start=started,
                    **callbacks,
                )
                if outcome.counts["finished"]:
                    summarize_run(study_spec.run_dir, study_spec.storage)
                return box.get("finished_before", 0) >= study_spec.trials

            self._unit("hpo", budget, horizon, study_spec.study_name, run)
            outcome = box["outcome"]
            if outcome.stop_reason:
                raise StopRequested(outcome.stop_reason)
            if not outcome.finished:
                raise RunError(
                    f"study {study_spec.study_name} ended with {outcome.counts['finished']} of "
                    f"{study_spec.trials} trials finished; rerun to resume it"
                )
            self.winners[(budget, horizon)] = winner_of(outcome.study, budget, horizon)

    def load_winners(self) -> None:
        """The winners of studies already searched, read from their storage (for the
        stages run on their own: `finscale validate-cross-budget`)."""
        import optuna

        from finscale.hpo import open_storage

        for budget, horizon in self.spec.studies():
            study_spec = self.spec.study_spec(budget, horizon)
            if "://" not in study_spec.storage and not Path(study_spec.storage).exists():
                raise InputError(
                    f"study {study_spec.study_name} has not been run (no {study_spec.storage}); "
                    "run `finscale scale` first",
                    str(self.spec.run_dir),
                )
            try:
                study = optuna.load_study(
                    study_name=study_spec.study_name, storage=open_storage(study_spec.storage)
                )
            except KeyError:
                raise InputError(
                    f"study {study_spec.study_name} is not in its storage; run `finscale scale`",
                    str(self.spec.run_dir),
                ) from None
            self.winners[(budget, horizon)] = winner_of(study, budget, horizon)

    # ------------------------------------------------------------ evaluation

    def evaluation(self) -> None:
        seeds = range(self.spec.config.scale.seeds)
        units = [
            (b, h, f, s)
            for b, h in self.spec.studies()
            for f in self.spec.config.evaluation.scored_folds
            for s in seeds
        ]
        self.reporter.stage("evaluation", len(units))
        with StopSignal(self.spec.run_dir) as stop:
            for budget, horizon, fold, seed in units:
                winner = self.winners[(budget, horizon)]

                def run(
                    budget=budget, horizon=horizon, fold=fold, seed=seed, winner=winner
                ) -> bool:
                    prepared = self.prepared(budget, horizon)
                    config = self.spec.horizon_config(horizon)
                    path = evaluation_path(self.spec.run_dir, winner.study, seed, fold)
                    key = evaluation_key(prepared.info, winner, config, seed, fold)
                    if stored(path, key):
                        return True
                    evaluated = evaluate_seed(
                        self.scored(budget, horizon, fold),
                        config,
                        winner,
                        seed,
                        on_epoch=lambda r: self._check_stop(stop),
                        fold=fold,
                    )
                    write_json_atomic(path, evaluated.to_dict())
                    return False

                where = f"{winner.study} seed {seed}{_fold_words(fold)}"
                self._unit("evaluation", budget, horizon, where, run)

    # ------------------------------------------------------------ baselines

    def baselines(self) -> None:
        from finscale.analysis.baselines import evaluate_baselines

        units = [
            (h, f) for h in self.spec.horizons for f in self.spec.config.evaluation.scored_folds
        ]
        self.reporter.stage("baselines", len(units))
        for horizon, fold in units:

            def run(horizon=horizon, fold=fold) -> bool:
                prepared = self.prepared(self.spec.budgets[0], horizon)
                threshold = self.spec.config.train.decision_threshold
                scheme = (
                    {}
                    if fold is None
                    else {"fold": fold, "evaluation": self.spec.config.evaluation.model_dump()}
                )
                key = input_key(
                    stage="baselines",
                    dataset=prepared.info["dataset_key"],
                    c_grid=C_GRID,
                    threshold=threshold,
                    **scheme,
                )
                path = baselines_path(self.spec.run_dir, horizon, fold)
                if stored(path, key):
                    return True
                scored = self.scored(self.spec.budgets[0], horizon, fold)
                result = evaluate_baselines(scored.dataset.windows(), threshold)
                record = {"key": key, "horizon_days": horizon, "fold": fold, **result}
                write_json_atomic(path, record)
                return False

            detail = "base rate, logistic, volatility"
            self._unit("baselines", None, horizon, detail + _fold_words(fold), run)

    # ------------------------------------------------------------ cross-budget

    def plan_cross_budget(self) -> list[PlannedCell]:
        """Every cell to train, with its inputs, stored state and estimated cost."""
        from finscale.analysis.cross_budget import estimate_seconds

        plan = []
        train = self.spec.config.train
        train_dump = train.model_dump(mode="json")
        for horizon in self.spec.horizons:
            winners = {b: w for (b, h), w in self.winners.items() if h == horizon}
            for source, target in plan_pairs(winners):
                path = cross_budget_path(self.spec.run_dir, horizon, source, target)
                prepared = self.prepared(target, horizon)
                key = cell_key(prepared.info, winners[source], winners[target], train_dump)
                plan.append(
                    PlannedCell(
                        horizon_days=horizon,
                        source=winners[source],
                        target=winners[target],
                        path=path,
                        key=key,
                        stored=stored(path, key) is not None,
                        estimated_seconds=estimate_seconds(winners[target], train.max_epochs),
                    )
                )
        return plan

    def cross_budget(self) -> None:
        if not self.spec.config.scale.cross_budget:
            self.reporter.stage("cross_budget", 0)
            return
        plan = self.plan_cross_budget()
        self.reporter.stage("cross_budget", len(plan))
        with StopSignal(self.spec.run_dir) as stop:
            for cell in plan:

                def run(cell=cell) -> bool:
                    if cell.stored:
                        return True
                    prepared = self.prepared(cell.target.budget, cell.horizon_days)
                    self._check_stop(stop)
                    config = self.spec.horizon_config(cell.horizon_days)
                    record = cross_budget_cell(
                        prepared,
                        config,
                        cell.source,
                        cell.target,
                        on_epoch=lambda r: self._check_stop(stop),
                    )
                    write_json_atomic(cell.path, record.to_dict())
                    return False

                detail = (
                    f"values of {format_budget(cell.values_from)} on the architecture of "
                    f"{format_budget(cell.architecture_of)}"
                )
                self._unit("cross_budget", cell.target.budget, cell.horizon_days, detail, run)


def _fold_words(fold: int | None) -> str:
    return "" if fold is None else f" (fold {fold})"
