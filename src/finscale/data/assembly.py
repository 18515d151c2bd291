"""One target's table: its own series and its context symbols aligned on its dates,
every feature of the tier, the label, the warm-up rows dropped, and each row's
split code.

    sources -> validate -> (here) align, features, labels -> splits -> windows

Pure functions of validated frames; `finscale.data.dataset` plans the splits and
stores the result.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from finscale.config import DataConfig, EvaluationConfig
from finscale.data import features as feats
from finscale.data.close_features import PANEL, panel_frame
from finscale.data.labels import label_thresholds, threshold_labels
from finscale.data.plans import search_assignments
from finscale.data.splits import SeriesRows
from finscale.errors import InputError

LABEL, SPLIT = "label", "split"


# ---------------------------------------------------------------- symbols and roles


def resolve_roles(config: DataConfig) -> dict[str, str]:
    """Map each input role the tier needs to a symbol: ``{"target": "SP500", ...}``.

    With bundled data and no `symbols`, the tier's inputs default to NASDAQ
    (SP500 when the target is NASDAQ) for context and VIX for volatility; tier
    close reads none (its panel is made of the targets).
    """
    # The panel of tier close is built from the targets: no symbol of its own.
    needed = [r for r in feats.tier_roles(config.tier) if r not in feats.DERIVED_ROLES]
    symbols = list(config.symbols)
    if not symbols and config.source == "bundled":
        if "context" in needed:
            symbols.append("NASDAQ" if config.target != "NASDAQ" else "SP500")
        if "vix" in needed:
            symbols.append(config.vix_symbol)
    roles = {"target": config.target}
    context = [s for s in symbols if s != config.vix_symbol]
    if len(context) > 1:
        raise InputError(
            f"tier {config.tier} uses one context symbol, got {', '.join(context)}", "data.symbols"
        )
    if context:
        roles["context"] = context[0]
    if config.vix_symbol in symbols:
        roles["vix"] = config.vix_symbol
    extra = [f"{symbol} ({role})" for role, symbol in roles.items() if role not in needed]
    if extra:
        raise InputError(
            f"tier {config.tier} does not use {', '.join(extra)}; drop it from data.symbols "
            f"or pick a tier that needs it (a50: context, a100: context and VIX)",
            "data.symbols",
        )
    missing = [role for role in needed if role not in roles]
    if missing:
        what = {
            "context": "a context symbol (an index such as NASDAQ)",
            "vix": f"the volatility index {config.vix_symbol}",
        }
        raise InputError(
            f"tier {config.tier} needs {' and '.join(what[r] for r in missing)}", "data.symbols"
        )
    return roles


def _align(
    frames: dict[str, pd.DataFrame], roles: dict[str, str], ffill_days: int
) -> dict[str, pd.DataFrame]:
    """Put every role's frame on the target's dates; context may be carried over its holidays.

    Forward filling uses the past only. A context value still missing after
    `ffill_days` in the middle of the history is an error, not a silent gap.
    """
    target_index = frames["target"].index
    aligned = {"target": frames["target"]}
    for role, frame in frames.items():
        if role == "target":
            continue
        on_target = frame.reindex(target_index).ffill(limit=ffill_days)
        missing = on_target.isna().any(axis=1).to_numpy()
        observed = np.flatnonzero(~missing)
        name = roles.get(role, role)  # the panel has no symbol
        if len(observed) == 0:
            raise InputError(
                f"{name} has no dates in common with {roles['target']}", f"symbol {name}"
            )
        interior = missing & (np.arange(len(missing)) > observed[0])
        if interior.any():
            day = target_index[int(np.argmax(interior))]
            raise InputError(
                f"{name} has no value within {ffill_days} days before "
                f"{day.date()}, a trading day of {roles['target']}",
                f"symbol {name}, date {day.date()}",
            )
        aligned[role] = on_target
    return aligned


def assemble_target(
    frames: dict[str, pd.DataFrame],
    roles: dict[str, str],
    config: DataConfig,
    labels: np.ndarray | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """One target's table: features of `config.tier` and the label, from its first row
    with every feature on; returns it and the feature names.

    `frames` maps role -> validated frame (the panel of tier close under ``panel``, on
    a calendar holding the target's dates; absent, the target is its own panel).
    `labels`: the target's labels on its rows where they come from outside its own
    series (relative labels, computed over the panel); None: its threshold labels.
    """
    if PANEL in feats.tier_roles(config.tier) and PANEL not in frames:
        frames = {**frames, PANEL: panel_frame({roles["target"]: frames["target"]})}
    aligned = _align(frames, roles, config.context_ffill_days)
    values = feats.compute_features(aligned, config.tier)
    names = [f.name for f in feats.tier_features(config.tier)]
    close = aligned["target"]["Close"].to_numpy(float)
    if labels is not None:
        if len(labels) != len(close):
            raise ValueError(f"{len(labels)} labels for {len(close)} rows")
        # The label's rule reads no warm-up of its own: every row may have one.
        needed = np.zeros(len(close))
    else:
        labels = threshold_labels(
            close,
            config.horizon_days,
            config.label_threshold,
            config.label_rule,
            config.threshold_mode,
            config.volatility_k,
            config.vol_window_days,
        )
        needed = label_thresholds(
            close,
            config.horizon_days,
            config.label_threshold,
            config.threshold_mode,
            config.volatility_k,
            config.vol_window_days,
        )
    # Drop the leading rows where an indicator or the label threshold is still
    # warming up (a decision that reads only the row itself: causal).
    complete = values.notna().all(axis=1).to_numpy() & ~np.isnan(needed)
    if not complete.any():
        ranged = _range_field(config)
        raise InputError(
            f"no row of {roles['target']} has every {config.tier} feature "
            f"({len(close)} rows{' in the date range' if ranged else ''} are fewer than the "
            "indicators' warmup)",
            ranged or f"symbol {roles['target']}",
        )
    first = int(np.argmax(complete))
    if not complete[first:].all():
        row = first + int(np.argmin(complete[first:]))
        bad = [n for n in names if pd.isna(values[n].iloc[row])]
        raise InputError(
            f"feature {bad[0] if bad else 'label threshold'} is undefined after its warmup",
            f"symbol {roles['target']}, date {values.index[row].date()}",
        )
    # float32 from here on, per symbol: the model reads float32, and a panel of many
    # symbols would otherwise hold its table twice as large until the windows are made.
    table = values.iloc[first:].astype(np.float32)
    table[LABEL] = labels[first:].astype(np.float32)
    return table, names


def _range_field(config: DataConfig) -> str | None:
    """The field of the date range that narrows the data: start where given, else end."""
    return "data.start" if config.start else "data.end" if config.end else None


def in_date_range(
    frames: dict[str, pd.DataFrame], symbols: dict[str, str], config: DataConfig
) -> dict[str, pd.DataFrame]:
    """Each frame on the configured dates (`data.start` to `data.end`, inclusive); a range
    that leaves a symbol no row is an error naming the bound that misses its data.
    `symbols` names each frame's symbol. The stored raw series are never trimmed."""
    start, end = (pd.Timestamp(d) if d else None for d in (config.start, config.end))
    trimmed = {key: frame.loc[start:end] for key, frame in frames.items()}
    for key, frame in trimmed.items():
        index = frames[key].index
        if len(frame) or not len(index):
            continue
        after_the_data = start is not None and start > index[-1]
        field = "data.start" if after_the_data or end is None else "data.end"
        raise InputError(
            f"the date range {config.start or '...'} to {config.end or '...'} leaves no data "
            f"of {symbols[key]}, whose data runs {index[0].date()} to {index[-1].date()}",
            field,
        )
    return trimmed


def series_rows(tables: Mapping[str, pd.DataFrame]) -> dict[str, SeriesRows]:
    """Each target's row dates and labelled rows: what the split planners read of its table."""
    return {
        name: (table.index.to_numpy(), ~np.isnan(table[LABEL].to_numpy(float)))
        for name, table in tables.items()
    }


def split_table(
    loaded: dict[str, pd.DataFrame],
    roles: dict[str, str],
    config: DataConfig,
    evaluation: EvaluationConfig,
) -> pd.DataFrame:
    """Features and labels on the configured dates, with each row's split code (under
    walk-forward, the search's plan: the test folds are OUTSIDE)."""
    table, _ = assemble_target(in_date_range(loaded, roles, config), roles, config)
    target = roles["target"]
    table[SPLIT] = search_assignments(series_rows({target: table}), config, evaluation)[target]
    return table
