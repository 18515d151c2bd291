import itertools

import pytest
import torch

from finscale.model import PatchTST
from finscale.model.memory import BatchConfig
from finscale.train.step import (
    OptimizerStep,
    TrainingOutOfMemory,
    halve_on_out_of_memory,
    is_out_of_memory,
    learning_rate_factor,
)
from tests.train.conftest import FP32, fast

# ---------------------------------------------------------------- schedule


def test_learning_rate_warms_up_linearly_then_decays_by_cosine_to_the_floor():
    factors = [learning_rate_factor(s, 10, 110, 0.1) for s in range(130)]
    assert factors[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert factors[10] == pytest.approx(1.0)
    assert factors[60] == pytest.approx(0.1 + 0.9 * 0.5)
    assert factors[110] == pytest.approx(0.1) and factors[129] == pytest.approx(0.1)
    after = factors[10:111]
    assert all(a >= b for a, b in itertools.pairwise(after))
    assert learning_rate_factor(0, 0, 100, 0.0) == pytest.approx(1.0)


# ---------------------------------------------------------------- accumulation


@pytest.mark.parametrize(("group", "micro_batch"), [(12, 4), (10, 4), (7, 3), (5, 1)])
def test_accumulated_step_equals_one_batch_step(group, micro_batch, tiny):
    """k micro-batches of b, the last one partial, give the same parameters after the
    optimizer step as one batch of the whole group."""
    torch.manual_seed(0)
    x = torch.randn(group, tiny.context_days, tiny.n_features)
    y = (torch.rand(group) < 0.4).float()
    config = fast(grad_clip=1.0, weight_decay=0.1, learning_rate=1e-2, pos_weight=2.0)
    after = []
    for size in (group, micro_batch):
        torch.manual_seed(1)
        model = PatchTST(tiny)
        step = OptimizerStep(model, config, torch.device("cpu"), FP32, size, 100, 2.0)
        for _ in range(2):
            loss, _norm = step(x, y)
        after.append((loss, [p.detach().clone() for p in model.parameters()]))
    (loss_one, params_one), (loss_acc, params_acc) = after
    assert loss_acc == pytest.approx(loss_one, rel=1e-6)
    for a, b in zip(params_one, params_acc, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- out of memory


def plan(micro_batch: int, effective_batch: int = 32) -> BatchConfig:
    return BatchConfig(micro_batch, -(-effective_batch // micro_batch), effective_batch, 0)


def test_out_of_memory_halves_the_micro_batch_until_it_fits():
    tried = []

    def attempt(batch):
        tried.append(batch.micro_batch)
        if batch.micro_batch > 5:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "done"

    result, retries = halve_on_out_of_memory(attempt, plan(24), plan, torch.device("cpu"))
    assert result == "done" and tried == [24, 12, 6, 3]
    assert [(r["micro_batch"], r["retry_micro_batch"]) for r in retries] == [
        (24, 12),
        (12, 6),
        (6, 3),
    ]
    assert [(r["accumulation_steps"], r["retry_accumulation_steps"]) for r in retries] == [
        (2, 3),
        (3, 6),
        (6, 11),
    ]
    assert retries[0]["error"] == "CUDA out of memory. Tried to allocate 2.00 GiB"


def test_out_of_memory_at_micro_batch_one_is_a_training_error():
    def attempt(batch):
        raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 8")

    with pytest.raises(TrainingOutOfMemory, match="out of memory at micro-batch 1 on cpu"):
        halve_on_out_of_memory(attempt, plan(4), plan, torch.device("cpu"))


def test_other_errors_are_not_retried():
    tried = []

    def attempt(batch):
        tried.append(batch.micro_batch)
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        halve_on_out_of_memory(attempt, plan(8), plan, torch.device("cpu"))
    assert tried == [8]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 8"), True),
        (RuntimeError("[enforce fail at alloc_cpu.cpp:117] can't allocate memory"), True),
        (RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"), True),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
        (ValueError("out of memory"), False),
    ],
)
def test_out_of_memory_errors_are_recognised(error, expected):
    assert is_out_of_memory(error) is expected
