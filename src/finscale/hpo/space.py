"""The search space of a study: a budget's architecture grid as ordered dimensions,
and the training values sampled with it.

Optuna's TPE learns little from one unordered categorical of 75 architectures:
every category it has not seen is equally likely. So by default
(`search.architecture_space = "ordered"`) each dimension (d_model, n_layers,
n_heads) is sampled as an integer rank into its sorted values, so TPE can learn
that "deeper" or "wider" helps, and the ranks are mapped to the nearest
architecture the grid holds (not every combination fits the budget). The
`"categorical"` space samples one `arch_idx` over the grid, as the method
finscale is benchmarked against does (`benchmarks/hpo_vs_seed.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from finscale.config import SearchConfig
from finscale.errors import InputError
from finscale.model import Architecture, ArchitectureGrid

DIMENSIONS = ("d_model", "n_layers", "n_heads")
RANK_PARAMS = tuple(f"{name}_rank" for name in DIMENSIONS)
ARCH_INDEX_PARAM = "arch_idx"  # the one param of the categorical space
ARCHITECTURE_SPACES = ("ordered", "categorical")
# The training values a trial samples with its architecture, each named as the
# SearchConfig range it is drawn from; every other module takes the names from here.
TRAINING_PARAMS = ("learning_rate", "weight_decay", "warmup_steps", "dropout")
LOG_PARAMS = ("learning_rate", "weight_decay")  # sampled (and compared) in log space
INTEGER_PARAMS = ("warmup_steps",)
MODEL_PARAMS = ("dropout",)  # set on the model config; the others on the train config


@dataclass(frozen=True)
class ArchitectureSpace:
    """The architectures a study may try (the grid minus excluded ones), with each
    dimension's sorted values, and how a trial's params select one (`mode`: one of
    `ARCHITECTURE_SPACES`)."""

    grid: ArchitectureGrid
    allowed: tuple[Architecture, ...]
    values: dict[str, tuple[int, ...]]
    mode: str = "ordered"

    @classmethod
    def from_grid(
        cls, grid: ArchitectureGrid, excluded: set[int], mode: str = "ordered"
    ) -> ArchitectureSpace:
        if mode not in ARCHITECTURE_SPACES:
            raise ValueError(f"architecture space {mode!r} is not one of {ARCHITECTURE_SPACES}")
        unknown = sorted(i for i in excluded if not 0 <= i < len(grid))
        if unknown:
            raise InputError(
                f"exclude_archs names {unknown}, but the grid has indexes 0 to {len(grid) - 1}",
                "search.exclude_archs",
            )
        allowed = tuple(a for a in grid.architectures if a.index not in excluded)
        if not allowed:
            raise InputError(
                f"every architecture of the grid ({len(grid)}) is excluded by exclude_archs "
                "or the memory limit; raise the limit or exclude fewer",
                "search.exclude_archs",
            )
        values = {
            name: tuple(sorted({getattr(a.config, name) for a in allowed})) for name in DIMENSIONS
        }
        return cls(grid, allowed, values, mode)

    def ranks(self, arch: Architecture) -> dict[str, int]:
        """The rank params that select exactly `arch`."""
        return {
            f"{name}_rank": self.values[name].index(getattr(arch.config, name))
            for name in DIMENSIONS
        }

    def nearest(self, ranks: dict[str, int]) -> Architecture:
        """The allowed architecture closest to the ranks, each dimension scaled to [0, 1];
        ties go to the lower grid index."""

        def distance(arch: Architecture) -> float:
            total = 0.0
            for name in DIMENSIONS:
                span = max(1, len(self.values[name]) - 1)
                own = self.values[name].index(getattr(arch.config, name))
                total += ((own - ranks[f"{name}_rank"]) / span) ** 2
            return total

        return min(self.allowed, key=lambda a: (distance(a), a.index))

    def params_of(self, arch: Architecture) -> dict[str, int]:
        """The architecture params that select exactly `arch` in this space."""
        if self.mode == "categorical":
            return {ARCH_INDEX_PARAM: arch.index}
        return self.ranks(arch)

    def architecture_of(self, params: dict[str, Any]) -> Architecture:
        """The allowed architecture a trial's params select."""
        if self.mode == "categorical":
            index = int(params[ARCH_INDEX_PARAM])
            return next(a for a in self.allowed if a.index == index)
        return self.nearest({name: params[name] for name in RANK_PARAMS})

    def distributions(self, search: SearchConfig) -> dict[str, BaseDistribution]:
        """Every param a trial samples, by name."""
        dists: dict[str, BaseDistribution]
        if self.mode == "categorical":
            dists = {ARCH_INDEX_PARAM: CategoricalDistribution([a.index for a in self.allowed])}
        else:
            dists = {
                f"{name}_rank": IntDistribution(0, len(self.values[name]) - 1)
                for name in DIMENSIONS
            }
        for name in TRAINING_PARAMS:
            low, high = getattr(search, name)
            if name in INTEGER_PARAMS:
                dists[name] = IntDistribution(low, high)
            else:
                dists[name] = FloatDistribution(low, high, log=name in LOG_PARAMS)
        return dists

    def suggest(self, trial: optuna.Trial, search: SearchConfig) -> dict[str, Any]:
        """Sample (or, for an enqueued trial, read) every param of the space."""
        params: dict[str, Any] = {}
        for name, dist in self.distributions(search).items():
            if isinstance(dist, CategoricalDistribution):
                params[name] = trial.suggest_categorical(name, dist.choices)
            elif isinstance(dist, IntDistribution):
                params[name] = trial.suggest_int(name, dist.low, dist.high)
            else:
                params[name] = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
        return params

    def middle(self, search: SearchConfig) -> dict[str, Any]:
        """Training values at the middle of their ranges (geometric for log ranges)."""
        middle: dict[str, Any] = {}
        for name in TRAINING_PARAMS:
            low, high = getattr(search, name)
            if name in LOG_PARAMS:
                middle[name] = math.sqrt(low * high)
            elif name in INTEGER_PARAMS:
                middle[name] = (low + high) // 2
            else:
                middle[name] = (low + high) / 2
        return middle


def within_tolerance(
    a: dict[str, Any], b: dict[str, Any], search: SearchConfig, tolerance: float
) -> bool:
    """Whether two trials' training values differ by at most `tolerance` of each range
    (measured in log space for log ranges). A zero-width range never separates."""
    for name in TRAINING_PARAMS:
        low, high = getattr(search, name)
        x, y = float(a[name]), float(b[name])
        if name in LOG_PARAMS:
            low, high, x, y = (math.log(v) for v in (low, high, x, y))
        span = high - low
        if span > 0 and abs(x - y) / span > tolerance:
            return False
        if span == 0 and x != y:
            return False
    return True
