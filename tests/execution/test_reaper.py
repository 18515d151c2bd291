"""Dead workers on one machine: their trials are failed and re-queued, a live
worker's are left alone (the heartbeat reaper runs against PostgreSQL in
test_storage.py)."""

import contextlib
import os
import time

import pytest
from optuna.trial import TrialState

from finscale.execution.reaper import UNMARKED_GRACE_SECONDS, reap_dead_trials, worker_identity
from finscale.execution.storage import enqueued_params
from finscale.hpo.spec import prepare
from finscale.hpo.study import create_or_load


def test_a_dead_workers_trial_is_failed_and_requeued(make_spec):
    spec = make_spec(**{"search.trials": 3})
    prepared = prepare(spec)
    study, _ = create_or_load(spec, prepared)
    # A trial left running by a process that no longer exists.
    trial = study.ask()
    trial.suggest_int("d_model_rank", 0, 1)
    identity = worker_identity(0) | {"pid": 2**22 + 12345}
    trial.set_user_attr("worker", identity)
    # A trial of a live worker (this process) is left alone.
    live = study.ask()
    live.set_user_attr("worker", worker_identity(0))
    assert reap_dead_trials(study, spec.run_dir) == [trial.number]
    dead = study.trials[trial.number]
    assert dead.state == TrialState.FAIL and "died" in dead.user_attrs["fail_reason"]
    assert study.trials[live.number].state == TrialState.RUNNING
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == trial.number]
    assert len(retry) == 1 and retry[0].state == TrialState.WAITING
    assert enqueued_params(retry[0]) == dead.params
    study.tell(live, state=TrialState.FAIL)


@pytest.mark.parametrize("zone", ["UTC0", "EST5", "JST-9"])  # UTC, UTC-5, UTC+9
def test_a_trial_never_marked_with_its_worker_is_orphaned_after_the_grace(make_spec, zone):
    spec = make_spec(**{"search.trials": 3})
    study, _ = create_or_load(spec, prepare(spec))
    with local_time_zone(zone):  # Optuna's start times are naive local times
        asked = time.time()
        orphan = study.ask()  # asked, then its worker died before marking it
        orphan.suggest_int("d_model_rank", 0, 1)

        def reap_at(seconds_after_ask):
            return reap_dead_trials(study, spec.run_dir, clock=lambda: asked + seconds_after_ask)

        assert reap_at(UNMARKED_GRACE_SECONDS - 2) == []
        assert study.trials[orphan.number].state == TrialState.RUNNING
        assert reap_at(UNMARKED_GRACE_SECONDS + 2) == [orphan.number]
    dead = study.trials[orphan.number]
    assert dead.state == TrialState.FAIL
    assert "died before the trial started training" in dead.user_attrs["fail_reason"]
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == orphan.number]
    assert [enqueued_params(t) for t in retry] == [dead.params]


@contextlib.contextmanager
def local_time_zone(zone):
    """The process's local time zone set to a POSIX TZ string for the block."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()
