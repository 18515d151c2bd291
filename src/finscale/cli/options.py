"""Every option shared by several commands, declared once; the one map from config
fields to the flags that set them; and the turning of an error's where into the flag
a user typed.

The config (`finscale.config`) is the only home of defaults and bounds. An option
that sets a config field defaults to None, shows the field's default in its help,
and reaches the command as a dotted override (``{"data.horizon_days": 5}``) that is
validated with the whole config, in one place, before anything is written.

Below the CLI, errors name the config field (``data.horizon_days``) or a neutral
name (``run_dir``, ``storage``); `flag_of` turns that into the flag of the command
being run (``--horizon``), or ``--set`` where a ``--set`` pair gave the value.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from finscale.atomic import check_folder
from finscale.config import PRESETS, StudyConfig, load_study_config, overlaps
from finscale.errors import InputError

# ---------------------------------------------------------------- field -> flag map


@dataclass(frozen=True)
class ConfigFlag:
    """The flag that sets a config field: its spelling, what the command line parses
    it as (the config converts and checks it), and its help (the default is the
    config's, added to it)."""

    flag: str
    kind: type
    help: str


# Every flag that sets a config field, by the dotted field. Data options, model and
# training options (`grid`, `train`), and the shortcuts of `hpo` and `scale`.
CONFIG_FLAGS: dict[str, ConfigFlag] = {
    "data.source": ConfigFlag(
        "--source",
        str,
        "bundled (arch data), csv (a folder or one long file), yahoo, synthetic or stocks.",
    ),
    "data.path": ConfigFlag(
        "--path", Path, "Folder of SYMBOL.csv/.parquet files, or one long file."
    ),
    "data.target": ConfigFlag(
        "--target", str, "Symbol whose moves are labelled; A,B,C a panel; all every symbol."
    ),
    "data.min_history_days": ConfigFlag(
        "--min-history-days", int, "Drop targets with fewer trading days (0 keeps all)."
    ),
    "data.symbols": ConfigFlag(
        "--symbols", str, "Context symbols, comma-separated (e.g. NASDAQ,VIX)."
    ),
    "data.tier": ConfigFlag("--tier", str, "Feature tier: a25, a50, a100 or close."),
    "data.horizon_days": ConfigFlag("--horizon", int, "Label horizon in trading days."),
    "data.label_mode": ConfigFlag(
        "--label-mode", str, "absolute (own move) or relative (beats the panel's mean)."
    ),
    "data.threshold": ConfigFlag(
        "--threshold",
        float,
        "Rise that makes a positive label (default 0.01 = 1%; relative labels: 0).",
    ),
    "data.label_rule": ConfigFlag(
        "--label-rule", str, "max_close (any close within h days) or close."
    ),
    "data.threshold_mode": ConfigFlag(
        "--threshold-mode", str, "fixed, or volatility (k x trailing vol x sqrt(h))."
    ),
    "data.volatility_k": ConfigFlag(
        "--volatility-k", float, "k of the volatility-scaled threshold."
    ),
    "data.context_days": ConfigFlag("--context", int, "Input window length in days."),
    "data.split": ConfigFlag("--split", str, "chronological or chunked."),
    "data.n_chunks": ConfigFlag("--chunks", int, "Train/val chunks (chunked split)."),
    "data.start": ConfigFlag("--start", datetime, "First date used (YYYY-MM-DD)."),
    "data.end": ConfigFlag("--end", datetime, "Last date used (YYYY-MM-DD)."),
    "data.null_control": ConfigFlag(
        "--null-control", str, "none, shuffle (labels) or random_walk (prices): a null study."
    ),
    "data.null_seed": ConfigFlag("--null-seed", int, "Seed of the null control."),
    "model.patch_len": ConfigFlag("--patch-len", int, "Days per patch."),
    "model.stride": ConfigFlag("--stride", int, "Days between patch starts."),
    "model.d_models": ConfigFlag("--d-models", str, "d_model values searched, comma-separated."),
    "model.n_layers": ConfigFlag("--n-layers", str, "n_layers values searched, comma-separated."),
    "model.n_heads": ConfigFlag("--n-heads", str, "n_heads values searched, comma-separated."),
    "model.ff_ratio": ConfigFlag("--ff-ratio", float, "d_ff = ratio x d_model."),
    "model.budget_tolerance": ConfigFlag(
        "--tolerance", float, "An architecture belongs within +-this fraction of the budget."
    ),
    "model.dropout": ConfigFlag("--dropout", float, "Dropout after embedding, attention, FF."),
    "train.learning_rate": ConfigFlag("--lr", float, "Peak learning rate (AdamW)."),
    "train.weight_decay": ConfigFlag("--weight-decay", float, "AdamW weight decay on matrices."),
    "train.warmup_steps": ConfigFlag("--warmup-steps", int, "Linear warmup, optimizer steps."),
    "train.max_epochs": ConfigFlag("--epochs", int, "Maximum epochs."),
    "train.samples_per_epoch": ConfigFlag(
        "--samples-per-epoch", int, "Training samples drawn per epoch (default: all)."
    ),
    "train.effective_batch": ConfigFlag(
        "--batch", int, "Effective batch (samples per optimizer step)."
    ),
    "train.micro_batch": ConfigFlag(
        "--micro-batch", int, "Samples per forward pass (default: memory planner)."
    ),
    "train.grad_clip": ConfigFlag("--grad-clip", float, "Max gradient norm; 0 disables."),
    "train.pos_weight": ConfigFlag(
        "--pos-weight", str, "Positive-class loss weight, or 'balanced'."
    ),
    "train.patience": ConfigFlag("--patience", int, "Early stopping: epochs without gain."),
    "train.min_delta": ConfigFlag("--min-delta", float, "Early stopping: smallest gain."),
    "train.seed": ConfigFlag("--seed", int, "Seed of initialisation, shuffling, dropout."),
    "train.device": ConfigFlag("--device", str, "auto, cpu, cuda, cuda:N or mps."),
    "train.dtype": ConfigFlag("--dtype", str, "auto, fp32 or bf16 (autocast)."),
    "train.compile": ConfigFlag("--compile", bool, "torch.compile the model."),
    "train.memory_limit_bytes": ConfigFlag(
        "--memory-limit",
        str,
        "Training memory limit, e.g. 16GB (default: 90% free CUDA / 80% available RAM).",
    ),
    "scale.budgets": ConfigFlag("--budgets", str, "Budgets, e.g. 2M,20M,200M."),
    "scale.horizons": ConfigFlag("--horizons", str, "Label horizons in days, e.g. 1,3,5."),
    "scale.seeds": ConfigFlag("--seeds", int, "Seeds of each winner's final evaluation."),
    "scale.tiers": ConfigFlag(
        "--tiers", str, "Feature tiers, each against the next, e.g. a25,a50,a100."
    ),
    "search.trials": ConfigFlag("--trials", int, "Finished trials (complete + pruned) per study."),
}
FLAG_OF_FIELD = {field: spec.flag for field, spec in CONFIG_FLAGS.items()}

# The options that select one dataset (`data build`, `data show`, `train`), and those
# that shape a budget's architecture grid (`grid`, `train`).
DATA_FIELDS = tuple(field for field in CONFIG_FLAGS if field.startswith("data."))
MODEL_FIELDS = (
    "model.patch_len",
    "model.stride",
    "model.d_models",
    "model.n_layers",
    "model.n_heads",
    "model.ff_ratio",
    "model.budget_tolerance",
)
# How `train` trains a budget's architecture (`grid` takes the memory plan's part of it).
TRAIN_FIELDS = (
    "model.dropout",
    *(field for field in CONFIG_FLAGS if field.startswith("train.")),
)


def config_default(field: str) -> Any:
    """The default of a dotted config field, as the config declares it."""
    section, name = field.split(".")
    model = StudyConfig.model_fields[section].annotation
    return model.model_fields[name].default  # type: ignore[union-attr]


def _help(field: str, defaults_from: str | None = None) -> str:
    """A config option's help with the field's default, as typer shows a default;
    `defaults_from`: where the default comes from instead (the preset or file)."""
    text = CONFIG_FLAGS[field].help
    if defaults_from is not None:
        return f"{text} (default: {defaults_from})"
    default = config_default(field)
    if default is None or isinstance(default, bool | tuple):
        return text
    return f"{text} " + escape(f"[default: {default}]")


def config_option(field: str, defaults_from: str | None = None) -> Any:
    """The annotation of a command parameter that sets `field` (default None: the
    config's value stands)."""
    spec = CONFIG_FLAGS[field]
    extra: dict[str, Any] = {"formats": ["%Y-%m-%d"]} if spec.kind is datetime else {}
    option = typer.Option(spec.flag, help=_help(field, defaults_from), **extra)
    return Annotated[spec.kind | None, option]


def flag_of(
    where: str | None, command_params: list[Any], set_pairs: list[str] | None
) -> str | None:
    """The flag a user typed for an error's where: ``--set KEY`` where the ``--set``
    pair of KEY gave the field, the flag of the field or neutral name (``run_dir``)
    where the command has one, else the where as it is (a file, a config field)."""
    if where is None:
        return None
    for pair in set_pairs or []:
        key = pair.partition("=")[0].strip()
        if overlaps(where, [key]):
            return f"--set {key}"
    options = {opt for p in command_params if p.param_type_name == "option" for opt in p.opts}
    if FLAG_OF_FIELD.get(where) in options:
        return FLAG_OF_FIELD[where]
    for param in command_params:
        if param.name == where and param.param_type_name == "option":
            return param.opts[0]
        if param.name == where:  # an argument, as usage shows it
            return param.metavar or param.name.upper()
    return where


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


# ---------------------------------------------------------------- config options

# `hpo` and `scale` take these from their preset or config file unless given.
ConfigTierOpt = config_option("data.tier", "the config's")
TrialsOpt = config_option("search.trials", "the config's")
LabelModeOpt = config_option("data.label_mode", "the config's")
DataTierOpt = config_option("data.tier")
StoreOpt = Annotated[
    Path | None,
    typer.Option(help="Data store folder (default: $FINSCALE_STORE or ~/.cache/finscale/store)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]
BudgetOpt = Annotated[str, typer.Option(help="Parameter budget: 50K, 2M, 2B or an integer.")]

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
PresetOpt = Annotated[
    str | None, typer.Option(help=f"Shipped config: {', '.join(PRESETS)} (src/finscale/presets).")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config field: --set train.max_epochs=20."),
]
WorkersOpt = Annotated[int, typer.Option(help="Worker processes on this machine.")]
TimeoutHoursOpt = Annotated[
    float | None, typer.Option(help="Stop gracefully after this many hours.")
]
MaxTempOpt = Annotated[
    float | None, typer.Option(help="Pause between epochs while hotter than this (C).")
]


def with_config_options(*fields: str, into: str = "overrides"):
    """A decorator that gives a command the option of every config field of `fields`;
    the command receives those given, as dotted overrides (``{"data.tier": "a50"}``;
    dates as dates), in its parameter `into`.

    Typer reads a command's parameters from its signature, so the wrapper's
    signature is the command's own (without `into`) followed by the options."""
    names = {
        field: CONFIG_FLAGS[field].flag.removeprefix("--").replace("-", "_") for field in fields
    }

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
            inspect.Parameter(
                names[field],
                inspect.Parameter.KEYWORD_ONLY,
                annotation=config_option(field),
                default=None,
            )
            for field in fields
        ]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            given = {field: kwargs.pop(names[field]) for field in fields}
            overrides = {
                field: value.date() if isinstance(value, datetime) else value
                for field, value in given.items()
                if value is not None
            }
            return command(**{into: overrides}, **kwargs)

        wrapper.__signature__ = inspect.Signature([*own, *added])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in (*own, *added)}
        return wrapper

    return decorate


def study_config(overrides: dict[str, Any]) -> StudyConfig:
    """The config of a command without a preset: the defaults and its flags' overrides,
    validated as one."""
    return load_study_config(overrides=overrides)
