"""A config section as a markdown table (key | default | meaning), built from its fields'
defaults, bounds and descriptions, so the docs' config tables (docs/config_tables.py
writes them) say what the code does.

A field whose default is None says what None means in its description, as a last
clause "None: <what>"; the table shows that as the default.
"""

from __future__ import annotations

from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from finscale.units import format_budget

NONE_CLAUSE = "None: "
# Fields whose values read better in the ground floor's units than as integers.
FORMAT_OF_FIELD = {"budgets": format_budget}


def markdown_table(section: type[BaseModel]) -> str:
    """Every field of `section`, in declaration order, as one markdown table row:
    the key, its default as a YAML file would write it (None as its description
    says), and its description with the field's bounds."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for name, field in section.model_fields.items():
        meaning, none_means = split_none_clause(field.description or "")
        if field.default_factory is not None:  # a section within the section
            default = "(its own table)"
        else:
            default = none_means if field.default is None else render_value(name, field.default)
        bounds = bounds_text(name, field)
        if bounds:
            meaning = f"{meaning}; {bounds}" if meaning else bounds
        rows.append(f"| `{name}` | {cell(default)} | {cell(meaning)} |")
    return "\n".join(rows) + "\n"


def split_none_clause(description: str) -> tuple[str, str]:
    """(the description without its "None: ..." clause, what None means; "none" where
    the description does not say)."""
    head, sep, tail = description.rpartition(NONE_CLAUSE)
    if not sep:
        return description, "none"
    return head.rstrip(" ;,"), tail.strip()


def render_value(name: str, value: Any) -> str:
    """A default as a YAML file writes it: true/false, [a, b] for tuples, budgets as 2M."""
    if isinstance(value, tuple | list):
        return "[" + ", ".join(render_value(name, v) for v in value) + "]"
    if name in FORMAT_OF_FIELD and isinstance(value, int):
        return FORMAT_OF_FIELD[name](value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def bounds_text(name: str, field: FieldInfo) -> str:
    """The field's numeric bounds, `low <= name < high` or one side of it ("" if none)."""
    low: tuple[str, object] | None = None  # (the operator as read left of name, bound)
    high: tuple[str, object] | None = None
    for rule in field.metadata:
        if isinstance(rule, annotated_types.Ge):
            low = ("<=", rule.ge)
        elif isinstance(rule, annotated_types.Gt):
            low = ("<", rule.gt)
        elif isinstance(rule, annotated_types.Le):
            high = ("<=", rule.le)
        elif isinstance(rule, annotated_types.Lt):
            high = ("<", rule.lt)
    if low and high:
        return f"`{low[1]} {low[0]} {name} {high[0]} {high[1]}`"
    if low:
        return f"`{name} {low[0].replace('<', '>')} {low[1]}`"
    if high:
        return f"`{name} {high[0]} {high[1]}`"
    return ""


def cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")
