import itertools
import math

import numpy as np
import pytest
from scipy import stats

from finscale.analysis import overfitting
from finscale.analysis.overfitting import (
    PBOSummary,
    null_pbo_values,
    null_quantile,
    null_reference,
    probability_of_backtest_overfitting,
    search_pbo,
)
from finscale.analysis.sharpe import (
    choose_threshold,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe,
    probabilistic_sharpe_ratio,
    sharpe_ratio,
    strategy_returns,
    tranche_returns,
    trial_sharpes,
)


def _brute_force_pbo(losses, blocks):
    pieces = np.array_split(np.arange(losses.shape[0]), blocks)
    logits = []
    for chosen in itertools.combinations(range(blocks), blocks // 2):
        inside = np.concatenate([pieces[i] for i in chosen])
        outside = np.concatenate([pieces[i] for i in range(blocks) if i not in chosen])
        winner = int(np.argmin(losses[inside].mean(axis=0)))
        # rank 1 = worst out-of-sample performance (highest loss), ties averaged
        rank = stats.rankdata(-losses[outside].mean(axis=0))[winner]
        omega = rank / (losses.shape[1] + 1)
        logits.append(math.log(omega / (1 - omega)))
    logits = np.array(logits)
    return float(np.mean(logits < 0) + 0.5 * np.mean(logits == 0)), logits


@pytest.mark.parametrize("n_trials,blocks", [(5, 6), (4, 4), (7, 8)])
def test_pbo_equals_a_brute_force_reference(n_trials, blocks):
    rng = np.random.default_rng(n_trials)
    losses = rng.normal(0.69, 0.1, size=(61, n_trials))
    result = probability_of_backtest_overfitting(losses, blocks)
    value, logits = _brute_force_pbo(losses, blocks)
    assert result.value == pytest.approx(value)
    np.testing.assert_allclose(result.logits, logits)
    assert result.combinations == math.comb(blocks, blocks // 2)
    assert (result.blocks, result.trials) == (blocks, n_trials)


def test_pure_noise_trials_overfit_half_the_time():
    values, slopes = [], []
    for seed in range(8):
        losses = np.random.default_rng(seed).normal(0.69, 0.1, size=(800, 20))
        result = probability_of_backtest_overfitting(losses, 16)
        values.append(result.value)
        slopes.append(result.degradation_slope)
    assert np.mean(values) == pytest.approx(0.5, abs=0.1)
    # in-sample luck is paid back out of sample
    assert np.mean(slopes) < 0


def test_one_truly_better_trial_gives_pbo_near_zero():
    rng = np.random.default_rng(3)
    losses = rng.normal(0.69, 0.1, size=(800, 20))
    losses[:, 7] -= 0.05
    result = probability_of_backtest_overfitting(losses, 16)
    assert result.value < 0.02
    assert result.summary().value == result.value


def test_pbo_rejects_odd_blocks_and_too_few_trials():
    losses = np.zeros((40, 3))
    with pytest.raises(ValueError, match="even"):
        probability_of_backtest_overfitting(losses, 5)
    with pytest.raises(ValueError, match="2 trials"):
        probability_of_backtest_overfitting(losses[:, :1], 4)
    with pytest.raises(ValueError, match="exceed"):
        probability_of_backtest_overfitting(losses[:3], 4)


def test_tranche_returns_by_hand():
    r = np.array([0.01, -0.02, 0.03, 0.04])
    out = tranche_returns([1, 1, 0, 0], r, horizon_days=2, cost_bps=10)
    position = np.array([0.5, 1.0, 0.5, 0.0])
    expected = position * r - 0.001 * np.array([0.5, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(out, expected)
    np.testing.assert_allclose(
        strategy_returns([0.9, 0.6, 0.2, 0.1], r, 0.5, horizon_days=2, cost_bps=10), expected
    )


def test_sharpe_of_a_flat_strategy_is_zero_and_annualises_by_sqrt_252():
    assert sharpe_ratio(np.zeros(10)) == 0.0
    r = np.random.default_rng(0).normal(0.001, 0.01, 500)
    assert sharpe_ratio(r) == pytest.approx(sharpe_ratio(r, annualise=False) * math.sqrt(252))


def test_threshold_chosen_on_validation_trades_the_informative_days():
    rng = np.random.default_rng(4)
    r = rng.normal(0, 0.01, 600)
    # probabilities above 0.6 mark the up days, the others are noise below it
    p = np.where(r > 0, rng.uniform(0.6, 0.7, 600), rng.uniform(0.3, 0.59, 600))
    threshold = choose_threshold(p, r, horizon_days=1, cost_bps=0)
    assert 0.5 <= threshold < 0.6
    chosen = sharpe_ratio(strategy_returns(p, r, threshold, 1, 0))
    oracle = sharpe_ratio(strategy_returns(p, r, 0.595, 1, 0))
    assert chosen > 0.8 * oracle > sharpe_ratio(r)


def test_expected_max_sharpe_matches_simulated_maxima():
    simulated = np.random.default_rng(5).normal(0, 0.3, size=(20_000, 100)).max(axis=1).mean()
    assert expected_max_sharpe(100, 0.09) == pytest.approx(simulated, rel=0.03)
    assert expected_max_sharpe(1, 0.09) == 0.0


def test_deflated_sharpe_of_the_luckiest_noise_trial_is_near_chance():
    rng = np.random.default_rng(6)
    dsr, psr = [], []
    for _ in range(200):
        returns = rng.normal(0, 0.01, size=(30, 500))
        sharpes = sharpe_ratio(returns, annualise=False)
        best = int(np.argmax(sharpes))
        dsr.append(deflated_sharpe_ratio(returns[best], sharpes).value)
        psr.append(probabilistic_sharpe_ratio(returns[best], 0.0))
    assert np.mean(dsr) == pytest.approx(0.5, abs=0.15)
    assert np.mean(np.array(dsr) > 0.95) < 0.1
    # undeflated, the same luck looks like skill
    assert np.mean(psr) > 0.9


def test_deflated_sharpe_of_a_skilled_strategy_is_high():
    rng = np.random.default_rng(7)
    trials = rng.normal(0, 0.01, size=(30, 2000))
    skilled = rng.normal(0.002, 0.01, size=2000)  # 3.2 a year
    result = deflated_sharpe_ratio(skilled, sharpe_ratio(trials, annualise=False))
    assert result.value > 0.95
    assert result.trials == 30


def _noisy_trials(rng, y, n_trials, skill):
    """Predictions of n_trials trials; trial 0 leans `skill` towards the label."""
    p = np.clip(rng.normal(0.5, 0.05, size=(n_trials, y.size)), 0.01, 0.99)
    p[0] = np.clip(p[0] + skill * (y - 0.5), 0.01, 0.99)
    return p


def test_search_pbo_of_label_predictions_finds_the_planted_trial_and_noise():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 640)
    planted = search_pbo(y, _noisy_trials(rng, y, 12, skill=0.2), 16)
    noise = [search_pbo(y, _noisy_trials(rng, y, 12, skill=0.0), 16).value for _ in range(24)]
    assert planted.value < 0.05
    assert (planted.blocks, planted.trials) == (16, 12)
    assert sum(planted.logit_histogram.counts) == planted.combinations
    assert np.mean(noise) == pytest.approx(0.5, abs=0.12)


def test_search_pbo_says_why_it_cannot_judge_a_search():
    y = np.array([0, 1] * 20)
    one = search_pbo(y, np.full((1, 40), 0.5), 16)
    assert one.value is None and "1 with stored predictions" in one.skipped
    short = search_pbo(y[:10], np.full((3, 10), 0.5), 16)
    assert short.value is None and "cannot be cut into 16 blocks" in short.skipped


def test_trial_sharpes_rank_an_informed_trial_above_noise():
    rng = np.random.default_rng(9)
    r = rng.normal(0, 0.01, 500)
    informed = np.where(r > 0, 0.7, 0.3) + rng.normal(0, 0.02, 500)
    noise = rng.uniform(0.3, 0.7, size=(5, 500))
    sharpes = trial_sharpes(np.vstack([informed, noise]), r, horizon_days=1, cost_bps=1)
    assert sharpes.shape == (6,)
    assert sharpes[0] > 5 * sharpes[1:].max()


def test_search_pbo_of_a_panel_cuts_dates_not_samples():
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 2 * 320)
    predictions = _noisy_trials(rng, y, 8, skill=0.1)
    dates = np.tile(np.arange(320), 2)  # two symbols, the same 320 dates
    panel = search_pbo(y, predictions, 16, dates, null_simulations=100)
    from finscale.analysis.bootstrap import sample_log_loss

    per_date = sample_log_loss(y, predictions).T.reshape(2, 320, 8).mean(axis=0)
    assert panel.value == probability_of_backtest_overfitting(per_date, 16).value


def test_identical_trials_tie_within_tolerance_and_count_half():
    rng = np.random.default_rng(12)
    base = rng.normal(0.69, 0.1, size=(64, 1))
    # the same trial twice, its sums differing only by rounding: every split is a tie
    losses = np.hstack([base, base * (1 + 1e-13)])
    result = probability_of_backtest_overfitting(losses, 8)
    np.testing.assert_array_equal(result.logits, 0.0)
    assert result.value == 0.5
    # a real difference is not a tie
    apart = probability_of_backtest_overfitting(np.hstack([base, base + 1e-3]), 8)
    assert apart.value == 0.0


def test_a_loss_shared_by_all_trials_on_a_date_changes_no_pbo():
    rng = np.random.default_rng(13)
    losses = rng.normal(0, 0.1, size=(320, 10))
    shared = rng.normal(0.69, 0.5, size=(320, 1))  # a hard day is hard for every trial
    plain, with_shared = (
        probability_of_backtest_overfitting(x, 8) for x in (losses, losses + shared)
    )
    np.testing.assert_allclose(with_shared.logits, plain.logits)
    assert with_shared.value == plain.value


def test_null_reference_is_ordered_reproducible_and_matches_simulating_every_date():
    reference = null_reference(4, 40, 6)
    assert 0 <= reference.q05 < reference.q50 < reference.q95 <= 1
    assert reference.simulations == 1000
    values = null_pbo_values(4, 40, 6)
    assert values is null_pbo_values(4, 40, 6)  # cached per shape
    overfitting._null_pbo_values.cache_clear()
    np.testing.assert_array_equal(null_pbo_values(4, 40, 6), values)  # a fixed seed
    # Drawing block sums is drawing every date: the PBOs of full noise matrices agree.
    rng = np.random.default_rng(14)
    full = [
        probability_of_backtest_overfitting(rng.normal(size=(40, 4)), 6).value for _ in range(400)
    ]
    assert stats.ks_2samp(full, values).pvalue > 0.01
    assert abs(np.mean(values) - 0.5) < 0.02


def test_null_quantile_is_the_share_below_with_ties_half():
    values = np.array([0.1, 0.2, 0.2, 0.4])
    assert null_quantile(0.2, values) == pytest.approx((1 + 0.5 * 2) / 4)
    assert null_quantile(0.05, values) == 0.0
    assert null_quantile(0.5, values) == 1.0


def test_a_skilled_search_falls_below_the_null_and_noise_does_not():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 640)
    planted = search_pbo(y, _noisy_trials(rng, y, 12, skill=0.2), 16)
    reference = planted.null_reference
    assert reference.q05 < reference.q50 < reference.q95
    assert planted.value < reference.q05 and planted.beats_null
    assert planted.null_quantile < 0.05
    noise = search_pbo(y, _noisy_trials(rng, y, 12, skill=0.0), 16)
    assert noise.null_reference == reference  # the same shape, the same reference
    assert 0 < noise.null_quantile < 1
    # an old file's PBO, without a reference, makes no call
    assert not PBOSummary.from_dict({**planted.to_dict(), "null_reference": None}).beats_null
    assert PBOSummary.from_dict(planted.to_dict()) == planted


def test_psr_and_its_interval_match_a_hand_computation():
    r = np.array([0.012, -0.004, 0.007, 0.001, -0.009, 0.015, 0.003, -0.002, 0.006, 0.0])
    mean, sd = r.mean(), r.std(ddof=1)
    sr = mean / sd
    m2 = ((r - mean) ** 2).mean()
    skew = ((r - mean) ** 3).mean() / m2**1.5
    kurt = ((r - mean) ** 4).mean() / m2**2
    se = math.sqrt((1 - skew * sr + (kurt - 1) / 4 * sr**2) / (r.size - 1))
    psr = probabilistic_sharpe(r, level=0.9)
    assert psr.value == pytest.approx(stats.norm.cdf(sr / se), rel=1e-12)
    assert psr.value == probabilistic_sharpe_ratio(r, 0.0)
    z = stats.norm.ppf(0.95)
    assert psr.interval == pytest.approx((sr - z * se, sr + z * se), rel=1e-12)
    assert psr.annualised_interval == pytest.approx(
        (math.sqrt(252) * (sr - z * se), math.sqrt(252) * (sr + z * se)), rel=1e-12
    )
    assert (psr.n_days, psr.level, psr.benchmark_sharpe) == (10, 0.9, 0.0)
    assert psr.sharpe == pytest.approx(sr)
    # the DSR uses the same standard error, against SR_0 instead of zero
    trials = np.array([0.01, 0.05, -0.03, 0.08])
    dsr = deflated_sharpe_ratio(r, trials)
    assert dsr.value == pytest.approx(stats.norm.cdf((sr - dsr.benchmark_sharpe) / se), rel=1e-12)
    assert (dsr.n_days, dsr.trials) == (10, 4)
    assert dsr.trial_sharpe_spread == pytest.approx(trials.std(ddof=1))
