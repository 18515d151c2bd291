"""The search section: what one Optuna study samples, and its guards."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from finscale.config.base import (
    DropoutRate,
    FieldError,
    LearningRate,
    StrictSection,
    WarmupSteps,
    WeightDecay,
    as_int_list,
)


class SearchConfig(StrictSection):
    """What one Optuna study searches and how: the training ranges sampled per trial
    (the architecture comes from the budget's grid), the sampler, the pruner, and
    the guards against wasted compute."""

    trials: int = Field(50, ge=1, description="finished trials (complete and pruned) a study runs")
    learning_rate: tuple[LearningRate, LearningRate] = Field(
        (1e-5, 3e-3), description="log-uniform range of `train.learning_rate`"
    )
    weight_decay: tuple[WeightDecay, WeightDecay] = Field(
        (1e-4, 0.1), description="log-uniform range of `train.weight_decay`"
    )
    warmup_steps: tuple[WarmupSteps, WarmupSteps] = Field(
        (0, 200), description="integer range of `train.warmup_steps`, in optimizer steps"
    )
    dropout: tuple[DropoutRate, DropoutRate] = Field(
        (0.1, 0.3), description="uniform range of `model.dropout`"
    )
    sampler: Literal["tpe", "gp"] = Field(
        "tpe",
        description="`tpe`: Optuna's tree-structured Parzen estimator; `gp`: its Gaussian "
        "process sampler, which models the validation loss as noisy (`multivariate` and "
        "`constant_liar` are TPE's own)",
    )
    sampler_seed: int = Field(0, ge=0, description="the sampler's seed; each worker offsets it")
    n_startup_trials: int = Field(
        20, ge=0, description="random trials before the sampler models the results"
    )
    architecture_space: Literal["ordered", "categorical"] = Field(
        "ordered",
        description="`ordered`: d_model, n_layers and n_heads sampled as ranks into "
        "their sorted values, mapped to the nearest architecture of the "
        "grid; `categorical`: one unordered arch_idx over the grid",
    )
    multivariate: bool = Field(
        True, description="TPE models the parameters jointly (false: each on its own)"
    )
    constant_liar: bool = Field(
        True, description="TPE counts running trials as bad, so parallel workers spread out"
    )
    finalists: int = Field(
        0,
        ge=0,
        description="once the trials are done, the best this many are trained again "
        "with `finalist_seeds` more seeds and the lowest seed mean is "
        "crowned (0: the best value)",
    )
    finalist_seeds: int = Field(2, ge=1, description="more seeds per finalist")
    pruner: Literal["median", "successive_halving", "hyperband", "none"] = Field(
        "median",
        description="`median`, `successive_halving`, `hyperband` or `none`: pruning on the "
        "per-epoch validation log loss",
    )
    pruner_warmup_epochs: int = Field(
        2,
        ge=0,
        description="epochs before a trial may be pruned (the first rung of successive "
        "halving and Hyperband, at least 1)",
    )
    patience: int | None = Field(
        None,
        ge=1,
        description="a search trial's early-stopping patience, in epochs; None: "
        "`train.patience`. Final evaluation always trains with `train.patience`",
    )
    forced_extremes: bool = Field(
        True,
        description="the first trials are the grid's extremes: min and max d_model, "
        "n_layers, n_heads",
    )
    exclude_archs: tuple[int, ...] = Field((), description="grid indexes never tried")
    max_consecutive_failures: int = Field(
        10, ge=1, description="a worker stops with an error after this many failed trials in a row"
    )
    duplicate_tolerance: float = Field(
        0.02,
        ge=0,
        le=1,
        description="a trial on the same architecture whose every training value is "
        "within this fraction of its (log) range of a completed trial's "
        "reuses that result",
    )
    heartbeat_seconds: int = Field(
        10, ge=1, description="on a database storage, how often a running trial beats"
    )
    heartbeat_grace_seconds: int = Field(
        60,
        ge=2,
        description="on a database storage, a running trial silent for this long is "
        "failed and re-run with the same values by another worker",
    )
    storage_retry_seconds: float = Field(
        300, ge=0, description="how long a worker waits for a lost database before it exits"
    )
    transfer: Literal["none", "smallest"] = Field(
        "none",
        description="`none`: every study searches as usual; `smallest`: the smallest "
        "budget's study searches as usual, every larger budget searches its "
        "architecture only, with the smallest's winning training values "
        "carried over through model.parametrization",
    )
    transfer_trials: int | None = Field(
        None, ge=1, description="trials of a study with transferred values; None: trials / 4"
    )

    @property
    def transferred_trials(self) -> int:
        """Trials of a study whose training values were transferred."""
        return self.transfer_trials or max(1, self.trials // 4)

    @field_validator("learning_rate", "weight_decay")
    @classmethod
    def _log_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 < low <= high:  # a weight decay of 0 is a value, not a log-range end
            raise ValueError(f"need 0 < low <= high for a log range, got {list(value)}")
        return value

    @field_validator("warmup_steps", "dropout")
    @classmethod
    def _range(cls, value: tuple[float, float]) -> tuple[float, float]:
        # Each end's bounds are the sampled field's own (the types above).
        low, high = value
        if not low <= high:
            raise ValueError(f"need low <= high, got {list(value)}")
        return value

    @field_validator("exclude_archs", mode="before")
    @classmethod
    def _index_list(cls, value: object) -> object:
        return as_int_list(value)

    @model_validator(mode="after")
    def _grace_outlasts_beats(self) -> SearchConfig:
        if self.heartbeat_grace_seconds <= self.heartbeat_seconds:
            raise FieldError(
                ("heartbeat_grace_seconds", "heartbeat_seconds"),
                f"heartbeat_grace_seconds ({self.heartbeat_grace_seconds}) must exceed "
                f"heartbeat_seconds ({self.heartbeat_seconds}), or live trials count as dead",
            )
        return self
