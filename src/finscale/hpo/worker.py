"""A worker: admits trials of an existing study one at a time and runs them, until the
study has its count of finished trials or a stop is requested.

Workers admit a trial only while fewer than `trials` lower-numbered trials are
finished, running or queued, so the study ends with exactly the requested
count of complete + pruned trials however many workers run it, on however
many machines. `run_study` runs the first worker in its own process and spawns
the others (`spawn_workers`); `finscale worker` runs one on another machine.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from finscale.atomic import file_lock
from finscale.errors import RunError
from finscale.execution import (
    RETRY_ATTR,
    STORAGE_ERRORS,
    STUDY_NAME_ATTR,
    SURPLUS_ATTR,
    WORKER_ATTR,
    CoreShare,
    Heartbeat,
    StopSignal,
    as_child_process,
    describe_error,
    enqueued_params,
    fail_and_requeue,
    heartbeats_on,
    pop_waiting_trial,
    reap_dead_trials,
    record_heartbeat,
    redact,
    reload_trial,
    requeue,
    storage_of,
    study_ping,
    wait_for_storage,
    worker_identity,
)
from finscale.hpo.objective import TrialContext, TrialOutcome, run_trial
from finscale.hpo.spec import (
    POLL_SECONDS,
    Prepared,
    StudySpec,
    check_resumable,
    make_pruner,
    make_sampler,
    open_study_storage,
    prepare,
)
from finscale.hpo.trial_records import RecordWriter, state_counts

log = logging.getLogger("finscale.hpo")

# on_trial(study, trial, outcome, counts, worker_index); counts has "target" too.
TrialCallback = Callable[[optuna.Study, FrozenTrial, TrialOutcome, dict[str, int], int], None]
# What `next_trial` answers when it has no trial to run.
DONE = "done"  # the study has its count
WAIT = "wait"  # the last trials run elsewhere; one may still fail and need a successor


@dataclass
class WorkerResult:
    trials_run: int = 0
    stop_reason: str | None = None
    reaped: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)  # failed as stale by another worker
    outages: int = 0  # times the storage was lost and found again


def _priority(trial: FrozenTrial) -> tuple[int, int]:
    """Queue order: re-queued configurations (stopped or dead trials) first, so a
    resumed study re-runs them before anything else; then by number."""
    return (0 if RETRY_ATTR in trial.user_attrs else 1, trial.number)


def ask(study: optuna.Study) -> optuna.Trial:
    """`study.ask()`, except that re-queued trials are popped before other queued ones.
    Popping is the storage's atomic WAITING -> RUNNING change, as in `Study.ask`."""
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    for frozen in sorted(waiting, key=_priority):
        if RETRY_ATTR not in frozen.user_attrs:
            break
        trial = pop_waiting_trial(study, frozen)
        if trial is not None:
            return trial
    with warnings.catch_warnings():
        # Optuna warns that heartbeats belong to `optimize`; the worker loop beats
        # itself (`Heartbeat`), as `optimize` does.
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        return study.ask()


def _admitted(study: optuna.Study, trial: FrozenTrial, target: int) -> bool:
    """Whether fewer than `target` trials ahead of this one in queue order are finished,
    running or queued: the rule that keeps concurrent workers at exactly `target`."""
    committed = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    own = _priority(trial)
    ahead = [
        t
        for t in study.get_trials(deepcopy=False, states=committed)
        if _priority(t) < own and not t.user_attrs.get(SURPLUS_ATTR)
    ]
    return len(ahead) < target


def next_trial(
    study: optuna.Study, spec: StudySpec, identity: dict[str, Any]
) -> optuna.Trial | str:
    """The next trial to run, or `DONE` when the study has its count, or `WAIT` when
    the last trials run elsewhere (one may still fail and need a successor).

    On one machine the check and the pop run under a file lock, so local workers
    never race; across machines the admission rule keeps the count exact."""
    with file_lock(spec.run_dir / ".ask.lock"):
        counts = state_counts(study.get_trials(deepcopy=False))
        if counts["finished"] >= spec.trials:
            return DONE
        if counts["finished"] + counts["running"] >= spec.trials:
            return WAIT
        trial = ask(study)
        if heartbeats_on(storage_of(study)):
            # Beat before the worker mark: a marked trial always has a heartbeat, so
            # a worker that dies from here on is found by its stale heartbeat.
            record_heartbeat(study, trial)
        trial.set_user_attr(WORKER_ATTR, identity)
        frozen = study.get_trials(deepcopy=False)[trial.number]
        if _admitted(study, frozen, spec.trials):
            return trial
        trial.set_user_attr(SURPLUS_ATTR, True)
        study.tell(trial, state=TrialState.FAIL)
        if enqueued_params(frozen):
            requeue(study, frozen)
        return WAIT


@dataclass
class _Worker:
    """One worker's loop state: what `turn` needs between trials."""

    spec: StudySpec
    index: int
    study: optuna.Study
    ctx: TrialContext
    identity: dict[str, Any]
    writer: RecordWriter
    cores: CoreShare
    on_trial: TrialCallback | None
    result: WorkerResult

    def turn(self) -> TrialOutcome | str | None:
        """One turn of the loop: sweep dead trials, then admit and run one trial.
        Returns the trial's outcome; `DONE` when the study has its count or a stop
        was requested; None to go round again (waiting, a trial lost)."""
        import torch

        study, spec, stop = self.study, self.spec, self.ctx.stop
        trial: optuna.Trial | str | None = None
        try:
            grace = spec.config.search.heartbeat_grace_seconds
            self.result.reaped += reap_dead_trials(study, spec.run_dir, grace)
            if stop.requested():
                return DONE
            trial = next_trial(study, spec, self.identity)
            if trial == DONE:
                return DONE
            if trial == WAIT:
                time.sleep(POLL_SECONDS)
                return None
            torch.set_num_threads(self.cores.threads())
            with Heartbeat(study, trial):
                outcome = run_trial(study, trial, self.ctx)
            self.result.trials_run += 1
            counts = self.writer.export(study)
            if self.on_trial is not None:
                frozen = study.get_trials(deepcopy=False)[trial.number]
                self.on_trial(study, frozen, outcome, {**counts, "target": spec.trials}, self.index)
            return outcome
        except optuna.exceptions.UpdateFinishedTrialError:
            # Another worker failed this trial as stale (its heartbeats did not
            # reach the storage within the grace period) and re-queued it.
            if isinstance(trial, optuna.Trial):
                self.result.lost.append(trial.number)
            return None
        except STORAGE_ERRORS as exc:
            self.result.outages += 1
            if not _await_storage(study, spec, stop, exc):
                return DONE
            if isinstance(trial, optuna.Trial):
                why = describe_error(exc, spec.storage)
                reason = f"the study storage was lost mid-trial ({why}); re-queued"
                fail_and_requeue(study, reload_trial(study, trial), reason)
            return None


def _open_for_worker(
    spec: StudySpec, worker_index: int, prepared: Prepared
) -> tuple[optuna.Study, int]:
    """The study with this worker's sampler and pruner, and the sampler's seed."""
    storage = open_study_storage(spec)
    probe = optuna.load_study(study_name=spec.study_name, storage=storage)
    check_resumable(probe, spec, prepared)
    # Each worker and each resume samples with its own seed, so a resumed random
    # start does not replay the first run's draws.
    base = spec.config.search.sampler_seed if spec.sampler_seed is None else spec.sampler_seed
    seed = base + 1000 * worker_index + len(probe.trials)
    study = optuna.load_study(
        study_name=spec.study_name,
        storage=storage,
        sampler=make_sampler(spec.config, seed),
        pruner=make_pruner(spec.config),
    )
    return study, seed


def run_worker(
    spec: StudySpec,
    worker_index: int = 0,
    on_trial: TrialCallback | None = None,
    prepared: Prepared | None = None,
) -> WorkerResult:
    """Run trials of the (existing) study until it has `spec.trials` finished trials
    or a stop is requested.

    A lost database (a restart, a network cut) is waited for up to the config's
    `storage_retry_seconds`; the trial in flight is failed and re-queued once it is
    back, and the worker goes on. Longer, it exits with a `RunError`."""
    prepared = prepared or prepare(spec)
    study, seed = _open_for_worker(spec, worker_index, prepared)
    writer = RecordWriter(spec.run_dir, {**prepared.info, STUDY_NAME_ATTR: spec.study_name})
    result = WorkerResult()
    identity = {**worker_identity(worker_index), "sampler_seed": seed}
    search = spec.config.search
    with StopSignal(spec.run_dir, spec.deadline) as stop, CoreShare() as cores:
        ctx = TrialContext(
            spec.config,
            prepared.space,
            prepared.planned,
            prepared.windows(),
            stop,
            spec.max_temp_c,
            prepared.hardware,
        )
        worker = _Worker(spec, worker_index, study, ctx, identity, writer, cores, on_trial, result)
        failed_in_a_row = 0
        while (outcome := worker.turn()) != DONE:
            if not isinstance(outcome, TrialOutcome):
                continue
            stopped = stop.reason is not None
            failed = outcome.state == TrialState.FAIL and not stopped
            failed_in_a_row = failed_in_a_row + 1 if failed else 0
            if failed_in_a_row >= search.max_consecutive_failures:
                raise RunError(
                    f"{failed_in_a_row} trials in a row failed, the last with: {outcome.reason}; "
                    f"fix the study config (records in {spec.run_dir / 'trials'}) and resume"
                )
        result.stop_reason = stop.reason
        writer.export(study)
    return result


def _await_storage(
    study: optuna.Study, spec: StudySpec, stop: StopSignal, exc: BaseException
) -> bool:
    """Wait for a lost storage to answer again: True when it does, False when a stop
    is requested first; a `RunError` after `storage_retry_seconds`."""
    limit_s = spec.config.search.storage_retry_seconds
    log.warning(
        "study storage %s lost (%s); waiting up to %.0f s for it",
        redact(spec.storage),
        describe_error(exc, spec.storage),
        limit_s,
    )
    if wait_for_storage(lambda: study_ping(study), limit_s, stop.requested):
        log.warning("study storage %s is back; going on", redact(spec.storage))
        return True
    if stop.requested():
        return False
    raise RunError(
        f"lost the study storage {redact(spec.storage)} for over {limit_s:.0f} s "
        f"({describe_error(exc, spec.storage)}); every finished trial is stored there: once it "
        "is back, run the same command to go on"
    )


def worker_process(spec: StudySpec, worker_index: int, on_trial: TrialCallback | None) -> None:
    """A spawned worker: one error line instead of a traceback, exit code 1."""
    as_child_process(f"worker {worker_index}", lambda: run_worker(spec, worker_index, on_trial))


def spawn_workers(
    spec: StudySpec, indexes: range, on_trial: TrialCallback | None
) -> list[multiprocessing.process.BaseProcess]:
    """Start one worker process per index (fresh interpreters: no fork of a process
    that holds torch threads or database connections)."""
    context = multiprocessing.get_context("spawn")
    processes = []
    for index in indexes:
        process = context.Process(target=worker_process, args=(spec, index, on_trial), daemon=False)
        process.start()
        processes.append(process)
    return processes
