"""Study configs: presets, YAML files, dotted overrides, errors that name the key."""

import pytest
import yaml

from finscale.config import PRESETS, StudyConfig, load_study_config, preset_path
from finscale.errors import InputError
from finscale.units import parse_budget


def as_written(dotted: str, value: object) -> object:
    """A loaded field's value as a YAML file writes it: lists for tuples, budgets
    as parameter counts, one word of targets as a list of it."""
    if dotted == "scale.budgets":
        return sorted(parse_budget(v) for v in value)
    if dotted == "data.targets" and isinstance(value, str):  # `targets: all`
        return [value]
    return value


@pytest.mark.parametrize("name", PRESETS)
def test_every_key_of_a_preset_reaches_the_config(name):
    written = yaml.safe_load(preset_path(name).read_text())
    config = load_study_config(name).model_dump()
    defaults = StudyConfig().model_dump()
    differs = []
    for section, fields in written.items():
        for key, value in fields.items():
            loaded = config[section][key]
            loaded = list(loaded) if isinstance(loaded, tuple) else loaded
            if isinstance(value, dict):  # a section within the section: the keys written
                loaded = {k: loaded[k] for k in value}
            assert loaded == as_written(f"{section}.{key}", value), f"{name}: {section}.{key}"
            differs += [key] if loaded != defaults[section][key] else []
    assert differs, f"preset {name} sets nothing the defaults do not"
    # No preset on market data searches an unregularised model; the planted control's
    # labels follow a known rule of the window, and its small models need every unit.
    if written["data"]["source"] != "synthetic":
        assert written["search"]["dropout"][0] >= 0.1


def test_quick_preset_is_smaller_than_paper():
    quick, paper = load_study_config("quick"), load_study_config("paper")
    assert quick.search.trials < paper.search.trials
    assert quick.train.max_epochs < paper.train.max_epochs


def test_dotted_overrides_reach_nested_fields():
    config = load_study_config(
        "quick", overrides={"train.max_epochs": 7, "search.pruner": "hyperband"}
    )
    assert config.train.max_epochs == 7 and config.search.pruner == "hyperband"


def test_unknown_key_in_a_file_names_the_key_and_the_file(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("search:\n  trails: 10\n")
    with pytest.raises(InputError) as info:
        load_study_config(path=path)
    assert "search.trails: unknown key" in str(info.value)
    assert str(path) in str(info.value)


def test_bad_override_names_the_field():
    with pytest.raises(InputError, match=r"search.dropout.*\(search.dropout\)"):
        load_study_config("quick", overrides={"search.dropout": [0.5, 1.5]})
    with pytest.raises(InputError, match="not a section"):
        load_study_config(overrides={"search.trials": 5, "search.trials.x": 1})


def test_missing_file_bad_yaml_and_both_sources_are_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_study_config(path=tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("search: [1, 2\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_study_config(path=bad)
    with pytest.raises(InputError, match="not both"):
        load_study_config("quick", bad)
    with pytest.raises(InputError, match="no preset"):
        load_study_config("huge")


def test_log_ranges_must_be_positive():
    with pytest.raises(InputError, match="log range"):
        load_study_config(overrides={"search.weight_decay": [0, 1e-3]})


@pytest.mark.parametrize(
    ("field", "ranged", "value"),
    [
        ("model.dropout", "search.dropout", 1.0),
        ("train.learning_rate", "search.learning_rate", 0.0),
        ("train.warmup_steps", "search.warmup_steps", -1),
    ],
)
def test_a_search_range_has_the_bounds_of_the_field_it_samples(field, ranged, value):
    with pytest.raises(InputError) as alone:
        load_study_config(overrides={field: value})
    with pytest.raises(InputError) as in_range:
        load_study_config(overrides={ranged: [value, value]})
    assert alone.value.what.removeprefix(field) == in_range.value.what.removeprefix(ranged)
