"""Many workers on one study in a real PostgreSQL server, as users run them: the
installed `finscale hpo` and `finscale worker` in subprocesses (each with its own
run directory, as on separate machines), real SIGKILL, a real server restart."""

import collections
import signal
import time

import optuna
import pytest
from optuna.trial import TrialState

from finscale.execution import open_storage
from finscale.execution.attrs import FORCED_ATTR, RETRY_ATTR
from finscale.execution.storage import enqueued_params
from tests.e2e.cli import run, start
from tests.e2e.test_cli_hpo import check_records, finished
from tests.e2e.test_cli_scale import scale_args
from tests.hpo.conftest import TINY_BUDGET, set_flags

# A worker that dies is found within seconds: beats every second, stale after 3.
BEATS = {"search.heartbeat_seconds": 1, "search.heartbeat_grace_seconds": 3}


def hpo_args(run_dir, url, **overrides):
    return [
        "hpo",
        "--budget",
        str(TINY_BUDGET),
        "--run-dir",
        str(run_dir),
        "--storage",
        url,
        "--study",
        "tiny",
        *set_flags(**{**BEATS, **overrides}),
    ]


def worker_args(run_dir, url, *extra):
    return [
        "worker",
        "--storage",
        url,
        "--study",
        "tiny",
        "--run-dir",
        str(run_dir),
        "--wait-minutes",
        "2",
        *extra,
    ]


class Watch:
    """Polls the study on the server, as an onlooker would."""

    def __init__(self, url):
        self.storage = open_storage(url)

    def study(self):
        try:
            return optuna.load_study(study_name="tiny", storage=self.storage)
        except KeyError:
            return None

    def until(self, condition, timeout_s=180, what="condition"):
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            study = self.study()
            found = condition(study) if study is not None else None
            if found:
                return found
            time.sleep(0.2)
        raise AssertionError(f"{what} not met after {timeout_s} s")


def in_flight(study, pid=None, most_epochs=40):
    """A trial well inside its training (1 to `most_epochs` epochs reported), of process
    `pid`."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if pid is not None and trial.user_attrs.get("worker", {}).get("pid") != pid:
            continue
        if 1 <= len(trial.intermediate_values) <= most_epochs:
            return trial
    return None


def configuration(trial):
    """The params a trial ran or was to run with (a queued trial's are fixed ones)."""
    return trial.params or enqueued_params(trial)


def assert_no_password(password, folder, *texts):
    """The password is in no file under `folder` and in none of `texts`."""
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert files
    for path in files:
        assert password.encode() not in path.read_bytes(), path
    for text in texts:
        assert password not in text


def communicate(procs, timeout_s=400):
    return [proc.communicate(timeout=timeout_s) for proc in procs]


@pytest.mark.slow
def test_three_workers_started_at_once_reach_exactly_the_count(
    tmp_path, postgres_server, postgres_url
):
    settings = {"search.trials": 12, "train.max_epochs": 8, "train.patience": 8}
    # Two creators racing to create the study and a worker waiting to join it,
    # each with its own run directory (its own machine).
    procs = [
        start(hpo_args(tmp_path / "a", postgres_url, **settings), tmp_path),
        start(hpo_args(tmp_path / "b", postgres_url, **settings), tmp_path),
        start(worker_args(tmp_path / "c", postgres_url), tmp_path),
    ]
    outputs = communicate(procs)
    for proc, (_, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stderr
    study = Watch(postgres_url).study()
    done = finished(study)
    assert len(done) == 12
    assert all(t.state != TrialState.RUNNING for t in study.trials)
    # The forced extremes were enqueued once and each ran once.
    labels = study.user_attrs["forced_extremes"]
    enqueued = [
        t.user_attrs[FORCED_ATTR]
        for t in study.trials
        if FORCED_ATTR in t.user_attrs and RETRY_ATTR not in t.user_attrs
    ]
    assert sorted(enqueued) == sorted(labels) and len(labels) == 4
    ran = collections.Counter(
        t.user_attrs[FORCED_ATTR] for t in done if FORCED_ATTR in t.user_attrs
    )
    assert ran == dict.fromkeys(labels, 1)
    # No configuration was trained twice.
    configs = [
        tuple(sorted(t.params.items())) for t in study.trials if t.state == TrialState.COMPLETE
    ]
    assert len(configs) == len(set(configs))
    # Every process ran trials with its own sampler seed.
    seeds = {t.user_attrs["worker"]["pid"]: t.user_attrs["worker"]["sampler_seed"] for t in done}
    print(f"trials per worker: {collections.Counter(t.user_attrs['worker']['pid'] for t in done)}")
    assert len(seeds) >= 2 and len(set(seeds.values())) == len(seeds)
    for name in ("a", "b", "c"):
        check_records(tmp_path / name, study)
    assert "joining study tiny on postgresql://finscale:***@" in outputs[2][1]
    assert_no_password(postgres_server.password, tmp_path, *(o + e for o, e in outputs))


@pytest.mark.slow
def test_a_killed_workers_trial_is_failed_by_heartbeat_and_rerun_by_a_survivor(
    tmp_path, postgres_server, postgres_url
):
    slow = {"search.trials": 3, "train.max_epochs": 40, "train.patience": 40}
    survivor = start(hpo_args(tmp_path / "a", postgres_url, **slow), tmp_path)
    doomed = start(worker_args(tmp_path / "b", postgres_url), tmp_path)
    watch = Watch(postgres_url)
    victim = watch.until(lambda s: in_flight(s, doomed.pid), what="a trial of the worker")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=30)
    stdout, stderr = survivor.communicate(timeout=400)
    assert survivor.returncode == 0, stderr
    study = watch.study()
    assert len(finished(study)) == 3
    dead = study.trials[victim.number]
    assert dead.state == TrialState.FAIL
    assert "no heartbeat for over 3 s" in dead.user_attrs["fail_reason"]
    assert f"pid {doomed.pid}" in dead.user_attrs["fail_reason"]
    retries = [t for t in study.trials if t.user_attrs.get(RETRY_ATTR) == victim.number]
    assert len(retries) == 1 and retries[0].params == dead.params
    assert retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert retries[0].user_attrs["worker"]["pid"] == survivor.pid
    assert "finished: 3/3" in stdout
    check_records(tmp_path / "a", study)
    assert_no_password(postgres_server.password, tmp_path, stdout, stderr)


@pytest.mark.slow
def test_a_database_restart_is_ridden_out_and_a_long_outage_ends_in_one_clear_error(
    tmp_path, postgres_server, postgres_url
):
    trials = 8
    settings = {
        "search.trials": trials,
        "train.max_epochs": 30,
        "train.patience": 30,
        "search.storage_retry_seconds": 5,
    }

    def cuttable(study):
        return in_flight(study, most_epochs=20)

    procs = [
        start(hpo_args(tmp_path / "a", postgres_url, **settings), tmp_path),
        start(worker_args(tmp_path / "b", postgres_url), tmp_path),
    ]
    watch = Watch(postgres_url)
    watch.until(lambda s: finished(s) and cuttable(s), what="a finished trial and one in flight")
    before = {t.number: (t.state, t.value) for t in finished(watch.study())}

    postgres_server.restart()
    # Both workers go on: trials finish after the restart while both still run.
    watch.until(lambda s: len(finished(s)) >= len(before) + 2, what="trials after the restart")
    assert [proc.poll() for proc in procs] == [None, None], communicate(procs)
    done_before_outage = len(finished(watch.study()))
    assert done_before_outage < trials, "the study finished before the outage; make trials longer"

    watch.until(cuttable, what="a trial in flight to cut")
    postgres_server.stop()
    try:
        outputs = communicate(procs, timeout_s=120)
    finally:
        postgres_server.start()
    for proc, (_, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 1, stderr
        assert "Traceback" not in stderr
        last = stderr.strip().splitlines()[-1]
        assert last.startswith("error: lost the study storage postgresql://finscale:***@"), stderr
        assert "run the same command to go on" in last

    code, stdout, stderr = run(hpo_args(tmp_path / "a", postgres_url, **settings), tmp_path)
    assert code == 0, stderr
    study = watch.study()
    assert len(finished(study)) == trials
    for number, (state, value) in before.items():
        assert (study.trials[number].state, study.trials[number].value) == (state, value)
    # A trial cut off by the outage was re-queued and run again, not lost (one cut
    # between its ask and its first sampled value, and not enqueued with fixed
    # params, had nothing to re-run).
    cut = [t for t in study.trials if t.user_attrs.get("failed_for_resume")]
    assert cut
    for trial in cut:
        retry = [t for t in study.trials if t.user_attrs.get(RETRY_ATTR) == trial.number]
        assert len(retry) == (1 if configuration(trial) else 0), trial.user_attrs
        assert all(configuration(trial).items() <= configuration(t).items() for t in retry)
    check_records(tmp_path / "a", study)
    assert_no_password(
        postgres_server.password, tmp_path, stdout, stderr, *(o + e for o, e in outputs)
    )


@pytest.mark.slow
def test_the_password_shows_in_no_output_of_a_scaling_run(
    tmp_path, postgres_server, postgres_url, finscale
):
    run_dir = tmp_path / "run"
    # One budget and no cross-budget matrix: records, summaries, evaluations, baselines,
    # results and the report, at the least cost. The run is a real process, so its
    # warnings and logging reach its stderr as a user's would.
    scale = [*scale_args(run_dir, **{"scale.cross_budget": False}), "--budgets", "4K"]
    code, stdout, stderr = run([*scale, "--storage", postgres_url], tmp_path)
    assert code == 0, stderr
    study_dir = next((run_dir / "studies").iterdir())
    texts = [stdout, stderr]
    for args in (
        ["summary", study_dir, "--storage", postgres_url],
        ["report", run_dir],
    ):
        code, stdout, stderr = finscale(*args)
        assert code == 0, stderr
        texts += [stdout, stderr]
    assert (study_dir / "summary.md").exists() and (run_dir / "report.html").exists()

    wrong = postgres_url.replace(postgres_server.password, "Wr0ng-Pa55word")
    for args, message in (
        (["worker", "--storage", wrong, "--study", "x"], "password authentication failed"),
        (["worker", "--storage", postgres_url, "--study", "x"], f"studies there: {study_dir.name}"),
    ):
        code, stdout, stderr = finscale(*args)
        assert code == 2 and message in stderr, stderr
        assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("error: ")
        assert "Wr0ng-Pa55word" not in stderr
        texts += [stdout, stderr]
    assert_no_password(postgres_server.password, tmp_path, *texts)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["worker", "--study", "x"], "Missing option '--storage'"),
        (["worker", "--storage", "sqlite:///x.db", "--study", "x", "--workers", "0"], "--workers"),
        (
            [
                "worker",
                "--storage",
                "sqlite:///x.db",
                "--study",
                "a",
                "--study",
                "b",
                "--run-dir",
                "r",
            ],
            "--run-dir names one study",
        ),
    ],
)
def test_bad_worker_options_are_one_line_errors(args, message, finscale):
    code, _, stderr = finscale(*args)
    assert code == 2, stderr
    assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("error: ")
    assert message in stderr


# ---------------------------------------------------------------- evaluation units


def searched_on_postgres(tmp_path, url, **overrides):
    """The tiny walk-forward study searched on the server (the head's side): its
    pipeline, with every study's evaluation queue created."""
    from dataclasses import replace

    from finscale.scale import Pipeline, write_scale_file
    from tests.scale.tiny import TINY_WALK_FORWARD_SETS, QuietReporter, tiny_scale_spec

    sets = {**TINY_WALK_FORWARD_SETS, **BEATS, "scale.budgets": "4K,16K", **overrides}
    spec = replace(tiny_scale_spec(tmp_path / "head", tmp_path / "store", **sets), storage=url)
    spec.run_dir.mkdir(parents=True)
    write_scale_file(spec)
    pipeline = Pipeline(spec, QuietReporter())
    pipeline.hpo()
    return pipeline


def unit_worker_args(url, pipeline, *extra):
    studies = [f"--study={pipeline.spec.study_name(b, h)}" for b, h in pipeline.spec.studies()]
    return ["worker", "--storage", url, *studies, "--wait-minutes", "2", *extra]


def units_by_state(pipeline):
    from finscale.scale.queue import Unit, open_queue

    out = {}
    for budget, horizon in pipeline.spec.studies():
        queue = open_queue(pipeline.spec.study_spec(budget, horizon))
        for trial in queue.get_trials(deepcopy=False):
            out.setdefault((budget, Unit.of(trial)), []).append(trial)
    return out


def running_units(pipeline, pid):
    """The evaluation units process `pid` is running now."""
    return [
        t
        for trials in units_by_state(pipeline).values()
        for t in trials
        if t.state == TrialState.RUNNING and t.user_attrs.get("worker", {}).get("pid") == pid
    ]


@pytest.mark.slow
def test_two_workers_run_every_evaluation_unit_once_though_one_is_killed(
    tmp_path, postgres_server, postgres_url
):
    from finscale.scale import build_results
    from finscale.scale.queue import RUN_ATTR

    # Long enough to be caught mid-run: 40 epochs without early stopping per unit.
    slow = {"train.max_epochs": 40, "train.patience": 40, "scale.budgets": "4K", "scale.seeds": 1}
    pipeline = searched_on_postgres(tmp_path, postgres_url, **slow)
    posted = pipeline.post_evaluation()
    assert posted.count == 3  # folds x seeds
    doomed, survivor = (start(unit_worker_args(postgres_url, pipeline), tmp_path) for _ in "ab")
    # Both claim units side by side; then one dies mid-unit.
    deadline = time.time() + 120
    victim = None
    while victim is None and time.time() < deadline:
        mine = running_units(pipeline, doomed.pid)
        if mine and running_units(pipeline, survivor.pid):
            victim = mine[0]
        time.sleep(0.2)
    assert victim is not None, communicate([doomed, survivor], timeout_s=5)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=30)
    stdout, stderr = survivor.communicate(timeout=400)
    assert survivor.returncode == 0, stderr
    assert "evaluation: every posted unit is done" in stdout
    assert "running them as the scaling study posts them" in stderr

    units = units_by_state(pipeline)
    assert len(units) == posted.count
    for trials in units.values():
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        assert len(complete) == 1  # run once, whoever claimed it
        if victim.number not in {t.number for t in trials}:
            assert len(trials) == 1  # claimed once
    dead = next(t for trials in units.values() for t in trials if t.number == victim.number)
    assert dead.state == TrialState.FAIL and RUN_ATTR not in dead.user_attrs
    assert "no heartbeat for over 3 s" in dead.user_attrs["fail_reason"]
    retry = [
        t
        for trials in units.values()
        for t in trials
        if t.user_attrs.get(RETRY_ATTR) == dead.number
    ]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    assert retry[0].user_attrs["worker"]["pid"] == survivor.pid
    # The head collects the workers' records without training, and they are the runs
    # it would have made itself: same key, fold and seed.
    pipeline.reporter.units.clear()
    pipeline._work_queues(posted)
    assert all(skipped for *_, skipped in pipeline.reporter.units)
    pipeline.collect_evaluation(posted)
    pipeline.baselines()
    results = build_results(pipeline.spec.run_dir)
    assert [f.fold for f in results.horizons["1"].folds] == [0, 1, 2]
    assert pipeline.post_evaluation().count == 0  # every unit is stored in the run directory now
    assert_no_password(postgres_server.password, tmp_path, stdout, stderr)
