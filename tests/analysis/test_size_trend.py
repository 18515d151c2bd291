import math

import numpy as np
import pytest

from finscale.analysis import (
    FALLS,
    NO_TREND,
    RISES,
    SizeTrend,
    holm_rejections,
    size_trend,
)
from finscale.analysis.bootstrap import bootstrap_indices, sample_log_loss

N_DATES = 600
COUNTS = (20_000, 200_000, 2_000_000)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.fixture(scope="module")
def market():
    rng = np.random.default_rng(0)
    signal = rng.normal(size=N_DATES)
    y = (rng.uniform(size=N_DATES) < _sigmoid(1.5 * signal)).astype(int)
    indices = bootstrap_indices(N_DATES, 5, 400, seed=1)
    return y, signal, indices, rng


def _seeds(signal, strength, rng, n_seeds=3):
    """Predictions of one budget: `strength` of the true signal, seed noise on top."""
    noise = rng.normal(0.0, 0.2, (n_seeds, signal.size))
    return _sigmoid(strength * signal[None, :] + noise)


def test_the_slope_is_the_least_squares_slope_of_budget_means(market):
    y, signal, indices, rng = market
    preds = [_seeds(signal, s, rng) for s in (0.5, 1.0, 1.4)]
    trend = size_trend(y, preds, COUNTS, indices, horizon_days=1)
    means = [sample_log_loss(y, p).mean() for p in preds]
    expected = np.polyfit(np.log10(COUNTS), means, 1)[0]
    assert trend.slope_per_decade == pytest.approx(expected, rel=1e-9)
    assert trend.n_budgets == 3 and trend.horizon_days == 1
    assert SizeTrend.from_dict(trend.to_dict()) == trend


def test_a_planted_trend_is_called_in_its_direction(market):
    y, signal, indices, rng = market
    better = [_seeds(signal, s, rng) for s in (0.3, 0.9, 1.5)]
    falls = size_trend(y, better, COUNTS, indices, horizon_days=1)
    assert falls.verdict == FALLS and falls.interval[1] < 0
    assert falls.statement.startswith(FALLS)
    rises = size_trend(y, better[::-1], COUNTS, indices, horizon_days=1)
    assert rises.verdict == RISES and rises.interval[0] > 0
    assert falls.p_value < 0.01 and rises.p_value < 0.01
    # A bigger model detectably worse is overfitting, never scaling; a falling loss is
    # not called overfitting.
    assert rises.statement.startswith(RISES) and "overfitting with size, not scaling" in (
        rises.statement
    )
    assert "overfitting" not in falls.statement


def test_no_trend_says_what_slope_it_could_have_seen(market):
    y, signal, indices, rng = market
    same = [_seeds(signal, 1.0, rng) for _ in COUNTS]
    trend = size_trend(y, same, COUNTS, indices, horizon_days=1)
    assert trend.verdict == NO_TREND
    low, high = trend.interval
    assert low < 0 < high
    # 2.80 standard errors at 95% and 80% power.
    assert trend.min_detectable_slope == pytest.approx(2.8016 * trend.spread, rel=1e-3)
    assert f"{trend.min_detectable_slope:.4f}" in trend.statement and "80% power" in trend.statement


def test_one_parameter_count_has_no_slope(market):
    y, signal, indices, rng = market
    preds = [_seeds(signal, 1.0, rng) for _ in range(2)]
    with pytest.raises(ValueError, match="two distinct"):
        size_trend(y, preds, (1000, 1000), indices, horizon_days=1)
    with pytest.raises(ValueError, match="budgets"):
        size_trend(y, preds, COUNTS, indices, horizon_days=1)


def test_holm_steps_down_and_stops_at_the_first_survivor():
    # Sorted: 0.005 <= 0.05/4, 0.01 <= 0.05/3, 0.03 > 0.05/2: stop there.
    assert holm_rejections([0.01, 0.04, 0.03, 0.005], 0.05) == [True, False, False, True]
    # Bonferroni would keep only p <= 0.0125; Holm also keeps what follows in order.
    assert holm_rejections([0.012, 0.02, 0.04], 0.05) == [True, True, True]
    assert holm_rejections([math.nan, 0.0], 0.05) == [False, True]
    assert holm_rejections([], 0.05) == []
