"""The journal file of a local study, checked before Optuna reads it.

Optuna's `JournalFileBackend` appends one JSON line per storage operation. A
write cut short (a crash, a full disk) leaves a torn last line: Optuna skips it
while it is last, but the next append glues its own line onto it, and from then
on every read of the study fails with a `JSONDecodeError`. An incomplete last
line can only be an interrupted write, so it is dropped, after a copy of the
journal as it was is kept beside it. Damage anywhere else is no interrupted
write, and the journal is refused.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from optuna.storages.journal import JournalFileSymlinkLock

from finscale.atomic import write_atomic
from finscale.errors import InputError

log = logging.getLogger(__name__)

TORN_COPY_INFIX = ".torn-"  # study.journal.torn-20250101T120000Z


@dataclass(frozen=True)
class JournalScan:
    """Where a journal's lines stop being complete JSON records.

    `bad_line` is the 1-based number of the first line that is not one (None when
    every line is); `good_bytes` the length of the lines before it; `lines` the
    count of lines."""

    good_bytes: int
    bad_line: int | None
    lines: int

    @property
    def torn_tail(self) -> bool:
        """Only the last line is bad: what an interrupted append leaves."""
        return self.bad_line is not None and self.bad_line == self.lines


@dataclass(frozen=True)
class TornTail:
    path: Path
    dropped_bytes: int
    copy: Path


def scan_journal(path: Path) -> JournalScan:
    """Read a journal line by line and find its first line that is not a complete
    (newline-terminated) JSON record."""
    good_bytes, bad_line, number = 0, None, 0
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if bad_line is None:
                if line.endswith(b"\n") and _is_json(line):
                    good_bytes += len(line)
                else:
                    bad_line = number
    return JournalScan(good_bytes, bad_line, number)


def starts_like_a_journal(path: Path) -> bool:
    """Whether the file at `path` can be a journal: empty, or its first line a JSON
    record, or one line an interrupted first append left (no newline yet)."""
    with open(path, "rb") as handle:
        first = handle.readline(1 << 20)
    return not first or not first.endswith(b"\n") or _is_json(first)


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:  # JSONDecodeError, or bytes that are no UTF-8
        return False
    return True


def repair_torn_tail(path: Path) -> TornTail | None:
    """Drop a torn last line of the journal at `path`, keeping a copy of the journal as it
    was beside it (`study.journal.torn-<UTC time>`); log one warning line and return
    what was done, or None when the journal is whole.

    Raises `InputError` naming the file and the line when a line other than the
    last is damaged. Checked first without a lock (the common, whole case costs one
    read); a journal that looks damaged is checked again under Optuna's own lock of
    the file, so an append in progress in another worker is never taken for a torn
    one."""
    if scan_journal(path).bad_line is None:
        return None
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        scan = scan_journal(path)
        if scan.bad_line is None:
            return None
        if not scan.torn_tail:
            raise InputError(
                f"line {scan.bad_line} of {scan.lines} of the study journal is damaged (not a "
                "complete JSON record) and lines follow it, so no interrupted write explains "
                "it; restore the journal from a backup, or give another run directory or storage "
                "to start the study afresh",
                f"{path}, line {scan.bad_line}",
            )
        size = path.stat().st_size
        copy = _copy_beside(path)
        # One truncate: the journal has either its old length or the new one.
        os.truncate(path, scan.good_bytes)
    finally:
        lock.release()
    torn = TornTail(path, size - scan.good_bytes, copy)
    log.warning(
        "the study journal %s ended in a line torn by an interrupted write (a crash or a "
        "full disk): dropped its %d bytes, kept the journal as it was in %s; resuming",
        path,
        torn.dropped_bytes,
        copy,
    )
    return torn


def _copy_beside(path: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    copy = path.with_name(f"{path.name}{TORN_COPY_INFIX}{stamp}")
    n = 1
    while copy.exists():
        n += 1
        copy = path.with_name(f"{path.name}{TORN_COPY_INFIX}{stamp}-{n}")
    return write_atomic(copy, lambda tmp: shutil.copyfile(path, tmp))
