"""The baselines a transformer must beat, on the same splits and windows.

- `base_rate`: the training split's positive rate, predicted for every sample.
- `logistic`: L2 logistic regression on the flattened input window (every
  feature of every day the transformer sees).
- `volatility`: logistic regression on the volatility features of the last day
  only. With a fixed return threshold the chance of crossing it grows with
  volatility, so this one is hard to beat and the one a claim must clear.

The L2 strength of each regression is chosen on validation log loss, like the
transformer's hyperparameters; the test split is scored once.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from finscale.analysis.serial import Record, stored, tuple_of
from finscale.train import classification_metrics, log_loss

BASELINES = ("base_rate", "logistic", "volatility")
# Features of the target's own price range and return dispersion (the a25 tier has
# them all; a tier without some uses the ones it has).
VOLATILITY_FEATURES = ("rvol_5d", "rvol_20d", "natr_14", "hl_range", "bb_width_20")
# Inverse L2 strengths tried on validation.
C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
MAX_ITER = 2000


@dataclass(frozen=True, kw_only=True)
class BaselineDetails(Record):
    """What a baseline chose, each figure None where the baseline has none:
    `train_positive_rate` (the base rate's prediction), the inverse L2 strength `C`
    of a regression with the validation log loss (nats) of every C tried (keyed by
    str(C)), its `n_inputs` and input `features` (volatility). Under walk-forward a
    horizon's summary holds one per fold (`folds`)."""

    train_positive_rate: float | None = stored(omit_none=True)
    C: float | None = stored(omit_none=True)
    val_log_loss_by_C: Mapping[str, float] | None = stored(omit_none=True)
    n_inputs: int | None = stored(omit_none=True)
    features: tuple[str, ...] | None = stored(omit_none=True)
    folds: tuple[BaselineDetails, ...] | None = stored(
        omit_none=True, parse=tuple_of(lambda d: BaselineDetails.from_dict(d))
    )


@dataclass(frozen=True, kw_only=True)
class BaselineResult(Record):
    """One baseline on one split plan: its validation and test metrics (the keys of
    `finscale.train.classification_metrics`), its predictions P(label 1) by split
    ("val", "test") and what it chose."""

    val_metrics: Mapping[str, Any]
    test_metrics: Mapping[str, Any]
    predictions: Mapping[str, list[float]]
    details: BaselineDetails = stored(parse=BaselineDetails.from_dict, default=BaselineDetails())


def _rows(windows: Any) -> dict[str, np.ndarray]:
    return {split: windows.rows(split).numpy() for split in ("train", "val", "test")}


def flattened_windows(windows: Any, rows: np.ndarray) -> np.ndarray:
    """(len(rows), context_days * n_features) inputs: each sample's whole window."""
    return windows.batch(torch.from_numpy(rows))[0].reshape(len(rows), -1).numpy()


def last_day(windows: Any, rows: np.ndarray, names: list[str]) -> np.ndarray:
    """(len(rows), len(names)) values of the named features on each sample's own day."""
    columns = [windows.feature_names.index(n) for n in names]
    return windows.features.numpy()[rows][:, columns].astype(np.float64)


def fit_logistic(
    x: dict[str, np.ndarray], y: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], BaselineDetails]:
    """Fit on train at every C of `C_GRID`, keep the lowest val log loss; returns the
    probabilities of every split and the choice made."""
    scaler = StandardScaler().fit(x["train"])
    scaled = {split: scaler.transform(values) for split, values in x.items()}
    best: tuple[float, float, dict[str, np.ndarray]] | None = None
    tried = {}
    # Newton steps on the full Hessian (a few thousand inputs at most) converge in a
    # handful of iterations where L-BFGS needs hundreds on weakly regularised windows;
    # along the path from strong to weak, each fit starts from the previous optimum.
    model = LogisticRegression(max_iter=MAX_ITER, warm_start=True, solver="newton-cholesky")
    for c in sorted(C_GRID):
        with warnings.catch_warnings():
            # A flattened window holds exact linear combinations (a 5-day return is the
            # sum of five 1-day ones; tier close's excess return is the return less the
            # panel's), so the unpenalised Hessian is singular. The L2 term keeps the fit
            # strictly convex; scikit-learn says so and falls back to L-BFGS, a notice
            # about the inputs, not a fault of this fit.
            warnings.filterwarnings("ignore", message="The inner solver of NewtonCholeskySolver")
            model.set_params(C=c).fit(scaled["train"], y["train"])
        val = log_loss(y["val"], model.predict_proba(scaled["val"])[:, 1])
        tried[str(c)] = val
        if best is None or val < best[0]:
            probabilities = {split: model.predict_proba(v)[:, 1] for split, v in scaled.items()}
            best = (val, c, probabilities)
    assert best is not None
    probabilities = best[2]
    return probabilities, BaselineDetails(
        C=best[1], val_log_loss_by_C=tried, n_inputs=x["train"].shape[1]
    )


def evaluate_baselines(windows: Any, threshold: float = 0.5) -> dict[str, BaselineResult]:
    """Every baseline's validation and test predictions and metrics, by name.

    `windows` is the `WindowDataset` the transformers of this horizon trained on.
    """
    rows = _rows(windows)
    labels = {split: windows.labels[r].numpy().astype(int) for split, r in rows.items()}
    out: dict[str, BaselineResult] = {}

    rate = float(labels["train"].mean())
    probabilities = {split: np.full(len(r), rate) for split, r in rows.items()}
    details = BaselineDetails(train_positive_rate=rate)
    out["base_rate"] = _scored(probabilities, labels, threshold, details)

    flat = {split: flattened_windows(windows, r) for split, r in rows.items()}
    probabilities, details = fit_logistic(flat, labels)
    out["logistic"] = _scored(probabilities, labels, threshold, details)

    names = [n for n in VOLATILITY_FEATURES if n in windows.feature_names]
    if names:
        vol = {split: last_day(windows, r, names) for split, r in rows.items()}
        probabilities, details = fit_logistic(vol, labels)
        details = dataclasses.replace(details, features=tuple(names))
        out["volatility"] = _scored(probabilities, labels, threshold, details)
    return out


def _scored(
    probabilities: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    threshold: float,
    details: BaselineDetails,
) -> BaselineResult:
    return BaselineResult(
        val_metrics=classification_metrics(labels["val"], probabilities["val"], threshold),
        test_metrics=classification_metrics(labels["test"], probabilities["test"], threshold),
        predictions={s: probabilities[s].tolist() for s in ("val", "test")},
        details=details,
    )
