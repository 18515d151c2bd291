"""Tests of the feature registry on the real index data bundled with `arch`."""

from __future__ import annotations

import json

import arch.data.nasdaq
import arch.data.sp500
import arch.data.vix
import numpy as np
import pandas as pd
import pytest

from finscale.data.close_features import panel_frame
from finscale.data.features import (
    FEATURE_SPEC_VERSION,
    FEATURES,
    KINDS,
    ROLES,
    TIER_NAMES,
    VIX_REGIME_THRESHOLDS,
    compute_features,
    feature_spec,
    tier_features,
    tier_roles,
)
from finscale.errors import InputError

TIER_SIZES = {"a25": 25, "a50": 50, "a100": 100, "close": 35}
NESTED_TIERS = ("a25", "a50", "a100")
MAX_WARMUP_ROWS = {"a25": 60, "a50": 260, "a100": 260, "close": 260}
OHLCV = ["Open", "High", "Low", "Close", "Volume"]


def _ohlcv(raw: pd.DataFrame) -> pd.DataFrame:
    frame = raw[OHLCV].copy()
    frame["Volume"] = frame["Volume"].astype("float64")
    return frame


@pytest.fixture(scope="module")
def all_frames() -> dict[str, pd.DataFrame]:
    """SP500 as target, NASDAQ as context and VIX, aligned to SP500's dates."""
    target = _ohlcv(arch.data.sp500.load())
    context = _ohlcv(arch.data.nasdaq.load()).reindex(target.index).ffill()
    vix = arch.data.vix.load().rename(columns={"vix": "Close"})
    vix = vix.reindex(target.index).ffill()
    # Tier close's panel: the equal-weight SP500/NASDAQ pair (same calendar here).
    panel = panel_frame({"SP500": target, "NASDAQ": context}).reindex(target.index)
    return {"target": target, "context": context, "vix": vix, "panel": panel}


def _vix_start() -> pd.Timestamp:
    return arch.data.vix.load().index[0]


def _frames_for(all_frames: dict[str, pd.DataFrame], tier: str) -> dict[str, pd.DataFrame]:
    # The bundled VIX starts in 2014, the indices in 1999: a100 is studied on
    # the overlap, as a caller would.
    frames = {role: all_frames[role] for role in tier_roles(tier)}
    if "vix" in frames:
        frames = {role: frame.loc[_vix_start() :] for role, frame in frames.items()}
    if tier == "close":
        # Tier close reads the close alone: a close-only target must do.
        frames["target"] = frames["target"][["Close"]]
    return frames


def _warmup_rows(features: pd.DataFrame) -> int:
    has_nan = features.isna().any(axis=1).to_numpy()
    return int(np.argmin(has_nan)) if not has_nan.all() else len(features)


# --------------------------------------------------------------------------
# Registry shape


def test_tier_sizes_are_exact() -> None:
    for tier, size in TIER_SIZES.items():
        assert len(tier_features(tier)) == size
    assert tuple(TIER_SIZES) == TIER_NAMES
    assert len(FEATURES) == 100


def test_tiers_are_nested_prefixes() -> None:
    a25, a50, a100 = (tier_features(t) for t in NESTED_TIERS)
    assert a50[:25] == a25
    assert a100[:50] == a50
    assert list(FEATURES.values()) == a100


@pytest.mark.parametrize("tier", ["a100", "close"])
def test_names_unique_snake_case_and_descriptions_one_line(tier: str) -> None:
    names = [f.name for f in tier_features(tier)]
    assert len(set(names)) == len(names)
    for feature in tier_features(tier):
        assert feature.name == feature.name.lower()
        assert feature.name.replace("_", "").isalnum()
        assert feature.description.strip()
        assert "\n" not in feature.description
        assert feature.kind in KINDS
        assert feature.role in ROLES


def test_tier_roles_cover_the_roles_features_read() -> None:
    assert tier_roles("a25") == ("target",)
    assert tier_roles("a50") == ("target", "context")
    assert tier_roles("a100") == ("target", "context", "vix")
    assert tier_roles("close") == ("target", "panel")
    for tier in TIER_NAMES:
        assert {f.role for f in tier_features(tier)} == set(tier_roles(tier))


def test_feature_spec_is_json_and_versioned() -> None:
    spec = feature_spec("a50")
    assert spec == {
        "version": FEATURE_SPEC_VERSION,
        "tier": "a50",
        "features": [f.name for f in tier_features("a50")],
    }
    assert json.loads(json.dumps(spec)) == spec


# --------------------------------------------------------------------------
# Values on the bundled data


@pytest.mark.parametrize("tier", TIER_NAMES)
def test_finite_after_warmup_and_not_constant(all_frames, tier: str) -> None:
    frames = _frames_for(all_frames, tier)
    features = compute_features(frames, tier)

    assert list(features.columns) == [f.name for f in tier_features(tier)]
    assert features.index.equals(frames["target"].index)
    assert all(dtype == np.float64 for dtype in features.dtypes)

    warmup = _warmup_rows(features)
    assert warmup <= MAX_WARMUP_ROWS[tier]
    after = features.iloc[warmup:]
    assert len(after) > 500
    assert np.isfinite(after.to_numpy()).all()
    constant = [name for name in after if after[name].nunique() <= 1]
    assert constant == []


def test_discrete_kinds_hold_integers(all_frames) -> None:
    features = compute_features(_frames_for(all_frames, "a100"), "a100")
    features = features.iloc[_warmup_rows(features) :]
    for feature in tier_features("a100"):
        values = features[feature.name].to_numpy()
        if feature.kind == "binary":
            assert set(np.unique(values)) <= {0.0, 1.0}, feature.name
        elif feature.kind == "categorical":
            assert np.array_equal(values, np.round(values)), feature.name
    assert set(np.unique(features["vix_regime"])) == {0.0, 1.0, 2.0}


def test_vix_regime_on_hand_checked_days(all_frames) -> None:
    regime = compute_features(_frames_for(all_frames, "a100"), "a100")["vix_regime"]
    # VIX closes: 14.93, 15.00 (on the threshold), 24.99, 25.20, 40.74.
    expected = {
        "2014-03-26": 0.0,
        "2014-03-21": 1.0,
        "2016-01-07": 1.0,
        "2014-10-16": 2.0,
        "2015-08-24": 2.0,
    }
    for day, value in expected.items():
        assert regime.loc[day] == value, day


def test_vix_regime_thresholds_exactly() -> None:
    assert VIX_REGIME_THRESHOLDS == (15.0, 25.0)
    index = pd.bdate_range("2020-01-01", periods=6)
    vix = pd.DataFrame({"Close": [14.99, 15.0, 24.99, 25.0, 80.0, np.nan]}, index=index)
    regime = FEATURES["vix_regime"].compute({"vix": vix})
    np.testing.assert_array_equal(regime.to_numpy(), [0.0, 1.0, 1.0, 2.0, 2.0, np.nan])


def test_zero_volume_stays_finite(all_frames) -> None:
    frames = {"target": all_frames["target"].assign(Volume=0.0)}
    features = compute_features(frames, "a25")
    after = features.iloc[_warmup_rows(features) :]
    assert _warmup_rows(features) <= MAX_WARMUP_ROWS["a25"]
    assert np.isfinite(after.to_numpy()).all()


def test_context_starting_later_only_delays_warmup(all_frames) -> None:
    late_rows = 300
    context = all_frames["context"].copy()
    context.iloc[:late_rows] = np.nan
    frames = {"target": all_frames["target"], "context": context}
    features = compute_features(frames, "a50")
    warmup = _warmup_rows(features)
    assert late_rows <= warmup <= late_rows + MAX_WARMUP_ROWS["a50"]
    assert np.isfinite(features.iloc[warmup:].to_numpy()).all()


# --------------------------------------------------------------------------
# Causality: nothing after day t may move a value at or before t


def _alter_after(
    frames: dict[str, pd.DataFrame], cut: int, rng: np.random.Generator
) -> dict[str, pd.DataFrame]:
    altered = {}
    for role, frame in frames.items():
        frame = frame.copy()
        later = len(frame) - cut - 1
        price_columns = [c for c in ("Open", "High", "Low", "Close") if c in frame]
        factors = np.exp(rng.normal(0.0, 0.3, size=(later, 1)))
        frame.iloc[cut + 1 :, [frame.columns.get_loc(c) for c in price_columns]] *= factors
        if "Volume" in frame:
            volume = frame["Volume"].to_numpy().copy()
            volume[cut + 1 :] = rng.permutation(volume[cut + 1 :])
            frame["Volume"] = volume
        altered[role] = frame
    return altered


@pytest.mark.parametrize("tier", TIER_NAMES)
def test_causal_under_truncation_and_alteration(all_frames, tier: str) -> None:
    frames = _frames_for(all_frames, tier)
    full = compute_features(frames, tier)
    n = len(full)
    rng = np.random.default_rng(7)
    # Inside the warmup, just after the longest one, mid-sample and near the end.
    for cut in (30, 270, n // 2, n - 5):
        truncated = compute_features({r: f.iloc[: cut + 1] for r, f in frames.items()}, tier)
        altered = compute_features(_alter_after(frames, cut, rng), tier)
        reference = full.iloc[: cut + 1]
        for name in full.columns:
            for variant, label in ((truncated, "truncated"), (altered.iloc[: cut + 1], "altered")):
                np.testing.assert_allclose(
                    variant[name].to_numpy(),
                    reference[name].to_numpy(),
                    rtol=1e-12,
                    atol=1e-14,
                    equal_nan=True,
                    err_msg=f"{name} at or before row {cut} changed when data after it was {label}",
                )
        # The alteration must actually reach the features after the cut.
        if cut < n - 1:
            assert not np.allclose(
                altered.iloc[cut + 1 :]["ret_1d"], full.iloc[cut + 1 :]["ret_1d"]
            )


# --------------------------------------------------------------------------
# Errors


def test_missing_context_names_tier_and_field(all_frames) -> None:
    with pytest.raises(InputError) as err:
        compute_features({"target": all_frames["target"]}, "a50")
    assert "a50" in str(err.value)
    assert "context" in str(err.value)
    assert err.value.where == "data.symbols"


def test_missing_vix_names_tier_and_field(all_frames) -> None:
    frames = {role: all_frames[role] for role in ("target", "context")}
    with pytest.raises(InputError) as err:
        compute_features(frames, "a100")
    assert "a100" in str(err.value)
    assert "VIX" in str(err.value)
    assert err.value.where == "data.symbols"


@pytest.mark.parametrize("call", [tier_features, tier_roles, feature_spec])
def test_unknown_tier_lists_valid_ones(call) -> None:
    with pytest.raises(InputError) as err:
        call("a75")
    assert err.value.where == "data.tier"
    assert all(tier in str(err.value) for tier in TIER_NAMES)


def test_unknown_tier_in_compute(all_frames) -> None:
    with pytest.raises(InputError, match=r"\(data\.tier\)"):
        compute_features({"target": all_frames["target"]}, "a75")


def test_non_positive_price_is_rejected(all_frames) -> None:
    target = all_frames["target"].copy()
    target.iloc[10, target.columns.get_loc("Low")] = 0.0
    with pytest.raises(InputError, match="Low"):
        compute_features({"target": target}, "a25")
