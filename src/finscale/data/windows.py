"""Model-ready tensors: the normaliser fitted on training rows, and the windows a
trainer reads, every one a view of one feature tensor."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from finscale.data.splits import SPLIT_NAMES

# ---------------------------------------------------------------- normalisation


@dataclass(frozen=True)
class Normalizer:
    """z-score statistics fitted on training rows only.

    Non-continuous features (categorical, binary) keep mean 0 and std 1 so
    they pass through unchanged.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray, train_rows: np.ndarray, continuous: np.ndarray) -> Normalizer:
        train = values[train_rows]
        # Statistics accumulate in float64 whatever the table's dtype (float32).
        mean = np.where(continuous, train.mean(axis=0, dtype=np.float64), 0.0)
        std = np.where(continuous, train.std(axis=0, dtype=np.float64), 1.0)
        # A feature constant on the training rows carries no information there;
        # dividing by ~0 would blow up its validation values.
        std = np.where(std > 1e-12, std, 1.0)
        return cls(mean=mean, std=std)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.std


# ---------------------------------------------------------------- windows


@dataclass
class WindowDataset:
    """Model-ready tensors: every sample's input is a view of one feature tensor.

    `features` is (n_rows, n_features) float32, normalised; `labels` (n_rows,)
    float32 with NaN where a row has no label; `assignment` the per-row split
    code from `finscale.data.splits`. The input window of row t is
    ``features[t - context_days + 1 : t + 1]``, shape (context_days, n_features).
    """

    features: torch.Tensor
    labels: torch.Tensor
    assignment: np.ndarray
    dates: np.ndarray
    context_days: int
    feature_names: list[str] = field(default_factory=list)

    @property
    def windows(self) -> torch.Tensor:
        """All windows, (n_rows - context_days + 1, context_days, n_features): a strided view."""
        return self.features.unfold(0, self.context_days, 1).transpose(1, 2)

    def rows(self, split: str) -> torch.Tensor:
        """Row indices of a split (`train`, `val` or `test`), in date order."""
        codes = {name: code for code, name in SPLIT_NAMES.items()}
        if split not in codes:
            raise ValueError(f"unknown split {split!r}; use train, val or test")
        return torch.from_numpy(np.flatnonzero(self.assignment == codes[split]))

    def batch(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (len(rows), context_days, n_features) and labels for the given rows.

        Only the batch is gathered; the windows themselves are never materialised.
        """
        return self.windows[rows - (self.context_days - 1)], self.labels[rows]
