"""Which symbols a dataset labels: `targets: all` resolved to the source's symbols,
and the targets `min_history_days` drops for their short history.

    config -> (here) concrete targets -> sources -> validate -> (here) drops -> features

`build_dataset` resolves its config first, so every floor above sees the concrete
symbols in the `ProcessedDataset`'s config; `resolve_targets` is also what a caller
that needs the target count before the data is built (an architecture grid with a
symbol embedding) reads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import pandas as pd

from finscale.config import DataConfig
from finscale.data.sources import source_symbols
from finscale.errors import InputError

log = logging.getLogger("finscale.data")


def with_targets(config: DataConfig, targets: Sequence[str]) -> DataConfig:
    """`config` labelling exactly `targets`, in the canonical form: one symbol is
    `target` alone, several a panel whose `target` is the first."""
    targets = tuple(targets)
    return config.model_copy(
        update={"target": targets[0], "targets": targets if len(targets) > 1 else ()}
    )


def _needs_two(config: DataConfig, targets: Sequence[str], why: str, where: str) -> None:
    if config.label_mode == "relative" and len(targets) < 2:
        raise InputError(
            f"label_mode relative compares a target with the panel and needs two or more "
            f"targets; {why}",
            where,
        )


def resolve_targets(config: DataConfig) -> DataConfig:
    """`config` with `targets: all` replaced by every symbol its source holds (but the
    context symbols of `symbols`), sorted; any other config as it is. A source of one
    symbol gives a one-target config. Reads only the list of symbols (a long file's
    symbol column), not the prices."""
    if not config.all_targets:
        return config
    targets = [s for s in source_symbols(config) if s not in config.symbols]
    if not targets:
        raise InputError(
            f"targets all finds no symbol in the {config.source} source beside the context "
            f"symbols {', '.join(config.symbols) or 'none'}",
            "data.target",
        )
    _needs_two(config, targets, f"the source holds only {targets[0]}", "data.target")
    return with_targets(config, targets)


def history_rows(frame: pd.DataFrame, config: DataConfig) -> int:
    """A validated series' rows (trading days) between `data.start` and `data.end`."""
    start, end = (pd.Timestamp(d) if d else None for d in (config.start, config.end))
    return len(frame.loc[start:end])


def short_histories(frames: Mapping[str, pd.DataFrame], config: DataConfig) -> dict[str, int]:
    """{symbol: rows in the date range} of each target in `frames` with fewer rows
    than `data.min_history_days` (none when it is 0)."""
    if config.min_history_days == 0:
        return {}
    rows = {symbol: history_rows(frame, config) for symbol, frame in frames.items()}
    return {symbol: n for symbol, n in rows.items() if n < config.min_history_days}


def drop_short(config: DataConfig, dropped: Mapping[str, int]) -> DataConfig:
    """`config` without the `dropped` targets, the drop said on the `finscale.data`
    log (a warning line on stderr at the CLI). Dropping every target, or leaving one
    where a relative label needs two, is an `InputError` naming the key."""
    if not dropped:
        return config
    targets = config.target_symbols
    kept = [t for t in targets if t not in dropped]
    shown = ", ".join(f"{symbol} ({rows} rows)" for symbol, rows in dropped.items())
    limit = f"fewer than data.min_history_days {config.min_history_days} rows in the date range"
    if not kept:
        raise InputError(f"every target has {limit}: {shown}", "data.min_history_days")
    _needs_two(
        config,
        kept,
        f"only {kept[0]} has {config.min_history_days} rows or more",
        "data.min_history_days",
    )
    log.warning(
        "warning: dropped %d of %d targets with %s: %s", len(dropped), len(targets), limit, shown
    )
    return with_targets(config, kept)
