"""The scaling study, stage by stage: `finscale scale`.

    hpo -> evaluation -> baselines -> cross_budget -> tiers -> results -> report

Every stage stores its results in the run directory (`finscale.scale.layout`),
one atomic file per unit of work (a study, a seed, a horizon, a pair of
budgets), each with the hash of its inputs: its resume key. A rerun skips every
unit whose stored key matches and runs only what is missing or changed, so a
crash or a stop costs at most the unit in flight. The HPO studies resume
through their Optuna storage, and so do the final-evaluation units, which
workers take from a queue beside each study (`finscale.scale.queue`); results
and report are cheap and rebuilt on every run.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from finscale.analysis import (
    C_GRID,
    ScalingResults,
    Winner,
    cross_budget_cell,
    evaluation_key,
    evaluation_seeds,
    input_key,
    winner_of,
)
from finscale.atomic import write_json_atomic
from finscale.errors import InputError, RunError
from finscale.execution import (
    TRANSFER_ATTR,
    StopRequested,
    StopSignal,
    is_database,
    redact,
    storage_exists,
)
from finscale.hpo import Prepared, StudySpec, Transfer, transfer_of
from finscale.scale.cross_budget_plan import PlannedCell, plan_cells
from finscale.scale.layout import baselines_path, evaluation_path, stored
from finscale.scale.queue import open_queue
from finscale.scale.results import build_results, write_run_report
from finscale.scale.scale_spec import ScaleSpec
from finscale.units import format_budget

STAGES = ("hpo", "evaluation", "baselines", "cross_budget", "tiers", "results", "report")


class Reporter(Protocol):
    """What the pipeline tells its caller (the CLI draws progress from it)."""

    def stage(self, name: str, units: int) -> None: ...

    def unit(self, name: str, budget: int | None, horizon: int | None, detail: str) -> None: ...

    def done(self, seconds: float, skipped: bool) -> None: ...

    def hpo_callbacks(
        self, spec: StudySpec, prepared: Prepared | None = None
    ) -> dict[str, Callable | None]: ...


@dataclass
class PostedUnits:
    """The final-evaluation units a run posted: by (budget, horizon), each unit's input
    key, and the study's queue."""

    pending: dict[tuple[int, int], dict[Any, str]] = field(default_factory=dict)
    queues: dict[tuple[int, int], Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(keys) for keys in self.pending.values())


class Pipeline:
    """Runs the stages of one `ScaleSpec`; each stage method is resumable alone."""

    def __init__(self, spec: ScaleSpec, reporter: Reporter) -> None:
        self.spec = spec
        self.reporter = reporter
        self._prepared: dict[tuple[int, int], Any] = {}
        self._fold_datasets: dict[tuple[int, int], list[Any]] = {}
        self.winners: dict[tuple[int, int], Winner] = {}
        self.transfers: dict[tuple[int, int], Transfer] = {}
        self.report_paths: list[Path] = []

    def study_spec(self, budget: int, horizon: int) -> StudySpec:
        """The spec of one study, with the training values it was given when
        `search.transfer` gave it any (known once the smallest budget's study is done)."""
        if self.spec.transfers_to(budget) and (budget, horizon) not in self.transfers:
            raise RunError(
                f"budget {format_budget(budget)} takes its training values from the smallest "
                "budget's study, which has not been searched yet"
            )
        return self.spec.study_spec(budget, horizon, self.transfers.get((budget, horizon)))

    def prepared(self, budget: int, horizon: int) -> Any:
        from finscale.hpo import prepare

        key = (budget, horizon)
        if key not in self._prepared:
            self._prepared[key] = prepare(self.study_spec(budget, horizon))
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

    def run(self) -> ScalingResults:
        """Every stage in order; returns the results (scaling.json). Raises
        `StopRequested` when a stop was asked for: rerunning resumes."""
        self.hpo()
        self.evaluation()
        self.baselines()
        self.cross_budget()
        self.tiers()
        return self.results_and_report()

    def results_and_report(self) -> ScalingResults:
        """Intervals, comparisons, fit and calibration from the stored runs, then the
        report; both cheap, rebuilt on every run."""
        box: dict[str, Any] = {}

        def results() -> bool:
            box["results"] = build_results(self.spec.run_dir)
            return False

        def report() -> bool:
            box["paths"] = write_run_report(self.spec.run_dir, box["results"])
            return False

        self.reporter.stage("results", 1)
        self._unit("results", None, None, "intervals, baselines, fit, calibration", results)
        self.reporter.stage("report", 1)
        self._unit("report", None, None, "figures, report.md, report.html", report)
        self.report_paths = box["paths"]
        return box["results"]

    # ------------------------------------------------------------ hpo

    def hpo(self) -> None:
        from finscale.hpo import run_study, summarize_run

        studies = list(self.spec.studies())
        self.reporter.stage("hpo", len(studies))
        for budget, horizon in studies:
            # A stop asked for between two studies: the next one's folder had no STOP file.
            self._check_stop(StopSignal(self.spec.run_dir))
            if self.spec.transfers_to(budget):
                source = self.winners[(min(self.spec.budgets), horizon)]
                self.transfers[(budget, horizon)] = transfer_of(
                    source.study, source.budget, source.trial, source.params, self.spec.config
                )
            study_spec = self.study_spec(budget, horizon)
            box: dict[str, Any] = {}

            def run(study_spec=study_spec, budget=budget, horizon=horizon, box=box) -> bool:
                prepared = self.prepared(budget, horizon)
                if is_database(study_spec.storage):
                    # Its evaluation queue, so that a worker that joins the search on
                    # the shared storage knows evaluation units will follow.
                    open_queue(study_spec, create=True)
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

        from finscale.execution import open_storage

        for budget, horizon in self.spec.studies():
            study_spec = self.spec.study_spec(budget, horizon)  # its name and storage
            if not storage_exists(study_spec.storage):
                raise InputError(
                    f"study {study_spec.study_name} has not been run "
                    f"(no {redact(study_spec.storage)}); "
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
            if study.user_attrs.get(TRANSFER_ATTR):
                self.transfers[(budget, horizon)] = Transfer.from_dict(
                    study.user_attrs[TRANSFER_ATTR]
                )

    # ------------------------------------------------------------ evaluation

    def evaluation(self) -> None:
        """Every (fold, seed) run of every winner, with the evaluation seeds
        (`finscale.analysis.evaluation_seeds`: none the search trained with). The units
        the run directory lacks are posted on each study's queue (`finscale.scale.
        queue`), run here and by any local (`--workers N`) or remote (`finscale
        worker`) workers, each exactly once, and their records written into the run
        directory. Files of other seeds (an older version's seed_0.json) are neither
        read nor removed: every reader asks for the planned seeds' paths."""
        from finscale.scale.queue import spawn_queue_workers

        posted = self.post_evaluation()
        if not posted.pending:
            return
        specs = [self.study_spec(b, h) for b, h in posted.pending]
        children = spawn_queue_workers(specs, range(1, self.spec.workers), self.spec.run_dir, False)
        try:
            self._work_queues(posted)
        finally:
            for child in children:
                child.join()
        self.collect_evaluation(posted)

    def post_evaluation(self) -> PostedUnits:
        """Report the units already stored as skipped, and post the others on their
        studies' queues."""
        from finscale.scale.queue import Unit, open_queue, post_units

        seeds = evaluation_seeds(self.spec.config)
        folds = self.spec.config.evaluation.scored_folds
        fractions = self.spec.config.scale.data_fractions
        posted = PostedUnits()
        stored_units = []
        for budget, horizon in self.spec.studies():
            winner = self.winners[(budget, horizon)]
            info = self.prepared(budget, horizon).info
            config = self.spec.horizon_config(horizon)
            # The full-data runs first: every comparison waits on them, the data-scaling
            # runs only on the joint law.
            for fraction, fold, seed in itertools.product(
                sorted(fractions, reverse=True), folds, seeds
            ):
                unit = Unit(fold, seed, fraction)
                key = evaluation_key(info, winner, config, seed, fold, fraction)
                path = evaluation_path(self.spec.run_dir, winner.study, seed, fold, fraction)
                if stored(path, key):
                    stored_units.append((budget, horizon, unit))
                else:
                    posted.pending.setdefault((budget, horizon), {})[unit] = key
        self.reporter.stage("evaluation", len(stored_units) + posted.count)
        for budget, horizon, unit in stored_units:
            where = f"{self.winners[(budget, horizon)].study} {unit.name}"
            self._unit("evaluation", budget, horizon, where, lambda: True)
        for (budget, horizon), keys in posted.pending.items():
            queue = open_queue(self.study_spec(budget, horizon), create=True)
            config = self.spec.horizon_config(horizon)
            post_units(queue, self.winners[(budget, horizon)], config, keys)
            posted.queues[(budget, horizon)] = queue
        return posted

    def collect_evaluation(self, posted: PostedUnits) -> None:
        """Write every posted unit's completed record into the run directory; a unit
        that no worker completed is an error that says why it failed."""
        from finscale.scale.queue import completed_runs, failed_reasons

        for (budget, horizon), keys in posted.pending.items():
            queue, winner = posted.queues[(budget, horizon)], self.winners[(budget, horizon)]
            records = completed_runs(queue)
            missing = [unit for unit in keys if unit not in records]
            if missing:
                reasons = failed_reasons(queue, missing)
                unit = missing[0]
                raise RunError(
                    f"study {winner.study}: {len(missing)} evaluation run(s) did not finish, "
                    f"{unit.name} with: {reasons.get(unit, 'no worker finished it')}; "
                    "rerun to retry them"
                )
            for unit in keys:
                path = evaluation_path(
                    self.spec.run_dir, winner.study, unit.seed, unit.fold, unit.data_fraction
                )
                write_json_atomic(path, records[unit])

    def _work_queues(self, posted: PostedUnits) -> None:
        """This process's share of the posted units, each reported as it runs; units that
        other workers ran are reported when their queue is done."""
        from finscale.execution import CoreShare
        from finscale.scale.queue import QueueWork, work_queue

        with StopSignal(self.spec.run_dir) as stop, CoreShare() as cores:
            for (budget, horizon), queue in posted.queues.items():
                study = self.winners[(budget, horizon)].study
                mine: set = set()

                def on_start(unit, budget=budget, horizon=horizon, study=study) -> None:
                    self.reporter.unit("evaluation", budget, horizon, f"{study} {unit.name}")

                def on_unit(unit, run, seconds, mine=mine) -> None:
                    mine.add(unit)
                    self.reporter.done(seconds, False)

                work = QueueWork(
                    queue,
                    self.study_spec(budget, horizon),
                    self.prepared(budget, horizon),
                    scored=lambda fold, b=budget, h=horizon: self.scored(b, h, fold),
                )
                work_queue(work, stop, cores, on_start, on_unit, wait_for_post=False)
                for unit in posted.pending[(budget, horizon)]:
                    if unit not in mine:
                        where = f"{study} {unit.name} (run by another worker)"
                        self._unit("evaluation", budget, horizon, where, lambda: True)

    # ------------------------------------------------------------ baselines

    def baselines(self) -> None:
        from finscale.analysis import TEST_PROBABILITIES, evaluate_baselines

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
                # A planted market's record also holds its test rows' true probabilities
                # (the Bayes log loss); a record stored before it lacks them and is redone.
                planted = {"planted": True} if prepared.dataset.planted else {}
                key = input_key(
                    stage="baselines",
                    dataset=prepared.info["dataset_key"],
                    c_grid=C_GRID,
                    threshold=threshold,
                    **scheme,
                    **planted,
                )
                path = baselines_path(self.spec.run_dir, horizon, fold)
                if stored(path, key):
                    return True
                scored = self.scored(self.spec.budgets[0], horizon, fold)
                windows = scored.dataset.windows()
                result = evaluate_baselines(windows, threshold)
                baselines = {name: baseline.to_dict() for name, baseline in result.items()}
                record = {"key": key, "horizon_days": horizon, "fold": fold, **baselines}
                p = scored.dataset.label_probabilities()
                if p is not None:  # in the order of the baselines' test predictions
                    record[TEST_PROBABILITIES] = p[windows.rows("test").numpy()].tolist()
                write_json_atomic(path, record)
                return False

            detail = "base rate, logistic, volatility"
            self._unit("baselines", None, horizon, detail + _fold_words(fold), run)

    # ------------------------------------------------------------ cross-budget

    def plan_cross_budget(self) -> list[PlannedCell]:
        """Every cell to train, with its inputs, stored state and estimated cost."""
        return plan_cells(self.spec, self.winners, self.prepared)

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

    # ------------------------------------------------------------ tiers

    def tiers(self) -> None:
        """The searches and final evaluations of every tier besides the data section's
        (`scale.tiers`), each tier its own studies in this run directory, in the order
        given; they resume as the primary tier's do."""
        for tier in self.spec.other_tiers:
            other = Pipeline(self.spec.tier_spec(tier), _TierReporter(self.reporter, tier))
            other.hpo()
            other.evaluation()


@dataclass
class _TierReporter:
    """Another tier's stages, reported with the tier before each stage's name."""

    reporter: Reporter
    tier: str

    def stage(self, name: str, units: int) -> None:
        self.reporter.stage(f"tier {self.tier} {name}", units)

    def unit(self, name: str, budget: int | None, horizon: int | None, detail: str) -> None:
        self.reporter.unit(f"tier {self.tier} {name}", budget, horizon, detail)

    def done(self, seconds: float, skipped: bool) -> None:
        self.reporter.done(seconds, skipped)

    def hpo_callbacks(
        self, spec: StudySpec, prepared: Prepared | None = None
    ) -> dict[str, Callable | None]:
        return self.reporter.hpo_callbacks(spec, prepared)


def _fold_words(fold: int | None) -> str:
    return "" if fold is None else f" (fold {fold})"
