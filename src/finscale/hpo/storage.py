"""Where a study lives: opening its Optuna storage, keeping a URL's password out of
every output, heartbeats of running trials, and riding out a database restart.

A local study is a journal file: one machine, any number of worker processes.
A study shared by many machines is an RDB URL, PostgreSQL in practice
(`postgresql://user:password@host/db`). Each worker process holds a small
connection pool (`DATABASE_POOL`), so a 16-GPU cluster needs about 16 x 4
connections, well inside PostgreSQL's default `max_connections` of 100.
"""

from __future__ import annotations

import random
import re
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.storages import BaseStorage

from finscale.errors import InputError

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

# What a lost or restarting database raises through Optuna's RDB storage.
STORAGE_ERRORS: tuple[type[BaseException], ...] = (
    optuna.exceptions.StorageInternalError,
    sqlalchemy.exc.SQLAlchemyError,
)


def is_database(storage: str) -> bool:
    """Whether `storage` is an RDB URL (sqlite:///, postgresql://, mysql://) rather than
    the path of a journal file."""
    return "://" in storage


def redact(storage: str) -> str:
    """A storage URL without its password."""
    password = _password(storage)
    return storage.replace(f":{password}@", ":***@", 1) if password else storage


def scrub(text: str, storage: str) -> str:
    """`text` (an error message, a log line) with the password of `storage` masked."""
    password = _password(storage)
    return text.replace(password, "***") if password else text


def _password(storage: str) -> str | None:
    if "://" not in storage or "@" not in storage:
        return None
    credentials = storage.split("://", 1)[1].rsplit("@", 1)[0]
    _user, sep, password = credentials.partition(":")
    return password if sep and password else None


def open_storage(
    storage: str, heartbeat_seconds: int | None = None, grace_seconds: int | None = None
) -> BaseStorage:
    """An Optuna storage from a URL (sqlite:///, postgresql://, ...) or a journal path.

    On a database, `heartbeat_seconds` turns heartbeats on: a running trial whose
    heartbeat is older than `grace_seconds` counts as stale, whichever machine ran
    it. Journal files have no heartbeats; their dead workers are found by process
    id. Both are swept by `study.reap_dead_trials`."""
    if not is_database(storage):
        from pathlib import Path

        try:
            path = Path(storage)
            path.parent.mkdir(parents=True, exist_ok=True)
            backend = optuna.storages.journal.JournalFileBackend(str(path))
            return optuna.storages.JournalStorage(backend)
        except OSError as exc:
            raise InputError(f"cannot open the study file {storage}: {exc}", "--storage") from None
    key = (storage, heartbeat_seconds, grace_seconds if heartbeat_seconds else None)
    with _OPENED_LOCK:
        if key not in _OPENED:
            _OPENED[key] = _open_with_retries(storage, heartbeat_seconds, grace_seconds)
        return _OPENED[key]


# One storage (one engine, one pool) per URL and heartbeat setting in a process, however
# many times the process opens it: separate engines would each keep their own connections.
_OPENED: dict[tuple[str, int | None, int | None], BaseStorage] = {}
_OPENED_LOCK = threading.Lock()


def _open_with_retries(
    storage: str, heartbeat_seconds: int | None, grace_seconds: int | None
) -> BaseStorage:
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return _open_database(storage, heartbeat_seconds, grace_seconds)
        except ImportError:
            raise InputError(
                f"no database driver for {redact(storage)}: for PostgreSQL, "
                "pip install 'finscale[postgres]' (psycopg)",
                "--storage",
            ) from None
        except Exception as exc:  # every driver raises its own kind
            # A concurrent first open (table creation) or a database not up yet.
            transient = isinstance(exc, STORAGE_ERRORS) and not _is_refused(exc)
            if transient and attempt + 1 < OPEN_ATTEMPTS:
                time.sleep(0.2 + random.random() * (attempt + 1))
                continue
            raise InputError(
                f"storage {redact(storage)} is not reachable: {describe_error(exc, storage)}",
                "--storage",
            ) from None
    raise AssertionError("unreachable")


def _open_database(
    url: str, heartbeat_seconds: int | None, grace_seconds: int | None
) -> BaseStorage:
    engine_kwargs: dict[str, Any] = {}
    if not url.startswith("sqlite"):
        engine_kwargs.update(DATABASE_POOL)
    if url.startswith("postgresql"):
        engine_kwargs["connect_args"] = dict(POSTGRES_CONNECT_ARGS)
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


def heartbeats_on(storage: BaseStorage) -> bool:
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(storage)


class Heartbeat:
    """Records a running trial's heartbeat every interval on a thread, as Optuna's
    `optimize` does, except that a failed write (the database restarting) is
    retried at the next beat instead of ending the thread with a traceback. A
    no-op on storages without heartbeats."""

    def __init__(self, storage: BaseStorage, trial_id: int) -> None:
        self._storage = storage
        self._trial_id = trial_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.missed = 0  # beats that did not reach the storage

    def __enter__(self) -> Heartbeat:
        if heartbeats_on(self._storage):
            self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _beat(self) -> None:
        interval = self._storage.get_heartbeat_interval()
        while not self._stop.is_set():
            try:
                self._storage.record_heartbeat(self._trial_id)
            except STORAGE_ERRORS:
                self.missed += 1
            if self._stop.wait(interval):
                return


def wait_for_storage(
    probe: Callable[[], object],
    limit_seconds: float,
    stop_requested: Callable[[], bool] = lambda: False,
) -> bool:
    """Call `probe` (a cheap storage query) with backoff until it succeeds; False when
    `limit_seconds` pass first or a stop is requested."""
    deadline = time.time() + limit_seconds
    pause = 0.5
    while True:
        try:
            probe()
            return True
        except STORAGE_ERRORS:
            pass
        if time.time() >= deadline or stop_requested():
            return False
        time.sleep(min(pause, max(0.0, deadline - time.time())))
        pause = min(pause * 2, 10.0)
