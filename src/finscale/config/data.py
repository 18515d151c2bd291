"""The data section: which market, which features and labels, which splits."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from finscale.config.base import (
    FieldError,
    HorizonDays,
    StrictSection,
    TierName,
    as_name_list,
)

SYNTHETIC_PREFIX = "SYN"
# `data.targets: all` (`--target all`): every symbol the source holds is a target.
ALL_TARGETS = "all"
# The rise of `label_mode: absolute` and `relative` when `threshold` is not given.
DEFAULT_THRESHOLD = {"absolute": 0.01, "relative": 0.0}


class SyntheticConfig(StrictSection):
    """The planted-scaling market of `source: synthetic` (docs/methodology.md): GARCH
    prices and volumes whose labels are drawn from a known teacher of the windows."""

    symbols: int = Field(1, ge=1, le=999, description="series of the market, SYN001, SYN002, ...")
    days: int = Field(20_000, ge=300, le=100_000, description="business days of each series")
    seed: int = Field(0, ge=0, description="seed of the prices, the teacher and the labels")
    signal: float = Field(
        3.0,
        gt=0,
        le=20,
        description="standard deviation of the teacher's logits: how far the Bayes log "
        "loss lies below the base rate's",
    )
    teacher_width: int = Field(
        32,
        ge=1,
        le=4096,
        description="the teacher's size: quadratic units on random directions of the "
        "window, about the directions per window a model must carry to represent it",
    )
    teacher_days: int = Field(
        8,
        ge=1,
        le=1024,
        description="the last days of each window the teacher reads (at most `context_days`)",
    )
    base_rate: float = Field(
        0.5, gt=0, lt=1, description="the teacher's mean probability of a positive label"
    )

    @property
    def symbol_names(self) -> tuple[str, ...]:
        """SYN001, SYN002, ...: the market's symbols."""
        return tuple(f"{SYNTHETIC_PREFIX}{k + 1:03d}" for k in range(self.symbols))


class DataConfig(StrictSection):
    """Where the data comes from and how samples, labels and splits are made."""

    source: Literal["bundled", "csv", "yahoo", "synthetic", "stocks"] = Field(
        "bundled",
        description="`bundled`: SP500, NASDAQ and VIX from `arch.data`; `csv`: a folder "
        "of SYMBOL.csv or SYMBOL.parquet files, or one long file of every symbol "
        "(`path`); `yahoo`: downloaded with yfinance (the `yahoo` extra); `synthetic`: "
        "a market with a planted, known label rule (`synthetic.*`), every symbol a "
        "target; `stocks`: the daily adjusted closes of 20 US large-cap stocks, "
        "1990-2022, that skfolio ships (the `stocks` extra; tier `close`)",
    )
    synthetic: SyntheticConfig = Field(
        default_factory=SyntheticConfig, description="the market of `source: synthetic`"
    )
    null_control: Literal["none", "shuffle", "random_walk"] = Field(
        "none",
        description="a study where nothing can be learned: `shuffle` permutes the labels "
        "in blocks of `null_block_days` within each split and test fold (base rate kept, "
        "any link to the features broken); `random_walk` replaces each target's prices by "
        "a driftless random walk at its volatility; `none`: the data as they are",
    )
    null_seed: int = Field(0, ge=0, description="seed of the null control's shuffle or walk")
    null_block_days: int = Field(
        20,
        ge=1,
        description="days per block of the `shuffle` null control (at least `horizon_days` "
        "are used), so labels keep their serial dependence",
    )
    path: Path | None = Field(
        None,
        description="the `csv` source: a folder of SYMBOL.csv or SYMBOL.parquet files, or "
        "one long .csv or .parquet file with columns date, symbol, open, high, low, "
        "close, volume (or date, symbol, close); the other sources read none",
    )
    target: str = Field(
        "SP500",
        description="symbol whose moves are labelled (under `source: stocks`, left unset: "
        "`targets: all`)",
    )
    targets: tuple[str, ...] = Field(
        (),
        description="a panel: several targets, each labelled and featured on its own "
        "series, their samples pooled into one dataset; `all`: every symbol of the "
        "source; empty: the one `target`",
    )
    min_history_days: int = Field(
        0,
        ge=0,
        description="targets with fewer rows (trading days) in the date range are dropped, "
        "and named; 0 keeps every target",
    )
    symbols: tuple[str, ...] = Field(
        (),
        description="context symbols: one index, and `vix_symbol` under tier a100; "
        "empty: the tier's defaults for bundled data (NASDAQ, or SP500 for "
        "a NASDAQ target, and VIX)",
    )
    vix_symbol: str = Field(
        "VIX", description="the symbol read as the volatility index (tier a100)"
    )
    tier: TierName = Field(
        "a25",
        description="feature tier: `a25` the target's OHLCV features, `a50` and one "
        "context index, `a100` and VIX; `close`: from the close alone, with the panel's "
        "equal-weight return and volatility (docs/methodology.md)",
    )
    horizon_days: HorizonDays = Field(
        1, description="label horizon: a label looks this many trading days ahead"
    )
    label_mode: Literal["absolute", "relative"] = Field(
        "absolute",
        description="`absolute`: the target's own move (`label_rule`, `threshold_mode`); "
        "`relative` (a panel): 1 when the target's close-to-close return over "
        "`horizon_days` beats the equal-weight return of the panel's symbols that "
        "trade that day by at least `threshold`",
    )
    threshold: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="rise that makes a positive label (0.01 = 1%), under `threshold_mode: "
        "fixed`; under `label_mode: relative` the margin over the panel; None: 0.01 "
        "absolute, 0 relative",
    )
    label_rule: Literal["max_close", "close"] = Field(
        "max_close",
        description="`max_close`: positive if any close of the next `horizon_days` "
        "reaches the threshold; `close`: if the close `horizon_days` ahead "
        "does",
    )
    threshold_mode: Literal["fixed", "volatility"] = Field(
        "fixed",
        description="`fixed`: `threshold`; `volatility`: `volatility_k` x trailing "
        "volatility x sqrt(`horizon_days`), a move large for the day's "
        "volatility, so the label measures direction rather than volatility",
    )
    volatility_k: float = Field(1.0, gt=0, description="k of the volatility-scaled threshold")
    vol_window_days: int = Field(
        20,
        ge=2,
        description="trading days of daily returns in the trailing volatility of "
        "`threshold_mode: volatility`",
    )
    context_days: int = Field(60, ge=2, le=1024, description="input window length in trading days")
    split: Literal["chronological", "chunked"] = Field(
        "chronological",
        description="holdout splits: `chronological` train, val, test in date order; "
        "`chunked` the test split last and the history before it cut into "
        "`n_chunks` train/val chunks, so validation is drawn from many "
        "regimes",
    )
    split_fractions: tuple[float, float, float] = Field(
        (0.7, 0.15, 0.15),
        description="train, val and test shares of the samples under holdout; under "
        "walk-forward, their train:val ratio splits each training history",
    )
    n_chunks: int = Field(5, ge=1, le=100, description="train/val chunks of the `chunked` split")
    min_samples_per_split: int = Field(
        50,
        ge=1,
        description="fewest samples a split (of the search and of every walk-forward "
        "fold) may hold; fewer is an error naming the key to change",
    )
    context_ffill_days: int = Field(
        5,
        ge=0,
        description="trading days a context series may be carried forward over its "
        "holidays; a longer gap is an error",
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
        return as_name_list(value)

    @field_validator("split_fractions")
    @classmethod
    def _fractions(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(value) <= 0 or abs(sum(value) - 1.0) > 1e-6:
            raise ValueError(f"need three positive fractions summing to 1, got {value}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _one_target_is_the_target(cls, data: object) -> object:
        """`targets` of one symbol is the one-symbol form: it sets `target`. Under
        `source: stocks` with no target given, every stock is one (the default target,
        SP500, is an index that source lacks), and with no tier given the tier is
        `close`, the one its close prices can build."""
        if isinstance(data, dict) and data.get("source") == "stocks" and "tier" not in data:
            data = {**data, "tier": "close"}
        if (
            isinstance(data, dict)
            and data.get("source") == "stocks"
            and "target" not in data
            and not data.get("targets")
        ):
            data = {**data, "targets": ALL_TARGETS}
        if isinstance(data, dict) and isinstance(data.get("target"), str) and "," in data["target"]:
            # `--target SP500,NASDAQ`: a panel, given as the one-symbol option
            data = {**data, "targets": data["target"], "target": data["target"].split(",")[0]}
        if isinstance(data, dict) and str(data.get("target", "")).strip().lower() == ALL_TARGETS:
            data = {**data, "targets": ALL_TARGETS}
        if isinstance(data, dict) and "targets" in data:
            targets = cls._split_symbols(data["targets"])
            if isinstance(targets, tuple) and [t.lower() for t in targets] == [ALL_TARGETS]:
                return {**data, "target": ALL_TARGETS, "targets": (ALL_TARGETS,)}
            if isinstance(targets, tuple) and ALL_TARGETS in (t.lower() for t in targets):
                raise FieldError("targets", f"{ALL_TARGETS} stands alone, not in a list of symbols")
            if isinstance(targets, tuple) and len(targets) == 1:
                data = {**data, "target": targets[0], "targets": ()}
        return data

    @property
    def target_symbols(self) -> tuple[str, ...]:
        """Every labelled symbol: `targets` for a panel, else the one `target`."""
        return self.targets or (self.target,)

    @property
    def is_panel(self) -> bool:
        return self.all_targets or len(self.target_symbols) > 1

    @property
    def all_targets(self) -> bool:
        """Whether every symbol of the source is a target (`targets: all`), to be
        resolved when the source is read."""
        return self.targets == (ALL_TARGETS,)

    @property
    def label_threshold(self) -> float:
        """The threshold the labels use: `threshold`, or the label mode's default."""
        return self.threshold if self.threshold is not None else DEFAULT_THRESHOLD[self.label_mode]

    @model_validator(mode="before")
    @classmethod
    def _synthetic_targets(cls, data: object) -> object:
        """Under `source: synthetic` every symbol of the market is a target (the ones
        `targets` names, where it names only market symbols)."""
        if not isinstance(data, dict) or data.get("source") != "synthetic":
            return data
        synthetic = data.get("synthetic", {})
        if isinstance(synthetic, SyntheticConfig):
            synthetic = synthetic.model_dump()
        if not isinstance(synthetic, dict):
            return data  # the field's own validation says what is wrong
        try:
            names = SyntheticConfig(**synthetic).symbol_names
        except ValueError:
            return data
        chosen = cls._split_symbols(data.get("targets", ()))
        if not (isinstance(chosen, tuple) and chosen and set(chosen) <= set(names)):
            chosen = names
        return {**data, "target": chosen[0], "targets": chosen if len(chosen) > 1 else ()}

    @model_validator(mode="after")
    def _source_needs(self) -> DataConfig:
        if self.source == "csv" and self.path is None:
            raise FieldError(
                ("path", "source"), "source csv needs path (the folder of SYMBOL.csv files)"
            )
        twice = sorted({t for t in self.targets if self.targets.count(t) > 1})
        if twice:
            raise FieldError(("targets", "target"), f"target {twice[0]} is named twice in targets")
        for target in self.target_symbols:
            if target in self.symbols:
                raise FieldError(
                    ("symbols", "target"), f"target {target} is also listed in symbols"
                )
        if self.source == "stocks" and self.tier != "close":
            raise FieldError(
                ("tier", "source"),
                f"the stocks source has close prices only; tier {self.tier} needs OHLCV",
                fix="close",
            )
        if self.source == "synthetic":
            if self.tier != "a25" or self.symbols:
                raise FieldError(
                    ("tier", "symbols", "source"),
                    "the synthetic market has no context index or VIX: use tier a25 and no symbols",
                )
            if self.synthetic.teacher_days > self.context_days:
                raise FieldError(
                    ("synthetic", "context_days"),
                    f"synthetic.teacher_days {self.synthetic.teacher_days} is longer than the "
                    f"window, context_days {self.context_days}",
                )
            if self.null_control == "random_walk":
                raise FieldError(
                    ("null_control", "source"),
                    "null_control random_walk replaces real prices; the synthetic market's "
                    "null is null_control shuffle",
                )
        if self.label_mode == "absolute" and self.threshold == 0:
            raise FieldError(
                ("threshold", "label_mode"),
                "an absolute label needs a rise above 0 (e.g. 0.01); a zero margin is for "
                "label_mode relative",
            )
        if self.label_mode == "relative":
            if self.threshold_mode != "fixed":
                raise FieldError(
                    ("threshold_mode", "label_mode"),
                    "label_mode relative compares returns with the panel's; threshold_mode "
                    "volatility is for absolute labels",
                )
            if not self.is_panel:
                raise FieldError(
                    ("label_mode", "targets", "target"),
                    "label_mode relative needs two or more targets (targets: all, or a list)",
                )
        if self.start and self.end and self.start >= self.end:
            raise FieldError(("start", "end"), f"start {self.start} is not before end {self.end}")
        return self
