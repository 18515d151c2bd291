"""Panels: one dataset of several targets, each labelled on its own series, their
samples pooled, their split boundaries shared dates.

The table of a panel is every target's table (features and label from its own
series, context symbols the same for all) one after another, with a `symbol`
column; rows stay in date order within each target. Its splits and walk-forward
folds are planned as a one-target dataset's are (`finscale.data.plans`): once on
the calendar, the union of every target's sample dates, and projected on each
target's rows, where each boundary is purged by the target's own context and
horizon: no date of a later block is read by an earlier block's labels in any
target, and a target with a shorter history contributes the dates it has.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from finscale.config import DataConfig, EvaluationConfig
from finscale.data.assembly import SPLIT, series_rows
from finscale.data.plans import search_assignments

SYMBOL = "symbol"


def symbol_blocks(table: pd.DataFrame, default: str) -> list[tuple[str, int, int]]:
    """(symbol, first row, one past the last row) of each target's rows; one block of
    `default` for a one-target table (no symbol column)."""
    if SYMBOL not in table.columns:
        return [(default, 0, len(table))]
    symbols = table[SYMBOL].to_numpy()
    starts = np.flatnonzero(np.r_[True, symbols[1:] != symbols[:-1]])
    stops = np.r_[starts[1:], len(symbols)]
    return [(str(symbols[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def panel_table(
    tables: dict[str, pd.DataFrame], config: DataConfig, evaluation: EvaluationConfig
) -> pd.DataFrame:
    """The pooled table: each target's rows with its split codes (every split's size
    checked) and `symbol`, one target after another."""
    codes = search_assignments(series_rows(tables), config, evaluation)
    parts = []
    for symbol, table in tables.items():
        # A shallow copy: the feature columns are shared with the target's table
        # until the one concatenation below copies them, once.
        part = table.copy(deep=False)
        part[SPLIT] = codes[symbol]
        part[SYMBOL] = symbol
        parts.append(part)
    table = pd.concat(parts)
    # One code per target, not one string per row.
    table[SYMBOL] = pd.Categorical(table[SYMBOL], categories=list(tables))
    return table
