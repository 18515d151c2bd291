"""`finscale scale`, `report` and `validate-cross-budget`: the whole scaling study."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from finscale.atomic import check_folder
from finscale.cli.options import (
    ConfigOpt,
    ConfigTierOpt,
    LabelModeOpt,
    PresetOpt,
    ScaleRunDirArg,
    SetOpt,
    StorageOpt,
    StoreOpt,
    TrialsOpt,
    config_overrides,
    store_dir,
)
from finscale.cli.progress import ProgressRenderer, console, err_console, say
from finscale.units import architecture_label, format_budget, format_clock


def scale_command(
    preset: PresetOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    tier: ConfigTierOpt = None,
    label_mode: LabelModeOpt = None,
    budgets: Annotated[
        str | None, typer.Option(help="Budgets, e.g. 2M,20M,200M (default: the config's).")
    ] = None,
    horizons: Annotated[
        str | None, typer.Option(help="Label horizons in days, e.g. 1,3,5 (default: the config's).")
    ] = None,
    tiers: Annotated[
        str | None,
        typer.Option(
            help="Feature tiers in order, each compared with the next on the test dates "
            "both have, e.g. a25,a50,a100 (default: the data section's one tier)."
        ),
    ] = None,
    trials: TrialsOpt = None,
    seeds: Annotated[
        int | None,
        typer.Option(help="Seeds of each winner's final evaluation (default: the config's)."),
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Folder of the study (default: runs/PRESET).")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Optuna storage URL for every study (default: a journal file per study)."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="HPO worker processes on this machine.")] = 1,
    store: StoreOpt = None,
) -> None:
    """Run (or resume) the whole scaling study: the HPO study of every budget x horizon,
    the winners' final evaluation on test with several seeds, baselines, cross-budget
    validation, the scaling-law fit and the report. Re-running the same command resumes
    it and skips every finished step; `finscale stop RUN_DIR` or Ctrl-C stops it."""
    from finscale.execution import StopRequested, check_storage_usable
    from finscale.scale import (
        Pipeline,
        check_data,
        check_run_dir_matches,
        clear_stops,
        new_scale_spec,
        write_scale_file,
    )

    overrides = config_overrides(
        set_,
        {
            "data.tier": tier,
            "data.label_mode": label_mode,
            "scale.budgets": budgets,
            "scale.horizons": horizons,
            "scale.tiers": tiers,
            "search.trials": trials,
            "scale.seeds": seeds,
        },
    )
    spec = new_scale_spec(preset, config, overrides, run_dir, storage, store_dir(store), workers)
    check_folder(spec.run_dir, "run directory", "--run-dir")
    check_run_dir_matches(spec)
    if spec.storage is not None:
        check_storage_usable(spec.storage)
    if spec.config.search.transfer != "none" and spec.config.model.parametrization == "standard":
        say(
            "warning: search.transfer under model.parametrization=standard is the control "
            "experiment: the optimal learning rate moves with width and depth there",
            err_console(),
        )
    with err_console().status("checking the data against the splits", spinner="dots"):
        warnings = check_data(spec)
    for warning in warnings:
        say(f"warning: {warning}", err_console())
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    write_scale_file(spec)
    clear_stops(spec.run_dir)
    with ProgressRenderer() as progress:
        pipeline = Pipeline(spec, progress)
        try:
            results = pipeline.run()
        except StopRequested as exc:
            progress.print(
                f"stopped ({exc}); run the same command to resume: finished steps are skipped"
            )
            return
    _print_scaling_table(results)
    for path in pipeline.report_paths:
        say(f"wrote {path}")


def _print_scaling_table(results: Any) -> None:
    from finscale.report import scaling_table_markdown

    console.print(scaling_table_markdown(results), soft_wrap=True, highlight=False, markup=False)


def report_command(
    run_dir: ScaleRunDirArg,
    compare: Annotated[
        Path | None,
        typer.Option(
            help="Another run directory of the same study searched otherwise (with or "
            "without search.transfer): its search cost and winners' test loss beside this one's."
        ),
    ] = None,
) -> None:
    """Rebuild experiment_results.csv, scaling.json, report.md, report.html and the
    figures of a scaling study from what it stored (no training)."""
    from finscale.scale import build_results, write_run_report

    check_folder(run_dir, "run directory", str(run_dir))  # it is written into
    results = build_results(run_dir, compare)
    paths = write_run_report(run_dir, results)
    _print_scaling_table(results)
    for path in paths:
        say(f"wrote {path}")


def validate_cross_budget_command(
    run_dir: ScaleRunDirArg,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the plan and its estimated cost; train nothing."),
    ] = False,
    storage: StorageOpt = None,
    store: StoreOpt = None,
) -> None:
    """Train every winner's architecture with every other budget's winning training
    values (the cross-budget matrix of validation log loss); --dry-run prints the plan."""
    from finscale.execution import StopRequested
    from finscale.scale import Pipeline, spec_of_run_dir

    check_folder(run_dir, "run directory", str(run_dir))  # it is written into
    spec = spec_of_run_dir(run_dir, storage, store_dir(store))
    progress = ProgressRenderer()
    pipeline = Pipeline(spec, progress)
    # Read before the bar starts: a refusal is then its one line, nothing above it.
    pipeline.load_winners()
    plan = pipeline.plan_cross_budget()
    if dry_run:
        _print_plan(plan, spec.config.train.max_epochs)
        return
    with progress:
        try:
            pipeline.cross_budget()
        except StopRequested as exc:
            progress.print(f"stopped ({exc}); run the same command to resume")
            return
    say(f"cross-budget matrix stored in {run_dir}; `finscale report {run_dir}` draws it")


def _print_plan(plan: list[Any], max_epochs: int) -> None:
    from finscale.hpo import TRAINING_PARAMS

    table = Table(title="cross-budget plan", box=box.SIMPLE_HEAD)
    for column in ("h", "values of", "architecture of", "architecture", "values", "est."):
        table.add_column(column)
    total_s = 0.0
    todo = 0
    for cell in plan:
        arch = cell.target.architecture
        seconds = cell.estimated_seconds
        known = seconds == seconds  # NaN: the winner's epoch time was not recorded
        if not cell.stored:
            todo += 1
            total_s += seconds if known else 0.0
        table.add_row(
            str(cell.horizon_days),
            format_budget(cell.values_from),
            format_budget(cell.architecture_of),
            f"{architecture_label(arch)} {arch['param_count']:,}",
            _values_text(cell.source.params, TRAINING_PARAMS),
            "stored" if cell.stored else (f"{seconds:.0f} s" if known else "?"),
        )
    console.print(table)
    say(
        f"{len(plan)} trainings planned, {todo} to run, at most about {format_clock(total_s)} "
        f"({max_epochs} epochs each at the winners' measured epoch time; early stopping "
        "makes it shorter)"
    )


# How the plan prints each training value: short name and format.
_VALUE_FORMATS = {
    "learning_rate": ("lr", "{:.2e}"),
    "weight_decay": ("wd", "{:.2e}"),
    "warmup_steps": ("warmup", "{}"),
    "dropout": ("dropout", "{:.2f}"),
}


def _values_text(values: dict[str, Any], names: tuple[str, ...]) -> str:
    parts = []
    for name in names:
        short, form = _VALUE_FORMATS.get(name, (name, "{}"))
        parts.append(f"{short} {form.format(values[name])}")
    return " ".join(parts)
