"""The architectures of a parameter budget: every (d_model, n_layers, n_heads)
of the search space whose exact parameter count is within the budget's
tolerance, at one data shape.

The grid depends on the data shape: the embedding grows with n_features x
patch_len and the head with num_patches x d_model, so the same budget holds
different architectures for tier a25 and a100. Order is deterministic and the
grid carries a stable hash, so a study can refuse to resume on another grid.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

from finscale.config import ModelConfig
from finscale.errors import InputError
from finscale.model.memory import (
    ArchitectureTooLarge,
    BatchConfig,
    ComputeDtype,
    DeviceType,
    plan_batch,
)
from finscale.model.params import count_parameters
from finscale.model.patchtst import PatchTSTConfig, estimate_flops
from finscale.units import format_budget, parse_budget

DEFAULT_BUDGETS = ("2M", "20M", "200M", "2B")

# The config fields that fix a grid besides the searched dimensions: changing
# any of them changes every parameter count.
SHAPE_FIELDS = (
    "n_features",
    "context_days",
    "patch_len",
    "stride",
    "num_classes",
    "position_padding",
    "bias",
)


def candidates(model: ModelConfig, template: PatchTSTConfig) -> list[PatchTSTConfig]:
    """Every architecture of the search space on `template`'s data shape, in grid order:
    by d_model, then n_layers, then n_heads."""
    return [
        template.replace(d_model=d, n_layers=layers, n_heads=heads, d_ff=model.d_ff(d))
        for d in model.d_models
        for layers in model.n_layers
        for heads in model.n_heads
        if d % heads == 0
    ]


def template_config(
    model: ModelConfig, n_features: int, context_days: int, n_symbols: int = 0
) -> PatchTSTConfig:
    """The PatchTSTConfig every architecture of a grid starts from: data shape and shared
    knobs; the searched dimensions are filled in per architecture. `n_symbols`: a
    panel's symbol count, embedded when `model.symbol_embedding` is on."""
    base_d_model, base_n_layers = model.base_shape
    return PatchTSTConfig(
        parametrization=model.parametrization,
        base_d_model=base_d_model,
        base_n_layers=base_n_layers,
        readout_init=model.readout_init,
        n_features=n_features,
        context_days=context_days,
        n_symbols=n_symbols if model.symbol_embedding else 0,
        patch_len=model.patch_len,
        stride=model.stride,
        dropout=model.dropout,
        attention_dropout=model.attention_dropout,
        head_dropout=model.head_dropout,
        position_padding=model.position_padding,
        bias=model.bias,
    )


@dataclass(frozen=True)
class Architecture:
    index: int
    config: PatchTSTConfig
    param_count: int

    def deviation(self, budget: int) -> float:
        """Relative distance from the budget: +0.05 is 5% over."""
        return self.param_count / budget - 1.0


@dataclass(frozen=True)
class ArchitectureGrid:
    budget: int
    model: ModelConfig
    template: PatchTSTConfig
    architectures: tuple[Architecture, ...]
    hash: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hash", grid_hash(self.template, self.architectures))

    def __len__(self) -> int:
        return len(self.architectures)

    def __getitem__(self, index: int) -> Architecture:
        return self.architectures[index]

    @property
    def median_flops_per_sample(self) -> int | None:
        """Training FLOPs per sample (`estimate_flops`) of the grid's median
        architecture by that count; None for an empty grid. It chooses a study's
        precision under `dtype: auto` (`finscale.train.device.resolve_precision`)."""
        flops = sorted(estimate_flops(arch.config) for arch in self.architectures)
        return flops[len(flops) // 2] if flops else None

    def describe(self) -> str:
        t = self.template
        low, high = budget_range(self.budget, self.model.budget_tolerance)
        return (
            f"budget {format_budget(self.budget)} ({low:,} to {high:,} parameters): "
            f"{len(self)} architectures at data shape {t.n_features} features x "
            f"{t.context_days} days, patch {t.patch_len} stride {t.stride} "
            f"({t.num_patches} patches); grid {self.hash[:12]}"
        )

    def dimension_values(self) -> dict[str, tuple[int, ...]]:
        """The distinct values of each searched dimension present in this grid, sorted."""
        return {
            name: tuple(sorted({getattr(a.config, name) for a in self.architectures}))
            for name in ("d_model", "n_layers", "n_heads")
        }


def budget_range(budget: int, tolerance: float) -> tuple[int, int]:
    """Smallest and largest parameter counts that belong to a budget (inclusive)."""
    return math.ceil(budget * (1 - tolerance)), math.floor(budget * (1 + tolerance))


def grid_hash(template: PatchTSTConfig, architectures: tuple[Architecture, ...]) -> str:
    """sha256 of the data shape and the ordered (d_model, n_layers, n_heads, d_ff, params),
    and of the parametrization with its base shape (and readout init) where it is not
    standard (the same architectures train differently under another)."""
    payload: dict[str, object] = {
        "shape": {name: getattr(template, name) for name in SHAPE_FIELDS},
        "architectures": [
            [a.config.d_model, a.config.n_layers, a.config.n_heads, a.config.d_ff, a.param_count]
            for a in architectures
        ],
    }
    if template.parametrization != "standard":
        identity: list[object] = [
            template.parametrization,
            template.base_d_model,
            template.base_n_layers,
        ]
        if template.readout_init != "zero":  # zero's grids keep the hash they had
            identity.append(template.readout_init)
        payload["parametrization"] = identity
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def build_grid(
    budget: int | str,
    model: ModelConfig | None = None,
    n_features: int = 25,
    context_days: int = 60,
    n_symbols: int = 0,
) -> ArchitectureGrid:
    """All architectures of the search space within the budget's tolerance.

    The data shape is `n_features` x `context_days` with the model config's
    patch_len and stride; `n_symbols` the panel's symbols (counted when
    `model.symbol_embedding`). Raises `InputError` naming the nearest budgets
    that have architectures when none fits.
    """
    budget = parse_budget(budget)
    model = model or ModelConfig()
    template = template_config(model, n_features, context_days, n_symbols)
    low, high = budget_range(budget, model.budget_tolerance)
    chosen = []
    for config in candidates(model, template):
        n = count_parameters(config)
        if low <= n <= high:
            chosen.append(Architecture(len(chosen), config, n))
    if not chosen:
        raise InputError(
            f"no architecture has {format_budget(budget)} parameters "
            f"+-{model.budget_tolerance:.0%} at {template.n_features} features x "
            f"{template.context_days} days, patch {template.patch_len} stride {template.stride}; "
            + _nearest_budgets_hint(budget, model, template),
            "budget",
        )
    return ArchitectureGrid(budget, model, template, tuple(chosen))


def _round_budget(n_params: int) -> int:
    """Two significant digits: a budget a person would type that still holds `n_params`."""
    digits = max(0, len(str(n_params)) - 2)
    return round(n_params, -digits) if digits else n_params


def _nearest_budgets_hint(budget: int, model: ModelConfig, template: PatchTSTConfig) -> str:
    counts = sorted({count_parameters(c) for c in candidates(model, template)})
    below = [n for n in counts if n < budget]
    above = [n for n in counts if n > budget]
    nearest = [n for n in (below[-1:] + above[:1])]
    names = [format_budget(_round_budget(n)) for n in nearest]
    return "nearest budgets with architectures: " + " and ".join(names)


@dataclass(frozen=True)
class PlannedArchitecture:
    """An architecture with the batch it trains at on this machine, or None when even
    micro-batch 1 does not fit the memory limit (excluded, never tried)."""

    architecture: Architecture
    batch: BatchConfig | None
    memory_bytes: int  # estimated peak at the planned micro-batch (at 1 when excluded)

    @property
    def fits(self) -> bool:
        return self.batch is not None


def plan_grid(
    grid: ArchitectureGrid,
    target_effective_batch: int,
    memory_limit_bytes: int,
    dtype: ComputeDtype = "fp32",
    device_type: DeviceType = "cpu",
) -> list[PlannedArchitecture]:
    """The memory-safe batch of every architecture of a grid, in grid order."""
    planned = []
    for arch in grid.architectures:
        try:
            batch = plan_batch(
                arch.config, target_effective_batch, memory_limit_bytes, dtype, device_type
            )
            planned.append(PlannedArchitecture(arch, batch, batch.memory_bytes))
        except ArchitectureTooLarge as exc:
            planned.append(PlannedArchitecture(arch, None, exc.memory_bytes))
    return planned
