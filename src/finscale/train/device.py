"""Which device and precision a run uses, how much memory it may take, and the
device's peak FLOP/s.

`resolve_hardware(train_config)` resolves all of it once per process and
request into one frozen `Hardware` that is handed down to the trainer; the
pieces (`resolve_device`, `resolve_precision`, `default_memory_limit`,
`peak_flops`) stay public for the checks that need only one of them.
Automatic choices are recorded in every result, so a figure can always be
traced to the hardware and precision that produced it.
"""

from __future__ import annotations

import functools
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import torch

from finscale.errors import InputError
from finscale.model import ComputeDtype

if TYPE_CHECKING:
    from finscale.config import TrainConfig

# Leave room for what the estimate does not see: the CUDA context and other
# processes on the GPU; the OS, the page cache and the user's own programs on CPU.
CUDA_FREE_FRACTION = 0.9
RAM_AVAILABLE_FRACTION = 0.8

# CPU flags of native bf16 matrix units: Intel AMX and AVX512-BF16 (Intel, AMD Zen 4+).
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")

# Below this many training FLOPs per sample (`estimate_flops`) bf16 autocast on a CPU
# costs more than it saves: its casts and per-kernel overhead outweigh matrix products
# too small to gain. `benchmarks/cpu_precision.py` on a Zen 4 core: the quick preset's
# 20K models (0.5-0.7 MFLOP) step 5-21% faster in fp32; at 200K (4.9-8.6 MFLOP) bf16
# is 0.90-1.37x, even over the grid; at 2M (58-88 MFLOP) 1.3-1.7x.
CPU_BF16_MIN_FLOPS_PER_SAMPLE = 2_000_000


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA, then Apple MPS, then CPU; `cpu`, `cuda`, `cuda:1`, `mps` are checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(
            f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps", "train.device"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(
                "CUDA is not available on this machine; use device cpu", "train.device"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(
                f"no {name}: this machine has {torch.cuda.device_count()} CUDA device(s)",
                "train.device",
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("Apple MPS is not available on this machine", "train.device")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"unsupported device type {device.type!r}", "train.device")
    return device


def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none, as on macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_has_bf16() -> bool:
    return bool(cpu_flags() & set(BF16_CPU_FLAGS))


@dataclass(frozen=True)
class Precision:
    dtype: ComputeDtype
    reason: str  # why: recorded with results


def resolve_precision(
    name: str, device: torch.device, flops_per_sample: int | None = None
) -> Precision:
    """`auto`: bf16 autocast on CUDA with bf16 support and on CPUs with native bf16
    units, fp32 elsewhere (MPS included); `fp32` and `bf16` are taken as asked.

    `flops_per_sample` is the training FLOPs of one sample of the model(s) to be
    trained (`estimate_flops`; a study passes its grid's median): on a CPU, `auto`
    keeps models below `CPU_BF16_MIN_FLOPS_PER_SAMPLE` in fp32, where bf16 is slower.
    None: not known, the model is taken to be large enough."""
    if name in ("fp32", "bf16"):
        return Precision(name, "asked")  # type: ignore[arg-type]
    if name != "auto":
        raise InputError(f"unknown dtype {name!r}; use auto, fp32 or bf16", "train.dtype")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return Precision("bf16", "auto: CUDA device supports bf16")
        return Precision("fp32", "auto: CUDA device without bf16")
    if device.type == "cpu" and cpu_has_bf16():
        units = ", ".join(sorted(cpu_flags() & set(BF16_CPU_FLAGS)))
        if flops_per_sample is not None and flops_per_sample < CPU_BF16_MIN_FLOPS_PER_SAMPLE:
            return Precision(
                "fp32",
                f"auto: CPU has native bf16 units ({units}), but a model of "
                f"{flops_per_sample / 1e6:.2g} MFLOP per sample trains faster in fp32 "
                f"(bf16 from {CPU_BF16_MIN_FLOPS_PER_SAMPLE / 1e6:.0f} MFLOP)",
            )
        return Precision("bf16", f"auto: CPU has native bf16 units ({units})")
    return Precision("fp32", f"auto: no native bf16 on {device.type}")


@dataclass(frozen=True)
class MemoryLimit:
    bytes: int
    source: str  # where the figure came from, for the user and the records


def default_memory_limit(device: torch.device) -> MemoryLimit:
    """90% of free CUDA memory, or 80% of the RAM available now on CPU and MPS."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return MemoryLimit(
            int(free * CUDA_FREE_FRACTION),
            f"{CUDA_FREE_FRACTION:.0%} of free memory on {device}",
        )
    available = psutil.virtual_memory().available
    return MemoryLimit(
        int(available * RAM_AVAILABLE_FRACTION),
        f"{RAM_AVAILABLE_FRACTION:.0%} of available RAM",
    )


# ---------------------------------------------------------------- peak FLOP/s

# Dense peaks of the data sheets, FLOP/s: bf16 on tensor cores, fp32 without them
# (PyTorch's default keeps TF32 off for matmuls). First match of the device name
# wins, so the more specific names come first. None: no bf16 units.
CUDA_PEAK_FLOPS: tuple[tuple[str, float | None, float], ...] = (
    (r"\bH100\b.*\bPCIe\b", 756e12, 51.2e12),
    (r"\bH100 NVL\b", 835e12, 60.0e12),
    (r"\bH100\b", 989.4e12, 66.9e12),
    (r"\bH200 NVL\b", 835e12, 60.0e12),
    (r"\bG?H200\b", 989.4e12, 66.9e12),
    (r"\bA100\b", 312e12, 19.5e12),
    (r"\bL40S\b", 362e12, 91.6e12),
    (r"\bL4\b", 121e12, 30.3e12),
    (r"\bA10\b", 125e12, 31.2e12),
    (r"\bV100\b", None, 15.7e12),
    (r"\bT4\b", None, 8.1e12),
)

# One n x n matmul per timing: at 1024 about 2 GFLOP, large enough for the BLAS
# to reach its peak, small enough that a few take a fraction of a second.
PEAK_MATMUL_SIZE = 1024
PEAK_MATMUL_REPEATS = 3


def cuda_peak_flops(device_name: str, dtype: ComputeDtype) -> float | None:
    """The data-sheet peak of a CUDA device by name, or None for a device not in
    `CUDA_PEAK_FLOPS` (or bf16 on one without bf16 units)."""
    for pattern, bf16, fp32 in CUDA_PEAK_FLOPS:
        if re.search(pattern, device_name):
            return bf16 if dtype == "bf16" else fp32
    return None


def measure_matmul_flops(
    dtype: ComputeDtype = "fp32", n: int = PEAK_MATMUL_SIZE, repeats: int = PEAK_MATMUL_REPEATS
) -> float:
    """FLOP/s of the fastest of `repeats` n x n matmuls on CPU in `dtype`, after one
    warm-up. Uses its own random generator: the global seed is left as it was."""
    generator = torch.Generator().manual_seed(0)
    torch_dtype = torch.float32 if dtype == "fp32" else torch.bfloat16
    a, b = (torch.randn(n, n, generator=generator).to(torch_dtype) for _ in range(2))
    a @ b
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best


@functools.cache
def cpu_peak_flops(dtype: ComputeDtype = "fp32") -> float:
    """This machine's measured CPU matmul peak in `dtype`, measured once per process
    (`measure_matmul_flops`: about 0.1-0.5 s on a 2-core machine at fp32)."""
    return measure_matmul_flops(dtype)


def peak_flops(device: torch.device, dtype: ComputeDtype) -> tuple[float | None, str]:
    """(peak FLOP/s, where the figure comes from) of `device` at `dtype`.

    CUDA: the data-sheet table `CUDA_PEAK_FLOPS` by device name; None for a
    device it does not know. CPU: measured, a matmul in the run's own compute
    dtype (fp32, or bf16 under bf16 autocast, whose matrix products run in
    bf16), once per process. MPS: None, not measured.
    """
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = cuda_peak_flops(name, dtype)
        if peak is None:
            return None, f"unknown: {name} {dtype} is not in the peak table"
        return peak, f"data sheet: {name} {dtype}"
    if device.type == "cpu":
        n = PEAK_MATMUL_SIZE
        return cpu_peak_flops(dtype), f"measured: best {dtype} {n}x{n} matmul on this CPU"
    return None, f"unknown: no peak for {device.type}"


# ---------------------------------------------------------------- the hardware of a run


@dataclass(frozen=True)
class Hardware:
    """Everything a run needs to know about where it runs, resolved once."""

    device: torch.device
    precision: Precision
    memory_limit: MemoryLimit
    peak_flops_per_second: float | None  # at the run's compute dtype; None where unknown
    peak_source: str  # where the peak comes from, for the records

    @property
    def dtype(self) -> ComputeDtype:
        return self.precision.dtype

    @property
    def memory_limit_bytes(self) -> int:
        return self.memory_limit.bytes


def resolve_hardware(config: TrainConfig, flops_per_sample: int | None = None) -> Hardware:
    """The device, precision, memory limit and peak FLOP/s of `config.device`,
    `config.dtype` and `config.memory_limit_bytes` (None: `default_memory_limit`);
    `flops_per_sample` of the model(s) to train informs `dtype: auto` on a CPU
    (`resolve_precision`).

    Resolved once per process for each such request and cached: every later
    call (every trial of a study) gets the same `Hardware`, so the plan made
    before a study and the batch each trial trains at agree. Raises
    `InputError` for an unknown or unavailable device or dtype (not cached).
    `clear_hardware_cache()` forgets every resolved request.
    """
    if flops_per_sample is not None and flops_per_sample >= CPU_BF16_MIN_FLOPS_PER_SAMPLE:
        flops_per_sample = None  # decides nothing: one cache entry for every large model
    return _resolve_hardware(
        config.device, config.dtype, config.memory_limit_bytes, flops_per_sample
    )


@functools.cache
def _resolve_hardware(
    device_name: str, dtype: str, memory_limit_bytes: int | None, flops_per_sample: int | None
) -> Hardware:
    device = resolve_device(device_name)
    precision = resolve_precision(dtype, device, flops_per_sample)
    if memory_limit_bytes is None:
        limit = default_memory_limit(device)
    else:
        limit = MemoryLimit(memory_limit_bytes, "asked")
    peak, source = peak_flops(device, precision.dtype)
    return Hardware(device, precision, limit, peak, source)


def clear_hardware_cache() -> None:
    """Forget every resolved `Hardware` (the measured CPU peaks stay measured)."""
    _resolve_hardware.cache_clear()
