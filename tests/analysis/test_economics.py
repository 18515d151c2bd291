"""The economic illustration of a budget's winner: the long/flat signal pooled over
seeds and folds, its Sharpe interval and PSR on test, and the Deflated Sharpe Ratio
of the winner's validation series."""

import numpy as np
import pytest
from scipy import stats

from finscale.analysis.bootstrap import stratified_bootstrap_indices
from finscale.analysis.economics import economic_view, pooled_returns
from finscale.analysis.records import EvaluationRun, SearchTrials, Winner
from finscale.analysis.sharpe import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    trial_returns,
    trial_sharpes,
)

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


def _skilled_search(rng, skills, days=2000):
    """A search on `days` validation dates whose trial k is right on a share skills[k]
    of them (trial 0 is WINNER's)."""
    r = rng.normal(0.0003, 0.01, days)
    predictions = {}
    for k, skill in enumerate(skills):
        informed = rng.random(days) < skill
        p = np.where(informed, 0.5 + 0.1 * np.sign(r), 0.5) + rng.normal(0, 0.05, days)
        predictions[k] = tuple(np.clip(p, 0.01, 0.99))
    labels = tuple((r > 0).astype(int))
    return SearchTrials("s", (), labels, tuple(r), predictions, len(skills))


def _indices():
    return stratified_bootstrap_indices([DAYS, DAYS], 10, 300, 0)


def test_an_informed_winner_has_a_sharpe_interval_above_zero_and_a_high_psr():
    rng = np.random.default_rng(0)
    runs = _runs(rng, skill=0.2)
    daily, thresholds = pooled_returns(runs, 1, 1.0)
    assert daily.shape == (2 * DAYS,) and len(thresholds) == 2 and len(thresholds[0]) == 2
    sharpe, dsr, psr = economic_view(runs, _search(rng), 1, 1.0, _indices(), 0.95)
    assert sharpe.interval[0] > 0 and sharpe.value > 3
    assert psr.value > 0.99 and psr.n_days == 2 * DAYS
    assert psr.annualised_sharpe == pytest.approx(sharpe.value)
    low, high = psr.annualised_interval
    assert 0 < low < sharpe.value < high
    # the search's trials, its winner among them, were noise on validation: the test
    # edge does not make the selected validation edge more than luck
    assert dsr.value < 0.95 and dsr.trials == 20 and dsr.trial == 0 and dsr.n_days == DAYS


def test_dsr_deflates_the_winners_validation_sharpe_not_the_test_one():
    rng = np.random.default_rng(0)
    search = _skilled_search(rng, np.linspace(0.3, 0.0, 20))  # trial 0, the winner, best
    runs = _runs(rng, skill=0.008)  # a modest real edge on test
    sharpe, dsr, psr = economic_view(runs, search, 1, 1.0, _indices(), 0.95)
    # by hand: the winner's validation series at its best threshold, its moments, SR_0
    val_r = np.array(search.next_day_returns)
    trials = np.array([search.predictions[k] for k in range(20)])
    sharpes = trial_sharpes(trials, val_r, 1, 1.0)
    winner_path = trial_returns(trials[:1], val_r, 1, 1.0)[0]
    sr = winner_path.mean() / winner_path.std(ddof=1)
    skew, kurt = stats.skew(winner_path), stats.kurtosis(winner_path, fisher=False)
    shifted = np.roll(val_r, val_r.size // 2)  # no skill: what the threshold choice gives
    null_sharpe = trial_sharpes(trials, shifted, 1, 1.0).mean()
    assert null_sharpe > 0 and dsr.null_sharpe == pytest.approx(null_sharpe)
    sr_0 = null_sharpe + expected_max_sharpe(20, sharpes.var(ddof=1))
    z = (sr - sr_0) * np.sqrt(winner_path.size - 1)
    z /= np.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    assert dsr.value == pytest.approx(stats.norm.cdf(z), rel=1e-9) and dsr.value > 0.99
    assert dsr.sharpe == pytest.approx(sr) and dsr.n_days == 2000 and dsr.trial == 0
    assert dsr.benchmark_sharpe == pytest.approx(sr_0)
    assert dsr.annualised_sharpe > dsr.annualised_benchmark_sharpe
    # deflating the test Sharpe ratio by the validation trials, as before, called it ~0
    daily, _ = pooled_returns(runs, 1, 1.0)
    assert deflated_sharpe_ratio(daily, sharpes).value < 0.05
    assert 0 < sharpe.value < dsr.annualised_benchmark_sharpe
    assert 0.5 < psr.value < 1


def test_a_noise_winner_is_not_called_skilled():
    rng = np.random.default_rng(1)
    values, psrs, covered = [], [], 0
    for _ in range(10):
        sharpe, dsr, psr = economic_view(_runs(rng, 0.0), _search(rng), 1, 1.0, _indices(), 0.95)
        values.append(dsr.value)
        psrs.append(psr.value)
        low, high = sharpe.interval
        covered += low < 0.0 < high
    assert np.mean(np.array(values) > 0.95) <= 0.2
    assert np.mean(np.array(psrs) > 0.95) <= 0.2
    # A 95% interval of a skill-free signal holds zero in all but the odd draw.
    assert covered >= 9


def test_runs_without_returns_and_searches_without_predictions_say_why():
    rng = np.random.default_rng(2)
    sharpe, dsr, psr = economic_view(
        _runs(rng, 0.1, with_returns=False), None, 1, 1.0, _indices(), 0.95
    )
    assert sharpe.value is None and "next-day returns" in sharpe.skipped
    assert psr.value is None and "next-day returns" in psr.skipped
    runs = _runs(rng, 0.1)
    sharpe, dsr, psr = economic_view(runs, None, 1, 1.0, _indices(), 0.95)
    daily, _ = pooled_returns(runs, 1, 1.0)  # the Sharpe is still given: mean / sd, annualised
    assert sharpe.value == pytest.approx(daily.mean() / daily.std(ddof=1) * np.sqrt(252))
    assert dsr.value is None and dsr.trials == 0 and "predictions" in dsr.skipped
    assert psr.value is not None  # the PSR needs no search
    search = _search(rng)
    without_winner = SearchTrials(
        **{**search.__dict__, "predictions": {k: v for k, v in search.predictions.items() if k}}
    )
    _, dsr, _ = economic_view(runs, without_winner, 1, 1.0, _indices(), 0.95)
    assert dsr.value is None and "trial 0" in dsr.skipped
