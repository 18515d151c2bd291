"""The joint law L(N, D): recovered from runs drawn from it, skipped with its reason
when the runs cannot identify it, and the binding resource named only as far as the
intervals allow."""

import numpy as np
import pytest

from finscale.analysis.joint_law import (
    NAMES,
    MarginalValue,
    binding_statement,
    bootstrap_joint_law,
    fit_joint_law,
    identification_problem,
    joint_law,
    marginal_value,
)

# Hoffmann et al. (2022), approach 3, at language-model scales.
CHINCHILLA = {"E": 1.69, "A": 406.4, "alpha": 0.34, "B": 410.7, "beta": 0.28}


def _runs(truth, n_levels, d_levels, repeats, noise, seed):
    rng = np.random.default_rng(seed)
    n = np.repeat(n_levels, len(d_levels) * repeats)
    d = np.tile(np.repeat(d_levels, repeats), len(n_levels))
    loss = joint_law(n, d, *(truth[k] for k in NAMES)) * np.exp(rng.normal(0, noise, n.size))
    return n, d, loss


def test_noiseless_runs_give_back_the_law():
    n, d, loss = _runs(
        CHINCHILLA, np.geomspace(7e7, 1.6e10, 6), np.geomspace(5e9, 5e11, 6), 1, 0, 0
    )
    fit = fit_joint_law(n, d, loss)
    assert fit.converged and fit.n_points == 36
    for name in NAMES:
        assert getattr(fit, name) == pytest.approx(CHINCHILLA[name], rel=1e-3), name


@pytest.mark.parametrize(
    "truth, n_levels, d_levels",
    [
        (CHINCHILLA, np.geomspace(7e7, 1.6e10, 5), np.geomspace(5e9, 5e11, 5)),
        # finscale's regime: small models, thousands of daily samples, losses near 0.3
        (
            {"E": 0.25, "A": 2.0, "alpha": 0.3, "B": 5.0, "beta": 0.5},
            np.geomspace(2e4, 2e6, 5),
            np.geomspace(500, 8000, 5),
        ),
    ],
)
def test_noisy_runs_are_recovered_within_their_intervals(truth, n_levels, d_levels):
    n, d, loss = _runs(truth, n_levels, d_levels, repeats=3, noise=0.005, seed=1)
    boot = bootstrap_joint_law(n, d, loss, n_resamples=300, seed=0)
    assert boot.draws.n_converged >= 290
    for name in NAMES:
        estimate = getattr(boot, name)
        assert estimate.low <= truth[name] <= estimate.high, (name, estimate)
        assert estimate.value == pytest.approx(truth[name], rel=0.25), name
    assert boot.samples.shape == (boot.draws.n_converged, 5)
    assert "samples" not in boot.to_dict()


def test_runs_with_one_data_size_cannot_identify_the_joint_law():
    n = np.repeat([1e4, 1e5, 1e6], 2)
    d = np.full(6, 3000.0)
    reason = identification_problem(n, d)
    assert "3 distinct training-sample counts" in reason and "have 3 and 1" in reason
    with pytest.raises(ValueError, match="training-sample counts"):
        fit_joint_law(n, d, np.full(6, 0.3))
    assert (
        identification_problem(np.repeat([1e4, 1e5, 1e6], 3), np.tile([1e3, 2e3, 4e3], 3)) is None
    )


def test_the_binding_resource_is_named_only_when_the_interval_says_so():
    n_levels, d_levels = np.geomspace(2e4, 2e6, 5), np.geomspace(500, 8000, 5)
    # Data-starved: the data term dominates the excess loss at the largest run.
    starved = {"E": 0.25, "A": 0.5, "alpha": 0.3, "B": 20.0, "beta": 0.5}
    n, d, loss = _runs(starved, n_levels, d_levels, 3, 0.003, 2)
    value = marginal_value(bootstrap_joint_law(n, d, loss, 200), n.max(), d.max())
    assert value.binding == "data" and value.calibrated is False
    # Not a calibrated test: the statement says which gain is predicted larger, calls
    # no binding resource, and leaves "data-limited" to the samples-per-parameter regime.
    assert value.statement.startswith("exploratory, not a calibrated test")
    assert "more from 2x the data" in value.statement
    assert "bind" not in value.statement and "data-limited" not in value.statement
    assert value.wording() == value.statement
    assert value.data.high < value.params.low < 0
    # Parameter-starved: the other way round.
    small = {"E": 0.25, "A": 40.0, "alpha": 0.3, "B": 0.5, "beta": 0.5}
    n, d, loss = _runs(small, n_levels, d_levels, 3, 0.003, 3)
    value = marginal_value(bootstrap_joint_law(n, d, loss, 200), n.max(), d.max())
    assert value.binding == "parameters"
    # Noise that swamps both terms: no claim.
    flat = {"E": 0.3, "A": 0.02, "alpha": 0.3, "B": 0.05, "beta": 0.5}
    n, d, loss = _runs(flat, n_levels, d_levels, 3, 0.05, 4)
    value = marginal_value(bootstrap_joint_law(n, d, loss, 200), n.max(), d.max())
    assert value.binding is None and "within each other's intervals" in value.statement


def test_a_calibrated_call_names_the_binding_resource_without_data_limited():
    assert binding_statement("data", "2x", True).startswith("data binds: 2x the data")
    assert binding_statement("parameters", "2x", True).startswith("parameters bind")
    assert binding_statement(None, "2x", True).startswith("neither resource")
    for binding in ("data", "parameters", None):
        assert "data-limited" not in binding_statement(binding, "2x", True)


def test_a_marginal_value_stored_before_the_calibration_field_reads_as_exploratory():
    estimate = {"value": -0.01, "low": -0.02, "high": -0.005}
    old = {
        "n_params": 1e6,
        "n_samples": 3000.0,
        "factor": 2.0,
        "params": estimate,
        "data": estimate,
        "difference": estimate,
        "binding": "data",
        "statement": "data-limited: 2x the data is predicted to help more than 2x the parameters",
    }
    value = MarginalValue.from_dict(old)
    assert value.calibrated is False
    assert value.wording().startswith("exploratory") and "data-limited" not in value.wording()
