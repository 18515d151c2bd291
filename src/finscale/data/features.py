"""Named, model-ready features of daily market data, in nested tiers.

A tier is a fixed, ordered list of features: ``a25`` reads only the target's
OHLCV, ``a50`` adds a context index (e.g. NASDAQ for SP500) and ``a100`` adds
the VIX close. Each tier is a strict prefix of the next, so a model trained on
``a25`` sees the same first 25 columns in ``a100``. Tier ``close`` stands apart:
it reads the target's close alone and the equal-weight panel of the dataset's
targets (`finscale.data.close_features`), for sources without open, high, low
or volume.

Every feature obeys two rules the study's conclusions rest on:

* causal: the value at day t is a function of rows <= t only (trailing
  windows, no full-sample statistics), so truncating or altering the data after
  t changes nothing at or before t;
* scale-free and start-invariant: returns, ratios and oscillators rather than
  price levels or cumulative lines (raw OBV, raw A/D), because prices span
  decades of levels and a series may start on any date.

Divisions are guarded by design (a documented fill value where a denominator is
exactly zero, e.g. zero volume), so no feature becomes infinite.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import talib
from talib import abstract as talib_abstract

from finscale.data import close_features
from finscale.data.feature_blocks import (
    KINDS,
    ROLES,
    Compute,
    Feature,
    Frames,
    close,
    column,
    excess_kurtosis,
    log_return,
    pctile_of_last,
    rolling_beta,
    rolling_corr,
    rvol,
    safe_div,
    safe_log_ratio,
    skew,
    sma_ratio,
    ta_series,
    window_apply,
    zscore,
)
from finscale.errors import InputError

__all__ = ["KINDS", "ROLES", "Feature", "Frames"]

TIER_NAMES = ("a25", "a50", "a100", "close")

# Bump whenever a formula, window or the feature list changes: datasets are
# cached under a hash of `feature_spec`, and stale caches must not be reused.
FEATURE_SPEC_VERSION = "1"

# VIX regimes: 0 low (v < 15), 1 normal (15 <= v < 25), 2 high (v >= 25).
VIX_REGIME_THRESHOLDS = (15.0, 25.0)

OHLCV_COLUMNS = ("Open", "High", "Low", "Close", "Volume")
_ROLE_COLUMNS = {
    "target": OHLCV_COLUMNS,
    "context": OHLCV_COLUMNS,
    "vix": ("Close",),
    "panel": ("Close",),
}
# Tier close reads the close alone: its target may be a close-only series.
_CLOSE_ONLY_TIERS = ("close",)

_TIER_ROLES = {
    "a25": ("target",),
    "a50": ("target", "context"),
    "a100": ("target", "context", "vix"),
    "close": ("target", "panel"),
}
# Roles built from the dataset's targets rather than read from a symbol of their own.
DERIVED_ROLES = ("panel",)
_MISSING_ROLE_HINT = {
    "context": "a context symbol (an index such as NASDAQ)",
    "vix": "VIX (a volatility index close, symbol VIX)",
    "panel": "the equal-weight panel close of its targets (close_features.panel_close)",
}

_DAYS_PER_YEAR = 252

# --------------------------------------------------------------------------
# Column access


def _o(frames: Frames, role: str = "target") -> pd.Series:
    return column(frames, role, "Open")


def _h(frames: Frames, role: str = "target") -> pd.Series:
    return column(frames, role, "High")


def _l(frames: Frames, role: str = "target") -> pd.Series:
    return column(frames, role, "Low")


_c = close


def _v(frames: Frames, role: str = "target") -> pd.Series:
    return column(frames, role, "Volume")


def _candle(name: str, frames: Frames) -> pd.Series:
    """TA-Lib candlestick pattern as its direction: -1 bearish, 0 none, 1 bullish.

    TA-Lib writes 0 ("no pattern") during the pattern's lookback, where it has
    not looked yet; those rows become NaN so they are dropped as warmup.
    """
    ohlc = [_o(frames), _h(frames), _l(frames), _c(frames)]
    raw = ta_series(getattr(talib, name), *ohlc)
    valid = pd.concat(ohlc, axis=1).notna().all(axis=1)
    first_valid = int(np.argmax(valid.to_numpy())) if valid.any() else len(raw)
    lookback = talib_abstract.Function(name).lookback
    warm = np.arange(len(raw)) >= first_valid + lookback
    return np.sign(raw).where(warm)


# --------------------------------------------------------------------------
# Formulas: builders take a role or window and return a compute function


def _ret(role: str, days: int) -> Compute:
    return lambda fr: log_return(_c(fr, role), days)


def _gap(role: str) -> Compute:
    return lambda fr: np.log(_o(fr, role) / _c(fr, role).shift(1))


def _hl_range(role: str) -> Compute:
    return lambda fr: np.log(_h(fr, role) / _l(fr, role))


def _rv(role: str, days: int) -> Compute:
    return lambda fr: rvol(_c(fr, role), days)


def _sma_rel(role: str, days: int) -> Compute:
    return lambda fr: sma_ratio(_c(fr, role), days)


def _rsi(role: str, days: int) -> Compute:
    return lambda fr: ta_series(talib.RSI, _c(fr, role), timeperiod=days)


def _natr(role: str, days: int) -> Compute:
    return lambda fr: ta_series(
        talib.NATR, _h(fr, role), _l(fr, role), _c(fr, role), timeperiod=days
    )


def _adx(role: str, days: int) -> Compute:
    return lambda fr: ta_series(
        talib.ADX, _h(fr, role), _l(fr, role), _c(fr, role), timeperiod=days
    )


def _macd_over_close(role: str, output: int) -> Compute:
    # MACD is in price units; dividing by close makes it comparable across decades.
    return lambda fr: ta_series(talib.MACD, _c(fr, role), output=output) / _c(fr, role)


def _volume_ratio(role: str, days: int) -> Compute:
    return lambda fr: safe_div(_v(fr, role), _v(fr, role).rolling(days).mean(), 1.0)


def _drawdown(role: str, days: int) -> Compute:
    return lambda fr: np.log(_c(fr, role) / _h(fr, role).rolling(days).max())


def _spread_ret(days: int) -> Compute:
    return lambda fr: log_return(_c(fr), days) - log_return(_c(fr, "context"), days)


def _ret_corr(days: int) -> Compute:
    return lambda fr: rolling_corr(log_return(_c(fr), 1), log_return(_c(fr, "context"), 1), days)


def _beta(days: int) -> Compute:
    return lambda fr: rolling_beta(log_return(_c(fr), 1), log_return(_c(fr, "context"), 1), days)


def _vix_chg(days: int) -> Compute:
    return lambda fr: log_return(_c(fr, "vix"), days)


def _vix_z(days: int) -> Compute:
    return lambda fr: zscore(_c(fr, "vix"), days)


def _close_location(fr: Frames) -> pd.Series:
    high, low, close = _h(fr), _l(fr), _c(fr)
    return safe_div(close - low, high - low, 0.5)


def _bbands(fr: Frames) -> tuple[pd.Series, pd.Series, pd.Series]:
    return tuple(ta_series(talib.BBANDS, _c(fr), output=i, timeperiod=20) for i in range(3))


def _bb_pctb(fr: Frames) -> pd.Series:
    upper, _, lower = _bbands(fr)
    return safe_div(_c(fr) - lower, upper - lower, 0.5)


def _bb_width(fr: Frames) -> pd.Series:
    upper, middle, lower = _bbands(fr)
    return (upper - lower) / middle


def _flow_ratio(signed_volume: pd.Series, volume: pd.Series, days: int) -> pd.Series:
    return safe_div(signed_volume.rolling(days).sum(), volume.rolling(days).sum(), 0.0)


def _obv_flow(fr: Frames) -> pd.Series:
    # OBV's change over the window, in units of the window's volume: the
    # start-invariant form of the OBV line.
    direction = np.sign(_c(fr).diff())
    return _flow_ratio(direction * _v(fr), _v(fr), 20)


def _cmf(fr: Frames) -> pd.Series:
    high, low, close = _h(fr), _l(fr), _c(fr)
    multiplier = safe_div((close - low) - (high - close), high - low, 0.0)
    return _flow_ratio(multiplier * _v(fr), _v(fr), 20)


def _parkinson(fr: Frames) -> pd.Series:
    hl = np.log(_h(fr) / _l(fr))
    return np.sqrt((hl**2).rolling(20).mean() / (4.0 * np.log(2.0)))


def _garman_klass(fr: Frames) -> pd.Series:
    hl = np.log(_h(fr) / _l(fr))
    co = np.log(_c(fr) / _o(fr))
    # Non-negative whenever open and close lie in [low, high]; the floor keeps
    # a bad bar from producing NaN through the square root.
    daily = (0.5 * hl**2 - (2.0 * np.log(2.0) - 1.0) * co**2).clip(lower=0.0)
    return np.sqrt(daily.rolling(20).mean())


def _rs_sma_ratio(fr: Frames) -> pd.Series:
    # The ratio of two prices is level-dependent; its ratio to its own
    # trailing mean is not.
    return sma_ratio(_c(fr) / _c(fr, "context"), 50)


def _vol_ratio_ctx(fr: Frames) -> pd.Series:
    return safe_log_ratio(rvol(_c(fr), 20), rvol(_c(fr, "context"), 20))


def _resid_ret(fr: Frames) -> pd.Series:
    ret, ctx_ret = log_return(_c(fr), 1), log_return(_c(fr, "context"), 1)
    return ret - rolling_beta(ret, ctx_ret, 60) * ctx_ret


def _vix_annual_vol(fr: Frames) -> pd.Series:
    return _c(fr, "vix") / 100.0


def _vix_rvol_ratio(fr: Frames) -> pd.Series:
    return safe_log_ratio(_vix_annual_vol(fr), rvol(_c(fr), 20) * np.sqrt(_DAYS_PER_YEAR))


def _vrp(fr: Frames) -> pd.Series:
    realized_var = (log_return(_c(fr), 1) ** 2).rolling(20).mean() * _DAYS_PER_YEAR
    return _vix_annual_vol(fr) ** 2 - realized_var


def _vix_regime(fr: Frames) -> pd.Series:
    vix = _c(fr, "vix")
    low, high = VIX_REGIME_THRESHOLDS
    regime = (vix >= low).astype("float64") + (vix >= high).astype("float64")
    return regime.where(vix.notna())


def _ret_vix_scaled(fr: Frames) -> pd.Series:
    daily_implied = _vix_annual_vol(fr) / np.sqrt(_DAYS_PER_YEAR)
    return safe_div(log_return(_c(fr), 1), daily_implied, 0.0)


def _vix_ret_corr(fr: Frames) -> pd.Series:
    return rolling_corr(log_return(_c(fr), 1), log_return(_c(fr, "vix"), 1), 60)


def _di_spread(fr: Frames) -> pd.Series:
    hlc = (_h(fr), _l(fr), _c(fr))
    return ta_series(talib.PLUS_DI, *hlc, timeperiod=14) - ta_series(
        talib.MINUS_DI, *hlc, timeperiod=14
    )


def _up_fraction(fr: Frames) -> pd.Series:
    ret = log_return(_c(fr), 1)
    return (ret > 0).astype("float64").where(ret.notna()).rolling(20).mean()


def _autocorr(fr: Frames) -> pd.Series:
    ret = log_return(_c(fr), 1)
    return rolling_corr(ret, ret.shift(1), 60)


def _momentum_12_1(fr: Frames) -> pd.Series:
    # Classic 12-1 momentum: the year's return without its last month.
    return log_return(_c(fr), 231).shift(21)


def _calendar(fr: Frames, value: Callable[[pd.DatetimeIndex], np.ndarray]) -> pd.Series:
    index = fr["target"].index
    return pd.Series(np.asarray(value(index), dtype=np.float64), index=index)


def _month_angle(index: pd.DatetimeIndex) -> np.ndarray:
    return 2.0 * np.pi * (np.asarray(index.month) - 1) / 12.0


def _stoch_k(fr: Frames) -> pd.Series:
    hlc = (_h(fr), _l(fr), _c(fr))
    return ta_series(talib.STOCH, *hlc, output=0, fastk_period=14, slowk_period=3, slowd_period=3)


def _willr(fr: Frames) -> pd.Series:
    return ta_series(talib.WILLR, _h(fr), _l(fr), _c(fr), timeperiod=14)


def _cci(fr: Frames) -> pd.Series:
    return ta_series(talib.CCI, _h(fr), _l(fr), _c(fr), timeperiod=20)


def _mfi(fr: Frames) -> pd.Series:
    return ta_series(talib.MFI, _h(fr), _l(fr), _c(fr), _v(fr), timeperiod=14)


def _aroon_osc(fr: Frames) -> pd.Series:
    return ta_series(talib.AROONOSC, _h(fr), _l(fr), timeperiod=25)


def _ultosc(fr: Frames) -> pd.Series:
    return ta_series(
        talib.ULTOSC, _h(fr), _l(fr), _c(fr), timeperiod1=7, timeperiod2=14, timeperiod3=28
    )


def _trix(fr: Frames) -> pd.Series:
    return ta_series(talib.TRIX, _c(fr), timeperiod=15)


def _stochrsi_k(fr: Frames) -> pd.Series:
    return ta_series(talib.STOCHRSI, _c(fr), output=0, timeperiod=14, fastk_period=5)


def _bop(fr: Frames) -> pd.Series:
    return ta_series(talib.BOP, _o(fr), _h(fr), _l(fr), _c(fr))


def _linreg_slope(fr: Frames) -> pd.Series:
    # On log close, so the slope is a per-day return, comparable across levels.
    return ta_series(talib.LINEARREG_SLOPE, np.log(_c(fr)), timeperiod=20)


def _intraday_ret(fr: Frames) -> pd.Series:
    return np.log(_c(fr) / _o(fr))


def _rvol_ratio(fr: Frames) -> pd.Series:
    return safe_log_ratio(rvol(_c(fr), 5), rvol(_c(fr), 60))


def _ret_skew(fr: Frames) -> pd.Series:
    return window_apply(log_return(_c(fr), 1), 60, skew)


def _ret_kurt(fr: Frames) -> pd.Series:
    return window_apply(log_return(_c(fr), 1), 60, excess_kurtosis)


def _dist_low(fr: Frames) -> pd.Series:
    return np.log(_c(fr) / _l(fr).rolling(60).min())


def _max_ret(fr: Frames) -> pd.Series:
    return log_return(_c(fr), 1).rolling(20).max()


def _vix_level(fr: Frames) -> pd.Series:
    return _c(fr, "vix")


def _vix_pctile(fr: Frames) -> pd.Series:
    return window_apply(_c(fr, "vix"), 252, pctile_of_last)


def _cdl(name: str) -> Compute:
    return lambda fr: _candle(name, fr)


def _day_of_week(fr: Frames) -> pd.Series:
    return _calendar(fr, lambda index: index.day_of_week)


def _month_sin(fr: Frames) -> pd.Series:
    return _calendar(fr, lambda index: np.sin(_month_angle(index)))


def _month_cos(fr: Frames) -> pd.Series:
    return _calendar(fr, lambda index: np.cos(_month_angle(index)))


# --------------------------------------------------------------------------
# The registry


def _f(
    name: str, description: str, compute: Compute, role: str = "target", kind: str = "continuous"
) -> Feature:
    return Feature(name, description, role, kind, compute)


T, C, V = "target", "context", "vix"
CAT, BIN = "categorical", "binary"

# fmt: off
_A25 = (
    _f("ret_1d", "log return of close over 1 day", _ret(T, 1)),
    _f("ret_5d", "log return of close over 5 days", _ret(T, 5)),
    _f("ret_10d", "log return of close over 10 days", _ret(T, 10)),
    _f("ret_20d", "log return of close over 20 days", _ret(T, 20)),
    _f("gap_1d", "overnight log return: open over previous close", _gap(T)),
    _f("intraday_ret", "intraday log return: close over open", _intraday_ret),
    _f("hl_range", "log of high over low (daily range)", _hl_range(T)),
    _f("close_loc", "close position in the day's range (0 low..1 high)", _close_location),
    _f("rvol_5d", "std of daily log returns over 5 days (daily units)", _rv(T, 5)),
    _f("rvol_20d", "std of daily log returns over 20 days (daily units)", _rv(T, 20)),
    _f("sma_ratio_10", "close over its 10-day simple moving average, minus 1", _sma_rel(T, 10)),
    _f("sma_ratio_50", "close over its 50-day simple moving average, minus 1", _sma_rel(T, 50)),
    _f("rsi_14", "TA-Lib RSI of close, 14 days (0..100)", _rsi(T, 14)),
    _f("macd_norm", "TA-Lib MACD line (12, 26) over close", _macd_over_close(T, 0)),
    _f("macd_hist_norm", "TA-Lib MACD histogram (12, 26, 9) over close", _macd_over_close(T, 2)),
    _f("natr_14", "TA-Lib normalized ATR, 14 days (percent of close)", _natr(T, 14)),
    _f("adx_14", "TA-Lib ADX trend strength, 14 days (0..100)", _adx(T, 14)),
    _f("stoch_k", "TA-Lib slow stochastic %K (14, 3, 3) (0..100)", _stoch_k),
    _f("willr_14", "TA-Lib Williams %R, 14 days (-100..0)", _willr),
    _f("cci_20", "TA-Lib commodity channel index, 20 days", _cci),
    _f("mfi_14", "TA-Lib money flow index, 14 days (0..100; 0 if no volume)", _mfi),
    _f("bb_pctb_20", "close position in 20-day 2-sigma Bollinger bands (%B)", _bb_pctb),
    _f("bb_width_20", "20-day 2-sigma Bollinger band width over middle band", _bb_width),
    _f("volume_ratio_20", "volume over its 20-day mean (1 if the mean is 0)", _volume_ratio(T, 20)),
    _f("obv_flow_20", "20-day OBV change over 20-day volume sum (-1..1)", _obv_flow),
)

_A50_ADDED = (
    _f("ctx_ret_1d", "context log return of close over 1 day", _ret(C, 1), C),
    _f("ctx_ret_5d", "context log return of close over 5 days", _ret(C, 5), C),
    _f("ctx_ret_20d", "context log return of close over 20 days", _ret(C, 20), C),
    _f("ctx_ret_60d", "context log return of close over 60 days", _ret(C, 60), C),
    _f("spread_ret_5d", "target minus context log return over 5 days", _spread_ret(5), C),
    _f("spread_ret_20d", "target minus context log return over 20 days", _spread_ret(20), C),
    _f("rs_sma_ratio_50", "target/context close ratio over its 50-day mean, minus 1",
       _rs_sma_ratio, C),
    _f("corr_20d", "correlation of target and context daily returns, 20 days", _ret_corr(20), C),
    _f("corr_60d", "correlation of target and context daily returns, 60 days", _ret_corr(60), C),
    _f("beta_60d", "OLS beta of target on context daily returns, 60 days", _beta(60), C),
    _f("ctx_rvol_20d", "context std of daily log returns over 20 days", _rv(C, 20), C),
    _f("vol_ratio_ctx_20d", "log of target over context 20-day return std", _vol_ratio_ctx, C),
    _f("ctx_rsi_14", "TA-Lib RSI of context close, 14 days (0..100)", _rsi(C, 14), C),
    _f("ctx_sma_ratio_50", "context close over its 50-day SMA, minus 1", _sma_rel(C, 50), C),
    _f("ctx_natr_14", "TA-Lib normalized ATR of context, 14 days (percent)", _natr(C, 14), C),
    _f("resid_ret_1d", "target daily log return minus beta_60d times context's", _resid_ret, C),
    _f("ret_60d", "log return of close over 60 days", _ret(T, 60)),
    _f("rvol_60d", "std of daily log returns over 60 days (daily units)", _rv(T, 60)),
    _f("parkinson_vol_20d", "Parkinson high-low volatility, 20 days (daily units)", _parkinson),
    _f("garman_klass_vol_20d", "Garman-Klass OHLC volatility, 20 days (daily)", _garman_klass),
    _f("rsi_5", "TA-Lib RSI of close, 5 days (0..100)", _rsi(T, 5)),
    _f("aroon_osc_25", "TA-Lib Aroon oscillator, 25 days (-100..100)", _aroon_osc),
    _f("sma_ratio_200", "close over its 200-day simple moving average, minus 1", _sma_rel(T, 200)),
    _f("ultosc", "TA-Lib ultimate oscillator (7, 14, 28 days) (0..100)", _ultosc),
    _f("drawdown_60d", "log of close over the 60-day highest high (<= 0)", _drawdown(T, 60)),
)

_A100_ADDED = (
    _f("vix_level", "VIX close (annualized implied vol, percent points)", _vix_level, V),
    _f("vix_chg_1d", "log change of VIX over 1 day", _vix_chg(1), V),
    _f("vix_chg_5d", "log change of VIX over 5 days", _vix_chg(5), V),
    _f("vix_chg_20d", "log change of VIX over 20 days", _vix_chg(20), V),
    _f("vix_z_20d", "z-score of VIX vs its trailing 20-day mean and std", _vix_z(20), V),
    _f("vix_z_60d", "z-score of VIX vs its trailing 60-day mean and std", _vix_z(60), V),
    _f("vix_rvol_ratio_20d", "log of VIX/100 over annualized 20-day realized vol",
       _vix_rvol_ratio, V),
    _f("vrp_20d", "(VIX/100)^2 minus annualized 20-day realized variance", _vrp, V),
    _f("vix_pctile_252d", "share of last 252 VIX closes (today incl.) <= today's", _vix_pctile,
       V),
    _f("vix_regime", "VIX regime: 0 below 15, 1 from 15 to 25, 2 at 25 or above", _vix_regime,
       V, CAT),
    _f("vix_rsi_14", "TA-Lib RSI of VIX close, 14 days (0..100)", _rsi(V, 14), V),
    _f("vix_vol_20d", "std of VIX daily log changes over 20 days (vol of vol)", _rv(V, 20), V),
    _f("vix_ret_corr_60d", "correlation of target returns and VIX log changes, 60 days",
       _vix_ret_corr, V),
    _f("ret_vix_scaled_1d", "daily log return over the VIX-implied daily std", _ret_vix_scaled,
       V),
    _f("spread_ret_1d", "target minus context log return over 1 day", _spread_ret(1), C),
    _f("ctx_gap_1d", "context overnight log return: open over previous close", _gap(C), C),
    _f("ctx_hl_range", "context log of high over low (daily range)", _hl_range(C), C),
    _f("ctx_rvol_60d", "context std of daily log returns over 60 days", _rv(C, 60), C),
    _f("ctx_macd_norm", "TA-Lib MACD line (12, 26) of context over its close",
       _macd_over_close(C, 0), C),
    _f("ctx_drawdown_60d", "context log close over its 60-day highest high", _drawdown(C, 60), C),
    _f("corr_120d", "correlation of target and context daily returns, 120 days", _ret_corr(120), C),
    _f("beta_20d", "OLS beta of target on context daily returns, 20 days", _beta(20), C),
    _f("ctx_adx_14", "TA-Lib ADX of context, 14 days (0..100)", _adx(C, 14), C),
    _f("ctx_volume_ratio_20", "context volume over its 20-day mean (1 if the mean is 0)",
       _volume_ratio(C, 20), C),
    _f("sma_ratio_20", "close over its 20-day simple moving average, minus 1", _sma_rel(T, 20)),
    _f("di_spread_14", "TA-Lib +DI minus -DI, 14 days", _di_spread),
    _f("trix_15", "TA-Lib TRIX: 1-day change of triple 15-day EMA (percent)", _trix),
    _f("stochrsi_k_14", "TA-Lib stochastic RSI fast %K (RSI 14, %K 5) (0..100)", _stochrsi_k),
    _f("bop", "TA-Lib balance of power: (close - open) / (high - low)", _bop),
    _f("linreg_slope_20", "TA-Lib linear-regression slope of log close, 20 days", _linreg_slope),
    _f("cmf_20", "Chaikin money flow, 20 days (-1..1; 0 if no volume)", _cmf),
    _f("rvol_ratio_5_60", "log of 5-day over 60-day std of daily log returns", _rvol_ratio),
    _f("skew_60d", "skewness of daily log returns over 60 days", _ret_skew),
    _f("kurt_60d", "excess kurtosis of daily log returns over 60 days", _ret_kurt),
    _f("up_frac_20d", "fraction of up days (positive log return) over 20 days", _up_fraction),
    _f("dist_low_60d", "log of close over the 60-day lowest low (>= 0)", _dist_low),
    _f("max_ret_20d", "largest daily log return over 20 days", _max_ret),
    _f("ret_autocorr_60d", "lag-1 autocorrelation of daily log returns, 60 days", _autocorr),
    _f("drawdown_252d", "log of close over the 252-day highest high (<= 0)", _drawdown(T, 252)),
    _f("mom_12_1", "log return from 252 to 21 days ago (12-1 momentum)", _momentum_12_1),
    _f("ret_120d", "log return of close over 120 days", _ret(T, 120)),
    _f("cdl_doji", "TA-Lib doji candle (1 if present)", _cdl("CDLDOJI"), T, BIN),
    _f("cdl_hammer", "TA-Lib hammer candle (1 if present)", _cdl("CDLHAMMER"), T, BIN),
    _f("cdl_engulfing", "TA-Lib engulfing (-1 bearish, 0 none, 1 bullish)", _cdl("CDLENGULFING"),
       T, CAT),
    _f("cdl_harami", "TA-Lib harami (-1 bearish, 0 none, 1 bullish)", _cdl("CDLHARAMI"), T, CAT),
    _f("cdl_spinning_top", "TA-Lib spinning top (-1 black, 0 none, 1 white)",
       _cdl("CDLSPINNINGTOP"), T, CAT),
    _f("cdl_marubozu", "TA-Lib marubozu (-1 black, 0 none, 1 white)", _cdl("CDLMARUBOZU"), T,
       CAT),
    _f("day_of_week", "day of week of the date (0 Monday .. 4 Friday)", _day_of_week, T, CAT),
    _f("month_sin", "sine of the month of year (12-month cycle)", _month_sin),
    _f("month_cos", "cosine of the month of year (12-month cycle)", _month_cos),
)
# fmt: on


_TIERS: dict[str, tuple[Feature, ...]] = {
    "a25": _A25,
    "a50": _A25 + _A50_ADDED,
    "a100": _A25 + _A50_ADDED + _A100_ADDED,
}

FEATURES: dict[str, Feature] = {f.name: f for f in _TIERS["a100"]}

# Tier close is not nested in the others: its names of a100 features are theirs.
_TIERS["close"] = tuple(
    FEATURES[c] if isinstance(c, str) else c for c in close_features.CLOSE_COLUMNS
)


# --------------------------------------------------------------------------
# Public API


def _check_tier(tier: str) -> None:
    if tier not in _TIERS:
        raise InputError(
            f"unknown feature tier {tier!r}; valid tiers: {', '.join(TIER_NAMES)}", "data.tier"
        )


def tier_features(tier: str) -> list[Feature]:
    """Features of a tier, in model-column order (a25, a50, a100: each extends the
    previous; close stands apart)."""
    _check_tier(tier)
    return list(_TIERS[tier])


def tier_roles(tier: str) -> tuple[str, ...]:
    """Input roles a tier needs, in `ROLES` order."""
    _check_tier(tier)
    return _TIER_ROLES[tier]


def feature_spec(tier: str) -> dict:
    """JSON-able description of a tier's columns, hashed into dataset cache keys."""
    return {
        "version": FEATURE_SPEC_VERSION,
        "tier": tier,
        "features": [f.name for f in tier_features(tier)],
    }


def _check_frames(frames: Frames, tier: str) -> None:
    for role in tier_roles(tier):
        if role not in frames:
            raise InputError(f"tier {tier} needs {_MISSING_ROLE_HINT[role]}", "data.symbols")
    index = frames["target"].index
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError("the target frame must be indexed by a DatetimeIndex")
    for role in tier_roles(tier):
        frame = frames[role]
        needed = role_columns(tier, role)
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise InputError(f"{role} data lacks column(s) {', '.join(missing)}", f"{role} data")
        if not frame.index.equals(index):
            raise ValueError(f"{role} frame is not aligned to the target's dates")
        _check_positive(frame, role, needed)


def role_columns(tier: str, role: str) -> tuple[str, ...]:
    """The columns a tier reads of a role's input: OHLCV, or the close alone (tier close,
    and VIX)."""
    _check_tier(tier)
    return ("Close",) if tier in _CLOSE_ONLY_TIERS else _ROLE_COLUMNS[role]


def _check_positive(frame: pd.DataFrame, role: str, names: tuple[str, ...]) -> None:
    # Log returns and ratios need positive prices; volume may be zero.
    for name in names:
        values = frame[name].astype("float64")
        bad = values < 0 if name == "Volume" else values <= 0
        if bad.any():
            day = bad.idxmax()
            rule = "negative" if name == "Volume" else "non-positive"
            raise InputError(f"{role} {name} has {rule} values", f"first on {day:%Y-%m-%d}")


def compute_features(frames: Frames, tier: str) -> pd.DataFrame:
    """Compute a tier's features on the target's dates.

    `frames` maps role -> DataFrame, all on the target's sorted, unique
    DatetimeIndex (context and VIX already aligned and forward-filled);
    target/context carry Open, High, Low, Close, Volume and vix carries Close;
    under tier close, target and panel (`close_features.panel_frame`) carry Close.
    Returns a float64 frame with one column per feature in `tier_features`
    order. Leading warmup rows hold NaN; after them, values are finite.
    """
    _check_tier(tier)
    _check_frames(frames, tier)
    index = frames["target"].index
    columns: dict[str, np.ndarray] = {}
    for feature in _TIERS[tier]:
        values = feature.compute(frames)
        columns[feature.name] = values.to_numpy(dtype=np.float64)
    return pd.DataFrame(columns, index=index, dtype=np.float64)
