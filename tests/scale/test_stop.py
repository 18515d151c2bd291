"""Stopping a scaling study writes a STOP file for its stages and each of its HPO
studies; a new run clears them all."""

import pytest

from finscale.errors import InputError
from finscale.execution.control import STOP_FILE
from finscale.hpo import STUDY_FILE
from finscale.scale import SCALE_FILE, clear_stops, stop_run_dir


def scale_run_dir(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "studies" / "a25_4K_h1").mkdir(parents=True)
    (run_dir / "studies" / "a25_4K_h1" / STUDY_FILE).write_text("{}")
    (run_dir / "studies" / "a25_16K_h1").mkdir()  # not started: no study.json
    (run_dir / SCALE_FILE).write_text("{}")
    return run_dir


def test_a_stop_of_a_scaling_study_reaches_every_started_study(tmp_path):
    run_dir = scale_run_dir(tmp_path)
    assert stop_run_dir(run_dir) == run_dir / STOP_FILE
    assert (run_dir / STOP_FILE).exists()
    assert (run_dir / "studies" / "a25_4K_h1" / STOP_FILE).exists()
    assert not (run_dir / "studies" / "a25_16K_h1" / STOP_FILE).exists()
    clear_stops(run_dir)
    assert not list(run_dir.rglob(STOP_FILE))


def test_a_stop_of_one_hpo_study_or_of_no_study(tmp_path):
    (tmp_path / STUDY_FILE).write_text("{}")
    assert stop_run_dir(tmp_path) == tmp_path / STOP_FILE
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        InputError, match=r"is not a study's run directory \(no study.json or scale.json\)"
    ):
        stop_run_dir(empty)
    assert not (empty / STOP_FILE).exists()
