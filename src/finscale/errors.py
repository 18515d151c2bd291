"""Errors finscale raises on bad input.

`InputError` is the one a user can fix: the CLI prints its message as a single
``error: <what> (<where>)`` line and exits with code 2, no traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input a user can fix: a file, a column, a flag, a config value.

    The message says what is wrong and, in parentheses, where: the file, the
    column and the first offending row or date, or the flag to change.
    """

    def __init__(self, what: str, where: str | None = None) -> None:
        self.what = what
        self.where = where
        super().__init__(f"{what} ({where})" if where else what)


class DataValidationError(InputError):
    """A data file or frame fails validation (columns, dates, prices)."""


class RunError(RuntimeError):
    """A run that cannot go on although its input was valid: training diverged,
    memory ran out. The CLI prints ``error: <message>`` and exits with code 1."""
