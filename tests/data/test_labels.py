import numpy as np
import pandas as pd
import pytest

from finscale.data.labels import (
    forward_max_return,
    forward_return,
    relative_labels,
    threshold_labels,
    trailing_volatility,
)


def brute_force_labels(close, h, threshold, rule):
    out = np.full(len(close), np.nan)
    for t in range(len(close) - h):
        future = close[t + 1 : t + h + 1]
        move = (future.max() if rule == "max_close" else future[-1]) / close[t] - 1
        out[t] = float(move >= threshold)
    return out


@pytest.mark.parametrize("h", [1, 3, 5])
@pytest.mark.parametrize("rule", ["max_close", "close"])
def test_labels_match_the_documented_rule(sp500_close, h, rule):
    close = sp500_close[:400]
    got = threshold_labels(close, h, 0.01, rule)
    np.testing.assert_array_equal(got, brute_force_labels(close, h, 0.01, rule))


@pytest.mark.parametrize("h", [1, 3, 5])
def test_last_h_rows_have_no_label(h):
    close = np.linspace(100, 120, 30)
    labels = threshold_labels(close, h)
    assert np.isnan(labels[-h:]).all()
    assert not np.isnan(labels[:-h]).any()


def test_rules_agree_at_h1_and_differ_later():
    close = np.array([100.0, 102.0, 99.0, 99.5, 100.0, 100.0])
    assert np.array_equal(
        threshold_labels(close, 1, rule="max_close"),
        threshold_labels(close, 1, rule="close"),
        equal_nan=True,
    )
    # At t=0: max of the next 3 closes is +2% (yes), the close 3 days later is -0.5% (no).
    assert threshold_labels(close, 3, rule="max_close")[0] == 1.0
    assert threshold_labels(close, 3, rule="close")[0] == 0.0


def test_forward_returns_by_hand():
    close = np.array([10.0, 11.0, 9.0, 12.0])
    np.testing.assert_allclose(forward_return(close, 2)[:2], [9 / 10 - 1, 12 / 11 - 1])
    np.testing.assert_allclose(forward_max_return(close, 2)[:2], [11 / 10 - 1, 12 / 11 - 1])


def test_volatility_threshold_is_trailing_and_scaled(sp500_close):
    close = sp500_close[:300]
    h, k = 3, 0.5
    sigma = trailing_volatility(close, 20)
    t = 150
    returns = close[t - 19 : t + 1] / close[t - 20 : t] - 1
    assert sigma[t] == pytest.approx(returns.std(ddof=1))
    assert np.isnan(sigma[:20]).all() and not np.isnan(sigma[20:]).any()
    labels = threshold_labels(close, h, rule="close", threshold_mode="volatility", volatility_k=k)
    move = close[t + h] / close[t] - 1
    assert labels[t] == float(move >= k * sigma[t] * np.sqrt(h))
    # Changing the future changes the label only through the move, never the threshold.
    altered = close.copy()
    altered[t + 1 :] *= 1.5
    assert trailing_volatility(altered, 20)[t] == sigma[t]


def test_volatility_threshold_balances_labels_across_regimes(sp500_close):
    fixed = threshold_labels(sp500_close, 1)
    scaled = threshold_labels(sp500_close, 1, threshold_mode="volatility", volatility_k=0.5)
    # 2008 (turbulent) vs 2017 (calm) rows of the bundled S&P 500 (1999-2018, ~252 rows/year).
    turbulent, calm = slice(2390, 2640), slice(4530, 4780)
    fixed_gap = abs(np.nanmean(fixed[turbulent]) - np.nanmean(fixed[calm]))
    scaled_gap = abs(np.nanmean(scaled[turbulent]) - np.nanmean(scaled[calm]))
    assert scaled_gap < fixed_gap / 2


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="horizon_days"):
        threshold_labels(np.ones(10), 0)
    with pytest.raises(ValueError, match="rule"):
        threshold_labels(np.ones(10), 1, rule="open")


# ---------------------------------------------------------------- relative labels


def test_relative_labels_on_a_hand_made_panel():
    days = pd.bdate_range("2021-03-01", periods=5)
    closes = {
        # forward 1-day returns:   +50%,  -50%,  +100%, 0%
        "A": pd.Series([100.0, 150.0, 75.0, 150.0, 150.0], days),
        # forward returns:         +25%,  +50%,  -50% (B has no row on day 4)
        "B": pd.Series([100.0, 125.0, 187.5, 93.75], days[:4]),
        # C trades from day 1:            0%,    +2.5%
        "C": pd.Series([10.0, 10.0, 10.25], days[1:4]),
    }
    labels = relative_labels(closes, horizon_days=1)
    # day 0: mean(50, 25) = 37.5 -> A 1, B 0
    # day 1: mean(-50, 50, 0) = 0 -> A 0, B 1, C 0 (C equals the panel: not beaten)
    # day 2: mean(100, -50, 2.5) = 17.5 -> A 1, B 0, C 0
    # day 3: only A has a forward return (B's and C's last rows) -> no label
    # day 4: A's last row, no forward return
    np.testing.assert_array_equal(labels["A"], [1, 0, 1, np.nan, np.nan])
    np.testing.assert_array_equal(labels["B"], [0, 1, 0, np.nan])
    np.testing.assert_array_equal(labels["C"], [0, 0, np.nan])


def test_relative_labels_need_a_margin_above_the_threshold():
    days = pd.bdate_range("2021-03-01", periods=3)
    closes = {
        "A": pd.Series([100.0, 103.0, 100.0], days),  # +3%, -2.9%
        "B": pd.Series([100.0, 100.0, 100.0], days),  # 0%, 0%
    }
    # excess over the mean on day 0: A +1.5%, B -1.5%
    assert relative_labels(closes, 1, threshold=0.01)["A"][0] == 1.0
    assert relative_labels(closes, 1, threshold=0.02)["A"][0] == 0.0
    # two days ahead: A flat, B flat -> both equal the panel: neither beats it
    twice = relative_labels(closes, 2)
    np.testing.assert_array_equal(twice["A"], [0.0, np.nan, np.nan])
    np.testing.assert_array_equal(twice["B"], [0.0, np.nan, np.nan])


def test_relative_labels_read_each_symbols_own_rows():
    # B skips a day: its 1-day forward return on day 0 runs to its next row, day 2.
    days = pd.bdate_range("2021-03-01", periods=3)
    closes = {
        "A": pd.Series([100.0, 101.0, 102.0], days),
        "B": pd.Series([100.0, 103.0], days[[0, 2]]),
    }
    labels = relative_labels(closes, 1)
    np.testing.assert_array_equal(labels["A"], [0.0, np.nan, np.nan])
    np.testing.assert_array_equal(labels["B"], [1.0, np.nan])
