"""Dead workers on one machine: their trials are failed and re-queued, a live
worker's are left alone (the heartbeat reaper runs against PostgreSQL in
test_storage.py)."""

from optuna.trial import TrialState

from finscale.hpo.reaper import reap_dead_trials, worker_identity
from finscale.hpo.spec import prepare
from finscale.hpo.storage import enqueued_params
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
