"""The `finscale` command line: parses flags, calls one function per command, prints.

Bad input ends with one line ``error: <what> (<where>)`` on stderr and exit
code 2; nothing is written before every check has passed.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import pydantic
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from finscale.errors import InputError, RunError

app = typer.Typer(
    help="Parameter-scaling studies of PatchTST classifiers on daily market data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Build, inspect and describe datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

# Piped output is not wrapped at 80 columns: tables and hashes stay whole in logs.
console = Console(width=None if sys.stdout.isatty() else 200)

# The options of `data build`/`data show` that select a dataset, and the
# DataConfig field each sets; an error on a field names its flag.
FIELD_OF_OPTION = {
    "source": "source",
    "path": "path",
    "target": "target",
    "symbols": "symbols",
    "tier": "tier",
    "horizon": "horizon_days",
    "threshold": "threshold",
    "label_rule": "label_rule",
    "threshold_mode": "threshold_mode",
    "volatility_k": "volatility_k",
    "context": "context_days",
    "split": "split",
    "chunks": "n_chunks",
    "start": "start",
    "end": "end",
}
FLAG_OF_FIELD = {
    field: "--" + option.replace("_", "-") for option, field in FIELD_OF_OPTION.items()
}


def default_store_dir() -> Path:
    return Path(os.environ.get("FINSCALE_STORE", "~/.cache/finscale/store")).expanduser()


# The options of `grid` that set ModelConfig fields under another name.
MODEL_FLAG_OF_FIELD = {
    "d_models": "--d-models",
    "n_layers": "--n-layers",
    "n_heads": "--n-heads",
    "ff_ratio": "--ff-ratio",
    "budget_tolerance": "--tolerance",
    "patch_len": "--patch-len",
    "stride": "--stride",
}


def _validated(config_class: type[pydantic.BaseModel], flag_of_field: dict[str, str], **fields):
    """Build a config section; the first validation error becomes one InputError naming
    the flag that set the field."""
    try:
        return config_class(**{k: v for k, v in fields.items() if v is not None})
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        message = first["msg"].removeprefix("Value error, ")
        raise InputError(
            f"{field}: {message}" if field else message, flag_of_field.get(field, "config")
        ) from None


def _data_config(**fields: Any):
    from finscale.config import DataConfig

    return _validated(DataConfig, FLAG_OF_FIELD, **fields)


# Options shared by `data build` and `data show`: they select one dataset.
SourceOpt = Annotated[str, typer.Option(help="bundled (arch data), csv (a folder) or yahoo.")]
PathOpt = Annotated[Path | None, typer.Option(help="Folder of SYMBOL.csv/.parquet files.")]
TargetOpt = Annotated[str, typer.Option(help="Symbol whose moves are labelled.")]
SymbolsOpt = Annotated[
    str | None, typer.Option(help="Context symbols, comma-separated (e.g. NASDAQ,VIX).")
]
TierOpt = Annotated[str, typer.Option(help="Feature tier: a25, a50 or a100.")]
HorizonOpt = Annotated[int, typer.Option("--horizon", help="Label horizon in trading days.")]
ThresholdOpt = Annotated[float, typer.Option(help="Rise that makes a positive label (0.01 = 1%).")]
RuleOpt = Annotated[str, typer.Option(help="max_close (any close within h days) or close.")]
ModeOpt = Annotated[str, typer.Option(help="fixed, or volatility (k x trailing vol x sqrt(h)).")]
KOpt = Annotated[float, typer.Option(help="k of the volatility-scaled threshold.")]
ContextOpt = Annotated[int, typer.Option("--context", help="Input window length in days.")]
SplitOpt = Annotated[str, typer.Option(help="chronological or chunked.")]
ChunksOpt = Annotated[int, typer.Option("--chunks", help="Train/val chunks (chunked split).")]
StartOpt = Annotated[
    datetime | None, typer.Option(formats=["%Y-%m-%d"], help="First date used (YYYY-MM-DD).")
]
EndOpt = Annotated[
    datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Last date used (YYYY-MM-DD).")
]
StoreOpt = Annotated[
    Path | None,
    typer.Option(help="Data store folder (default: $FINSCALE_STORE or ~/.cache/finscale/store)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]


def _build(options: dict[str, Any], must_exist: bool = False):
    """Build (or, with `must_exist`, only look up) the dataset a command's options select."""
    from finscale.data.dataset import build_dataset
    from finscale.data.store import DataStore

    fields = {
        field: options[option].date() if isinstance(options[option], datetime) else options[option]
        for option, field in FIELD_OF_OPTION.items()
    }
    config = _data_config(**fields)
    store = options["store"]
    with console.status("building dataset", spinner="dots"):
        return build_dataset(config, DataStore(store or default_store_dir()), must_exist=must_exist)


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    roles = ", ".join(f"{role} {symbol}" for role, symbol in summary["roles"].items())
    label = summary["label"]
    how = "reused from store" if summary["reused"] else "built"
    console.print(
        f"[bold]dataset {summary['key'][:16]}[/] ({how}"
        f" in {summary['build_seconds']:.2f} s)\n"
        f"  inputs     {roles}\n"
        f"  rows       {summary['rows']} ({summary['first_date']} to {summary['last_date']})\n"
        f"  features   {summary['n_features']} (tier {summary['tier']})\n"
        f"  label      rise >= {label['threshold']:g} ({label['threshold_mode']}) "
        f"by {label['rule']} within {label['horizon_days']} day(s)\n"
        f"  windows    {summary['context_days']} days, {summary['split_kind']} split"
    )
    table = Table("split", "samples", "positives", "positive rate", "first date", "last date")
    for name, s in summary["splits"].items():
        table.add_row(
            name,
            str(s["samples"]),
            str(s["positives"]),
            f"{s['positive_rate']:.3f}",
            s["first_date"],
            s["last_date"],
        )
    console.print(table)
    excluded = ", ".join(f"{k} {v}" for k, v in summary["row_states"].items())
    console.print(f"  rows outside the splits: {excluded}")
    # Hashes are printed whole and unwrapped so they can be copied and compared.
    for symbol, sha in summary["inputs"].items():
        console.print(f"  sha256 {symbol:<8} {sha}", soft_wrap=True)
    console.print(f"  sha256 dataset  {summary['sha256']}", soft_wrap=True)


@data_app.command("build")
def data_build(
    source: SourceOpt = "bundled",
    path: PathOpt = None,
    target: TargetOpt = "SP500",
    symbols: SymbolsOpt = None,
    tier: TierOpt = "a25",
    horizon: HorizonOpt = 1,
    threshold: ThresholdOpt = 0.01,
    label_rule: RuleOpt = "max_close",
    threshold_mode: ModeOpt = "fixed",
    volatility_k: KOpt = 1.0,
    context: ContextOpt = 60,
    split: SplitOpt = "chronological",
    chunks: ChunksOpt = 5,
    start: StartOpt = None,
    end: EndOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="Also write the model-ready table to this parquet file.")
    ] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build the processed dataset (or reuse it from the store) and print its summary."""
    options = locals()
    if out is not None and out.suffix != ".parquet":
        raise InputError(f"output must be a .parquet file, got {out.name}", "--out")
    dataset = _build(options)
    summary = dataset.summary()
    if out is not None:
        from finscale.atomic import write_parquet_atomic

        table = dataset.model_ready()
        write_parquet_atomic(out, table)
        summary["out"] = {"path": str(out), "rows": len(table), "columns": len(table.columns)}
    _print_summary(summary, as_json)
    if out is not None and not as_json:
        console.print(f"  wrote {out} ({len(table)} rows, {len(table.columns)} columns)")


@data_app.command("show")
def data_show(
    source: SourceOpt = "bundled",
    path: PathOpt = None,
    target: TargetOpt = "SP500",
    symbols: SymbolsOpt = None,
    tier: TierOpt = "a25",
    horizon: HorizonOpt = 1,
    threshold: ThresholdOpt = 0.01,
    label_rule: RuleOpt = "max_close",
    threshold_mode: ModeOpt = "fixed",
    volatility_k: KOpt = 1.0,
    context: ContextOpt = 60,
    split: SplitOpt = "chronological",
    chunks: ChunksOpt = 5,
    start: StartOpt = None,
    end: EndOpt = None,
    all_entries: Annotated[
        bool, typer.Option("--all", help="List every entry of the store's manifest instead.")
    ] = False,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a dataset: rows, date range, label balance per split, feature count, hashes."""
    options = locals()
    from finscale.data.store import DataStore

    store_dir = store or default_store_dir()
    if all_entries:
        entries = DataStore(store_dir).entries()
        if as_json:
            typer.echo(json.dumps(entries, indent=2))
            return
        table = Table("key", "kind", "rows", "first date", "last date", "sha256", "created")
        for key, e in sorted(entries.items()):
            table.add_row(
                key,
                e["kind"],
                str(e["rows"]),
                e["first_date"],
                e["last_date"],
                e["sha256"][:16],
                e["created_at"],
            )
        console.print(table if entries else f"store {store_dir} is empty")
        return
    dataset = _build(options, must_exist=True)
    _print_summary(dataset.summary(), as_json)


@data_app.command("features")
def data_features(
    tier: TierOpt = "a25",
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List every feature of a tier with a one-line description."""
    from finscale.data.features import tier_features, tier_roles

    features = tier_features(tier)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {"name": f.name, "role": f.role, "kind": f.kind, "description": f.description}
                    for f in features
                ],
                indent=2,
            )
        )
        return
    table = Table(
        "#",
        "feature",
        "input",
        "kind",
        "description",
        title=f"tier {tier}: {len(features)} features, needs {', '.join(tier_roles(tier))}",
    )
    for i, f in enumerate(features, 1):
        table.add_row(str(i), f.name, f.role, f.kind, f.description)
    console.print(table)


# Options that define a budget's architecture grid (shared by `grid` and `train`).
BudgetOpt = Annotated[str, typer.Option(help="Parameter budget: 50K, 2M, 2B or an integer.")]
PatchLenOpt = Annotated[int, typer.Option(help="Days per patch.")]
StrideOpt = Annotated[int, typer.Option(help="Days between patch starts.")]
DModelsOpt = Annotated[str | None, typer.Option(help="d_model values searched, comma-separated.")]
NLayersOpt = Annotated[str | None, typer.Option(help="n_layers values searched, comma-separated.")]
NHeadsOpt = Annotated[str | None, typer.Option(help="n_heads values searched, comma-separated.")]
FfRatioOpt = Annotated[float, typer.Option(help="d_ff = ratio x d_model.")]
ToleranceOpt = Annotated[
    float, typer.Option(help="An architecture belongs within +-this fraction of the budget.")
]
BatchOpt = Annotated[int, typer.Option(help="Effective batch (samples per optimizer step).")]
MemoryLimitOpt = Annotated[
    str | None,
    typer.Option(
        help="Training memory limit, e.g. 16GB (default: 90% free CUDA / 80% available RAM)."
    ),
]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")]
DtypeOpt = Annotated[str, typer.Option(help="auto, fp32 or bf16 (autocast).")]


def _arch_grid(budget: str, tier: str, context: int, **model_fields: Any):
    """The budget's architecture grid at the tier's data shape."""
    from finscale.config import ModelConfig
    from finscale.data.features import tier_features
    from finscale.model.grid import build_grid

    model = _validated(ModelConfig, MODEL_FLAG_OF_FIELD, **model_fields)
    if context < model.patch_len:
        raise InputError(
            f"context {context} days is shorter than a patch ({model.patch_len})", "--context"
        )
    return build_grid(budget, model, len(tier_features(tier)), context)


@app.command("grid")
def grid(
    budget: BudgetOpt,
    tier: TierOpt = "a25",
    context: ContextOpt = 60,
    patch_len: PatchLenOpt = 16,
    stride: StrideOpt = 8,
    d_models: DModelsOpt = None,
    n_layers: NLayersOpt = None,
    n_heads: NHeadsOpt = None,
    ff_ratio: FfRatioOpt = 4.0,
    tolerance: ToleranceOpt = 0.25,
    batch: BatchOpt = 128,
    memory_limit: MemoryLimitOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List every architecture of a parameter budget with its memory plan."""
    from finscale.model.grid import plan_grid
    from finscale.train.device import (
        MemoryLimit,
        default_memory_limit,
        resolve_device,
        resolve_precision,
    )
    from finscale.units import format_bytes, parse_memory_size

    arch_grid = _arch_grid(
        budget,
        tier,
        context,
        d_models=d_models,
        n_layers=n_layers,
        n_heads=n_heads,
        ff_ratio=ff_ratio,
        budget_tolerance=tolerance,
        patch_len=patch_len,
        stride=stride,
    )
    if batch < 1:
        raise InputError(f"effective batch must be at least 1, got {batch}", "--batch")
    the_device = resolve_device(device)
    precision = resolve_precision(dtype, the_device)
    limit = (
        MemoryLimit(parse_memory_size(memory_limit), "--memory-limit")
        if memory_limit is not None
        else default_memory_limit(the_device)
    )
    planned = plan_grid(arch_grid, batch, limit.bytes, precision.dtype, the_device.type)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "index": p.architecture.index,
                        "config": p.architecture.config.to_dict(),
                        "param_count": p.architecture.param_count,
                        "deviation": round(p.architecture.deviation(arch_grid.budget), 6),
                        "memory_bytes": p.memory_bytes,
                        "micro_batch": p.batch.micro_batch if p.batch else None,
                        "accumulation_steps": p.batch.accumulation_steps if p.batch else None,
                        "fits": p.fits,
                    }
                    for p in planned
                ],
                indent=2,
            )
        )
        return
    console.print(f"[bold]{arch_grid.describe()}[/] (tier {tier})", soft_wrap=True)
    console.print(
        f"memory limit {format_bytes(limit.bytes)} ({limit.source}) on {the_device}, "
        f"{precision.dtype} ({precision.reason}), effective batch {batch} "
        "(batch column: micro-batch x accumulation steps)",
        soft_wrap=True,
    )
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
            f"{a.deviation(arch_grid.budget):+.1%}",
            format_bytes(p.memory_bytes),
            f"{p.batch.micro_batch} x {p.batch.accumulation_steps}"
            if p.batch
            else "[red]no fit[/]",
        )
    console.print(table)
    excluded = sum(not p.fits for p in planned)
    smallest = min(p.memory_bytes for p in planned)
    if excluded:
        console.print(
            f"[red]{excluded} of {len(planned)} architectures do not fit the memory limit even "
            f"at micro-batch 1 (the smallest needs {format_bytes(smallest)}); a study excludes "
            "them.[/]"
        )


# The options of `train` that set TrainConfig fields under another name.
TRAIN_FLAG_OF_FIELD = {
    "learning_rate": "--lr",
    "weight_decay": "--weight-decay",
    "warmup_steps": "--warmup-steps",
    "max_epochs": "--epochs",
    "effective_batch": "--batch",
    "micro_batch": "--micro-batch",
    "grad_clip": "--grad-clip",
    "pos_weight": "--pos-weight",
    "patience": "--patience",
    "min_delta": "--min-delta",
    "seed": "--seed",
    "device": "--device",
    "dtype": "--dtype",
    "compile": "--compile",
    "memory_limit_bytes": "--memory-limit",
}


@app.command("train")
def train_command(
    budget: BudgetOpt,
    arch_index: Annotated[
        int, typer.Option(help="Architecture of the budget's grid (see `finscale grid`).")
    ],
    source: SourceOpt = "bundled",
    path: PathOpt = None,
    target: TargetOpt = "SP500",
    symbols: SymbolsOpt = None,
    tier: TierOpt = "a25",
    horizon: HorizonOpt = 1,
    threshold: ThresholdOpt = 0.01,
    label_rule: RuleOpt = "max_close",
    threshold_mode: ModeOpt = "fixed",
    volatility_k: KOpt = 1.0,
    context: ContextOpt = 60,
    split: SplitOpt = "chronological",
    chunks: ChunksOpt = 5,
    start: StartOpt = None,
    end: EndOpt = None,
    store: StoreOpt = None,
    patch_len: PatchLenOpt = 16,
    stride: StrideOpt = 8,
    d_models: DModelsOpt = None,
    n_layers: NLayersOpt = None,
    n_heads: NHeadsOpt = None,
    ff_ratio: FfRatioOpt = 4.0,
    tolerance: ToleranceOpt = 0.25,
    dropout: Annotated[float, typer.Option(help="Dropout after embedding, attention, FF.")] = 0.1,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).")] = 3e-4,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay on matrices.")] = 0.01,
    warmup_steps: Annotated[int, typer.Option(help="Linear warmup, optimizer steps.")] = 50,
    epochs: Annotated[int, typer.Option(help="Maximum epochs.")] = 100,
    batch: BatchOpt = 128,
    micro_batch: Annotated[
        int | None, typer.Option(help="Samples per forward pass (default: memory planner).")
    ] = None,
    grad_clip: Annotated[float, typer.Option(help="Max gradient norm; 0 disables.")] = 1.0,
    pos_weight: Annotated[
        str | None, typer.Option(help="Positive-class loss weight, or 'balanced'.")
    ] = None,
    patience: Annotated[int, typer.Option(help="Early stopping: epochs without gain.")] = 10,
    min_delta: Annotated[float, typer.Option(help="Early stopping: smallest gain.")] = 0.001,
    seed: Annotated[int, typer.Option(help="Seed of initialisation, shuffling, dropout.")] = 0,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    compile_model: Annotated[bool, typer.Option("--compile", help="torch.compile the model.")] = (
        False
    ),
    memory_limit: MemoryLimitOpt = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Print the learning curve per epoch.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Also write the result to this JSON file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Train one architecture of a budget on the train split, early-stopped on val;
    print its validation metrics."""
    options = locals()
    from finscale.config import TrainConfig
    from finscale.train.device import resolve_device, resolve_precision
    from finscale.units import format_bytes

    if out is not None and out.suffix != ".json":
        raise InputError(f"output must be a .json file, got {out.name}", "--out")
    arch_grid = _arch_grid(
        budget,
        tier,
        context,
        d_models=d_models,
        n_layers=n_layers,
        n_heads=n_heads,
        ff_ratio=ff_ratio,
        budget_tolerance=tolerance,
        patch_len=patch_len,
        stride=stride,
        dropout=dropout,
    )
    if not 0 <= arch_index < len(arch_grid):
        raise InputError(
            f"budget {budget} has {len(arch_grid)} architectures (0 to {len(arch_grid) - 1}), "
            f"not {arch_index}; list them with `finscale grid --budget {budget}`",
            "--arch-index",
        )
    weight: float | str | None = pos_weight
    if pos_weight is not None and pos_weight != "balanced":
        try:
            weight = float(pos_weight)
        except ValueError:
            raise InputError(
                f"pos weight {pos_weight!r} is not a number or 'balanced'", "--pos-weight"
            ) from None
    train_config = _validated(
        TrainConfig,
        TRAIN_FLAG_OF_FIELD,
        learning_rate=lr,
        weight_decay=weight_decay,
        warmup_steps=warmup_steps,
        max_epochs=epochs,
        effective_batch=batch,
        micro_batch=micro_batch,
        grad_clip=grad_clip,
        pos_weight=weight,
        patience=patience,
        min_delta=min_delta,
        seed=seed,
        device=device,
        dtype=dtype,
        compile=compile_model,
        memory_limit_bytes=memory_limit,
    )
    # Hardware choices are checked before the dataset is built.
    resolve_precision(train_config.dtype, resolve_device(train_config.device))
    architecture = arch_grid[arch_index]
    dataset = _build(options)
    windows = dataset.windows()
    result = _train_with_progress(architecture.config, windows, train_config, as_json)
    record = {
        "budget": arch_grid.budget,
        "arch_index": arch_index,
        "grid_hash": arch_grid.hash,
        "dataset": dataset.key,
        **result.to_dict(),
    }
    if out is not None:
        from finscale.atomic import write_json_atomic

        write_json_atomic(out, record)
    if as_json:
        typer.echo(json.dumps(record, indent=2, default=str))
        return
    c = architecture.config
    summary = dataset.summary()["splits"]
    console.print(
        f"[bold]architecture {arch_index}[/] of {len(arch_grid)} (budget {budget}): "
        f"d_model {c.d_model}, {c.n_layers} layers, {c.n_heads} heads, d_ff {c.d_ff}, "
        f"{result.param_count:,} parameters\n"
        f"  data       {summary['train']['samples']} train / {summary['val']['samples']} val "
        f"samples, tier {tier}, horizon {horizon} day(s), dataset {dataset.key[:16]}\n"
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
    if out is not None:
        console.print(f"  wrote {out}")


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


def _train_with_progress(model_config, windows, train_config, quiet: bool):
    """Train with a progress bar on stderr (stdout stays clean for --json)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from finscale.train.trainer import train

    best = {"loss": float("inf"), "epoch": 0}
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=Console(stderr=True),
        transient=True,
        disable=quiet,
    )
    epochs = train_config.max_epochs

    def on_step(epoch: int, step: int, steps_per_epoch: int) -> None:
        progress.update(
            task, description=f"epoch {epoch}/{epochs}", completed=step, total=steps_per_epoch
        )

    def on_epoch(record) -> None:
        if record.val_loss < best["loss"]:
            best.update(loss=record.val_loss, epoch=record.epoch)
        progress.update(
            task,
            status=f"val loss {record.val_loss:.4f} (best {best['loss']:.4f} at epoch "
            f"{best['epoch']}), val AUC {record.val_auc:.3f}",
        )

    with progress:
        task = progress.add_task(f"epoch 1/{epochs}", total=None, status="")
        return train(model_config, windows, train_config, on_epoch=on_epoch, on_step=on_step)


hpo_app = typer.Typer(
    help="Search the architecture and training values of one budget with Optuna.",
    invoke_without_command=True,
)
app.add_typer(hpo_app, name="hpo")

RunDirArg = Annotated[Path, typer.Argument(help="Run directory of a study.")]
StorageOpt = Annotated[
    str | None,
    typer.Option(
        help="Optuna storage URL (sqlite:///..., postgresql://...) or journal file "
        "(default: RUN_DIR/study.journal)."
    ),
]


TierOpt = Annotated[
    str | None, typer.Option(help="Feature tier a25/a50/a100 (default: the config's).")
]
ConfigOpt = Annotated[Path | None, typer.Option(help="Study config YAML file.")]
PresetOpt = Annotated[str | None, typer.Option(help="Shipped config: quick or paper.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config field: --set train.max_epochs=20."),
]
TrialsOpt = Annotated[
    int | None,
    typer.Option(help="Finished trials (complete + pruned) per study (default: the config's)."),
]
WorkersOpt = Annotated[int, typer.Option(help="Worker processes on this machine.")]
TimeoutHoursOpt = Annotated[
    float | None, typer.Option(help="Stop gracefully after this many hours.")
]
MaxTempOpt = Annotated[
    float | None, typer.Option(help="Pause between epochs while hotter than this (C).")
]


def _deadline(workers: int, timeout_hours: float | None) -> float | None:
    """Checks --workers and --timeout-hours; the time.time() at which workers stop."""
    import time

    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}", "--workers")
    if timeout_hours is not None and timeout_hours <= 0:
        raise InputError(
            f"--timeout-hours must be positive, got {timeout_hours}", "--timeout-hours"
        )
    return time.time() + timeout_hours * 3600 if timeout_hours else None


def _parse_sets(pairs: list[str] | None) -> dict[str, Any]:
    """`--set key=value` pairs; values are read as YAML (numbers, lists, true/false)."""
    import yaml

    overrides: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{pair!r} is not key=value (e.g. train.max_epochs=20)", "--set")
        try:
            overrides[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise InputError(f"value of {key} is not valid: {text!r}", "--set") from None
    return overrides


@hpo_app.callback()
def hpo(
    ctx: typer.Context,
    budget: Annotated[
        str | None, typer.Option(help="Parameter budget, e.g. 200K or 2M (required).")
    ] = None,
    horizon: Annotated[
        int | None,
        typer.Option("--horizon", help="Label horizon in days (default: the config's, 1)."),
    ] = None,
    tier: TierOpt = None,
    config: ConfigOpt = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    trials: TrialsOpt = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Folder of the study's records (default: runs/STUDY).")
    ] = None,
    storage: StorageOpt = None,
    study: Annotated[
        str | None, typer.Option(help="Study name (default: {tier}_{budget}_h{horizon}).")
    ] = None,
    workers: WorkersOpt = 1,
    timeout_hours: TimeoutHoursOpt = None,
    max_temp: MaxTempOpt = None,
    preflight_only: Annotated[
        bool, typer.Option("--preflight-only", help="Print the pre-flight checks and exit.")
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Run or resume the HPO study of one (tier, budget, horizon). Re-running the same
    command resumes it; `finscale stop RUN_DIR`, Ctrl-C or SIGTERM stop it gracefully."""
    if ctx.invoked_subcommand is not None:
        return
    from finscale.config import load_study_config
    from finscale.hpo import (
        JOURNAL_FILE,
        StudySpec,
        clear_stop,
        default_study_name,
        preflight,
        preflight_lines,
        prepare,
    )
    from finscale.units import parse_budget

    if budget is None:
        raise InputError("hpo needs --budget (e.g. --budget 200K)", "--budget")
    deadline = _deadline(workers, timeout_hours)
    overrides = _parse_sets(set_)
    if horizon is not None:
        overrides["data.horizon_days"] = horizon
    if tier is not None:
        overrides["data.tier"] = tier
    if trials is not None:
        overrides["search.trials"] = trials
    study_config = load_study_config(preset, config, overrides)
    n_params = parse_budget(budget)
    name = study or default_study_name(
        study_config.data.tier, n_params, study_config.data.horizon_days
    )
    run_dir = run_dir or Path("runs") / name
    spec = StudySpec(
        config=study_config,
        budget=n_params,
        study_name=name,
        run_dir=run_dir,
        storage=storage or str(run_dir / JOURNAL_FILE),
        store_dir=store or default_store_dir(),
        workers=workers,
        max_temp_c=max_temp,
        deadline=deadline,
    )
    err = Console(stderr=True)
    with err.status("building dataset and grid", spinner="dots"):
        prepared = prepare(spec)
    if preflight_only:
        with err.status("pre-flight: timing one epoch of the smallest and largest architecture"):
            report = preflight(spec, prepared)
        for line in preflight_lines(report):
            console.print(escape(line), soft_wrap=True)
        return
    report = preflight(spec, prepared, time_epochs=False)
    for line in preflight_lines(report):
        err.print(escape(line), soft_wrap=True, highlight=False)
    clear_stop(run_dir)
    _run_study_with_progress(spec, prepared)


@app.command("worker")
def worker_command(
    storage: Annotated[
        str,
        typer.Option(
            help="Storage of the study: postgresql://USER:PASSWORD@HOST:5432/DB "
            "(any Optuna RDB URL, or a local journal file)."
        ),
    ],
    study: Annotated[
        list[str],
        typer.Option(
            help="Study to join, made by finscale hpo or scale; repeat it to work through "
            "several in order (the budgets of a scaling run)."
        ),
    ],
    device: Annotated[
        str | None,
        typer.Option(help="This worker's device: cpu, cuda, cuda:N or mps (default: the study's)."),
    ] = None,
    workers: WorkersOpt = 1,
    seed: Annotated[
        int | None,
        typer.Option(help="Base of this worker's TPE seed (default: random; kept on its trials)."),
    ] = None,
    wait_minutes: Annotated[
        float,
        typer.Option(
            help="Wait this long for a study to be created (workers of a job array may "
            "start before the job that creates it)."
        ),
    ] = 0.0,
    run_dir: Annotated[
        Path | None,
        typer.Option(help="Folder of this machine's copy of the records (default: runs/STUDY)."),
    ] = None,
    timeout_hours: TimeoutHoursOpt = None,
    max_temp: MaxTempOpt = None,
    store: StoreOpt = None,
) -> None:
    """Join a study on a shared storage and run its trials until the study has its count.
    The config, grid and trial target come from the study itself, so every worker
    searches the same space. Start one per GPU, on as many machines as you have
    (docs/distributed.md); `finscale stop RUN_DIR`, Ctrl-C or SIGTERM stop it gracefully."""
    import secrets

    from finscale.hpo import SEED_BASES, clear_stop, join_spec, prepare, redact

    deadline = _deadline(workers, timeout_hours)
    if wait_minutes < 0:
        raise InputError(f"--wait-minutes must be 0 or more, got {wait_minutes}", "--wait-minutes")
    if run_dir is not None and len(study) > 1:
        raise InputError(
            "--run-dir names one study's folder; with several --study, leave it out "
            "(each study's records go to runs/STUDY)",
            "--run-dir",
        )
    base_seed = seed if seed is not None else secrets.randbelow(SEED_BASES)
    err = Console(stderr=True)
    for name in study:
        spec, attrs = join_spec(
            storage,
            name,
            store or default_store_dir(),
            run_dir,
            device=device,
            sampler_seed=base_seed,
            workers=workers,
            max_temp_c=max_temp,
            deadline=deadline,
            wait_seconds=wait_minutes * 60,
        )
        with err.status(f"{name}: building dataset and grid", spinner="dots"):
            prepared = prepare(spec, joined=attrs)
        err.print(
            escape(
                f"joining study {name} on {redact(storage)}: budget {attrs['budget']:,}, "
                f"{len(prepared.space.allowed)} architectures, target {spec.trials} trials, "
                f"device {prepared.device}, seed base {base_seed}"
            ),
            soft_wrap=True,
            highlight=False,
        )
        clear_stop(spec.run_dir)
        if not _run_study_with_progress(spec, prepared):
            return  # stopped: the later studies wait for the same command


def _trial_line(trial, outcome, counts: dict[str, int], best: str) -> str:
    arch = trial.user_attrs.get("architecture")
    what = (
        f"d{arch['d_model']}/L{arch['n_layers']}/h{arch['n_heads']} {arch['param_count']:,} params"
        if arch
        else "no architecture"
    )
    value = f"{outcome.value:.4f}" if outcome.value is not None else "-"
    extra = ""
    if "duplicate_of" in trial.user_attrs:
        extra = f" (duplicate of #{trial.user_attrs['duplicate_of']}, not trained)"
    elif outcome.reason:
        extra = f" ({outcome.reason})"
    seconds = trial.duration.total_seconds() if trial.duration else 0.0
    return (
        f"trial {trial.number:>4} {counts['finished']}/{counts['target']} "
        f"{trial.state.name.lower():<8} "
        f"{value:>7}  best {best}  {what}  {seconds:.1f} s{extra}"
    )


def _child_trial_line(study, trial, outcome, counts, worker_index) -> None:
    """What a spawned worker prints per trial (it has no progress bar)."""
    Console(stderr=True).print(
        escape(f"[worker {worker_index}] ")
        + _trial_line(trial, outcome, counts, _best_so_far(study)),
        highlight=False,
        soft_wrap=True,
    )


def _run_study_with_progress(spec, prepared) -> bool:
    """Run the study with a progress bar and trial lines; True when it has its count."""
    import time

    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from finscale.hpo import run_study, summarize_run

    target = spec.trials
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} trials"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )

    started = {"time": time.time(), "finished": None}

    def on_start(counts: dict[str, int]) -> None:
        started.update(time=time.time(), finished=counts["finished"])
        progress.update(task, completed=counts["finished"])

    def on_trial(study, trial, outcome, counts, worker_index) -> None:
        elapsed_s = time.time() - started["time"]
        done = counts["finished"] - (started["finished"] or 0)
        left = max(0, target - counts["finished"])
        eta = f"ETA {_duration(elapsed_s / done * left)}" if done > 0 else "ETA -"
        line = _trial_line(trial, outcome, counts, _best_so_far(study))
        progress.console.print(
            escape(f"{line}  [{_duration(elapsed_s)} elapsed, {eta}]"),
            highlight=False,
            soft_wrap=True,
        )
        progress.update(task, completed=counts["finished"])

    with progress:
        task = progress.add_task(spec.study_name, total=target, completed=0)
        outcome = run_study(
            spec,
            on_trial=on_trial,
            child_on_trial=_child_trial_line,
            prepared=prepared,
            on_start=on_start,
        )
    counts = outcome.counts
    if counts["finished"]:
        summarize_run(spec.run_dir, spec.storage)
    state = (
        "finished"
        if outcome.finished
        else f"stopped ({outcome.stop_reason}); run the same command to resume"
        if outcome.stop_reason
        else "ended"
    )
    console.print(
        f"[bold]study {spec.study_name}[/] {state}: {counts['finished']}/{target} finished "
        f"({counts['complete']} complete of which {counts['duplicates']} duplicates reused, "
        f"{counts['pruned']} pruned), {counts['failed']} failed, in {outcome.seconds:.0f} s",
        soft_wrap=True,
    )
    best = _best_so_far(outcome.study)
    console.print(f"  best       {best}", soft_wrap=True, highlight=False)
    console.print(f"  records    {spec.run_dir}", soft_wrap=True, highlight=False)
    return outcome.finished


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def _best_so_far(study) -> str:
    from optuna.trial import TrialState

    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None
    ]
    if not complete:
        return "-"
    best = min(complete, key=lambda t: (t.value, t.number))
    arch = best.user_attrs.get("architecture", {})
    return (
        f"{best.value:.4f} (#{best.number}, d{arch.get('d_model')}/L{arch.get('n_layers')}"
        f"/h{arch.get('n_heads')})"
    )


@hpo_app.command("import-trials")
def hpo_import_trials(
    folder: Annotated[Path, typer.Argument(help="Run directory or trials/ folder of records.")],
    storage: StorageOpt = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Run directory of the new study (default: the folder's).")
    ] = None,
    study: Annotated[str | None, typer.Option(help="Study name (default: the records').")] = None,
) -> None:
    """Build a study in a storage from a folder of trial records (moving a study
    between machines or storages)."""
    from finscale.hpo import JOURNAL_FILE, import_trials

    source = folder.parent if folder.name == "trials" else folder
    run_dir = run_dir or source
    created = import_trials(
        folder, storage or str(run_dir / JOURNAL_FILE), run_dir, study_name=study
    )
    console.print(
        f"imported {created['trials']} trials into study {created['study_name']} "
        f"({created['storage']}); resume it with `finscale hpo ... --run-dir {run_dir}`",
        soft_wrap=True,
        highlight=False,
    )


@app.command("stop")
def stop_command(run_dir: RunDirArg) -> None:
    """Ask every worker of a study to stop after its current epoch; each records its
    trial for resume and exits."""
    from finscale.scale import stop_run_dir

    path = stop_run_dir(run_dir)
    console.print(
        f"asked the workers of {run_dir} to stop after their current epoch ({path})",
        soft_wrap=True,
        highlight=False,
    )


@app.command("summary")
def summary_command(run_dir: RunDirArg, storage: StorageOpt = None) -> None:
    """Write summary.json and summary.md of a study from its storage, and print them."""
    from finscale.hpo import summarize_run
    from finscale.hpo.summary import render_markdown

    summary, paths = summarize_run(run_dir, storage)
    console.print(render_markdown(summary), soft_wrap=True, highlight=False, markup=False)
    for path in paths:
        console.print(f"wrote {path}", soft_wrap=True, highlight=False)


# ---------------------------------------------------------------- the scaling study


class _ScaleProgress:
    """Progress of `finscale scale` on stderr: a bar per stage (units done, elapsed,
    ETA from the stage's mean unit time) and one line per unit and per HPO trial."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self.task = None
        self.name = ""
        self.total = 0
        self.count = 0
        self.current = ""

    def __enter__(self) -> _ScaleProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def print(self, text: str) -> None:
        self.progress.console.print(escape(text), highlight=False, soft_wrap=True)

    def stage(self, name: str, units: int) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.name, self.total, self.count = name, units, 0
        self.task = self.progress.add_task(name, total=max(units, 1), completed=0)
        if units == 0:
            self.print(f"[{name}] nothing to do")

    def unit(self, name: str, budget: int | None, horizon: int | None, detail: str) -> None:
        from finscale.units import format_budget

        self.count += 1
        where = [f"budget {format_budget(budget)}"] if budget is not None else []
        where += [f"h={horizon}"] if horizon is not None else []
        self.current = f"[{name} {self.count}/{self.total}] " + " · ".join([*where, detail])
        self.progress.update(self.task, description=self.current)

    def done(self, seconds: float, skipped: bool) -> None:
        how = "already done, skipped" if skipped else f"{_duration(seconds)}"
        self.print(f"{self.current}: {how}")
        if skipped:
            # A skipped unit says nothing of how long the others take: keep it out of the ETA.
            task = next(t for t in self.progress.tasks if t.id == self.task)
            self.progress.update(self.task, total=max(1, (task.total or 1) - 1))
        else:
            self.progress.advance(self.task)

    def hpo_callbacks(self, spec) -> dict[str, Any]:
        import time

        state = {"time": time.time(), "finished": 0}

        def on_start(counts: dict[str, int]) -> None:
            state.update(time=time.time(), finished=counts["finished"])

        def on_trial(study, trial, outcome, counts, worker_index) -> None:
            elapsed_s = time.time() - state["time"]
            done = counts["finished"] - state["finished"]
            left = max(0, spec.trials - counts["finished"])
            eta = f"ETA {_duration(elapsed_s / done * left)}" if done > 0 else "ETA -"
            line = _trial_line(trial, outcome, counts, _best_so_far(study))
            self.print(f"  {spec.study_name} {line}  [{_duration(elapsed_s)} elapsed, {eta}]")

        return {"on_trial": on_trial, "child_on_trial": _child_trial_line, "on_start": on_start}


def _scale_spec(
    preset: str | None,
    config: Path | None,
    set_: list[str] | None,
    run_dir: Path | None,
    storage: str | None,
    store: Path | None,
    workers: int = 1,
    **overrides: Any,
):
    from finscale.scale import new_scale_spec

    merged = _parse_sets(set_)
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return new_scale_spec(
        preset, config, merged, run_dir, storage, store or default_store_dir(), workers
    )


def _spec_of_run_dir(run_dir: Path, storage: str | None, store: Path | None):
    """The ScaleSpec a run directory was made with (its scale.json)."""
    from finscale.scale import spec_of_run_dir

    return spec_of_run_dir(run_dir, storage, store or default_store_dir())


@app.command("scale")
def scale_command(
    preset: PresetOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    tier: TierOpt = None,
    budgets: Annotated[
        str | None, typer.Option(help="Budgets, e.g. 2M,20M,200M (default: the config's).")
    ] = None,
    horizons: Annotated[
        str | None, typer.Option(help="Label horizons in days, e.g. 1,3,5 (default: the config's).")
    ] = None,
    trials: TrialsOpt = None,
    seeds: Annotated[
        int | None, typer.Option(help="Seeds of each winner's final evaluation (default: 3).")
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
    from finscale.hpo import StopRequested
    from finscale.scale import Pipeline, write_scale_file

    spec = _scale_spec(
        preset,
        config,
        set_,
        run_dir,
        storage,
        store,
        workers,
        **{
            "data.tier": tier,
            "scale.budgets": budgets,
            "scale.horizons": horizons,
            "search.trials": trials,
            "scale.seeds": seeds,
        },
    )
    _check_run_dir_matches(spec)
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    write_scale_file(spec)
    _clear_stops(spec.run_dir)
    with _ScaleProgress() as progress:
        pipeline = Pipeline(spec, progress)
        try:
            results = pipeline.run()
        except StopRequested as exc:
            progress.print(
                f"stopped ({exc}); run the same command to resume: finished steps are skipped"
            )
            return
    paths = pipeline.report_paths
    _print_scaling_table(results)
    for path in paths:
        console.print(f"wrote {path}", soft_wrap=True, highlight=False)


def _check_run_dir_matches(spec) -> None:
    """A run directory holds one study's config: resuming with other data or model options
    would mix two studies (the HPO storage would refuse it later, after hours)."""
    from finscale.scale import check_run_dir_matches

    check_run_dir_matches(spec)


def _clear_stops(run_dir: Path) -> None:
    from finscale.scale import clear_stops

    clear_stops(run_dir)


def _print_scaling_table(results: dict[str, Any]) -> None:
    from finscale.report import scaling_table_markdown

    console.print(scaling_table_markdown(results), soft_wrap=True, highlight=False, markup=False)


@app.command("report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of a scaling study.")],
) -> None:
    """Rebuild experiment_results.csv, scaling.json, report.md, report.html and the
    figures of a scaling study from what it stored (no training)."""
    from finscale.scale import build_results, write_report

    results = build_results(run_dir)
    paths = write_report(run_dir, results)
    _print_scaling_table(results)
    for path in paths:
        console.print(f"wrote {path}", soft_wrap=True, highlight=False)


@app.command("validate-cross-budget")
def validate_cross_budget_command(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of a scaling study.")],
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the plan and its estimated cost; train nothing."),
    ] = False,
    storage: StorageOpt = None,
    store: StoreOpt = None,
) -> None:
    """Train every winner's architecture with every other budget's winning training
    values (the cross-budget matrix of validation log loss); --dry-run prints the plan."""
    from finscale.hpo import StopRequested
    from finscale.scale import Pipeline
    from finscale.units import format_budget

    spec = _spec_of_run_dir(run_dir, storage, store)
    with _ScaleProgress() as progress:
        pipeline = Pipeline(spec, progress)
        pipeline.load_winners()
        plan = pipeline.cross_budget_plan()
        if dry_run:
            table = Table(title="cross-budget plan", box=box.SIMPLE_HEAD)
            for column in ("h", "values of", "architecture of", "architecture", "values", "est."):
                table.add_column(column)
            total = 0.0
            todo = 0
            for cell in plan:
                arch = cell["target"]["architecture"]
                values = cell["source"]["params"]
                done = cell["stored"]
                seconds = cell["estimated_seconds"]
                if not done:
                    todo += 1
                    total += 0.0 if seconds != seconds else seconds
                table.add_row(
                    str(cell["horizon_days"]),
                    format_budget(cell["values_from"]),
                    format_budget(cell["architecture_of"]),
                    f"d{arch['d_model']}/L{arch['n_layers']}/h{arch['n_heads']} "
                    f"{arch['param_count']:,}",
                    f"lr {values['learning_rate']:.2e} wd {values['weight_decay']:.2e} "
                    f"warmup {values['warmup_steps']} dropout {values['dropout']:.2f}",
                    "stored" if done else (f"{seconds:.0f} s" if seconds == seconds else "?"),
                )
            console.print(table)
            console.print(
                f"{len(plan)} trainings planned, {todo} to run, at most about "
                f"{_duration(total)} ({spec.config.train.max_epochs} epochs each at the "
                "winners' measured epoch time; early stopping makes it shorter)",
                soft_wrap=True,
                highlight=False,
            )
            return
        try:
            pipeline.cross_budget()
        except StopRequested as exc:
            progress.print(f"stopped ({exc}); run the same command to resume")
            return
    console.print(
        f"cross-budget matrix stored in {run_dir}; `finscale report {run_dir}` draws it",
        soft_wrap=True,
        highlight=False,
    )


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
