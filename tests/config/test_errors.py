"""The config floor's one turning of a validation error into an input error: the dotted
field it names, and whom `config_from_mapping` blames (an override, or the file)."""

import pytest
from pydantic import ValidationError

from finscale.config import (
    DataConfig,
    ScaleConfig,
    StudyConfig,
    config_from_mapping,
    input_error,
    load_study_config,
)
from finscale.config.base import overlaps
from finscale.errors import InputError


def error_of(model, **fields) -> InputError:
    with pytest.raises(ValidationError) as info:
        model(**fields)
    return input_error(info.value, model)


@pytest.mark.parametrize(
    ("fields", "where", "what"),
    [
        ({"data": {"horizon_days": 0}}, "data.horizon_days", "greater than or equal to 1, got 0"),
        ({"scale": {"horizons": [1, 90]}}, "scale.horizons", "less than or equal to 60, got 90"),
        ({"train": {"pos_weight": "many"}}, "train.pos_weight", "got 'many'"),
        ({"search": {"trails": 3}}, "search.trails", "unknown key"),
        ({"bogus": {"x": 5}}, "bogus", "unknown section; sections: data, model, train"),
        ({"scale": {"budgets": "20Q"}}, "scale.budgets", "budget '20Q' is not a parameter count"),
        ({"train": {"memory_limit_bytes": "lots"}}, "train.memory_limit_bytes", "'lots'"),
    ],
)
def test_an_error_names_the_dotted_field_without_list_positions_or_union_branches(
    fields, where, what
):
    error = error_of(StudyConfig, **fields)
    assert error.where == where
    assert error.what.startswith(f"{where}: ") and what in error.what


def test_a_section_alone_names_its_own_fields():
    assert error_of(DataConfig, tier="a75").where == "tier"
    assert error_of(DataConfig, bogus=1).what == "bogus: unknown key"


def test_a_rule_across_fields_blames_the_field_the_user_set():
    study = {"data": {"context_days": 8}, "model": {"patch_len": 16}}
    with pytest.raises(ValidationError) as info:
        StudyConfig(**study)
    assert input_error(info.value, StudyConfig).where == "data.context_days"
    assert input_error(info.value, StudyConfig, ["model.patch_len"]).where == "model.patch_len"
    assert "context 8 days is shorter than a patch (16)" in str(
        input_error(info.value, StudyConfig)
    )
    source = error_of(DataConfig, source="csv")
    assert source.where == "path" and "needs path" in source.what


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"data.horizon_days": 90}, "data.horizon_days"),
        ({"bogus.x": 5}, "bogus"),  # the section is unknown, the override made it
        ({"search.trials": 5, "search.trials.x": 1}, "search.trials.x"),
    ],
)
def test_an_overridden_value_is_blamed_on_its_field_even_over_a_preset(overrides, where):
    with pytest.raises(InputError) as info:
        load_study_config("quick", overrides=overrides)
    assert info.value.where == where


def test_a_value_from_a_file_is_blamed_on_the_file(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("data:\n  horizon_days: 90\n")
    with pytest.raises(InputError) as info:
        load_study_config(path=path, overrides={"search.trials": 3})
    assert info.value.where == str(path)
    assert info.value.what.startswith("data.horizon_days: ")
    with pytest.raises(InputError) as info:
        config_from_mapping({"data": {"horizon_days": 90}})  # no source: the field
    assert info.value.where == "data.horizon_days"


@pytest.mark.parametrize("horizon", [0, 1, 60, 61])
def test_a_scaling_studys_horizons_have_the_bounds_of_a_studys_horizon(horizon):
    def valid(make) -> bool:
        try:
            make()
        except ValidationError:
            return False
        return True

    alone = valid(lambda: DataConfig(horizon_days=horizon))
    assert alone == (1 <= horizon <= 60)
    assert valid(lambda: ScaleConfig(horizons=[1, horizon])) == alone


def test_overlaps_reads_dotted_keys_both_ways():
    assert overlaps("data.tier", ["data.tier"])
    assert overlaps("data.tier", ["data"])  # a section set whole
    assert overlaps("bogus", ["bogus.x"])  # a key inside an unknown section
    assert not overlaps("data.tier", ["data.target", "dat"])


def test_an_error_with_a_fix_shows_the_value_beside_its_flag():
    from finscale.cli.app import with_fix

    error = InputError("the source has close prices only", "data.tier", fix="close")
    assert str(error) == "the source has close prices only (data.tier=close)"
    assert with_fix("--tier", "close") == "--tier close"
    assert with_fix("--set data.tier", "close") == "--set data.tier=close"
    assert with_fix("--tier", None) == "--tier"
