"""What every section of the study config shares: strict models and list parsing."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
)

TierName = Literal["a25", "a50", "a100"]


def as_int_list(value: object) -> object:
    """A comma-separated string ("64,128") or one int as a list, for list-of-int fields;
    anything else is left for pydantic to validate."""
    if isinstance(value, str):
        return [s for s in value.split(",") if s.strip()]
    if isinstance(value, int):
        return [value]
    return value


class StrictSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
