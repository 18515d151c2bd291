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

from finscale.config.base import FieldError, HorizonDays, StrictSection, TierName


class DataConfig(StrictSection):
    """Where the data comes from and how samples, labels and splits are made."""

    source: Literal["bundled", "csv", "yahoo"] = Field(
        "bundled",
        description="`bundled`: SP500, NASDAQ and VIX from `arch.data`; `csv`: a folder "
        "of SYMBOL.csv or SYMBOL.parquet files (`path`); `yahoo`: "
        "downloaded with yfinance (the `yahoo` extra)",
    )
    path: Path | None = Field(
        None,
        description="the `csv` source's folder of SYMBOL.csv or SYMBOL.parquet files "
        "(the other sources read none)",
    )
    target: str = Field("SP500", description="symbol whose moves are labelled")
    targets: tuple[str, ...] = Field(
        (),
        description="a panel: several targets, each labelled and featured on its own "
        "series, their samples pooled into one dataset; empty: the one "
        "`target`",
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
        "context index, `a100` and VIX (docs/methodology.md)",
    )
    horizon_days: HorizonDays = Field(
        1, description="label horizon: a label looks this many trading days ahead"
    )
    threshold: float = Field(
        0.01,
        gt=0,
        lt=1,
        description="rise that makes a positive label (0.01 = 1%), under `threshold_mode: fixed`",
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
        if self.start and self.end and self.start >= self.end:
            raise FieldError(("start", "end"), f"start {self.start} is not before end {self.end}")
        return self
