"""What every section of the study config shares: strict models, list parsing, the
bounds two sections share, and the one turning of a validation error into an
`InputError` that names the dotted config field."""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

from finscale.errors import InputError

TierName = Literal["a25", "a50", "a100", "close"]

# A label horizon in trading days: `data.horizon_days` and each of `scale.horizons`
# (a scaling study's horizons become its studies' `data.horizon_days`).
HorizonDays = Annotated[int, Field(ge=1, le=60)]
# The training values a search samples: the field a trial sets (`train.learning_rate`,
# `model.dropout`, ...) and both ends of the search's range of it (`search.dropout`).
LearningRate = Annotated[float, Field(gt=0)]
WeightDecay = Annotated[float, Field(ge=0)]
WarmupSteps = Annotated[int, Field(ge=0)]
DropoutRate = Annotated[float, Field(ge=0, lt=1)]


def as_int_list(value: object) -> object:
    """A comma-separated string ("64,128") or one int as a list, for list-of-int fields;
    anything else is left for pydantic to validate."""
    if isinstance(value, str):
        parts = [s.strip() for s in value.split(",") if s.strip()]
        return [int(s) if s.lstrip("+-").isdigit() else s for s in parts]
    if isinstance(value, int):
        return [value]
    return value


def as_name_list(value: object) -> object:
    """A comma-separated string ("AAPL, MSFT") or a list of names as a tuple of the
    names, each stripped, blanks dropped, for list-of-name fields (symbols, targets,
    tiers); anything else is left for pydantic to validate."""
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, list | tuple):
        return tuple(str(s).strip() for s in value if str(s).strip())
    return value


class StrictSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldError(ValueError):
    """A model validator's error about one or more fields (dotted, relative to the model
    it validates), the one to blame first: a rule across fields names them itself,
    since pydantic places it on the model, not on a field."""

    def __init__(self, fields: str | tuple[str, ...], message: str, fix: str | None = None) -> None:
        self.fields = (fields,) if isinstance(fields, str) else fields
        self.fix = fix  # the value of the first field that mends it (`InputError.fix`)
        super().__init__(message)


def input_error(
    exc: ValidationError, model: type[BaseModel], prefer: Collection[str] = ()
) -> InputError:
    """The first error of validating `model` as one `InputError`: ``<field>: <what>``,
    its where the dotted field (``data.horizon_days``). Of the fields a rule across
    fields names, the first in `prefer` (those the user set) is blamed."""
    first = exc.errors()[0]
    cause = (first.get("ctx") or {}).get("error")
    if first["type"] == "extra_forbidden":
        names = [str(part) for part in first["loc"] if isinstance(part, str)]
        what = (
            "unknown key"
            if len(names) > 1 or not _has_sections(model)
            else (f"unknown section; sections: {', '.join(model.model_fields)}")
        )
    else:
        names = _field_path(model, first["loc"])
        if isinstance(cause, FieldError):
            inside = [".".join([*names, f]) for f in cause.fields]
            names = next((f for f in inside if overlaps(f, prefer)), inside[0]).split(".")
        what = _message(first, cause)
    field = ".".join(names)
    fix = cause.fix if isinstance(cause, FieldError) and field.endswith(cause.fields[0]) else None
    return InputError(f"{field}: {what}" if field else what, field or None, fix)


def _field_path(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names of an error's location, down through nested sections; the
    positions in a list and the branches of a union that pydantic adds are dropped."""
    names: list[str] = []
    current: type | None = model
    for part in loc:
        fields = getattr(current, "model_fields", {})
        if not isinstance(part, str) or part not in fields:
            break
        names.append(part)
        annotation = fields[part].annotation
        current = annotation if isinstance(annotation, type) else None
    return names


def _message(error: dict, cause: object) -> str:
    if isinstance(cause, InputError):  # a parser of the ground floor said it already
        return cause.what
    if isinstance(cause, ValueError):
        return str(cause)
    value = error.get("input")
    shown = f", got {value!r}" if isinstance(value, int | float | str) else ""
    return error["msg"] + shown


def _has_sections(model: type[BaseModel]) -> bool:
    """Whether every field of `model` is a section (a model of its own)."""
    return all(
        isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel)
        for f in model.model_fields.values()
    )


def overlaps(field: str, keys: Collection[str]) -> bool:
    """Whether a dotted field is one of the dotted `keys`, lies inside one, or holds one
    (``data`` holds ``data.tier``; ``bogus.x`` lies inside ``bogus``)."""
    return any(
        field == key or field.startswith(key + ".") or key.startswith(field + ".") for key in keys
    )
