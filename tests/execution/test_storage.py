"""Study storages shared by many workers, against a real PostgreSQL server: passwords
kept out of messages, reconnection after a restart, heartbeats and stale trials,
creation by many workers at once, and joining a study from its stored config."""

import dataclasses
import multiprocessing
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from finscale.errors import InputError
from finscale.execution import storage as storage_module
from finscale.execution.attrs import FORCED_ATTR, RETRY_ATTR, WORKER_ATTR
from finscale.execution.reaper import reap_dead_trials
from finscale.execution.storage import (
    Heartbeat,
    check_storage_usable,
    describe_error,
    enqueued_params,
    open_storage,
    record_heartbeat,
    wait_for_storage,
)
from finscale.execution.storage_url import (
    StorageClass,
    check_storage,
    classify_storage,
    is_database,
    redact,
    scrub,
)
from finscale.hpo.spec import prepare
from finscale.hpo.study import create_or_load, join_spec

# Heartbeats fast enough for a test: a silent trial is stale after 2 s.
BEATS = {"search.heartbeat_seconds": 1, "search.heartbeat_grace_seconds": 2}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://ana:s3cr3t@db.lan:5432/optuna", "postgresql://ana:***@db.lan:5432/optuna"),
        ("postgresql://ana:s3cr%40t@db.lan/optuna", "postgresql://ana:***@db.lan/optuna"),
        ("postgresql://ana@db.lan/optuna", "postgresql://ana@db.lan/optuna"),
        ("sqlite:///runs/study.db", "sqlite:///runs/study.db"),
        ("runs/a25_2M_h1/study.journal", "runs/a25_2M_h1/study.journal"),
        # Malformed: everything between the scheme and the last '@' goes, user and all.
        ("postgresql://ana:s3cr@t:x@db.lan:5432/optuna", "postgresql://***@db.lan:5432/optuna"),
        ("postgres:/u:s3cr@@127.0.0.1::x/db", "postgres:***@127.0.0.1::x/db"),
        ("u:s3cr@db.lan/optuna", "u:***@db.lan/optuna"),
        ("postgresql//u:s3cr@db.lan/optuna", "***@db.lan/optuna"),
        ("postgres:/u:s3cr/db.lan", "postgres:***"),  # no '@': all of it after the scheme
        # A password in the query, which libpq reads as well.
        (
            "postgresql://ana@db.lan/optuna?password=s3cr&sslmode=require",
            "postgresql://ana@db.lan/optuna?password=***&sslmode=require",
        ),
        (
            "postgresql://ana:s3cr@db.lan/optuna?sslpassword=s3cr2",
            "postgresql://ana:***@db.lan/optuna?sslpassword=***",
        ),
    ],
)
def test_redact_hides_only_the_password(url, expected):
    assert redact(url) == expected
    assert "s3cr" not in redact(url)


def test_scrub_masks_the_password_as_typed_and_as_the_driver_reads_it():
    url = "postgresql://ana:s3cr%40t@db.lan/optuna"
    assert scrub("login s3cr@t refused, s3cr%40t", url) == "login *** refused, ***"


@pytest.mark.parametrize(
    ("storage", "kind"),
    [
        ("runs/a25_2M_h1/study.journal", "journal"),
        ("study:1.journal", "journal"),  # a ':' alone does not make a URL
        ("sqlite:///runs/study.db", "sqlite"),
        ("postgresql://ana:pw@db.lan:5432/optuna", "postgresql"),
        ("postgresql+psycopg://ana:pw@db.lan/optuna", "postgresql"),
        ("mysql://ana:pw@db.lan/optuna", "rdb"),
    ],
)
def test_classify_storage_tells_journals_from_each_database(storage, kind):
    assert classify_storage(storage) == StorageClass(kind)
    assert is_database(storage) == (kind != "journal")


@pytest.mark.parametrize(
    ("storage", "problem"),
    [
        ("postgres:/u:PW@@127.0.0.1::x/db", "'postgres:' is not followed by '//'"),
        ("postgresql://u:PW@@127.0.0.1::x/db", "a port is a number"),
        ("postgresql://u:p@ss@db.lan/optuna", "write an '@' of a password as %40"),
        ("postgres://u:PW@db.lan/optuna", "PostgreSQL's is postgresql://"),
        ("sqlite:/runs/study.db", "'sqlite:' is not followed by '//'"),
        ("sqlite://", "a sqlite study needs a file"),
        ("u:PW@db.lan/optuna", "no scheme://"),
        ("runs/u:PW@db.lan/study.journal", "no scheme://"),
    ],
)
def test_a_string_that_looks_like_a_url_and_is_not_one_is_refused(storage, problem):
    assert classify_storage(storage).kind is None
    with pytest.raises(InputError) as caught:
        check_storage(storage)
    assert problem in str(caught.value) and caught.value.where == "storage"
    for password in ("PW", "p@ss"):
        assert password not in str(caught.value)
    with pytest.raises(InputError):
        open_storage(storage)  # never a journal file named after it


def test_a_wrong_password_is_one_clear_error_without_any_password(
    postgres_server, postgres_url, monkeypatch
):
    wrong = postgres_url.replace(postgres_server.password, "Wr0ng-Pa55word")
    attempts = []
    opened = storage_module._open_database
    monkeypatch.setattr(
        storage_module, "_open_database", lambda *args: attempts.append(args) or opened(*args)
    )
    with pytest.raises(InputError) as caught:
        open_storage(wrong)
    message = str(caught.value)
    assert "password authentication failed" in message
    assert "Wr0ng-Pa55word" not in message and postgres_server.password not in message
    assert "\n" not in message and "Background on this error" not in message
    assert len(attempts) == 1  # a refused login is not retried


def test_waiting_for_a_lost_storage_backs_off_until_it_answers_or_time_runs_out():
    now, slept = [0.0], []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    def probe_with(answers):
        def probe():
            if not next(answers):
                raise optuna.exceptions.StorageInternalError("server closed the connection")

        return probe

    back = probe_with(iter([False, False, False, True]))
    assert wait_for_storage(back, 60, clock=lambda: now[0], sleep=sleep)
    assert slept == [0.5, 1.0, 2.0]
    now[0], slept[:] = 0.0, []
    lost = probe_with(iter([False] * 20))
    assert not wait_for_storage(lost, 30, clock=lambda: now[0], sleep=sleep)
    assert slept == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 4.5] and now[0] == 30  # capped, then cut
    slept[:] = []
    stopped = probe_with(iter([False]))
    assert not wait_for_storage(stopped, 30, lambda: True, clock=lambda: now[0], sleep=sleep)
    assert slept == []


def test_a_storage_reconnects_after_the_server_restarts(postgres_server, postgres_url):
    storage = open_storage(postgres_url)
    optuna.create_study(storage=storage, study_name="before")
    postgres_server.restart()
    # The pool's connections died with the server; pre-ping replaces them.
    optuna.create_study(storage=storage, study_name="after")
    assert sorted(s.study_name for s in storage.get_all_studies()) == ["after", "before"]


def test_a_process_opens_one_storage_per_url_and_heartbeat_setting(postgres_url):
    plain = open_storage(postgres_url)
    assert open_storage(postgres_url) is plain  # one engine, one connection pool
    beating = open_storage(postgres_url, heartbeat_seconds=5, grace_seconds=20)
    assert beating is not plain and beating.get_heartbeat_interval() == 5
    assert open_storage(postgres_url, heartbeat_seconds=5, grace_seconds=20) is beating


def test_describe_error_gives_the_drivers_line_without_the_password(postgres_server):
    url = postgres_server.url("no_such_db")
    with pytest.raises(InputError) as caught:
        open_storage(url)
    assert 'database "no_such_db" does not exist' in str(caught.value)
    error = optuna.exceptions.StorageInternalError("commit failed")
    error.__cause__ = ValueError(f"cannot reach {url}")
    assert describe_error(error, url) == f"ValueError: cannot reach {redact(url)}"


def pg_spec(make_spec, url, **overrides):
    return dataclasses.replace(make_spec(**{**BEATS, **overrides}), storage=url)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # this test asks by hand
@pytest.mark.slow
def test_a_silent_trial_is_failed_once_and_requeued_however_many_workers_sweep(
    make_spec, postgres_url
):
    spec = pg_spec(make_spec, postgres_url)
    prepared = prepare(spec)
    study, created = create_or_load(spec, prepared)
    assert created
    # A worker on another machine asks a (forced) trial, beats once and dies.
    dead = study.ask()
    prepared.space.suggest(dead, spec.config.search)
    record_heartbeat(study, dead)
    dead.set_user_attr(WORKER_ATTR, {"host": "gpu-node-7", "pid": 4242, "index": 0})
    # A live one keeps beating on its thread.
    alive = study.ask()
    prepared.space.suggest(alive, spec.config.search)
    alive.set_user_attr(WORKER_ATTR, {"host": "gpu-node-8", "pid": 4343, "index": 0})
    with Heartbeat(study, alive):
        time.sleep(3.5)  # real time: the server's clock judges the dead worker's silence
        handles = [
            optuna.load_study(study_name=spec.study_name, storage=open_storage(postgres_url, 1, 2))
            for _ in range(4)
        ]
        reaped: list[list[int]] = [[] for _ in handles]

        def sweep(i):
            reaped[i] = reap_dead_trials(handles[i], spec.run_dir, 2)

        threads = [threading.Thread(target=sweep, args=(i,)) for i in range(len(handles))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(n for numbers in reaped for n in numbers) == [dead.number]
    trials = optuna.load_study(study_name=spec.study_name, storage=postgres_url).trials
    failed = trials[dead.number]
    assert failed.state == TrialState.FAIL
    assert "no heartbeat for over 2 s" in failed.user_attrs["fail_reason"]
    assert "pid 4242 on gpu-node-7" in failed.user_attrs["fail_reason"]
    assert trials[alive.number].state == TrialState.RUNNING
    retries = [t for t in trials if t.user_attrs.get(RETRY_ATTR) == dead.number]
    assert len(retries) == 1 and retries[0].state == TrialState.WAITING
    assert enqueued_params(retries[0]) == failed.params
    assert retries[0].user_attrs[FORCED_ATTR] == failed.user_attrs[FORCED_ATTR]


def _create(spec, results):
    _, created = create_or_load(spec, prepare(spec))
    results.put(created)


@pytest.mark.slow
def test_workers_starting_at_once_create_the_study_and_its_extremes_once(make_spec, postgres_url):
    spec = pg_spec(make_spec, postgres_url)
    prepare(spec)  # the dataset is in the store before the race
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_create, args=(spec, results)) for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    created = sorted(results.get(timeout=5) for _ in processes)
    assert created == [False, False, True]
    study = optuna.load_study(study_name=spec.study_name, storage=postgres_url)
    labels = [t.user_attrs[FORCED_ATTR] for t in study.trials]
    assert len(labels) == len(set(labels)) == len(study.user_attrs["forced_extremes"]) == 4
    assert all(t.state == TrialState.WAITING for t in study.trials)


def test_a_joining_worker_waits_for_the_study_and_reads_its_config(
    make_spec, postgres_url, store_dir
):
    spec = pg_spec(make_spec, postgres_url, **{"search.trials": 5})
    with pytest.raises(InputError, match=r"no study tiny in .*it holds no study yet"):
        join_spec(postgres_url, "tiny", store_dir)

    def create_later():
        time.sleep(1.5)  # real time: another process's study appears while this one waits
        create_or_load(spec, prepare(spec))

    creator = threading.Thread(target=create_later)
    creator.start()
    joined, attrs = join_spec(postgres_url, "tiny", store_dir, device="cpu", wait_seconds=60)
    creator.join()
    assert joined.budget == spec.budget and joined.trials == 5
    assert joined.config.model.model_dump() == spec.config.model.model_dump()
    assert joined.config.data.model_dump() == spec.config.data.model_dump()
    assert joined.config.train.device == "cpu"
    assert joined.run_dir.name == "tiny" and joined.storage == postgres_url
    # The space is the study's, whatever fits this worker's device.
    assert prepare(joined, joined=attrs).info["excluded_archs"] == attrs["excluded_archs"]
    with pytest.raises(InputError, match=r"no study other in .*studies there: tiny"):
        join_spec(postgres_url, "other", store_dir)


def test_a_resume_with_another_target_is_what_joining_workers_read(
    make_spec, postgres_url, store_dir
):
    spec = pg_spec(make_spec, postgres_url, **{"search.trials": 5})
    create_or_load(spec, prepare(spec))
    bigger = pg_spec(make_spec, postgres_url, **{"search.trials": 9})
    create_or_load(bigger, prepare(bigger))
    joined, _ = join_spec(postgres_url, "tiny", store_dir)
    assert joined.trials == 9


def test_an_existing_file_of_another_kind_is_refused_before_it_is_touched(tmp_path):
    csv = tmp_path / "prices.csv"
    csv.write_text("date,close\n2020-01-02,3257.85\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("x\n")
    for storage, what in (
        (str(csv), "not a study journal"),
        (f"sqlite:///{notes}", "not a sqlite"),
    ):
        before = Path(storage.removeprefix("sqlite:///")).read_bytes()
        for check in (check_storage_usable, open_storage):
            with pytest.raises(InputError, match=what):
                check(storage)
        assert Path(storage.removeprefix("sqlite:///")).read_bytes() == before
    # An empty journal, and one whose first append a crash tore, are a study's still.
    empty, torn = tmp_path / "empty.journal", tmp_path / "torn.journal"
    empty.write_text("")
    torn.write_text('{"op_code": 0, "worker_id": "a", "study_na')
    for journal in (empty, torn):
        assert check_storage_usable(str(journal)) == "journal"
        open_storage(str(journal))
