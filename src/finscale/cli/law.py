"""`finscale fit-law`: the scaling law L(N), or the joint law L(N, D), fitted to any
table of runs (one row a run) with bootstrap intervals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from finscale.cli.progress import console
from finscale.errors import InputError


def _column(table: Any, name: str, option: str, path: Path) -> Any:
    """A column of the table as positive floats, or one clear error naming it."""
    import numpy as np
    import pandas as pd

    if name not in table.columns:
        raise InputError(
            f"{path} has no column {name!r}; its columns: {', '.join(map(str, table.columns))}",
            option,
        )
    values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise InputError(
            f"column {name!r} of {path} is not numeric in row {int(bad[0]) + 2} "
            f"({table[name].iloc[int(bad[0])]!r})",
            option,
        )
    if (values <= 0).any():
        row = int(np.flatnonzero(values <= 0)[0])
        raise InputError(
            f"column {name!r} of {path} must be positive (the laws are fitted in log space); "
            f"row {row + 2} holds {values[row]:g}",
            option,
        )
    return values


def fit_law_command(
    file: Annotated[Path, typer.Argument(help="CSV of runs: one row a run.")],
    params_col: Annotated[str, typer.Option(help="Column of each run's parameter count N.")],
    loss_col: Annotated[str, typer.Option(help="Column of each run's loss.")],
    data_col: Annotated[
        str | None,
        typer.Option(help="Column of each run's training-sample (or token) count D: fits L(N, D)."),
    ] = None,
    huber_delta: Annotated[
        float, typer.Option(help="Huber delta on log residuals (Hoffmann et al.: 1e-3).")
    ] = 1e-3,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples of the runs.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    level: Annotated[float, typer.Option(help="Level of the intervals.")] = 0.95,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the estimates as one JSON object.")
    ] = False,
) -> None:
    """Fit L(N) = E + A N^-alpha, or with --data-col L(N, D) = E + A N^-alpha + B D^-beta,
    to a table of runs: Huber loss of log residuals, L-BFGS-B from a grid of starts,
    percentile intervals from a bootstrap of the runs (within each N, or (N, D), cell
    where cells hold several runs)."""
    import numpy as np
    import pandas as pd

    if bootstrap < 1:
        raise InputError(f"--bootstrap must be at least 1, got {bootstrap}", "--bootstrap")
    if not (np.isfinite(huber_delta) and huber_delta > 0):
        raise InputError(f"--huber-delta must be positive, got {huber_delta}", "--huber-delta")
    if not 0 < level < 1:
        raise InputError(f"--level must lie strictly between 0 and 1, got {level}", "--level")
    try:
        table = pd.read_csv(file)
    except FileNotFoundError:
        raise InputError(f"no such file: {file}", str(file)) from None
    except IsADirectoryError:
        raise InputError(f"{file} is a folder, not a CSV table", str(file)) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{file} is not a CSV table: {exc}", str(file)) from None
    n = _column(table, params_col, "--params-col", file)
    loss = _column(table, loss_col, "--loss-col", file)
    d = _column(table, data_col, "--data-col", file) if data_col else None
    out = _fit(n, d, loss, huber_delta, bootstrap, seed, level)
    if as_json:
        typer.echo(json.dumps(out))
        return
    _print(out, file)


def _fit(n, d, loss, huber_delta, bootstrap, seed, level) -> dict[str, Any]:
    """The estimates as `--json` prints them."""
    import numpy as np

    from finscale.analysis import (
        NAMES,
        bootstrap_joint_law,
        bootstrap_scaling_law,
        identification_problem,
    )

    if d is None:
        names = ("E", "A", "alpha")
        if np.unique(n).size < 3:
            raise InputError(
                f"L(N) has 3 parameters and needs at least 3 distinct parameter counts; the "
                f"table has {np.unique(n).size}",
                "--params-col",
            )
        several = np.unique(n).size < n.size
        boot = bootstrap_scaling_law(
            n, loss, bootstrap, seed, level, within_counts=several, huber_delta=huber_delta
        )
        law = "L(N) = E + A * N^-alpha"
    else:
        names = NAMES
        problem = identification_problem(n, d)
        if problem:
            raise InputError(problem + "; fit L(N) without --data-col", "--data-col")
        boot = bootstrap_joint_law(n, d, loss, bootstrap, seed, level, huber_delta)
        law = "L(N, D) = E + A * N^-alpha + B * D^-beta"
    estimates = {name: getattr(boot, name) for name in names}
    out: dict[str, Any] = {name: e.value for name, e in estimates.items()}
    out["intervals"] = {name: [e.low, e.high] for name, e in estimates.items()}
    out.update(
        n_runs=int(n.size),
        law=law,
        level=level,
        n_resamples=boot.draws.n_resamples,
        n_converged=boot.draws.n_converged,
        huber_delta=huber_delta,
        seed=seed,
        converged=boot.fit.converged,
    )
    return out


def _print(out: dict[str, Any], file: Path) -> None:
    from rich.table import Table

    table = Table(title=f"{out['law']}: {out['n_runs']} runs of {file}")
    table.add_column("parameter")
    table.add_column("estimate", justify="right")
    table.add_column(f"{out['level']:.0%} interval", justify="right")
    for name, (low, high) in out["intervals"].items():
        table.add_row(name, f"{out[name]:.6g}", f"[{low:.6g}, {high:.6g}]")
    console.print(table)
    console.print(
        f"bootstrap: {out['n_converged']} of {out['n_resamples']} resamples converged "
        f"(seed {out['seed']}); Huber delta {out['huber_delta']:g}"
        + ("" if out["converged"] else "; the full-sample fit did not converge")
    )
