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


@pytest.mark.parametrize("budget", DEFAULT_BUDGETS)
def test_count_is_exact_for_every_architecture_of_the_default_grids(budget):
    grid = build_grid(budget)
    assert len(grid) > 0
    for arch in grid.architectures:
        assert count_parameters(arch.config) == built_count(arch.config) == arch.param_count


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
        assert count_parameters(arch.config) == built_count(arch.config)


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
