"""A study: one (tier, budget, horizon) searched by one or more workers on one
Optuna storage, resumable until its count of finished trials is reached.

    spec = StudySpec(config, budget=..., study_name=..., run_dir=..., storage=..., ...)
    outcome = run_study(spec)

The storage is the single source of truth. The process that creates the
study stores its config, grid hash and data splits on it and enqueues the
forced extremes; creation is atomic in every Optuna storage, so that happens
once however many workers start together. Workers admit a trial only while
fewer than `trials` lower-numbered trials are finished, running or queued,
so the study ends with exactly the requested count of complete + pruned
trials. A trial whose worker died (SIGKILL, power loss) is failed and
re-queued by the next worker on that machine that finds it.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import secrets
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import psutil
from optuna.trial import FrozenTrial, TrialState

from finscale.atomic import file_lock, write_json_atomic
from finscale.config import StudyConfig
from finscale.errors import InputError, RunError
from finscale.hpo.attrs import (
    FAIL_ATTR,
    FORCED_ATTR,
    RESUME_ATTR,
    RETRY_ATTR,
    SURPLUS_ATTR,
    WORKER_ATTR,
)
from finscale.hpo.control import CoreShare, StopSignal, request_stop
from finscale.hpo.forced import forced_extremes
from finscale.hpo.objective import TrialContext, TrialOutcome, requeue, run_trial
from finscale.hpo.records import RecordWriter, state_counts
from finscale.hpo.space import ArchitectureSpace
from finscale.hpo.storage import (
    STORAGE_ERRORS,
    Heartbeat,
    describe_error,
    heartbeats_on,
    open_storage,
    redact,
    wait_for_storage,
)
from finscale.model.grid import ArchitectureGrid, PlannedArchitecture
from finscale.units import format_budget

STUDY_FILE = "study.json"
JOURNAL_FILE = "study.journal"
# A trial asked but not yet marked with its worker, older than this, is orphaned.
UNMARKED_GRACE_SECONDS = 60.0
POLL_SECONDS = 1.0
# Trials the median pruner waits for before it compares a curve with their median.
MEDIAN_PRUNER_STARTUP_TRIALS = 5
# Random seed bases of joining workers stay below this, leaving room for the
# 1000-per-worker offsets inside numpy's 32-bit seeds.
SEED_BASES = 2**31

optuna.logging.set_verbosity(optuna.logging.WARNING)
log = logging.getLogger("finscale.hpo")


def default_study_name(tier: str, budget: int, horizon_days: int) -> str:
    return f"{tier}_{format_budget(budget)}_h{horizon_days}"


@dataclass(frozen=True)
class StudySpec:
    """Everything a worker needs to join a study; picklable for worker processes."""

    config: StudyConfig
    budget: int
    study_name: str
    run_dir: Path
    storage: str  # an Optuna storage URL, or the path of a local journal file
    store_dir: Path  # the data store
    workers: int = 1
    max_temp_c: float | None = None
    deadline: float | None = None  # time.time() after which workers stop
    # Base of the workers' TPE seeds (default: the config's sampler_seed); worker i of
    # this spec samples with base + 1000 i + (trials in the study when it starts).
    sampler_seed: int | None = None

    @property
    def trials(self) -> int:
        return self.config.search.trials


def open_study_storage(spec: StudySpec) -> optuna.storages.BaseStorage:
    """The spec's storage, with heartbeats on when it is a database."""
    search = spec.config.search
    return open_storage(spec.storage, search.heartbeat_seconds, search.heartbeat_grace_seconds)


# ---------------------------------------------------------------- preparing a worker


@dataclass
class Prepared:
    """What a worker builds before its first trial: data, grid, memory plan, space."""

    dataset: Any  # ProcessedDataset
    grid: ArchitectureGrid
    planned: dict[int, PlannedArchitecture]
    space: ArchitectureSpace
    memory_limit_bytes: int
    device: str
    dtype: str
    info: dict[str, Any] = field(default_factory=dict)  # stored on the study


def prepare(spec: StudySpec, joined: dict[str, Any] | None = None) -> Prepared:
    """Build (or load from the store) the dataset, the grid and its memory plan.

    `joined` is the attrs of an existing study a worker joins: its excluded
    architectures define the space, whatever fits this worker's device, so every
    worker searches the same space."""
    from finscale.data.dataset import build_dataset
    from finscale.data.store import DataStore
    from finscale.model.grid import build_grid, plan_grid
    from finscale.train.device import default_memory_limit, resolve_device, resolve_precision

    config = spec.config
    dataset = build_dataset(config.data, DataStore(spec.store_dir))
    grid = build_grid(
        spec.budget, config.model, len(dataset.feature_names), config.data.context_days
    )
    device = resolve_device(config.train.device)
    precision = resolve_precision(config.train.dtype, device)
    limit = config.train.memory_limit_bytes or default_memory_limit(device).bytes
    dtype = "bf16" if precision.dtype == "bf16" else "fp32"
    planned = plan_grid(grid, config.train.effective_batch, limit, dtype, device.type)
    too_large = {p.architecture.index for p in planned if not p.fits}
    excluded = set(config.search.exclude_archs) | too_large
    if joined is not None:
        excluded = set(joined.get("excluded_archs", []))
    space = ArchitectureSpace.from_grid(grid, excluded)
    info = {
        "study_name": spec.study_name,
        "budget": spec.budget,
        "tier": config.data.tier,
        "horizon_days": config.data.horizon_days,
        "grid_hash": grid.hash,
        "grid_size": len(grid),
        "excluded_archs": sorted(excluded),
        "excluded_by_memory": sorted(too_large & excluded),
        "dimension_values": {name: list(v) for name, v in space.values.items()},
        "dataset_key": dataset.key,
        "split_statistics": dataset.summary()["splits"],
        "config": config.model_dump(mode="json"),
        "trials": spec.trials,
    }
    return Prepared(
        dataset,
        grid,
        {p.architecture.index: p for p in planned},
        space,
        limit,
        str(device),
        dtype,
        info,
    )


def make_sampler(config: StudyConfig, seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(
        n_startup_trials=config.search.n_startup_trials,
        multivariate=True,
        constant_liar=True,  # parallel workers do not all sample the same point
        seed=seed,
    )


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    search = config.search
    if search.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=MEDIAN_PRUNER_STARTUP_TRIALS,
            n_warmup_steps=search.pruner_warmup_epochs,
        )
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=max(1, search.pruner_warmup_epochs),
            max_resource=config.train.max_epochs,
            reduction_factor=3,
        )
    return optuna.pruners.NopPruner()


def create_or_load(spec: StudySpec, prepared: Prepared) -> tuple[optuna.Study, bool]:
    """The study, created with its attrs and forced extremes if new; returns
    (study, created). Refuses to resume a study of another grid or dataset."""
    storage = open_study_storage(spec)
    try:
        study = optuna.create_study(
            storage=storage, study_name=spec.study_name, direction="minimize"
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=spec.study_name, storage=storage)
        _check_resumable(study, spec, prepared)
        if study.user_attrs.get("trials") != spec.trials:
            # A resume with another --trials: workers that join later read the new target.
            study.set_user_attr("trials", spec.trials)
            study.set_user_attr("config", spec.config.model_dump(mode="json"))
        return study, False
    for key, value in prepared.info.items():
        study.set_user_attr(key, value)
    if spec.config.search.forced_extremes:
        extremes = forced_extremes(prepared.space, spec.config.search)
        for extreme in extremes:
            study.enqueue_trial(extreme["params"], user_attrs={FORCED_ATTR: extreme["label"]})
        study.set_user_attr("forced_extremes", [e["label"] for e in extremes])
    # Written last: a worker that loads the study waits for it.
    study.set_user_attr("initialized", True)
    return study, True


def join_spec(
    storage: str,
    study_name: str,
    store_dir: Path,
    run_dir: Path | None = None,
    *,
    device: str | None = None,
    sampler_seed: int | None = None,
    workers: int = 1,
    max_temp_c: float | None = None,
    deadline: float | None = None,
    wait_seconds: float = 0.0,
) -> tuple[StudySpec, dict[str, Any]]:
    """The spec of a worker joining a study that `finscale hpo` or `scale` created.

    Its config, budget and trial target are read from the study's attrs on the
    storage, so every worker searches the same space; only the device (and the
    seed) are this worker's. Waits up to `wait_seconds` for the study to appear.
    Returns (spec, the study's attrs)."""
    from finscale.config import config_from_mapping

    backend = open_storage(storage)
    give_up = time.time() + wait_seconds
    while True:
        attrs = _study_attrs(backend, study_name)
        if attrs is not None and attrs.get("initialized"):
            break
        if time.time() >= give_up:
            raise _not_joinable(storage, backend, study_name, attrs)
        time.sleep(POLL_SECONDS)
    engine = getattr(backend, "engine", None)
    if engine is not None:
        # Its pooled connection would idle for the worker's lifetime: the worker's
        # own storage (with heartbeats) takes over from here.
        engine.dispose()
    overrides: dict[str, Any] = {"search.trials": attrs["trials"]}
    if device is not None:
        overrides["train.device"] = device
    config = config_from_mapping(attrs["config"], overrides, f"study {study_name}")
    spec = StudySpec(
        config=config,
        budget=int(attrs["budget"]),
        study_name=study_name,
        run_dir=run_dir or Path("runs") / study_name,
        storage=storage,
        store_dir=store_dir,
        workers=workers,
        max_temp_c=max_temp_c,
        deadline=deadline,
        sampler_seed=sampler_seed,
    )
    return spec, attrs


def _study_attrs(storage: optuna.storages.BaseStorage, name: str) -> dict[str, Any] | None:
    try:
        return storage.get_study_user_attrs(storage.get_study_id_from_name(name))
    except KeyError:
        return None


def _not_joinable(
    url: str, storage: optuna.storages.BaseStorage, name: str, attrs: dict[str, Any] | None
) -> InputError:
    if attrs is not None:
        return InputError(
            f"study {name} in {redact(url)} was not created by finscale (no config stored "
            "on it); join a study made by finscale hpo or finscale scale",
            "--study",
        )
    names = sorted(s.study_name for s in storage.get_all_studies())
    there = f"studies there: {', '.join(names)}" if names else "it holds no study yet"
    return InputError(
        f"no study {name} in {redact(url)} ({there}); create it with finscale hpo (or scale) "
        "--storage URL first, or give --wait-minutes to wait for it",
        "--study",
    )


def _check_resumable(study: optuna.Study, spec: StudySpec, prepared: Prepared) -> None:
    deadline = time.time() + UNMARKED_GRACE_SECONDS
    while not study.user_attrs.get("initialized"):
        if time.time() > deadline:
            raise InputError(
                f"study {spec.study_name} exists in {redact(spec.storage)} but was never "
                "initialised by finscale; give another --study name",
                "--study",
            )
        time.sleep(0.2)
    attrs = study.user_attrs
    if attrs.get("grid_hash") != prepared.grid.hash:
        raise InputError(
            f"study {spec.study_name} was searched on grid {str(attrs.get('grid_hash'))[:12]}, "
            f"this run's grid is {prepared.grid.hash[:12]} (budget, tier, context, patch or "
            "architecture space changed); resuming would mix two searches: use another "
            "--run-dir or --study",
            "--budget",
        )
    if attrs.get("dataset_key") != prepared.dataset.key:
        raise InputError(
            f"study {spec.study_name} was searched on dataset "
            f"{str(attrs.get('dataset_key'))[:16]}, "
            f"this run's dataset is {prepared.dataset.key[:16]} (data options changed); use "
            "another --run-dir or --study",
            "--config",
        )


# ---------------------------------------------------------------- dead workers


def worker_identity(index: int) -> dict[str, Any]:
    process = psutil.Process()
    return {
        "host": socket.gethostname(),
        "pid": process.pid,
        "create_time": process.create_time(),
        "index": index,
    }


def _alive(identity: dict[str, Any]) -> bool:
    try:
        process = psutil.Process(identity["pid"])
        return abs(process.create_time() - identity["create_time"]) < 0.5
    except psutil.Error:
        return False


def reap_dead_trials(
    study: optuna.Study, lock_dir: Path, heartbeat_grace_seconds: int | None = None
) -> list[int]:
    """Fail and re-queue the running trials whose worker is gone; returns their numbers.

    On a database with heartbeats, a trial is dead when its heartbeat is older than
    the grace period, whichever machine ran it. On a journal file (one machine),
    when the process that ran it on this machine no longer exists. On both, a
    trial asked but never marked with its worker is dead after a minute. Many
    workers may reap at once: the storage lets exactly one of them fail each
    trial, and only that one re-queues it."""
    storage = study._storage
    beating = heartbeats_on(storage)
    host = socket.gethostname()
    now = datetime.now(UTC)
    dead: dict[int, tuple[FrozenTrial, str]] = {}
    with file_lock(lock_dir / ".reap.lock"):
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            identity = trial.user_attrs.get(WORKER_ATTR)
            if identity is None:
                start = trial.datetime_start
                if start is None or (now - _aware(start)).total_seconds() < UNMARKED_GRACE_SECONDS:
                    continue
                reason = "its worker died before the trial started training"
            elif beating or identity["host"] != host or _alive(identity):
                continue
            else:
                reason = f"its worker (pid {identity['pid']} on {host}) died mid-trial; re-queued"
            dead[trial._trial_id] = (trial, reason)
        if beating:
            for trial_id in storage._get_stale_trial_ids(study._study_id):
                trial = storage.get_trial(trial_id)
                identity = trial.user_attrs.get(WORKER_ATTR) or {}
                who = f"pid {identity.get('pid')} on {identity.get('host')}"
                reason = (
                    f"no heartbeat for over {heartbeat_grace_seconds} s from its worker ({who}), "
                    "which died or lost the study storage; re-queued"
                )
                dead.setdefault(trial_id, (trial, reason))
        return [t.number for t, reason in dead.values() if _fail_and_requeue(study, t, reason)]


def _fail_and_requeue(study: optuna.Study, trial: FrozenTrial, reason: str) -> bool:
    """Fail a dead worker's trial for resume and queue its configuration again; False
    when another worker (or the trial's own) finished it first."""
    storage = study._storage
    try:
        storage.set_trial_user_attr(trial._trial_id, FAIL_ATTR, reason)
        storage.set_trial_user_attr(trial._trial_id, RESUME_ATTR, True)
        if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    requeue(study, trial)
    return True


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---------------------------------------------------------------- the worker loop


@dataclass
class WorkerResult:
    trials_run: int = 0
    stop_reason: str | None = None
    reaped: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)  # failed as stale by another worker
    outages: int = 0  # times the storage was lost and found again


# on_trial(study, trial, outcome, counts, worker_index); counts has "target" too.
TrialCallback = Callable[[optuna.Study, FrozenTrial, TrialOutcome, dict[str, int], int], None]


def _priority(trial: FrozenTrial) -> tuple[int, int]:
    """Queue order: re-queued configurations (stopped or dead trials) first, so a
    resumed study re-runs them before anything else; then by number."""
    return (0 if RETRY_ATTR in trial.user_attrs else 1, trial.number)


def _ask(study: optuna.Study) -> optuna.Trial:
    """`study.ask()`, except that re-queued trials are popped before other queued ones.
    Popping is the storage's atomic WAITING -> RUNNING change, as in `Study.ask`."""
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    for frozen in sorted(waiting, key=_priority):
        if RETRY_ATTR not in frozen.user_attrs:
            break
        try:
            if study._storage.set_trial_state_values(frozen._trial_id, state=TrialState.RUNNING):
                return optuna.Trial(study, frozen._trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
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


def _next_trial(
    study: optuna.Study, spec: StudySpec, identity: dict[str, Any]
) -> optuna.Trial | str:
    """The next trial to run, or "done" when the study has its count, or "wait" when
    the last trials run elsewhere (one may still fail and need a successor).

    On one machine the check and the pop run under a file lock, so local workers
    never race; across machines the admission rule keeps the count exact."""
    with file_lock(spec.run_dir / ".ask.lock"):
        counts = state_counts(study.get_trials(deepcopy=False))
        if counts["finished"] >= spec.trials:
            return "done"
        if counts["finished"] + counts["running"] >= spec.trials:
            return "wait"
        trial = _ask(study)
        if heartbeats_on(study._storage):
            # Beat before the worker mark: a marked trial always has a heartbeat, so
            # a worker that dies from here on is found by its stale heartbeat.
            study._storage.record_heartbeat(trial._trial_id)
        trial.set_user_attr(WORKER_ATTR, identity)
        frozen = study.get_trials(deepcopy=False)[trial.number]
        if _admitted(study, frozen, spec.trials):
            return trial
        trial.set_user_attr(SURPLUS_ATTR, True)
        study.tell(trial, state=TrialState.FAIL)
        if "fixed_params" in frozen.system_attrs:
            requeue(study, frozen)
        return "wait"


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
    import torch

    prepared = prepared or prepare(spec)
    storage = open_study_storage(spec)
    probe = optuna.load_study(study_name=spec.study_name, storage=storage)
    _check_resumable(probe, spec, prepared)
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
    writer = RecordWriter(spec.run_dir, {**prepared.info, "study_name": spec.study_name})
    result = WorkerResult()
    identity = {**worker_identity(worker_index), "sampler_seed": seed}
    search = spec.config.search
    with StopSignal(spec.run_dir, spec.deadline) as stop, CoreShare() as cores:
        ctx = TrialContext(
            spec.config,
            prepared.space,
            prepared.planned,
            prepared.dataset.windows(),
            stop,
            spec.max_temp_c,
        )
        failed_in_a_row = 0
        while True:
            trial: optuna.Trial | str | None = None
            try:
                result.reaped += reap_dead_trials(
                    study, spec.run_dir, search.heartbeat_grace_seconds
                )
                if stop.requested():
                    break
                trial = _next_trial(study, spec, identity)
                if trial == "done":
                    break
                if trial == "wait":
                    time.sleep(POLL_SECONDS)
                    continue
                torch.set_num_threads(cores.threads())
                with Heartbeat(study._storage, trial._trial_id):
                    outcome = run_trial(study, trial, ctx)
                result.trials_run += 1
                counts = writer.export(study)
                if on_trial is not None:
                    frozen = study.get_trials(deepcopy=False)[trial.number]
                    counts = {**counts, "target": spec.trials}
                    on_trial(study, frozen, outcome, counts, worker_index)
            except optuna.exceptions.UpdateFinishedTrialError:
                # Another worker failed this trial as stale (its heartbeats did not
                # reach the storage within the grace period) and re-queued it.
                if isinstance(trial, optuna.Trial):
                    result.lost.append(trial.number)
                continue
            except STORAGE_ERRORS as exc:
                result.outages += 1
                if not _await_storage(study, spec, stop, exc):
                    break
                if isinstance(trial, optuna.Trial):
                    why = describe_error(exc, spec.storage)
                    frozen = study._storage.get_trial(trial._trial_id)
                    reason = f"the study storage was lost mid-trial ({why}); re-queued"
                    _fail_and_requeue(study, frozen, reason)
                continue
            failed_in_a_row = (
                failed_in_a_row + 1
                if outcome.state == TrialState.FAIL and stop.reason is None
                else 0
            )
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
    if wait_for_storage(
        lambda: study._storage.get_study_id_from_name(spec.study_name), limit_s, stop.requested
    ):
        log.warning("study storage %s is back; going on", redact(spec.storage))
        return True
    if stop.requested():
        return False
    raise RunError(
        f"lost the study storage {redact(spec.storage)} for over {limit_s:.0f} s "
        f"({describe_error(exc, spec.storage)}); every finished trial is stored there: once it "
        "is back, run the same command to go on"
    )


def _worker_process(spec: StudySpec, worker_index: int, on_trial: TrialCallback | None) -> None:
    """A spawned worker: one error line instead of a traceback, exit code 1."""
    import sys

    try:
        run_worker(spec, worker_index, on_trial)
    except KeyboardInterrupt:
        pass
    except (InputError, RunError) as exc:
        print(f"error: worker {worker_index}: {exc}", file=sys.stderr)
        sys.exit(1)


@dataclass
class StudyOutcome:
    study: optuna.Study
    prepared: Prepared
    created: bool
    counts: dict[str, int]
    stop_reason: str | None
    reaped: list[int]
    seconds: float

    @property
    def finished(self) -> bool:
        return self.counts["finished"] >= self.prepared.info["trials"]


def write_study_file(spec: StudySpec, prepared: Prepared) -> Path:
    return write_json_atomic(
        spec.run_dir / STUDY_FILE,
        {
            **prepared.info,
            "study_name": spec.study_name,
            "storage": redact(spec.storage),
            "trials": spec.trials,
            "workers": spec.workers,
        },
    )


def run_study(
    spec: StudySpec,
    on_trial: TrialCallback | None = None,
    child_on_trial: TrialCallback | None = None,
    prepared: Prepared | None = None,
    on_start: Callable[[dict[str, int]], None] | None = None,
) -> StudyOutcome:
    """Create or resume the study and run `spec.workers` workers on it (this process
    is worker 0; the others are spawned processes). Returns when every worker ended."""
    started = time.time()
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    prepared = prepared or prepare(spec)
    study, created = create_or_load(spec, prepared)
    if not created and spec.sampler_seed is None:
        # A resume, or one of several commands on several machines: others may be
        # sampling this study now from the config's seed. A random base keeps their
        # draws apart; a fresh study's run stays reproducible.
        spec = dataclasses.replace(spec, sampler_seed=secrets.randbelow(SEED_BASES))
    write_study_file(spec, prepared)
    if on_start is not None:
        on_start(state_counts(study.get_trials(deepcopy=False)))
    children = []
    if spec.workers > 1:
        context = multiprocessing.get_context("spawn")
        for index in range(1, spec.workers):
            process = context.Process(
                target=_worker_process, args=(spec, index, child_on_trial), daemon=False
            )
            process.start()
            children.append(process)
    result: WorkerResult | None = None
    try:
        result = run_worker(spec, 0, on_trial, prepared)
    finally:
        if children:
            # Worker 0 stopped on something only it saw (SIGTERM, an error): the
            # others learn it from the run directory's STOP file.
            if result is None or result.stop_reason is not None:
                request_stop(spec.run_dir)
            for process in children:
                process.join()
    counts = RecordWriter(spec.run_dir, {**prepared.info, "study_name": spec.study_name}).export(
        study
    )
    return StudyOutcome(
        study, prepared, created, counts, result.stop_reason, result.reaped, time.time() - started
    )


# ---------------------------------------------------------------- moving and reading studies


def read_study_file(folder: Path) -> dict[str, Any]:
    """The study.json of a run directory (or of the run directory above a trials/ folder)."""
    import json

    for candidate in (folder / STUDY_FILE, folder.parent / STUDY_FILE):
        if candidate.exists():
            try:
                return json.loads(candidate.read_text())
            except json.JSONDecodeError:
                raise InputError(f"{candidate} is not valid JSON", str(candidate)) from None
    raise InputError(f"no {STUDY_FILE} in {folder}; is it a study's run directory?", str(folder))


def import_trials(
    folder: Path, storage: str, run_dir: Path, study_name: str | None = None
) -> dict[str, Any]:
    """Create a study in `storage` from the trial records in `folder` and the study.json
    beside them. Refuses to merge into a study that already exists."""
    from finscale.hpo.records import frozen_from_record, read_trial_records

    info = read_study_file(folder)
    records = read_trial_records(folder)
    frozen = [frozen_from_record(r) for r in records]
    name = study_name or info["study_name"]
    try:
        study = optuna.create_study(
            storage=open_storage(storage), study_name=name, direction="minimize"
        )
    except optuna.exceptions.DuplicatedStudyError:
        raise InputError(
            f"study {name} already exists in {redact(storage)}; import into another storage "
            "or give another --study",
            "--storage",
        ) from None
    for key, value in info.items():
        if key not in ("storage", "workers"):
            study.set_user_attr(key, value)
    study.set_user_attr("study_name", name)
    study.set_user_attr("imported_from", str(folder))
    for trial in frozen:
        study.add_trial(trial)
    study.set_user_attr("initialized", True)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        run_dir / STUDY_FILE, {**info, "study_name": name, "storage": redact(storage)}
    )
    return {"study_name": name, "storage": redact(storage), "trials": len(frozen)}


def summarize_run(run_dir: Path, storage: str | None = None) -> tuple[dict[str, Any], list[Path]]:
    """Export a study's records from its storage, then write summary.json and summary.md."""
    from finscale.hpo.records import read_trial_records
    from finscale.hpo.summary import param_importances, summarize, write_summary

    info = read_study_file(run_dir)
    url = storage or info.get("storage") or str(run_dir / JOURNAL_FILE)
    if "://" not in url and not Path(url).exists() and (run_dir / JOURNAL_FILE).exists():
        url = str(run_dir / JOURNAL_FILE)  # a relative path recorded from another folder
    if "***" in url:
        raise InputError(
            f"the study's storage {url} needs its password: pass --storage with the full URL",
            "--storage",
        )
    if "://" not in url and not Path(url).exists():
        raise InputError(f"no study storage at {url}; pass --storage", "--storage")
    try:
        study = optuna.load_study(study_name=info["study_name"], storage=open_storage(url))
    except KeyError:
        raise InputError(
            f"study {info['study_name']} is not in {redact(url)}", "--storage"
        ) from None
    RecordWriter(run_dir, info).export(study)
    try:
        records = read_trial_records(run_dir)
    except InputError:
        records = []
    summary = summarize(info, records, param_importances(study))
    return summary, list(write_summary(run_dir, summary))
