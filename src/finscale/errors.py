"""The errors finscale raises, and the one line each becomes at the CLI.

`InputError` is the one a user can fix: the CLI prints its message as a single
``error: <what> (<where>)`` line and exits with code 2, no traceback. `RunError`
and an `OSError` (a full disk, a folder without write permission) end a run
with one line and exit code 1.
"""

from __future__ import annotations

import errno


class InputError(ValueError):
    """Bad input a user can fix: a file, a column, a flag, a config value.

    The message says what is wrong and, in parentheses, where: the file, the
    column and the first offending row or date, or the flag to change.
    """

    def __init__(self, what: str, where: str | None = None, fix: str | None = None) -> None:
        # `fix`: the one value of the field `where` that mends it, where one does
        # (``close`` of ``data.tier``); the CLI shows it beside the flag: ``--tier close``.
        self.what = what
        self.where = where
        self.fix = fix
        shown = f"{where}={fix}" if where and fix else where
        super().__init__(f"{what} ({shown})" if shown else what)


class DataValidationError(InputError):
    """A data file or frame fails validation (columns, dates, prices)."""


class RunError(RuntimeError):
    """A run that cannot go on although its input was valid: training diverged,
    memory ran out. The CLI prints ``error: <message>`` and exits with code 1."""


def os_error_line(exc: OSError) -> str:
    """One line for a filesystem fault: what failed, on which path, and what to do.

    Every file finscale writes is atomic and every finished unit (trial, seed,
    cell) is stored before the next starts, so the advice is always the same:
    fix the cause, then run the same command again to resume."""
    where = exc.filename or "a file finscale writes"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = f"no space left on the device writing {where}"
        todo = "free space or move the run directory elsewhere"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        what = f"cannot write {where} ({exc.strerror})"
        todo = "make it writable or choose another folder for the run directory or data store"
    else:
        what = f"{exc.strerror or exc} ({where})"
        todo = "fix the cause"
    return f"{what}; {todo}, then rerun the same command to resume with every finished step"
