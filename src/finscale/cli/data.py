"""`finscale data build | show | features`: datasets and their features."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from finscale.atomic import check_file
from finscale.cli.options import (
    DATA_FIELDS,
    DataTierOpt,
    JsonOpt,
    StoreOpt,
    store_dir,
    study_config,
    with_config_options,
)
from finscale.cli.progress import console, say
from finscale.errors import InputError

data_app = typer.Typer(help="Build, inspect and describe datasets.", no_args_is_help=True)


def build(config: Any, store: Path | None, must_exist: bool = False):
    """Build (or, with `must_exist`, only look up) the dataset of a `DataConfig`."""
    from finscale.data import DataStore, build_dataset

    with console.status("building dataset", spinner="dots"):
        return build_dataset(config, DataStore(store_dir(store)), must_exist=must_exist)


def print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    roles = ", ".join(f"{role} {symbol}" for role, symbol in summary["roles"].items())
    how = "reused from store" if summary["reused"] else "built"
    console.print(
        f"[bold]dataset {summary['key'][:16]}[/] ({how}"
        f" in {summary['build_seconds']:.2f} s)\n"
        f"  inputs     {roles}\n"
        f"  rows       {summary['rows']} ({summary['first_date']} to {summary['last_date']})\n"
        f"  features   {summary['n_features']} (tier {summary['tier']})\n"
        f"  label      {label_text(summary)}\n"
        f"  windows    {summary['context_days']} days, {summary['split_kind']} split"
    )
    if summary.get("null_control", "none") != "none":
        console.print(f"  [bold]null control[/] {NULL_CONTROL_TEXT[summary['null_control']]}")
    bayes = any("bayes_log_loss" in s for s in summary["splits"].values())
    table = Table("split", "samples", "positives", "positive rate", "first date", "last date")
    if bayes:
        table.add_column("Bayes log loss")
    for name, s in summary["splits"].items():
        table.add_row(
            name,
            str(s["samples"]),
            str(s["positives"]),
            f"{s['positive_rate']:.3f}",
            s["first_date"],
            s["last_date"],
            *([f"{s['bayes_log_loss']:.4f}"] if bayes else []),
        )
    console.print(table)
    if len(summary.get("symbols", {})) > 1:
        per_symbol = Table("symbol", "rows", "samples", "first date", "last date")
        for symbol, row in summary["symbols"].items():
            per_symbol.add_row(
                symbol, str(row["rows"]), str(row["samples"]), row["first_date"], row["last_date"]
            )
        console.print(per_symbol)
    dropped = summary.get("dropped_targets", {})
    if dropped:
        shown = ", ".join(f"{symbol} ({rows} rows)" for symbol, rows in dropped.items())
        say(f"  dropped targets (data.min_history_days): {shown}")
    for file, columns in summary.get("ignored_columns", {}).items():
        say(f"  ignored columns of {file}: {', '.join(columns)}")
    excluded = ", ".join(f"{k} {v}" for k, v in summary["row_states"].items())
    console.print(f"  rows outside the splits: {excluded}")
    # Hashes are printed whole and unwrapped so they can be copied and compared.
    for symbol, sha in summary["inputs"].items():
        console.print(f"  sha256 {symbol:<8} {sha}", soft_wrap=True)
    console.print(f"  sha256 dataset  {summary['sha256']}", soft_wrap=True)


NULL_CONTROL_TEXT = {
    "shuffle": "shuffle: labels permuted in blocks within each split; nothing can be learned",
    "random_walk": "random_walk: prices are a driftless random walk; nothing can be learned",
}


def label_text(summary: dict[str, Any]) -> str:
    """The label rule in words: the planted teacher, the relative rule, or the threshold
    rule."""
    planted = summary.get("planted")
    if planted:
        return (
            f"planted: drawn from a known p(window), a teacher of width "
            f"{planted['teacher_width']} on the last {planted['teacher_days']} days, logit "
            f"sd {planted['signal']:g}"
        )
    label = summary["label"]
    if label.get("label_mode") == "relative":
        return (
            f"relative: return over {label['horizon_days']} day(s) beats the panel's "
            f"equal-weight return by > {label['threshold']:g}"
        )
    return (
        f"rise >= {label['threshold']:g} ({label['threshold_mode']}) "
        f"by {label['rule']} within {label['horizon_days']} day(s)"
    )


@data_app.command("build")
@with_config_options(*DATA_FIELDS)
def data_build(
    overrides: dict[str, Any],
    out: Annotated[
        Path | None, typer.Option(help="Also write the model-ready table to this parquet file.")
    ] = None,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """Build the processed dataset (or reuse it from the store) and print its summary."""
    config = study_config(overrides).data
    if out is not None and out.suffix != ".parquet":
        raise InputError(f"output must be a .parquet file, got {out}", "--out")
    if out is not None:
        check_file(out, "output file", "--out")
    dataset = build(config, store)
    summary = dataset.summary()
    if out is not None:
        from finscale.atomic import write_parquet_atomic

        table = dataset.model_ready()
        write_parquet_atomic(out, table)
        summary["out"] = {"path": str(out), "rows": len(table), "columns": len(table.columns)}
    print_summary(summary, as_json)
    if out is not None and not as_json:
        console.print(f"  wrote {out} ({len(table)} rows, {len(table.columns)} columns)")


@data_app.command("show")
@with_config_options(*DATA_FIELDS)
def data_show(
    overrides: dict[str, Any],
    all_entries: Annotated[
        bool, typer.Option("--all", help="List every entry of the store's manifest instead.")
    ] = False,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """Show a dataset: rows, date range, label balance per split, feature count, hashes."""
    if all_entries:
        _print_entries(store_dir(store), as_json)
        return
    dataset = build(study_config(overrides).data, store, must_exist=True)
    print_summary(dataset.summary(), as_json)


def _print_entries(folder: Path, as_json: bool) -> None:
    from finscale.data import DataStore

    entries = DataStore(folder).entries()
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
    console.print(table if entries else f"store {folder} is empty")


@data_app.command("features")
def data_features(
    tier: DataTierOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List every feature of a tier with a one-line description."""
    from finscale.data import tier_features, tier_roles

    tier = study_config({"data.tier": tier} if tier else {}).data.tier
    features = tier_features(tier)
    if as_json:
        rows = [
            {"name": f.name, "role": f.role, "kind": f.kind, "description": f.description}
            for f in features
        ]
        typer.echo(json.dumps(rows, indent=2))
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
