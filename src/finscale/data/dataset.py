"""A built dataset and its model-ready windows.

    sources -> validate -> features -> labels -> splits -> normalise -> windows

`finscale.data.build.build_dataset` runs the chain (or reuses a stored result whose
inputs and parameters are unchanged) and returns a `ProcessedDataset`; its
`windows()` gives the tensors a trainer reads, with every window a view of
one feature tensor.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from finscale.config import DataConfig, EvaluationConfig
from finscale.data.assembly import (
    LABEL,
    SPLIT,
    series_rows,
)
from finscale.data.controls import (
    LABEL_PROBABILITY,
    bayes_by_split,
)
from finscale.data.panel import SYMBOL, symbol_blocks
from finscale.data.plans import walk_forward_plans
from finscale.data.splits import (
    OUTSIDE,
    ROW_STATES,
    SPLIT_NAMES,
    TEST,
    TRAIN,
    VAL,
    WalkForwardPlan,
)
from finscale.data.windows import Normalizer, WindowDataset

# Bumped when the assembly below (alignment, warmup, table layout) changes.
PIPELINE_VERSION = "2"  # 2: the table is float32

DAILY_LOG_RETURN = "ret_1d"  # the target's one-day log return, a feature of every tier


# ---------------------------------------------------------------- the processed dataset


@dataclass
class ProcessedDataset:
    """One built dataset: raw features, labels and splits per row, plus provenance.

    The normaliser is fitted once, on the training rows, and the normalised
    feature tensor built once: every `windows()` shares it (the table is
    read-only once built).
    """

    table: pd.DataFrame  # date index; feature columns (not normalised), label, split code
    config: DataConfig
    roles: dict[str, str]
    feature_names: list[str]
    continuous: np.ndarray
    key: str
    entry: dict[str, Any]
    reused: bool
    build_seconds: float
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    def normalizer(self) -> Normalizer:
        """z-score statistics of the training rows (of the first target of a panel),
        fitted on the first call."""
        return next(iter(self._normalizers.values()))

    def normalizers(self) -> dict[str, Normalizer]:
        """Each target's statistics, fitted on its own training rows."""
        return dict(self._normalizers)

    def blocks(self) -> list[tuple[str, int, int]]:
        """(symbol, first row, one past the last row) of each target's rows."""
        return symbol_blocks(self.table, self.config.target)

    def row_symbols(self) -> np.ndarray:
        """(n_rows,) the target symbol of each row."""
        out = np.empty(len(self.table), dtype=object)
        for symbol, a, b in self.blocks():
            out[a:b] = symbol
        return out

    @functools.cached_property
    def _normalizers(self) -> dict[str, Normalizer]:
        train_rows = self.table[SPLIT].to_numpy() == TRAIN
        raw = self._raw_features()
        return {
            symbol: Normalizer.fit(raw[a:b], train_rows[a:b], self.continuous)
            for symbol, a, b in self.blocks()
        }

    def _raw_features(self) -> np.ndarray:
        return self.table[self.feature_names].to_numpy(np.float32)

    def normalised_features(self) -> np.ndarray:
        """(n_rows, n_features) float32, each target's rows normalised by its own
        training rows' statistics (computed in float64, one target at a time)."""
        raw = self._raw_features()
        out = np.empty(raw.shape, dtype=np.float32)
        for symbol, a, b in self.blocks():
            out[a:b] = self._normalizers[symbol].transform(raw[a:b])
        return out

    @functools.cached_property
    def _window_tensors(self) -> dict[str, Any]:
        return {
            "features": torch.from_numpy(self.normalised_features()),
            "labels": torch.from_numpy(self.table[LABEL].to_numpy(np.float32, copy=True)),
            "assignment": self.table[SPLIT].to_numpy(np.int8),
            "dates": self.table.index.to_numpy(),
        }

    def windows(self, symbol_column: bool = False) -> WindowDataset:
        """The model-ready tensors. Every call shares one feature tensor (and one
        label tensor): treat them as read-only, copy before changing them.

        `symbol_column`: the features gain one last column, each row's symbol index
        (in `blocks()` order), for a model with a symbol embedding
        (`PatchTSTConfig.n_symbols`); the windows stay views of that one tensor."""
        tensors = dict(self._window_tensors)
        names = list(self.feature_names)
        if symbol_column:
            tensors["features"] = self._features_with_symbols
            names.append(SYMBOL)
        return WindowDataset(**tensors, context_days=self.config.context_days, feature_names=names)

    @functools.cached_property
    def _features_with_symbols(self) -> torch.Tensor:
        index = np.empty(len(self.table), dtype=np.float32)
        for k, (_, a, b) in enumerate(self.blocks()):
            index[a:b] = k
        return torch.cat([self._window_tensors["features"], torch.from_numpy(index)[:, None]], 1)

    def resplit(self, assignment: np.ndarray) -> ProcessedDataset:
        """The same rows under another split plan (one code per row): its normaliser
        is fitted afresh on the plan's own training rows."""
        assignment = np.asarray(assignment, dtype=np.int8)
        if assignment.shape != (len(self.table),):
            raise ValueError(
                f"assignment must have {len(self.table)} codes, got {assignment.shape}"
            )
        table = self.table.copy(deep=False)
        table[SPLIT] = assignment
        return dataclasses.replace(self, table=table)

    def with_train_fraction(self, fraction: float) -> ProcessedDataset:
        """The same splits with only the most recent `fraction` of the training samples
        (the older ones OUTSIDE): a data-scaling run's dataset. Validation and test are
        untouched; the normaliser is fitted on the rows kept. Nothing new is purged: no
        label reads the dropped rows, which lie before every training row kept."""
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
        if fraction == 1.0:
            return self
        assignment = self.table[SPLIT].to_numpy().copy()
        for _, a, b in self.blocks():  # each target keeps its own most recent share
            train = a + np.flatnonzero(assignment[a:b] == TRAIN)
            keep = max(1, round(len(train) * fraction))
            assignment[train[: len(train) - keep]] = OUTSIDE
        return self.resplit(assignment)

    def _walk_forward_plans(self) -> dict[str, WalkForwardPlan]:
        if self.evaluation.scheme != "walk_forward":
            raise ValueError("walk-forward folds need evaluation.scheme walk_forward")
        tables = {symbol: self.table.iloc[a:b] for symbol, a, b in self.blocks()}
        return walk_forward_plans(series_rows(tables), self.config, self.evaluation)

    def walk_forward(self) -> WalkForwardPlan:
        """The walk-forward plans of a one-target dataset's rows (`evaluation.scheme`
        walk_forward); a panel's folds come from `fold_assignments`."""
        if self.config.is_panel:
            raise ValueError("a panel's folds are planned on its calendar: use folds()")
        return next(iter(self._walk_forward_plans().values()))

    def fold_assignments(self) -> list[np.ndarray]:
        """Each test fold's split code of every row (walk-forward), every target's rows
        from the one plan of the calendar."""
        plans = list(self._walk_forward_plans().values())
        return [
            np.concatenate([plan.folds[k].assignment for plan in plans])
            for k in range(self.evaluation.folds)
        ]

    def folds(self) -> list[ProcessedDataset]:
        """One dataset per test fold: train and early-stopping val before it, the fold as test."""
        return [self.resplit(assignment) for assignment in self.fold_assignments()]

    def fold_dates(self) -> list[dict[str, Any]]:
        """Each fold's `fold` (0-based), `train_start`, `train_end` (the first and last
        training or early-stopping sample) and `test_start`, `test_end`, ISO dates."""
        dates = self.table.index
        out = []
        for k, assignment in enumerate(self.fold_assignments()):
            fitted = np.flatnonzero(np.isin(assignment, (TRAIN, VAL)))
            fitted = fitted[np.argsort(dates[fitted], kind="stable")]
            test = np.flatnonzero(assignment == TEST)
            test = test[np.argsort(dates[test], kind="stable")]
            out.append(
                {
                    "fold": k,
                    "train_start": str(dates[fitted[0]].date()),
                    "train_end": str(dates[fitted[-1]].date()),
                    "test_start": str(dates[test[0]].date()),
                    "test_end": str(dates[test[-1]].date()),
                }
            )
        return out

    def next_day_returns(self) -> np.ndarray:
        """(n_rows,) the target's simple return from each row's close to the next row's
        (NaN on the last row), from the raw `ret_1d` feature (a log return)."""
        log_returns = self.table[DAILY_LOG_RETURN].to_numpy(float)
        out = np.full(len(log_returns), np.nan)
        for _, a, b in self.blocks():  # each target's own next day
            out[a : b - 1] = np.expm1(log_returns[a + 1 : b])
        return out

    @property
    def planted(self) -> bool:
        """Whether the labels were drawn from known probabilities (`label_probabilities`)."""
        return LABEL_PROBABILITY in self.table.columns

    def label_probabilities(self) -> np.ndarray | None:
        """(n_rows,) each row's true probability of a positive label where the labels
        were planted (`data.source: synthetic`; NaN on rows without a label), None where
        they come from a market."""
        if not self.planted:
            return None
        return self.table[LABEL_PROBABILITY].to_numpy(float)

    def model_ready(self) -> pd.DataFrame:
        """`date`, normalised features, `label` (0/1) and `split` (train/val/test) per sample.

        Purged rows, rows without a full window and rows without a label are absent.
        """
        codes = self.table[SPLIT].to_numpy()
        keep = np.isin(codes, list(SPLIT_NAMES))
        out = pd.DataFrame(self.normalised_features()[keep], columns=self.feature_names)
        for name, kind_continuous in zip(self.feature_names, self.continuous, strict=True):
            if not kind_continuous:
                out[name] = out[name].round().astype("int64")
        out.insert(0, "date", self.table.index[keep])
        out.insert(1, SYMBOL, self.row_symbols()[keep])
        out[LABEL] = self.table[LABEL].to_numpy()[keep].astype("int64")
        out[SPLIT] = pd.Categorical(
            [SPLIT_NAMES[c] for c in codes[keep]], categories=list(SPLIT_NAMES.values())
        )
        return out

    def summary(self) -> dict[str, Any]:
        """Rows, dates, feature count, samples and label balance per split, hashes."""
        codes = self.table[SPLIT].to_numpy()
        labels = self.table[LABEL].to_numpy()
        splits = {}
        for code, name in SPLIT_NAMES.items():
            mask = codes == code
            if not mask.any():
                continue
            dates = self.table.index[mask]
            positives = int(np.nansum(labels[mask]))
            splits[name] = {
                "samples": int(mask.sum()),
                "positives": positives,
                "positive_rate": positives / int(mask.sum()),
                "first_date": str(dates.min().date()),
                "last_date": str(dates.max().date()),
            }
        for name, loss in bayes_by_split(self.table).items():
            splits[name]["bayes_log_loss"] = loss
        states = {name: int((codes == code).sum()) for code, name in ROW_STATES.items()}
        symbols = {}
        for symbol, a, b in self.blocks():
            samples = np.isin(codes[a:b], list(SPLIT_NAMES))
            symbols[symbol] = {
                "rows": b - a,
                "samples": int(samples.sum()),
                "first_date": str(self.table.index[a].date()),
                "last_date": str(self.table.index[b - 1].date()),
            }
        return {
            "key": self.key,
            "sha256": self.entry["sha256"],
            "inputs": self.entry["inputs"],
            "roles": self.roles,
            "tier": self.config.tier,
            "n_features": len(self.feature_names),
            "rows": len(self.table),
            "symbols": symbols,
            "first_date": str(self.table.index.min().date()),
            "last_date": str(self.table.index.max().date()),
            "horizon_days": self.config.horizon_days,
            "context_days": self.config.context_days,
            "label": self.entry["params"]["labels"],
            **(
                {"planted": self.config.synthetic.model_dump()}
                if self.config.source == "synthetic"
                else {}
            ),
            "null_control": self.config.null_control,
            "split_kind": self.config.split,
            "scheme": self.evaluation.scheme,
            "splits": splits,
            "row_states": {k: v for k, v in states.items() if k not in SPLIT_NAMES.values()},
            "reused": self.reused,
            "build_seconds": round(self.build_seconds, 3),
            # what `min_history_days` dropped, and the columns of the files never read
            **{k: self.entry[k] for k in ("dropped_targets", "ignored_columns") if k in self.entry},
        }
