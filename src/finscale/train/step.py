"""One optimizer step of training and what surrounds it: the learning-rate
schedule, the loss (binary cross-entropy, optionally weighted), gradient
clipping, exact gradient accumulation over micro-batches, and the
out-of-memory retry that halves the micro-batch.

Faults never take a study down silently: a non-finite loss is
`TrainingDiverged` naming the epoch and step; an out-of-memory error halves
the micro-batch, doubles accumulation and restarts the run (the effective
batch never changes), down to micro-batch 1 (`TrainingOutOfMemory`); resident
memory growing past the limit is `MemoryLimitExceeded` instead of swapping.
"""

from __future__ import annotations

import contextlib
import gc
import math
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from finscale.config import TrainConfig
from finscale.errors import InputError, RunError
from finscale.model import BatchConfig, PatchTST
from finscale.train.device import Precision
from finscale.units import format_bytes

Result = TypeVar("Result")


# ---------------------------------------------------------------- faults


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
    The optimizer is the model's own (`PatchTST.configure_optimizers`); the
    learning rate follows `learning_rate_factor` over `total_steps`.
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
        self.optimizer = model.configure_optimizers(
            config.weight_decay, config.learning_rate, device.type
        )
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
        """The schedule's current rate, before any group's parametrization factor."""
        group = self.optimizer.param_groups[0]
        return float(group["lr"] / group.get("lr_scale", 1.0))


# ---------------------------------------------------------------- out-of-memory retries


def halve_on_out_of_memory(
    attempt: Callable[[BatchConfig], Result],
    plan: BatchConfig,
    replan: Callable[[int], BatchConfig],
    device: torch.device,
) -> tuple[Result, list[dict[str, Any]]]:
    """`attempt(plan)`, and on an out-of-memory error the same again at
    `replan(micro_batch // 2)`: half the micro-batch, twice the accumulation, the
    same effective batch. Returns the result and one record per retry.

    Raises `TrainingOutOfMemory` when micro-batch 1 does not fit either; any
    other error propagates untouched.
    """
    retries: list[dict[str, Any]] = []
    while True:
        try:
            return attempt(plan), retries
        except RuntimeError as exc:
            if not is_out_of_memory(exc):
                raise
            text = str(exc).strip()
            failure = text.splitlines()[0] if text else type(exc).__name__
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
        retry = replan(plan.micro_batch // 2)
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
