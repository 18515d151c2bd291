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
