"""Each feature tier against the next, paired on the test dates both tiers have."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from finscale.analysis import IMPROVES, TierResults, corrected_family, tier_results
from finscale.config import ScaleConfig
from finscale.errors import InputError
from tests.analysis.test_records import evaluation_run

DATES = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2015-01-01", periods=400)]
SCALE = ScaleConfig(bootstrap_resamples=300, block_days=5)
RNG = np.random.default_rng(7)
LABELS = RNG.integers(0, 2, len(DATES))


def _runs(bounds, skill, seed0=0):
    """Walk-forward runs of one study: a fold per (start, stop) of DATES, two seeds;
    predictions lean towards the label by `skill`."""
    rng = np.random.default_rng(seed0)
    runs = []
    for fold, (start, stop) in enumerate(bounds):
        y = LABELS[start:stop]
        for seed in (3, 4):
            p = np.clip(0.5 + skill * (y - 0.5) + rng.normal(0, 0.1, y.size), 0.02, 0.98)
            runs.append(
                evaluation_run(
                    seed=seed,
                    fold=fold,
                    predictions={"val": [0.5], "test": p.tolist()},
                    labels={"val": [0], "test": y.tolist()},
                    test_dates=tuple(DATES[start:stop]),
                    n_train=1000 + 100 * fold,
                )
            )
    return runs


# a50's history starts 100 days later, and its folds tile the shorter span otherwise.
A25 = _runs([(0, 200), (200, 400)], skill=0.0)
A50 = _runs([(100, 250), (250, 400)], skill=0.3, seed0=1)


def _pooled_loss(runs, dates):
    """Seed-mean log loss of `runs` on `dates` (each date once), directly."""
    by_seed = {}
    for run in runs:
        rows = zip(run.test_dates, run.labels["test"], run.predictions["test"], strict=True)
        for d, y, p in rows:
            by_seed.setdefault(run.seed, {})[d] = (y, p)
    losses = []
    for rows in by_seed.values():
        y, p = zip(*(rows[d] for d in dates), strict=True)
        losses.append(log_loss(y, p, labels=[0, 1]))
    return float(np.mean(losses))


def test_tiers_are_compared_on_the_dates_both_have():
    out = tier_results(
        {"a25": {(4000, 1): A25}, "a50": {(4000, 1): A50}},
        {"a25": 25, "a50": 50},
        SCALE,
        0.5,
    )
    (info25, info50), (comparison,) = out.tiers, out.comparisons
    assert (info25.first_test_date, info50.first_test_date) == (DATES[0], DATES[100])
    assert (info25.test_samples, info50.test_samples) == (400, 300)
    assert (info25.n_features, info50.n_features, info50.train_samples) == (25, 50, 1100)
    shared = DATES[100:]
    assert comparison.shared_test_days == comparison.shared_samples == 300
    assert (comparison.first_shared_date, comparison.last_shared_date) == (shared[0], shared[-1])
    expected = _pooled_loss(A50, shared) - _pooled_loss(A25, shared)
    assert comparison.log_loss.difference == pytest.approx(expected, abs=1e-12)
    assert comparison.log_loss.low < expected < comparison.log_loss.high
    assert comparison.log_loss.verdict == IMPROVES and comparison.log_loss.mde > 0
    # Both lines of the figure on the dates every tier has.
    (loss,) = out.losses
    assert loss.shared_test_days == 300
    assert loss.log_loss["a25"].mean == pytest.approx(_pooled_loss(A25, shared))
    # The file's form reads back, with the flat figures a script reads first.
    stored = out.to_dict()
    assert TierResults.from_dict(stored) == out
    row = stored["comparisons"][0]
    assert row["change"] == comparison.log_loss.difference and row["mde"] > 0
    assert {"shared_test_days", "low", "high", "holm_verdict"} <= row.keys()


def test_tier_comparisons_join_the_family_and_gain_holm_verdicts():
    tiers = tier_results(
        {"a25": {(4000, 1): A25}, "a50": {(4000, 1): A50}}, {"a25": 25, "a50": 50}, SCALE, 0.5
    )
    _, family, corrected = corrected_family({}, None, 0.95, tiers)
    assert family.members == {"tier against the next": 1} and family.size == 1
    assert corrected.comparisons[0].log_loss.holm_verdict == IMPROVES


def test_tiers_that_label_a_shared_date_otherwise_are_refused():
    flipped = [
        evaluation_run(
            **{**run.__dict__, "labels": {"val": [0], "test": [1 - y for y in run.labels["test"]]}}
        )
        for run in A50
    ]
    with pytest.raises(InputError, match="label the same test dates differently"):
        tier_results(
            {"a25": {(4000, 1): A25}, "a50": {(4000, 1): flipped}},
            {"a25": 25, "a50": 50},
            SCALE,
            0.5,
        )


def test_a_tier_without_an_architecture_at_a_budget_is_compared_at_the_others():
    # a100's patch embedding outgrows the smallest budget: it has runs at 16K only.
    a100 = _runs([(100, 250), (250, 400)], skill=0.3, seed0=2)
    out = tier_results(
        {
            "a25": {(4000, 1): A25, (16000, 1): A25},
            "a50": {(4000, 1): A50, (16000, 1): A50},
            "a100": {(16000, 1): a100},
        },
        {"a25": 25, "a50": 50, "a100": 100},
        SCALE,
        0.5,
    )
    assert [t.budgets for t in out.tiers] == [(4000, 16000), (4000, 16000), (16000,)]
    pairs = [(c.budget, c.tier, c.next_tier) for c in out.comparisons]
    assert pairs == [(4000, "a25", "a50"), (16000, "a25", "a50"), (16000, "a50", "a100")]
    assert [(loss.budget, sorted(loss.log_loss)) for loss in out.losses] == [
        (16000, ["a100", "a25", "a50"])
    ]
