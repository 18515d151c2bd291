"""Workers of a real study: a deadline or a STOP file stops them gracefully and a
resume re-runs the stopped configuration first; too many failures in a row end one."""

import json
import time

import pytest
from optuna.trial import TrialState

from finscale.errors import RunError
from finscale.execution.control import request_stop
from finscale.hpo.spec import prepare
from finscale.hpo.study import run_study
from finscale.hpo.trial_records import read_trial_records
from tests.hpo.conftest import finished, load


@pytest.mark.slow
def test_deadline_stops_mid_trial_and_resume_reruns_that_configuration_first(make_spec):
    slow = {"train.max_epochs": 200, "train.patience": 200, "search.trials": 3}
    spec = make_spec(**slow)
    prepared = prepare(spec)
    # Real time: a real study under a deadline 3 s away, the --timeout-hours path end to
    # end; the deadline's arithmetic is tested with a fake clock in test_control.py.
    stopped = run_study(
        type(spec)(**{**spec.__dict__, "deadline": time.time() + 3.0}), prepared=prepared
    )
    assert stopped.stop_reason and "time limit" in stopped.stop_reason
    study = load(spec)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["failed_for_resume"]
    assert 0 < failed[0].user_attrs["epochs_run"] < 200  # it finished its current epoch
    record = json.loads(
        (spec.run_dir / "trials" / f"trial_{failed[0].number:04d}.json").read_text()
    )
    assert record["state"] == "FAIL" and "stopped" in record["failure_reason"]

    # The resume runs the stopped configuration first, then reaches exactly 3.
    resumed = run_study(make_spec(**{**slow, "train.max_epochs": 2}))
    assert resumed.finished
    study = load(spec)
    retry = next(t for t in study.trials if t.user_attrs.get("retry_of") == failed[0].number)
    assert retry.params == failed[0].params and retry.state == TrialState.COMPLETE
    assert len(finished(study)) == 3


def test_stop_file_stops_before_the_next_trial(make_spec):
    spec = make_spec(**{"search.trials": 6})
    calls = []

    def on_trial(study, trial, outcome, counts, worker):
        calls.append(trial.number)
        request_stop(spec.run_dir)

    outcome = run_study(spec, on_trial=on_trial)
    assert calls == [0] and outcome.counts["finished"] == 1
    assert "stop requested" in outcome.stop_reason


def test_a_worker_gives_up_after_too_many_failures_in_a_row(make_spec):
    spec = make_spec(
        **{
            "search.learning_rate": [1e6, 1e7],
            "train.grad_clip": 0.0,
            "search.forced_extremes": False,
            "search.max_consecutive_failures": 3,
        }
    )
    with pytest.raises(RunError, match="3 trials in a row failed, the last with: TrainingDiverged"):
        run_study(spec)
    assert len(read_trial_records(spec.run_dir)) == 3
