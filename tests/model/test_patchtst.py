import json

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from finscale.errors import InputError
from finscale.model import PatchTST, PatchTSTConfig, estimate_flops, estimate_mfu
from finscale.model.patchtst import estimate_traffic_bytes


def small(**changes):
    base = dict(d_model=32, n_layers=2, n_heads=4, d_ff=64)
    return PatchTSTConfig(**{**base, **changes})


def test_binary_model_maps_windows_to_one_logit_each():
    config = small()
    model = PatchTST(config).eval()
    logits = model(torch.randn(5, config.context_days, config.n_features))
    assert logits.shape == (5,)
    assert torch.isfinite(logits).all()


def test_multiclass_model_gives_one_logit_per_class():
    config = small(num_classes=3)
    logits = PatchTST(config)(torch.randn(4, config.context_days, config.n_features))
    assert logits.shape == (4, 3)


def test_patches_follow_context_patch_len_and_stride():
    assert PatchTSTConfig(context_days=60, patch_len=16, stride=8).num_patches == 6
    assert PatchTSTConfig(context_days=16, patch_len=16, stride=8).num_patches == 1
    config = small(context_days=30, patch_len=10, stride=5, n_features=7)
    assert config.num_patches == 5 and config.patch_dim == 70
    model = PatchTST(config)
    assert model.position.shape == (5 + 10, 32)
    assert model(torch.randn(2, 30, 7)).shape == (2,)


def test_patches_end_on_the_most_recent_day():
    """The last day always reaches the logit; only the oldest days a stride leaves
    over (60 days, patch 16, stride 8: days 0-3) are unused."""
    config = small(dropout=0.0)
    assert config.unused_days == 4
    torch.manual_seed(0)
    model = PatchTST(config).eval()
    x = torch.randn(1, config.context_days, config.n_features)
    base = model(x)
    for day, used in ((0, False), (3, False), (4, True), (config.context_days - 1, True)):
        changed = x.clone()
        changed[0, day] += 1.0
        assert torch.equal(model(changed), base) is not used, day


def test_same_seed_same_model():
    torch.manual_seed(3)
    a = PatchTST(small())
    torch.manual_seed(3)
    b = PatchTST(small())
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_dropout_is_active_in_training_only():
    config = small(dropout=0.5, head_dropout=0.5)
    torch.manual_seed(0)
    model = PatchTST(config)
    x = torch.randn(8, config.context_days, config.n_features)
    model.train()
    assert not torch.allclose(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_training_step_reduces_loss_on_a_fixed_batch():
    config = small(dropout=0.0)
    torch.manual_seed(0)
    model = PatchTST(config)
    x = torch.randn(32, config.context_days, config.n_features)
    y = (x[:, -1, 0] > 0).float()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_wrong_input_shape_is_a_clear_error():
    config = small()
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 60, 25\)"):
        PatchTST(config)(torch.randn(2, 59, 25))


def test_config_round_trips_through_json():
    config = small(num_classes=4, bias=False, head_dropout=0.2)
    again = PatchTSTConfig(**json.loads(config.to_json()))
    assert again == config
    assert PatchTSTConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (dict(d_model=30, n_heads=4), "n_heads"),
        (dict(context_days=8, patch_len=16), "context_days"),
        (dict(d_model=0), "d_model"),
        (dict(n_layers=2.5), "n_layers"),
        (dict(dropout=1.0), "dropout"),
        (dict(head_dropout=-0.1), "head_dropout"),
        (dict(num_classes=1), "num_classes"),
        (dict(stride=True), "stride"),
    ],
)
def test_invalid_config_names_the_field(changes, field):
    with pytest.raises(InputError) as info:
        small(**changes)
    assert info.value.where == field


def test_unknown_field_is_rejected():
    with pytest.raises(InputError, match="unknown PatchTSTConfig field"):
        PatchTSTConfig.from_dict({**small().to_dict(), "n_layer": 3})


# ---------------------------------------------------------------- the honest helpers


@pytest.mark.parametrize("device_type", ["cpu", "cuda", "mps"])
def test_optimizer_decays_matrices_only(device_type):
    model = PatchTST(small(bias=True))
    model.head.bias.requires_grad_(False)  # a frozen parameter is left out
    optimizer = model.configure_optimizers(0.1, 3e-4, device_type)
    groups = optimizer.param_groups
    assert {g["lr"] for g in groups} == {3e-4}  # standard: one rate for every group
    decayed, not_decayed = (
        {id(p) for g in groups if (g["weight_decay"] == 0.1) is want for p in g["params"]}
        for want in (True, False)
    )
    assert {g["weight_decay"] for g in groups} == {0.1, 0.0}
    assert decayed == {id(p) for p in model.parameters() if p.dim() == 2}
    assert not_decayed == {id(p) for p in model.parameters() if p.dim() == 1 and p.requires_grad}
    assert {id(model.position), id(model.blocks[0].ff.fc.weight)} <= decayed
    assert {id(model.norm.weight), id(model.blocks[0].ff.fc.bias)} <= not_decayed
    assert id(model.head.bias) not in decayed | not_decayed
    assert optimizer.defaults["fused"] is (device_type != "mps")


def test_estimate_flops_is_a_hand_count_for_a_tiny_config():
    config = PatchTSTConfig(
        n_features=3,
        context_days=8,
        patch_len=4,
        stride=2,
        d_model=8,
        n_layers=2,
        n_heads=2,
        d_ff=16,
    )
    assert (config.num_patches, config.patch_dim) == (3, 12)
    forward = (
        2 * 3 * 12 * 8  # embedding
        + 2 * (2 * 3 * (8 * 24 + 8 * 8 + 8 * 16 + 16 * 8) + 2 * 2 * 3 * 3 * 8)  # two blocks
        + 2 * 24 * 1  # head
    )
    embedding_input_gradient = 2 * 3 * 12 * 8
    assert estimate_flops(config) == 3 * forward - embedding_input_gradient
    assert estimate_flops(config, 5) == 5 * estimate_flops(config)
    assert PatchTST(config).estimate_flops(5) == estimate_flops(config, 5)


def test_traffic_is_the_hand_count_of_activations_weights_and_the_update():
    config = PatchTSTConfig(
        n_features=3,
        context_days=8,
        patch_len=4,
        stride=2,
        d_model=8,
        n_layers=2,
        n_heads=2,
        d_ff=16,
    )
    n_params = 1000
    # Per sample: the embedding (3 tokens x 8) and per block 3 x (10 x 8 + 2 x 16) + 2 x 3^2.
    per_sample = 3 * 8 + 2 * (3 * (10 * 8 + 2 * 16) + 2 * 3 * 3)
    got = estimate_traffic_bytes(config, 5, 2, 1, n_params)
    assert got == 4 * (3 * per_sample * 5 + 3 * n_params * 2 + 8 * n_params * 1)
    assert estimate_traffic_bytes(config, 5, 2, 1, n_params, bytes_per_value=2) == got // 2


@pytest.mark.parametrize(
    "changes",
    [
        dict(),
        dict(num_classes=3, n_layers=3, d_ff=96),
        dict(context_days=30, patch_len=10, stride=5, n_features=7, bias=False),
    ],
)
def test_estimate_flops_matches_what_torch_counts_on_forward_and_backward(changes):
    config = small(dropout=0.0, **changes)
    model = PatchTST(config)
    x = torch.randn(3, config.context_days, config.n_features)
    # The math attention kernel is made of batched matmuls the counter sees; the
    # fused CPU kernel does the same products unseen.
    with sdpa_kernel(SDPBackend.MATH):
        with FlopCounterMode(display=False) as forward:
            logits = model(x)
        with FlopCounterMode(display=False) as backward:
            logits.sum().backward()
    total = forward.get_total_flops() + backward.get_total_flops()
    assert total == estimate_flops(config, 3)
    embedding = 2 * 3 * config.num_patches * config.patch_dim * config.d_model
    assert total == 3 * forward.get_total_flops() - embedding  # no gradient for the windows


def test_mfu_is_achieved_over_peak_and_none_without_a_peak():
    assert estimate_mfu(2e12, 8e12) == pytest.approx(0.25)
    assert estimate_mfu(2e12, None) is None
    assert estimate_mfu(2e12, 0.0) is None
