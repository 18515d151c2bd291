import json
import warnings

import numpy as np
import pytest

from finscale.analysis.law_fit import stratified_counts
from finscale.analysis.scaling import (
    ScalingFit,
    ScalingLawBootstrap,
    bootstrap_scaling_law,
    fit_scaling_law,
    identification,
    scaling_law,
)

TRUE_E, TRUE_A, TRUE_ALPHA = 0.25, 40.0, 0.35
BUDGETS = np.geomspace(1e4, 1e8, 8)
RUNS_PER_BUDGET = 3


def _runs(noise_sigma, seed=0):
    """RUNS_PER_BUDGET runs at each budget, multiplicative log-normal noise."""
    n = np.repeat(BUDGETS, RUNS_PER_BUDGET)
    clean = scaling_law(n, TRUE_E, TRUE_A, TRUE_ALPHA)
    noise = np.random.default_rng(seed).normal(0.0, noise_sigma, n.size)
    return n, clean * np.exp(noise)


def test_scaling_law_by_hand():
    assert scaling_law(1e4, 0.25, 40.0, 0.5) == pytest.approx(0.25 + 40.0 / 100.0)
    values = scaling_law(np.array([[1.0, 16.0]]), 1.0, 2.0, 0.25)
    assert values.shape == (1, 2)
    np.testing.assert_allclose(values, [[3.0, 2.0]])


def test_noise_free_fit_recovers_the_law():
    n, loss = _runs(0.0)
    fit = fit_scaling_law(n, loss)
    assert fit.converged and fit.n_points == n.size
    fitted = (fit.E, fit.A, fit.alpha)
    assert fitted == pytest.approx((TRUE_E, TRUE_A, TRUE_ALPHA), rel=1e-3)
    np.testing.assert_allclose(fit.predict(BUDGETS), scaling_law(BUDGETS, 0.25, 40.0, 0.35), 1e-6)


def test_fit_from_a_given_start():
    n, loss = _runs(0.0)
    fit = fit_scaling_law(n, loss, starts=[(0.1, 100.0, 0.6)])
    assert fit.alpha == pytest.approx(TRUE_ALPHA, rel=1e-3)
    with pytest.raises(ValueError, match="starts"):
        fit_scaling_law(n, loss, starts=[])


def test_noisy_fit_and_bootstrap_contain_the_truth():
    n, loss = _runs(0.005, seed=3)
    fit = fit_scaling_law(n, loss)
    # Over 60 noise draws the fitted E, A, alpha stayed within 1.2%, 3.5% and
    # 0.004 of the truth; the tolerances leave room beyond that.
    assert abs(fit.E / TRUE_E - 1.0) < 0.02
    assert abs(fit.A / TRUE_A - 1.0) < 0.06
    assert abs(fit.alpha - TRUE_ALPHA) < 0.01

    result = bootstrap_scaling_law(n, loss, n_resamples=200, seed=0)
    stored = json.loads(json.dumps(result.to_dict()))
    assert ScalingLawBootstrap.from_dict(stored) == result
    assert result.fit == fit
    assert result.draws.n_converged == result.draws.n_resamples == 200
    # Nominal 95% intervals; with 3 runs per budget the within-budget bootstrap
    # understates the variance, so over 60 noise draws they covered the truth
    # 88-90% of the time. This draw is one of those covered.
    for name, truth in (("E", TRUE_E), ("A", TRUE_A), ("alpha", TRUE_ALPHA)):
        interval = getattr(result, name)
        assert interval.low <= truth <= interval.high, name
        assert interval.high - interval.low < 0.15 * truth

    band = result.band
    assert len(band.n_params) == 50
    assert band.n_params[0] == pytest.approx(1e4) and band.n_params[-1] == pytest.approx(1e8)
    low, mid, high = (np.array(values) for values in (band.low, band.fit, band.high))
    assert np.all(low < high)
    true_curve = scaling_law(np.array(band.n_params), TRUE_E, TRUE_A, TRUE_ALPHA)
    assert np.all(np.abs(mid - true_curve) < 0.02 * true_curve)


def test_bootstrap_is_reproducible_and_takes_a_grid():
    n, loss = _runs(0.005, seed=2)
    first = bootstrap_scaling_law(n, loss, n_resamples=50, seed=3, grid=[1e5, 1e9])
    assert first == bootstrap_scaling_law(n, loss, n_resamples=50, seed=3, grid=[1e5, 1e9])
    band = first.band
    assert band.n_params == (1e5, 1e9)
    fit = fit_scaling_law(n, loss)
    np.testing.assert_allclose(band.fit, fit.predict([1e5, 1e9]))
    assert band.low[0] < band.fit[0] < band.high[0]
    assert band.low[1] < band.fit[1] < band.high[1]
    assert first != bootstrap_scaling_law(n, loss, n_resamples=50, seed=4, grid=[1e5, 1e9])


def test_date_resampled_losses_widen_the_intervals_and_are_checked():
    n, loss = _runs(0.002, seed=2)
    # Each resample of the test dates moves every run's loss by a shared factor and a
    # per-run one, as rescoring on other days does.
    rng = np.random.default_rng(7)
    shared = rng.normal(0.0, 0.02, size=(200, 1))
    resampled = loss[None, :] * np.exp(shared + rng.normal(0.0, 0.01, size=(200, n.size)))
    runs_only = bootstrap_scaling_law(n, loss, n_resamples=200, seed=1)
    with_dates = bootstrap_scaling_law(n, loss, n_resamples=200, seed=1, resampled_losses=resampled)
    for name in ("E", "alpha"):
        width_runs = getattr(runs_only, name).high - getattr(runs_only, name).low
        width_dates = getattr(with_dates, name).high - getattr(with_dates, name).low
        assert width_dates > 2 * width_runs, name
    # The point estimate is still the full-sample fit.
    assert with_dates.alpha.value == runs_only.alpha.value
    with pytest.raises(ValueError, match="shape"):
        bootstrap_scaling_law(n, loss, n_resamples=200, resampled_losses=resampled[:10])
    with pytest.raises(ValueError, match="positive"):
        bootstrap_scaling_law(n, loss, n_resamples=200, resampled_losses=-resampled)


def test_stratified_resamples_keep_every_budget():
    n = np.array([1e4, 1e4, 1e4, 1e5, 1e6, 1e6])
    counts = stratified_counts(n, 200, np.random.default_rng(0))
    assert counts.shape == (200, 6)
    np.testing.assert_array_equal(counts[:, :3].sum(axis=1), 3)
    np.testing.assert_array_equal(counts[:, 3], 1)
    np.testing.assert_array_equal(counts[:, 4:].sum(axis=1), 2)
    # Draws do vary within a budget.
    assert counts[:, 0].max() >= 2 and counts[:, 0].min() == 0


def test_one_run_per_budget_warns_that_intervals_are_empty():
    loss = scaling_law(BUDGETS, TRUE_E, TRUE_A, TRUE_ALPHA)
    with pytest.warns(RuntimeWarning, match="one run"):
        result = bootstrap_scaling_law(BUDGETS, loss, n_resamples=5)
    assert result.alpha.low == result.alpha.high


@pytest.mark.parametrize(
    "noise_sigma",
    [0.0, 0.003],
)
def test_a_flat_loss_curve_fits_a_flat_law(noise_sigma):
    n = np.repeat(BUDGETS, RUNS_PER_BUDGET)
    loss = 0.69 * np.exp(np.random.default_rng(5).normal(0.0, noise_sigma, n.size))
    fit = fit_scaling_law(n, loss)
    curve = fit.predict(np.geomspace(1e3, 1e10, 30))
    assert np.ptp(curve) < 1e-3
    assert curve.mean() == pytest.approx(0.69, rel=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = bootstrap_scaling_law(n, loss, n_resamples=50)
    assert np.ptp(result.band.fit) < 1e-3


@pytest.mark.parametrize(
    ("n_params", "losses", "message"),
    [
        ([1e4, 1e5, 1e6], [1.0, 0.9], "3 parameter counts but 2 losses"),
        ([1e4, 1e5], [1.0, 0.9], "at least 3 points"),
        ([1e5, 1e5, 1e5], [1.0, 0.9, 0.8], "2 distinct"),
        ([1e4, 1e5, -1e6], [1.0, 0.9, 0.8], "parameter counts"),
        ([1e4, 1e5, 0.0], [1.0, 0.9, 0.8], "parameter counts"),
        ([1e4, 1e5, 1e6], [1.0, np.nan, 0.8], "losses"),
        ([1e4, 1e5, 1e6], [1.0, 0.0, 0.8], "losses"),
        ([1e4, 1e5, np.inf], [1.0, 0.9, 0.8], "parameter counts"),
        ([[1e4, 1e5, 1e6]], [[1.0, 0.9, 0.8]], "1-D"),
    ],
)
def test_bad_inputs_raise(n_params, losses, message):
    with pytest.raises(ValueError, match=message):
        fit_scaling_law(n_params, losses)
    with pytest.raises(ValueError, match=message):
        bootstrap_scaling_law(n_params, losses, n_resamples=2)


def test_bad_bootstrap_options_raise():
    n, loss = _runs(0.0)
    for kwargs in ({"n_resamples": 0}, {"level": 1.0}, {"grid": [1e4, -1.0]}, {"grid": []}):
        with pytest.raises(ValueError):
            bootstrap_scaling_law(n, loss, **kwargs)
    with pytest.raises(ValueError, match="huber_delta"):
        fit_scaling_law(n, loss, huber_delta=0.0)


def test_fit_round_trips_as_plain_fields():
    fit = ScalingFit(E=0.3, A=2.0, alpha=0.5, objective=1e-4, n_points=5, converged=True)
    as_dict = fit.to_dict()
    assert as_dict == {
        "E": 0.3,
        "A": 2.0,
        "alpha": 0.5,
        "objective": 1e-4,
        "n_points": 5,
        "converged": True,
    }
    assert ScalingFit(**as_dict) == fit
    assert fit.predict(4.0) == pytest.approx(1.3)
    json.dumps(as_dict)


def test_a_flat_curve_over_three_budgets_is_not_identified_and_says_why():
    n = np.repeat(BUDGETS[:3], 3)
    loss = 0.35 * np.exp(np.random.default_rng(7).normal(0.0, 0.004, n.size))
    law = bootstrap_scaling_law(n, loss, n_resamples=50)
    judged = identification(law, n, loss, step_noise=0.004)
    assert judged.identified is False
    assert "alpha" in judged.why and "3 budgets for a law of 3 parameters" in judged.why
    assert "the losses are flat" in judged.why
    # Without a step noise flatness is not judged; the bound is still named.
    assert "flat:" not in identification(law, n, loss).why


def test_a_falling_curve_over_many_budgets_is_identified():
    n, loss = _runs(0.003)
    law = bootstrap_scaling_law(n, loss, n_resamples=100)
    judged = identification(law, n, loss, step_noise=0.001)
    assert judged.identified, judged.why
    assert judged.why is None
