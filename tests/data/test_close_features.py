"""Tier close: the equal-weight panel's series, and the close features on the bundled
indices (causal, scale-free, readable from a close-only series)."""

from __future__ import annotations

import arch.data.nasdaq
import arch.data.sp500
import numpy as np
import pandas as pd
import pytest

from finscale.data.close_features import (
    CLOSE_COLUMNS,
    PANEL,
    panel_close,
    panel_frame,
    panel_returns,
)
from finscale.data.features import FEATURES, compute_features, tier_features

DAYS = pd.bdate_range("2020-01-06", periods=6)


def _series(values: list[float], days: pd.DatetimeIndex) -> pd.Series:
    return pd.Series(values, index=days, dtype="float64")


def test_the_panel_is_the_mean_of_the_members_trading_each_day():
    # A trades every day; B enters on day 1 (its first return is day 2); C leaves
    # after day 3; on day 4 only A has a return.
    closes = {
        "A": _series([100, 110, 99, 99, 108.9, 108.9], DAYS),
        "B": _series([50, 60, 45, 45], DAYS[1:5]),
        "C": _series([10, 10, 12, 6], DAYS[:4]),
    }
    expected = [
        np.nan,  # day 0: nobody has a previous close
        np.mean([0.10, 0.0]),  # A +10%, C flat; B's first row has no return
        np.mean([-0.10, 0.20, 0.20]),  # A, B +20%, C +20%
        np.mean([0.0, -0.25, -0.50]),
        np.mean([0.10, 0.0]),  # C has left
        0.0,  # A alone
    ]
    returns = panel_returns(closes)
    np.testing.assert_allclose(returns.to_numpy(), expected, rtol=1e-12)
    assert returns.index.equals(DAYS)
    level = panel_close(returns)
    np.testing.assert_allclose(
        level.to_numpy(), np.cumprod(1.0 + np.nan_to_num(expected)), rtol=1e-12
    )
    assert level.iloc[0] == 1.0


def test_a_member_whose_dates_are_elsewhere_still_counts_on_its_own_rows():
    # B trades every other day: its return spans its own two rows.
    closes = {"A": _series([1, 2, 4, 8, 16, 32], DAYS), "B": _series([10, 11, 12.1], DAYS[::2])}
    returns = panel_returns(closes)
    assert returns.iloc[1] == pytest.approx(1.0)  # A alone
    assert returns.iloc[2] == pytest.approx(np.mean([1.0, 0.1]))


def _bundled() -> dict[str, pd.DataFrame]:
    return {
        "SP500": arch.data.sp500.load()[["Close"]].astype("float64"),
        "NASDAQ": arch.data.nasdaq.load()[["Close"]].astype("float64"),
    }


def _close_frames(members: dict[str, pd.DataFrame], target: str) -> dict[str, pd.DataFrame]:
    frame = members[target]
    return {"target": frame, PANEL: panel_frame(members).reindex(frame.index)}


def test_the_panel_is_causal_under_truncation():
    members = _bundled()
    # Members that end at different dates, as a universe's listings do.
    members["NASDAQ"] = members["NASDAQ"].iloc[300:]
    full = panel_frame(members)["Close"]
    for cut in (full.index[10], full.index[400], full.index[-50]):
        truncated = panel_frame({s: f.loc[:cut] for s, f in members.items()})["Close"]
        np.testing.assert_allclose(truncated.to_numpy(), full.loc[:cut].to_numpy(), rtol=1e-13)


def test_close_features_are_causal_when_every_member_is_altered_after_t():
    members = _bundled()
    full = compute_features(_close_frames(members, "SP500"), "close")
    rng = np.random.default_rng(3)
    for cut in (100, 300, len(full) // 2):
        altered = {}
        for symbol, frame in members.items():
            close = frame["Close"].to_numpy().copy()
            close[cut + 1 :] *= np.exp(rng.normal(0.0, 0.3, len(close) - cut - 1))
            altered[symbol] = frame.assign(Close=close)
        changed = compute_features(_close_frames(altered, "SP500"), "close")
        pd.testing.assert_frame_equal(changed.iloc[: cut + 1], full.iloc[: cut + 1], rtol=1e-12)
        assert not np.allclose(
            changed["panel_ret_1d"].iloc[cut + 1 :], full["panel_ret_1d"].iloc[cut + 1 :]
        )


def test_close_features_are_scale_free():
    members = _bundled()
    scaled = {"SP500": members["SP500"] * 1000.0, "NASDAQ": members["NASDAQ"] / 7.0}
    base = compute_features(_close_frames(members, "SP500"), "close")
    moved = compute_features(_close_frames(scaled, "SP500"), "close")
    pd.testing.assert_frame_equal(moved, base, rtol=1e-7, atol=1e-9)


def test_the_panel_block_moves_with_the_other_members():
    members = _bundled()
    alone = compute_features(_close_frames({"SP500": members["SP500"]}, "SP500"), "close")
    pair = compute_features(_close_frames(members, "SP500"), "close")
    after = slice(300, None)
    # A target that is its own panel: no excess return, beta and correlation 1.
    assert np.abs(alone["excess_ret_20d"].iloc[after]).max() < 1e-12
    np.testing.assert_allclose(alone["panel_beta_60d"].iloc[after], 1.0, atol=1e-9)
    np.testing.assert_allclose(alone["panel_corr_60d"].iloc[after], 1.0, atol=1e-9)
    # With NASDAQ in the panel, the excess return is half the SP500-NASDAQ spread (in
    # simple returns, to first order) and the correlation below 1.
    assert 0.0 < pair["panel_corr_60d"].iloc[after].min() < 0.999
    spread = np.log(members["SP500"]["Close"]).diff() - np.log(members["NASDAQ"]["Close"]).diff()
    np.testing.assert_allclose(
        pair["excess_ret_1d"].iloc[after], spread.iloc[after] / 2.0, atol=2e-3
    )
    target_only = [f.name for f in tier_features("close") if f.role == "target"]
    pd.testing.assert_frame_equal(alone[target_only], pair[target_only])


def test_names_of_other_tiers_are_their_features():
    for entry in CLOSE_COLUMNS:
        if isinstance(entry, str):
            assert FEATURES[entry] in tier_features("close")
    features = tier_features("close")
    assert 25 <= len(features) <= 35
    assert {f.role for f in features} == {"target", PANEL}
    assert all(f.kind == "continuous" for f in features)
