import pytest
import torch

from finscale.errors import InputError
from finscale.model import PatchTST, PatchTSTConfig, count_parameters
from finscale.model.grid import build_grid, plan_grid
from finscale.model.memory import (
    ArchitectureTooLarge,
    estimate_training_memory,
    memory_safe_batch_config,
    plan_batch,
    saved_activation_bytes,
)
from finscale.train.step import forward_context
from finscale.units import format_bytes, parse_memory_size

CONFIG = PatchTSTConfig(d_model=64, n_layers=3, n_heads=4, d_ff=256)


def measured_saved_bytes(config: PatchTSTConfig, micro_batch: int, dtype: str) -> int:
    """Bytes of the tensors autograd actually keeps for backward (parameters excluded),
    with the attention kernel the trainer uses."""
    model = PatchTST(config).train()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    x = torch.randn(micro_batch, config.context_days, config.n_features)
    with (
        torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
        forward_context(torch.device("cpu"), dtype),
    ):
        model(x)
    return sum(size for ptr, size in storages.items() if ptr not in params)


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize(
    "changes",
    [
        {},
        dict(dropout=0.0),
        dict(head_dropout=0.2),
        dict(attention_dropout=0.1),
        dict(bias=False, num_classes=3),
        dict(context_days=120, patch_len=12, stride=6, n_heads=8),
    ],
)
def test_saved_activations_match_what_autograd_keeps(changes, dtype):
    config = CONFIG.replace(**changes)
    assert saved_activation_bytes(config, 8, dtype, "cpu") == measured_saved_bytes(config, 8, dtype)


def test_estimate_parts_are_the_sizes_of_a_trained_model():
    estimate = estimate_training_memory(CONFIG, 32)
    model = PatchTST(CONFIG)
    optimizer = model.configure_optimizers(0.01, 1e-3, "cpu")
    x = torch.randn(4, CONFIG.context_days, CONFIG.n_features)
    model(x).sum().backward()
    optimizer.step()
    params = list(model.parameters())
    assert estimate.weights_bytes == sum(p.nbytes for p in params)
    assert estimate.gradients_bytes == sum(p.grad.nbytes for p in params)
    moments = [t for state in optimizer.state.values() for t in state.values() if t.dim() > 0]
    assert estimate.optimizer_bytes == sum(t.nbytes for t in moments)  # AdamW's two moments
    n = count_parameters(CONFIG)
    assert estimate.activations_bytes == saved_activation_bytes(CONFIG, 32)
    assert estimate.peak_bytes > 12 * n + estimate.activations_bytes


def test_estimate_grows_with_batch_depth_and_accumulation():
    peak = estimate_training_memory(CONFIG, 32).peak_bytes
    assert estimate_training_memory(CONFIG, 64).peak_bytes > peak
    assert estimate_training_memory(CONFIG.replace(n_layers=6), 32).peak_bytes > peak
    # Accumulating keeps every gradient alive through the next micro-batch.
    assert estimate_training_memory(CONFIG, 32, accumulation_steps=2).peak_bytes > peak


def test_bf16_needs_less_activation_memory_than_fp32():
    config = CONFIG.replace(d_model=256, d_ff=1024)
    fp32 = estimate_training_memory(config, 128, "fp32")
    bf16 = estimate_training_memory(config, 128, "bf16")
    assert bf16.activations_bytes < fp32.activations_bytes
    assert bf16.weights_bytes == fp32.weights_bytes  # fp32 master weights either way


def test_safe_batch_is_the_largest_power_of_two_that_fits():
    config = CONFIG.replace(d_model=256, n_layers=8, d_ff=1024)
    target = 256
    limit = estimate_training_memory(config, 48, accumulation_steps=6).peak_bytes
    batch = memory_safe_batch_config(config, target, limit)
    assert batch.micro_batch == 32
    assert batch.accumulation_steps == 8 and batch.effective_batch == target
    assert batch.memory_bytes <= limit
    assert estimate_training_memory(config, 64, accumulation_steps=4).peak_bytes > limit


def test_whole_batch_when_it_fits_and_a_partial_last_group_otherwise():
    whole = memory_safe_batch_config(CONFIG, 100, 2**40)
    assert (whole.micro_batch, whole.accumulation_steps) == (100, 1)
    limit = estimate_training_memory(CONFIG, 64, accumulation_steps=2).peak_bytes
    split = memory_safe_batch_config(CONFIG, 100, limit)
    # 64 + 36: two steps keep the effective batch of 100.
    assert (split.micro_batch, split.accumulation_steps, split.effective_batch) == (64, 2, 100)


def test_architecture_too_large_even_at_micro_batch_one():
    at_one = estimate_training_memory(CONFIG, 1, accumulation_steps=128).peak_bytes
    with pytest.raises(ArchitectureTooLarge) as info:
        memory_safe_batch_config(CONFIG, 128, at_one - 1)
    assert info.value.memory_bytes == at_one
    assert "at micro-batch 1" in str(info.value)
    assert memory_safe_batch_config(CONFIG, 128, at_one).micro_batch == 1


def test_a_given_micro_batch_is_planned_as_given_with_its_estimate():
    limit = estimate_training_memory(CONFIG, 8, accumulation_steps=13).peak_bytes
    planned = plan_batch(CONFIG, 100, limit)
    assert planned == memory_safe_batch_config(CONFIG, 100, limit)
    assert (planned.micro_batch, planned.accumulation_steps) == (8, 13)
    # A user's (or an out-of-memory retry's) micro-batch is kept, even over the limit.
    given = plan_batch(CONFIG, 100, limit, micro_batch=30)
    assert (given.micro_batch, given.accumulation_steps, given.effective_batch) == (30, 4, 100)
    assert given.memory_bytes == estimate_training_memory(CONFIG, 30, "fp32", "cpu", 4).peak_bytes
    assert given.memory_bytes > limit
    bf16 = plan_batch(CONFIG, 100, limit, "bf16", "cuda", micro_batch=30)
    assert bf16.memory_bytes == estimate_training_memory(CONFIG, 30, "bf16", "cuda", 4).peak_bytes


def test_the_grid_plan_is_plan_batch_for_every_architecture():
    grid = build_grid("2M")
    limit = 40 * 2**20  # half the 2M grid fits
    planned = plan_grid(grid, 256, limit, "bf16", "cuda")
    assert [p.architecture for p in planned] == list(grid.architectures)
    for p in planned:
        if p.fits:
            assert p.batch == plan_batch(p.architecture.config, 256, limit, "bf16", "cuda")
            assert p.memory_bytes == p.batch.memory_bytes
        else:
            with pytest.raises(ArchitectureTooLarge):
                plan_batch(p.architecture.config, 256, limit, "bf16", "cuda")
    assert any(p.fits for p in planned) and not all(p.fits for p in planned)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("16GB", 16 * 10**9),
        ("16GiB", 16 * 2**30),
        ("512MB", 512 * 10**6),
        ("1.5gb", 1_500_000_000),
        ("2 TiB", 2 * 2**40),
        ("4096", 4096),
        (4096, 4096),
    ],
)
def test_parse_memory_size(text, value):
    assert parse_memory_size(text) == value


@pytest.mark.parametrize("text", ["lots", "16XB", "-1GB", "0", ""])
def test_bad_memory_size_names_the_field(text):
    with pytest.raises(InputError) as info:
        parse_memory_size(text)
    assert info.value.where == "train.memory_limit_bytes"


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(16 * 2**30) == "16 GiB"
