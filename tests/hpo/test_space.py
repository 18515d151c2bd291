"""The search space: ranks mapped to the grid, forced extremes, duplicate tolerance."""

import math

import optuna
import pytest

from finscale.config import ModelConfig, SearchConfig
from finscale.errors import InputError
from finscale.hpo.forced import forced_extremes
from finscale.hpo.space import ArchitectureSpace, within_tolerance
from finscale.model.grid import build_grid


@pytest.fixture(scope="module")
def grid():
    """The default space at 2M: many (d_model, n_layers, n_heads), not every combination."""
    return build_grid("2M", ModelConfig())


def test_ranks_of_every_architecture_map_back_to_it(grid):
    space = ArchitectureSpace.from_grid(grid, set())
    for arch in grid.architectures:
        assert space.nearest(space.ranks(arch)) is arch


def test_missing_combination_maps_to_the_closest_existing_one(grid):
    space = ArchitectureSpace.from_grid(grid, set())
    d_values, l_values = space.values["d_model"], space.values["n_layers"]
    present = {(a.config.d_model, a.config.n_layers) for a in grid.architectures}
    missing = [
        (i, j)
        for i, d in enumerate(d_values)
        for j, layers in enumerate(l_values)
        if (d, layers) not in present
    ]
    assert missing, "the 2M grid should not hold every combination"
    i, j = missing[0]
    arch = space.nearest({"d_model_rank": i, "n_layers_rank": j, "n_heads_rank": 0})

    # No allowed architecture is strictly closer in rank space.
    def dist(a):
        r = space.ranks(a)
        spans = {k: max(1, len(v) - 1) for k, v in space.values.items()}
        return (
            ((r["d_model_rank"] - i) / spans["d_model"]) ** 2
            + ((r["n_layers_rank"] - j) / spans["n_layers"]) ** 2
            + (r["n_heads_rank"] / spans["n_heads"]) ** 2
        )

    assert dist(arch) == min(dist(a) for a in space.allowed)


def test_excluded_architectures_are_never_chosen(grid):
    excluded = set(range(0, len(grid), 2))
    space = ArchitectureSpace.from_grid(grid, excluded)
    # Every rank combination, including those of excluded architectures, maps to an
    # allowed one.
    for i in range(len(space.values["d_model"])):
        for j in range(len(space.values["n_layers"])):
            for k in range(len(space.values["n_heads"])):
                ranks = {"d_model_rank": i, "n_layers_rank": j, "n_heads_rank": k}
                assert space.nearest(ranks).index not in excluded


def test_excluding_everything_or_unknown_indexes_is_an_input_error(grid):
    with pytest.raises(InputError, match="every architecture"):
        ArchitectureSpace.from_grid(grid, set(range(len(grid))))
    with pytest.raises(InputError, match="indexes 0 to"):
        ArchitectureSpace.from_grid(grid, {len(grid) + 3})


def test_forced_extremes_sit_on_each_dimension_edge(grid):
    space = ArchitectureSpace.from_grid(grid, set())
    search = SearchConfig()
    extremes = forced_extremes(space, search)
    assert [e["label"] for e in extremes] == [
        "min d_model",
        "max d_model",
        "min n_layers",
        "max n_layers",
        "min n_heads",
        "max n_heads",
    ]
    for extreme in extremes:
        side, name = extreme["label"].split()
        arch = space.nearest({k: v for k, v in extreme["params"].items() if k.endswith("_rank")})
        assert arch.index == extreme["arch_index"]
        edge = space.values[name][0 if side == "min" else -1]
        assert getattr(arch.config, name) == edge
        # Training values at the middle of their ranges.
        assert extreme["params"]["learning_rate"] == pytest.approx(
            math.sqrt(search.learning_rate[0] * search.learning_rate[1])
        )
        assert extreme["params"]["dropout"] == pytest.approx(sum(search.dropout) / 2)


def test_forced_extremes_are_not_repeated_on_a_degenerate_grid():
    grid = build_grid(
        "10K", ModelConfig(d_models=[16], n_layers=[1], n_heads=[2, 4], budget_tolerance=0.5)
    )
    space = ArchitectureSpace.from_grid(grid, set())
    extremes = forced_extremes(space, SearchConfig())
    assert len({e["arch_index"] for e in extremes}) == len(extremes) == len(grid)


def test_suggest_samples_every_param_within_its_distribution(grid):
    space = ArchitectureSpace.from_grid(grid, set())
    search = SearchConfig()
    study = optuna.create_study()
    for _ in range(20):
        trial = study.ask()
        params = space.suggest(trial, search)
        for name, dist in space.distributions(search).items():
            assert dist._contains(dist.to_internal_repr(params[name]))
        study.tell(trial, 0.0)


def test_the_categorical_space_samples_one_arch_idx_over_the_allowed_grid(grid):
    excluded = {0, 3}
    space = ArchitectureSpace.from_grid(grid, excluded, "categorical")
    search = SearchConfig()
    dists = space.distributions(search)
    assert "arch_idx" in dists and not any(name.endswith("_rank") for name in dists)
    assert sorted(dists["arch_idx"].choices) == [a.index for a in space.allowed]
    for arch in space.allowed:
        assert space.architecture_of(space.params_of(arch)) == arch
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    chosen = set()
    for _ in range(60):
        trial = study.ask()
        arch = space.architecture_of(space.suggest(trial, search))
        chosen.add(arch.index)
        study.tell(trial, 0.0)
    assert not chosen & excluded and len(chosen) > 10
    # The extremes are the same architectures in either space, selected by arch_idx here.
    ordered = ArchitectureSpace.from_grid(grid, excluded)
    assert [e["arch_index"] for e in forced_extremes(space, search)] == [
        e["arch_index"] for e in forced_extremes(ordered, search)
    ]
    assert all(set(e["params"]) >= {"arch_idx"} for e in forced_extremes(space, search))


def test_an_unknown_architecture_space_is_refused(grid):
    with pytest.raises(ValueError, match="not one of"):
        ArchitectureSpace.from_grid(grid, set(), "sorted")


def test_tolerance_is_relative_to_each_range_in_log_space():
    search = SearchConfig(learning_rate=(1e-5, 1e-1), weight_decay=(1e-4, 1e-1))
    base = {"learning_rate": 1e-3, "weight_decay": 1e-2, "warmup_steps": 100, "dropout": 0.2}
    # 4 decades of learning rate: x1.2 is log(1.2)/log(1e4) = 2% of the range.
    near = {**base, "learning_rate": 1e-3 * 1.15}
    far = {**base, "learning_rate": 1e-3 * 1.5}
    assert within_tolerance(base, near, search, 0.02)
    assert not within_tolerance(base, far, search, 0.02)
    assert not within_tolerance(base, {**base, "warmup_steps": 110}, search, 0.02)
    assert within_tolerance(base, {**base, "warmup_steps": 103}, search, 0.02)
    assert not within_tolerance(base, base | {"dropout": 0.21}, search, 0.0)
