"""A panel's long-short illustration: weights from ranked probabilities, turnover,
net returns, and the figures of a budget's runs against the logistic baseline."""

import numpy as np
import pytest

from finscale.analysis.folds import Horizon
from finscale.analysis.long_short import (
    LongShortView,
    leg_size,
    long_short_returns,
    long_short_weights,
    panel_long_short,
    panel_matrix,
    portfolio_returns,
    sharpe_interval,
    turnover,
)
from finscale.analysis.records import EvaluationRun, SearchTrials, Winner
from finscale.analysis.scaling_json import ScalingResults, ScalingRow
from finscale.analysis.sharpe import deflated_sharpe_of_count, expected_max_sharpe, sharpe_ratio
from finscale.config import ScaleConfig

WINNER = Winner("s", 1000, 1, 0, 0.69, {"param_count": 10, "index": 0}, {})


def test_five_symbols_of_known_rank_get_known_weights_and_turnover():
    # Two dates, five symbols; quantile 0.2 of five is one symbol per leg.
    p = np.array([[0.1, 0.9, 0.5, 0.3, 0.7], [0.9, 0.1, 0.5, 0.3, 0.7]])
    w = long_short_weights(p, 0.2, 1)
    np.testing.assert_array_equal(w, [[-1, 1, 0, 0, 0], [1, -1, 0, 0, 0]])
    # Entry from flat trades 2; swapping the legs trades 4.
    np.testing.assert_array_equal(turnover(w), [2.0, 4.0])
    # quantile 0.4: two per leg, each at half the leg's capital.
    w = long_short_weights(p[:1], 0.4, 1)
    np.testing.assert_array_equal(w, [[-0.5, 0.5, 0, -0.5, 0.5]])


def test_weights_are_held_between_rebalances_and_unranked_symbols_sit_out():
    p = np.array(
        [
            [0.1, 0.9, 0.5, 0.3, np.nan],  # the last symbol has no prediction
            [0.9, 0.1, 0.5, 0.3, 0.7],  # no rebalance: yesterday's weights
            [0.9, 0.1, 0.5, 0.3, 0.7],  # rebalance (every 2 dates)
        ]
    )
    w = long_short_weights(p, 0.25, 2)  # 0.25 of 4 ranked: one per leg
    np.testing.assert_array_equal(w[0], [-1, 1, 0, 0, 0])
    np.testing.assert_array_equal(w[1], w[0])
    np.testing.assert_array_equal(w[2], [1, -1, 0, 0, 0])  # 0.25 of 5 still rounds to one
    np.testing.assert_array_equal(turnover(w), [2.0, 0.0, 4.0])
    assert [leg_size(n, 0.2) for n in (0, 1, 2, 5, 9, 10, 20)] == [0, 0, 1, 1, 1, 2, 4]
    assert leg_size(10, 0.3) == 3 and leg_size(3, 0.5) == 1


def test_a_perfect_predictor_earns_the_spread_less_its_costs():
    rng = np.random.default_rng(0)
    returns = rng.normal(0, 0.01, (30, 10))
    w = long_short_weights(returns, 0.2, 1)  # ranked by the very next-day return
    ordered = np.sort(returns, axis=1)
    spread = ordered[:, -2:].mean(axis=1) - ordered[:, :2].mean(axis=1)
    np.testing.assert_allclose(portfolio_returns(w, returns, 0.0), spread)
    net = portfolio_returns(w, returns, 5.0)
    np.testing.assert_allclose(spread - net, 5e-4 * turnover(w))
    # The same from rows (date, symbol, probability, return) in any order.
    dates = np.repeat([f"2020-01-{d + 1:02d}" for d in range(30)], 10)
    symbols = np.tile([f"S{k}" for k in range(10)], 30)
    order = rng.permutation(300)
    daily, traded = long_short_returns(
        dates[order],
        symbols[order],
        returns.ravel()[order],
        returns.ravel()[order],
        0.2,
        1,
        5.0,
    )
    np.testing.assert_allclose(daily, net)
    np.testing.assert_allclose(traded, turnover(w))


def test_panel_matrix_refuses_a_symbol_twice_on_a_date():
    dates, symbols, m = panel_matrix(["d2", "d1", "d1"], ["A", "B", "A"], [1.0, 2.0, 3.0])
    assert list(dates) == ["d1", "d2"] and list(symbols) == ["A", "B"]
    np.testing.assert_array_equal(m, [[3.0, 2.0], [1.0, np.nan]])
    with pytest.raises(ValueError, match="two rows"):
        panel_matrix(["d1", "d1"], ["A", "A"], [1.0, 2.0])


def test_the_dsr_over_a_trial_count_asks_more_of_more_trials():
    rng = np.random.default_rng(1)
    daily = rng.normal(0.001, 0.01, 500)
    one, many = deflated_sharpe_of_count(daily, 1), deflated_sharpe_of_count(daily, 100)
    assert one.benchmark_sharpe == 0.0
    assert many.benchmark_sharpe == pytest.approx(expected_max_sharpe(100, 1 / 499))
    assert many.value < one.value and many.trials == 100


# ---------------------------------------------------------------- a budget's runs

DATES = [f"2021-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 21)]  # 240
SYMBOLS = [f"S{k}" for k in range(10)]


def _panel_runs(rng, skill, seeds=2):
    """Holdout runs of a 10-symbol panel whose predictions rank next-day returns with
    `skill` (0: noise), rows in symbol blocks as a panel dataset orders them."""
    returns = rng.normal(0.0002, 0.01, (len(SYMBOLS), len(DATES)))
    dates = tuple(d for _ in SYMBOLS for d in DATES)
    symbols = tuple(s for s in SYMBOLS for _ in DATES)
    runs = []
    for seed in range(seeds):
        p = 0.5 + skill * np.sign(returns) + rng.normal(0, 0.05, returns.shape)
        p = np.clip(p, 0.01, 0.99).ravel().tolist()
        runs.append(
            EvaluationRun(
                key="k",
                tier="close",
                seed=seed,
                winner=WINNER,
                micro_batch=1,
                accumulation_steps=1,
                effective_batch=1,
                epochs_run=1,
                best_epoch=1,
                stopped_early=False,
                device="cpu",
                dtype="fp32",
                train_seconds=0.0,
                samples_per_second=0.0,
                n_train=5000,
                samples_per_param=500.0,
                val_metrics={"log_loss": 0.69},
                test_metrics={},
                learning_curve=(),
                predictions={"val": [], "test": p},
                labels={"val": [], "test": (returns.ravel() > 0).astype(int).tolist()},
                test_dates=dates,
                next_day_returns={"val": [], "test": returns.ravel().tolist()},
                test_symbols=symbols,
            )
        )
    return runs, returns


def test_a_budgets_long_short_sets_its_winner_beside_the_logistic_baseline():
    rng = np.random.default_rng(2)
    runs, returns = _panel_runs(rng, skill=0.2)
    scale = ScaleConfig(bootstrap_resamples=200)
    h = Horizon(1, {1000: runs}, scale, 0.5)
    assert h.panel
    noise = rng.uniform(0.4, 0.6, returns.size)
    search = SearchTrials("s", (), (), (), {}, complete=30)
    view = panel_long_short(h, runs, noise, search, cost_bps=5.0, quantile=0.2)
    assert (view.quantile, view.cost_bps, view.rebalance_days) == (0.2, 5.0, 1)
    model, logistic = view.model, view.logistic
    assert model.n_days == logistic.n_days == len(DATES)
    # Every day's weights are fresh; entering from flat and swapping both legs trade
    # at most 4 a day.
    assert 0 < model.annual_turnover <= 4 * 252
    # Informed ranks earn the spread; noise earns about nothing but its costs.
    assert model.sharpe_ci[0] > 0 and model.dsr.value > 0.95 and model.dsr.trials == 30
    assert logistic.net_annual_return < 0 and logistic.dsr.value < 0.5
    # The seeds hold equal shares: the budget's return is the seeds' mean.
    per_seed = [
        long_short_returns(
            r.test_dates,
            r.test_symbols,
            r.predictions["test"],
            r.next_day_returns["test"],
            0.2,
            1,
            5.0,
        )[0]
        for r in runs
    ]
    assert model.net_annual_return == pytest.approx(np.mean(per_seed) * 252)
    assert LongShortView.from_dict(view.to_dict()) == view
    # Without the search's records the DSR says why, the rest stands.
    unknown = panel_long_short(h, runs, None, None, 5.0, 0.2)
    assert unknown.logistic is None and unknown.model.dsr.value is None
    assert unknown.model.sharpe == pytest.approx(model.sharpe)


def test_runs_without_symbols_skip_the_long_short_and_say_why():
    rng = np.random.default_rng(3)
    runs, _ = _panel_runs(rng, skill=0.0, seeds=1)
    h = Horizon(1, {1000: runs}, ScaleConfig(bootstrap_resamples=50), 0.5)
    bare = [EvaluationRun(**{**r.__dict__, "test_symbols": None}) for r in runs]
    view = panel_long_short(h, bare, None, None, 1.0, 0.2)
    assert view.model is None and "symbols" in view.skipped
    assert LongShortView.from_dict(view.to_dict()) == view


def test_files_written_before_the_long_short_and_the_label_mode_read_back():
    rng = np.random.default_rng(4)
    runs, _ = _panel_runs(rng, skill=0.1, seeds=1)
    h = Horizon(1, {1000: runs}, ScaleConfig(bootstrap_resamples=50), 0.5)
    view = panel_long_short(h, runs, None, None, 1.0, 0.2)
    row = {
        "budget": 1000,
        "budget_label": "1K",
        "study": "s",
        "hpo_trial": 0,
        "hpo_val_log_loss": 0.69,
        "architecture": {},
        "param_count": 10,
        "params": {},
        "n_train": 100,
        "samples_per_param": 10.0,
        "data_limited": False,
        "seeds": 1,
        "epochs": [1],
        "metrics": {},
        "val_log_loss": [0.69],
        "vs_baselines": {},
        "calibration": {"methods": {}, "best": None, "reliability": {}},
    }
    old = ScalingRow.from_dict(row)
    assert old.long_short is None and "long_short" not in old.to_dict()
    new = ScalingRow.from_dict({**row, "long_short": view.to_dict()})
    assert new.long_short == view
    assert ScalingRow.from_dict(new.to_dict()) == new
    results = {
        "study": "s",
        "tier": "close",
        "target": "A, B",
        "confidence_level": 0.95,
        "seeds": 1,
        "config": {},
        "horizons": {},
        "warnings": [],
    }
    assert ScalingResults.from_dict(results).label_mode == "absolute"
    relative = ScalingResults.from_dict({**results, "label_mode": "relative"})
    assert relative.label_mode == "relative" and relative.to_dict()["label_mode"] == "relative"


# ---------------------------------------------------------------- the Sharpe interval


def test_the_sharpe_interval_is_as_wide_as_the_sharpe_ratios_sampling_spread():
    rng = np.random.default_rng(5)
    daily = rng.normal(0.0006, 0.01, 2000)  # an annualised Sharpe ratio near 0.95
    low, high = sharpe_interval(daily, [700, 700, 600], 5, 0.95, 1000)
    assert low < sharpe_ratio(daily) < high
    # Normal returns: se(SR) = sqrt((1 + SR^2 / 2) / T) a day, x sqrt(252) a year.
    daily_sharpe = sharpe_ratio(daily, annualise=False)
    spread = np.sqrt((1 + daily_sharpe**2 / 2) / daily.size * 252)
    assert high - low == pytest.approx(2 * 1.96 * spread, rel=0.12)
    # The same arguments draw the same dates; another seed draws others.
    assert sharpe_interval(daily, [700, 700, 600], 5, 0.95, 1000) == (low, high)
    assert sharpe_interval(daily, [700, 700, 600], 5, 0.95, 1000, seed=1) != (low, high)


def test_the_sharpe_interval_redraws_each_fold_within_itself():
    # Each fold constant: a draw within each fold keeps every fold's days, so every
    # resample has the sample's Sharpe ratio; draws across folds would not.
    daily = np.concatenate([np.full(30, 0.01), np.full(70, -0.005)])
    low, high = sharpe_interval(daily, [30, 70], [3, 7], 0.9, 200)
    assert low == pytest.approx(sharpe_ratio(daily)) and high == pytest.approx(low)
    pooled_low, pooled_high = sharpe_interval(daily, [100], 3, 0.9, 200)
    assert pooled_high - pooled_low > 1.0
    with pytest.raises(ValueError, match="sum"):
        sharpe_interval(daily, [30, 60], 3, 0.9, 200)
