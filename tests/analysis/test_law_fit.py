"""The one fitter under L(N) and L(N, D): its gradient is the objective's, for one
power-law term and for two, and its parameters map to the original units and back."""

import numpy as np
import pytest
from scipy import optimize

from finscale.analysis.law_fit import PowerLawProblem


@pytest.mark.parametrize("terms", [1, 2])
def test_the_gradient_is_the_objectives(terms):
    rng = np.random.default_rng(terms)
    resources = [np.exp(rng.uniform(8, 14, 30)) for _ in range(terms)]
    loss = np.exp(rng.uniform(-1.5, -0.5, 30))
    # A delta wider than the residuals, so the Huber loss is smooth where it is checked.
    problem = PowerLawProblem(resources, loss, delta=10.0)
    weights = rng.integers(0, 3, 30).astype(float)
    for _ in range(5):
        theta = rng.normal(0.0, 0.5, problem.n_params)
        theta[2::2] = rng.uniform(0.1, 1.0, terms)  # exponents
        error = optimize.check_grad(
            lambda t: problem.objective(t, weights)[0],
            lambda t: problem.objective(t, weights)[1],
            theta,
        )
        assert error < 1e-5 * max(1.0, np.linalg.norm(problem.objective(theta, weights)[1]))


def test_parameters_map_to_the_centred_units_and_back():
    problem = PowerLawProblem(
        [np.array([1e4, 1e5, 1e6]), np.array([3e3, 1e4, 5e4])], np.ones(3), 1e-3
    )
    params = (0.3, 40.0, 0.35, 7.0, 0.5)
    np.testing.assert_allclose(problem.from_theta(problem.to_theta(*params)), params, rtol=1e-12)


def test_within_stratum_draws_carry_the_unbiased_variance_of_the_runs():
    from finscale.analysis.law_fit import inflated_within_strata

    # 3 runs per budget: a plain bootstrap of their mean has (3 - 1) / 3 of the
    # variance of the mean; the stretched draws have all of it.
    losses = np.array([0.30, 0.31, 0.33, 0.50, 0.52, 0.51])
    strata = np.array([1, 1, 1, 2, 2, 2])
    drawn = inflated_within_strata(losses, strata, 40_000, np.random.default_rng(0))
    for members in (slice(0, 3), slice(3, 6)):
        runs = losses[members]
        means = drawn[:, members].mean(axis=1)
        assert means.mean() == pytest.approx(runs.mean(), abs=2e-4)
        assert means.var() == pytest.approx(runs.var(ddof=1) / 3, rel=0.03)
    # Each row of a (n_resamples, n_runs) table is its own resample of the test dates.
    rows = np.stack([losses, losses + 1.0])
    shifted = inflated_within_strata(rows, strata, 2, np.random.default_rng(1))
    assert shifted[1].mean() > 1.0 > shifted[0].mean()


def test_bounds_of_the_fit_are_named_in_words():
    from finscale.analysis.law_fit import Estimate, bound_problems

    def est(value, low, high):
        return Estimate(value=value, low=low, high=high)

    # The quick study's fit as the issue quotes it: every estimate leans on a bound.
    problems = bound_problems(
        est(0.3273, 0.0241, 0.3563),
        [("A", est(0.02468, 0.02456, 1.462e10), "alpha", est(0.0, 0.0, 2.9441))],
        smallest_loss=0.3496,
    )
    text = " ".join(problems)
    assert "alpha is fitted at 0" in text and "A merges with E" in text
    assert "E's interval runs down to 0.0241" in text
    assert "spans 12 orders of magnitude" in text
    assert "bound of 3" not in text
    # An exponent whose interval reaches the top bound, and a well-pinned law.
    step = bound_problems(
        est(0.3, 0.29, 0.31), [("A", est(2, 1, 3), "alpha", est(2.5, 1.0, 3.0))], 0.35
    )
    assert step == [
        "alpha's interval [1, 3] reaches the fit's bound of 3, a step rather than a power law"
    ]
    assert (
        bound_problems(
            est(0.3, 0.29, 0.31), [("A", est(2, 1, 3), "alpha", est(0.3, 0.2, 0.4))], 0.35
        )
        == []
    )
