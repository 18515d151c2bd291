"""A study: one (tier, budget, horizon) searched by one or more workers on one
Optuna storage, resumable until its count of finished trials is reached.

    spec = StudySpec(config, budget=..., study_name=..., run_dir=..., storage=..., ...)
    outcome = run_study(spec)

The storage is the single source of truth. The process that creates the
study stores its config, grid hash and data splits on it and enqueues the
forced extremes; creation is atomic in every Optuna storage, so that happens
once however many workers start together. Workers (`worker.py`) then run its
trials to exactly the requested count; a trial whose worker died is failed
and re-queued by the next worker that finds it (`reaper.py`). A run
directory's study.json mirrors the study's attributes, so records can be
summarised and moved to another storage (`import_trials`).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from finscale.atomic import write_json_atomic
from finscale.errors import InputError
from finscale.execution import (
    BUDGET_ATTR,
    CONFIG_ATTR,
    EVALUATION_QUEUE_SUFFIX,
    FORCED_ATTR,
    FORCED_EXTREMES_ATTR,
    IMPORTED_FROM_ATTR,
    INITIALIZED_ATTR,
    STUDY_NAME_ATTR,
    TRANSFER_ATTR,
    TRIALS_ATTR,
    StopSignal,
    check_storage_usable,
    is_database,
    open_storage,
    redact,
    release_connections,
    request_stop,
    storage_exists,
)
from finscale.hpo.finalists import FinalistRun, run_finalists, train_finalist
from finscale.hpo.forced import forced_extremes
from finscale.hpo.spec import (
    JOURNAL_FILE,
    POLL_SECONDS,
    SEED_BASES,
    STUDY_FILE,
    Prepared,
    StudySpec,
    check_resumable,
    open_study_storage,
    prepare,
)
from finscale.hpo.transfer import Transfer, check_same_transfer
from finscale.hpo.trial_records import (
    RecordWriter,
    frozen_from_record,
    read_trial_records,
    state_counts,
)
from finscale.hpo.worker import TrialCallback, WorkerResult, run_worker, spawn_workers

# Keys of study.json that describe this run directory's copy, not the study itself.
STORAGE_KEY = "storage"
WORKERS_KEY = "workers"


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
        check_resumable(study, spec, prepared)
        check_same_transfer(study.user_attrs.get(TRANSFER_ATTR), spec.transfer, spec.study_name)
        if study.user_attrs.get(TRIALS_ATTR) != spec.trials:
            # A resume with another --trials: workers that join later read the new target.
            study.set_user_attr(TRIALS_ATTR, spec.trials)
            study.set_user_attr(CONFIG_ATTR, spec.config.model_dump(mode="json"))
        return study, False
    for key, value in prepared.info.items():
        study.set_user_attr(key, value)
    if spec.config.search.forced_extremes:
        extremes = forced_extremes(prepared.space, spec.config.search)
        for extreme in extremes:
            study.enqueue_trial(extreme["params"], user_attrs={FORCED_ATTR: extreme["label"]})
        study.set_user_attr(FORCED_EXTREMES_ATTR, [e["label"] for e in extremes])
    # Written last: a worker that loads the study waits for it.
    study.set_user_attr(INITIALIZED_ATTR, True)
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
    seed) are this worker's. Waits up to `wait_seconds` for the study (and a local
    storage's file) to appear; a worker never creates a storage. Returns (spec, the
    study's attrs)."""
    from finscale.config import config_from_mapping

    give_up = time.time() + wait_seconds
    while not storage_exists(storage):
        if time.time() >= give_up:
            raise InputError(
                f"storage {redact(storage)} does not exist; a worker joins an existing study: "
                "create it first with finscale hpo or scale on this storage, or let the "
                "worker wait longer for it",
                "storage",
            )
        time.sleep(POLL_SECONDS)
    backend = open_storage(storage)
    while True:
        attrs = _study_attrs(backend, study_name)
        if attrs is not None and attrs.get(INITIALIZED_ATTR):
            break
        if time.time() >= give_up:
            raise _not_joinable(storage, backend, study_name, attrs)
        time.sleep(POLL_SECONDS)
    # Its pooled connection would idle for the worker's lifetime: the worker's own
    # storage (with heartbeats) takes over from here.
    release_connections(backend)
    overrides: dict[str, Any] = {"search.trials": attrs[TRIALS_ATTR]}
    if device is not None:
        overrides["train.device"] = device
    config = config_from_mapping(attrs[CONFIG_ATTR], overrides, f"study {study_name}")
    spec = StudySpec(
        config=config,
        budget=int(attrs[BUDGET_ATTR]),
        study_name=study_name,
        run_dir=run_dir or Path("runs") / study_name,
        storage=storage,
        store_dir=store_dir,
        workers=workers,
        max_temp_c=max_temp_c,
        deadline=deadline,
        sampler_seed=sampler_seed,
        transfer=Transfer.from_dict(attrs[TRANSFER_ATTR]) if attrs.get(TRANSFER_ATTR) else None,
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
            "study",
        )
    names = sorted(
        s.study_name
        for s in storage.get_all_studies()
        if not s.study_name.endswith(EVALUATION_QUEUE_SUFFIX)
    )
    there = f"studies there: {', '.join(names)}" if names else "it holds no study yet"
    return InputError(
        f"no study {name} in {redact(url)} ({there}); create it with finscale hpo (or scale) "
        "on this storage first, or wait longer for it",
        "study",
    )


# ---------------------------------------------------------------- running a study


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
        return self.counts["finished"] >= self.prepared.info[TRIALS_ATTR]


def run_study(
    spec: StudySpec,
    on_trial: TrialCallback | None = None,
    child_on_trial: TrialCallback | None = None,
    prepared: Prepared | None = None,
    on_start: Callable[[dict[str, int]], None] | None = None,
    on_finalist: Callable[[FinalistRun, int, int], None] | None = None,
) -> StudyOutcome:
    """Create or resume the study and run `spec.workers` workers on it (this process
    is worker 0; the others are spawned processes); once it has its trials, train its
    finalists' re-runs here (`finalists.py`). Returns when every worker ended."""
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
    children = spawn_workers(spec, range(1, spec.workers), child_on_trial)
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
    stop_reason = result.stop_reason
    if stop_reason is None and _has_its_trials(study, prepared):
        with StopSignal(spec.run_dir, spec.deadline) as stop:
            _, stop_reason = run_finalists(
                study,
                lambda trial, seed: train_finalist(prepared, spec.config, trial, seed, stop),
                on_finalist,
            )
    info = {**prepared.info, STUDY_NAME_ATTR: spec.study_name}
    counts = RecordWriter(spec.run_dir, info).export(study)
    return StudyOutcome(
        study, prepared, created, counts, stop_reason, result.reaped, time.time() - started
    )


def _has_its_trials(study: optuna.Study, prepared: Prepared) -> bool:
    counts = state_counts(study.get_trials(deepcopy=False))
    return counts["finished"] >= prepared.info[TRIALS_ATTR]


# ---------------------------------------------------------------- study.json, moving, reading


def write_study_file(spec: StudySpec, prepared: Prepared) -> Path:
    return write_json_atomic(
        spec.run_dir / STUDY_FILE,
        {
            **prepared.info,
            STUDY_NAME_ATTR: spec.study_name,
            STORAGE_KEY: redact(spec.storage),
            TRIALS_ATTR: spec.trials,
            WORKERS_KEY: spec.workers,
        },
    )


def read_study_file(folder: Path) -> dict[str, Any]:
    """The study.json of a run directory (or of the run directory above a trials/ folder)."""
    for candidate in (folder / STUDY_FILE, folder.parent / STUDY_FILE):
        if candidate.is_file():
            try:
                info = json.loads(candidate.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise InputError(f"{candidate} is not valid JSON", str(candidate)) from None
            if not isinstance(info, dict) or not isinstance(info.get(STUDY_NAME_ATTR), str):
                raise InputError(
                    f"{candidate} is not a study's record (no {STUDY_NAME_ATTR})", str(candidate)
                )
            return info
    raise InputError(f"no {STUDY_FILE} in {folder}; is it a study's run directory?", str(folder))


def import_trials(
    folder: Path, storage: str, run_dir: Path, study_name: str | None = None
) -> dict[str, Any]:
    """Create a study in `storage` from the trial records in `folder` and the study.json
    beside them. Refuses to merge into a study that already exists."""
    check_storage_usable(storage)
    info = read_study_file(folder)
    records = read_trial_records(folder)
    frozen = [frozen_from_record(r) for r in records]
    name = study_name or info[STUDY_NAME_ATTR]
    if storage_exists(storage) and name in _study_names(open_storage(storage)):
        raise _already_there(name, storage)
    try:
        study = optuna.create_study(
            storage=open_storage(storage), study_name=name, direction="minimize"
        )
    except optuna.exceptions.DuplicatedStudyError:
        raise _already_there(name, storage) from None
    for key, value in info.items():
        if key not in (STORAGE_KEY, WORKERS_KEY):
            study.set_user_attr(key, value)
    study.set_user_attr(STUDY_NAME_ATTR, name)
    study.set_user_attr(IMPORTED_FROM_ATTR, str(folder))
    for trial in frozen:
        study.add_trial(trial)
    study.set_user_attr(INITIALIZED_ATTR, True)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        run_dir / STUDY_FILE, {**info, STUDY_NAME_ATTR: name, STORAGE_KEY: redact(storage)}
    )
    return {"study_name": name, "storage": redact(storage), "trials": len(frozen)}


def _study_names(storage: optuna.storages.BaseStorage) -> set[str]:
    return {s.study_name for s in storage.get_all_studies()}


def _already_there(name: str, storage: str) -> InputError:
    return InputError(
        f"study {name} already exists in {redact(storage)}; import into another storage "
        "or give another study name",
        "storage",
    )


def summarize_run(run_dir: Path, storage: str | None = None) -> tuple[dict[str, Any], list[Path]]:
    """Export a study's records from its storage, then write summary.json and summary.md."""
    from finscale.hpo.summary import param_importances, summarize, write_summary

    info = read_study_file(run_dir)
    url = storage or info.get(STORAGE_KEY) or str(run_dir / JOURNAL_FILE)
    if "***" in url and storage is None:
        raise InputError(
            f"the study's storage {url} needs its password: pass the storage's full URL",
            "storage",
        )
    recorded_elsewhere = storage is None and not is_database(url) and not Path(url).exists()
    if recorded_elsewhere and (run_dir / JOURNAL_FILE).exists():
        url = str(run_dir / JOURNAL_FILE)  # a relative path recorded from another folder
    if not storage_exists(url):
        raise InputError(f"no study storage at {redact(url)}; pass the storage", "storage")
    name = info[STUDY_NAME_ATTR]
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        raise InputError(f"study {name} is not in {redact(url)}", "storage") from None
    RecordWriter(run_dir, info).export(study)
    try:
        records = read_trial_records(run_dir)
    except InputError:
        records = []
    summary = summarize(info, records, param_importances(study))
    return summary, list(write_summary(run_dir, summary))
