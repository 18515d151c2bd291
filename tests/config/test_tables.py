"""The config's sections as markdown tables: one row per field, defaults as a YAML file
writes them, bounds as the validators enforce them, every choice explained."""

import typing

import pytest
from pydantic import Field, ValidationError

from finscale.config import (
    EvaluationConfig,
    ScaleConfig,
    StudyConfig,
    TrainConfig,
    markdown_table,
)
from finscale.config.base import StrictSection
from finscale.config.tables import split_none_clause

SECTIONS = {name: field.annotation for name, field in StudyConfig.model_fields.items()}


def rows(section):
    """{key: (default, meaning)} of a section's table, read back from the markdown."""
    lines = markdown_table(section).splitlines()
    assert lines[:2] == ["| key | default | meaning |", "|---|---|---|"]
    cells = [line.strip("|").split(" | ") for line in lines[2:]]
    assert all(len(c) == 3 for c in cells), cells
    return {key.strip(" `"): (default, meaning.strip()) for key, default, meaning in cells}


def choices(annotation):
    """Every literal value a field's type allows, however nested in unions."""
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    return [c for arg in typing.get_args(annotation) for c in choices(arg)]


@pytest.mark.parametrize("name", SECTIONS)
def test_every_field_is_one_row_in_order_with_a_description(name):
    section = SECTIONS[name]
    table = rows(section)
    assert list(table) == list(section.model_fields)
    undescribed = [k for k, f in section.model_fields.items() if not (f.description or "").strip()]
    assert undescribed == [], f"{name}: fields without a description"


@pytest.mark.parametrize("name", SECTIONS)
def test_every_choice_of_a_field_is_named_in_its_meaning(name):
    section = SECTIONS[name]
    table = rows(section)
    for key, field in section.model_fields.items():
        for choice in choices(field.annotation):
            assert choice in table[key][1], f"{name}.{key}: {choice} is not explained"


def test_defaults_read_as_a_yaml_file_writes_them():
    scale = rows(ScaleConfig)
    assert scale["budgets"][0] == "[2M, 20M, 200M]"
    assert scale["cross_budget"][0] == "true"
    assert scale["data_fractions"][0] == "[1.0]"
    assert rows(EvaluationConfig)["scheme"][0] == "holdout"


def test_a_none_default_reads_as_its_description_says():
    train = rows(TrainConfig)
    assert train["micro_batch"] == (
        "the memory planner's choice",
        "samples per forward pass; `micro_batch >= 1`",
    )
    assert split_none_clause("a; b") == ("a; b", "none")
    for name, section in SECTIONS.items():
        for key, (_, meaning) in rows(section).items():
            assert "None" not in meaning, f"{name}.{key}: None left in its meaning"


@pytest.mark.parametrize(
    "section,key,inside,outside",
    [
        (EvaluationConfig, "folds", [2, 100], [1, 101]),
        (ScaleConfig, "confidence_level", [0.51, 0.99], [0.5, 1.0]),
        (ScaleConfig, "seeds", [1], [0]),
        (TrainConfig, "grad_clip", [0.0], [-0.1]),
    ],
)
def test_the_bounds_shown_are_the_bounds_enforced(section, key, inside, outside):
    shown = {
        EvaluationConfig: "`2 <= folds <= 100`",
        ScaleConfig: {"confidence_level": "`0.5 < confidence_level < 1`", "seeds": "`seeds >= 1`"},
        TrainConfig: "`grad_clip >= 0`",
    }[section]
    shown = shown[key] if isinstance(shown, dict) else shown
    assert rows(section)[key][1].endswith(shown)
    for value in inside:
        section(**{key: value})
    for value in outside:
        with pytest.raises(ValidationError):
            section(**{key: value})


def test_a_pipe_in_a_description_does_not_split_the_row():
    class Piped(StrictSection):
        mode: str = Field("a", description="a | b")

    assert rows(Piped)["mode"] == ("a", "a \\| b")
