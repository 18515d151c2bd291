"""Panels: one dataset of several targets, each labelled on its own series, their
samples pooled, their split boundaries shared dates.

The table of a panel is every target's table (features and label from its own
series, context symbols the same for all) one after another, with a `symbol`
column; rows stay in date order within each target. Splits and walk-forward
folds are planned once on the calendar, the union of every target's sample
dates, and projected on each target's rows (`finscale.data.splits.project_spans`),
where each boundary is purged by the target's own context and horizon: no date
of a later block is read by an earlier block's labels in any target, and a
target with a shorter history contributes the dates it has.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from finscale.config import DataConfig, EvaluationConfig
from finscale.data.splits import (
    SPLIT_NAMES,
    TRAIN,
    Span,
    holdout_spans,
    project_spans,
    sample_dates,
    walk_forward_spans,
)
from finscale.errors import InputError

SYMBOL = "symbol"
LABEL, SPLIT = "label", "split"


def symbol_blocks(table: pd.DataFrame, default: str) -> list[tuple[str, int, int]]:
    """(symbol, first row, one past the last row) of each target's rows; one block of
    `default` for a one-target table (no symbol column)."""
    if SYMBOL not in table.columns:
        return [(default, 0, len(table))]
    symbols = table[SYMBOL].to_numpy()
    starts = np.flatnonzero(np.r_[True, symbols[1:] != symbols[:-1]])
    stops = np.r_[starts[1:], len(symbols)]
    return [(str(symbols[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _labeled(table: pd.DataFrame) -> np.ndarray:
    return ~np.isnan(table[LABEL].to_numpy(float))


def calendar(tables: dict[str, pd.DataFrame], config: DataConfig) -> np.ndarray:
    """The sorted union of every target's sample dates (rows with a window and a label)."""
    dates = [
        sample_dates(t.index.to_numpy(), config.context_days, config.horizon_days, _labeled(t))
        for t in tables.values()
    ]
    return np.unique(np.concatenate(dates))


def _projected(
    tables: dict[str, pd.DataFrame], days: np.ndarray, spans: list[Span], config: DataConfig
) -> dict[str, np.ndarray]:
    return {
        symbol: project_spans(
            spans,
            days,
            table.index.to_numpy(),
            config.context_days,
            config.horizon_days,
            _labeled(table),
        ).assignment
        for symbol, table in tables.items()
    }


def search_assignments(
    tables: dict[str, pd.DataFrame], config: DataConfig, evaluation: EvaluationConfig
) -> dict[str, np.ndarray]:
    """Each target's split codes under the study's scheme: the holdout split, or under
    walk-forward the search's plan (the test folds OUTSIDE)."""
    days = calendar(tables, config)
    if evaluation.scheme == "walk_forward":
        spans, _ = _walk_spans(len(days), config, evaluation)
    else:
        spans = holdout_spans(len(days), config.split, config.split_fractions, config.n_chunks)
    return _projected(tables, days, spans, config)


def fold_assignments(
    tables: dict[str, pd.DataFrame], config: DataConfig, evaluation: EvaluationConfig
) -> list[dict[str, np.ndarray]]:
    """Each walk-forward fold's split codes of every target."""
    days = calendar(tables, config)
    _, folds = _walk_spans(len(days), config, evaluation)
    return [_projected(tables, days, spans, config) for spans in folds]


def _walk_spans(n_days: int, config: DataConfig, evaluation: EvaluationConfig):
    return walk_forward_spans(
        0,
        n_days,
        config.split_fractions,
        evaluation.folds,
        evaluation.search_fraction,
        evaluation.window,
        evaluation.rolling_days,
    )


def check_targets(tables: dict[str, pd.DataFrame], config: DataConfig) -> None:
    """Every target trains on at least `min_samples_per_split` samples (its normaliser
    is fitted on them); otherwise one error naming it and the dates it has."""
    least = config.min_samples_per_split
    for symbol, table in tables.items():
        train = int((table[SPLIT].to_numpy() == TRAIN).sum())
        if train < least:
            counts = ", ".join(
                f"{name} {int((table[SPLIT].to_numpy() == code).sum())}"
                for code, name in SPLIT_NAMES.items()
            )
            raise InputError(
                f"target {symbol} has data from {table.index[0].date()} to "
                f"{table.index[-1].date()} only, which gives {counts} samples on the panel's "
                f"split dates; each target needs at least {least} training samples: drop it "
                "from targets or move the dates",
                f"target {symbol}",
            )


def panel_table(
    tables: dict[str, pd.DataFrame],
    config: DataConfig,
    evaluation: EvaluationConfig,
    check: Callable[[pd.DataFrame], None] | None = None,
) -> pd.DataFrame:
    """The pooled table: each target's rows with its split codes and `symbol`, one
    target after another. `check` sees the pooled table (split sizes)."""
    codes = search_assignments(tables, config, evaluation)
    parts = []
    for symbol, table in tables.items():
        part = table.copy()
        part[SPLIT] = codes[symbol]
        part[SYMBOL] = symbol
        parts.append(part)
    check_targets({p[SYMBOL].iloc[0]: p for p in parts}, config)
    pooled = pd.concat(parts)
    if check is not None:
        check(pooled)
    return pooled


def check_panel_sizes(
    tables: dict[str, pd.DataFrame],
    pooled: pd.DataFrame,
    config: DataConfig,
    evaluation: EvaluationConfig,
) -> None:
    """Every split of the pooled panel (and of every walk-forward fold) holds at least
    `min_samples_per_split` samples."""
    least = config.min_samples_per_split

    def counts(codes: np.ndarray) -> dict[str, int]:
        return {name: int((codes == code).sum()) for code, name in SPLIT_NAMES.items()}

    search = counts(pooled[SPLIT].to_numpy())
    needed = ("train", "val") if evaluation.scheme == "walk_forward" else ("train", "val", "test")
    if min(search[name] for name in needed) < least:
        detail = ", ".join(f"{name} {search[name]}" for name in needed)
        raise InputError(
            f"the panel's splits give {detail} samples; each needs at least {least}: use more "
            "history or other split fractions",
            "evaluation.search_fraction" if evaluation.scheme == "walk_forward" else "data.targets",
        )
    if evaluation.scheme != "walk_forward":
        return
    for k, fold in enumerate(fold_assignments(tables, config, evaluation)):
        fold_counts = counts(np.concatenate(list(fold.values())))
        if min(fold_counts.values()) < least:
            detail = ", ".join(f"{name} {n}" for name, n in fold_counts.items())
            raise InputError(
                f"test fold {k} of {evaluation.folds} gets {detail} samples over the panel; "
                f"each split needs at least {least}: use fewer folds or more history",
                "evaluation.folds",
            )
