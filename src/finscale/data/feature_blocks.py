"""The building blocks every feature tier shares: the `Feature` record, column access,
and causal rolling statistics (each value at t reads rows <= t only).

`finscale.data.features` (the OHLCV tiers a25, a50, a100) and
`finscale.data.close_features` (tier close) build their features from these.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

# The inputs a feature may read: the target's bars, a context index, the VIX close,
# and the equal-weight panel of a dataset's targets (tier close).
ROLES = ("target", "context", "vix", "panel")
KINDS = ("continuous", "categorical", "binary")

Frames = Mapping[str, pd.DataFrame]
Compute = Callable[[Frames], pd.Series]


@dataclass(frozen=True)
class Feature:
    """One named feature.

    `role` is the input the feature reads beyond the target ("target" when it
    reads the target alone). `kind` tells the normaliser what to do:
    "continuous" values are z-scored on the training split, "categorical"
    (small integers, e.g. `vix_regime` in {0, 1, 2}, candlestick direction in
    {-1, 0, 1}) and "binary" (0/1) values are fed as they are.
    """

    name: str
    description: str
    role: str
    kind: str
    compute: Compute

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"feature {self.name}: role {self.role!r} not in {ROLES}")
        if self.kind not in KINDS:
            raise ValueError(f"feature {self.name}: kind {self.kind!r} not in {KINDS}")
        if not self.description.strip() or "\n" in self.description:
            raise ValueError(f"feature {self.name}: description must be one non-empty line")


# --------------------------------------------------------------------------
# Column access


def column(frames: Frames, role: str, name: str) -> pd.Series:
    """Column `name` of the `role` input, as float64."""
    return frames[role][name].astype("float64")


def close(frames: Frames, role: str = "target") -> pd.Series:
    """The close of the `role` input, as float64."""
    return column(frames, role, "Close")


# --------------------------------------------------------------------------
# Causal building blocks (each value at t reads rows <= t only)


def safe_div(num: pd.Series, den: pd.Series, fill: float) -> pd.Series:
    """num / den, with `fill` where den is exactly zero; NaN stays NaN.

    The fill is the neutral value of the ratio (e.g. 0.5 for a position in a
    zero-width range), so zero volume or a flat window never yields inf.
    """
    zero = den == 0
    out = num / den.mask(zero)
    return out.mask(zero & num.notna(), fill)


def safe_log_ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    """log(num / den) for positive inputs, 0 (no information) where either is 0."""
    both_positive = (num > 0) & (den > 0)
    out = np.log(num.where(both_positive) / den.where(both_positive))
    return out.mask(~both_positive & num.notna() & den.notna(), 0.0)


def log_return(close: pd.Series, days: int) -> pd.Series:
    return np.log(close).diff(days)


def rvol(close: pd.Series, days: int) -> pd.Series:
    """Sample std of daily log returns over a trailing window, daily units."""
    return log_return(close, 1).rolling(days).std()


def sma_ratio(series: pd.Series, days: int) -> pd.Series:
    return series / series.rolling(days).mean() - 1.0


def zscore(series: pd.Series, days: int) -> pd.Series:
    rolling = series.rolling(days)
    return safe_div(series - rolling.mean(), rolling.std(), 0.0)


def rolling_corr(x: pd.Series, y: pd.Series, days: int) -> pd.Series:
    cov = x.rolling(days).cov(y)
    scale = np.sqrt(x.rolling(days).var() * y.rolling(days).var())
    # cov and var come from different accumulations; clip the rounding residue.
    return safe_div(cov, scale, 0.0).clip(-1.0, 1.0)


def rolling_beta(y: pd.Series, x: pd.Series, days: int) -> pd.Series:
    """OLS slope of y on x over a trailing window."""
    return safe_div(y.rolling(days).cov(x), x.rolling(days).var(), 0.0)


def window_apply(
    series: pd.Series, days: int, reduce: Callable[[np.ndarray], np.ndarray]
) -> pd.Series:
    """Apply `reduce` (rows of trailing windows -> one value per row).

    Each window is reduced on its own, so unlike pandas' rolling skew/kurt
    (which centre the whole series first) no full-sample statistic leaks in.
    A window holding any NaN gives NaN.
    """
    values = series.to_numpy(dtype=np.float64)
    out = np.full(len(values), np.nan)
    if len(values) >= days:
        windows = sliding_window_view(values, days)
        reduced = reduce(windows)
        reduced[np.isnan(windows).any(axis=1)] = np.nan
        out[days - 1 :] = reduced
    return pd.Series(out, index=series.index)


def _central_moments(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dev = windows - windows.mean(axis=1, keepdims=True)
    return (dev**2).mean(axis=1), (dev**3).mean(axis=1), (dev**4).mean(axis=1)


def skew(windows: np.ndarray) -> np.ndarray:
    m2, m3, _ = _central_moments(windows)
    flat = m2 == 0
    return np.where(flat, 0.0, m3 / np.where(flat, 1.0, m2) ** 1.5)


def excess_kurtosis(windows: np.ndarray) -> np.ndarray:
    m2, _, m4 = _central_moments(windows)
    flat = m2 == 0
    return np.where(flat, 0.0, m4 / np.where(flat, 1.0, m2) ** 2 - 3.0)


def pctile_of_last(windows: np.ndarray) -> np.ndarray:
    """Fraction of the window (today included) at or below today's value."""
    return (windows <= windows[:, -1:]).mean(axis=1)


def ta_series(fn: Callable, *inputs: pd.Series, output: int | None = None, **params) -> pd.Series:
    """Call a TA-Lib function on float64 arrays and return a series on the index.

    TA-Lib skips leading NaN (a context series that starts later than the
    target) and seeds its recursive averages from the first valid row, which
    is causal.
    """
    index = inputs[0].index
    arrays = [np.ascontiguousarray(s.to_numpy(dtype=np.float64)) for s in inputs]
    if not all(np.isfinite(a).any() for a in arrays):
        return pd.Series(np.nan, index=index)
    result = fn(*arrays, **params)
    if output is not None:
        result = result[output]
    return pd.Series(np.asarray(result, dtype=np.float64), index=index)
