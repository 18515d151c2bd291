"""`finscale hpo`, `stop`, `summary` and `hpo import-trials` as a user runs them on a
real journal storage: the installed script where signals, kill -9 or several processes
are the point, the CLI in-process otherwise."""

import json
import signal
import time

import optuna
import pytest
from optuna.trial import TrialState

from finscale.execution import open_storage
from tests.e2e.cli import assert_one_line_errors, run, start
from tests.hpo.conftest import TINY_BUDGET, set_flags


def hpo_args(run_dir, **overrides):
    return ["hpo", "--budget", str(TINY_BUDGET), "--run-dir", str(run_dir), *set_flags(**overrides)]


def load(run_dir):
    name = json.loads((run_dir / "study.json").read_text())["study_name"]
    return optuna.load_study(study_name=name, storage=open_storage(str(run_dir / "study.journal")))


def wait_for_epoch_in_flight(proc, run_dir, finished_before=0, timeout_s=300):
    """Block until a trial of the study that `proc` runs is running and has reported an
    epoch, after at least `finished_before` trials finished.

    One storage for the whole wait reads only the journal's new lines at each look: a
    full replay every time would take CPU from the process under test, whose torch
    threads then stall waiting for each other."""
    deadline = time.time() + timeout_s
    journal = run_dir / "study.journal"
    storage = name = None
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        if storage is None and (run_dir / "study.json").exists() and journal.exists():
            name = json.loads((run_dir / "study.json").read_text())["study_name"]
            storage = open_storage(str(journal))
        try:
            study = optuna.load_study(study_name=name, storage=storage) if storage else None
        except KeyError:  # study.json is written before the study exists in the journal
            study = None
        if study is not None:
            trials = study.get_trials(deepcopy=False)
            done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
            # Well inside a trial (1 to 20 of its 30 epochs), not at its end, where a
            # signal could land between two trials.
            running = [
                t
                for t in trials
                if t.state == TrialState.RUNNING and 1 <= len(t.intermediate_values) <= 20
            ]
            if done >= finished_before and running:
                return running[0]
        time.sleep(0.25)
    raise AssertionError(f"no trial in flight in {run_dir} after {timeout_s} s")


def finished(study):
    return [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def check_records(run_dir, study):
    """Every trial file parses and matches the storage."""
    by_number = {t.number: t for t in study.trials}
    files = sorted((run_dir / "trials").glob("trial_*.json"))
    assert files
    for path in files:
        record = json.loads(path.read_text())
        assert record["state"] == by_number[record["number"]].state.name
    return files


# Slow enough to be caught mid-trial: 30 epochs of about 0.05 s (no early stop), the first
# 20 of them (about a second) the window to catch it in, against polls every 0.25 s.
SLOW = {"train.max_epochs": 30, "train.patience": 30, "search.trials": 3}


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FINSCALE_STORE", str(tmp_path / "store"))
    run_dir = tmp_path / "run"
    cases = [
        ["hpo", "--run-dir", str(run_dir)],
        [*hpo_args(run_dir), "--set", "search.trails=3"],
        [*hpo_args(run_dir), "--set", "noequals"],
        [*hpo_args(run_dir), "--workers", "0"],
        [*hpo_args(run_dir), "--preset", "huge"],
        ["hpo", "--budget", "3", "--run-dir", str(run_dir)],
        ["stop", str(tmp_path / "nothing")],
        ["summary", str(tmp_path / "nothing")],
        ["hpo", "import-trials", str(tmp_path / "nothing")],
    ]
    assert_one_line_errors(cases, capsys)
    assert not run_dir.exists()


@pytest.mark.slow
def test_the_installed_script_exits_2_with_the_error_line_and_no_traceback(tmp_path):
    run_dir = tmp_path / "run"
    code, _, stderr = run([*hpo_args(run_dir), "--set", "search.trails=3"], tmp_path)
    assert code == 2 and stderr.startswith("error: search.trails: unknown key")
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert not run_dir.exists()


@pytest.mark.slow
def test_preflight_only_reports_and_starts_nothing(tmp_path, finscale):
    run_dir = tmp_path / "run"
    code, stdout, stderr = finscale(*hpo_args(run_dir), "--preflight-only")
    assert code == 0, stderr
    for word in ("dataset", "storage", "device", "disk", "grid", "duration"):
        assert any(line.startswith(word) for line in stdout.splitlines()), (word, stdout)
    assert "6 architectures" in stdout and "one epoch" in stdout
    assert not run_dir.exists()


@pytest.mark.slow
def test_kill_9_mid_trial_then_resume_reaches_exactly_the_count(tmp_path, finscale):
    run_dir = tmp_path / "run"
    # Two trials: the first finishes, the second dies with its process and runs again.
    args = hpo_args(run_dir, **{**SLOW, "search.trials": 2})
    proc = start(args, tmp_path)
    victim = wait_for_epoch_in_flight(proc, run_dir, finished_before=1)
    first_record = (run_dir / "trials" / "trial_0000.json").read_text()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    # The same command resumes; in-process, since only the killed one needs to be real.
    code, stdout, stderr = finscale(*args)
    assert code == 0, stderr
    study = load(run_dir)
    assert len(finished(study)) == 2
    dead = study.trials[victim.number]
    assert dead.state == TrialState.FAIL and "died" in dead.user_attrs["fail_reason"]
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == victim.number]
    assert len(retry) == 1 and retry[0].params == dead.params
    assert retry[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    check_records(run_dir, study)
    # The finished trial before the kill was not touched.
    assert (run_dir / "trials" / "trial_0000.json").read_text() == first_record
    assert "finished: 2/2" in stdout


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigterm", "stop-command"])
def test_graceful_stop_records_the_trial_for_resume_and_exits_0(tmp_path, how, finscale):
    run_dir = tmp_path / "run"
    proc = start(hpo_args(run_dir, **SLOW), tmp_path)
    wait_for_epoch_in_flight(proc, run_dir)
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    else:
        code, stdout, _ = finscale("stop", run_dir)
        assert code == 0 and "stop" in stdout
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "stopped" in stdout and "resume" in stdout
    study = load(run_dir)
    stopped = [t for t in study.trials if t.user_attrs.get("failed_for_resume")]
    assert len(stopped) == 1 and stopped[0].state == TrialState.FAIL
    files = check_records(run_dir, study)
    assert f"trial_{stopped[0].number:04d}.json" in [f.name for f in files]
    name = json.loads((run_dir / "study.json").read_text())["study_name"]
    best = json.loads((run_dir / f"{name}_best.json").read_text())
    assert best["counts"]["finished"] == len(finished(study))


@pytest.mark.slow
def test_three_workers_in_two_commands_share_one_study_exactly(tmp_path):
    run_dir = tmp_path / "run"
    # Trials of about a second, so the spawned worker (a few seconds to start) gets some.
    args = hpo_args(run_dir, **{"search.trials": 8, "train.max_epochs": 30, "train.patience": 30})
    both = [start([*args, "--workers", "2"], tmp_path), start(args, tmp_path)]
    errors = []
    for proc in both:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        errors.append(stderr)
    study = load(run_dir)
    assert len(finished(study)) == 8
    labels = [
        t.user_attrs["forced_extreme"] for t in finished(study) if "forced_extreme" in t.user_attrs
    ]
    assert sorted(labels) == sorted(study.user_attrs["forced_extremes"])
    workers = {t.user_attrs["worker"]["pid"] for t in finished(study)}
    assert len(workers) >= 2
    # The spawned worker of the first command reports its own trials, prefixed.
    spawned = [t.number for t in finished(study) if t.user_attrs["worker"]["index"] == 1]
    print(f"trials of the spawned worker: {spawned}")
    assert spawned
    assert all(f"[worker 1] trial {n:>4}" in errors[0] for n in spawned)
    check_records(run_dir, study)


@pytest.mark.slow
def test_finalists_are_reported_and_the_crowned_mean_is_the_best(tmp_path, finscale):
    run_dir = tmp_path / "run"
    sets = {"search.trials": 2, "search.finalists": 1, "search.finalist_seeds": 1}
    code, stdout, stderr = finscale(*hpo_args(run_dir, **sets))
    assert code == 0, stderr
    assert "finalist 1/1: trial #" in stdout + stderr
    assert "mean of 2 seeds" in stdout
    name = json.loads((run_dir / "study.json").read_text())["study_name"]
    best = json.loads((run_dir / f"{name}_best.json").read_text())
    assert best["crowned_by"] == "finalists" and best["finalists"][0]["seeds"] == 2
    assert best["epochs_spent"] > sum(len(t.intermediate_values) for t in load(run_dir).trials)
    summary = (run_dir / "summary.md").read_text()
    assert f"Trial {best['best_trial']}: validation log loss **" in summary
    assert "(mean of 2 seeds; its trial's own " in summary


@pytest.mark.slow
def test_import_trials_then_summary_from_the_new_storage(tmp_path, finscale):
    run_dir = tmp_path / "run"
    code, _, stderr = finscale(*hpo_args(run_dir, **{"search.trials": 4}))
    assert code == 0, stderr
    moved = tmp_path / "moved"
    code, stdout, stderr = finscale("hpo", "import-trials", run_dir / "trials", "--run-dir", moved)
    assert code == 0, stderr
    assert "imported 4 trials" in stdout
    code, stdout, stderr = finscale("summary", moved)
    assert code == 0, stderr
    original = json.loads((run_dir / "summary.json").read_text())
    again = json.loads((moved / "summary.json").read_text())
    assert again["best"]["value"] == original["best"]["value"]
    assert again["counts"] == original["counts"]
    assert (moved / "summary.md").read_text().count("\n") > 10


def test_a_torn_journal_resumes_with_one_warning_and_a_damaged_one_is_one_error(
    tmp_path, capsys, caplog, monkeypatch
):
    from finscale.cli import main

    monkeypatch.setenv("FINSCALE_STORE", str(tmp_path / "store"))
    run_dir = tmp_path / "run"
    args = hpo_args(run_dir, **{"search.trials": 2})
    assert main(args) == 0
    journal = run_dir / "study.journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    # A crash (or a full disk) halfway through an append.
    journal.write_bytes(b"".join(lines) + lines[-1][: len(lines[-1]) // 2])
    capsys.readouterr()

    assert main(args) == 0
    torn = [r.getMessage() for r in caplog.records if "torn" in r.getMessage()]
    (copy,) = run_dir.glob("study.journal.torn-*")
    assert len(torn) == 1 and "\n" not in torn[0]
    assert str(journal) in torn[0] and str(copy) in torn[0] and "resuming" in torn[0]
    assert "finished: 2/2" in capsys.readouterr().out
    assert journal.read_bytes().startswith(b"".join(lines))  # the resume appended to it
    assert len(finished(load(run_dir))) == 2

    # Damage before the last line is no interrupted write: refused, the journal untouched.
    damaged = b"".join([lines[0], b"not json\n", *lines[2:]])
    journal.write_bytes(damaged)
    code = main(args)
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and error.startswith("error: line 2 of ")
    assert error.endswith(f"({journal}, line 2)")
    assert journal.read_bytes() == damaged
