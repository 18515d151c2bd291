import itertools
import json
import math

import numpy as np
import pytest
import torch

from finscale.config import TrainConfig
from finscale.errors import InputError
from finscale.model import PatchTST, PatchTSTConfig
from finscale.model.memory import estimate_training_memory
from finscale.train.device import Precision, resolve_precision
from finscale.train.metrics import log_loss
from finscale.train.trainer import (
    MemoryLimitExceeded,
    OptimizerStep,
    TrainingDiverged,
    TrainingOutOfMemory,
    balanced_pos_weight,
    is_out_of_memory,
    learning_rate_factor,
    predict_proba,
    train,
)

FP32 = Precision("fp32", "test")


def fast(**changes):
    """fp32 on CPU so that runs compare exactly; a short schedule."""
    values = {"device": "cpu", "dtype": "fp32", "max_epochs": 2, "warmup_steps": 5, "seed": 0}
    return TrainConfig(**(values | changes))


def assert_same_history(a, b, rel=1e-5):
    assert len(a.history) == len(b.history)
    for x, y in zip(a.history, b.history, strict=True):
        assert x.train_loss == pytest.approx(y.train_loss, rel=rel)
        assert x.val_loss == pytest.approx(y.val_loss, rel=rel)


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


def test_training_with_accumulation_matches_training_without(sp500_windows, tiny):
    whole = train(tiny, sp500_windows, fast(effective_batch=48, micro_batch=48))
    split = train(tiny, sp500_windows, fast(effective_batch=48, micro_batch=20))
    assert (split.micro_batch, split.accumulation_steps, split.effective_batch) == (20, 3, 48)
    assert_same_history(whole, split)
    for a, b in zip(whole.model.parameters(), split.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- early stopping


def test_early_stopping_restores_the_best_weights(sp500_windows, tiny):
    # A large learning rate overfits within a few epochs.
    config = fast(max_epochs=40, patience=3, min_delta=0.0, learning_rate=3e-2, warmup_steps=0)
    result = train(tiny.replace(d_model=32, d_ff=128, n_layers=2), sp500_windows, config)
    losses = [r.val_loss for r in result.history]
    assert result.stopped_early
    assert result.epochs_run == result.best_epoch + 3 < 40
    assert losses[result.best_epoch - 1] == min(losses)
    probabilities = predict_proba(
        result.model, sp500_windows, sp500_windows.rows("val"), torch.device("cpu")
    )
    restored = log_loss(sp500_windows.labels[sp500_windows.rows("val")].numpy(), probabilities)
    assert restored == pytest.approx(losses[result.best_epoch - 1], rel=1e-6)
    assert result.val_metrics["log_loss"] == pytest.approx(restored, rel=1e-9)
    assert restored < losses[-1]


def test_a_drop_smaller_than_min_delta_is_not_an_improvement(sp500_windows, tiny):
    result = train(tiny, sp500_windows, fast(max_epochs=10, patience=2, min_delta=10.0))
    assert (result.best_epoch, result.epochs_run, result.stopped_early) == (1, 3, True)


def test_without_stopping_every_epoch_runs(sp500_windows, tiny):
    result = train(tiny, sp500_windows, fast(max_epochs=3, patience=10))
    assert (result.epochs_run, result.stopped_early) == (3, False)
    assert [r.epoch for r in result.history] == [1, 2, 3]


# ---------------------------------------------------------------- determinism


def test_same_seed_same_metrics_on_cpu(sp500_windows, tiny):
    config = fast(max_epochs=2, dtype="auto")
    model = tiny.replace(dropout=0.2)
    a, b = train(model, sp500_windows, config), train(model, sp500_windows, config)
    assert [r.val_loss for r in a.history] == [r.val_loss for r in b.history]
    assert [r.train_loss for r in a.history] == [r.train_loss for r in b.history]
    assert a.val_metrics == b.val_metrics
    c = train(model, sp500_windows, config.model_copy(update={"seed": 1}))
    assert [r.val_loss for r in c.history] != [r.val_loss for r in a.history]


# ---------------------------------------------------------------- faults


def test_a_nan_loss_names_the_epoch_and_step(windows, tiny):
    def poison(record):
        if record.epoch == 2:
            windows.features[:] = float("nan")

    with pytest.raises(TrainingDiverged, match=r"epoch 3, step 1: loss is nan") as caught:
        train(tiny, windows, fast(max_epochs=5), on_epoch=poison)
    assert (caught.value.epoch, caught.value.step) == (3, 1)


def test_an_infinite_input_diverges_at_the_first_step(windows, tiny):
    windows.features[:] = float("inf")
    with pytest.raises(TrainingDiverged, match="epoch 1, step 1"):
        train(tiny, windows, fast())


def test_an_absurd_learning_rate_diverges_instead_of_failing_in_the_metrics(windows, tiny):
    # Without clipping, a step can leave finite loss and gradient norm but overflowed
    # weights; the validation pass must report it as divergence.
    with pytest.raises(TrainingDiverged):
        train(tiny, windows, fast(learning_rate=1e5, grad_clip=0.0, warmup_steps=0, max_epochs=5))


class FakeOOM:
    """Raise the allocator's out-of-memory error when a training forward pass gets
    more than `max_batch` samples: the point where activations are allocated."""

    def __init__(self, monkeypatch, max_batch):
        self.calls = []
        original = PatchTST.forward

        def forward(model, x):
            self.calls.append(len(x))
            if model.training and len(x) > max_batch:
                raise torch.OutOfMemoryError(
                    f"CUDA out of memory. Tried to allocate {len(x)} samples"
                )
            return original(model, x)

        monkeypatch.setattr(PatchTST, "forward", forward)


def test_out_of_memory_halves_the_micro_batch_and_keeps_the_effective_batch(
    monkeypatch, sp500_windows, tiny
):
    direct = train(tiny, sp500_windows, fast(effective_batch=32, micro_batch=8))
    fake = FakeOOM(monkeypatch, max_batch=8)
    result = train(tiny, sp500_windows, fast(effective_batch=32, micro_batch=32))
    assert (result.micro_batch, result.accumulation_steps, result.effective_batch) == (8, 4, 32)
    assert [(r["micro_batch"], r["retry_micro_batch"]) for r in result.oom_retries] == [
        (32, 16),
        (16, 8),
    ]
    assert result.oom_retries[1]["retry_accumulation_steps"] == 4
    assert "out of memory" in result.oom_retries[0]["error"]
    assert 32 in fake.calls and 16 in fake.calls
    assert_same_history(direct, result)


def test_out_of_memory_at_micro_batch_one_gives_up(monkeypatch, sp500_windows, tiny):
    FakeOOM(monkeypatch, max_batch=0)
    with pytest.raises(TrainingOutOfMemory, match="micro-batch 1"):
        train(tiny, sp500_windows, fast(effective_batch=4, micro_batch=4))


def test_other_runtime_errors_are_not_retried(monkeypatch, sp500_windows, tiny):
    def broken(model, x):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(PatchTST, "forward", broken)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        train(tiny, sp500_windows, fast())


def test_memory_guard_stops_before_swapping(sp500_windows, tiny):
    held = []

    def grow(epoch, step, steps_per_epoch):
        if not held:
            held.append(torch.ones(300 * 2**20 // 4))  # 300 MiB, every page touched

    config = fast(micro_batch=64, effective_batch=64, memory_limit_bytes=150 * 2**20)
    with pytest.raises(MemoryLimitExceeded, match=r"epoch 1, step 2; stopped instead of swapping"):
        train(tiny, sp500_windows, config, on_step=grow)


def test_the_planner_picks_the_micro_batch_under_a_memory_limit(sp500_windows, tiny):
    wide = tiny.replace(d_model=64, d_ff=256)
    limit = estimate_training_memory(wide, 32, "fp32", "cpu", 4).peak_bytes
    result = train(wide, sp500_windows, fast(max_epochs=1, memory_limit_bytes=limit))
    assert (result.micro_batch, result.accumulation_steps, result.effective_batch) == (32, 4, 128)
    assert result.memory_estimate_bytes == limit


# ---------------------------------------------------------------- hooks, records, inputs


def test_epoch_hook_sees_every_epoch_and_can_stop_the_run(sp500_windows, tiny):
    class Pruned(Exception):
        pass

    seen = []

    def hook(record):
        seen.append(record)
        if record.epoch == 2:
            raise Pruned

    with pytest.raises(Pruned):
        train(tiny, sp500_windows, fast(max_epochs=5), on_epoch=hook)
    assert [r.epoch for r in seen] == [1, 2]
    assert all(r.learning_rate > 0 and r.seconds > 0 and r.rss_bytes > 0 for r in seen)


def test_result_records_device_precision_and_batch(sp500_windows, tiny):
    steps = []
    result = train(
        tiny,
        sp500_windows,
        fast(dtype="auto", max_epochs=1, pos_weight="balanced"),
        on_step=lambda *a: steps.append(a),
    )
    expected = resolve_precision("auto", torch.device("cpu"))
    assert (result.device, result.dtype, result.dtype_reason) == (
        "cpu",
        expected.dtype,
        expected.reason,
    )
    n_train = len(sp500_windows.rows("train"))
    assert steps[-1] == (1, math.ceil(n_train / 128), math.ceil(n_train / 128))
    labels = sp500_windows.labels[sp500_windows.rows("train")]
    assert result.pos_weight == pytest.approx(balanced_pos_weight(labels))
    assert result.pos_weight == pytest.approx(float((1 - labels).sum() / labels.sum()))
    record = json.loads(json.dumps(result.to_dict()))
    assert record["model_config"] == tiny.to_dict()
    assert record["train_config"]["pos_weight"] == "balanced"
    assert record["param_count"] == result.model.num_parameters()
    assert record["history"][0]["epoch"] == 1
    assert 0.0 < record["val_metrics"]["roc_auc"] < 1.0
    assert np.isfinite(record["samples_per_second"]) and record["samples_per_second"] > 0


def test_a_model_for_another_data_shape_is_refused(sp500_windows):
    with pytest.raises(InputError, match="model expects 50 features x 60 days"):
        train(PatchTSTConfig(n_features=50), sp500_windows, fast())
    with pytest.raises(InputError, match="binary"):
        train(PatchTSTConfig(num_classes=3), sp500_windows, fast())


def test_train_config_rejects_bad_values():
    with pytest.raises(ValueError, match="256 is larger than effective_batch 128"):
        TrainConfig(micro_batch=256, effective_batch=128)
    with pytest.raises(ValueError, match="positive or 'balanced'"):
        TrainConfig(pos_weight=-1.0)
    with pytest.raises(ValueError, match="extra"):
        TrainConfig(learning_rat=1e-3)
    assert TrainConfig(memory_limit_bytes="1GB").memory_limit_bytes == 10**9


def test_compiled_model_trains_like_the_eager_one(sp500_windows, tiny):
    eager = train(tiny, sp500_windows, fast(max_epochs=1))
    compiled = train(tiny, sp500_windows, fast(max_epochs=1, compile=True))
    assert_same_history(eager, compiled, rel=1e-4)
    assert compiled.train_config.compile and compiled.to_dict()["train_config"]["compile"]


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
