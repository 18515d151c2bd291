"""`finscale scale`, `report`, `validate-cross-budget` and `stop` as a user runs them on a
tiny study of the bundled S&P 500: in-process, and the installed script for the study
that another process stops."""

import json
import shutil
import time

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from finscale.cli import main
from finscale.execution import open_storage
from tests.e2e.cli import assert_one_line_errors, start
from tests.hpo.conftest import set_flags
from tests.scale.tiny import TINY_SCALE_SETS


def scale_args(run_dir, **overrides):
    # The budgets go through their own flag, as a user gives them.
    sets = {k: v for k, v in TINY_SCALE_SETS.items() if k != "scale.budgets"}
    flags = set_flags(base=sets, **overrides)
    return [
        "scale",
        "--budgets",
        TINY_SCALE_SETS["scale.budgets"],
        "--run-dir",
        str(run_dir),
        *flags,
    ]


def finished_trials(run_dir):
    counts = {}
    for study_dir in sorted((run_dir / "studies").iterdir()):
        study = optuna.load_study(
            study_name=study_dir.name, storage=open_storage(str(study_dir / "study.journal"))
        )
        counts[study_dir.name] = sum(
            t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials
        )
    return counts


def test_scale_resumes_a_finished_run_without_training_and_reports(
    tiny_scale_run, tmp_path, finscale
):
    # The session's tiny study has run every training stage through the pipeline; the
    # command on a copy finds each unit done, then writes the results and the report.
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_scale_run, run_dir)
    code, stdout, stderr = finscale(*scale_args(run_dir))
    assert code == 0, stderr
    # The primary test first, then the table and the steps.
    assert stdout.index("**Primary test**") < stdout.index("h=1: test log loss by budget")
    assert "| 4K |" in stdout and "| 32K |" in stdout
    verdicts = [line for line in stdout.splitlines() if line.startswith("- ") and "**" in line]
    assert len(verdicts) == 2, stdout  # one per adjacent pair of budgets
    assert verdicts[0].startswith("- 4K -> 16K") and verdicts[1].startswith("- 16K -> 32K")
    for stage in ("[hpo 3/3]", "[evaluation 6/6]", "[baselines 1/1]", "[cross_budget 6/6]"):
        assert stage in stderr, stage
    unit_lines = [line for line in stderr.splitlines() if line.startswith("[")]
    trained = [
        line
        for line in unit_lines
        if not line.endswith("already done, skipped")
        and not line.startswith(("[results", "[report"))
    ]
    assert trained == [] and " trial " not in stderr, stderr
    for name in ("experiment_results.csv", "scaling.json", "report.md", "report.html"):
        assert (run_dir / name).stat().st_size > 0, name
    assert len(pd.read_csv(run_dir / "experiment_results.csv")) == 6
    assert finished_trials(run_dir) == {"a25_16K_h1": 3, "a25_32K_h1": 3, "a25_4K_h1": 3}

    # `finscale report` rebuilding it identically is tests/report's (and the password
    # test runs the command).
    code, stdout, stderr = finscale("validate-cross-budget", run_dir, "--dry-run")
    assert code == 0, stderr
    assert "6 trainings planned, 0 to run" in stdout
    assert stdout.count("stored") >= 6


@pytest.mark.slow
def test_stop_mid_study_then_resume_reaches_exact_counts(tmp_path, finscale):
    run_dir = tmp_path / "run"
    # Two studies, no cross-budget matrix, and trials of ten epochs (under a second): the
    # stop, written within 0.2 s of the first trial's end, lands inside the HPO stage.
    # One seed: the resume's evaluation is not what is tested.
    settings = {
        "scale.cross_budget": False,
        "scale.seeds": 1,
        "train.max_epochs": 10,
        "train.patience": 10,
    }
    args = [*scale_args(run_dir, **settings), "--budgets", "4K,16K"]
    proc = start(args, tmp_path)
    deadline = time.time() + 180
    while not list(run_dir.glob("studies/*/trials/trial_0000.json")):
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    code, stdout, _ = finscale("stop", run_dir)
    assert code == 0 and "stop" in stdout
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "stopped" in err and "run the same command to resume" in err
    assert not (run_dir / "scaling.json").exists()
    stopped_at = finished_trials(run_dir)
    assert sum(stopped_at.values()) < 6

    code, stdout, stderr = finscale(*args)
    assert code == 0, stderr
    assert finished_trials(run_dir) == {"a25_16K_h1": 3, "a25_4K_h1": 3}
    assert json.loads((run_dir / "scaling.json").read_text())["horizons"]["1"]["steps"]


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FINSCALE_STORE", str(tmp_path / "store"))
    run_dir = tmp_path / "run"
    cases = [
        ["scale", "--budgets", "20Q", "--run-dir", str(run_dir)],
        ["scale", "--horizons", "0", "--run-dir", str(run_dir)],
        ["scale", "--seeds", "0", "--run-dir", str(run_dir)],
        ["scale", "--preset", "quick", "--set", "scale.seed=3", "--run-dir", str(run_dir)],
        ["report", str(tmp_path / "nothing")],
        ["validate-cross-budget", str(tmp_path / "nothing"), "--dry-run"],
    ]
    assert_one_line_errors(cases, capsys)
    assert not run_dir.exists()


@pytest.mark.parametrize(
    ("sets", "key"),
    [
        (["evaluation.folds=1"], "evaluation.folds"),
        (["evaluation.pbo_blocks=15"], "evaluation.pbo_blocks"),
        (["evaluation.scheme=walk_forward", "evaluation.search_fraction=0.02"], "search_fraction"),
        (["evaluation.scheme=walk_forward", "evaluation.folds=60"], "evaluation.folds"),
        (
            ["evaluation.window=rolling", "evaluation.rolling_days=40"],
            "evaluation.rolling_days",
        ),
    ],
)
def test_bad_evaluation_values_name_their_key_before_any_training(
    sets, key, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("FINSCALE_STORE", str(tmp_path / "store"))
    run_dir = tmp_path / "run"
    flags = [arg for item in sets for arg in ("--set", item)]
    code = main(["scale", "--preset", "quick", "--run-dir", str(run_dir), *flags])
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and key in lines[0], stderr
    assert not run_dir.exists()  # no run directory, no study, nothing trained


def test_a_run_directory_refuses_other_data(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FINSCALE_STORE", str(tmp_path / "store"))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    studies = [{"budget": 8000, "horizon_days": 1, "study_name": "a50_8K_h1"}]
    recorded = {"config": {"data": {"tier": "a50"}}, "storage": None, "studies": studies}
    (run_dir / "scale.json").write_text(json.dumps(recorded))
    code = main(scale_args(run_dir))
    err = capsys.readouterr().err
    assert code == 2 and "other data" in err and err.startswith("error: ")
    assert sorted(p.name for p in run_dir.iterdir()) == ["scale.json"]
