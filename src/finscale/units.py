"""Units as people write them: parameter budgets ("2M"), byte sizes ("16GB"),
durations, and architecture labels ("d64/L4/h8").

Pure functions on the ground floor, so the config, the model, the search and
the report all parse and print a budget the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from finscale.errors import InputError

_NUMBER = r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_BUDGET_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9}
_BYTE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


# ----------------------------------------------------------------- parameter budgets


def parse_budget(text: str | int) -> int:
    """Parameters of a budget written as "50K", "2M", "1.5B", "2000000" or an int."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        match = re.fullmatch(rf"\s*{_NUMBER}\s*([kKmMbBgG]?)\s*", str(text))
        if match is None:
            raise InputError(
                f"budget {text!r} is not a parameter count like 50K, 2M, 2B or 2000000",
                "budget",
            )
        value = round(float(match.group(1)) * _BUDGET_SUFFIXES[match.group(2).upper()])
    if value < 1:
        raise InputError(f"budget {text!r} must be at least 1 parameter", "budget")
    return value


def format_budget(n_params: int) -> str:
    """Shortest exact spelling: 2000000 -> "2M", 1500000 -> "1.5M", 123457 -> "123457"."""
    spellings = [str(n_params)]
    for suffix, scale in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n_params >= scale:
            text = f"{n_params / scale:.3f}".rstrip("0").rstrip(".")
            if round(float(text) * scale) == n_params:
                spellings.append(text + suffix)
    return min(spellings, key=len)


def parse_budgets(text: str) -> tuple[int, ...]:
    """A comma-separated list of budgets, in the order given, duplicates dropped."""
    budgets = [parse_budget(part) for part in text.split(",") if part.strip()]
    if not budgets:
        raise InputError("no budget given", "scale.budgets")
    return tuple(dict.fromkeys(budgets))


# ----------------------------------------------------------------- byte sizes


def parse_memory_size(text: str | int) -> int:
    """Bytes of "16GB" (10^9), "16GiB" (2^30), "512MB", "1.5GB" or a plain integer."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        match = re.fullmatch(rf"\s*{_NUMBER}\s*([a-zA-Z]*)\s*", str(text))
        unit = match.group(2).upper() if match else ""
        if match is None or unit not in _BYTE_UNITS:
            raise InputError(
                f"memory size {text!r} is not like 16GB, 512MB, 8GiB or a number of bytes",
                "train.memory_limit_bytes",
            )
        value = round(float(match.group(1)) * _BYTE_UNITS[unit])
    if value < 1:
        raise InputError(f"memory size {text!r} must be positive", "train.memory_limit_bytes")
    return value


def format_bytes(n_bytes: int) -> str:
    """Binary units, three significant digits: 1536 -> "1.50 KiB"."""
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:.3g} TiB"


# ----------------------------------------------------------------- durations


def format_clock(seconds: float) -> str:
    """Elapsed time as a clock, "h:mm:ss": 3725 -> "1:02:05"."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def format_duration(seconds: float) -> str:
    """An estimate in its natural unit: "45 s", "12 min", "3.5 h"."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# ----------------------------------------------------------------- architectures


def architecture_label(architecture: Mapping[str, Any] | Any) -> str:
    """ "d64/L4/h8": d_model, n_layers and n_heads of a mapping or an object."""
    if isinstance(architecture, Mapping):
        get = architecture.get
    else:

        def get(name: str) -> Any:
            return getattr(architecture, name, None)

    return f"d{get('d_model')}/L{get('n_layers')}/h{get('n_heads')}"
