"""The analysis floor's results as frozen dataclasses, and their JSON form.

Every result here (a metric's intervals, a paired difference, a fitted law, a row
of `scaling.json`) is a small frozen dataclass whose fields carry names and
units, as Hugging Face's model outputs do. The files keep the keys they have
always had: `Record.to_dict` writes each field under its stored key (`stored`
says where that differs from the field's name, and whether a missing value is
left out), nested records as their own dicts and tuples as lists;
`Record.from_dict` reads that form back. The mapping is declared once per
field, so `to_dict` and `from_dict` cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, Self

import numpy as np

Parse = Callable[[Any], Any]


def stored(
    key: str | None = None,
    *,
    parse: Parse | None = None,
    omit_none: bool = False,
    flat: bool = False,
    unless_skipped: bool = False,
    kept_out: bool = False,
    default: Any = dataclasses.MISSING,
) -> Any:
    """A field of a `Record`: `key`, its key in the file (default: the field's name);
    `parse`, what turns the stored value back into the field's (not called on None);
    `omit_none`, leave the key out of the file when the value is None (and read a
    missing key as None); `flat`, the value is a record whose keys stand among the
    owner's own (`parse` then reads the owner's whole dict, and None leaves nothing);
    `unless_skipped`, a figure of a computation that can be skipped: written only when
    the record's `skipped` (the reason) is None, then even as None (a NaN the file
    holds as null), and read as None when missing; `kept_out`, a value the file does
    not hold (arrays kept for later computation: not compared, read back as None)."""
    if (omit_none or unless_skipped or kept_out) and default is dataclasses.MISSING:
        default = None
    metadata = {
        "key": key,
        "parse": parse,
        "omit_none": omit_none,
        "flat": flat,
        "unless_skipped": unless_skipped,
        "kept_out": kept_out,
    }
    return dataclasses.field(default=default, compare=not kept_out, metadata=metadata)


def plain(value: Any) -> Any:
    """A value as JSON has it: records as their dicts, mappings as dicts, tuples as lists."""
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def mapping_of(parse: Parse) -> Parse:
    """Parse each value of a stored mapping (its keys are names: metrics, baselines)."""
    return lambda data: {k: parse(v) for k, v in data.items()}


def tuple_of(parse: Parse) -> Parse:
    """Parse each item of a stored list, into a tuple."""
    return lambda data: tuple(parse(v) for v in data)


def if_key(key: str, parse: Parse) -> Parse:
    """Parse a flat record whose keys stand in its owner's dict where `key` is among
    them, else None (a computation that was skipped left none)."""
    return lambda data: parse(data) if key in data else None


@dataclasses.dataclass(frozen=True)
class Record:
    """The base of the floor's results: `to_dict()` is the stored form, `from_dict` its
    inverse (a stored list becomes the field's tuple; a missing key without a default
    raises KeyError naming it)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            meta, value = field.metadata, getattr(self, field.name)
            left_out = value is None and (meta.get("omit_none") or meta.get("flat"))
            skipped = meta.get("unless_skipped") and getattr(self, "skipped", None) is not None
            if left_out or skipped or meta.get("kept_out"):
                continue
            if meta.get("flat"):
                out.update(plain(value))
            else:
                out[meta.get("key") or field.name] = plain(value)
        return out

    @classmethod
    def from_attributes(cls, source: Any, **values: Any) -> Self:
        """A record of `values`, every other field taken from the attribute of `source`
        of the same name (a summary narrowed to the figures a file keeps, a run's
        training figures); a field with a default keeps it where `source` has no such
        attribute."""
        taken = {}
        for field in dataclasses.fields(cls):
            has_default = field.default is not dataclasses.MISSING
            if field.name not in values and (hasattr(source, field.name) or not has_default):
                taken[field.name] = getattr(source, field.name)
        return cls(**taken, **values)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        values = {}
        for field in dataclasses.fields(cls):
            meta = field.metadata
            parse = meta.get("parse")
            if meta.get("kept_out"):
                continue
            if meta.get("flat"):
                values[field.name] = parse(data)
                continue
            key = meta.get("key") or field.name
            if key not in data:
                if field.default is dataclasses.MISSING:
                    raise KeyError(key)
                continue
            value = data[key]
            if parse and value is not None:
                value = parse(value)
            elif isinstance(value, list):
                value = tuple(value)
            values[field.name] = value
        return cls(**values)


def json_safe(value: Any) -> Any:
    """NaN and infinities as null: strict JSON readers (browsers, jq) reject them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value
