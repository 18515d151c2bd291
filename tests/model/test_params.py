import functools

import pytest
import torch

from finscale.config import ModelConfig
from finscale.data.features import tier_features
from finscale.model import PatchTST, PatchTSTConfig, count_parameters, parameter_breakdown
from finscale.model.grid import DEFAULT_BUDGETS, build_grid


def built_count(config: PatchTSTConfig) -> int:
    # The meta device allocates nothing: a 2B-parameter model costs no memory.
    with torch.device("meta"):
        return sum(p.numel() for p in PatchTST(config).parameters())


@functools.cache
def built_parts(config: PatchTSTConfig) -> tuple[int, int]:
    """(parameters outside the blocks, parameters of one block) of `config` built on the
    meta device with one layer: a grid's many depths of one width cost one build."""
    with torch.device("meta"):
        model = PatchTST(config.replace(n_layers=1))
    block = sum(p.numel() for p in model.blocks[0].parameters())
    return sum(p.numel() for p in model.parameters()) - block, block


def built_count_by_parts(config: PatchTSTConfig) -> int:
    outside, block = built_parts(config.replace(n_layers=1))
    return outside + config.n_layers * block


@pytest.mark.parametrize(
    ("d_model", "n_layers", "n_heads"), [(64, 1, 8), (64, 48, 8), (96, 7, 32), (512, 3, 16)]
)
def test_a_built_model_is_its_parts_and_one_block_per_layer(d_model, n_layers, n_heads):
    """What makes counting by parts exact: every block of a built model is the same."""
    config = PatchTSTConfig(d_model=d_model, n_layers=n_layers, n_heads=n_heads, d_ff=4 * d_model)
    assert built_count(config) == built_count_by_parts(config) == count_parameters(config)


README_GRID_SIZES = {"2M": 40, "20M": 45, "200M": 70, "2B": 40}


@pytest.mark.parametrize("budget", DEFAULT_BUDGETS)
def test_count_is_exact_for_every_architecture_of_the_default_grids(budget):
    grid = build_grid(budget)
    assert len(grid) == README_GRID_SIZES[budget]  # the README's "Grid" bullet
    for arch in grid.architectures:
        parts = parameter_breakdown(arch.config)
        outside, block = built_parts(arch.config.replace(n_layers=1))
        assert parts["blocks"] == arch.config.n_layers * block
        assert sum(parts.values()) - parts["blocks"] == outside
        assert count_parameters(arch.config) == built_count_by_parts(arch.config)
        assert count_parameters(arch.config) == arch.param_count


@pytest.mark.parametrize(
    "changes",
    [
        dict(bias=False),
        dict(num_classes=5),
        dict(n_features=len(tier_features("a100")), context_days=120, patch_len=12, stride=6),
        dict(n_features=len(tier_features("a50")), context_days=20, patch_len=20, stride=3),
        dict(position_padding=0, d_ff=100),
    ],
)
def test_count_is_exact_for_other_shapes_and_knobs(changes):
    for d_model, n_layers, n_heads in ((64, 2, 2), (96, 3, 32), (256, 12, 8)):
        config = PatchTSTConfig(d_model=d_model, n_layers=n_layers, n_heads=n_heads, **changes)
        assert count_parameters(config) == built_count(config)


def test_count_is_exact_on_a_grid_of_another_data_shape():
    grid = build_grid("20M", ModelConfig(patch_len=8, stride=4), n_features=100, context_days=90)
    for arch in grid.architectures:
        assert count_parameters(arch.config) == built_count_by_parts(arch.config)


def test_breakdown_parts_sum_to_the_count_and_match_the_modules():
    config = PatchTSTConfig(d_model=64, n_layers=3, n_heads=4, d_ff=256)
    parts = parameter_breakdown(config)
    assert sum(parts.values()) == count_parameters(config)
    model = PatchTST(config)
    assert parts["head"] == sum(p.numel() for p in model.head.parameters())
    assert parts["blocks"] == sum(p.numel() for p in model.blocks.parameters())
    assert parts["position"] == model.position.numel()


def test_count_grows_with_each_dimension():
    base = PatchTSTConfig(d_model=128, n_layers=4, n_heads=4, d_ff=512)
    n = count_parameters(base)
    assert count_parameters(base.replace(n_layers=5)) > n
    assert count_parameters(base.replace(d_model=256, d_ff=1024)) > n
    assert count_parameters(base.replace(n_features=50)) > n
    # Heads split d_model; they add no parameters.
    assert count_parameters(base.replace(n_heads=32)) == n


@pytest.mark.parametrize("n_symbols", [0, 1, 7, 500])
def test_a_symbol_embedding_is_counted_exactly(n_symbols):
    config = PatchTSTConfig(d_model=32, n_layers=2, n_heads=4, d_ff=128, n_symbols=n_symbols)
    model = PatchTST(config)
    assert count_parameters(config) == model.num_parameters()
    assert parameter_breakdown(config)["symbols"] == n_symbols * 32
    without = count_parameters(config.replace(n_symbols=0))
    assert count_parameters(config) - without == n_symbols * 32


def test_the_grid_embeds_a_panels_symbols_only_when_asked():
    space = {"d_models": [16, 32], "n_layers": [1, 2], "n_heads": [2], "budget_tolerance": 0.9}
    plain = build_grid("20K", ModelConfig(**space), 25, 60, n_symbols=3)
    embedded = build_grid("20K", ModelConfig(**space, symbol_embedding=True), 25, 60, n_symbols=3)
    assert plain.template.n_symbols == 0 and embedded.template.n_symbols == 3
    for arch in embedded.architectures:
        assert (
            arch.param_count
            == count_parameters(arch.config)
            == PatchTST(arch.config).num_parameters()
        )
        assert arch.config.n_symbols == 3
    assert plain.hash != embedded.hash
