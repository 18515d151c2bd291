"""Tier ``close``: features from the close series alone, and the panel's context.

A universe from a vendor, or the bundled stocks, often carries one adjusted close
per symbol and day, no open, high, low or volume. Tier close reads only that:

* the target's close: log returns over 1 to 60 days, realised volatility, 12-1 and
  6-1 momentum, drawdowns from the trailing highest close, the TA-Lib oscillators
  that read the close (RSI, MACD, Bollinger bands, TRIX, the linear-regression
  slope), distances to moving averages, skew and kurtosis of returns;
* the panel (role ``panel``): the equal-weight portfolio of the dataset's targets,
  rebalanced daily (`panel_returns`, `panel_close`), whose return and volatility
  describe the market of the day, and the target's return against it (excess
  returns, rolling beta and correlation).

Every value at day t reads rows <= t only: the panel's return on a date is the mean
of the returns its members made up to that date, and its close is their product
up to it. The panel of a one-target dataset is the target itself: its excess
returns are 0 and its beta and correlation 1 up to rounding, columns the
normaliser leaves at about 0 (a feature constant on the training rows is not
scaled), so a one-target close dataset is valid and its panel block tells it
nothing.

Features a25/a50/a100 already define with the same formula (``ret_1d``,
``rsi_14``, ...) are named here and taken from those tiers, so one name is one
formula everywhere (`finscale.data.features` resolves the names).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from finscale.data.feature_blocks import (
    Compute,
    Feature,
    close,
    log_return,
    rolling_beta,
    rolling_corr,
    rvol,
)

PANEL = "panel"


# --------------------------------------------------------------------------
# The equal-weight panel (pure functions of the members' closes)


def panel_returns(closes: Mapping[str, pd.Series]) -> pd.Series:
    """The equal-weight panel's daily simple return on the union of the members' dates.

    closes: symbol -> close prices (positive), each on its own sorted, unique
    DatetimeIndex. A member's return on one of its dates is ``close / previous
    close - 1`` over its own rows (its first row has none). The panel's return on
    a date is the mean of the returns of the members that have one that date: the
    daily-rebalanced, equal-weight portfolio of the symbols trading then, so
    symbols enter on their second row and leave after their last. NaN on a date
    no member has a return (the first date). Returns a float64 series, unitless
    (0.01 = +1%), on the sorted union calendar.
    """
    if not closes:
        raise ValueError("a panel needs at least one member")
    returns = pd.DataFrame(
        {symbol: series.astype("float64").pct_change() for symbol, series in closes.items()}
    ).sort_index()
    # pandas' mean skips NaN: each date averages the members with a return that day.
    return returns.mean(axis=1).rename("Return")


def panel_close(returns: pd.Series) -> pd.Series:
    """The panel's level, 1 on its first date: the running product of ``1 + return``.

    A date without a return (NaN) carries the level over. Only ratios of the level
    are features, so its start value is arbitrary. Causal: the level at t is the
    product of the returns up to t.
    """
    return (1.0 + returns.fillna(0.0)).cumprod().rename("Close")


def panel_frame(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The ``panel`` input of tier close: one ``Close`` column, the level of the
    equal-weight panel of `frames` (symbol -> validated bars with ``Close``), on the
    union of their dates."""
    level = panel_close(panel_returns({s: f["Close"] for s, f in frames.items()}))
    return level.to_frame()


# --------------------------------------------------------------------------
# Formulas


def _ret(role: str, days: int) -> Compute:
    return lambda fr: log_return(close(fr, role), days)


def _rv(role: str, days: int) -> Compute:
    return lambda fr: rvol(close(fr, role), days)


def _momentum(months: int) -> Compute:
    # The return from `months` months ago to one month ago (21 trading days a month):
    # the last month, where returns tend to reverse, is left out.
    lag_days = 21 * months
    return lambda fr: log_return(close(fr), lag_days - 21).shift(21)


def _close_drawdown(days: int) -> Compute:
    # From the highest close, not the highest high: a close-only series has no high.
    return lambda fr: np.log(close(fr) / close(fr).rolling(days).max())


def _excess_ret(days: int) -> Compute:
    return lambda fr: log_return(close(fr), days) - log_return(close(fr, PANEL), days)


def _panel_beta(days: int) -> Compute:
    return lambda fr: rolling_beta(log_return(close(fr), 1), log_return(close(fr, PANEL), 1), days)


def _panel_corr(days: int) -> Compute:
    return lambda fr: rolling_corr(log_return(close(fr), 1), log_return(close(fr, PANEL), 1), days)


def _f(name: str, description: str, compute: Compute, role: str = "target") -> Feature:
    return Feature(name, description, role, "continuous", compute)


# fmt: off
# A name is the a25/a50/a100 feature of that name (the same formula, on the close).
CLOSE_COLUMNS: tuple[str | Feature, ...] = (
    "ret_1d",
    _f("ret_2d", "log return of close over 2 days", _ret("target", 2)),
    _f("ret_3d", "log return of close over 3 days", _ret("target", 3)),
    "ret_5d",
    "ret_10d",
    "ret_20d",
    "ret_60d",
    "rvol_5d",
    "rvol_20d",
    "rvol_60d",
    "mom_12_1",
    _f("mom_6_1", "log return from 126 to 21 days ago (6-1 momentum)", _momentum(6)),
    _f("dd_close_20d", "log of close over the 20-day highest close (<= 0)", _close_drawdown(20)),
    _f("dd_close_60d", "log of close over the 60-day highest close (<= 0)", _close_drawdown(60)),
    _f("dd_close_252d", "log of close over the 252-day highest close (<= 0)",
       _close_drawdown(252)),
    "rsi_14",
    "rsi_5",
    "macd_norm",
    "bb_pctb_20",
    "bb_width_20",
    "trix_15",
    "linreg_slope_20",
    "sma_ratio_10",
    "sma_ratio_50",
    "sma_ratio_200",
    "skew_60d",
    "kurt_60d",
    _f("panel_ret_1d", "equal-weight panel log return over 1 day", _ret(PANEL, 1), PANEL),
    _f("panel_rvol_20d", "std of the panel's daily log returns over 20 days", _rv(PANEL, 20),
       PANEL),
    _f("panel_rvol_60d", "std of the panel's daily log returns over 60 days", _rv(PANEL, 60),
       PANEL),
    _f("excess_ret_1d", "target minus panel log return over 1 day", _excess_ret(1), PANEL),
    _f("excess_ret_5d", "target minus panel log return over 5 days", _excess_ret(5), PANEL),
    _f("excess_ret_20d", "target minus panel log return over 20 days", _excess_ret(20), PANEL),
    _f("panel_beta_60d", "OLS beta of target on panel daily log returns, 60 days",
       _panel_beta(60), PANEL),
    _f("panel_corr_60d", "correlation of target and panel daily log returns, 60 days",
       _panel_corr(60), PANEL),
)
# fmt: on
