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
import re
from dataclasses import dataclass, field

from finscale.errors import InputError
from finscale.model.params import count_parameters
from finscale.model.patchtst import PatchTSTConfig

DEFAULT_D_MODELS = (64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
DEFAULT_N_LAYERS = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 160, 180, 192, 256)
DEFAULT_N_HEADS = (2, 4, 8, 16, 32)
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

_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9}


def parse_budget(text: str | int) -> int:
    """Parameters of a budget written as "50K", "2M", "1.5B", "2000000" or an int."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([kKmMbBgG]?)\s*", str(text))
        if match is None:
            raise InputError(
                f"budget {text!r} is not a parameter count like 50K, 2M, 2B or 2000000",
                "--budget",
            )
        value = round(float(match.group(1)) * _SUFFIXES[match.group(2).upper()])
    if value < 1:
        raise InputError(f"budget {text!r} must be at least 1 parameter", "--budget")
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
        raise InputError("no budget given", "--budgets")
    return tuple(dict.fromkeys(budgets))


@dataclass(frozen=True)
class SearchSpace:
    """The architecture dimensions searched, and what belongs to a budget."""

    d_models: tuple[int, ...] = DEFAULT_D_MODELS
    n_layers: tuple[int, ...] = DEFAULT_N_LAYERS
    n_heads: tuple[int, ...] = DEFAULT_N_HEADS
    ff_ratio: float = 4.0  # d_ff = round(ff_ratio * d_model)
    budget_tolerance: float = 0.25  # an architecture belongs within +-25% of the budget

    def __post_init__(self) -> None:
        for name in ("d_models", "n_layers", "n_heads"):
            values = getattr(self, name)
            if not values or any(not isinstance(v, int) or v < 1 for v in values):
                raise InputError(f"{name} must be a non-empty list of positive integers", name)
            object.__setattr__(self, name, tuple(sorted(set(values))))
        if self.ff_ratio <= 0:
            raise InputError(f"ff_ratio must be positive, got {self.ff_ratio}", "ff_ratio")
        if not 0 < self.budget_tolerance < 1:
            raise InputError(
                f"budget_tolerance must be in (0, 1), got {self.budget_tolerance}",
                "budget_tolerance",
            )

    def d_ff(self, d_model: int) -> int:
        return max(1, round(self.ff_ratio * d_model))

    def candidates(self, template: PatchTSTConfig) -> list[PatchTSTConfig]:
        """Every architecture of the space on `template`'s data shape, in grid order."""
        return [
            template.replace(d_model=d, n_layers=layers, n_heads=heads, d_ff=self.d_ff(d))
            for d in self.d_models
            for layers in self.n_layers
            for heads in self.n_heads
            if d % heads == 0
        ]


@dataclass(frozen=True)
class Architecture:
    index: int
    config: PatchTSTConfig
    param_count: int

    def deviation(self, budget: int) -> float:
        """Relative distance from the budget: +0.05 is 5% over."""
        return self.param_count / budget - 1.0

    def label(self) -> str:
        c = self.config
        return f"d={c.d_model} L={c.n_layers} h={c.n_heads}"


@dataclass(frozen=True)
class ArchitectureGrid:
    budget: int
    space: SearchSpace
    template: PatchTSTConfig
    architectures: tuple[Architecture, ...]
    hash: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hash", grid_hash(self.template, self.architectures))

    def __len__(self) -> int:
        return len(self.architectures)

    def __getitem__(self, index: int) -> Architecture:
        return self.architectures[index]

    def shape(self) -> dict[str, int | bool]:
        return {name: getattr(self.template, name) for name in SHAPE_FIELDS}

    def describe(self) -> str:
        t = self.template
        low, high = budget_range(self.budget, self.space.budget_tolerance)
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
    """sha256 of the data shape and the ordered (d_model, n_layers, n_heads, d_ff, params)."""
    payload = {
        "shape": {name: getattr(template, name) for name in SHAPE_FIELDS},
        "architectures": [
            [a.config.d_model, a.config.n_layers, a.config.n_heads, a.config.d_ff, a.param_count]
            for a in architectures
        ],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def build_grid(
    budget: int | str,
    space: SearchSpace | None = None,
    template: PatchTSTConfig | None = None,
) -> ArchitectureGrid:
    """All architectures of `space` within the budget's tolerance on `template`'s shape.

    `template` carries the data shape (n_features, context_days, patch_len,
    stride, ...) and every knob that is not searched (dropout, ...). Raises
    `InputError` naming the nearest budgets that have architectures when none fits.
    """
    budget = parse_budget(budget)
    space = space or SearchSpace()
    template = template or PatchTSTConfig()
    low, high = budget_range(budget, space.budget_tolerance)
    chosen = []
    for config in space.candidates(template):
        n = count_parameters(config)
        if low <= n <= high:
            chosen.append(Architecture(len(chosen), config, n))
    if not chosen:
        raise InputError(
            f"no architecture has {format_budget(budget)} parameters "
            f"+-{space.budget_tolerance:.0%} at {template.n_features} features x "
            f"{template.context_days} days, patch {template.patch_len} stride {template.stride}; "
            + _nearest_budgets_hint(budget, space, template),
            "--budget",
        )
    return ArchitectureGrid(budget, space, template, tuple(chosen))


def _round_budget(n_params: int) -> int:
    """Two significant digits: a budget a person would type that still holds `n_params`."""
    digits = max(0, len(str(n_params)) - 2)
    return round(n_params, -digits) if digits else n_params


def _nearest_budgets_hint(budget: int, space: SearchSpace, template: PatchTSTConfig) -> str:
    counts = sorted({count_parameters(c) for c in space.candidates(template)})
    below = [n for n in counts if n < budget]
    above = [n for n in counts if n > budget]
    nearest = [n for n in (below[-1:] + above[:1])]
    names = [format_budget(_round_budget(n)) for n in nearest]
    return "nearest budgets with architectures: " + " and ".join(names)
