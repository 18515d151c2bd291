"""The work of a spawned process (a trial worker or an evaluation-queue worker) run so
that its failure is one line, as the command's own would be."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from finscale.errors import InputError, RunError, os_error_line


def as_child_process(what: str, run: Callable[[], Any], quiet: tuple[type, ...] = ()) -> None:
    """Run a spawned process's work: one `error: {what}: ...` line instead of a
    traceback and exit code 1; Ctrl-C (and the `quiet` exceptions) end it silently."""
    import sys

    try:
        run()
    except (KeyboardInterrupt, *quiet):
        pass
    except (InputError, RunError) as exc:
        print(f"error: {what}: {exc}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:
        print(f"error: {what}: {os_error_line(exc)}", file=sys.stderr)
        sys.exit(1)
