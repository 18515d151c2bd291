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
    horizon_days: HorizonDays = 1
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
