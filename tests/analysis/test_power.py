import math

import numpy as np
import pytest

from finscale.analysis.bootstrap import bootstrap_indices, paired_difference
from finscale.analysis.power import (
    minimum_detectable_effect,
    power_table,
    projected_mde,
    z_sum,
)


def test_an_effect_of_one_mde_is_detected_with_the_stated_power():
    rng = np.random.default_rng(0)
    se = 0.01
    mde = minimum_detectable_effect(se, level=0.95, power=0.8)
    estimates = rng.normal(mde, se, size=200_000)
    detected = np.abs(estimates / se) > 1.959963984540054
    assert detected.mean() == pytest.approx(0.8, abs=0.005)
    # and at 90% power more standard errors are needed
    assert z_sum(0.95, 0.9) > z_sum(0.95, 0.8)


def test_projection_shrinks_each_part_by_its_own_factor():
    base = projected_mde(0.02, 0.0)
    assert projected_mde(0.02, 0.0, days_factor=4) == pytest.approx(base / 2)
    assert projected_mde(0.02, 0.0, seeds_factor=4) == pytest.approx(base)
    only_seeds = projected_mde(0.0, 0.02)
    assert projected_mde(0.0, 0.02, seeds_factor=4) == pytest.approx(only_seeds / 2)
    table = power_table(0.02, 0.01, factors=(1, 2))
    assert [(row.days_factor, row.seeds_factor) for row in table] == [
        (1, 1),
        (1, 2),
        (2, 1),
        (2, 2),
    ]
    assert table[0].mde == pytest.approx(minimum_detectable_effect(math.hypot(0.02, 0.01)))
    assert table[-1].mde < table[1].mde < table[0].mde


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        minimum_detectable_effect(-1.0)
    with pytest.raises(ValueError):
        z_sum(1.5)
    assert math.isnan(minimum_detectable_effect(math.nan))


def _two_models(n, rng, n_seeds=3):
    """Two models whose seeds differ by a lasting offset and by date-to-date noise."""
    y = (rng.random(n) < 0.55).astype(float)
    a = 0.55 + rng.normal(0, 0.01, size=(n_seeds, 1)) + rng.normal(0, 0.05, size=(n_seeds, n))
    b = 0.55 + rng.normal(0, 0.01, size=(n_seeds, 1)) + rng.normal(0, 0.05, size=(n_seeds, n))
    return y, np.clip(a, 0.01, 0.99), np.clip(b, 0.01, 0.99)


def test_paired_difference_carries_its_spread_and_mde():
    rng = np.random.default_rng(1)
    y, a, b = _two_models(400, rng)
    out = paired_difference(y, a, b, bootstrap_indices(400, 5, 500, seed=0))
    # The seeds' lasting effects add their part to the dates' (a resampled estimate of it).
    assert out.spread**2 == pytest.approx(out.date_spread**2 + out.seed_spread**2, rel=0.15)
    assert out.seed_spread > 0
    assert out.mde == pytest.approx(minimum_detectable_effect(out.spread, 0.95))
    # the percentile interval and the spread describe the same distribution
    assert (out.high - out.low) / (2 * 1.96) == pytest.approx(out.spread, rel=0.2)
    # deterministic models (one seed each) have no seed part
    one = paired_difference(y, a[:1], b[:1], bootstrap_indices(400, 5, 500, seed=0))
    assert one.seed_spread == pytest.approx(0.0, abs=1e-12)


def test_four_times_the_test_days_halve_the_date_spread():
    rng = np.random.default_rng(2)
    spreads = []
    for n in (500, 2000):
        y, a, b = _two_models(n, rng, n_seeds=1)
        out = paired_difference(y, a, b, bootstrap_indices(n, 5, 800, seed=0))
        spreads.append(out.date_spread)
    assert spreads[0] / spreads[1] == pytest.approx(2.0, rel=0.2)
