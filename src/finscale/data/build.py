"""Building a dataset: sources -> validate -> features -> labels -> splits (and the
controls), stored under the hash of its inputs and parameters, or reused.

`build_dataset` is the data layer's one entry point; it returns the
`ProcessedDataset` (`finscale.data.dataset`) that gives model-ready windows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from finscale.config import DataConfig, EvaluationConfig
from finscale.data import features as feats
from finscale.data.assembly import (
    assemble_target,
    in_date_range,
    resolve_roles,
    split_table,
)
from finscale.data.close_features import PANEL, panel_frame
from finscale.data.controls import (
    bayes_by_split,
    control_params,
    controlled_table,
    walked_frames,
)
from finscale.data.dataset import PIPELINE_VERSION, ProcessedDataset
from finscale.data.labels import relative_labels
from finscale.data.panel import panel_table
from finscale.data.sources import RawSeries, load_sources
from finscale.data.store import DataStore, frame_sha256, params_sha256
from finscale.data.universe import drop_short, resolve_targets, short_histories
from finscale.data.validate import CLOSE_ONLY, OHLCV
from finscale.errors import InputError


def _params(config: DataConfig, evaluation: EvaluationConfig) -> dict[str, Any]:
    # Only what changes the search's rows enters the key: the folds, the window and
    # the rolling length change the final evaluation, not the search.
    scheme = (
        {"scheme": "walk_forward", "search_fraction": evaluation.search_fraction}
        if evaluation.scheme == "walk_forward"
        else {}
    )
    return {
        "labels": _label_params(config),
        "splits": {
            "kind": config.split,
            "fractions": list(config.split_fractions),
            "context_days": config.context_days,
            **({"n_chunks": config.n_chunks} if config.split == "chunked" else {}),
            **scheme,
        },
        **control_params(config),
        "context_ffill_days": config.context_ffill_days,
        "dates": [
            str(config.start) if config.start else None,
            str(config.end) if config.end else None,
        ],
    }


def _label_params(config: DataConfig) -> dict[str, Any]:
    """The label's part of the key: an absolute label's as it always was (so the keys
    of absolute datasets never change); a relative label's horizon, margin and mode
    (it reads neither `label_rule` nor `threshold_mode`)."""
    if config.label_mode == "relative":
        return {
            "horizon_days": config.horizon_days,
            "threshold": config.label_threshold,
            "label_mode": "relative",
        }
    return {
        "horizon_days": config.horizon_days,
        "threshold": config.label_threshold,
        "rule": config.label_rule,
        "threshold_mode": config.threshold_mode,
        **(
            {"volatility_k": config.volatility_k, "vol_window_days": config.vol_window_days}
            if config.threshold_mode == "volatility"
            else {}
        ),
    }


def _columns_needed(config: DataConfig, role: str) -> tuple[str, ...]:
    """The columns validation requires of a role's series: the close alone for VIX and
    under tier close, else OHLCV."""
    return CLOSE_ONLY if role == "vix" or config.tier == "close" else OHLCV


def _check_ohlcv_present(raw: dict[str, RawSeries], symbols: list[str], tier: str) -> None:
    """One error, before validation, where a tier that reads OHLCV meets series of close
    prices only (no open, high or low): tier close is what such a source can build."""
    close_only = []
    for symbol in symbols:
        frame = raw[symbol].frame
        found = {str(c).strip().lower().replace("_", " ") for c in frame.columns}
        missing = [c for c in OHLCV if c.lower() not in found]
        if {"Open", "High", "Low"} <= set(missing):
            close_only.append((symbol, missing))
    if not close_only:
        return
    (first, missing), more = close_only[0], len(close_only) - 1
    who = f"{first} has" if not more else f"{first} and {more} more symbol(s) have"
    raise InputError(
        f"{who} close prices only (no {', '.join(missing)}); tier {tier} needs OHLCV",
        "data.tier",
        fix="close",
    )


def _dataset_key(meta: dict[str, Any]) -> str:
    """sha256 of what a dataset is made of: the pipeline version, the sha256 of every
    raw input and its role, the feature spec and every label/split parameter (and the
    targets `min_history_days` dropped, where it dropped any, so that the manifest
    entry names them)."""
    fields = ("inputs", "roles", "feature_spec", "params", "dropped_targets")
    return params_sha256(
        {"pipeline": PIPELINE_VERSION, **{name: meta[name] for name in fields if name in meta}}
    )


def _provenance(raw: dict[str, RawSeries], dropped: dict[str, int]) -> dict[str, Any]:
    """The manifest's `dropped_targets` ({symbol: rows in the date range}) and
    `ignored_columns` ({file: [columns validation never read]}), where there are any."""
    ignored = {series.where: list(series.ignored) for series in raw.values() if series.ignored}
    return {
        **({"dropped_targets": dict(dropped)} if dropped else {}),
        **({"ignored_columns": ignored} if ignored else {}),
    }


def build_dataset(
    config: DataConfig,
    store: DataStore | None = None,
    *,
    download: Callable[..., pd.DataFrame] | None = None,
    must_exist: bool = False,
    evaluation: EvaluationConfig | None = None,
) -> ProcessedDataset:
    """Build the processed dataset for `config`, or reuse the stored one.

    Under `evaluation` walk_forward (default: holdout) the split column is the
    search's plan, and `folds()` gives each test fold's dataset.

    A stored dataset is reused when the sha256 of every raw input, the feature
    spec and every label/split parameter are unchanged; with `must_exist`, a
    dataset missing from the store is an error instead of being built.
    `targets: all` is resolved to the source's symbols first, and targets with fewer
    rows than `min_history_days` are dropped (and said): the dataset's `config` holds
    the targets it labels.

    Raises `InputError` for bad data or parameters, before anything is written.
    """
    started = time.perf_counter()
    evaluation = evaluation or EvaluationConfig()
    config = resolve_targets(config)
    context = (store, download, must_exist, evaluation, started)
    if config.is_panel:
        return _build_panel(config, context)
    return _build_one(config, context, {})


# store, download, must_exist, evaluation, the build's start time
_Context = tuple[
    DataStore | None, Callable[..., pd.DataFrame] | None, bool, EvaluationConfig, float
]


def _build_one(config: DataConfig, context: _Context, dropped: dict[str, int]) -> ProcessedDataset:
    """`build_dataset` of one target; `dropped`: the panel's targets dropped before."""
    store, download, must_exist, evaluation, started = context
    roles = resolve_roles(config)
    raw = load_sources(
        config.source,
        list(roles.values()),
        config.path,
        config.target_symbols,
        config.synthetic,
        **_yahoo_args(config, download),
    )
    _check_ohlcv_present(
        raw, [s for r, s in roles.items() if _columns_needed(config, r) == OHLCV], config.tier
    )
    loaded = {
        role: raw[symbol].validate(_columns_needed(config, role)) for role, symbol in roles.items()
    }
    drop_short(config, short_histories({config.target: loaded["target"]}, config))  # raises
    inputs = {roles[role]: frame_sha256(frame) for role, frame in loaded.items()}
    meta = {
        "inputs": inputs,
        "roles": roles,
        "feature_spec": feats.feature_spec(config.tier),
        "params": _params(config, evaluation),
        "tier": config.tier,
        **_provenance(raw, dropped),
    }
    raws = {symbol: (loaded[role], raw[symbol].source) for role, symbol in roles.items()}
    return _stored_or_built(
        config,
        evaluation,
        roles,
        meta,
        (store, must_exist, started),
        lambda: controlled_table(
            split_table(
                walked_frames(loaded, {"target": config.target}, config), roles, config, evaluation
            ),
            config,
            evaluation,
        ),
        raws,
    )


def _stored_or_built(
    config: DataConfig,
    evaluation: EvaluationConfig,
    roles: dict[str, str],
    meta: dict[str, Any],
    context: tuple[DataStore | None, bool, float],
    build: Callable[[], pd.DataFrame],
    raws: dict[str, tuple[pd.DataFrame, str]],
) -> ProcessedDataset:
    """The dataset of `meta`'s key from the store, or `build()` it and store it with its
    raw inputs; `context` is (store, must_exist, the build's start time)."""
    store, must_exist, started = context
    key = _dataset_key(meta)
    feature_list = feats.tier_features(config.tier)

    def finish(table: pd.DataFrame, entry: dict[str, Any], reused: bool) -> ProcessedDataset:
        return ProcessedDataset(
            table,
            config,
            roles,
            [f.name for f in feature_list],
            np.array([f.kind == "continuous" for f in feature_list]),
            key,
            entry,
            reused,
            time.perf_counter() - started,
            evaluation,
        )

    stored = store.get_processed(key) if store is not None else None
    if stored is not None:
        entry, table = stored
        # The columns ignored are those of the file read now (another file of the same
        # prices gives the same dataset), not of the one it was first built from.
        entry = {k: v for k, v in entry.items() if k != "ignored_columns"}
        if "ignored_columns" in meta:
            entry["ignored_columns"] = meta["ignored_columns"]
        return finish(table, entry, True)
    if must_exist:
        raise InputError(
            "no stored dataset for these options; build it first with `finscale data build` "
            "and the same options",
            f"store {store.root if store is not None else 'none'}",
        )
    table = build()
    bayes = bayes_by_split(table)
    meta = {**meta, **({"bayes_log_loss": bayes} if bayes else {})}
    source = config.source if config.source != "csv" else f"csv:{config.path}"
    if store is None:
        return finish(
            table, {"key": key, "sha256": frame_sha256(table), "source": source, **meta}, False
        )
    for symbol, (frame, origin) in raws.items():
        store.put_raw(symbol, frame, origin)
    return finish(table, store.put_processed(key, table, source, meta), False)


def _build_panel(config: DataConfig, context: _Context) -> ProcessedDataset:
    """`build_dataset` of several targets: each target's features and labels from its
    own series (and the same context symbols), the samples pooled, the split
    boundaries shared dates (`finscale.data.panel`). Targets with a short history are
    dropped here; where one is left, it is a one-target dataset."""
    store, download, must_exist, evaluation, started = context
    targets = config.target_symbols
    roles_by_target = {
        t: resolve_roles(config.model_copy(update={"target": t, "targets": ()})) for t in targets
    }
    kinds: dict[str, tuple[str, ...]] = {}
    for roles in roles_by_target.values():
        for role, symbol in roles.items():
            kinds[symbol] = _columns_needed(config, role)
    raw = load_sources(
        config.source,
        list(kinds),
        config.path,
        targets,
        config.synthetic,
        **_yahoo_args(config, download),
    )
    _check_ohlcv_present(raw, [s for s, kind in kinds.items() if kind == OHLCV], config.tier)
    loaded = {symbol: raw[symbol].validate(kind) for symbol, kind in kinds.items()}
    dropped = short_histories({t: loaded[t] for t in targets}, config)
    if dropped:
        config = drop_short(config, dropped)
        if not config.is_panel:
            return _build_one(config, context, dropped)
        targets = config.target_symbols
        roles_by_target = {t: roles_by_target[t] for t in targets}
        used = {symbol for roles in roles_by_target.values() for symbol in roles.values()}
        loaded = {symbol: frame for symbol, frame in loaded.items() if symbol in used}
        raw = {symbol: series for symbol, series in raw.items() if symbol in used}
    meta = {
        "inputs": {symbol: frame_sha256(frame) for symbol, frame in loaded.items()},
        "roles": roles_by_target,
        "feature_spec": feats.feature_spec(config.tier),
        "params": _params(config, evaluation),
        "tier": config.tier,
        **_provenance(raw, dropped),
    }
    raws = {symbol: (frame, raw[symbol].source) for symbol, frame in loaded.items()}
    del raw  # the files' text as read: on a panel of many symbols, more than the table
    shared = {
        role: symbol
        for role, symbol in roles_by_target[targets[0]].items()
        if role != "target" and all(r.get(role) == symbol for r in roles_by_target.values())
    }
    roles = {"target": ",".join(targets), **shared}

    def build() -> pd.DataFrame:
        walked = {
            target: walked_frames(
                {role: loaded[symbol] for role, symbol in target_roles.items()},
                {"target": target},
                config,
            )
            for target, target_roles in roles_by_target.items()
        }
        ranged = {
            target: in_date_range(frames, roles_by_target[target], config)
            for target, frames in walked.items()
        }
        # The cross-section: the panel of every target's (walked) close, on the union of
        # their dates, and the relative labels over the configured dates.
        panel = (
            {PANEL: panel_frame({t: frames["target"] for t, frames in walked.items()})}
            if PANEL in feats.tier_roles(config.tier)
            else {}
        )
        labels = (
            relative_labels(
                {t: frames["target"]["Close"] for t, frames in ranged.items()},
                config.horizon_days,
                config.label_threshold,
            )
            if config.label_mode == "relative"
            else {}
        )
        tables = {}
        for target, target_roles in roles_by_target.items():
            target_config = config.model_copy(update={"target": target, "targets": ()})
            tables[target], _ = assemble_target(
                {**ranged[target], **panel}, target_roles, target_config, labels.get(target)
            )
        return controlled_table(panel_table(tables, config, evaluation), config, evaluation)

    return _stored_or_built(
        config, evaluation, roles, meta, (store, must_exist, started), build, raws
    )


def _yahoo_args(config: DataConfig, download: Callable[..., pd.DataFrame] | None) -> dict:
    if config.source != "yahoo":
        return {}
    # Yahoo's `end` is exclusive; ours is inclusive.
    end = str(config.end + timedelta(days=1)) if config.end else None
    args = {"start": str(config.start) if config.start else "1950-01-01", "end": end}
    return {**args, "download": download} if download is not None else args
