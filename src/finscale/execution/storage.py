"""Where a study lives: opening its Optuna storage, keeping a URL's password out of
every output, heartbeats of running trials, riding out a database restart, and
every use of Optuna's private API.

A local study is a journal file: one machine, any number of worker processes.
A study shared by many machines is an RDB URL, PostgreSQL in practice
(`postgresql://user:password@host/db`). Each worker process holds a small
connection pool (`DATABASE_POOL`), so a 16-GPU cluster needs about 16 x 4
connections, well inside PostgreSQL's default `max_connections` of 100.

What a --storage string is, and how it is shown, is `storage_url`'s.

Optuna's public API has no way to pop a queued trial in a chosen order, find
stale trials, or mark a trial failed from another process; those need names
Optuna keeps private (`study._storage`, `trial._trial_id`, ...). They are used
here only, each behind one named function that tests/execution/test_optuna_private.py
exercises against real storages, so an Optuna release that renames one fails
there, naming the function to fix.
"""

from __future__ import annotations

import random
import re
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import optuna
import sqlalchemy.engine
import sqlalchemy.exc
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from finscale.atomic import check_folder
from finscale.errors import InputError
from finscale.execution.journal import repair_torn_tail, starts_like_a_journal
from finscale.execution.storage_url import StorageKind, check_storage, redact, scrub

# One connection for the worker's own calls, one for its heartbeat thread, a little
# headroom; `pool_pre_ping` replaces connections a database restart killed, so a
# worker reconnects instead of failing on its first query after the restart.
DATABASE_POOL: dict[str, Any] = {
    "pool_size": 2,
    "max_overflow": 2,
    "pool_timeout": 60,
    "pool_pre_ping": True,
    "pool_recycle": 3600,
}
POSTGRES_CONNECT_ARGS: dict[str, Any] = {"connect_timeout": 10, "application_name": "finscale"}
# Many workers that open a fresh database at once race to create Optuna's tables;
# the losers retry after a short random wait.
OPEN_ATTEMPTS = 6

T = TypeVar("T")

# What a lost or restarting database raises through Optuna's RDB storage.
STORAGE_ERRORS: tuple[type[BaseException], ...] = (
    optuna.exceptions.StorageInternalError,
    sqlalchemy.exc.SQLAlchemyError,
)


def open_storage(
    storage: str, heartbeat_seconds: int | None = None, grace_seconds: int | None = None
) -> BaseStorage:
    """An Optuna storage from a URL (sqlite:///, postgresql://, ...) or a journal path.

    On a database, `heartbeat_seconds` turns heartbeats on: a running trial whose
    heartbeat is older than `grace_seconds` counts as stale, whichever machine ran
    it. Journal files have no heartbeats; their dead workers are found by process
    id. Both are swept by `reaper.reap_dead_trials`. A journal whose last line a
    crash tore is repaired first (`journal.repair_torn_tail`)."""
    kind = check_storage(storage)
    if kind == "journal":
        return _open_journal(Path(storage))
    path = storage_file(storage)
    if path is not None and path.is_file():
        check_storage_file(path, kind)
    key = (storage, heartbeat_seconds, grace_seconds if heartbeat_seconds else None)
    with _OPENED_LOCK:
        if key not in _OPENED:
            _OPENED[key] = _with_retries(
                storage, lambda: _open_database(storage, heartbeat_seconds, grace_seconds)
            )
        return _OPENED[key]


def storage_file(storage: str) -> Path | None:
    """The local file that holds a journal or sqlite storage; None for a server's."""
    kind = check_storage(storage)
    if kind == "journal":
        return Path(storage)
    if kind == "sqlite":
        return Path(sqlalchemy.engine.make_url(storage).database or "")
    return None


def storage_exists(storage: str) -> bool:
    """Whether the storage holds anything yet: its file exists (a journal, a sqlite
    database); a server's database is taken to (connecting says whether it does)."""
    path = storage_file(storage)
    return path is None or path.is_file()


def check_storage_usable(storage: str) -> StorageKind:
    """Refuse, before anything is written, a storage that cannot hold a study: a
    malformed URL, a file path that is a folder or lies where no file can be made,
    a database server that cannot be reached (connected to once, nothing written)."""
    kind = check_storage(storage)
    path = storage_file(storage)
    if path is None:
        _with_retries(storage, lambda: _probe_database(storage))
    elif path.is_dir():
        raise InputError(f"storage {path} is a folder, not a study's file", "storage")
    elif not path.exists():
        check_folder(path, "storage", "storage")  # where its file would be made
    else:
        check_storage_file(path, kind)
    return kind


# The first bytes of every sqlite database file.
SQLITE_HEADER = b"SQLite format 3\x00"


def check_storage_file(path: Path, kind: StorageKind) -> None:
    """Refuse an existing file that is not what `kind` says (a mistyped --storage naming
    a CSV, say), before a journal appended to it or sqlite wrote over it. An empty file,
    and a journal whose one line a crash tore, are a study's file still."""
    try:
        if kind == "journal" and not starts_like_a_journal(path):
            raise InputError(
                f"storage {path} is not a study journal (its first line is no JSON record)",
                "storage",
            )
        with open(path, "rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise InputError(f"cannot read storage {path}: {exc.strerror}", "storage") from None
    if kind == "sqlite" and head and head != SQLITE_HEADER:
        raise InputError(f"storage {path} is not a sqlite database", "storage")


def _probe_database(url: str) -> None:
    engine = sqlalchemy.create_engine(url, **_engine_kwargs(url))
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


def _open_journal(path: Path) -> BaseStorage:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            check_storage_file(path, "journal")
            repair_torn_tail(path)
        backend = optuna.storages.journal.JournalFileBackend(str(path))
        return optuna.storages.JournalStorage(backend)
    except OSError as exc:
        raise InputError(f"cannot open the study file {path}: {exc}", "storage") from None


# One storage (one engine, one pool) per URL and heartbeat setting in a process, however
# many times the process opens it: separate engines would each keep their own connections.
_OPENED: dict[tuple[str, int | None, int | None], BaseStorage] = {}
_OPENED_LOCK = threading.Lock()


def _with_retries(storage: str, connect: Callable[[], T]) -> T:
    """`connect()` to the database of `storage`, retried while the failure may pass;
    an `InputError` (no password in it) when it will not."""
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return connect()
        except ImportError:
            raise InputError(
                f"no database driver for {redact(storage)}: for PostgreSQL, "
                "pip install 'finscale[postgres]' (psycopg)",
                "storage",
            ) from None
        except Exception as exc:  # every driver raises its own kind
            # A concurrent first open (table creation) or a database not up yet.
            transient = isinstance(exc, STORAGE_ERRORS) and not _is_refused(exc)
            if transient and attempt + 1 < OPEN_ATTEMPTS:
                time.sleep(0.2 + random.random() * (attempt + 1))
                continue
            raise InputError(
                f"storage {redact(storage)} is not reachable: {describe_error(exc, storage)}",
                "storage",
            ) from None
    raise AssertionError("unreachable")


def _engine_kwargs(url: str) -> dict[str, Any]:
    kind = check_storage(url)
    engine_kwargs: dict[str, Any] = {}
    if kind != "sqlite":
        engine_kwargs.update(DATABASE_POOL)
    if kind == "postgresql":
        engine_kwargs["connect_args"] = dict(POSTGRES_CONNECT_ARGS)
    return engine_kwargs


def _open_database(
    url: str, heartbeat_seconds: int | None, grace_seconds: int | None
) -> BaseStorage:
    engine_kwargs = _engine_kwargs(url)
    with warnings.catch_warnings():
        # Heartbeats have been "experimental" in Optuna since 2.9; the warning is noise.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_seconds,
            grace_period=grace_seconds if heartbeat_seconds else None,
        )


def _is_refused(exc: BaseException) -> bool:
    """Errors no retry will mend: a wrong password, a missing database or role."""
    text = str(exc).lower()
    return bool(
        re.search(r'(database|role) ".*" does not exist', text)
        or "password authentication failed" in text
        or "no password supplied" in text
    )


def describe_error(exc: BaseException, storage: str) -> str:
    """One line about a storage error: the driver's own message when there is one
    (Optuna wraps it), without the password and without SQLAlchemy's background link."""
    cause = exc.__cause__ if isinstance(exc, optuna.exceptions.StorageInternalError) else None
    inner = getattr(cause or exc, "orig", None) or cause or exc
    text = " ".join(str(inner).split())
    text = text.split(" (Background on this error")[0]
    return scrub(f"{type(inner).__name__}: {text}", storage)


class Heartbeat:
    """Records a running trial's heartbeat every interval on a thread, as Optuna's
    `optimize` does, except that a failed write (the database restarting) is
    retried at the next beat instead of ending the thread with a traceback. A
    no-op on storages without heartbeats."""

    def __init__(self, study: optuna.Study, trial: optuna.Trial) -> None:
        self._study = study
        self._trial = trial
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.missed = 0  # beats that did not reach the storage

    def __enter__(self) -> Heartbeat:
        if heartbeats_on(storage_of(self._study)):
            self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _beat(self) -> None:
        interval = storage_of(self._study).get_heartbeat_interval()
        while not self._stop.is_set():
            try:
                record_heartbeat(self._study, self._trial)
            except STORAGE_ERRORS:
                self.missed += 1
            if self._stop.wait(interval):
                return


def wait_for_storage(
    probe: Callable[[], object],
    limit_seconds: float,
    stop_requested: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Call `probe` (a cheap storage query) with backoff (0.5 s, doubling to 10 s) until
    it succeeds; False when `limit_seconds` pass first or a stop is requested."""
    deadline = clock() + limit_seconds
    pause = 0.5
    while True:
        try:
            probe()
            return True
        except STORAGE_ERRORS:
            pass
        if clock() >= deadline or stop_requested():
            return False
        sleep(min(pause, max(0.0, deadline - clock())))
        pause = min(pause * 2, 10.0)


# ---------------------------------------------------------------- Optuna's private API


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage a study reads and writes (`Study._storage`)."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """The study's id in its storage (`Study._study_id`)."""
    return study._study_id


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The trial's id in its storage (`_trial_id`), which storage calls take; unlike
    its number it is unique across the studies of one storage."""
    return trial._trial_id


def heartbeats_on(storage: BaseStorage) -> bool:
    """Whether the storage records heartbeats (an RDB storage opened with an interval)."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(storage)


def record_heartbeat(study: optuna.Study, trial: optuna.Trial | FrozenTrial) -> None:
    """Record one heartbeat of a running trial now."""
    storage_of(study).record_heartbeat(trial_id(trial))


def stale_trial_ids(study: optuna.Study) -> list[int]:
    """Ids of the running trials whose last heartbeat is older than the storage's grace
    period (`_get_stale_trial_ids`); the storage must record heartbeats."""
    return list(storage_of(study)._get_stale_trial_ids(study_id(study)))


def reload_trial(study: optuna.Study, trial: optuna.Trial | FrozenTrial) -> FrozenTrial:
    """The trial as its storage holds it now."""
    return storage_of(study).get_trial(trial_id(trial))


def pop_waiting_trial(study: optuna.Study, trial: FrozenTrial) -> optuna.Trial | None:
    """Run a queued trial: the storage's atomic WAITING -> RUNNING change, as in Optuna's
    `Study.ask`. None when another worker popped or finished it first."""
    try:
        if not storage_of(study).set_trial_state_values(trial_id(trial), TrialState.RUNNING):
            return None
    except optuna.exceptions.UpdateFinishedTrialError:
        return None
    return optuna.Trial(study, trial_id(trial))


def fail_running_trial(study: optuna.Study, trial: FrozenTrial, attrs: dict[str, Any]) -> bool:
    """Set user attrs on a running trial that another process asked, then fail it.
    False when it finished (or was failed by another worker) first; exactly one of
    several processes that fail the same trial gets True."""
    storage = storage_of(study)
    try:
        for key, value in attrs.items():
            storage.set_trial_user_attr(trial_id(trial), key, value)
        return storage.set_trial_state_values(trial_id(trial), TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


def study_ping(study: optuna.Study) -> int:
    """A cheap query of the study's storage (its id by name): raises when it is lost."""
    return storage_of(study).get_study_id_from_name(study.study_name)


def enqueued_params(trial: FrozenTrial) -> dict[str, Any]:
    """The params `Study.enqueue_trial` fixed for a trial (its `fixed_params` system
    attr); empty for a trial that was not enqueued."""
    return dict(trial.system_attrs.get("fixed_params") or {})


def validate_trial(trial: FrozenTrial) -> None:
    """Optuna's own check of a trial built by hand (`FrozenTrial._validate`): raises
    ValueError on states, values or params that `Study.add_trial` would refuse."""
    trial._validate()


def release_connections(storage: BaseStorage) -> None:
    """Close the pooled connections of an RDB storage (a no-op on a journal)."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()
