"""Threshold labels: does the target's close rise by at least a threshold within h days?

Pure functions of a close-price array. Rules (``label_rule``):

- ``max_close`` (default): 1 if ``max(close[t+1 .. t+h]) / close[t] - 1 >= threshold``,
  i.e. the close reaches the threshold on *any* of the next h days.
- ``close``: 1 if ``close[t+h] / close[t] - 1 >= threshold``, the close-to-close
  return at the horizon. For h = 1 both rules agree.

Thresholds (``threshold_mode``):

- ``fixed``: one threshold for every day (default 0.01, i.e. +1%).
- ``volatility``: ``k * sigma_t * sqrt(h)``, with ``sigma_t`` the standard
  deviation of the last ``vol_window_days`` daily simple returns up to and
  including day t (known at t). A fixed threshold is crossed far more often in
  turbulent markets, so its label is largely a volatility forecast; the scaled
  threshold asks for a move that is large *relative to current volatility*,
  which measures direction skill.

The last h rows have no full future and get no label (NaN).

Relative labels (``label_mode: relative``, a panel of targets,
`relative_labels`): a symbol's day t is labelled 1 when its forward return
``close[t+h] / close[t] - 1`` (over its own rows) exceeds the equal-weight mean
forward return of the panel's symbols that have one on that date by MORE than
the threshold (default 0): ``r - mean(r) > threshold``, strictly, so a symbol
that exactly matches the panel does not beat it. A date on which fewer than two
symbols have a forward return gets no label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

LabelRule = Literal["max_close", "close"]
ThresholdMode = Literal["fixed", "volatility"]


def _check(close: np.ndarray, horizon_days: int) -> np.ndarray:
    close = np.asarray(close, dtype=float)
    if close.ndim != 1:
        raise ValueError(f"close must be 1-D, got shape {close.shape}")
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be >= 1, got {horizon_days}")
    return close


def forward_return(close: np.ndarray, horizon_days: int) -> np.ndarray:
    """``close[t+h] / close[t] - 1``; NaN for the last h rows."""
    close = _check(close, horizon_days)
    out = np.full(close.shape, np.nan)
    if len(close) > horizon_days:
        out[:-horizon_days] = close[horizon_days:] / close[:-horizon_days] - 1.0
    return out


def forward_max_return(close: np.ndarray, horizon_days: int) -> np.ndarray:
    """``max(close[t+1 .. t+h]) / close[t] - 1``; NaN for the last h rows."""
    close = _check(close, horizon_days)
    out = np.full(close.shape, np.nan)
    n_labeled = len(close) - horizon_days
    if n_labeled > 0:
        # Row t of `future` holds close[t+1 .. t+h].
        future = np.lib.stride_tricks.sliding_window_view(close[1:], horizon_days)[:n_labeled]
        out[:n_labeled] = future.max(axis=1) / close[:n_labeled] - 1.0
    return out


def trailing_volatility(close: np.ndarray, window_days: int = 20) -> np.ndarray:
    """Sample std (ddof=1) of the last `window_days` daily simple returns up to day t.

    NaN until `window_days` returns exist (the first `window_days` rows).
    """
    close = np.asarray(close, dtype=float)
    if window_days < 2:
        raise ValueError(f"window_days must be >= 2, got {window_days}")
    returns = np.full(close.shape, np.nan)
    returns[1:] = close[1:] / close[:-1] - 1.0
    out = np.full(close.shape, np.nan)
    if len(close) > window_days:
        windows = np.lib.stride_tricks.sliding_window_view(returns[1:], window_days)
        out[window_days:] = windows.std(axis=1, ddof=1)
    return out


def label_thresholds(
    close: np.ndarray,
    horizon_days: int,
    threshold: float = 0.01,
    threshold_mode: ThresholdMode = "fixed",
    volatility_k: float = 1.0,
    vol_window_days: int = 20,
) -> np.ndarray:
    """The return each day must reach to be labelled 1 (NaN where unknown)."""
    close = _check(close, horizon_days)
    if threshold_mode == "fixed":
        return np.full(close.shape, float(threshold))
    if threshold_mode == "volatility":
        sigma = trailing_volatility(close, vol_window_days)
        return volatility_k * sigma * np.sqrt(horizon_days)
    raise ValueError(f"unknown threshold_mode {threshold_mode!r}; use fixed or volatility")


def threshold_labels(
    close: np.ndarray,
    horizon_days: int,
    threshold: float = 0.01,
    rule: LabelRule = "max_close",
    threshold_mode: ThresholdMode = "fixed",
    volatility_k: float = 1.0,
    vol_window_days: int = 20,
) -> np.ndarray:
    """Binary labels as floats: 1.0, 0.0, or NaN where no label exists.

    NaN for the last `horizon_days` rows (no full future) and, with
    ``threshold_mode="volatility"``, for the first rows before the trailing
    volatility is known.
    """
    if rule == "max_close":
        move = forward_max_return(close, horizon_days)
    elif rule == "close":
        move = forward_return(close, horizon_days)
    else:
        raise ValueError(f"unknown label rule {rule!r}; use max_close or close")
    needed = label_thresholds(
        close, horizon_days, threshold, threshold_mode, volatility_k, vol_window_days
    )
    known = ~np.isnan(move) & ~np.isnan(needed)
    labels = np.full(move.shape, np.nan)
    labels[known] = (move[known] >= needed[known]).astype(float)
    return labels


def relative_labels(
    closes: Mapping[str, pd.Series], horizon_days: int, threshold: float = 0.0
) -> dict[str, np.ndarray]:
    """Cross-sectional labels: does each symbol beat the panel's equal-weight forward
    return by more than `threshold`?

    closes: symbol -> close prices, each on its own sorted, unique DatetimeIndex.
    Each symbol's forward return is ``close[t+h] / close[t] - 1`` on its own rows
    (NaN for its last h rows). On each date of the union calendar, the panel's
    forward return is the mean over the symbols with a forward return that date,
    the symbol itself included. Label 1.0 where ``r - mean > threshold``, 0.0 where
    not, NaN where the symbol has no forward return or fewer than two symbols have
    one that date. Returns symbol -> (len(close),) float64 labels on its own rows.
    """
    forward = pd.DataFrame(
        {
            symbol: pd.Series(forward_return(series.to_numpy(float), horizon_days), series.index)
            for symbol, series in closes.items()
        }
    ).sort_index()
    excess = forward.sub(forward.mean(axis=1), axis=0)
    known = forward.notna() & (forward.count(axis=1) >= 2).to_numpy()[:, None]
    labels = (excess > threshold).astype(float).where(known)
    return {
        symbol: labels[symbol].reindex(series.index).to_numpy(float)
        for symbol, series in closes.items()
    }
