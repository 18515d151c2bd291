"""The study's duration: epochs priced from the model's own costs, fitted on a few."""

import math

import numpy as np
import pytest

from finscale.config import ModelConfig
from finscale.hpo.duration import (
    StudyClock,
    corner_architectures,
    epoch_cost,
    fit_duration_model,
    study_duration,
)
from finscale.model.grid import build_grid, plan_grid

TRUE = (2e-3, 4e-4, 3e-11, 2e-11)  # seconds per micro-batch, layer pass, FLOP, byte


@pytest.fixture(scope="module")
def costs():
    grid = build_grid("2M", ModelConfig())
    planned = plan_grid(grid, 128, 8 * 2**30)
    return planned, {p.architecture.index: epoch_cost(p, 3000, 600, 128) for p in planned}


def priced(cost):
    return float(np.dot(cost.vector(), TRUE))


def test_corner_architectures_are_the_extremes_each_once(costs):
    planned, _ = costs
    corners = corner_architectures(planned)
    archs = [p.architecture for p in corners]
    assert len({a.index for a in archs}) == len(archs) <= 4
    params = [p.architecture.param_count for p in planned]
    layers = [p.architecture.config.n_layers for p in planned]
    assert archs[0].param_count == min(params) and archs[1].param_count == max(params)
    assert {min(layers), max(layers)} <= {a.config.n_layers for a in archs}


def test_the_fit_on_the_corners_prices_every_architecture(costs):
    planned, by_index = costs
    corners = corner_architectures(planned)
    timed = [by_index[p.architecture.index] for p in corners]
    model = fit_duration_model(timed, [priced(c) for c in timed])
    # Four corners, four costs: the fit finds the prices the epochs were timed at.
    assert model.coefficients == pytest.approx(TRUE, rel=1e-6)
    errors = [abs(model.epoch_seconds(c) / priced(c) - 1) for c in by_index.values()]
    assert max(errors) < 0.05, max(errors)
    # Depth costs time of its own: the deepest model is not the cheapest although it
    # is among the smallest.
    deepest = max(planned, key=lambda p: p.architecture.config.n_layers).architecture
    smallest = min(planned, key=lambda p: p.architecture.param_count).architecture
    assert deepest.index != smallest.index
    assert model.epoch_seconds(by_index[deepest.index]) > model.epoch_seconds(
        by_index[smallest.index]
    )


def test_expected_and_worst_durations(costs):
    _, by_index = costs
    timed = list(by_index.values())[:4]
    model = fit_duration_model(timed, [priced(c) for c in timed])
    duration = study_duration(model, by_index.values(), trials=10, max_epochs=20, workers=3)
    slowest = max(duration.epoch_seconds.values())
    assert duration.worst_s == pytest.approx(math.ceil(10 / 3) * 20 * slowest)
    assert duration.expected_s == pytest.approx(
        10 * 20 * np.mean(list(duration.epoch_seconds.values())) / 3
    )
    assert duration.expected_s < duration.worst_s
    shorter = study_duration(model, by_index.values(), 10, 20, 3, epochs_per_trial=5)
    assert shorter.expected_s == pytest.approx(duration.expected_s / 4)
    assert shorter.worst_s == duration.worst_s


def test_a_fit_needs_one_duration_per_timing(costs):
    _, by_index = costs
    with pytest.raises(ValueError, match="one measured duration"):
        fit_duration_model(list(by_index.values())[:2], [1.0])


def test_the_clock_prices_untried_architectures_from_the_first_trial(costs):
    _, by_index = costs
    clock = StudyClock(by_index, max_epochs=20, workers=2)
    assert clock.remaining_seconds(10) is None  # nothing timed yet
    first, second = list(by_index.values())[:2]
    clock.observe(first.arch_index, [5 * priced(first)] + [priced(first)] * 7)  # a warm-up
    eta_one = clock.remaining_seconds(10)
    # The warm-up epoch is not what is fitted: the first architecture is priced at its
    # median epoch, and every architecture runs the 8 epochs the one trial ran.
    one = fit_duration_model([first], [priced(first)])
    mean_epoch = np.mean([one.epoch_seconds(c) for c in by_index.values()])
    assert eta_one == pytest.approx(10 * 8 * mean_epoch / 2)
    clock.observe(second.arch_index, [priced(second)] * 4)
    clock.observe(None, [])  # a reused duplicate: no epochs
    mean_epochs = (8 + 4 + 0) / 3
    eta = clock.remaining_seconds(10)
    # Never more than every remaining trial on the slowest priced architecture.
    model = fit_duration_model([first, second], [priced(first), priced(second)])
    slowest = max(model.epoch_seconds(c) for c in by_index.values())
    assert 0 < eta <= 10 * mean_epochs * slowest / 2
    assert clock.remaining_seconds(0) == 0.0


def test_a_sampled_epoch_is_priced_at_the_samples_it_visits(make_spec):
    from finscale.hpo.duration import costs_of
    from finscale.hpo.spec import prepare

    prepared = prepare(make_spec())
    splits = prepared.info["split_statistics"]
    n_train, n_val = splits["train"]["samples"], splits["val"]["samples"]
    whole, sampled = costs_of(prepared, 256), costs_of(prepared, 256, 300)
    assert costs_of(prepared, 256, n_train + 1) == whole  # more than all: all
    for index, cost in sampled.items():
        assert cost == epoch_cost(prepared.planned[index], 300, n_val, 256)
        assert cost.flops < whole[index].flops
        assert cost.micro_batches < whole[index].micro_batches
