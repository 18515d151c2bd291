"""The study configuration, validated once at the CLI and passed to every stage.

Unknown keys are rejected (a typo in a YAML file must not silently fall back
to a default). `DataConfig` is the data section; later stages add theirs.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from finscale.errors import InputError
from finscale.units import parse_budget, parse_memory_size

TierName = Literal["a25", "a50", "a100"]


def as_int_list(value: object) -> object:
    """A comma-separated string ("64,128") or one int as a list, for list-of-int fields;
    anything else is left for pydantic to validate."""
    if isinstance(value, str):
        return [s for s in value.split(",") if s.strip()]
    if isinstance(value, int):
        return [value]
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Where the data comes from and how samples, labels and splits are made."""

    source: Literal["bundled", "csv", "yahoo"] = "bundled"
    path: Path | None = Field(None, description="folder of SYMBOL.csv/.parquet files (csv source)")
    target: str = "SP500"
    targets: tuple[str, ...] = Field(
        (),
        description="a panel: several targets, each labelled on its own series and pooled into "
        "one dataset (empty: the one `target`)",
    )
    symbols: tuple[str, ...] = Field(
        (), description="context symbols; empty means the tier's defaults for bundled data"
    )
    vix_symbol: str = "VIX"
    tier: TierName = "a25"
    horizon_days: int = Field(1, ge=1, le=60)
    threshold: float = Field(0.01, gt=0, lt=1)
    label_rule: Literal["max_close", "close"] = "max_close"
    threshold_mode: Literal["fixed", "volatility"] = "fixed"
    volatility_k: float = Field(1.0, gt=0)
    vol_window_days: int = Field(20, ge=2)
    context_days: int = Field(60, ge=2, le=1024)
    split: Literal["chronological", "chunked"] = "chronological"
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    n_chunks: int = Field(5, ge=1, le=100)
    min_samples_per_split: int = Field(50, ge=1)
    context_ffill_days: int = Field(
        5, ge=0, description="days a context series may be carried forward over its holidays"
    )
    start: date | None = Field(None, description="first date used (inclusive); None: all history")
    end: date | None = Field(None, description="last date used (inclusive); None: all history")

    @field_validator("target", "vix_symbol")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("symbols", "targets", mode="before")
    @classmethod
    def _split_symbols(cls, value: object) -> object:
        if isinstance(value, str):
            value = [s for s in value.split(",")]
        if isinstance(value, list | tuple):
            return tuple(str(s).strip() for s in value if str(s).strip())
        return value

    @field_validator("split_fractions")
    @classmethod
    def _fractions(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(value) <= 0 or abs(sum(value) - 1.0) > 1e-6:
            raise ValueError(f"need three positive fractions summing to 1, got {value}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _one_target_is_the_target(cls, data: object) -> object:
        """`targets` of one symbol is the one-symbol form: it sets `target`."""
        if isinstance(data, dict) and isinstance(data.get("target"), str) and "," in data["target"]:
            # `--target SP500,NASDAQ`: a panel, given as the one-symbol option
            data = {**data, "targets": data["target"], "target": data["target"].split(",")[0]}
        if isinstance(data, dict) and "targets" in data:
            targets = cls._split_symbols(data["targets"])
            if isinstance(targets, tuple) and len(targets) == 1:
                data = {**data, "target": targets[0], "targets": ()}
        return data

    @property
    def target_symbols(self) -> tuple[str, ...]:
        """Every labelled symbol: `targets` for a panel, else the one `target`."""
        return self.targets or (self.target,)

    @property
    def is_panel(self) -> bool:
        return len(self.target_symbols) > 1

    @model_validator(mode="after")
    def _source_needs(self) -> DataConfig:
        if self.source == "csv" and self.path is None:
            raise ValueError("source csv needs path (the folder of SYMBOL.csv files)")
        twice = sorted({t for t in self.targets if self.targets.count(t) > 1})
        if twice:
            raise ValueError(f"target {twice[0]} is named twice in targets")
        for target in self.target_symbols:
            if target in self.symbols:
                raise ValueError(f"target {target} is also listed in symbols")
        if self.start and self.end and self.start >= self.end:
            raise ValueError(f"start {self.start} is not before end {self.end}")
        return self


DEFAULT_D_MODELS = (64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
DEFAULT_N_LAYERS = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 160, 180, 192, 256)
DEFAULT_N_HEADS = (2, 4, 8, 16, 32)


class ModelConfig(_Strict):
    """The architecture search space, and the knobs every architecture shares.

    A budget's grid is every (d_model, n_layers, n_heads) of the space, with
    n_heads dividing d_model and d_ff = ff_ratio x d_model, whose exact
    parameter count is within `budget_tolerance` of the budget.
    """

    d_models: tuple[int, ...] = DEFAULT_D_MODELS
    n_layers: tuple[int, ...] = DEFAULT_N_LAYERS
    n_heads: tuple[int, ...] = DEFAULT_N_HEADS
    ff_ratio: float = Field(4.0, gt=0, description="d_ff = round(ff_ratio x d_model)")
    budget_tolerance: float = Field(0.25, gt=0, lt=1, description="+-fraction of the budget")
    patch_len: int = Field(16, ge=1, description="days per patch")
    stride: int = Field(8, ge=1, description="days between patch starts")
    dropout: float = Field(0.1, ge=0, lt=1)
    attention_dropout: float = Field(0.0, ge=0, lt=1)
    head_dropout: float = Field(0.0, ge=0, lt=1)
    position_padding: int = Field(10, ge=0, description="positional rows beyond the patches")
    bias: bool = True
    symbol_embedding: bool = Field(
        False,
        description="a panel: add a learned d_model vector per symbol to every token "
        "(counted in each architecture's exact parameter count)",
    )
    parametrization: Literal["standard", "mup", "completep"] = Field(
        "standard",
        description="how init, multipliers and learning rates follow width (mup) and depth "
        "(completep) so that training values transfer from the base shape",
    )
    base_d_model: int | None = Field(
        None, ge=1, description="the base shape's width; None: the smallest of d_models"
    )
    base_n_layers: int | None = Field(
        None, ge=1, description="the base shape's depth; None: the smallest of n_layers"
    )

    @field_validator("d_models", "n_layers", "n_heads", mode="before")
    @classmethod
    def _int_list(cls, value: object) -> object:
        return as_int_list(value)

    @field_validator("d_models", "n_layers", "n_heads")
    @classmethod
    def _positive_sorted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or min(value) < 1:
            raise ValueError("need a non-empty list of positive integers")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _base_is_an_architecture(self) -> ModelConfig:
        if self.base_d_model is not None and all(self.base_d_model % h for h in self.n_heads):
            raise ValueError(
                f"base_d_model {self.base_d_model} is not divisible by any of n_heads "
                f"{list(self.n_heads)}: the base shape must be an architecture"
            )
        return self

    @property
    def base_shape(self) -> tuple[int, int]:
        """(d_model, n_layers) the parametrization's multipliers are relative to."""
        return (self.base_d_model or self.d_models[0], self.base_n_layers or self.n_layers[0])

    def d_ff(self, d_model: int) -> int:
        return max(1, round(self.ff_ratio * d_model))


class TrainConfig(_Strict):
    """How one architecture is trained: optimizer, schedule, batch, stopping, hardware.

    Steps are optimizer steps (one per `effective_batch` samples, however many
    micro-batches they are accumulated from).
    """

    learning_rate: float = Field(3e-4, gt=0, description="peak AdamW learning rate")
    min_lr_ratio: float = Field(
        0.1, ge=0, le=1, description="cosine decay ends at this fraction of the peak"
    )
    weight_decay: float = Field(0.01, ge=0, description="AdamW decay on matrices only")
    warmup_steps: int = Field(50, ge=0, description="linear warmup, in optimizer steps")
    max_epochs: int = Field(100, ge=1)
    effective_batch: int = Field(128, ge=1, description="samples per optimizer step")
    micro_batch: int | None = Field(
        None, ge=1, description="samples per forward pass; None: the memory planner's choice"
    )
    grad_clip: float = Field(1.0, ge=0, description="max global gradient norm; 0 disables")
    pos_weight: float | Literal["balanced"] | None = Field(
        None, description="weight of positive samples in the loss; balanced: negatives/positives"
    )
    patience: int = Field(10, ge=1, description="epochs without improvement before stopping")
    min_delta: float = Field(0.001, ge=0, description="smallest val log loss drop that counts")
    decision_threshold: float = Field(0.5, gt=0, lt=1, description="probability of a positive")
    seed: int = Field(0, ge=0)
    device: str = Field("auto", description="auto (CUDA, then MPS, then CPU), cpu, cuda:N, mps")
    dtype: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="auto: bf16 autocast where the hardware has native bf16 (on a CPU, "
        "for models of 2 MFLOP per sample or more)",
    )
    compile: bool = Field(False, description="torch.compile the model")
    memory_limit_bytes: int | None = Field(
        None,
        description="memory training may take (GPU memory on CUDA, RAM growth otherwise); "
        "None: 90% of free CUDA memory / 80% of available RAM",
    )

    @field_validator("pos_weight")
    @classmethod
    def _positive_weight(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, float | int) and value <= 0:
            raise ValueError(f"must be positive or 'balanced', got {value}")
        return value

    @field_validator("memory_limit_bytes", mode="before")
    @classmethod
    def _memory_size(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_memory_size(value)
        return value

    @field_validator("micro_batch")
    @classmethod
    def _micro_within_effective(cls, value: int | None, info: ValidationInfo) -> int | None:
        effective = info.data.get("effective_batch")
        if value is not None and effective is not None and value > effective:
            raise ValueError(f"{value} is larger than effective_batch {effective}")
        return value


class SearchConfig(_Strict):
    """What one Optuna study searches and how: the training ranges sampled per trial
    (the architecture comes from the budget's grid), the sampler, the pruner, and
    the guards against wasted compute."""

    trials: int = Field(50, ge=1, description="finished trials (complete + pruned) to reach")
    learning_rate: tuple[float, float] = Field((1e-5, 3e-3), description="log-uniform range")
    weight_decay: tuple[float, float] = Field((1e-4, 0.1), description="log-uniform range")
    warmup_steps: tuple[int, int] = Field((0, 200), description="integer range, optimizer steps")
    dropout: tuple[float, float] = Field((0.1, 0.3), description="uniform range")
    sampler_seed: int = Field(0, ge=0, description="TPE seed; each worker offsets it")
    n_startup_trials: int = Field(20, ge=0, description="random trials before TPE models")
    architecture_space: Literal["ordered", "categorical"] = Field(
        "ordered",
        description="ordered: d_model, n_layers and n_heads sampled as ranks into their sorted "
        "values, mapped to the nearest architecture of the grid; categorical: one unordered "
        "arch_idx over the grid",
    )
    multivariate: bool = Field(
        True, description="TPE models the params jointly (False: each param on its own)"
    )
    constant_liar: bool = Field(
        True, description="TPE counts running trials as bad, so parallel workers spread out"
    )
    finalists: int = Field(
        0,
        ge=0,
        description="once the trials are done, the best this many are trained again with "
        "finalist_seeds more seeds and the lowest seed mean is crowned (0: the best value)",
    )
    finalist_seeds: int = Field(2, ge=1, description="more seeds per finalist")
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median", description="pruning on the per-epoch validation log loss"
    )
    pruner_warmup_epochs: int = Field(2, ge=0, description="epochs before a trial may be pruned")
    forced_extremes: bool = Field(
        True, description="first trials: min and max d_model, n_layers, n_heads"
    )
    exclude_archs: tuple[int, ...] = Field((), description="grid indexes never tried")
    max_consecutive_failures: int = Field(
        10, ge=1, description="a worker stops with an error after this many failed trials in a row"
    )
    duplicate_tolerance: float = Field(
        0.02,
        ge=0,
        le=1,
        description="a trial on the same architecture whose every training value is within "
        "this fraction of its (log) range of a completed trial's reuses that result",
    )
    heartbeat_seconds: int = Field(
        10, ge=1, description="on a database storage, how often a running trial beats"
    )
    heartbeat_grace_seconds: int = Field(
        60,
        ge=2,
        description="on a database storage, a running trial silent for this long is failed "
        "and re-run with the same values by another worker",
    )
    storage_retry_seconds: float = Field(
        300, ge=0, description="how long a worker waits for a lost database before it exits"
    )
    transfer: Literal["none", "smallest"] = Field(
        "none",
        description="smallest: the smallest budget's study searches as usual; every larger "
        "budget searches its architecture only, with the smallest's winning training values "
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
        if not 0 < low <= high:
            raise ValueError(f"need 0 < low <= high for a log range, got {list(value)}")
        return value

    @field_validator("warmup_steps", "dropout")
    @classmethod
    def _range(cls, value: tuple[float, float], info: ValidationInfo) -> tuple[float, float]:
        low, high = value
        if not 0 <= low <= high or (info.field_name == "dropout" and high >= 1):
            raise ValueError(f"need 0 <= low <= high, got {list(value)}")
        return value

    @field_validator("exclude_archs", mode="before")
    @classmethod
    def _index_list(cls, value: object) -> object:
        return as_int_list(value)

    @model_validator(mode="after")
    def _grace_outlasts_beats(self) -> SearchConfig:
        if self.heartbeat_grace_seconds <= self.heartbeat_seconds:
            raise ValueError(
                f"heartbeat_grace_seconds ({self.heartbeat_grace_seconds}) must exceed "
                f"heartbeat_seconds ({self.heartbeat_seconds}), or live trials count as dead"
            )
        return self


class ScaleConfig(_Strict):
    """The scaling study around the per-budget searches (`finscale scale`): which
    budgets and horizons, and how the winners are re-evaluated and compared."""

    budgets: tuple[int, ...] = Field(
        (2_000_000, 20_000_000, 200_000_000),
        description="parameter budgets, e.g. [2M, 20M, 200M]; one HPO study each per horizon",
    )
    horizons: tuple[int, ...] = Field((1,), description="label horizons in days")
    seeds: int = Field(3, ge=1, description="training seeds of each winner's final evaluation")
    bootstrap_resamples: int = Field(
        1000, ge=50, description="block-bootstrap resamples of the test dates (and of fit runs)"
    )
    block_days: int | None = Field(
        None,
        ge=1,
        description="bootstrap block length; None: max(horizon_days, n_test ** (1/3))",
    )
    confidence_level: float = Field(0.95, gt=0.5, lt=1, description="of every interval")
    cross_budget: bool = Field(
        True, description="train every winner's architecture with every other winner's values"
    )
    min_samples_per_param: float = Field(
        20.0, gt=0, description="below this many training samples per parameter: data-limited"
    )
    data_fractions: tuple[float, ...] = Field(
        (1.0,),
        description="each winner is also retrained on the most recent fraction of its "
        "training data (same validation and test), for the joint law L(N, D); must hold 1.0",
    )

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


class EvaluationConfig(_Strict):
    """How the winners are scored on data the search never saw, and what the
    report says about the search's luck (docs/methodology.md)."""

    scheme: Literal["holdout", "walk_forward"] = Field(
        "holdout",
        description="holdout: one test period, the last split; walk_forward: the search sees "
        "the first search_fraction of history, the rest is tiled into test folds",
    )
    folds: int = Field(5, ge=2, le=100, description="contiguous test periods (walk_forward)")
    search_fraction: float = Field(
        0.5, gt=0, lt=1, description="share of history the search sees (walk_forward)"
    )
    window: Literal["expanding", "rolling"] = Field(
        "expanding",
        description="each fold trains on all history before it, or on its last rolling_days",
    )
    rolling_days: int = Field(
        1260, ge=2, description="trading days of training history under window: rolling"
    )
    pbo_blocks: int = Field(
        16, ge=2, le=24, description="even number of validation date blocks of the PBO's CSCV"
    )
    cost_bps: float = Field(
        1.0, ge=0, description="cost per unit change of position of the long/flat illustration"
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


class StudyConfig(_Strict):
    """One study's whole configuration: data, architecture space, training defaults,
    search, and the scaling study around the searches. A YAML file or a shipped
    preset holds it; `--set key=value` edits any field by its dotted name
    (``train.max_epochs=20``)."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    search: SearchConfig = SearchConfig()
    scale: ScaleConfig = ScaleConfig()
    evaluation: EvaluationConfig = EvaluationConfig()


PRESETS = ("quick", "paper", "panel")


def preset_path(name: str) -> Path:
    return Path(__file__).parent / "presets" / f"{name}.yaml"


def load_study_config(
    preset: str | None = None,
    path: str | Path | None = None,
    overrides: dict[str, object] | None = None,
) -> StudyConfig:
    """A study config from a preset or a YAML file (not both), then dotted overrides.

    Raises `InputError` naming the file or key on a missing file, bad YAML, an
    unknown key or an invalid value.
    """
    import yaml

    if preset is not None and path is not None:
        raise InputError("give --preset or --config, not both", "--config")
    raw: dict[str, object] = {}
    source = "defaults"
    if preset is not None:
        if preset not in PRESETS:
            raise InputError(f"no preset {preset!r}; presets: {', '.join(PRESETS)}", "--preset")
        path, source = preset_path(preset), f"preset {preset}"
    elif path is not None:
        source = str(path)
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise InputError(f"config file {path} does not exist", "--config") from None
        except yaml.YAMLError as exc:
            raise InputError(f"config file {path} is not valid YAML: {exc}", "--config") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise InputError(f"config file {path} must hold a mapping of sections", "--config")
        raw = loaded or {}
    return config_from_mapping(raw, overrides, source)


def config_from_mapping(
    raw: dict[str, object], overrides: dict[str, object] | None = None, source: str = "config"
) -> StudyConfig:
    """A study config from a mapping of sections (a YAML file's, or one stored on a
    study) with dotted overrides applied; `InputError` names the bad key."""
    import copy

    raw = copy.deepcopy(raw)
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise InputError(f"{dotted}: {key} is not a section", "--set")
            node = child
        node[leaf] = value
    try:
        return StudyConfig(**raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        where = "--set" if dotted_in(key, overrides) else source
        raise InputError(f"{key}: {message}", where) from None


def dotted_in(key: str, overrides: dict[str, object] | None) -> bool:
    """Whether a validation error's dotted location was set by an override."""
    return any(key == k or key.startswith(k + ".") for k in overrides or {})
