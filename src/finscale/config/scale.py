"""The scale and evaluation sections: the budgets and horizons of a scaling study,
and how its winners are scored."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    field_validator,
)

from finscale.config.base import HorizonDays, StrictSection, TierName, as_int_list, as_name_list
from finscale.errors import InputError
from finscale.units import parse_budget


class ScaleConfig(StrictSection):
    """The scaling study around the per-budget searches (`finscale scale`): which
    budgets and horizons, and how the winners are re-evaluated and compared."""

    budgets: tuple[int, ...] = Field(
        (2_000_000, 20_000_000, 200_000_000),
        description="parameter budgets (50K, 2M, 2B or an integer); one HPO study each per horizon",
    )
    horizons: tuple[HorizonDays, ...] = Field(
        (1,),
        description="label horizons in trading days, each a study's `data.horizon_days`; one "
        "HPO study each per budget",
    )
    seeds: int = Field(
        3,
        ge=1,
        description="training seeds of each winner's final evaluation, the first after "
        "every seed its search trains with (`train.seed` and the finalists' re-runs')",
    )
    bootstrap_resamples: int = Field(
        1000, ge=50, description="block-bootstrap resamples of the test dates and of the fit's runs"
    )
    block_days: int | None = Field(
        None,
        ge=1,
        description="bootstrap block length in days; None: each fold's own, read from "
        "its per-date losses (Politis-White), never below the horizon",
    )
    confidence_level: float = Field(
        0.95, gt=0.5, lt=1, description="confidence level of every interval"
    )
    cross_budget: bool = Field(
        True,
        description="run the cross-budget matrix: every winner's architecture trained "
        "with every other winner's training values",
    )
    min_samples_per_param: float = Field(
        20.0,
        gt=0,
        description="below this many training samples per parameter, the report flags "
        "the budget as data-limited",
    )
    data_fractions: tuple[float, ...] = Field(
        (1.0,),
        description="each winner is also retrained (every seed and fold) on the most "
        "recent fraction of its training data, same validation and test, "
        "for the joint law L(N, D); must hold 1.0",
    )

    tiers: tuple[TierName, ...] = Field(
        (),
        description="feature tiers (`a25`, `a50`, `a100`, `close`: `data.tier`'s) the "
        "study runs every budget and horizon on, in order; each is compared with the next "
        "on the test dates both have. Empty: the data section's one tier. Must hold "
        "`data.tier`, the tier of the primary size test",
    )

    @field_validator("tiers", mode="before")
    @classmethod
    def _tier_list(cls, value: object) -> object:
        return as_name_list(value)

    @field_validator("tiers")
    @classmethod
    def _distinct_tiers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        twice = sorted({t for t in value if value.count(t) > 1})
        if twice:
            raise ValueError(f"tier {twice[0]} is named twice in {','.join(value)}")
        return value

    @field_validator("data_fractions", mode="before")
    @classmethod
    def _fraction_list(cls, value: object) -> object:
        items = value.split(",") if isinstance(value, str) else value
        return items if isinstance(items, list | tuple) else [items]

    @field_validator("data_fractions")
    @classmethod
    def _fractions(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 < f <= 1.0 for f in value):
            raise ValueError(f"fractions must lie in (0, 1], got {list(value)}")
        if 1.0 not in value:
            raise ValueError(f"must include 1.0, the runs every comparison uses, got {list(value)}")
        return tuple(sorted(set(value)))

    @field_validator("budgets", mode="before")
    @classmethod
    def _budget_list(cls, value: object) -> object:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            items = [items]
        try:
            return sorted({parse_budget(item) for item in items if str(item).strip()})
        except InputError as exc:
            raise ValueError(exc.what) from None

    @field_validator("horizons", mode="before")
    @classmethod
    def _horizon_list(cls, value: object) -> object:
        return as_int_list(value)

    @field_validator("budgets", "horizons")
    @classmethod
    def _non_empty_sorted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("needs at least one value")
        if min(value) < 1:
            raise ValueError(f"values must be positive, got {list(value)}")
        return tuple(sorted(set(value)))


class EvaluationConfig(StrictSection):
    """How the winners are scored on data the search never saw, and what the
    report says about the search's luck (docs/methodology.md)."""

    scheme: Literal["holdout", "walk_forward"] = Field(
        "holdout",
        description="`holdout`: one test split (`data.split_fractions`); "
        "`walk_forward`: the search sees the first `search_fraction` of "
        "history, the rest is `folds` test periods",
    )
    folds: int = Field(5, ge=2, le=100, description="walk-forward test periods, contiguous")
    search_fraction: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="walk-forward: share of the samples the search sees (its train and "
        "val, by the train:val ratio of `data.split_fractions`)",
    )
    window: Literal["expanding", "rolling"] = Field(
        "expanding",
        description="each fold's training history: `expanding` (all before the fold) or "
        "`rolling` (the last `rolling_days`)",
    )
    rolling_days: int = Field(
        1260, ge=2, description="trading days of history under `window: rolling`"
    )
    pbo_blocks: int = Field(
        16,
        ge=2,
        le=24,
        description="even number of validation-date blocks of the probability of "
        "backtest overfitting (CSCV)",
    )
    cost_bps: float = Field(
        1.0,
        ge=0,
        description="cost of the economic illustration per unit of position change, in "
        "basis points",
    )

    long_short_quantile: float = Field(
        0.2,
        gt=0,
        le=0.5,
        description="a panel's long-short illustration: the share of the symbols held "
        "long (highest predicted probability) and short (lowest) on each test date",
    )

    @property
    def scored_folds(self) -> list[int | None]:
        """The test folds of the final evaluation, in order: [None] under holdout."""
        return list(range(self.folds)) if self.scheme == "walk_forward" else [None]

    @field_validator("pbo_blocks")
    @classmethod
    def _even_blocks(cls, value: int) -> int:
        if value % 2:
            raise ValueError(f"must be even (half the blocks in-sample, half out), got {value}")
        return value
