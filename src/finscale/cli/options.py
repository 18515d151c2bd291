"""Every option shared by several commands, declared once, and the maps from config
fields to the flags that set them.

The layers below the CLI name config fields in their errors; the CLI turns a
field into the flag a user typed (`validated`), so a bad `--context` is reported
as `--context`, not as `context_days`.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
import typing
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import pydantic
import typer

from finscale.atomic import check_folder
from finscale.errors import InputError

# ---------------------------------------------------------------- field -> flag maps

# The options that select a dataset, and the DataConfig field each sets.
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
DATA_FLAG_OF_FIELD = {
    field: "--" + option.replace("_", "-") for option, field in FIELD_OF_OPTION.items()
}

# The options of `grid` and `train` that set ModelConfig fields under another name.
MODEL_FLAG_OF_FIELD = {
    "d_models": "--d-models",
    "n_layers": "--n-layers",
    "n_heads": "--n-heads",
    "ff_ratio": "--ff-ratio",
    "budget_tolerance": "--tolerance",
    "patch_len": "--patch-len",
    "stride": "--stride",
}

# The options of `train` that set TrainConfig fields (its `--pos-weight` is parsed
# first), and the flag of each field.
TRAIN_FIELD_OF_OPTION = {
    "lr": "learning_rate",
    "weight_decay": "weight_decay",
    "warmup_steps": "warmup_steps",
    "epochs": "max_epochs",
    "batch": "effective_batch",
    "micro_batch": "micro_batch",
    "grad_clip": "grad_clip",
    "patience": "patience",
    "min_delta": "min_delta",
    "seed": "seed",
    "device": "device",
    "dtype": "dtype",
    "compile_model": "compile",
    "memory_limit": "memory_limit_bytes",
}
TRAIN_FLAG_OF_FIELD = {
    **{field: "--" + option.replace("_", "-") for option, field in TRAIN_FIELD_OF_OPTION.items()},
    "compile": "--compile",
    "pos_weight": "--pos-weight",
}


def validated(config_class: type[pydantic.BaseModel], flag_of_field: dict[str, str], **fields):
    """Build a config section; the first validation error becomes one InputError naming
    the flag that set the field."""
    try:
        return config_class(**{k: v for k, v in fields.items() if v is not None})
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        cause = (first.get("ctx") or {}).get("error")
        if isinstance(cause, InputError):  # a parser of the ground floor already said it
            raise InputError(cause.what, flag_of_field.get(field, cause.where)) from None
        message = first["msg"].removeprefix("Value error, ")
        raise InputError(
            f"{field}: {message}" if field else message, flag_of_field.get(field, "config")
        ) from None


def data_fields(options: dict[str, Any]) -> dict[str, Any]:
    """The DataConfig fields a command's data options set (dates as dates)."""
    return {
        field: options[option].date() if isinstance(options[option], datetime) else options[option]
        for option, field in FIELD_OF_OPTION.items()
    }


def default_store_dir() -> Path:
    return Path(os.environ.get("FINSCALE_STORE", "~/.cache/finscale/store")).expanduser()


def store_dir(store: Path | None) -> Path:
    """The data store's folder, refused up front when it cannot be made or written."""
    where = "FINSCALE_STORE" if store is None and "FINSCALE_STORE" in os.environ else "--store"
    return check_folder(store or default_store_dir(), "data store", where)


def parse_sets(pairs: list[str] | None) -> dict[str, Any]:
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


def config_overrides(pairs: list[str] | None, flags: dict[str, Any]) -> dict[str, Any]:
    """The dotted config overrides of a command: its `--set` pairs, then the flags
    that name a config field (`{"data.tier": tier}`), those left out skipped."""
    overrides = parse_sets(pairs)
    overrides.update({key: value for key, value in flags.items() if value is not None})
    return overrides


def deadline(workers: int, timeout_hours: float | None) -> float | None:
    """Checks --workers and --timeout-hours; the time.time() at which workers stop."""
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}", "--workers")
    if timeout_hours is not None and timeout_hours <= 0:
        raise InputError(
            f"--timeout-hours must be positive, got {timeout_hours}", "--timeout-hours"
        )
    return time.time() + timeout_hours * 3600 if timeout_hours else None


# ---------------------------------------------------------------- data options

SourceOpt = Annotated[str, typer.Option(help="bundled (arch data), csv (a folder) or yahoo.")]
PathOpt = Annotated[Path | None, typer.Option(help="Folder of SYMBOL.csv/.parquet files.")]
TargetOpt = Annotated[str, typer.Option(help="Symbol whose moves are labelled.")]
SymbolsOpt = Annotated[
    str | None, typer.Option(help="Context symbols, comma-separated (e.g. NASDAQ,VIX).")
]
TierOpt = Annotated[str, typer.Option(help="Feature tier: a25, a50 or a100.")]
# `hpo` and `scale` take the tier from their config unless it is given.
ConfigTierOpt = Annotated[
    str | None, typer.Option("--tier", help="Feature tier a25/a50/a100 (default: the config's).")
]
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

# ---------------------------------------------------------------- model options

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

# ---------------------------------------------------------------- study options

RunDirArg = Annotated[Path, typer.Argument(help="Run directory of a study.")]
ScaleRunDirArg = Annotated[Path, typer.Argument(help="Run directory of a scaling study.")]
StorageOpt = Annotated[
    str | None,
    typer.Option(
        help="Optuna storage URL (sqlite:///..., postgresql://...) or journal file "
        "(default: RUN_DIR/study.journal)."
    ),
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


# The options that select one dataset, with their defaults: `data build`, `data show`
# and `train` take them all.
DATA_OPTIONS: dict[str, tuple[Any, Any]] = {
    "source": (SourceOpt, "bundled"),
    "path": (PathOpt, None),
    "target": (TargetOpt, "SP500"),
    "symbols": (SymbolsOpt, None),
    "tier": (TierOpt, "a25"),
    "horizon": (HorizonOpt, 1),
    "threshold": (ThresholdOpt, 0.01),
    "label_rule": (RuleOpt, "max_close"),
    "threshold_mode": (ModeOpt, "fixed"),
    "volatility_k": (KOpt, 1.0),
    "context": (ContextOpt, 60),
    "split": (SplitOpt, "chronological"),
    "chunks": (ChunksOpt, 5),
    "start": (StartOpt, None),
    "end": (EndOpt, None),
    "store": (StoreOpt, None),
}

# The options that shape a budget's architecture grid: `grid` and `train` take them.
MODEL_OPTIONS: dict[str, tuple[Any, Any]] = {
    "patch_len": (PatchLenOpt, 16),
    "stride": (StrideOpt, 8),
    "d_models": (DModelsOpt, None),
    "n_layers": (NLayersOpt, None),
    "n_heads": (NHeadsOpt, None),
    "ff_ratio": (FfRatioOpt, 4.0),
    "tolerance": (ToleranceOpt, 0.25),
}
# The ModelConfig field of each model option.
MODEL_FIELD_OF_OPTION = {option: option for option in MODEL_OPTIONS} | {
    "tolerance": "budget_tolerance"
}


def with_option_group(group: dict[str, tuple[Any, Any]], into: str):
    """A decorator that gives a command every option of `group`; the command receives
    their values as one mapping (option name -> value) in its parameter `into`.

    Typer reads a command's parameters from its signature, so the wrapper's
    signature is the command's own (without `into`) followed by the group's."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(command, include_extras=True)
        own = [
            p.replace(
                annotation=hints.get(p.name, p.annotation), kind=inspect.Parameter.KEYWORD_ONLY
            )
            for p in inspect.signature(command).parameters.values()
            if p.name != into
        ]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=ann, default=default)
            for name, (ann, default) in group.items()
        ]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in group}
            return command(**{into: values}, **kwargs)

        wrapper.__signature__ = inspect.Signature([*own, *added])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in (*own, *added)}
        return wrapper

    return decorate


with_data_options = with_option_group(DATA_OPTIONS, "data")
with_model_options = with_option_group(MODEL_OPTIONS, "model")
