"""Every function of `finscale.execution.storage` that reaches into Optuna's private API,
against real storages: a journal file and a SQLite database (with and without
heartbeats). An Optuna release that renames a private name or changes what it
does fails here, with a message naming the function to fix."""

import contextlib
import time

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from finscale.execution import storage as private
from finscale.execution.storage import open_storage

X = FloatDistribution(0.0, 1.0)


@contextlib.contextmanager
def checking(function):
    """Turn any failure inside the block into one naming the function to fix."""
    try:
        yield
    except Exception as exc:  # an AssertionError as much as an AttributeError
        pytest.fail(
            f"finscale.execution.storage.{function.__name__} no longer works with Optuna "
            f"{optuna.__version__} ({type(exc).__name__}: {exc}); fix that function"
        )


@pytest.fixture(params=["journal", "sqlite"])
def storage(request, tmp_path):
    if request.param == "journal":
        return open_storage(str(tmp_path / "study.journal"))
    return open_storage(f"sqlite:///{tmp_path / 'study.db'}")


@pytest.fixture
def beating(tmp_path):
    """A SQLite storage with heartbeats every second, stale after two (SQLite's clock
    counts whole seconds)."""
    return open_storage(f"sqlite:///{tmp_path / 'beating.db'}", 1, 2)


def new_study(storage, name="s"):
    return optuna.create_study(storage=storage, study_name=name)


def test_storage_of_is_the_storage_the_study_writes_to(storage):
    study = new_study(storage)
    with checking(private.storage_of):
        backend = private.storage_of(study)
        assert isinstance(backend, optuna.storages.BaseStorage)
        backend.set_study_user_attr(backend.get_study_id_from_name("s"), "k", 1)
        assert optuna.load_study(study_name="s", storage=storage).user_attrs == {"k": 1}


def test_study_id_is_the_id_the_storage_knows_the_study_by(storage):
    first, second = new_study(storage, "first"), new_study(storage, "second")
    with checking(private.study_id):
        assert private.study_id(first) == storage.get_study_id_from_name("first")
        assert private.study_id(second) == storage.get_study_id_from_name("second")
        assert private.study_id(first) != private.study_id(second)


def test_trial_id_of_an_asked_and_a_frozen_trial(storage):
    first, second = new_study(storage, "first"), new_study(storage, "second")
    first.ask()
    asked = second.ask()  # number 0 of its study, not the storage's first trial
    frozen = second.get_trials(deepcopy=False)[0]
    with checking(private.trial_id):
        assert private.trial_id(asked) == private.trial_id(frozen)
        assert storage.get_trial(private.trial_id(asked)).number == asked.number == 0
        assert private.trial_id(asked) != private.trial_id(first.trials[0])


def test_reload_trial_reads_the_trial_afresh(storage):
    study = new_study(storage)
    trial = study.ask()
    trial.set_user_attr("k", "v")
    with checking(private.reload_trial):
        reloaded = private.reload_trial(study, trial)
        assert isinstance(reloaded, FrozenTrial)
        assert reloaded.number == trial.number and reloaded.user_attrs == {"k": "v"}
        assert reloaded.state == TrialState.RUNNING


def test_pop_waiting_trial_runs_a_queued_trial_once(storage):
    study = new_study(storage)
    study.enqueue_trial({"x": 0.25})
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))[0]
    with checking(private.pop_waiting_trial):
        trial = private.pop_waiting_trial(study, waiting)
        assert isinstance(trial, optuna.Trial) and trial.number == waiting.number
        assert study.trials[waiting.number].state == TrialState.RUNNING
        assert trial.suggest_float("x", 0.0, 1.0) == 0.25  # the enqueued value
        # A second worker with the same stale list gets nothing, before and after the end.
        assert private.pop_waiting_trial(study, waiting) is None
        study.tell(trial, 1.0)
        assert private.pop_waiting_trial(study, waiting) is None


def test_fail_running_trial_sets_attrs_and_fails_once(storage):
    study = new_study(storage)
    study.ask()
    frozen = study.get_trials(deepcopy=False)[0]
    with checking(private.fail_running_trial):
        assert private.fail_running_trial(study, frozen, {"why": "gone", "again": True})
        failed = study.trials[0]
        assert failed.state == TrialState.FAIL
        assert failed.user_attrs == {"why": "gone", "again": True}
        assert not private.fail_running_trial(study, frozen, {"why": "twice"})
        assert study.trials[0].user_attrs["why"] == "gone"


def test_enqueued_params_are_the_fixed_params_of_a_queued_trial(storage):
    study = new_study(storage)
    study.enqueue_trial({"x": 0.5})
    study.ask()  # pops the queued one
    study.ask()  # a fresh one
    with checking(private.enqueued_params):
        assert private.enqueued_params(study.trials[0]) == {"x": 0.5}
        assert private.enqueued_params(study.trials[1]) == {}


def test_study_ping_answers_while_the_storage_does(storage):
    study = new_study(storage)
    with checking(private.study_ping):
        assert private.study_ping(study) == storage.get_study_id_from_name("s")


def test_validate_trial_refuses_what_add_trial_would():
    good = optuna.trial.create_trial(value=0.5, params={"x": 0.5}, distributions={"x": X})
    bad = optuna.trial.create_trial(value=0.5, params={"x": 0.5}, distributions={"x": X})
    bad.state = TrialState.COMPLETE
    bad.value = None  # a complete trial needs a value
    with checking(private.validate_trial):
        private.validate_trial(good)
        with pytest.raises(ValueError):
            private.validate_trial(bad)


def test_heartbeats_on_only_where_the_storage_beats(storage, beating):
    with checking(private.heartbeats_on):
        assert not private.heartbeats_on(storage)
        assert private.heartbeats_on(beating)
        assert private.heartbeats_on(private.storage_of(new_study(beating)))


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # these trials are asked by hand
def test_stale_trial_ids_are_the_running_trials_whose_heartbeat_stopped(beating):
    study = new_study(beating)
    silent, alive = study.ask(), study.ask()
    with checking(private.record_heartbeat):
        private.record_heartbeat(study, silent)
        private.record_heartbeat(study, alive)
        assert private.stale_trial_ids(study) == []
    # Real time: staleness is judged by the database's clock against the heartbeats it
    # stored, which no clock of ours can stand in for.
    time.sleep(3.5)
    with checking(private.record_heartbeat):
        private.record_heartbeat(study, alive)
    with checking(private.stale_trial_ids):
        assert private.stale_trial_ids(study) == [private.trial_id(silent)]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_the_heartbeat_thread_keeps_a_trial_fresh(beating):
    study = new_study(beating)
    silent, alive = study.ask(), study.ask()
    private.record_heartbeat(study, silent)
    with checking(private.Heartbeat):
        with private.Heartbeat(study, alive) as beat:
            time.sleep(3.5)  # real time: a thread beating into the database's clock
        assert beat.missed == 0
        assert private.stale_trial_ids(study) == [private.trial_id(silent)]


def test_release_connections_drops_the_pool_of_a_database(tmp_path, storage):
    with checking(private.release_connections):
        private.release_connections(storage)  # a journal: nothing to release
        database = open_storage(f"sqlite:///{tmp_path / 'pooled.db'}")
        study_id = private.study_id(new_study(database))
        pool = database.engine.pool
        private.release_connections(database)
        assert database.engine.pool is not pool
        assert database.get_study_id_from_name("s") == study_id  # reconnects on the next query
