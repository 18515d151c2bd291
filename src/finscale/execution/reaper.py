"""Dead workers: who runs a trial, whether it still lives, and the reaper that fails
and re-queues the trials of workers that died (SIGKILL, power loss, a lost node).

Every running trial carries its worker's identity (host, pid, process start
time). On a database with heartbeats, a trial is dead when its heartbeat is
older than the grace period, whichever machine ran it. On a journal file (one
machine), when the process that ran it no longer exists. Every worker sweeps
before it asks for a trial, so a dead trial's configuration is re-run by the
next worker that finds it.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import psutil
from optuna.trial import FrozenTrial, TrialState

from finscale.atomic import file_lock
from finscale.execution.attrs import FAIL_ATTR, FORCED_ATTR, RESUME_ATTR, RETRY_ATTR, WORKER_ATTR
from finscale.execution.storage import (
    enqueued_params,
    fail_running_trial,
    heartbeats_on,
    stale_trial_ids,
    storage_of,
    trial_id,
)

# A trial asked but not yet marked with its worker, older than this, is orphaned.
UNMARKED_GRACE_SECONDS = 60.0
# Two readings of one process's start time differ by rounding only.
START_TIME_TOLERANCE_SECONDS = 0.5


def worker_identity(index: int) -> dict[str, Any]:
    """This process as the worker of a trial: host, pid, start time, worker index."""
    process = psutil.Process()
    return {
        "host": socket.gethostname(),
        "pid": process.pid,
        "create_time": process.create_time(),
        "index": index,
    }


def is_alive(identity: dict[str, Any]) -> bool:
    """Whether the worker process of `identity` still runs on this machine (a pid
    reused by another process does not count)."""
    try:
        process = psutil.Process(identity["pid"])
        return abs(process.create_time() - identity["create_time"]) < START_TIME_TOLERANCE_SECONDS
    except psutil.Error:
        return False


def reap_dead_trials(
    study: optuna.Study,
    lock_dir: Path,
    heartbeat_grace_seconds: int | None = None,
    clock: Callable[[], float] = time.time,
) -> list[int]:
    """Fail and re-queue the running trials whose worker is gone; returns their numbers.

    On a database with heartbeats, a trial is dead when its heartbeat is older than
    the grace period, whichever machine ran it. On a journal file (one machine),
    when the process that ran it on this machine no longer exists. On both, a
    trial asked but never marked with its worker is dead after a minute. Many
    workers may reap at once: the storage lets exactly one of them fail each
    trial, and only that one re-queues it."""
    beating = heartbeats_on(storage_of(study))
    with file_lock(lock_dir / ".reap.lock"):
        dead = _dead_on_this_machine(study, beating, datetime.fromtimestamp(clock(), UTC))
        if beating:
            for stale in stale_trial_ids(study):
                trial = storage_of(study).get_trial(stale)
                identity = trial.user_attrs.get(WORKER_ATTR) or {}
                who = f"pid {identity.get('pid')} on {identity.get('host')}"
                reason = (
                    f"no heartbeat for over {heartbeat_grace_seconds} s from its worker ({who}), "
                    "which died or lost the study storage; re-queued"
                )
                dead.setdefault(stale, (trial, reason))
        return [t.number for t, reason in dead.values() if fail_and_requeue(study, t, reason)]


def _dead_on_this_machine(
    study: optuna.Study, beating: bool, now: datetime
) -> dict[int, tuple[FrozenTrial, str]]:
    """Running trials never marked with a worker (`UNMARKED_GRACE_SECONDS` after they
    started, by `now`) and, without heartbeats, those whose worker process on this
    machine is gone; by trial id."""
    host = socket.gethostname()
    dead: dict[int, tuple[FrozenTrial, str]] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        identity = trial.user_attrs.get(WORKER_ATTR)
        if identity is None:
            start = trial.datetime_start
            if start is None or (now - _aware(start)).total_seconds() < UNMARKED_GRACE_SECONDS:
                continue
            reason = "its worker died before the trial started training"
        elif beating or identity["host"] != host or is_alive(identity):
            continue
        else:
            reason = f"its worker (pid {identity['pid']} on {host}) died mid-trial; re-queued"
        dead[trial_id(trial)] = (trial, reason)
    return dead


def fail_and_requeue(study: optuna.Study, trial: FrozenTrial, reason: str) -> bool:
    """Fail a dead worker's trial for resume and queue its configuration again; False
    when another worker (or the trial's own) finished it first."""
    if not fail_running_trial(study, trial, {FAIL_ATTR: reason, RESUME_ATTR: True}):
        return False
    requeue(study, trial)
    return True


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a stopped or orphaned trial's configuration again, ahead of other queued
    trials (see `worker.ask`); a trial that had sampled nothing yet keeps its
    enqueued params if it had any."""
    params = dict(trial.params) or enqueued_params(trial)
    if not params:
        return
    attrs: dict[str, Any] = {RETRY_ATTR: trial.number}
    if FORCED_ATTR in trial.user_attrs:
        attrs[FORCED_ATTR] = trial.user_attrs[FORCED_ATTR]
    study.enqueue_trial(params, user_attrs=attrs)


def _aware(moment: datetime) -> datetime:
    """`moment` in UTC. Optuna's storages hand out naive datetimes in the machine's
    local time (the journal converts its UTC records to it), which `astimezone` reads
    as local."""
    return moment.astimezone(UTC)
