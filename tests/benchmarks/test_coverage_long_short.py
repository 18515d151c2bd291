"""The long-short coverage benchmark's code paths on tiny runs: its planted skill ranks
next-day returns as it says, and its table carries every verdict of every scenario."""

import numpy as np
import pytest

from tests.benchmarks.loading import loaded_benchmark


@pytest.fixture(scope="module")
def bench():
    yield from loaded_benchmark("coverage_long_short")


def _rank_correlation(p, r):
    """Mean over dates of the Spearman correlation across symbols (rows: dates)."""
    ranks = [np.argsort(np.argsort(x, axis=1), axis=1).astype(float) for x in (p, r)]
    a, b = (x - x.mean(axis=1, keepdims=True) for x in ranks)
    return float(np.mean((a * b).sum(axis=1) / np.sqrt((a**2).sum(axis=1) * (b**2).sum(axis=1))))


def test_the_planted_skill_ranks_next_day_returns_and_the_null_does_not(bench):
    rng = np.random.default_rng(0)
    alpha, returns = bench.market(6000, rng)
    assert returns.shape == (6000, bench.N_SYMBOLS)
    # Symbols move together (the common factor) and with fat tails.
    assert np.corrcoef(returns.T)[np.triu_indices(bench.N_SYMBOLS, 1)].mean() > 0.2
    skilled = bench.predictions(alpha, bench.SCENARIOS[2], rng)
    unskilled = bench.predictions(alpha, bench.SCENARIOS[0], rng)
    assert 0.025 < _rank_correlation(skilled, returns) < 0.06
    assert abs(_rank_correlation(unskilled, returns)) < 0.012


def test_every_scenario_tables_its_verdicts_with_their_intervals(bench):
    table = bench.rows(reps=3, n_days=150, truth_days=3000, progress=lambda _: None)
    nulls = [s for s in bench.SCENARIOS if s.truth == "null"]
    assert len(table) == 4 * len(nulls) + 5 * (len(bench.SCENARIOS) - len(nulls))
    for row in table:
        assert row["reps"] == 3 and row["n_dates"] == 150
        assert row["ci"][0] <= row["value"] <= row["ci"][1]
        if row["truth"] == "null":
            assert row["true_sharpe"] == 0.0 and row["measure"] in ("false_call", "coverage")
            assert row["meets"] is not None
        else:
            assert row["true_sharpe"] > 0.5  # skill earns more than its 5 bp costs
    text = bench.markdown(table)
    assert text.count("\n") == len(table) + 1  # a header, a rule and a line per row
