"""The `finscale` command line: the app, its command groups, and the one place where
errors become exit codes.

A command parses its flags, calls one function of a layer, and prints. Bad input
ends with one line ``error: <what> (<where>)`` on stderr and exit code 2; a run
that cannot go on (training diverged, a full disk) with one ``error:`` line and
exit code 1; nothing is written before every check has passed. The where of an
input error is the flag the user typed: every command of the app is built as a
`NamesFlagsCommand`, which maps the config field or neutral name that the layers
below give to the command's own flag.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from finscale.cli.coord_check import coord_check_command
from finscale.cli.data import data_app
from finscale.cli.hpo import hpo_app, stop_command, summary_command, worker_command
from finscale.cli.law import fit_law_command
from finscale.cli.model import grid, train_command
from finscale.cli.options import flag_of
from finscale.cli.scale import report_command, scale_command, validate_cross_budget_command
from finscale.errors import InputError, RunError, os_error_line


class FlagNamed(InputError):
    """An input error whose where is already what the user typed: a group whose
    subcommand raised it leaves it as it is."""


class _NamesFlags:
    """A command whose input errors name the flag the user typed (`flag_of`) where the
    layers below name a config field or a neutral name (``run_dir``)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except FlagNamed:
            raise
        except InputError as exc:
            where = flag_of(exc.where, ctx.command.params, ctx.params.get("set_"))
            raise FlagNamed(exc.what, with_fix(where, exc.fix)) from None


def with_fix(where: str | None, fix: str | None) -> str | None:
    """The where of an error with the value that mends it: ``--tier close``,
    ``--set data.tier=close``, ``data.tier=close``."""
    if where is None or fix is None:
        return where
    if where.startswith("--") and not where.startswith("--set "):
        return f"{where} {fix}"
    return f"{where}={fix}"


class NamesFlagsCommand(_NamesFlags, TyperCommand):
    pass


class NamesFlagsGroup(_NamesFlags, TyperGroup):
    pass


def name_flags(typer_app: typer.Typer) -> None:
    """Every command and group of `typer_app`, at any depth, names flags in its errors."""
    for command in typer_app.registered_commands:
        command.cls = NamesFlagsCommand
    for group in typer_app.registered_groups:
        group.cls = NamesFlagsGroup
        name_flags(group.typer_instance)


app = typer.Typer(
    help="Parameter-scaling studies of PatchTST classifiers on daily market data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")
app.command("grid")(grid)
app.command("train")(train_command)
app.add_typer(hpo_app, name="hpo")
app.command("worker")(worker_command)
app.command("stop")(stop_command)
app.command("summary")(summary_command)
app.command("scale")(scale_command)
app.command("report")(report_command)
app.command("validate-cross-budget")(validate_cross_budget_command)
app.command("fit-law")(fit_law_command)
app.command("coord-check")(coord_check_command)
name_flags(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `finscale` script; returns the exit code."""
    try:
        app(args=argv, prog_name="finscale", standalone_mode=False)
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except RunError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 1
    except OSError as exc:
        typer.echo(f"error: {os_error_line(exc)}", err=True)
        return 1
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:
        # Usage errors (unknown flag, bad value); a bare `finscale data` shows help.
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()
            return 0
        ctx = getattr(exc, "ctx", None)
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        typer.echo(f"error: {exc.format_message()}{hint}", err=True)
        return getattr(exc, "exit_code", 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
