import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from finscale.analysis.bootstrap import (
    IMPROVES,
    LOWER_IS_BETTER,
    METRICS,
    NO_DIFFERENCE,
    WORSENS,
    automatic_block_days,
    bootstrap_indices,
    paired_difference,
    resampled_metrics,
    summarize_runs,
    verdict,
)
from finscale.analysis.resampling import newey_west_spread
from finscale.analysis.seeds import satterthwaite_df, seed_draws, widened
from finscale.train.metrics import classification_metrics

N_DATES = 400


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.fixture(scope="module")
def market():
    """Labels driven by a persistent signal, as overlapping-horizon labels are."""
    rng = np.random.default_rng(7)
    signal = np.convolve(rng.normal(size=N_DATES + 9), np.ones(10) / np.sqrt(10), "valid")
    y = (rng.uniform(size=N_DATES) < _sigmoid(1.5 * signal)).astype(int)
    return y, signal


@pytest.fixture(scope="module")
def indices():
    return bootstrap_indices(N_DATES, 8, 300, seed=11)


def _reference(y, p, threshold):
    with warnings.catch_warnings():
        # scikit-learn warns about ill-defined scores on one-class inputs.
        warnings.simplefilter("ignore")
        return classification_metrics(y, p, threshold)


def _assert_same(value, expected, label=""):
    if math.isnan(expected):
        assert math.isnan(value), label
    else:
        assert value == pytest.approx(expected, abs=1e-9, rel=0), label


def _ar1(phi, n, rng):
    x = np.zeros(n)
    noise = rng.standard_normal(n)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + noise[t]
    return x


def test_automatic_block_grows_with_the_dependence_of_the_series():
    rng = np.random.default_rng(3)
    lengths = [automatic_block_days(_ar1(phi, 738, rng), 1) for phi in (0.0, 0.5, 0.9)]
    assert lengths[0] < lengths[1] < lengths[2]
    assert lengths[0] <= 3 and lengths[2] >= 15


def test_automatic_block_takes_the_longest_column_and_keeps_its_floor_and_cap():
    rng = np.random.default_rng(4)
    weak, strong = rng.standard_normal(400), _ar1(0.9, 400, rng)
    both = automatic_block_days(np.column_stack([weak, strong]), 1)
    assert both == automatic_block_days(strong, 1) > automatic_block_days(weak, 1)
    assert automatic_block_days(weak, 20) == 20  # never below the horizon
    # A random walk asks for blocks longer than the sample: capped at a quarter of it.
    assert automatic_block_days(np.cumsum(rng.standard_normal(200)), 1) <= 50
    assert automatic_block_days(np.cumsum(rng.standard_normal(40)), 15) == 15  # floor wins
    assert automatic_block_days(np.ones(100), 5) == 5  # nothing to measure


@pytest.mark.parametrize(
    ("series", "horizon"), [(np.ones(10), 0), (np.ones(10), 2.5), (np.ones((2, 2, 2)), 1)]
)
def test_automatic_block_rejects_bad_inputs(series, horizon):
    with pytest.raises(ValueError):
        automatic_block_days(series, horizon)


def test_newey_west_matches_the_long_run_variance_of_an_ar1_mean():
    rng = np.random.default_rng(5)
    phi, n = 0.5, 20000
    x = _ar1(phi, n, rng)
    # Long-run variance of a unit-innovation AR(1): 1 / (1 - phi)^2.
    expected = math.sqrt(1.0 / (1.0 - phi) ** 2 / n)
    assert newey_west_spread(x, 40) == pytest.approx(expected, rel=0.1)
    iid = math.sqrt(x.var() / n)
    assert newey_west_spread(x, 0) == pytest.approx(iid, rel=1e-6)
    assert newey_west_spread(np.ones(5), 3) == 0.0 and math.isnan(newey_west_spread([1.0], 1))


def test_seed_redraw_carries_the_whole_variance_of_a_seed_mean():
    # Three seeds whose spread is the only noise: the redrawn mean's variance must
    # equal s^2 / k (the sampling variance of a mean of k), not (k - 1) / k of it.
    per_seed = np.repeat(np.array([[0.0], [1.0], [5.0]]), 200000, axis=1)
    drawn = seed_draws(per_seed, per_seed[:, 0], np.random.default_rng(0)).values
    expected = per_seed[:, 0].var(ddof=1) / 3
    assert drawn.var() == pytest.approx(expected, rel=0.02)
    assert drawn.mean() == pytest.approx(2.0, abs=0.02)
    one = seed_draws(per_seed[:1], per_seed[:1, 0], np.random.default_rng(0)).values
    np.testing.assert_array_equal(one, per_seed[0])


def test_bootstrap_indices_are_circular_blocks_and_reproducible():
    n, block = 50, 7
    first = bootstrap_indices(n, block, 20, seed=3)
    assert first.shape == (20, n)
    assert np.issubdtype(first.dtype, np.integer)
    assert first.min() >= 0 and first.max() < n
    for row in first:
        for start in range(0, n, block):
            run = row[start : start + block]
            # Consecutive dates within a block, wrapping from n - 1 to 0.
            assert np.all(np.diff(run) % n == 1)
    np.testing.assert_array_equal(first, bootstrap_indices(n, block, 20, seed=3))
    assert not np.array_equal(first, bootstrap_indices(n, block, 20, seed=4))


@pytest.mark.parametrize(("n", "block", "reps"), [(0, 3, 5), (10, 0, 5), (10, 3, 0)])
def test_bootstrap_indices_reject_bad_sizes(n, block, reps):
    with pytest.raises(ValueError):
        bootstrap_indices(n, block, reps, seed=0)


@pytest.mark.parametrize("threshold", [0.5, 0.35])
def test_identity_resample_equals_classification_metrics(threshold):
    rng = np.random.default_rng(0)
    n = 300
    y = (rng.uniform(size=n) < 0.45).astype(int)
    identity = np.arange(n)[None, :]
    cases = {
        "random": rng.uniform(size=n),
        # Ties exercise the average-rank AUC against scikit-learn's trapezoids.
        "tied": np.round(rng.uniform(size=n), 1),
        "constant": np.full(n, 0.5),
        # Hard 0/1 predictions: log loss must be clipped like scikit-learn's, not inf.
        "hard": (rng.uniform(size=n) < 0.5).astype(float),
    }
    for name, p in cases.items():
        got = resampled_metrics(y, p, identity, threshold)
        expected = _reference(y, p, threshold)
        assert set(got) == set(METRICS)
        for metric in METRICS:
            assert got[metric].shape == (1,)
            _assert_same(float(got[metric][0]), expected[metric], f"{name} {metric}")
    assert np.isfinite(resampled_metrics(y, cases["hard"], identity)["log_loss"]).all()


def test_every_resample_row_equals_the_metrics_of_its_dates(market, indices):
    y, signal = market
    p = _sigmoid(signal + np.random.default_rng(1).normal(0, 0.5, N_DATES))
    rows = indices[:6]
    got = resampled_metrics(y, p, rows, threshold=0.45)
    for r, dates in enumerate(rows):
        expected = _reference(y[dates], p[dates], 0.45)
        for metric in METRICS:
            _assert_same(float(got[metric][r]), expected[metric], f"row {r} {metric}")


def test_resampled_auc_counts_ties_and_repeated_dates_as_scikit_learn(market, indices):
    from sklearn.metrics import roc_auc_score

    y, signal = market
    # Two decimals: many tied scores, and each resample repeats dates.
    p = np.round(_sigmoid(signal), 2)
    rows = indices[:8]
    got = resampled_metrics(y, p, rows)["roc_auc"]
    expected = [roc_auc_score(y[dates], p[dates]) for dates in rows]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_one_class_resample_gives_nan_auc_and_brier_skill():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.7, 0.8, 0.3, 0.6])
    rows = np.array([[0, 1, 4, 0, 1, 4], [0, 1, 2, 3, 4, 5]])
    got = resampled_metrics(y, p, rows)
    assert math.isnan(got["roc_auc"][0]) and math.isnan(got["brier_skill"][0])
    assert got["roc_auc"][1] == pytest.approx(1.0)
    assert np.isfinite(got["log_loss"]).all()


def test_resampled_metrics_rejects_bad_inputs():
    y = np.array([0, 1, 1])
    p = np.array([0.2, 0.6, 0.9])
    with pytest.raises(ValueError):
        resampled_metrics(y, p[:2], np.arange(3)[None, :])
    with pytest.raises(ValueError):
        resampled_metrics(y, np.array([0.2, 1.4, 0.9]), np.arange(3)[None, :])
    with pytest.raises(ValueError):
        resampled_metrics(y, p, np.array([[0, 1, 3]]))
    with pytest.raises(ValueError):
        resampled_metrics(y, p, np.arange(3))


def test_summary_of_one_seed_has_a_point_seed_interval(market, indices):
    y, signal = market
    p = _sigmoid(signal)
    summary = summarize_runs(y, p[None, :], indices)
    expected = _reference(y, p, 0.5)
    assert set(summary) == set(METRICS)
    for metric in METRICS:
        s = summary[metric]
        assert s.mean == pytest.approx(expected[metric], abs=1e-9)
        assert s.seed_low == s.seed_high == s.mean
        assert s.seed_std == 0.0
        assert s.n_seeds == 1 and s.n_resamples == 300
        assert s.boot_low <= s.boot_high
    # Test-date noise on 400 dates is far from zero width for log loss.
    assert summary["log_loss"].boot_high - summary["log_loss"].boot_low > 0.01
    # The interval is the 2.5th and 97.5th percentiles of the metric scored on each resample.
    resampled = [_reference(y[rows], p[rows], 0.5)["log_loss"] for rows in indices]
    assert (summary["log_loss"].boot_low, summary["log_loss"].boot_high) == pytest.approx(
        tuple(np.percentile(resampled, [2.5, 97.5]))
    )
    json.dumps({name: m.to_dict() for name, m in summary.items()})


def test_summary_over_seeds_uses_a_student_t_interval(market, indices):
    y, signal = market
    rng = np.random.default_rng(2)
    preds = _sigmoid(signal[None, :] + rng.normal(0, 0.4, size=(5, N_DATES)))
    s = summarize_runs(y, preds, indices, level=0.9)["log_loss"]
    per_seed = [_reference(y, p, 0.5)["log_loss"] for p in preds]
    np.testing.assert_allclose(s.per_seed, per_seed, atol=1e-9)
    assert s.mean == pytest.approx(np.mean(per_seed))
    assert s.seed_std == pytest.approx(np.std(per_seed, ddof=1))
    low, high = stats.t.interval(0.9, 4, loc=np.mean(per_seed), scale=stats.sem(per_seed))
    assert (s.seed_low, s.seed_high) == pytest.approx((low, high))
    # The test-date interval is of the seed-mean metric, scored on each resample.
    resampled = [
        np.mean([_reference(y[rows], p[rows], 0.5)["log_loss"] for p in preds]) for rows in indices
    ]
    assert (s.boot_low, s.boot_high) == pytest.approx(tuple(np.percentile(resampled, [5.0, 95.0])))


def test_seed_intervals_stay_within_what_a_metric_can_be(market, indices):
    y, signal = market
    # Two seeds, one good and one inverted: a t-interval with one degree of freedom is
    # about 25 standard errors wide, far beyond [0, 1] for AUC.
    preds = np.stack([_sigmoid(signal), _sigmoid(-signal)])
    summary = summarize_runs(y, preds, indices)
    auc = summary["roc_auc"]
    assert auc.per_seed[0] > 0.6 > 0.4 > auc.per_seed[1]
    assert (auc.seed_low, auc.seed_high) == (0.0, 1.0)
    # Log loss is cut at 0, where the t-interval reaches below it.
    per_seed = summary["log_loss"].per_seed
    t_low, _ = stats.t.interval(0.95, 1, loc=np.mean(per_seed), scale=stats.sem(per_seed))
    assert t_low < 0.0 == summary["log_loss"].seed_low


def test_summary_ignores_resamples_with_one_class():
    y = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    p = np.array([0.1, 0.3, 0.7, 0.6, 0.2, 0.8, 0.4, 0.9])
    rows = np.array([[0, 1, 4, 6, 0, 1, 4, 6], [0, 1, 2, 3, 4, 5, 6, 7], [2, 3, 4, 5, 6, 7, 0, 1]])
    s = summarize_runs(y, p, rows)["roc_auc"]
    assert s.n_valid_resamples == 2
    assert s.boot_low == pytest.approx(1.0) and s.boot_high == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("low", "high", "lower_is_better", "expected"),
    [
        (-0.3, -0.1, True, IMPROVES),
        (0.1, 0.3, True, WORSENS),
        (-0.1, 0.2, True, NO_DIFFERENCE),
        (0.0, 0.2, True, NO_DIFFERENCE),
        (-0.2, 0.0, True, NO_DIFFERENCE),
        (0.1, 0.3, False, IMPROVES),
        (-0.3, -0.1, False, WORSENS),
        (-0.1, 0.2, False, NO_DIFFERENCE),
        (math.nan, -0.1, True, NO_DIFFERENCE),
        (0.1, math.nan, False, NO_DIFFERENCE),
        (math.nan, math.nan, True, NO_DIFFERENCE),
    ],
)
def test_verdict_claims_a_change_only_when_the_interval_excludes_zero(
    low, high, lower_is_better, expected
):
    assert verdict(low, high, lower_is_better) == expected


def test_lower_is_better_covers_every_quality_metric():
    assert set(LOWER_IS_BETTER) == set(METRICS) - {"prediction_range"}
    assert LOWER_IS_BETTER["log_loss"] and not LOWER_IS_BETTER["roc_auc"]


def test_a_model_against_itself_shows_no_difference(market, indices):
    y, signal = market
    single = _sigmoid(signal)[None, :]
    result = paired_difference(y, single, single, indices)
    assert result.difference == 0.0
    assert result.low == 0.0 and result.high == 0.0
    assert result.verdict == NO_DIFFERENCE
    seeds = _sigmoid(signal[None, :] + np.random.default_rng(3).normal(0, 0.5, (4, N_DATES)))
    result = paired_difference(y, seeds, seeds, indices)
    assert result.difference == 0.0
    assert result.low < 0.0 < result.high
    assert result.verdict == NO_DIFFERENCE


def test_a_clearly_better_model_improves(market, indices):
    y, signal = market
    rng = np.random.default_rng(4)
    weak = _sigmoid(0.3 * signal[None, :] + rng.normal(0, 0.3, (3, N_DATES)))
    strong = _sigmoid(1.5 * signal[None, :] + rng.normal(0, 0.3, (3, N_DATES)))
    result = paired_difference(y, weak, strong, indices, metric="log_loss")

    def seed_mean(preds):
        return np.mean([_reference(y, p, 0.5)["log_loss"] for p in preds])

    assert result.difference == pytest.approx(seed_mean(strong) - seed_mean(weak))
    assert result.difference < 0.0 and result.low < result.high < 0.0
    assert result.verdict == IMPROVES and result.lower_is_better is True
    backwards = paired_difference(y, strong, weak, indices, metric="log_loss")
    assert backwards.verdict == WORSENS and backwards.low > 0.0
    auc = paired_difference(y, weak, strong, indices, metric="roc_auc")
    assert auc.low > 0.0 and auc.verdict == IMPROVES and auc.lower_is_better is False
    json.dumps(result.to_dict())


def test_seed_effects_widen_the_interval_and_seed_date_noise_is_counted_once(market, indices):
    y, signal = market
    baseline = np.full((1, N_DATES), y.mean())
    centre = _sigmoid(signal)
    quiet = np.repeat(centre[None, :], 6, axis=0)
    # Seeds whose losses differ in expectation: half calibrated, half shifted by a
    # logit of 1.5. A fresh draw of seeds changes the mix, so the interval widens.
    offsets = np.array([0.0, 1.5] * 3)[:, None]
    shifted = _sigmoid(signal[None, :] + offsets)
    calm = paired_difference(y, baseline, quiet, indices, seed=5)
    wild = paired_difference(y, baseline, shifted, indices, seed=5)
    assert wild.high - wild.low > 1.4 * (calm.high - calm.low)
    assert wild.seed_spread > 0 and wild.df is not None and wild.df < 10
    # Seeds that only disagree date by date, with no lasting effect: the date draws
    # already carry that noise, so a redraw of seeds adds (almost) nothing to it.
    rng = np.random.default_rng(2)
    jitter = _sigmoid(signal[None, :] + rng.normal(0.0, 0.3, (6, N_DATES)))
    jittered = paired_difference(y, baseline, jitter, indices, seed=5)
    assert jittered.seed_spread < 0.3 * jittered.date_spread
    assert jittered.spread < 1.1 * jittered.date_spread


def test_seed_draws_split_a_lasting_effect_from_date_noise():
    rng = np.random.default_rng(9)
    k, n_resamples = 4, 4000
    # per_seed = seed effect + each seed's own noise around it on every resample
    effect = np.array([0.0, 0.02, -0.01, 0.03])
    per_seed = effect[:, None] + rng.normal(0.0, 0.005, (k, n_resamples))
    draws = seed_draws(per_seed, effect, np.random.default_rng(0))
    # var(a) / k from the between-seed variance less the noise's
    expected = (effect.var(ddof=1) - 0.005**2) / k
    assert draws.variance == pytest.approx(expected, rel=0.05) and draws.df == k - 1
    deviation = draws.values - per_seed.mean(axis=0)
    assert deviation.var() == pytest.approx(draws.variance, rel=0.1)
    # Noise only: nothing to add.
    noise_only = seed_draws(per_seed - effect[:, None], np.zeros(k), np.random.default_rng(0))
    assert noise_only.variance == 0.0
    np.testing.assert_allclose(noise_only.values, (per_seed - effect[:, None]).mean(axis=0))


def test_few_seeds_stretch_the_interval_by_t_over_z():
    low, high = widened(0.0, -1.0, 1.0, 2.0, 0.95)
    assert high == pytest.approx(stats.t.ppf(0.975, 2) / stats.norm.ppf(0.975))
    assert low == -high
    assert widened(0.5, 0.0, 1.0, math.inf, 0.95) == (0.0, 1.0)
    # A dominant seed part with 2 degrees of freedom: about 2.
    assert satterthwaite_df(0.0, [(1.0, 2)]) == pytest.approx(2.0)
    assert satterthwaite_df(1.0, [(0.0, 2)]) == math.inf
    assert satterthwaite_df(0.5, [(1.0, 2), (1.0, 2)]) == pytest.approx(2.5**2 / 1.0)


def test_paired_difference_is_reproducible_and_directionless_for_range(market, indices):
    y, signal = market
    rng = np.random.default_rng(6)
    a = _sigmoid(signal[None, :] + rng.normal(0, 0.5, (3, N_DATES)))
    b = _sigmoid(signal[None, :] + rng.normal(0, 0.5, (2, N_DATES)))
    assert paired_difference(y, a, b, indices, seed=1) == paired_difference(
        y, a, b, indices, seed=1
    )
    spread = paired_difference(y, a, b, indices, metric="prediction_range")
    assert spread.verdict is None and spread.lower_is_better is None
    with pytest.raises(ValueError):
        paired_difference(y, a, b, indices, metric="sharpe")
    with pytest.raises(ValueError):
        paired_difference(y, a, b[:, :-1], indices)


def test_the_date_bootstrap_draws_every_symbol_of_a_date_together():
    from finscale.analysis.bootstrap import date_bootstrap_indices, stratified_bootstrap_indices

    # one series: the date bootstrap is the sample bootstrap
    dates = np.arange(300)
    folds = np.repeat([0, 1, 2], 100)
    np.testing.assert_array_equal(
        date_bootstrap_indices(dates, folds, 10, 40, 0),
        stratified_bootstrap_indices([100, 100, 100], 10, 40, 0),
    )
    # a balanced panel of 3 symbols, stored symbol by symbol within each fold
    per_fold = [np.arange(100) + 100 * k for k in range(3)]
    dates = np.concatenate([np.tile(d, 3) for d in per_fold])
    folds = np.repeat([0, 1, 2], 300)
    rows = date_bootstrap_indices(dates, folds, 10, 40, 1)
    assert rows.shape == (40, 900)
    for row in rows:
        drawn = dates[row]
        _, counts = np.unique(drawn, return_counts=True)
        assert (counts % 3 == 0).all()  # each drawn date brings all three symbols
        # no block crosses a fold: every fold keeps its size
        assert [int(((drawn >= 100 * k) & (drawn < 100 * (k + 1))).sum()) for k in range(3)] == [
            300,
            300,
            300,
        ]
