"""The economic illustration of a budget's winner: the long/flat signal pooled over
seeds and folds, its Sharpe interval and its Deflated Sharpe Ratio."""

import numpy as np
import pytest

from finscale.analysis.bootstrap import stratified_bootstrap_indices
from finscale.analysis.economics import economic_view, pooled_returns
from finscale.analysis.records import EvaluationRun, SearchTrials, Winner

WINNER = Winner("s", 1000, 1, 0, 0.69, {"param_count": 10, "index": 0}, {})
DAYS = 400  # per fold, validation and test alike


def _run(seed, fold, rng, skill, with_returns=True):
    def split():
        r = rng.normal(0.0003, 0.01, DAYS)
        p = np.clip(0.5 + skill * np.sign(r) + rng.normal(0, 0.05, DAYS), 0.01, 0.99)
        return p.tolist(), r.tolist()

    (p_val, r_val), (p_test, r_test) = split(), split()
    return EvaluationRun(
        key="k",
        tier="core",
        seed=seed,
        winner=WINNER,
        micro_batch=1,
        accumulation_steps=1,
        effective_batch=1,
        epochs_run=1,
        best_epoch=1,
        stopped_early=False,
        device="cpu",
        dtype="float32",
        train_seconds=0.0,
        samples_per_second=0.0,
        n_train=100,
        samples_per_param=10.0,
        val_metrics={},
        test_metrics={},
        learning_curve=(),
        predictions={"val": p_val, "test": p_test},
        labels={"val": [0] * DAYS, "test": [0] * DAYS},
        test_dates=(),
        fold=fold,
        next_day_returns={"val": r_val, "test": r_test} if with_returns else None,
    )


def _runs(rng, skill, **kwargs):
    # Seeds of one fold trade the same dates: the second seed reuses the first's returns.
    runs = []
    for fold in range(2):
        first = _run(0, fold, rng, skill, **kwargs)
        second = _run(1, fold, rng, skill, **kwargs)
        if first.next_day_returns:
            second = EvaluationRun(
                **{**second.__dict__, "next_day_returns": first.next_day_returns}
            )
        runs += [first, second]
    return runs


def _search(rng, n_trials=20):
    r = rng.normal(0.0003, 0.01, DAYS)
    predictions = {k: tuple(rng.uniform(0.4, 0.6, DAYS)) for k in range(n_trials)}
    return SearchTrials("s", (), (0,) * DAYS, tuple(r), predictions, n_trials)


def _indices():
    return stratified_bootstrap_indices([DAYS, DAYS], 10, 300, 0)


def test_an_informed_winner_has_a_sharpe_interval_above_zero_and_a_high_dsr():
    rng = np.random.default_rng(0)
    runs = _runs(rng, skill=0.2)
    daily, thresholds = pooled_returns(runs, 1, 1.0)
    assert daily.shape == (2 * DAYS,) and len(thresholds) == 2 and len(thresholds[0]) == 2
    sharpe, dsr = economic_view(runs, _search(rng), 1, 1.0, _indices(), 0.95)
    assert sharpe.interval[0] > 0 and sharpe.value > 3
    assert dsr.value > 0.95 and dsr.trials == 20


def test_a_noise_winner_is_not_called_skilled():
    rng = np.random.default_rng(1)
    values, covered = [], 0
    for _ in range(10):
        sharpe, dsr = economic_view(_runs(rng, 0.0), _search(rng), 1, 1.0, _indices(), 0.95)
        values.append(dsr.value)
        low, high = sharpe.interval
        covered += low < 0.0 < high
    assert np.mean(np.array(values) > 0.95) <= 0.2
    # A 95% interval of a skill-free signal holds zero in all but the odd draw.
    assert covered >= 9


def test_runs_without_returns_and_searches_without_predictions_say_why():
    rng = np.random.default_rng(2)
    sharpe, dsr = economic_view(_runs(rng, 0.1, with_returns=False), None, 1, 1.0, _indices(), 0.95)
    assert sharpe.value is None and "next-day returns" in sharpe.skipped
    runs = _runs(rng, 0.1)
    sharpe, dsr = economic_view(runs, None, 1, 1.0, _indices(), 0.95)
    daily, _ = pooled_returns(runs, 1, 1.0)  # the Sharpe is still given: mean / sd, annualised
    assert sharpe.value == pytest.approx(daily.mean() / daily.std(ddof=1) * np.sqrt(252))
    assert dsr.value is None and dsr.trials == 0 and "predictions" in dsr.skipped
