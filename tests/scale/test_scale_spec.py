"""A scaling study's spec: built from options, recorded in scale.json, rebuilt from a
run directory, and refused when a run directory holds another study."""

import json
from pathlib import Path

import pytest

from finscale.errors import InputError
from finscale.scale import (
    SCALE_FILE,
    check_run_dir_matches,
    new_scale_spec,
    read_scale_file,
    spec_of_run_dir,
    write_scale_file,
)
from tests.scale.tiny import TINY_SCALE_SETS, tiny_scale_spec


def test_a_new_spec_lives_in_runs_under_its_preset_or_config_name(tmp_path):
    store = tmp_path / "store"
    assert new_scale_spec("quick", None, {}, None, None, store).run_dir == Path("runs/quick")
    config = tmp_path / "mine.yaml"
    config.write_text("search:\n  trials: 4\n")
    spec = new_scale_spec(None, config, {"scale.seeds": 2}, None, None, store, workers=2)
    assert spec.run_dir == Path("runs/mine") and spec.workers == 2
    assert spec.config.search.trials == 4 and spec.config.scale.seeds == 2
    assert new_scale_spec(None, None, {}, None, None, store).run_dir == Path("runs/scale")
    with pytest.raises(InputError, match=r"workers must be at least 1, got 0 \(workers\)"):
        new_scale_spec(None, None, {}, tmp_path, None, store, workers=0)


def test_each_study_has_its_folder_and_journal_under_studies(tmp_path):
    spec = tiny_scale_spec(tmp_path / "run", tmp_path / "store")
    assert list(spec.studies()) == [(4000, 1), (16000, 1), (32000, 1)]
    study = spec.study_spec(16000, 1)
    assert study.run_dir == tmp_path / "run" / "studies" / "a25_16K_h1"
    assert study.storage == str(study.run_dir / "study.journal")
    assert study.config.data.horizon_days == 1 and study.budget == 16000
    assert spec.horizon_config(5).data.horizon_days == 5
    with pytest.raises(InputError) as info:  # the copy into data is validated too
        spec.horizon_config(61)
    assert info.value.where == "data.horizon_days"


def test_a_run_directory_gives_back_the_spec_it_was_made_with(tmp_path):
    spec = tiny_scale_spec(tmp_path / "run", tmp_path / "store", **{"scale.seeds": 3})
    spec.run_dir.mkdir()
    write_scale_file(spec)
    info = read_scale_file(spec.run_dir)
    assert [s["study_name"] for s in info["studies"]] == ["a25_4K_h1", "a25_16K_h1", "a25_32K_h1"]
    again = spec_of_run_dir(spec.run_dir, None, tmp_path / "other_store")
    assert again.config == spec.config and again.storage is None
    assert again.store_dir == tmp_path / "other_store"
    with pytest.raises(InputError, match="not a scaling study's run directory"):
        read_scale_file(tmp_path)


def test_a_recorded_storage_without_its_password_must_be_given_again(tmp_path):
    url = "postgresql://finscale:secret@db.example:5432/studies"
    spec = tiny_scale_spec(tmp_path, tmp_path / "store")
    spec = type(spec)(spec.config, spec.run_dir, spec.store_dir, storage=url)
    write_scale_file(spec)
    recorded = json.loads((tmp_path / SCALE_FILE).read_text())["storage"]
    assert "secret" not in recorded and "***" in recorded
    with pytest.raises(InputError, match=r"needs its password: .* \(storage\)"):
        spec_of_run_dir(tmp_path, None, tmp_path / "store")
    assert spec_of_run_dir(tmp_path, url, tmp_path / "store").storage == url


def test_a_run_directory_refuses_other_data_or_model_settings(tmp_path):
    spec = tiny_scale_spec(tmp_path, tmp_path / "store")
    check_run_dir_matches(spec)  # nothing recorded yet
    write_scale_file(spec)
    # Other training or study-size settings resume the same study.
    check_run_dir_matches(tiny_scale_spec(tmp_path, tmp_path / "store", **{"scale.seeds": 3}))
    other = tiny_scale_spec(tmp_path, tmp_path / "store", **{"data.start": "2013-01-01"})
    with pytest.raises(InputError, match=r"other data settings.*\(run_dir\)"):
        check_run_dir_matches(other)
    sets = {**TINY_SCALE_SETS, "data.start": "2013-01-01", "model.n_layers": [1]}
    both = tiny_scale_spec(tmp_path, tmp_path / "store", **sets)
    with pytest.raises(InputError, match="other data and model settings"):
        check_run_dir_matches(both)
