"""Atomic file writes (a temp file in the target's folder, fsync, then
`os.replace`) and the file lock that serialises processes on one machine.

A crash or Ctrl-C mid-write leaves either the old file or the new one, never a
half-written file that a later run would trust. A lock is the kernel's
(`flock`): it is released when its holder ends, however it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from finscale.errors import InputError


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would,
        # so a report or dataset can be read by others as any file of the user's.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None:
            # A failed write() (a full disk) names no file: name the one being written,
            # so the error line says where.
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def check_folder(path: str | Path, what: str, where: str) -> Path:
    """Refuse, before anything is written, a folder that cannot be made or written:
    `path` (or a folder above it) is a file, or the nearest existing folder is not
    writable. `what` names it in the message ("run directory"), `where` is the flag
    or field it came from. Returns `path`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} {path} is a file", where)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{what} {path} cannot be made: {existing} is a file", where)
    if not os.access(existing, os.W_OK | os.X_OK):
        why = (
            "is not writable" if existing == path else f"cannot be made: {existing} is not writable"
        )
        raise InputError(f"{what} {path} {why}", where)
    return path


def check_file(path: str | Path, what: str, where: str) -> Path:
    """Refuse, before anything is written, a file that cannot be written: `path` is a
    folder, or its folder cannot be made or written (`check_folder`). Returns `path`."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder", where)
    if not path.exists():
        check_folder(path, what, where)  # the same walk up to the first folder that exists
    elif not os.access(path.parent, os.W_OK | os.X_OK):  # a replace writes beside it
        raise InputError(f"{what} {path} cannot be replaced: its folder is not writable", where)
    return path


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_bytes(data))


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_parquet_atomic(path: str | Path, frame: pd.DataFrame) -> Path:
    return write_atomic(path, lambda tmp: frame.to_parquet(tmp, engine="pyarrow"))


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) for the block: processes
    of one machine that lock the same path run the block one at a time."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def try_lock(handle: Any) -> bool:
    """Take an exclusive lock on an open file without waiting: False when another
    process holds it (a live worker's file), True once this process does."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
