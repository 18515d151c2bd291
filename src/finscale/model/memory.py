"""Analytic peak training memory of a PatchTST, and the micro-batch that fits.

A study must never swap or run out of memory, so the micro-batch and the
gradient-accumulation steps of every architecture come from this estimate,
checked against measured peaks by `benchmarks/memory_estimate.py`, never from
trial and error.

The formula, for P parameters, T = num_patches tokens, width d, feed-forward
width f, h heads and a micro-batch of B samples (bytes):

    weights      4P                 fp32 master weights, always
    gradients    4P                 fp32 .grad
    optimizer    8P                 AdamW's two moments (fused AdamW: no temporaries)
    activations  (B x saved(T, d, f, h) + 2 x linear weights in bf16) x overhead
    transient    B x T x (2f + 4d) x 4   gradients flowing backward

`saved` counts every tensor autograd keeps for backward, per block:

    norm inputs        2 x T d x 4       the residual stream stays fp32
    norm statistics    2 x 2 T x 4       mean and 1/std
    matmul inputs      (2 T d + 2 T f + T d) x a     qkv and fc; GELU and ff proj;
                                                     attention proj
    q, k, v            3 T d x a
    attention          h T x 4           log-sum-exp of the fused kernel. The math
                                         kernel (the trainer's under bf16 on CPU,
                                         and any with attention dropout on CPU)
                                         runs in fp32: q, k, v at 4 bytes and the
                                         weights h T^2 x 4; with attention dropout
                                         also their mask and the dropped weights
    dropout masks      2 T d x m         when dropout > 0

plus the embedding (patches T x patch_len x n_features x a, its dropout mask)
and the final norm and head (T d x 4 + T d x a). Here a is the compute dtype's
size (4 for fp32, 2 for bf16 autocast) and m a dropout mask element: the
masked tensor's size on CPU, one byte on CUDA. Under bf16 autocast each linear
weight but the embedding's is also cast once per forward and kept for
backward (2 bytes each).
The overhead is 1.25 on CPU, where freed activation blocks stay in the C
heap, and 1 on CUDA.

The peak falls in backward. Activations are freed part by part from the head
down while gradients appear part by part, so it is the maximum over parts of
(gradients so far + activations not yet freed). Gradients are freed after
every optimizer step; when accumulating, all of them are alive from the
second micro-batch on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from finscale.errors import InputError
from finscale.model.params import parameter_breakdown
from finscale.model.patchtst import PatchTSTConfig
from finscale.units import format_bytes

ComputeDtype = Literal["fp32", "bf16"]
DeviceType = Literal["cpu", "cuda", "mps"]
DTYPE_BYTES: dict[str, int] = {"fp32": 4, "bf16": 2}
FP32 = 4

# glibc's heap keeps the blocks of freed activations, and the next micro-batch
# cannot always reuse them whole, so on CPU the resident size of activations
# exceeds their sum: measured 1.1x to 1.25x (benchmarks/memory_estimate.py).
# CUDA's max_memory_allocated counts live tensors only.
ACTIVATION_OVERHEAD: dict[str, float] = {"cpu": 1.25, "cuda": 1.0, "mps": 1.25}

# Fixed cost above the tensors: allocator rounding, BLAS/oneDNN scratch, autograd
# bookkeeping. Measured by benchmarks/memory_estimate.py.
WORKSPACE_BYTES: dict[str, int] = {"cpu": 8 * 2**20, "cuda": 8 * 2**20, "mps": 8 * 2**20}


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak training memory of one architecture at one micro-batch, in bytes."""

    weights_bytes: int
    gradients_bytes: int
    optimizer_bytes: int
    activations_bytes: int  # tensors autograd keeps for backward, one micro-batch
    peak_bytes: int  # what must fit in memory


@dataclass(frozen=True)
class BatchConfig:
    """How an architecture trains within a memory limit at a given effective batch."""

    micro_batch: int
    accumulation_steps: int
    effective_batch: int
    memory_bytes: int  # estimated peak at this micro-batch


class ArchitectureTooLarge(InputError):
    """An architecture whose estimate exceeds the memory limit even at micro-batch 1."""

    def __init__(self, config: PatchTSTConfig, memory_bytes: int, limit_bytes: int) -> None:
        self.memory_bytes = memory_bytes
        self.limit_bytes = limit_bytes
        super().__init__(
            f"d_model {config.d_model} x {config.n_layers} layers needs "
            f"{format_bytes(memory_bytes)} at micro-batch 1, over the memory limit "
            f"{format_bytes(limit_bytes)}",
            "train.memory_limit_bytes",
        )


def _segments(
    config: PatchTSTConfig, dtype: ComputeDtype, device_type: DeviceType
) -> list[tuple[int, int, int]]:
    """(parameters, saved bytes per sample, bf16 weight-copy bytes) of each part, in
    forward order: embedding, each block, final norm + head."""
    a = DTYPE_BYTES[dtype]
    autocast = dtype != "fp32"
    T, d, f, h = config.num_patches, config.d_model, config.d_ff, config.n_heads

    def mask(element_bytes: int, p: float) -> int:
        if p == 0.0:
            return 0
        return T * d * (1 if device_type == "cuda" else element_bytes)

    parts = parameter_breakdown(config)
    stats = 2 * T * FP32
    copy = 2 if autocast else 0

    # The embedding's input needs no gradient, so its bf16 weight copy is not kept.
    embed_saved = T * config.patch_dim * a + mask(FP32, config.dropout)

    if config.attention_dropout > 0 and device_type == "cpu":
        # The math kernel runs in fp32 even under autocast: q, k^T, v copies and
        # the weights, their dropout mask and the dropped weights.
        attention = 3 * T * d * FP32 + 3 * h * T * T * FP32 + T * d * a
    elif autocast and device_type == "cpu":
        # The trainer's math path under bf16 on CPU upcasts too: fp32 q, k, v and
        # softmax weights.
        attention = 3 * T * d * FP32 + h * T * T * FP32 + T * d * a
    else:
        attention = 3 * T * d * a + h * T * FP32 + T * d * a  # fused kernel: q, k, v, lse, out
    block_saved = (
        2 * (T * d * FP32 + stats)  # the two norms' inputs and statistics
        + T * d * a  # qkv input
        + attention
        + T * d * a  # feed-forward input
        + 2 * T * f * a  # GELU input, projection input
        + 2 * mask(a, config.dropout)
    )
    block_copy = copy * (4 * d * d + 2 * d * f)

    head_saved = T * d * FP32 + stats + mask(FP32, config.head_dropout) + T * d * a
    head_copy = copy * T * d * config.n_outputs

    block_params = parts["blocks"] // config.n_layers
    return (
        [(parts["embedding"] + parts["position"], embed_saved, 0)]
        + [(block_params, block_saved, block_copy)] * config.n_layers
        + [(parts["final_norm"] + parts["head"], head_saved, head_copy)]
    )


def saved_activation_bytes(
    config: PatchTSTConfig,
    micro_batch: int,
    dtype: ComputeDtype = "fp32",
    device_type: DeviceType = "cpu",
) -> int:
    """Bytes of every tensor autograd keeps for backward after one forward pass of
    `micro_batch` samples (parameters excluded, bf16 weight copies included)."""
    return sum(micro_batch * s + c for _, s, c in _segments(config, dtype, device_type))


def estimate_training_memory(
    config: PatchTSTConfig,
    micro_batch: int,
    dtype: ComputeDtype = "fp32",
    device_type: DeviceType = "cpu",
    accumulation_steps: int = 1,
) -> MemoryEstimate:
    """Peak bytes of AdamW training at `micro_batch` samples (see the module docstring)."""
    if micro_batch < 1 or accumulation_steps < 1:
        raise ValueError("micro_batch and accumulation_steps must be at least 1")
    if dtype not in DTYPE_BYTES:
        raise InputError(f"unknown dtype {dtype!r}; use fp32 or bf16", "train.dtype")
    segments = _segments(config, dtype, device_type)
    n_params = sum(p for p, _, _ in segments)
    weights = gradients = FP32 * n_params
    optimizer = 2 * FP32 * n_params
    saved = [micro_batch * s + c for _, s, c in segments]
    overhead = ACTIVATION_OVERHEAD[device_type]
    T, d, f = config.num_patches, config.d_model, config.d_ff
    transient = micro_batch * T * (2 * f + 4 * d) * FP32 + WORKSPACE_BYTES[device_type]

    # Backward runs from the head to the embedding; while part i is processed,
    # parts after it hold their gradients and parts up to it their activations.
    backward = 0
    grads_so_far = gradients if accumulation_steps > 1 else 0
    alive = sum(saved)
    for (n, _, _), part in zip(reversed(segments), reversed(saved), strict=True):
        if accumulation_steps == 1:
            grads_so_far += FP32 * n
        backward = max(backward, grads_so_far + round(overhead * alive))
        alive -= part
    peak = weights + optimizer + backward + transient
    return MemoryEstimate(weights, gradients, optimizer, sum(saved), peak)


def plan_batch(
    config: PatchTSTConfig,
    effective_batch: int,
    memory_limit_bytes: int,
    dtype: ComputeDtype = "fp32",
    device_type: DeviceType = "cpu",
    micro_batch: int | None = None,
) -> BatchConfig:
    """How an architecture trains within a memory limit: the micro-batch and the
    accumulation steps that keep `effective_batch`. The one place that decides it,
    for the grid's plan, the trainer and its out-of-memory retries.

    Without `micro_batch`, the planner chooses: the whole effective batch when
    its estimate fits, otherwise the largest power of two below it that fits;
    raises `ArchitectureTooLarge` when even micro-batch 1 does not fit. A given
    `micro_batch` (the user's, or the trainer's halving after an out-of-memory
    error) is taken as it is, with its estimate. The last accumulation group
    may be partial (an effective batch of 100 at micro-batch 64 is 64 + 36).
    """
    if effective_batch < 1:
        raise InputError(
            f"effective batch must be at least 1, got {effective_batch}", "train.effective_batch"
        )
    if memory_limit_bytes < 1:
        raise InputError("memory limit must be positive", "train.memory_limit_bytes")
    if micro_batch is not None:
        steps = math.ceil(effective_batch / micro_batch)
        estimate = estimate_training_memory(config, micro_batch, dtype, device_type, steps)
        return BatchConfig(micro_batch, steps, effective_batch, estimate.peak_bytes)
    candidates = [effective_batch] + [
        2**k for k in reversed(range(int(math.log2(effective_batch)) + 1))
    ]
    for size in dict.fromkeys(c for c in candidates if c <= effective_batch):
        steps = math.ceil(effective_batch / size)
        estimate = estimate_training_memory(config, size, dtype, device_type, steps)
        if estimate.peak_bytes <= memory_limit_bytes:
            return BatchConfig(size, steps, effective_batch, estimate.peak_bytes)
    raise ArchitectureTooLarge(config, estimate.peak_bytes, memory_limit_bytes)


def memory_safe_batch_config(
    config: PatchTSTConfig,
    target_effective_batch: int,
    memory_limit_bytes: int,
    dtype: ComputeDtype = "fp32",
    device_type: DeviceType = "cpu",
) -> BatchConfig:
    """The planner's choice: `plan_batch` without a given micro-batch."""
    return plan_batch(config, target_effective_batch, memory_limit_bytes, dtype, device_type)
