"""Studies run in-process on a real journal storage: exact counts, resume, refusing
another grid, moving a study between storages."""

import json

import optuna
import psutil
import pytest
import torch

from finscale.errors import InputError
from finscale.execution.attrs import FORCED_ATTR
from finscale.execution.storage import open_storage
from finscale.hpo.spec import prepare
from finscale.hpo.study import create_or_load, import_trials, run_study
from finscale.hpo.trial_records import read_trial_records, state_counts
from finscale.model import PatchTST
from tests.hpo.conftest import finished, load


@pytest.mark.slow
def test_study_reaches_the_count_and_resumes_to_a_larger_one(make_spec):
    spec = make_spec()
    first = run_study(spec)
    assert first.created and first.finished
    assert first.counts["finished"] == 8
    study = load(spec)
    forced = [t.user_attrs[FORCED_ATTR] for t in study.trials if FORCED_ATTR in t.user_attrs]
    assert len(forced) == len(set(forced)) == len(study.user_attrs["forced_extremes"]) >= 4
    # Forced extremes are the first trials.
    assert all(FORCED_ATTR in t.user_attrs for t in study.trials[: len(forced)])

    bigger = make_spec(**{"search.trials": 11})
    second = run_study(bigger)
    assert not second.created
    study = load(spec)
    assert len(finished(study)) == 11
    forced_again = [t for t in study.trials if FORCED_ATTR in t.user_attrs]
    assert len(forced_again) == len(forced), "forced extremes were enqueued again on resume"

    # Every finished trial has a valid record; the best file agrees with the storage.
    records = read_trial_records(spec.run_dir)
    assert [r["number"] for r in records] == [
        t.number for t in study.trials if t.state.is_finished()
    ]
    best = json.loads((spec.run_dir / "tiny_best.json").read_text())
    assert best["best_value"] == study.best_value and best["best_trial"] == study.best_trial.number
    assert best["counts"]["finished"] == 11
    everything = json.loads((spec.run_dir / "tiny_all_trials.json").read_text())
    values = [r["value"] if r["value"] is not None else r["last_value"] for r in everything]
    assert values == sorted(values) and len(everything) == 11
    record = records[0]
    prepared = prepare(spec)
    # The record's count is the built model's, its sample counts the dataset's own.
    arch = prepared.grid.architectures[record["architecture"]["index"]]
    with torch.device("meta"):
        built = sum(p.numel() for p in PatchTST(arch.config).parameters())
    assert record["architecture"]["param_count"] == built
    assert record["batch"]["micro_batch"] * record["batch"]["accumulation_steps"] >= 256
    assert len(record["learning_curve"]) == record["epochs_run"] > 0
    windows = prepared.windows()
    for split in ("train", "val"):
        assert record["split_statistics"][split]["samples"] == len(windows.rows(split))
    rss = psutil.Process().memory_info().rss  # the trials ran in this process
    assert record["resources"][0]["rss_bytes"] == pytest.approx(rss, rel=0.5)
    assert set(record["confusion_matrix"][0]) <= set(range(10**6))


def test_resuming_on_another_grid_is_refused(make_spec):
    spec = make_spec(**{"search.trials": 2})
    run_study(spec)
    other = make_spec(**{"search.trials": 2, "model.n_heads": [2]})
    with pytest.raises(InputError, match="grid"):
        create_or_load(other, prepare(other))


def test_resuming_with_another_architecture_space_is_refused(make_spec):
    spec = make_spec(**{"search.trials": 1, "train.max_epochs": 1})
    run_study(spec)
    other = make_spec(**{"search.trials": 2, "search.architecture_space": "categorical"})
    with pytest.raises(InputError, match="architecture space"):
        create_or_load(other, prepare(other))


def test_a_categorical_study_trains_the_architectures_its_arch_idx_names(make_spec):
    spec = make_spec(**{"search.trials": 5, "search.architecture_space": "categorical"})
    run_study(spec)
    study = load(spec)
    done = [t for t in study.trials if t.state.is_finished() and t.params]
    assert len(done) >= 5
    for trial in done:
        assert set(trial.params) >= {"arch_idx", "learning_rate"}
        assert trial.user_attrs["architecture"]["index"] == trial.params["arch_idx"]


def test_import_trials_rebuilds_the_study_in_another_storage(make_spec, tmp_path):
    spec = make_spec(**{"search.trials": 5})
    run_study(spec)
    source = load(spec)
    target_dir = tmp_path / "moved"
    created = import_trials(spec.run_dir, str(target_dir / "other.journal"), target_dir)
    assert created["trials"] == len([t for t in source.trials if t.state.is_finished()])
    moved = optuna.load_study(
        study_name="tiny", storage=open_storage(str(target_dir / "other.journal"))
    )

    def key(t):
        return (t.state, t.value, t.params, t.intermediate_values, t.user_attrs.get("architecture"))

    assert [key(t) for t in moved.trials] == [
        key(t) for t in source.trials if t.state.is_finished()
    ]
    assert moved.user_attrs["grid_hash"] == source.user_attrs["grid_hash"]
    # The imported study resumes like the original: no forced extremes again.
    resumed = run_study(
        make_spec(run_dir=target_dir, **{"search.trials": 6}).__class__(
            **{
                **make_spec(run_dir=target_dir, **{"search.trials": 6}).__dict__,
                "storage": str(target_dir / "other.journal"),
            }
        )
    )
    assert resumed.counts["finished"] == 6
    assert state_counts(moved.trials)["waiting"] == 0
    with pytest.raises(InputError, match="already exists"):
        import_trials(spec.run_dir, str(target_dir / "other.journal"), target_dir)
