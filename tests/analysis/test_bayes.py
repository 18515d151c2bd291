"""The planted control's floor in scaling.json: the Bayes log loss of exactly the
scored test rows, the budgets below it beyond their intervals, and the law's E set
beside it; files written before it still read."""

import dataclasses
import json

import numpy as np
import pytest

from finscale.analysis import (
    TEST_PROBABILITIES,
    BayesCheck,
    Estimate,
    HorizonResult,
    ScalingResults,
    bootstrap_scaling_law,
)
from finscale.analysis.bayes import bayes_check, pooled_label_probabilities
from finscale.data import bayes_log_loss
from finscale.errors import InputError
from tests.analysis.test_records import LOG_LOSS, scaling_row

# The least a horizon's scaling.json holds: no budgets, a skipped fit. A file written
# before the planted control has neither bayes_log_loss nor bayes_check.
OLD_HORIZON = {
    "horizon_days": 1,
    "n_test": 4,
    "test_first_date": "2020-01-01",
    "test_last_date": "2020-01-06",
    "scheme": "holdout",
    "block_days": 2,
    "bootstrap_resamples": 100,
    "budgets": [],
    "baselines": {},
    "steps": [],
    "fit": {"skipped": "needs 3 parameter counts", "points": {"n_params": [], "test_log_loss": []}},
    "cross_budget": None,
}
OLD_RESULTS = {
    "study": "s",
    "tier": "a25",
    "target": "SP500",
    "confidence_level": 0.95,
    "seeds": 2,
    "config": {},
    "horizons": {"1": OLD_HORIZON},
    "warnings": [],
}


def row(budget, mean, seed_high, boot_high):
    """A budget's row whose test log loss has these mean and upper interval ends."""
    metric = dataclasses.replace(LOG_LOSS, mean=mean, seed_high=seed_high, boot_high=boot_high)
    return dataclasses.replace(scaling_row(), budget=budget, metrics={"log_loss": metric})


def test_the_probabilities_of_every_fold_are_pooled_in_fold_order():
    folds = [{TEST_PROBABILITIES: [0.1, 0.2]}, {TEST_PROBABILITIES: [0.7]}]
    np.testing.assert_array_equal(pooled_label_probabilities(folds, 3, "h=1"), [0.1, 0.2, 0.7])
    # Market data, a record of an older version or a missing fold: not known.
    assert pooled_label_probabilities([{"base_rate": {}}], 3, "h=1") is None
    assert pooled_label_probabilities([folds[0], None], 3, "h=1") is None
    assert pooled_label_probabilities([], 3, "h=1") is None
    with pytest.raises(InputError, match="cover 3 test rows, the evaluations 4"):
        pooled_label_probabilities(folds, 4, "h=1")


def test_a_budget_is_below_bayes_only_when_both_its_intervals_lie_wholly_below():
    bayes = 0.60
    rows = [
        row(1000, 0.55, seed_high=0.57, boot_high=0.59),  # wholly below: a leak or a bug
        row(2000, 0.55, seed_high=0.57, boot_high=0.61),  # its date interval reaches it
        row(3000, 0.62, seed_high=0.63, boot_high=0.65),  # above: as it should be
        row(4000, 0.55, seed_high=float("nan"), boot_high=0.58),  # one interval unknown
    ]
    check = bayes_check(bayes, rows, None)
    assert check == BayesCheck(below_bayes=(1000, 4000), E=None, E_covers_bayes=None)
    assert bayes_check(bayes, rows[2:3], None).below_bayes == ()
    assert bayes_check(None, rows, None) is None  # market data: nothing to check


def test_the_laws_e_is_set_beside_the_bayes_loss():
    n = np.repeat([1e3, 1e4, 1e5, 1e6], 3)
    rng = np.random.default_rng(0)
    losses = 0.5 + 0.8 * n**-0.3 + rng.normal(0, 0.002, n.size)
    law = bootstrap_scaling_law(n, losses, n_resamples=60, seed=0)
    E = law.E
    assert E.low < E.high
    inside = bayes_check((E.low + E.high) / 2, [], law)
    assert inside.E == E and inside.E_covers_bayes is True
    assert bayes_check(E.high + 0.01, [], law).E_covers_bayes is False
    unknown = dataclasses.replace(law, E=Estimate(value=0.5, low=float("nan"), high=0.6))
    assert bayes_check(0.55, [], unknown).E_covers_bayes is None


def test_scaling_json_holds_the_bayes_loss_and_reads_files_written_before_it():
    old = ScalingResults.from_dict(OLD_RESULTS)
    assert old.null_control == "none"
    h = old.horizons["1"]
    assert h.bayes_log_loss is None and h.bayes_check is None
    assert "bayes_check" not in h.to_dict() and h.to_dict()["bayes_log_loss"] is None

    p = np.array([0.2, 0.5, 0.9, 0.6])
    planted = dataclasses.replace(
        h,
        bayes_log_loss=bayes_log_loss(p),
        bayes_check=BayesCheck(
            below_bayes=(4000,), E=Estimate(value=0.4, low=0.3, high=0.5), E_covers_bayes=True
        ),
    )
    results = dataclasses.replace(old, horizons={"1": planted}, null_control="shuffle")
    stored = json.loads(json.dumps(results.to_dict()))
    assert stored["null_control"] == "shuffle"
    assert stored["horizons"]["1"]["bayes_log_loss"] == pytest.approx(bayes_log_loss(p))
    assert stored["horizons"]["1"]["bayes_check"] == {
        "below_bayes": [4000],
        "E": {"value": 0.4, "low": 0.3, "high": 0.5},
        "E_covers_bayes": True,
    }
    assert ScalingResults.from_dict(stored) == results
    assert HorizonResult.from_dict(stored["horizons"]["1"]) == planted
