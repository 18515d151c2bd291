"""Final-evaluation units on the study storage: the workers that run a study's trials
also take its evaluation runs (`finscale worker`, `scale --workers N`).

Each study (budget x horizon) has a queue beside it in the same storage: an
Optuna study named `{study}_evaluation`. A unit, one (fold, seed) run of the
study's winner, is a queued trial whose fixed params name it. A worker claims
a unit by the storage's atomic WAITING -> RUNNING change, exactly as it
claims a queued trial, trains it, stores the run's record on the trial and
completes it, so a unit is claimed once and completed once. A worker that
dies stops beating (a database) or leaves a dead process (a journal file on
one machine): the reaper fails its unit and queues it again, and the next
worker runs it.

The head (`finscale scale`) creates the queue when it starts the study's
search, so a worker that joins the study knows evaluation units will follow;
once the search has its winner, the head posts the units the run directory
lacks (the queue's attrs: the winner, the config, each unit's input key),
works on them itself beside any local and remote workers, and writes each
completed unit's record into the run directory. A worker runs a unit only
with the head's inputs: it checks that its own dataset and grid give the
head's key before it claims anything.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from finscale.analysis import EvaluationRun, Winner, evaluate_seed, evaluation_key
from finscale.config import StudyConfig, config_from_mapping
from finscale.errors import InputError, RunError
from finscale.execution import (
    EVALUATION_QUEUE_SUFFIX,
    FAIL_ATTR,
    RESUME_ATTR,
    RETRY_ATTR,
    WORKER_ATTR,
    CoreShare,
    Heartbeat,
    StopRequested,
    StopSignal,
    as_child_process,
    enqueued_params,
    fail_and_requeue,
    heartbeats_on,
    pop_waiting_trial,
    reap_dead_trials,
    record_heartbeat,
    storage_of,
    worker_identity,
)
from finscale.hpo import POLL_SECONDS, Prepared, StudySpec, open_study_storage

log = logging.getLogger("finscale.scale")

# Study attrs of a queue, set by the head when it posts the units.
WINNER_ATTR = "winner"  # the Winner every unit trains (its to_dict)
CONFIG_ATTR = "config"  # the study config of the horizon, as JSON
KEYS_ATTR = "unit_keys"  # unit name -> input key of its run
POSTED_ATTR = "posted"  # True once the head has posted every unit
# Trial attrs of a unit.
UNIT_ATTR = "unit"  # its name, for people reading the storage
RUN_ATTR = "evaluation_run"  # the completed run's record (`EvaluationRun.to_dict`)
HOLDOUT_FOLD = -1  # a unit's fold param under holdout, where the record's fold is None

# on_unit(unit, run or None when it failed, seconds)
UnitCallback = Callable[["Unit", EvaluationRun | None, float], None]


@dataclass(frozen=True)
class Unit:
    """One final-evaluation run: the study's winner on a fold (None: holdout), a seed."""

    fold: int | None
    seed: int
    data_fraction: float = 1.0  # of the training samples, the most recent

    @property
    def name(self) -> str:
        parts = [] if self.fold is None else [f"fold {self.fold}"]
        parts.append(f"seed {self.seed}")
        if self.data_fraction != 1.0:
            parts.append(f"data {self.data_fraction:g}")
        return ", ".join(parts)

    @property
    def params(self) -> dict[str, float]:
        return {
            "fold": HOLDOUT_FOLD if self.fold is None else self.fold,
            "seed": self.seed,
            "data_fraction": self.data_fraction,
        }

    @classmethod
    def of(cls, trial: FrozenTrial) -> Unit:
        params = enqueued_params(trial)
        fold = int(params["fold"])
        return cls(
            None if fold == HOLDOUT_FOLD else fold,
            int(params["seed"]),
            float(params.get("data_fraction", 1.0)),
        )


def queue_name(study_name: str) -> str:
    return f"{study_name}{EVALUATION_QUEUE_SUFFIX}"


def open_queue(spec: StudySpec, create: bool = False) -> optuna.Study | None:
    """The evaluation queue of the spec's study (created when `create`), on the study's
    storage with its heartbeats; None when it does not exist and `create` is False."""
    storage = open_study_storage(spec)
    name = queue_name(spec.study_name)
    if create:
        return optuna.create_study(study_name=name, storage=storage, load_if_exists=True)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


def completed_runs(queue: optuna.Study) -> dict[Unit, dict[str, Any]]:
    """The stored record of every completed unit whose key is the posted one."""
    keys = queue.user_attrs.get(KEYS_ATTR) or {}
    out: dict[Unit, dict[str, Any]] = {}
    for trial in queue.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        unit, record = Unit.of(trial), trial.user_attrs.get(RUN_ATTR)
        if record and record.get("key") == keys.get(unit.name):
            out.setdefault(unit, record)
    return out


def post_units(
    queue: optuna.Study,
    winner: Winner,
    config: StudyConfig,
    keys: dict[Unit, str],
) -> list[Unit]:
    """Queue every unit of `keys` that is neither completed with its key, nor queued,
    nor running; store what workers need to run them. Returns the units queued."""
    queue.set_user_attr(WINNER_ATTR, winner.to_dict())
    queue.set_user_attr(CONFIG_ATTR, config.model_dump(mode="json"))
    queue.set_user_attr(KEYS_ATTR, {unit.name: key for unit, key in keys.items()})
    done = completed_runs(queue)
    live = {
        Unit.of(t)
        for t in queue.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING))
    }
    posted = [unit for unit in keys if unit not in done and unit not in live]
    for unit in posted:
        queue.enqueue_trial(unit.params, user_attrs={UNIT_ATTR: unit.name})
    queue.set_user_attr(POSTED_ATTR, True)
    return posted


@dataclass
class QueueWork:
    """What a worker needs to run the units of one study's queue."""

    queue: optuna.Study
    spec: StudySpec  # the study's; its config gives the device and heartbeat settings
    prepared: Prepared
    index: int = 0  # this worker's index on its machine
    # The study's Prepared on a fold's rows; by default each fold's dataset built once.
    scored: Callable[[int | None], Prepared] | None = None
    _folds: list[Any] | None = None

    def on_fold(self, fold: int | None) -> Prepared:
        if self.scored is not None:
            return self.scored(fold)
        if fold is None:
            return self.prepared
        if self._folds is None:
            self._folds = self.prepared.dataset.folds()
        return self.prepared.on(self._folds[fold])

    def posted(self) -> tuple[Winner, StudyConfig, dict[str, str]]:
        """The head's winner, config (with this worker's device) and unit keys."""
        attrs = self.queue.user_attrs
        winner = Winner.from_dict(attrs[WINNER_ATTR])
        config = config_from_mapping(
            attrs[CONFIG_ATTR], {}, f"evaluation queue of {self.spec.study_name}"
        )
        return winner, config, attrs[KEYS_ATTR]

    def check_inputs(self, winner: Winner, config: StudyConfig, keys: dict[str, str]) -> None:
        """Refuse to run the head's units on another dataset, grid or config."""
        for name, key in keys.items():
            unit = _unit_named(name)
            mine = evaluation_key(
                self.prepared.info, winner, config, unit.seed, unit.fold, unit.data_fraction
            )
            if mine != key:
                raise InputError(
                    f"this worker's inputs for {self.spec.study_name} ({name}) differ from the "
                    "head's (another dataset, grid or finscale version); give it the same data "
                    "store and version as the head",
                    self.spec.study_name,
                )


def _unit_named(name: str) -> Unit:
    parts = dict(p.strip().split(" ") for p in name.split(","))
    return Unit(
        int(parts["fold"]) if "fold" in parts else None,
        int(parts["seed"]),
        float(parts.get("data", 1.0)),
    )


def _claim(queue: optuna.Study) -> optuna.Trial | None:
    """Pop a queued unit, re-queued ones first (a dead worker's), or None."""
    waiting = queue.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    order = sorted(waiting, key=lambda t: (RETRY_ATTR not in t.user_attrs, t.number))
    for frozen in order:
        trial = pop_waiting_trial(queue, frozen)
        if trial is not None:
            return trial
    return None


def work_queue(
    work: QueueWork,
    stop: StopSignal,
    cores: CoreShare,
    on_start: Callable[[Unit], None] | None = None,
    on_unit: UnitCallback | None = None,
    wait_for_post: bool = True,
) -> int:
    """Run units of one queue until every posted unit is completed (some by other
    workers), a stop is requested, or nothing is left that any worker could run.
    Returns the number of units this worker ran. A stop re-queues the unit in flight
    and raises `StopRequested`."""
    queue, spec = work.queue, work.spec
    grace = spec.config.search.heartbeat_grace_seconds
    identity = worker_identity(work.index)
    checked = False
    ran = 0
    while True:
        reap_dead_trials(queue, spec.run_dir, grace)
        if stop.requested():
            raise StopRequested(stop.requested())
        attrs = queue.user_attrs
        if not attrs.get(POSTED_ATTR):
            if not wait_for_post:
                return ran
            time.sleep(POLL_SECONDS)
            continue
        winner, config, keys = work.posted()
        if not checked:
            work.check_inputs(winner, config, keys)
            checked = True
        if len(completed_runs(queue)) >= len(keys):
            return ran
        trial = _claim(queue)
        if trial is None:
            running = queue.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if not running and not queue.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                return ran  # the rest failed; the head says why
            time.sleep(POLL_SECONDS)  # the last units run elsewhere; one may die
            continue
        if heartbeats_on(storage_of(queue)):
            record_heartbeat(queue, trial)
        trial.set_user_attr(WORKER_ATTR, identity)
        unit = Unit.of(queue.get_trials(deepcopy=False)[trial.number])
        key = keys[unit.name]
        ran += _run_unit(work, trial, unit, winner, config, key, stop, cores, on_start, on_unit)


def _run_unit(
    work: QueueWork,
    trial: optuna.Trial,
    unit: Unit,
    winner: Winner,
    config: StudyConfig,
    key: str,
    stop: StopSignal,
    cores: CoreShare,
    on_start: Callable[[Unit], None] | None,
    on_unit: UnitCallback | None,
) -> int:
    """Train one claimed unit and complete it with its record; 1 when it completed."""
    import torch

    queue = work.queue
    if on_start is not None:
        on_start(unit)
    started = time.time()
    torch.set_num_threads(cores.threads())
    # The head's config on this worker's device: the device is not an input of the run.
    device = work.spec.config.train.device
    train = config.train.model_copy(update={"device": device})
    run_config = config.model_copy(update={"train": train})

    def check_stop(_record: Any) -> None:
        reason = stop.requested()
        if reason:
            raise StopRequested(reason)

    try:
        with Heartbeat(queue, trial):
            run = evaluate_seed(
                work.on_fold(unit.fold),
                run_config,
                winner,
                unit.seed,
                on_epoch=check_stop,
                fold=unit.fold,
                key=key,
                data_fraction=unit.data_fraction,
            )
    except StopRequested:
        frozen = queue.get_trials(deepcopy=False)[trial.number]
        fail_and_requeue(queue, frozen, f"stopped ({stop.requested()}); re-queued")
        raise
    except (RunError, RuntimeError, ValueError) as exc:
        trial.set_user_attr(FAIL_ATTR, f"{type(exc).__name__}: {exc}")
        queue.tell(trial, state=TrialState.FAIL)
        if on_unit is not None:
            on_unit(unit, None, time.time() - started)
        return 0
    try:
        trial.set_user_attr(RUN_ATTR, run.to_dict())
        queue.tell(trial, run.val_metrics["log_loss"])
    except optuna.exceptions.UpdateFinishedTrialError:
        # Its heartbeats did not reach the storage in time: another worker failed it
        # as stale and queued it again, and that copy's record is the one kept.
        log.warning("unit %s of %s was taken over by another worker", unit.name, queue.study_name)
        return 0
    if on_unit is not None:
        on_unit(unit, run, time.time() - started)
    return 1


def failed_reasons(queue: optuna.Study, units: Sequence[Unit]) -> dict[Unit, str]:
    """Why each of `units` failed for good (its last failure not re-queued)."""
    out: dict[Unit, str] = {}
    for trial in queue.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        unit = Unit.of(trial)
        if unit in units and not trial.user_attrs.get(RESUME_ATTR):
            out[unit] = trial.user_attrs.get(FAIL_ATTR, "failed")
    return out


def work_queues(
    specs: Sequence[StudySpec],
    index: int = 0,
    stop_dir: Path | None = None,
    wait_for_post: bool = True,
    on_start: Callable[[StudySpec, Unit], None] | None = None,
    on_unit: Callable[[StudySpec, Unit, EvaluationRun | None, float], None] | None = None,
    prepared: dict[str, Prepared] | None = None,
) -> int:
    """Run the evaluation units of each study of `specs` in order (studies without a
    queue are skipped); returns the units run. `stop_dir`: the folder whose STOP file
    stops this worker (default: each study's run directory, as for its trials);
    `prepared`: the studies already prepared, by study name."""
    from finscale.hpo import prepare

    prepared = prepared or {}
    ran = 0
    with CoreShare() as cores:
        for spec in specs:
            queue = open_queue(spec)
            if queue is None:
                continue
            ready = prepared.get(spec.study_name) or prepare(spec)
            work = QueueWork(queue, spec, ready, index)
            with StopSignal(stop_dir or spec.run_dir, spec.deadline) as stop:
                ran += work_queue(
                    work,
                    stop,
                    cores,
                    on_start=None if on_start is None else lambda u, s=spec: on_start(s, u),
                    on_unit=None
                    if on_unit is None
                    else lambda u, r, t, s=spec: on_unit(s, u, r, t),
                    wait_for_post=wait_for_post,
                )
    return ran


def queue_worker_process(
    specs: Sequence[StudySpec], index: int, stop_dir: Path | None, wait_for_post: bool
) -> None:
    """A spawned unit worker: one error line instead of a traceback, exit code 1."""
    as_child_process(
        f"evaluation worker {index}",
        lambda: work_queues(specs, index, stop_dir, wait_for_post),
        quiet=(StopRequested,),
    )


def spawn_queue_workers(
    specs: Sequence[StudySpec], indexes: range, stop_dir: Path | None, wait_for_post: bool
) -> list[multiprocessing.process.BaseProcess]:
    """One unit-worker process per index (fresh interpreters, as for trial workers)."""
    context = multiprocessing.get_context("spawn")
    processes = []
    for index in indexes:
        process = context.Process(
            target=queue_worker_process, args=(list(specs), index, stop_dir, wait_for_post)
        )
        process.start()
        processes.append(process)
    return processes
