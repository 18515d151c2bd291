"""Train one PatchTST on one dataset: the loop every trial of a study runs.

    result = train(model_config, data.windows(), TrainConfig(max_epochs=50))

Each epoch shuffles the training rows (or draws `train.samples_per_epoch` of
them: `finscale.train.sampling`), runs `OptimizerStep` over groups of
the effective batch (AdamW with warmup and cosine decay, exact gradient
accumulation: `finscale.train.step`), validates, and records the learning
curve with its achieved FLOP/s and MFU. Early stopping on validation log loss
restores the best weights. Batches are gathered from the dataset's in-memory
window view; there are no DataLoader workers.

The hardware (device, precision, memory limit, peak FLOP/s) is resolved once
per process (`resolve_hardware`) or handed down by the caller; the batch plan
comes from `plan_batch`. Faults are `TrainingError`s (see `finscale.train.step`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import psutil
import torch

from finscale.config import TrainConfig
from finscale.data import WindowDataset
from finscale.errors import InputError
from finscale.model import (
    BatchConfig,
    PatchTST,
    PatchTSTConfig,
    estimate_flops,
    estimate_mfu,
    plan_batch,
)
from finscale.train.device import RAM_AVAILABLE_FRACTION, Hardware, resolve_hardware
from finscale.train.metrics import classification_metrics, log_loss, roc_auc
from finscale.train.predict import (
    EVAL_BATCH_FACTOR,
    device_windows,
    predict_logits,
    predict_proba,
)
from finscale.train.sampling import epoch_order, epoch_samples
from finscale.train.step import (
    MemoryLimitExceeded,
    OptimizerStep,
    TrainingDiverged,
    TrainingError,
    TrainingOutOfMemory,
    attention_kernel,
    balanced_pos_weight,
    forward_context,
    halve_on_out_of_memory,
    is_out_of_memory,
    learning_rate_factor,
)

# The step's names keep their old home here too.
__all__ = [
    "EVAL_BATCH_FACTOR",
    "EpochRecord",
    "MemoryLimitExceeded",
    "OptimizerStep",
    "TrainResult",
    "TrainingDiverged",
    "TrainingError",
    "TrainingOutOfMemory",
    "attention_kernel",
    "balanced_pos_weight",
    "device_windows",
    "forward_context",
    "is_out_of_memory",
    "learning_rate_factor",
    "predict_logits",
    "predict_proba",
    "train",
]

# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class EpochRecord:
    """One point of the learning curve."""

    epoch: int
    train_loss: float  # mean training loss of the epoch (with pos_weight if set)
    val_loss: float  # validation log loss, the objective
    val_auc: float
    learning_rate: float  # at the end of the epoch
    seconds: float  # training and validation of the epoch
    rss_bytes: int  # resident memory of the process after the epoch
    flops_per_second: float  # training FLOPs of the epoch (`estimate_flops`) per training second
    mfu: float | None  # flops_per_second / the device's peak; None where the peak is unknown


@dataclass
class TrainResult:
    """What a run produced; `to_dict()` is its JSON record (the model excluded)."""

    model: PatchTST = field(repr=False)  # best weights, eval mode
    model_config: PatchTSTConfig
    train_config: TrainConfig
    param_count: int
    device: str
    dtype: str
    dtype_reason: str
    micro_batch: int
    accumulation_steps: int
    effective_batch: int
    memory_estimate_bytes: int  # estimated peak at the micro-batch used
    memory_limit_bytes: int
    oom_retries: list[dict[str, Any]]
    pos_weight: float | None
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    history: list[EpochRecord]
    val_metrics: dict[str, Any]  # of the restored best weights
    train_seconds: float
    samples_per_second: float  # training samples per second of training time
    peak_rss_bytes: int
    flops_per_step: int  # training FLOPs of one optimizer step (the effective batch)
    flops_per_second: float  # training FLOPs per second of training time
    mfu: float | None  # flops_per_second / peak_flops_per_second
    peak_flops_per_second: float | None  # the device's, at the run's dtype; None: unknown
    peak_source: str  # where the peak comes from (data sheet, measured, unknown)
    # P(label 1) of every validation sample (date order) by the restored best weights.
    val_probabilities: list[float] = field(default_factory=list, repr=False)

    @property
    def val_loss(self) -> float:
        return float(self.val_metrics["log_loss"])

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict(self): it would deep-copy the model's weights.
        # The validation predictions belong to the study's storage, not to this record.
        skipped = ("model", "val_probabilities")
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skipped}
        out["model_config"] = self.model_config.to_dict()
        out["train_config"] = self.train_config.model_dump(mode="json")
        out["history"] = [asdict(r) for r in self.history]
        return out


# ---------------------------------------------------------------- the run


def train(
    model_config: PatchTSTConfig,
    data: WindowDataset,
    config: TrainConfig | None = None,
    *,
    hardware: Hardware | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    on_step: Callable[[int, int, int], None] | None = None,
) -> TrainResult:
    """Train `model_config` on the train split of `data`, early-stopped on val.

    `hardware` is where it runs; None resolves `config`'s device, dtype and
    memory limit (`resolve_hardware`, once per process). The micro-batch is
    `config.micro_batch`, or the planner's (`plan_batch`) within the memory
    limit. `on_epoch(record)` runs after every epoch's validation (HPO
    reports and prunes there; an exception it raises stops the run and
    propagates). `on_step(epoch, step, steps_per_epoch)` runs after every
    optimizer step, for progress bars. Raises `InputError` on inconsistent
    inputs and `TrainingError` on a fault (see `finscale.train.step`).
    """
    config = config or TrainConfig()
    _check_inputs(model_config, data)
    hardware = hardware or resolve_hardware(config, estimate_flops(model_config))
    rss_limit = _rss_limit(hardware)

    def plan(micro_batch: int | None) -> BatchConfig:
        return plan_batch(
            model_config,
            config.effective_batch,
            hardware.memory_limit_bytes,
            hardware.dtype,
            hardware.device.type,
            micro_batch,
        )

    def attempt(batch: BatchConfig) -> TrainResult:
        return _run(model_config, data, config, hardware, batch, rss_limit, on_epoch, on_step)

    result, retries = halve_on_out_of_memory(
        attempt, plan(config.micro_batch), plan, hardware.device
    )
    result.oom_retries = retries
    return result


def _check_inputs(model_config: PatchTSTConfig, data: WindowDataset) -> None:
    if model_config.num_classes != 2:
        raise InputError("the trainer trains binary classifiers (num_classes 2)", "num_classes")
    n_features = data.features.shape[1]
    expected = (model_config.input_features, model_config.context_days)
    if expected != (n_features, data.context_days):
        raise InputError(
            f"model expects {model_config.input_features} input columns x "
            f"{model_config.context_days} days but the dataset has {n_features} x "
            f"{data.context_days}"
            + (
                "; a symbol embedding needs windows with a symbol column"
                if model_config.n_symbols
                else ""
            ),
            "model config",
        )
    for split in ("train", "val"):
        if len(data.rows(split)) == 0:
            raise InputError(f"the dataset has no {split} samples", "dataset")


def _rss_limit(hardware: Hardware) -> int:
    """The resident size this process may reach. On CPU and MPS training memory is
    RAM, so it may grow by the memory limit; on CUDA the limit is the GPU's and host
    memory may grow by the default share of available RAM."""
    rss_start = psutil.Process().memory_info().rss
    if hardware.device.type == "cuda":
        return rss_start + int(psutil.virtual_memory().available * RAM_AVAILABLE_FRACTION)
    return rss_start + hardware.memory_limit_bytes


class MemoryGuard:
    """Reads the process's resident size after every step: keeps its peak, and
    stops the run before it swaps."""

    def __init__(self, rss_limit: int) -> None:
        self.process = psutil.Process()  # one handle: read every step
        self.rss_limit = rss_limit
        self.peak_rss = self.rss()

    def rss(self) -> int:
        return self.process.memory_info().rss

    def check(self, epoch: int, step: int) -> None:
        rss = self.rss()
        self.peak_rss = max(self.peak_rss, rss)
        if rss > self.rss_limit:
            raise MemoryLimitExceeded(rss, self.rss_limit, epoch, step)


class EarlyStopping:
    """Keras' rule: only a drop of more than `min_delta` is an improvement, the run
    stops after `patience` epochs without one, and the weights restored are those
    of the last improvement."""

    def __init__(self, patience: int, min_delta: float) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.best_loss, self.best_epoch = math.inf, 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.epochs_without_improvement = 0

    def update(self, model: PatchTST, epoch: int, val_loss: float) -> None:
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch = val_loss, epoch
            self.best_state = {
                k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
            }
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1

    @property
    def should_stop(self) -> bool:
        return self.epochs_without_improvement >= self.patience

    def restore(self, model: PatchTST) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


@dataclass(frozen=True)
class DeviceBatches:
    """The dataset's windows and labels on the training device, copied there once
    per run; a group of rows becomes (inputs, labels) by indexing, no copy of a
    window."""

    windows: torch.Tensor
    labels: torch.Tensor
    first_row: int  # the first row with a full window
    device: torch.device

    @classmethod
    def of(cls, data: WindowDataset, device: torch.device) -> DeviceBatches:
        windows = device_windows(data, device)
        return cls(windows, data.labels.to(device), data.context_days - 1, device)

    def __call__(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        device_rows = rows.to(self.device)
        return self.windows[device_rows - self.first_row], self.labels[device_rows]


def _pos_weight(config: TrainConfig, data: WindowDataset) -> float | None:
    if config.pos_weight == "balanced":
        return balanced_pos_weight(data.labels[data.rows("train")])
    return config.pos_weight  # type: ignore[return-value]


def _run(
    model_config: PatchTSTConfig,
    data: WindowDataset,
    config: TrainConfig,
    hardware: Hardware,
    plan: BatchConfig,
    rss_limit: int,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    on_step: Callable[[int, int, int], None] | None = None,
) -> TrainResult:
    """One attempt at one micro-batch; seeded, so a retry starts from the same state."""
    torch.manual_seed(config.seed)
    shuffle = torch.Generator().manual_seed(config.seed)
    device, dtype = hardware.device, hardware.dtype
    model = PatchTST(model_config).to(device)
    train_rows, val_rows = data.rows("train"), data.rows("val")
    val_labels = data.labels[val_rows].numpy()
    pos_weight = _pos_weight(config, data)
    # The schedule, the FLOPs and the loss are of the rows an epoch visits.
    n_epoch = epoch_samples(len(train_rows), config.samples_per_epoch)
    steps_per_epoch = math.ceil(n_epoch / config.effective_batch)
    total_steps = config.max_epochs * steps_per_epoch
    step = OptimizerStep(
        model, config, device, hardware.precision, plan.micro_batch, total_steps, pos_weight
    )
    batches = DeviceBatches.of(data, device)
    epoch_flops = estimate_flops(model_config, n_epoch)
    eval_batch = plan.micro_batch * EVAL_BATCH_FACTOR
    guard, stopping = MemoryGuard(rss_limit), EarlyStopping(config.patience, config.min_delta)
    history: list[EpochRecord] = []
    train_seconds = 0.0
    for epoch in range(1, config.max_epochs + 1):
        started = time.perf_counter()
        order = epoch_order(train_rows, n_epoch, shuffle)
        loss_sum = _train_epoch(step, batches, order, config.effective_batch, epoch, guard, on_step)
        epoch_seconds = time.perf_counter() - started
        train_seconds += epoch_seconds
        probabilities = predict_proba(model, data, val_rows, device, dtype, eval_batch)
        if not np.isfinite(probabilities).all():
            # The last step's update overflowed the weights although its loss and
            # gradient norm were finite.
            raise TrainingDiverged(epoch, steps_per_epoch, "validation predictions are not finite")
        flops_per_second = epoch_flops / epoch_seconds
        record = EpochRecord(
            epoch=epoch,
            train_loss=loss_sum / n_epoch,
            val_loss=log_loss(val_labels, probabilities),
            val_auc=roc_auc(val_labels, probabilities),
            learning_rate=step.learning_rate,
            seconds=time.perf_counter() - started,
            rss_bytes=guard.rss(),
            flops_per_second=flops_per_second,
            mfu=estimate_mfu(flops_per_second, hardware.peak_flops_per_second),
        )
        history.append(record)
        stopping.update(model, epoch, record.val_loss)
        if on_epoch is not None:
            on_epoch(record)
        if stopping.should_stop:
            break

    stopping.restore(model)
    model.eval()
    probabilities = predict_proba(model, data, val_rows, device, dtype, eval_batch)
    val_metrics = classification_metrics(val_labels, probabilities, config.decision_threshold)
    return _result(
        model,
        config,
        hardware,
        plan,
        pos_weight,
        history,
        stopping,
        val_metrics,
        guard,
        train_seconds,
        n_epoch,
        probabilities.tolist(),
    )


def _result(
    model: PatchTST,
    config: TrainConfig,
    hardware: Hardware,
    plan: BatchConfig,
    pos_weight: float | None,
    history: list[EpochRecord],
    stopping: EarlyStopping,
    val_metrics: dict[str, Any],
    guard: MemoryGuard,
    train_seconds: float,
    n_epoch: int,
    val_probabilities: list[float],
) -> TrainResult:
    """The record of a finished run: what ran where, its curve and its throughput
    (`n_epoch`: the training samples of one epoch)."""
    samples_per_second = n_epoch * len(history) / train_seconds if train_seconds else 0.0
    flops_per_second = samples_per_second * estimate_flops(model.config)
    return TrainResult(
        model=model,
        model_config=model.config,
        train_config=config,
        param_count=model.num_parameters(),
        device=str(hardware.device),
        dtype=hardware.dtype,
        dtype_reason=hardware.precision.reason,
        micro_batch=plan.micro_batch,
        accumulation_steps=plan.accumulation_steps,
        effective_batch=config.effective_batch,
        memory_estimate_bytes=plan.memory_bytes,
        memory_limit_bytes=hardware.memory_limit_bytes,
        oom_retries=[],
        pos_weight=pos_weight,
        epochs_run=len(history),
        best_epoch=stopping.best_epoch,
        stopped_early=stopping.should_stop,
        history=history,
        val_metrics=val_metrics,
        train_seconds=train_seconds,
        samples_per_second=samples_per_second,
        peak_rss_bytes=guard.peak_rss,
        flops_per_step=estimate_flops(model.config, config.effective_batch),
        flops_per_second=flops_per_second,
        mfu=estimate_mfu(flops_per_second, hardware.peak_flops_per_second),
        peak_flops_per_second=hardware.peak_flops_per_second,
        peak_source=hardware.peak_source,
        val_probabilities=val_probabilities,
    )


def _train_epoch(
    step: OptimizerStep,
    batches: DeviceBatches,
    order: torch.Tensor,
    effective_batch: int,
    epoch: int,
    guard: MemoryGuard,
    on_step: Callable[[int, int, int], None] | None,
) -> float:
    """One pass over the shuffled training rows `order`, one optimizer step per
    `effective_batch` rows; returns the summed loss (mean loss x samples)."""
    step.model.train()
    steps_per_epoch = math.ceil(len(order) / effective_batch)
    loss_sum = 0.0
    for index, group in enumerate(_groups(order, effective_batch), 1):
        loss, norm = step(*batches(group))
        if not math.isfinite(loss):
            raise TrainingDiverged(epoch, index, f"loss is {loss}")
        if not math.isfinite(norm):
            raise TrainingDiverged(epoch, index, f"gradient norm is {norm}")
        loss_sum += loss * len(group)
        guard.check(epoch, index)
        if on_step is not None:
            on_step(epoch, index, steps_per_epoch)
    return loss_sum


def _groups(order: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    """Consecutive groups of `size` rows; the last one may be smaller."""
    for start in range(0, len(order), size):
        yield order[start : start + size]
