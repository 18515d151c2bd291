"""Train one PatchTST on one dataset: the loop every trial of a study runs.

    result = train(model_config, data.windows(), TrainConfig(max_epochs=50))

AdamW (weight decay on matrices only, fused where available) with linear
warmup then cosine decay, binary cross-entropy with an optional positive
weight, gradient clipping, exact gradient accumulation, and early stopping on
validation log loss that restores the best weights. Batches are gathered from
the dataset's in-memory window view; there are no DataLoader workers.

Faults never take a study down silently: a non-finite loss raises
`TrainingDiverged` naming the epoch and step; an out-of-memory error halves
the micro-batch, doubles accumulation and restarts the run (the effective
batch never changes), down to micro-batch 1; resident memory growing past the
memory limit raises `MemoryLimitExceeded` instead of swapping.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import psutil
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from finscale.config import TrainConfig
from finscale.data.dataset import WindowDataset
from finscale.errors import InputError, RunError
from finscale.model.memory import BatchConfig, estimate_training_memory, memory_safe_batch_config
from finscale.model.patchtst import PatchTST, PatchTSTConfig
from finscale.train.device import (
    RAM_AVAILABLE_FRACTION,
    Precision,
    default_memory_limit,
    resolve_device,
    resolve_precision,
)
from finscale.train.metrics import classification_metrics, log_loss, roc_auc
from finscale.units import format_bytes

# Inference keeps no activations for backward, so evaluation batches can be
# several times the training micro-batch.
EVAL_BATCH_FACTOR = 4


class TrainingError(RunError):
    """Training stopped on a fault; the message says where and what to change."""


class TrainingDiverged(TrainingError):
    def __init__(self, epoch: int, step: int, what: str) -> None:
        self.epoch = epoch
        self.step = step
        super().__init__(
            f"training diverged at epoch {epoch}, step {step}: {what}; "
            "lower the learning rate or keep gradient clipping on"
        )


class TrainingOutOfMemory(TrainingError):
    """Out of memory even at micro-batch 1."""


class MemoryLimitExceeded(TrainingError):
    def __init__(self, rss_bytes: int, limit_bytes: int, epoch: int, step: int) -> None:
        self.rss_bytes = rss_bytes
        self.limit_bytes = limit_bytes
        super().__init__(
            f"resident memory {format_bytes(rss_bytes)} passed the limit "
            f"{format_bytes(limit_bytes)} at epoch {epoch}, step {step}; stopped instead of "
            "swapping. Raise the memory limit, or lower the micro-batch"
        )


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA raises `torch.OutOfMemoryError`; the CPU allocator and MPS may raise a
    plain RuntimeError saying they could not allocate."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        words in text for words in ("can't allocate memory", "not enough memory", "out of memory")
    )


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

    @property
    def val_loss(self) -> float:
        return float(self.val_metrics["log_loss"])

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict(self): it would deep-copy the model's weights.
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"}
        out["model_config"] = self.model_config.to_dict()
        out["train_config"] = self.train_config.model_dump(mode="json")
        out["history"] = [asdict(r) for r in self.history]
        return out


# ---------------------------------------------------------------- pure pieces


def learning_rate_factor(
    step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float
) -> float:
    """Multiplier of the peak learning rate for optimizer step `step` (0-based):
    linear warmup over `warmup_steps`, then cosine decay to `min_lr_ratio` at
    `total_steps`, flat after."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def balanced_pos_weight(labels: torch.Tensor) -> float:
    """negatives / positives: positives then weigh as much as negatives in the loss."""
    positives = float(labels.sum())
    if positives == 0 or positives == len(labels):
        raise InputError("the training split has only one class", "labels")
    return (len(labels) - positives) / positives


def configure_optimizer(
    model: torch.nn.Module, config: TrainConfig, device: torch.device
) -> torch.optim.AdamW:
    """AdamW decaying matrices (linear weights, the position table) but not biases
    and norm gains, as nanoGPT does; fused where the device has the kernel."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = device.type in ("cpu", "cuda")
    return torch.optim.AdamW(groups, lr=config.learning_rate, fused=fused)


def attention_kernel(device: torch.device, dtype: str) -> contextlib.AbstractContextManager:
    """Under bf16 autocast on CPU, the math attention path (batched matmuls): at the
    few tokens a daily window makes, the fused flash kernel's bf16 path is up to 2x
    slower per training step. fp32 and CUDA keep PyTorch's choice."""
    if device.type == "cpu" and dtype == "bf16":
        return sdpa_kernel(SDPBackend.MATH)
    return contextlib.nullcontext()


@contextlib.contextmanager
def forward_context(device: torch.device, dtype: str) -> Iterator[None]:
    """How every forward pass runs, in training and in prediction: bf16 autocast
    when asked, with the attention kernel that suits it."""
    with (
        attention_kernel(device, dtype),
        torch.autocast(device.type, torch.bfloat16, enabled=dtype == "bf16"),
    ):
        yield


# ---------------------------------------------------------------- the optimizer step


class OptimizerStep:
    """One optimizer step over a group of samples, run as micro-batches.

    Each micro-batch's summed loss is divided by the size of the whole group
    before backward, so the accumulated gradient equals the gradient of one
    batch of the group, however it is split (a last partial group included).
    """

    def __init__(
        self,
        model: PatchTST,
        config: TrainConfig,
        device: torch.device,
        precision: Precision,
        micro_batch: int,
        total_steps: int,
        pos_weight: float | None = None,
    ) -> None:
        self.model = model
        self.forward = torch.compile(model) if config.compile else model
        self.device = device
        self.dtype = precision.dtype
        self.micro_batch = micro_batch
        self.grad_clip = config.grad_clip
        self.pos_weight = (
            torch.tensor(pos_weight, device=device) if pos_weight is not None else None
        )
        self.optimizer = configure_optimizer(model, config, device)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda step: learning_rate_factor(
                step, config.warmup_steps, total_steps, config.min_lr_ratio
            ),
        )

    def accumulate(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Forward and backward every micro-batch of the group; returns the group's
        mean loss (a 0-d tensor on the device)."""
        n = len(labels)
        total = torch.zeros((), device=self.device)
        for start in range(0, n, self.micro_batch):
            x = inputs[start : start + self.micro_batch]
            y = labels[start : start + self.micro_batch]
            with forward_context(self.device, self.dtype):
                logits = self.forward(x)
            loss = F.binary_cross_entropy_with_logits(
                logits.float(), y, pos_weight=self.pos_weight, reduction="sum"
            )
            (loss / n).backward()
            total += loss.detach()
        return total / n

    def __call__(self, inputs: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
        """Accumulate, clip, step. Returns (mean loss, gradient norm) of the group; the
        weights are left unchanged when either is not finite."""
        loss = self.accumulate(inputs, labels)
        if self.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        else:
            norm = torch.zeros((), device=self.device)
        # One host sync per step: the loss is needed on the host anyway.
        loss_value, norm_value = torch.stack([loss, norm.float()]).tolist()
        if math.isfinite(loss_value) and math.isfinite(norm_value):
            self.optimizer.step()
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_value, norm_value

    @property
    def learning_rate(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])


# ---------------------------------------------------------------- prediction


def device_windows(data: WindowDataset, device: torch.device) -> torch.Tensor:
    """The dataset's window view on `device`: the feature tensor is copied once and
    unfolded there, never the (much larger) windows themselves."""
    if device.type == "cpu":
        return data.windows
    features = data.features.to(device)
    return features.unfold(0, data.context_days, 1).transpose(1, 2)


@torch.inference_mode()
def predict_logits(
    model: PatchTST,
    data: WindowDataset,
    rows: torch.Tensor,
    device: torch.device,
    dtype: str = "fp32",
    batch_size: int = 512,
) -> torch.Tensor:
    """Logits (float32, on CPU) of the given rows, in order, in eval mode."""
    was_training = model.training
    model.eval()
    windows = device_windows(data, device)
    out = []
    for start in range(0, len(rows), batch_size):
        index = rows[start : start + batch_size].to(device) - (data.context_days - 1)
        with forward_context(device, dtype):
            out.append(model(windows[index]).float().cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def predict_proba(
    model: PatchTST,
    data: WindowDataset,
    rows: torch.Tensor,
    device: torch.device,
    dtype: str = "fp32",
    batch_size: int = 512,
) -> np.ndarray:
    """Predicted probability of a positive label for each row (float64)."""
    logits = predict_logits(model, data, rows, device, dtype, batch_size)
    return torch.sigmoid(logits.double()).numpy()


# ---------------------------------------------------------------- the run


def _check_inputs(model_config: PatchTSTConfig, data: WindowDataset) -> None:
    if model_config.num_classes != 2:
        raise InputError("the trainer trains binary classifiers (num_classes 2)", "num_classes")
    n_features = data.features.shape[1]
    if (model_config.n_features, model_config.context_days) != (n_features, data.context_days):
        raise InputError(
            f"model expects {model_config.n_features} features x {model_config.context_days} "
            f"days but the dataset has {n_features} x {data.context_days}",
            "model config",
        )
    for split in ("train", "val"):
        if len(data.rows(split)) == 0:
            raise InputError(f"the dataset has no {split} samples", "dataset")


def _batch_config(
    model_config: PatchTSTConfig,
    config: TrainConfig,
    limit_bytes: int,
    precision: Precision,
    device: torch.device,
    micro_batch: int | None,
) -> BatchConfig:
    """The planner's batch, or the given micro-batch with its estimate."""
    if micro_batch is None:
        return memory_safe_batch_config(
            model_config, config.effective_batch, limit_bytes, precision.dtype, device.type
        )
    steps = math.ceil(config.effective_batch / micro_batch)
    estimate = estimate_training_memory(
        model_config, micro_batch, precision.dtype, device.type, steps
    )
    return BatchConfig(micro_batch, steps, config.effective_batch, estimate.peak_bytes)


def train(
    model_config: PatchTSTConfig,
    data: WindowDataset,
    config: TrainConfig | None = None,
    *,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    on_step: Callable[[int, int, int], None] | None = None,
) -> TrainResult:
    """Train `model_config` on the train split of `data`, early-stopped on val.

    `on_epoch(record)` runs after every epoch's validation (HPO reports and
    prunes there; an exception it raises stops the run and propagates).
    `on_step(epoch, step, steps_per_epoch)` runs after every optimizer step,
    for progress bars. Raises `InputError` on inconsistent inputs and
    `TrainingError` on a fault (see the module docstring).
    """
    config = config or TrainConfig()
    _check_inputs(model_config, data)
    device = resolve_device(config.device)
    precision = resolve_precision(config.dtype, device)
    rss_start = psutil.Process().memory_info().rss
    if config.memory_limit_bytes is not None:
        limit_bytes = config.memory_limit_bytes
    else:
        limit_bytes = default_memory_limit(device).bytes
    # The guard watches this process's RAM. On CPU and MPS training memory is RAM,
    # so it may grow by the limit; on CUDA the limit is the GPU's and host memory
    # may grow by the default share of available RAM.
    if device.type == "cuda":
        rss_limit = rss_start + int(psutil.virtual_memory().available * RAM_AVAILABLE_FRACTION)
    else:
        rss_limit = rss_start + limit_bytes
    plan = _batch_config(model_config, config, limit_bytes, precision, device, config.micro_batch)

    retries: list[dict[str, Any]] = []
    while True:
        failure = None
        try:
            result = _run(
                model_config,
                data,
                config,
                device,
                precision,
                plan,
                limit_bytes,
                rss_limit,
                on_epoch,
                on_step,
            )
        except RuntimeError as exc:
            if not is_out_of_memory(exc):
                raise
            failure = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if failure is None:
            break
        # The exception (and the frames holding the model) is gone here; return
        # the memory before the retry allocates again.
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if plan.micro_batch == 1:
            raise TrainingOutOfMemory(
                f"out of memory at micro-batch 1 on {device} ({failure}); this architecture "
                "does not fit here: set a lower memory limit so that the planner excludes it, "
                "or use a device with more memory"
            )
        retry = _batch_config(
            model_config, config, limit_bytes, precision, device, plan.micro_batch // 2
        )
        retries.append(
            {
                "micro_batch": plan.micro_batch,
                "accumulation_steps": plan.accumulation_steps,
                "retry_micro_batch": retry.micro_batch,
                "retry_accumulation_steps": retry.accumulation_steps,
                "error": failure,
            }
        )
        plan = retry

    result.oom_retries = retries
    return result


def _run(
    model_config: PatchTSTConfig,
    data: WindowDataset,
    config: TrainConfig,
    device: torch.device,
    precision: Precision,
    plan: BatchConfig,
    limit_bytes: int,
    rss_limit: int,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    on_step: Callable[[int, int, int], None] | None = None,
) -> TrainResult:
    """One attempt at one micro-batch; seeded, so a retry starts from the same state."""
    torch.manual_seed(config.seed)
    shuffle = torch.Generator().manual_seed(config.seed)
    model = PatchTST(model_config).to(device)
    train_rows, val_rows = data.rows("train"), data.rows("val")
    labels = data.labels.to(device)
    windows = device_windows(data, device)
    first_row = data.context_days - 1
    val_labels = data.labels[val_rows].numpy()

    pos_weight: float | None
    if config.pos_weight == "balanced":
        pos_weight = balanced_pos_weight(data.labels[train_rows])
    else:
        pos_weight = config.pos_weight  # type: ignore[assignment]
    n_train = len(train_rows)
    steps_per_epoch = math.ceil(n_train / config.effective_batch)
    step = OptimizerStep(
        model,
        config,
        device,
        precision,
        plan.micro_batch,
        config.max_epochs * steps_per_epoch,
        pos_weight,
    )
    eval_batch = plan.micro_batch * EVAL_BATCH_FACTOR

    history: list[EpochRecord] = []
    best_loss, best_epoch, best_state = math.inf, 0, None
    epochs_without_improvement = 0
    train_seconds = 0.0
    process = psutil.Process()  # one handle: the guard reads it every step
    peak_rss = process.memory_info().rss
    stopped_early = False
    for epoch in range(1, config.max_epochs + 1):
        started = time.perf_counter()
        model.train()
        order = train_rows[torch.randperm(n_train, generator=shuffle)]
        loss_sum = 0.0
        for index, group in enumerate(_groups(order, config.effective_batch), 1):
            device_rows = group.to(device)
            loss, norm = step(windows[device_rows - first_row], labels[device_rows])
            if not math.isfinite(loss):
                raise TrainingDiverged(epoch, index, f"loss is {loss}")
            if not math.isfinite(norm):
                raise TrainingDiverged(epoch, index, f"gradient norm is {norm}")
            loss_sum += loss * len(group)
            rss = process.memory_info().rss
            peak_rss = max(peak_rss, rss)
            if rss > rss_limit:
                raise MemoryLimitExceeded(rss, rss_limit, epoch, index)
            if on_step is not None:
                on_step(epoch, index, steps_per_epoch)
        train_seconds += time.perf_counter() - started
        probabilities = predict_proba(model, data, val_rows, device, precision.dtype, eval_batch)
        if not np.isfinite(probabilities).all():
            # The last step's update overflowed the weights although its loss and
            # gradient norm were finite.
            raise TrainingDiverged(epoch, steps_per_epoch, "validation predictions are not finite")
        val_loss = log_loss(val_labels, probabilities)
        record = EpochRecord(
            epoch=epoch,
            train_loss=loss_sum / n_train,
            val_loss=val_loss,
            val_auc=roc_auc(val_labels, probabilities),
            learning_rate=step.learning_rate,
            seconds=time.perf_counter() - started,
            rss_bytes=process.memory_info().rss,
        )
        history.append(record)
        # Keras' rule: only a drop of more than min_delta is an improvement, and
        # the weights restored are those of the last improvement.
        if val_loss < best_loss - config.min_delta:
            best_loss, best_epoch = val_loss, epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            epochs_without_improvement = 0
        else:
            epochs_without_improvement += 1
        if on_epoch is not None:
            on_epoch(record)
        if epochs_without_improvement >= config.patience:
            stopped_early = True
            break

    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    probabilities = predict_proba(model, data, val_rows, device, precision.dtype, eval_batch)
    return TrainResult(
        model=model,
        model_config=model_config,
        train_config=config,
        param_count=model.num_parameters(),
        device=str(device),
        dtype=precision.dtype,
        dtype_reason=precision.reason,
        micro_batch=plan.micro_batch,
        accumulation_steps=plan.accumulation_steps,
        effective_batch=config.effective_batch,
        memory_estimate_bytes=plan.memory_bytes,
        memory_limit_bytes=limit_bytes,
        oom_retries=[],
        pos_weight=pos_weight,
        epochs_run=len(history),
        best_epoch=best_epoch,
        stopped_early=stopped_early,
        history=history,
        val_metrics=classification_metrics(val_labels, probabilities, config.decision_threshold),
        train_seconds=train_seconds,
        samples_per_second=n_train * len(history) / train_seconds if train_seconds else 0.0,
        peak_rss_bytes=peak_rss,
    )


def _groups(order: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    """Consecutive groups of `size` rows; the last one may be smaller."""
    for start in range(0, len(order), size):
        yield order[start : start + size]
