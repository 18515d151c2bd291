"""`search.transfer: smallest` through the real pipeline: the larger budgets search
their architecture only, with the smallest winner's training values, and the report
sets the search's cost and the winners' loss beside a run that searched them all."""

import json

import optuna
import pytest

from finscale.analysis import ScalingResults
from finscale.errors import InputError
from finscale.execution import open_storage
from finscale.execution.attrs import TRANSFER_ATTR
from finscale.hpo.space import TRAINING_PARAMS
from finscale.scale import Pipeline, build_results, write_run_report
from tests.scale.tiny import QuietReporter, run_pipeline, tiny_scale_spec

TRANSFER_SETS = {
    "model.parametrization": "mup",
    "search.transfer": "smallest",
    "search.trials": 4,
    "search.transfer_trials": 2,
    "search.forced_extremes": False,
    "scale.budgets": "4K,16K",
}


@pytest.mark.slow
def test_larger_budgets_take_the_smallest_winners_values(tiny_scale_run, run_copy, tmp_path):
    spec = tiny_scale_spec(tmp_path / "transfer", tiny_scale_run.parent / "store", **TRANSFER_SETS)
    reporter = run_pipeline(spec)
    assert not [u for u in reporter.units if u[0] == "cross_budget"]  # nothing to compare
    source = spec.study_spec(4000, 1)
    studies = {
        b: optuna.load_study(
            study_name=spec.study_name(b, 1),
            storage=open_storage(spec.study_spec(b, 1).storage),
        )
        for b in spec.budgets
    }
    smallest = studies[4000]
    assert len(smallest.trials) == 4 and TRANSFER_ATTR not in smallest.user_attrs
    winner = min((t for t in smallest.trials if t.value is not None), key=lambda t: t.value)
    for budget in (16000,):
        study = studies[budget]
        record = study.user_attrs[TRANSFER_ATTR]
        assert record["from_study"] == source.study_name and record["from_budget"] == 4000
        assert record["parametrization"] == "mup"
        assert len([t for t in study.trials if t.state.is_finished()]) == 2
        for trial in study.trials:
            for name in TRAINING_PARAMS:
                assert trial.params[name] == pytest.approx(record["values"][name])
        assert record["values"]["learning_rate"] == pytest.approx(winner.params["learning_rate"])

    # A rerun resumes: the same values, nothing trained again.
    again = run_pipeline(spec)
    assert all(skipped for name, *_, skipped in again.units if name == "hpo")

    # The results and the report, beside the run that searched every budget itself.
    build_results(run_copy)  # the compared run needs its scaling.json
    results = build_results(spec.run_dir, compare=run_copy)
    stored = json.loads((spec.run_dir / "scaling.json").read_text())
    assert stored["transfer"] == {
        "mode": "smallest",
        "parametrization": "mup",
        "base_shape": [4, 1],
        "readout_init": "zero",
    }
    rows = {row.budget: row for row in results.horizons["1"].budgets}
    assert rows[4000].transfer is None and rows[16000].transfer["from_trial"] == (
        rows[4000].hpo_trial
    )
    assert rows[16000].hpo_compute.trials == 2 and rows[4000].hpo_compute.trials == 4
    # The search's epochs as the study's storage counts them, reused duplicates aside.
    assert rows[4000].hpo_compute.epochs == sum(
        t.user_attrs["epochs_run"]
        for t in smallest.trials
        if t.state.is_finished() and "duplicate_of" not in t.user_attrs
    )
    other = results.comparison.horizons["1"]
    assert set(other) == {4000, 16000, 32000}  # the compared run has one more budget
    assert other[16000].hpo_compute.trials == 3
    paired = other[16000].paired  # this run minus the compared one, on the same dates
    assert paired.low < paired.high and paired.mde > 0
    here, there = rows[16000].metrics["log_loss"].mean, other[16000].test_log_loss
    assert paired.difference == pytest.approx(here - there.mean)
    # The report of the stored scaling.json, read back.
    write_run_report(spec.run_dir, ScalingResults.from_dict(stored))
    report = (spec.run_dir / "report.md").read_text()
    assert "## Hyperparameter transfer" in report
    assert "relative to the base shape d4/L1, readout init zero" in report
    assert f"from trial {rows[4000].hpo_trial} of {source.study_name}" in report
    assert (
        "there: trials" in report
        and "change to here, paired" in report
        and "Search compute, every budget together" in report
    )

    # A rerun whose source winner changed (more trials on the smallest budget may crown
    # another) is refused: the study's trials would mix two searches.
    study = studies[16000]
    changed = dict(study.user_attrs[TRANSFER_ATTR])
    changed["values"] = {**changed["values"], "learning_rate": 0.5}
    study.set_user_attr(TRANSFER_ATTR, changed)
    with pytest.raises(InputError, match="was searched with the values of trial"):
        Pipeline(spec, QuietReporter()).hpo()
