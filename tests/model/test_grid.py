import pytest

from finscale.config import ModelConfig
from finscale.errors import InputError
from finscale.model import count_parameters
from finscale.model.grid import budget_range, build_grid, candidates, template_config
from finscale.units import format_budget, parse_budget, parse_budgets


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("50K", 50_000),
        ("2M", 2_000_000),
        ("2m", 2_000_000),
        ("1.5M", 1_500_000),
        ("2B", 2_000_000_000),
        (" 20M ", 20_000_000),
        ("2000000", 2_000_000),
        (2_000_000, 2_000_000),
        (".5K", 500),
    ],
)
def test_parse_budget(text, value):
    assert parse_budget(text) == value


@pytest.mark.parametrize("text", ["", "2X", "M", "-2M", "2 M M", "0", "1e6", True])
def test_bad_budget_is_an_input_error(text):
    with pytest.raises(InputError) as info:
        parse_budget(text)
    assert info.value.where == "budget"


@pytest.mark.parametrize("n", [1, 999, 1000, 50_000, 123_457, 1_500_000, 2_000_000_000])
def test_format_budget_round_trips(n):
    assert parse_budget(format_budget(n)) == n


def test_format_budget_is_short():
    assert format_budget(2_000_000) == "2M"
    assert format_budget(1_500_000) == "1.5M"
    assert format_budget(123_457) == "123457"


def test_parse_budgets_keeps_order_and_drops_duplicates():
    assert parse_budgets("2M, 20K,2000000") == (2_000_000, 20_000)


@pytest.mark.parametrize("budget", ["2M", "20M", "200M", "2B"])
def test_grid_holds_exactly_the_architectures_within_tolerance(budget):
    grid = build_grid(budget)
    low, high = budget_range(grid.budget, 0.25)
    assert (low, high) == (round(grid.budget * 0.75), round(grid.budget * 1.25))
    model = ModelConfig()
    expected = [
        c
        for c in candidates(model, template_config(model, 25, 60))
        if low <= count_parameters(c) <= high
    ]
    assert [a.config for a in grid.architectures] == expected
    assert [a.index for a in grid.architectures] == list(range(len(grid)))
    for arch in grid.architectures:
        c = arch.config
        assert c.d_model % c.n_heads == 0 and c.d_ff == 4 * c.d_model
        assert abs(arch.deviation(grid.budget)) <= 0.25


def test_grid_order_is_by_d_model_then_layers_then_heads():
    keys = [(a.config.d_model, a.config.n_layers, a.config.n_heads) for a in build_grid("20M")]
    assert keys == sorted(keys)


def test_grid_hash_is_stable_and_tracks_the_data_shape_and_space():
    first = build_grid("2M")
    assert build_grid("2M").hash == first.hash
    assert build_grid(2_000_000).hash == first.hash
    assert build_grid("2M", n_features=50).hash != first.hash
    assert build_grid("2M", context_days=90).hash != first.hash
    assert build_grid("2M", ModelConfig(patch_len=8, stride=4)).hash != first.hash
    assert build_grid("2M", ModelConfig(n_heads=(2, 4))).hash != first.hash
    # Dropout is not part of the architecture.
    assert build_grid("2M", ModelConfig(dropout=0.3)).hash == first.hash


def test_grid_depends_on_the_number_of_features():
    a25 = build_grid("2M", n_features=25)
    a100 = build_grid("2M", n_features=100)
    assert {a.param_count for a in a25} != {a.param_count for a in a100}
    assert "25 features x 60 days" in a25.describe()
    assert "100 features" in a100.describe()


def test_tolerance_and_ratio_are_configurable():
    narrow = build_grid("20M", ModelConfig(budget_tolerance=0.05))
    wide = build_grid("20M", ModelConfig(budget_tolerance=0.5))
    assert len(narrow) < len(build_grid("20M")) < len(wide)
    ratio2 = build_grid("20M", ModelConfig(ff_ratio=2.0))
    assert all(a.config.d_ff == 2 * a.config.d_model for a in ratio2)


def test_dimension_values_list_what_the_grid_holds():
    grid = build_grid("2M", ModelConfig(n_heads=(4, 8)))
    values = grid.dimension_values()
    assert values["n_heads"] == (4, 8)
    assert set(values["d_model"]) <= set(ModelConfig().d_models)


def test_empty_grid_names_nearest_budgets_that_have_architectures():
    model = ModelConfig(d_models=(64, 128), n_layers=(2, 4))
    with pytest.raises(InputError) as info:
        build_grid("2M", model)
    message = str(info.value)
    assert "no architecture has 2M parameters" in message
    suggested = message.split("nearest budgets with architectures: ")[1].split(" (")[0]
    names = suggested.split(" and ")
    assert names == ["850K"]  # the largest of this small space has 847,489
    assert {a.param_count for a in build_grid(names[0], model)} == {847_489}

    with pytest.raises(InputError) as info:
        build_grid("170K", model)  # between 127,169 and 227,137
    names = str(info.value).split("architectures: ")[1].split(" (")[0].split(" and ")
    assert names == ["130K", "230K"]
    assert [{a.param_count for a in build_grid(name, model)} for name in names] == [
        {127_169},
        {227_137},
    ]
