"""The parametrizations: what each multiplies, initialises and scales, at and away
from the base shape."""

import math

import pytest
import torch

from finscale.config import ModelConfig, config_from_mapping
from finscale.errors import InputError
from finscale.model import PatchTST, PatchTSTConfig, count_parameters
from finscale.model.grid import build_grid
from finscale.model.patchtst import ADAM_EPS, parameter_groups


def shape(parametrization="standard", d_model=64, n_layers=4, **changes):
    return PatchTSTConfig(
        d_model=d_model,
        n_layers=n_layers,
        n_heads=4,
        d_ff=4 * d_model,
        parametrization=parametrization,
        base_d_model=16,
        base_n_layers=2,
        **changes,
    )


@pytest.mark.parametrize("parametrization", ["standard", "mup", "completep"])
def test_parameter_count_is_the_same_under_every_parametrization(parametrization):
    config = shape(parametrization)
    assert PatchTST(config).num_parameters() == count_parameters(config)
    assert count_parameters(config) == count_parameters(shape("standard"))


def test_standard_ignores_the_base_shape():
    config = shape("standard", d_model=128, n_layers=8)
    assert (config.readout_multiplier, config.residual_multiplier) == (1.0, 1.0)
    assert config.attention_scale is None and config.hidden_lr_scale == 1.0
    assert config.hidden_init_std == config.init_std and config.adam_eps == ADAM_EPS
    torch.manual_seed(0)
    with_base = PatchTST(config).state_dict()
    torch.manual_seed(0)
    without = PatchTST(config.replace(base_d_model=None, base_n_layers=None)).state_dict()
    assert all(torch.equal(with_base[k], without[k]) for k in with_base)


def test_mup_multipliers_follow_the_width_only():
    config = shape("mup", d_model=64, n_layers=8)  # m = 4, k = 4
    assert config.width_multiplier == 4.0 and config.depth_multiplier == 4.0
    assert config.readout_multiplier == 0.25 and config.hidden_lr_scale == 0.25
    assert config.residual_multiplier == 1.0 and config.adam_eps == ADAM_EPS
    assert config.hidden_init_std == pytest.approx(config.init_std / 2)
    # 1/d_head, matched to 1/sqrt(d_head) at the base width (16 / 4 heads = 4).
    assert config.attention_scale == pytest.approx(math.sqrt(4) / 16)
    base = shape("mup", d_model=16, n_layers=2)
    assert base.attention_scale == pytest.approx(1 / math.sqrt(16 / 4))


def test_completep_adds_the_depth_multipliers():
    config = shape("completep", d_model=32, n_layers=8)  # m = 2, k = 4
    assert config.residual_multiplier == 0.25
    assert config.hidden_lr_scale == 0.5  # 1/m times k^(alpha - 1) = 1
    assert config.hidden_vector_lr_scale == 1.0
    assert config.adam_eps == pytest.approx(ADAM_EPS / (2 * 4))
    # The residual init is the base depth's, not this depth's.
    assert config.residual_init_std == pytest.approx(config.hidden_init_std / math.sqrt(4))


def test_mup_initialises_hidden_matrices_narrower_and_the_readout_at_zero():
    torch.manual_seed(0)
    model = PatchTST(shape("mup", d_model=256, n_layers=2))  # m = 16
    assert torch.count_nonzero(model.head.weight) == 0
    std = model.blocks[0].ff.fc.weight.std().item()
    assert std == pytest.approx(0.02 / 4, rel=0.05)
    assert model.embed.weight.std().item() == pytest.approx(0.02, rel=0.05)
    standard = PatchTST(shape("standard", d_model=256, n_layers=2))
    assert standard.blocks[0].ff.fc.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert torch.count_nonzero(standard.head.weight) > 0


def test_groups_scale_the_hidden_rate_and_keep_its_decay_per_step():
    model = PatchTST(shape("completep", d_model=64, n_layers=8))
    groups = {g["name"]: g for g in parameter_groups(model, 0.1, 1e-3)}
    assert set(groups) == {"hidden", "hidden_vectors", "matrices", "vectors"}
    hidden = groups["hidden"]
    assert hidden["lr"] == pytest.approx(1e-3 / 4) and hidden["lr_scale"] == 0.25
    # AdamW shrinks a weight by lr x decay per step: the same as at the base width.
    assert hidden["lr"] * hidden["weight_decay"] == pytest.approx(1e-3 * 0.1)
    assert groups["matrices"]["lr"] == 1e-3 and groups["matrices"]["weight_decay"] == 0.1
    ids = {name: {id(p) for p in g["params"]} for name, g in groups.items()}
    assert id(model.blocks[3].attention.qkv.weight) in ids["hidden"]
    assert id(model.blocks[3].norm_ff.weight) in ids["hidden_vectors"]
    assert {id(model.embed.weight), id(model.position), id(model.head.weight)} <= ids["matrices"]
    assert id(model.norm.weight) in ids["vectors"]
    every = set().union(*ids.values())
    assert every == {id(p) for p in model.parameters()}
    assert sum(len(v) for v in ids.values()) == len(every)  # each parameter once


def test_the_schedule_multiplies_every_group_alike_and_reports_the_base_rate():
    from finscale.config import TrainConfig
    from finscale.train.device import Precision
    from finscale.train.step import OptimizerStep

    config = shape("mup", d_model=64, n_layers=2)
    model = PatchTST(config)
    train = TrainConfig(learning_rate=1e-3, warmup_steps=4, weight_decay=0.01)
    step = OptimizerStep(model, train, torch.device("cpu"), Precision("fp32", "test"), 8, 20)
    x = torch.randn(8, config.context_days, config.n_features)
    y = torch.randint(0, 2, (8,)).float()
    step(x, y)
    rates = {g["name"]: g["lr"] for g in step.optimizer.param_groups}
    assert rates["hidden"] == pytest.approx(rates["matrices"] / 4)
    assert step.learning_rate == pytest.approx(rates["matrices"])
    assert 0 < step.learning_rate < 1e-3  # in warmup


def test_a_trained_step_under_completep_is_finite_and_moves_the_readout():
    config = shape("completep", d_model=32, n_layers=4)
    model = PatchTST(config)
    optimizer = model.configure_optimizers(0.01, 1e-2, "cpu")
    x = torch.randn(16, config.context_days, config.n_features)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), torch.ones(16))
    loss.backward()
    optimizer.step()
    assert torch.count_nonzero(model.head.weight) > 0
    assert torch.isfinite(model(x)).all()


def test_bad_parametrization_values_name_their_key():
    with pytest.raises(InputError, match="parametrization must be one of"):
        shape("muP")
    with pytest.raises(InputError, match="base_n_layers"):
        PatchTSTConfig(base_n_layers=0)
    with pytest.raises(InputError, match=r"model\.parametrization"):
        config_from_mapping({"model": {"parametrization": "ntk"}})
    with pytest.raises(InputError, match="base_d_model 10 is not divisible"):
        config_from_mapping({"model": {"n_heads": [4, 8], "base_d_model": 10}})


def test_the_base_shape_defaults_to_the_smallest_of_the_space_and_enters_the_grid_hash():
    model = ModelConfig(d_models=(32, 64), n_layers=(2, 4), n_heads=(4,))
    assert model.base_shape == (32, 2)
    assert ModelConfig(d_models=(32, 64), base_d_model=48, base_n_layers=3).base_shape == (48, 3)
    standard = build_grid("130K", model)
    mup = build_grid("130K", model.model_copy(update={"parametrization": "mup"}))
    assert mup.template.parametrization == "mup" and mup.template.base_d_model == 32
    assert [a.param_count for a in mup.architectures] == [
        a.param_count for a in standard.architectures
    ]
    assert mup.hash != standard.hash


def test_the_readout_init_is_zero_under_mup_unless_asked_and_standard_ignores_it():
    torch.manual_seed(0)
    assert torch.count_nonzero(PatchTST(shape("mup")).head.weight) == 0
    torch.manual_seed(0)
    normal = PatchTST(shape("mup", readout_init="normal")).head.weight
    assert normal.std().item() == pytest.approx(0.02, rel=0.1)
    torch.manual_seed(0)
    standard = PatchTST(shape("standard")).state_dict()
    torch.manual_seed(0)
    asked = PatchTST(shape("standard", readout_init="normal")).state_dict()
    assert all(torch.equal(standard[k], asked[k]) for k in standard)
    with pytest.raises(InputError, match="readout_init must be one of"):
        shape("mup", readout_init="uniform")
    with pytest.raises(InputError, match=r"model\.readout_init"):
        config_from_mapping({"model": {"readout_init": "uniform"}})


def test_a_normal_readout_enters_the_grid_hash_under_mup_only():
    model = ModelConfig(d_models=(32, 64), n_layers=(2, 4), n_heads=(4,))
    grids = {
        (p, r): build_grid(
            "130K", model.model_copy(update={"parametrization": p, "readout_init": r})
        )
        for p in ("standard", "mup")
        for r in ("zero", "normal")
    }
    assert grids[("standard", "zero")].hash == grids[("standard", "normal")].hash
    assert grids[("mup", "zero")].hash != grids[("mup", "normal")].hash
    assert grids[("mup", "normal")].template.readout_init == "normal"
