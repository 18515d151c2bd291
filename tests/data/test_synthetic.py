"""The planted-scaling market: prices through the real pipeline, labels drawn from a
known teacher, and the Bayes log loss that knowing p gives."""

import numpy as np
import pandas as pd
import pytest
import torch

from finscale.config import DataConfig, SyntheticConfig
from finscale.data import build_dataset
from finscale.data.controls import LABEL_PROBABILITY
from finscale.data.splits import TRAIN
from finscale.data.synthetic import (
    Teacher,
    bayes_log_loss,
    binary_entropy,
    random_walk,
    synthetic_market,
)
from finscale.data.validate import OHLCV, validate_ohlcv

SMALL = {"symbols": 2, "days": 700, "teacher_width": 8, "teacher_days": 4}


@pytest.fixture(scope="module")
def planted():
    return build_dataset(DataConfig(source="synthetic", synthetic=SMALL, context_days=32))


def test_the_market_is_valid_bars_with_volatility_clustering():
    market = synthetic_market(SyntheticConfig(symbols=2, days=2000, seed=3))
    assert list(market) == ["SYN001", "SYN002"]
    bars = validate_ohlcv(market["SYN001"], "SYN001", OHLCV)  # raises on a bad bar
    returns = np.diff(np.log(bars["Close"].to_numpy()))
    assert 0.005 < returns.std() < 0.02
    squared = pd.Series(returns**2)
    assert squared.autocorr(1) > 0.05  # GARCH: large moves cluster
    assert (bars["High"] >= bars[["Open", "Close"]].max(axis=1)).all()
    again = synthetic_market(SyntheticConfig(symbols=2, days=2000, seed=3))
    pd.testing.assert_frame_equal(market["SYN002"], again["SYN002"])
    other = synthetic_market(SyntheticConfig(symbols=1, days=2000, seed=4))
    assert not np.allclose(other["SYN001"]["Close"], market["SYN001"]["Close"])


def test_bayes_log_loss_matches_a_monte_carlo_of_labels_drawn_from_p():
    rng = np.random.default_rng(0)
    p = 1 / (1 + np.exp(-rng.normal(0.3, 2.0, 400)))
    draws = rng.random((2000, p.size)) < p
    losses = -np.where(draws, np.log(p), np.log1p(-p)).mean(axis=1)
    se = losses.std() / np.sqrt(len(losses))
    assert abs(losses.mean() - bayes_log_loss(p)) < 4 * se
    assert binary_entropy(np.array([0.0, 0.5, 1.0])) == pytest.approx([0.0, np.log(2), 0.0])


def test_the_teacher_is_scaled_to_its_signal_and_base_rate():
    windows = np.random.default_rng(1).normal(size=(5000, 4, 25))
    teacher = Teacher(width=16, signal=2.0, seed=5, base_rate=0.3).fit(windows)
    p = teacher.probabilities(windows)
    logits = np.log(p / (1 - p))
    assert logits.std() == pytest.approx(2.0, rel=1e-6)
    assert p.mean() == pytest.approx(0.3, abs=1e-6)
    # one fixed function: other windows do not rescale it
    assert teacher.probabilities(windows[:10]) == pytest.approx(p[:10])
    flat = windows.reshape(len(windows), -1)
    # even in the window: no linear part a logistic regression could find
    slope = np.linalg.lstsq(np.c_[np.ones(len(flat)), flat], logits, rcond=None)[0][1:]
    assert np.abs(flat @ slope).std() < 0.25 * logits.std()


def test_planted_labels_follow_their_probabilities_on_the_built_dataset(planted):
    p = planted.label_probabilities()
    labels = planted.table["label"].to_numpy()
    labelled = ~np.isnan(labels)
    assert np.array_equal(labelled, ~np.isnan(p))
    windows = planted.table["split"].to_numpy() >= TRAIN
    assert p[windows].std() > 0.05  # the teacher says something
    drawn, known = labels[windows], p[windows]
    loss = -np.where(drawn == 1, np.log(known), np.log1p(-known))
    assert abs(loss.mean() - bayes_log_loss(known)) < 4 * loss.std() / np.sqrt(loss.size)
    summary = planted.summary()
    train = summary["splits"]["train"]
    assert train["bayes_log_loss"] == pytest.approx(bayes_log_loss(p[planted.table["split"] == 0]))
    assert train["bayes_log_loss"] < np.log(2) - 0.05
    assert summary["planted"]["teacher_width"] == 8
    assert planted.entry["bayes_log_loss"]["train"] == train["bayes_log_loss"]
    assert LABEL_PROBABILITY not in planted.model_ready().columns


def test_every_knob_of_the_market_changes_the_dataset(planted):
    base = {"source": "synthetic", "context_days": 32}
    for change in ({"seed": 1}, {"signal": 1.0}, {"teacher_width": 9}, {"base_rate": 0.4}):
        other = build_dataset(DataConfig(**base, synthetic={**SMALL, **change}))
        assert other.key != planted.key
        assert not np.array_equal(
            other.table["label"].to_numpy(), planted.table["label"].to_numpy(), equal_nan=True
        )


def test_a_student_of_the_teachers_architecture_reaches_the_bayes_loss():
    """The planted rule is learnable: a model of the teacher's own form (a width-w
    quadratic layer on the window), trained long on many samples, scores its
    held-out labels within noise of the Bayes loss."""
    rng = np.random.default_rng(2)
    windows = rng.normal(size=(60_000, 2, 5))
    teacher = Teacher(width=4, signal=3.0, seed=0).fit(windows)
    p = teacher.probabilities(windows)
    y = (rng.random(len(p)) < p).astype(np.float32)
    x = torch.tensor(windows.reshape(len(windows), -1), dtype=torch.float32)
    target = torch.tensor(y)
    train, test = slice(0, 50_000), slice(50_000, None)
    torch.manual_seed(0)
    directions = torch.nn.Parameter(torch.randn(x.shape[1], 8) * 0.3)
    weights = torch.nn.Parameter(torch.zeros(8))
    bias = torch.nn.Parameter(torch.zeros(()))
    optimizer = torch.optim.Adam([directions, weights, bias], lr=0.03)
    for _ in range(400):
        optimizer.zero_grad()
        logits = (x[train] @ directions) ** 2 @ weights + bias
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target[train])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        logits = (x[test] @ directions) ** 2 @ weights + bias
        per_sample = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, target[test], reduction="none"
        ).numpy()
    truth = -np.where(y[test] == 1, np.log(p[test]), np.log1p(-p[test]))
    gap = per_sample - truth
    assert gap.mean() < 3 * gap.std() / np.sqrt(gap.size) + 0.005
    assert bayes_log_loss(p[test]) < np.log(2) - 0.1


def test_a_random_walk_keeps_the_dates_scale_and_start_and_forgets_the_rest():
    real = synthetic_market(SyntheticConfig(symbols=1, days=1500))["SYN001"]
    bars = validate_ohlcv(real, "real", OHLCV)
    walk = random_walk(bars, 7)
    assert walk.index.equals(bars.index)
    validate_ohlcv(walk.reset_index().rename(columns={walk.index.name: "Date"}), "walk", OHLCV)
    real_returns = np.diff(np.log(bars["Close"].to_numpy()))
    returns = np.diff(np.log(walk["Close"].to_numpy()))
    assert returns.std() == pytest.approx(real_returns.std(), rel=0.1)
    assert walk["Close"].iloc[0] == pytest.approx(bars["Close"].iloc[0])
    assert abs(pd.Series(returns**2).autocorr(1)) < 0.08  # no volatility clustering
