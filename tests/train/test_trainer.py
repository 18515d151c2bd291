import json
import math
import time

import psutil
import pytest
import torch

from finscale.errors import InputError
from finscale.model import PatchTST, PatchTSTConfig, estimate_flops
from finscale.model.memory import estimate_training_memory, plan_batch
from finscale.train.device import Hardware, MemoryLimit, resolve_hardware, resolve_precision
from finscale.train.metrics import log_loss
from finscale.train.trainer import (
    MemoryLimitExceeded,
    TrainingDiverged,
    TrainingOutOfMemory,
    balanced_pos_weight,
    predict_proba,
    train,
)
from tests.train.conftest import FP32, fast


def assert_same_history(a, b, rel=1e-5):
    assert len(a.history) == len(b.history)
    for x, y in zip(a.history, b.history, strict=True):
        assert x.train_loss == pytest.approx(y.train_loss, rel=rel)
        assert x.val_loss == pytest.approx(y.val_loss, rel=rel)


# ---------------------------------------------------------------- accumulation


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


@pytest.mark.slow
def test_out_of_memory_halves_the_micro_batch_and_keeps_the_effective_batch(
    monkeypatch, sp500_windows, tiny
):
    direct = train(tiny, sp500_windows, fast(effective_batch=32, micro_batch=8, max_epochs=1))
    fake = FakeOOM(monkeypatch, max_batch=8)
    result = train(tiny, sp500_windows, fast(effective_batch=32, micro_batch=32, max_epochs=1))
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


def test_the_planner_picks_the_micro_batch_under_a_handed_down_memory_limit(sp500_windows, tiny):
    wide = tiny.replace(d_model=64, d_ff=256)
    limit = estimate_training_memory(wide, 32, "fp32", "cpu", 4).peak_bytes
    hardware = Hardware(torch.device("cpu"), FP32, MemoryLimit(limit, "test"), 1e12, "test")
    # The hardware handed down wins over the config's request.
    config = fast(max_epochs=1, memory_limit_bytes=10**12, dtype="bf16")
    result = train(wide, sp500_windows, config, hardware=hardware)
    assert (result.micro_batch, result.accumulation_steps, result.effective_batch) == (32, 4, 128)
    assert result.memory_estimate_bytes == plan_batch(wide, 128, limit).memory_bytes == limit
    assert (result.memory_limit_bytes, result.dtype, result.dtype_reason) == (limit, "fp32", "test")
    assert (result.peak_flops_per_second, result.peak_source) == (1e12, "test")
    assert result.mfu == pytest.approx(result.flops_per_second / 1e12)
    assert result.history[0].mfu == pytest.approx(result.history[0].flops_per_second / 1e12)


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
    # Past its 5 warmup steps the cosine decays from the peak towards 10% of it.
    peak = fast().learning_rate
    assert peak > seen[0].learning_rate > seen[1].learning_rate > 0.1 * peak
    rss = psutil.Process().memory_info().rss
    assert all(r.rss_bytes == pytest.approx(rss, rel=0.25) and r.seconds > 0 for r in seen)


def test_result_records_device_precision_and_batch(sp500_windows, tiny):
    steps = []
    started = time.perf_counter()
    result = train(
        tiny,
        sp500_windows,
        fast(dtype="auto", max_epochs=1, pos_weight="balanced"),
        on_step=lambda *a: steps.append(a),
    )
    wall_seconds = time.perf_counter() - started
    expected = resolve_precision("auto", torch.device("cpu"), estimate_flops(tiny))
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
    # One epoch's samples over its training time: at least over the whole call's.
    assert n_train / wall_seconds <= record["samples_per_second"] < math.inf


def test_records_carry_achieved_flops_and_mfu(sp500_windows, tiny):
    result = train(tiny, sp500_windows, fast(max_epochs=2, patience=5))
    hardware = resolve_hardware(fast())
    n_train = len(sp500_windows.rows("train"))
    epoch_flops = estimate_flops(tiny, n_train)
    assert result.flops_per_step == estimate_flops(tiny, 128)
    for record in result.history:
        # Training FLOPs over training time: at least over the epoch with validation.
        assert record.flops_per_second >= epoch_flops / record.seconds > 0
        assert record.mfu == pytest.approx(record.flops_per_second / hardware.peak_flops_per_second)
    assert result.flops_per_second == pytest.approx(
        result.samples_per_second * estimate_flops(tiny)
    )
    assert result.flops_per_second == pytest.approx(
        epoch_flops * len(result.history) / result.train_seconds
    )
    assert result.peak_flops_per_second == hardware.peak_flops_per_second > 0
    assert result.peak_source.startswith("measured: best fp32")
    assert result.mfu == pytest.approx(result.flops_per_second / result.peak_flops_per_second)
    record = json.loads(json.dumps(result.to_dict()))
    for key in ("flops_per_step", "flops_per_second", "mfu", "peak_flops_per_second"):
        assert record[key] == getattr(result, key)
    assert {"flops_per_second", "mfu"} <= set(record["history"][0])


def test_a_model_for_another_data_shape_is_refused(sp500_windows):
    with pytest.raises(InputError, match="model expects 50 input columns x 60 days"):
        train(PatchTSTConfig(n_features=50), sp500_windows, fast())
    with pytest.raises(InputError, match="binary"):
        train(PatchTSTConfig(num_classes=3), sp500_windows, fast())


@pytest.mark.slow
def test_compiled_model_trains_like_the_eager_one(sp500_windows, tiny):
    eager = train(tiny, sp500_windows, fast(max_epochs=1))
    compiled = train(tiny, sp500_windows, fast(max_epochs=1, compile=True))
    assert_same_history(eager, compiled, rel=1e-4)
    assert compiled.train_config.compile and compiled.to_dict()["train_config"]["compile"]


# ---------------------------------------------------------------- samples per epoch


def test_samples_per_epoch_of_all_rows_trains_as_today(sp500_windows, tiny):
    n_train = len(sp500_windows.rows("train"))
    today = train(tiny, sp500_windows, fast())
    assert today.train_config.samples_per_epoch is None
    for samples in (n_train, n_train + 1000):
        same = train(tiny, sp500_windows, fast(samples_per_epoch=samples))
        assert [r.train_loss for r in same.history] == [r.train_loss for r in today.history]
        assert [r.val_loss for r in same.history] == [r.val_loss for r in today.history]


def test_a_sampled_epoch_takes_its_steps_and_schedule_from_the_samples(sp500_windows, tiny):
    # 300 samples at 64 per step: 5 steps an epoch, so two epochs end the cosine at
    # step 10 (the full split would take over 50 steps per epoch).
    steps = []
    config = fast(samples_per_epoch=300, effective_batch=64, warmup_steps=0, min_lr_ratio=0.1)
    result = train(
        tiny, sp500_windows, config, on_step=lambda epoch, step, n: steps.append((epoch, n))
    )
    assert steps == [(1, 5)] * 5 + [(2, 5)] * 5
    first, last = (r.learning_rate for r in result.history)
    assert first == pytest.approx(config.learning_rate * 0.55, rel=1e-6)  # cosine half-way
    assert last == pytest.approx(config.learning_rate * 0.1, rel=1e-6)  # its end
    other = train(tiny, sp500_windows, config.model_copy(update={"seed": 1}))
    assert other.history[0].train_loss != result.history[0].train_loss
