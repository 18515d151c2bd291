"""`finscale grid` and `finscale train`: a budget's architectures, and one of them trained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from finscale.atomic import check_file
from finscale.cli.data import build
from finscale.cli.options import (
    DATA_FIELDS,
    MODEL_FIELDS,
    TRAIN_FIELDS,
    BudgetOpt,
    StoreOpt,
    study_config,
    with_config_options,
)
from finscale.cli.progress import ProgressRenderer, console
from finscale.errors import InputError
from finscale.units import format_bytes

# What `grid` takes besides the model options: the data shape and the memory plan's inputs.
GRID_FIELDS = (
    "data.tier",
    "data.context_days",
    "train.effective_batch",
    "train.memory_limit_bytes",
    "train.device",
    "train.dtype",
)


def arch_grid(budget: str, config: Any):
    """The budget's architecture grid at the data shape of a `StudyConfig`."""
    from finscale.data import tier_features
    from finscale.model import build_grid

    n_features = len(tier_features(config.data.tier))
    return build_grid(budget, config.model, n_features, config.data.context_days)


@with_config_options(*GRID_FIELDS, *MODEL_FIELDS)
def grid(
    overrides: dict[str, Any],
    budget: BudgetOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List every architecture of a parameter budget with its memory plan."""
    from finscale.model import plan_grid
    from finscale.train import resolve_hardware

    config = study_config(overrides)
    the_grid = arch_grid(budget, config)
    hardware = resolve_hardware(
        config.train,
        the_grid.median_flops_per_sample,  # the precision a study of this grid trains at
    )
    batch = config.train.effective_batch
    planned = plan_grid(
        the_grid, batch, hardware.memory_limit_bytes, hardware.dtype, hardware.device.type
    )
    if as_json:
        typer.echo(json.dumps([_planned_dict(p, the_grid.budget) for p in planned], indent=2))
        return
    console.print(f"[bold]{the_grid.describe()}[/] (tier {config.data.tier})", soft_wrap=True)
    limit = hardware.memory_limit
    source = "--memory-limit" if limit.source == "asked" else limit.source
    console.print(
        f"memory limit {format_bytes(limit.bytes)} ({source}) on {hardware.device}, "
        f"{hardware.dtype} ({hardware.precision.reason}), effective batch {batch} "
        "(batch column: micro-batch x accumulation steps)",
        soft_wrap=True,
    )
    console.print(_grid_table(planned, the_grid.budget))
    excluded = sum(not p.fits for p in planned)
    smallest = min(p.memory_bytes for p in planned)
    if excluded:
        console.print(
            f"[red]{excluded} of {len(planned)} architectures do not fit the memory limit even "
            f"at micro-batch 1 (the smallest needs {format_bytes(smallest)}); a study excludes "
            "them.[/]"
        )


def _planned_dict(p: Any, budget: int) -> dict[str, Any]:
    return {
        "index": p.architecture.index,
        "config": p.architecture.config.to_dict(),
        "param_count": p.architecture.param_count,
        "deviation": round(p.architecture.deviation(budget), 6),
        "memory_bytes": p.memory_bytes,
        "micro_batch": p.batch.micro_batch if p.batch else None,
        "accumulation_steps": p.batch.accumulation_steps if p.batch else None,
        "fits": p.fits,
    }


def _grid_table(planned: list[Any], budget: int) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name in ("#", "d_model", "layers", "heads", "d_ff", "params", "vs budget", "memory"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("batch", no_wrap=True)
    for p in planned:
        a = p.architecture
        table.add_row(
            str(a.index),
            str(a.config.d_model),
            str(a.config.n_layers),
            str(a.config.n_heads),
            str(a.config.d_ff),
            f"{a.param_count:,}",
            f"{a.deviation(budget):+.1%}",
            format_bytes(p.memory_bytes),
            f"{p.batch.micro_batch} x {p.batch.accumulation_steps}"
            if p.batch
            else "[red]no fit[/]",
        )
    return table


@with_config_options(*TRAIN_FIELDS, *DATA_FIELDS, *MODEL_FIELDS)
def train_command(
    overrides: dict[str, Any],
    budget: BudgetOpt,
    arch_index: Annotated[
        int, typer.Option(help="Architecture of the budget's grid (see `finscale grid`).")
    ],
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Print the learning curve per epoch.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Also write the result to this JSON file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    store: StoreOpt = None,
) -> None:
    """Train one architecture of a budget on the train split, early-stopped on val;
    print its validation metrics."""
    from finscale.model import estimate_flops
    from finscale.train import resolve_hardware

    config = study_config(overrides)
    if out is not None and out.suffix != ".json":
        raise InputError(f"output must be a .json file, got {out}", "--out")
    if out is not None:
        check_file(out, "output file", "--out")
    the_grid = arch_grid(budget, config)
    if not 0 <= arch_index < len(the_grid):
        raise InputError(
            f"budget {budget} has {len(the_grid)} architectures (0 to {len(the_grid) - 1}), "
            f"not {arch_index}; list them with `finscale grid --budget {budget}`",
            "--arch-index",
        )
    # Hardware choices are checked before the dataset is built.
    architecture = the_grid[arch_index]
    hardware = resolve_hardware(config.train, estimate_flops(architecture.config))
    dataset = build(config.data, store)
    result = _train_with_progress(
        architecture.config, dataset.windows(), config.train, hardware, as_json
    )
    record = {
        "budget": the_grid.budget,
        "arch_index": arch_index,
        "grid_hash": the_grid.hash,
        "dataset": dataset.key,
        **result.to_dict(),
    }
    if out is not None:
        from finscale.atomic import write_json_atomic

        write_json_atomic(out, record)
    if as_json:
        typer.echo(json.dumps(record, indent=2, default=str))
        return
    _print_training(result, architecture, the_grid, dataset, budget, config.data, verbose)
    if out is not None:
        console.print(f"  wrote {out}")


def _print_training(result, architecture, the_grid, dataset, budget, data, verbose) -> None:
    c = architecture.config
    splits = dataset.summary()["splits"]
    console.print(
        f"[bold]architecture {architecture.index}[/] of {len(the_grid)} (budget {budget}): "
        f"d_model {c.d_model}, {c.n_layers} layers, {c.n_heads} heads, d_ff {c.d_ff}, "
        f"{result.param_count:,} parameters\n"
        f"  data       {splits['train']['samples']} train / {splits['val']['samples']} val "
        f"samples, tier {data.tier}, horizon {data.horizon_days} day(s), "
        f"dataset {dataset.key[:16]}\n"
        f"  hardware   {result.device}, {result.dtype} ({result.dtype_reason})\n"
        f"  batch      {result.micro_batch} x {result.accumulation_steps} (effective "
        f"{result.effective_batch}), estimate {format_bytes(result.memory_estimate_bytes)} "
        f"of limit {format_bytes(result.memory_limit_bytes)}",
        soft_wrap=True,
    )
    for retry in result.oom_retries:
        console.print(
            f"  [yellow]out of memory at micro-batch {retry['micro_batch']}, retried at "
            f"{retry['retry_micro_batch']} x {retry['retry_accumulation_steps']}[/]"
        )
    how = "stopped early" if result.stopped_early else "all epochs"
    console.print(
        f"  trained    {result.epochs_run} epochs ({how}; best epoch {result.best_epoch}) in "
        f"{result.train_seconds:.1f} s, {result.samples_per_second:,.0f} samples/s, "
        f"peak RSS {format_bytes(result.peak_rss_bytes)}"
    )
    if verbose:
        curve = Table("epoch", "train loss", "val loss", "val AUC", "lr", "seconds", box=box.SIMPLE)
        for r in result.history:
            curve.add_row(
                str(r.epoch),
                f"{r.train_loss:.4f}",
                f"{r.val_loss:.4f}" + (" *" if r.epoch == result.best_epoch else ""),
                f"{r.val_auc:.3f}",
                f"{r.learning_rate:.2e}",
                f"{r.seconds:.2f}",
            )
        console.print(curve)
    console.print(_metrics_table(result.val_metrics, "validation metrics (best epoch)"))


def _metrics_table(metrics: dict[str, Any], title: str) -> Table:
    table = Table("metric", "value", title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for name, value in metrics.items():
        if name == "confusion_matrix":
            (tn, fp), (fn, tp) = value
            table.add_row(escape("confusion [tn fp; fn tp]"), escape(f"[{tn} {fp}; {fn} {tp}]"))
        elif isinstance(value, float):
            table.add_row(name, f"{value:.4f}")
        else:
            table.add_row(name, str(value))
    return table


def _train_with_progress(model_config, windows, train_config, hardware, quiet: bool):
    """Train with a bar of the epoch's steps (stdout stays clean for --json)."""
    from finscale.train import train

    best = {"loss": float("inf"), "epoch": 0}
    epochs = train_config.max_epochs
    with ProgressRenderer("steps", transient=True, disable=quiet) as progress:
        progress.start(f"epoch 1/{epochs}", None)

        def on_step(epoch: int, step: int, steps_per_epoch: int) -> None:
            progress.update(
                description=f"epoch {epoch}/{epochs}", completed=step, total=steps_per_epoch
            )

        def on_epoch(record) -> None:
            if record.val_loss < best["loss"]:
                best.update(loss=record.val_loss, epoch=record.epoch)
            progress.update(
                status=f"val loss {record.val_loss:.4f} (best {best['loss']:.4f} at epoch "
                f"{best['epoch']}), val AUC {record.val_auc:.3f}"
            )

        return train(
            model_config,
            windows,
            train_config,
            hardware=hardware,
            on_epoch=on_epoch,
            on_step=on_step,
        )
