"""Which device and precision a run uses, and how much memory it may take.

Automatic choices are recorded in every result, so a figure can always be
traced to the hardware and precision that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psutil
import torch

from finscale.errors import InputError
from finscale.model.memory import ComputeDtype

# Leave room for what the estimate does not see: the CUDA context and other
# processes on the GPU; the OS, the page cache and the user's own programs on CPU.
CUDA_FREE_FRACTION = 0.9
RAM_AVAILABLE_FRACTION = 0.8

# CPU flags of native bf16 matrix units: Intel AMX and AVX512-BF16 (Intel, AMD Zen 4+).
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


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
            f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps", "--device"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("CUDA is not available on this machine; use --device cpu", "--device")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(
                f"no {name}: this machine has {torch.cuda.device_count()} CUDA device(s)",
                "--device",
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("Apple MPS is not available on this machine", "--device")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"unsupported device type {device.type!r}", "--device")
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


def resolve_precision(name: str, device: torch.device) -> Precision:
    """`auto`: bf16 autocast on CUDA with bf16 support and on CPUs with native bf16
    units, fp32 elsewhere (MPS included); `fp32` and `bf16` are taken as asked."""
    if name in ("fp32", "bf16"):
        return Precision(name, "asked")  # type: ignore[arg-type]
    if name != "auto":
        raise InputError(f"unknown dtype {name!r}; use auto, fp32 or bf16", "--dtype")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return Precision("bf16", "auto: CUDA device supports bf16")
        return Precision("fp32", "auto: CUDA device without bf16")
    if device.type == "cpu" and cpu_has_bf16():
        units = ", ".join(sorted(cpu_flags() & set(BF16_CPU_FLAGS)))
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
