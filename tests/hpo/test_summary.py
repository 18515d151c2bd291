import json
import math
import random

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from finscale.hpo import summary as summary_module
from finscale.hpo.summary import (
    SUMMARY_JSON,
    SUMMARY_MD,
    param_importances,
    summarize,
    summary_markdown,
    write_summary,
)
from finscale.hpo.trial_records import read_trial_records

TOP_LEVEL_KEYS = {
    "summary_version",
    "study",
    "counts",
    "best",
    "distribution",
    "by_d_model",
    "by_n_layers",
    "by_n_heads",
    "sensitivity",
    "coverage",
    "trials",
}
HEADINGS = (
    "## Counts",
    "## Best trial",
    "## Distribution of validation log loss",
    "## By d_model",
    "## By n_layers",
    "## By n_heads",
    "## Sensitivity",
    "## Coverage",
    "### d_model",
    "### n_layers",
    "### n_heads",
    "## Trials",
)
STUDY_INFO = {
    "study_name": "a25_20K_h1",
    "budget": 20_000,
    "tier": "a25",
    "horizon_days": 1,
    "grid_hash": "ab" * 32,
    "grid_size": 12,
    "excluded_archs": [],
    "trials": 10,
}


def metrics(confusion=((5, 1), (2, 3)), **overrides):
    (tn, fp), (fn, tp) = confusion
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    values = {
        "confusion_matrix": [list(row) for row in confusion],
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "roc_auc": 0.6,
        "prediction_range": 0.25,
        "accuracy": (tn + tp) / (tn + fp + fn + tp),
        "positive_rate": (fn + tp) / (tn + fp + fn + tp),
        "n_samples": tn + fp + fn + tp,
        "log_loss": 0.5,
    }
    return {**values, **overrides}


def record(
    number,
    state="COMPLETE",
    value=None,
    arch=(16, 1, 2),
    last_value=None,
    duplicate_of=None,
    failure_reason=None,
    forced_extreme=None,
    **params,
):
    """A trial record as `trial_record` writes it, with only the fields the summary reads."""
    d_model, n_layers, n_heads = arch if arch is not None else (None, None, None)
    architecture = (
        None
        if arch is None
        else {
            "index": number,
            "d_model": d_model,
            "n_layers": n_layers,
            "n_heads": n_heads,
            "d_ff": 4 * d_model,
            "param_count": 1000 * d_model + 100 * n_layers + n_heads,
        }
    )
    trial_params = {
        "learning_rate": 1e-3,
        "weight_decay": 1e-2,
        "warmup_steps": 30,
        "dropout": 0.2,
        **params,
    }
    val_metrics = metrics() if state == "COMPLETE" and duplicate_of is None else None
    return {
        "number": number,
        "state": state,
        "value": value if state == "COMPLETE" else None,
        "last_value": last_value if last_value is not None else value,
        "params": trial_params if arch is not None else {},
        "architecture": architecture,
        "duration_seconds": 1.5,
        "epochs_run": 3,
        "val_metrics": val_metrics,
        "confusion_matrix": val_metrics["confusion_matrix"] if val_metrics else None,
        "failure_reason": failure_reason,
        "duplicate_of": duplicate_of,
        "forced_extreme": forced_extreme,
    }


# ---------------------------------------------------------------- a real tiny study


@pytest.fixture(scope="module")
def real_study(tmp_path_factory):
    """Eight trials of the quick preset at a 20K budget (about 8 seconds)."""
    from finscale.config import load_study_config
    from finscale.hpo.spec import StudySpec, default_study_name
    from finscale.hpo.study import run_study

    root = tmp_path_factory.mktemp("summary_study")
    config = load_study_config(
        "quick",
        overrides={"search.trials": 8, "train.max_epochs": 3, "data.start": "2012-01-01"},
    )
    run_dir = root / "run"
    spec = StudySpec(
        config,
        20_000,
        default_study_name("a25", 20_000, 1),
        run_dir,
        str(run_dir / "study.journal"),
        root / "store",
    )
    outcome = run_study(spec)
    study_info = json.loads((run_dir / "study.json").read_text())
    records = read_trial_records(run_dir)
    importances = param_importances(outcome.study)
    return {
        "outcome": outcome,
        "run_dir": run_dir,
        "study_info": study_info,
        "records": records,
        "importances": importances,
        "summary": summarize(study_info, records, importances),
    }


@pytest.mark.slow
def test_real_study_summary_counts_match_the_storage(real_study):
    summary = real_study["summary"]
    counts = real_study["outcome"].counts

    assert set(summary) == TOP_LEVEL_KEYS
    for key in ("complete", "pruned", "failed", "duplicates", "finished"):
        assert summary["counts"][key] == counts[key]
    assert summary["counts"]["finished"] == real_study["study_info"]["trials"] == 8
    assert summary["study"]["name"] == real_study["study_info"]["study_name"]
    assert summary["study"]["trials_target"] == 8
    assert [row["number"] for row in summary["trials"]] == sorted(
        r["number"] for r in real_study["records"]
    )


def test_real_study_best_is_the_lowest_complete_value(real_study):
    summary, records = real_study["summary"], real_study["records"]
    complete = [r for r in records if r["state"] == "COMPLETE" and r["duplicate_of"] is None]
    lowest = min(complete, key=lambda r: r["value"])

    best = summary["best"]
    assert best["number"] == lowest["number"]
    assert best["value"] == pytest.approx(lowest["value"])
    assert best["confusion_matrix"] == lowest["val_metrics"]["confusion_matrix"]
    assert best["architecture"] == lowest["architecture"]
    assert summary["distribution"]["min"] == pytest.approx(lowest["value"])


def test_real_study_coverage_accounts_for_every_trial(real_study):
    summary, records = real_study["summary"], real_study["records"]
    with_architecture = [r for r in records if r["architecture"] is not None]

    for name in ("d_model", "n_layers", "n_heads"):
        cells = summary["coverage"][name]
        assert sum(c["trials"] for c in cells.values()) == len(with_architecture)
        assert set(cells) == {str(r["architecture"][name]) for r in with_architecture}
        assert set(summary[f"by_{name}"]) == set(cells)
        assert (
            sum(c["complete"] for c in summary[f"by_{name}"].values())
            == (summary["distribution"]["n"])
        )


def test_real_study_importances_cover_only_params_that_varied(real_study):
    importances = real_study["importances"]
    complete = [
        r for r in real_study["records"] if r["state"] == "COMPLETE" and r["duplicate_of"] is None
    ]
    varied = {
        name
        for name in complete[0]["params"]
        if len({repr(r["params"][name]) for r in complete}) > 1
    }

    # The forced extremes vary the architecture ranks, so there is something to rank.
    assert set(importances) == varied
    assert sum(importances.values()) == pytest.approx(1.0)
    for name, value in importances.items():
        assert real_study["summary"]["sensitivity"][name]["importance"] == value


def test_real_study_summary_is_strict_json_and_written_atomically(real_study):
    summary, run_dir = real_study["summary"], real_study["run_dir"]

    json_path, md_path = write_summary(run_dir, summary)

    assert (json_path, md_path) == (run_dir / SUMMARY_JSON, run_dir / SUMMARY_MD)
    reloaded = json.loads(json_path.read_text())
    assert reloaded == json.loads(json.dumps(summary, allow_nan=False))
    markdown = md_path.read_text()
    assert markdown == summary_markdown(summary)
    # Re-rendering the exported JSON (keys sorted as text) gives the same report.
    assert summary_markdown(reloaded) == markdown
    assert not list(run_dir.glob(".summary*"))
    for heading in HEADINGS:
        assert heading in markdown
    (tn, fp), (fn, tp) = summary["best"]["confusion_matrix"]
    assert f"| 0 | {tn} | {fp} |" in markdown
    assert f"| 1 | {fn} | {tp} |" in markdown


# ---------------------------------------------------------------- hand-written records


def mixed_records():
    return [
        record(0, value=0.60, arch=(16, 1, 2), forced_extreme="min d_model"),
        record(1, value=0.50, arch=(24, 2, 2)),
        record(2, value=0.50, arch=(24, 2, 2), duplicate_of=1),
        record(3, "PRUNED", last_value=0.90, arch=(16, 2, 4)),
        record(4, "FAIL", arch=(24, 1, 4), failure_reason="RuntimeError: bad | worse\nline"),
        record(5, "FAIL", arch=None, failure_reason="died before sampling"),
        record(6, value=0.70, arch=(16, 1, 4)),
    ]


def test_counts_and_trials_table_from_records_in_any_order():
    records = mixed_records()
    random.Random(0).shuffle(records)

    summary = summarize(STUDY_INFO, records, None)

    assert summary["counts"] == {
        "complete": 4,
        "pruned": 1,
        "failed": 2,
        "duplicates": 1,
        "finished": 5,
    }
    rows = summary["trials"]
    assert [row["number"] for row in rows] == list(range(7))
    assert rows[3]["value"] == 0.90  # a pruned trial shows its last validation loss
    assert rows[4]["value"] is None
    assert rows[5]["d_model"] is None and rows[5]["learning_rate"] is None
    assert rows[2]["duplicate_of"] == 1
    assert rows[0]["forced_extreme"] == "min d_model"
    assert rows[1]["param_count"] == 24_000 + 200 + 2
    assert set(rows[0]) == set(summary_module.TRIAL_COLUMNS)


def test_by_dimension_uses_complete_non_duplicate_trials_and_lists_every_value():
    info = {**STUDY_INFO, "dimension_values": {"d_model": [16, 24, 32], "n_heads": [2, 4, 8]}}

    summary = summarize(info, mixed_records(), None)

    assert summary["by_d_model"]["16"] == {
        "complete": 2,
        "best_value": 0.60,
        "best_trial": 0,
        "mean_value": pytest.approx(0.65),
        "median_value": pytest.approx(0.65),
    }
    # Trial 2 duplicates trial 1: one complete trial at d_model 24, not two.
    assert summary["by_d_model"]["24"]["complete"] == 1
    assert summary["by_d_model"]["32"] == {
        "complete": 0,
        "best_value": None,
        "best_trial": None,
        "mean_value": None,
        "median_value": None,
    }
    assert summary["by_n_heads"]["8"]["complete"] == 0
    assert summary["coverage"]["d_model"]["32"]["trials"] == 0
    assert summary["coverage"]["d_model"]["24"]["duplicates"] == 1
    assert summary["coverage"]["n_heads"]["4"]["failed"] == 1


def test_spearman_sign_follows_a_monotone_relation():
    records = [
        record(
            n,
            value=0.3 + 0.1 * n,
            arch=(16 + 8 * n, 1, 2),
            learning_rate=1e-4 * 2**n,  # loss rises with learning rate
            dropout=0.5 - 0.05 * n,  # and falls as dropout rises
        )
        for n in range(5)
    ]
    # A duplicate that would break the monotone relation were it counted.
    records.append(record(5, value=0.1, arch=(16, 1, 2), duplicate_of=0, learning_rate=1.0))
    records.append(record(6, "PRUNED", last_value=0.05, learning_rate=1.0))

    sensitivity = summarize(STUDY_INFO, records, {"learning_rate": 0.7})["sensitivity"]

    assert sensitivity["learning_rate"]["spearman"] == pytest.approx(1.0)
    assert sensitivity["learning_rate"]["n"] == 5
    assert sensitivity["learning_rate"]["importance"] == 0.7
    assert sensitivity["dropout"]["spearman"] == pytest.approx(-1.0)
    assert sensitivity["param_count"]["spearman"] == pytest.approx(1.0)
    # Constant input: no correlation to measure, and no importance was given.
    assert sensitivity["warmup_steps"]["spearman"] is None
    assert sensitivity["warmup_steps"]["importance"] is None


def test_spearman_is_none_below_three_points():
    records = [record(n, value=0.5 + n, learning_rate=1e-4 * (n + 1)) for n in range(2)]

    sensitivity = summarize(STUDY_INFO, records, None)["sensitivity"]

    assert sensitivity["learning_rate"] == {
        "n": 2,
        "spearman": None,
        "p_value": None,
        "importance": None,
    }


def test_distribution_matches_numpy_quartiles():
    losses = [0.71, 0.52, 0.64, 0.69, 0.58, 0.93, 0.61]
    records = [record(n, value=v) for n, v in enumerate(losses)]
    records.append(record(7, value=0.01, duplicate_of=1))
    records.append(record(8, "PRUNED", last_value=5.0))

    dist = summarize(STUDY_INFO, records, None)["distribution"]

    q1, median, q3 = np.percentile(losses, [25, 50, 75])
    assert dist["n"] == len(losses)
    assert dist["min"] == pytest.approx(min(losses))
    assert dist["q1"] == pytest.approx(q1)
    assert dist["median"] == pytest.approx(median)
    assert dist["q3"] == pytest.approx(q3)
    assert dist["max"] == pytest.approx(max(losses))
    assert dist["mean"] == pytest.approx(np.mean(losses))
    assert dist["std"] == pytest.approx(np.std(losses, ddof=1))


def test_best_is_the_minimum_with_ties_to_the_earlier_trial():
    records = [
        record(0, value=0.42),
        record(1, value=0.31, arch=(24, 2, 4), learning_rate=3e-4),
        record(2, value=0.31),
        record(3, value=0.05, duplicate_of=9),  # a duplicate has no metrics of its own
    ]
    records[1]["val_metrics"] = metrics(((111, 22), (33, 44)), roc_auc=math.nan)

    best = summarize(STUDY_INFO, records, None)["best"]

    assert best["number"] == 1
    assert best["value"] == 0.31
    assert best["params"]["learning_rate"] == 3e-4
    assert best["architecture"]["d_model"] == 24
    assert best["confusion_matrix"] == [[111, 22], [33, 44]]
    assert best["precision"] == pytest.approx(44 / 66)
    assert best["recall"] == pytest.approx(44 / 77)
    assert best["roc_auc"] is None  # NaN would make the JSON invalid
    assert best["prediction_range"] == 0.25


def test_markdown_shows_the_confusion_matrix_and_every_section():
    records = [*mixed_records(), record(7, value=0.2, arch=(24, 1, 2), learning_rate=2.5e-4)]
    records[-1]["val_metrics"] = metrics(((111, 22), (33, 44)))

    markdown = summary_markdown(summarize(STUDY_INFO, records, {"learning_rate": 0.4}))

    assert markdown.startswith("# Study a25_20K_h1: budget 20K, tier a25, horizon 1 day\n")
    for heading in HEADINGS:
        assert heading in markdown
    assert "| 0 | 111 | 22 |" in markdown
    assert "| 1 | 33 | 44 |" in markdown
    assert "Precision 0.667, recall 0.571, F1 0.615" in markdown
    assert "Prediction range 0.2500" in markdown
    assert "| complete | pruned | failed | duplicates | finished |" in markdown
    assert "| 5 | 1 | 2 | 1 | 6 |" in markdown
    assert "2.50e-04" in markdown  # learning rates in scientific notation
    assert "| 3 | PRUNED | 0.9000 |" in markdown
    # A failure reason cannot break the trials table.
    assert "RuntimeError: bad \\| worse line" in markdown
    trial_rows = [line for line in markdown.splitlines() if line.startswith("| 4 | FAIL")]
    assert len(trial_rows) == 1


def test_summary_without_complete_trials_renders():
    records = [
        record(0, "PRUNED", last_value=0.8),
        record(1, "FAIL", arch=None, failure_reason="boom"),
    ]

    summary = summarize(STUDY_INFO, records, None)

    assert summary["best"] is None
    assert summary["distribution"]["n"] == 0
    assert all(summary["distribution"][k] is None for k in ("min", "median", "std"))
    markdown = summary_markdown(summary)
    assert "No complete trial yet." in markdown
    json.dumps(summary, allow_nan=False)


def test_write_summary_writes_parseable_json_and_markdown(tmp_path):
    summary = summarize(STUDY_INFO, mixed_records(), None)

    json_path, md_path = write_summary(tmp_path / "run", summary)

    assert json.loads(json_path.read_text()) == json.loads(json.dumps(summary))
    assert md_path.read_text() == summary_markdown(summary)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [SUMMARY_JSON, SUMMARY_MD]


# ---------------------------------------------------------------- param importances


def study_with(states_and_attrs):
    study = optuna.create_study()
    distribution = optuna.distributions.FloatDistribution(0.0, 1.0)
    for n, (state, attrs) in enumerate(states_and_attrs):
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                value=0.1 * n if state == TrialState.COMPLETE else None,
                params={"x": 0.1 * n},
                distributions={"x": distribution},
                user_attrs=attrs,
            )
        )
    return study


def test_importances_are_none_with_fewer_than_two_complete_trials():
    assert param_importances(optuna.create_study()) is None
    one = study_with([(TrialState.COMPLETE, {}), (TrialState.PRUNED, {}), (TrialState.FAIL, {})])
    assert param_importances(one) is None
    # A duplicate repeats another trial's value; it is not a second observation.
    duplicate = study_with([(TrialState.COMPLETE, {}), (TrialState.COMPLETE, {"duplicate_of": 0})])
    assert param_importances(duplicate) is None
    two = study_with([(TrialState.COMPLETE, {}), (TrialState.COMPLETE, {})])
    assert set(param_importances(two)) == {"x"}


def test_importances_rank_the_param_that_drives_the_loss():
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 10.0)
        y = trial.suggest_float("y", 0.0, 1.0)
        trial.suggest_float("constant", 1.0, 1.0)
        return x + 0.01 * y

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=40)

    importances = param_importances(study)

    assert set(importances) == {"x", "y"}  # a param that never varied has no importance
    assert importances["x"] > importances["y"]
    assert sum(importances.values()) == pytest.approx(1.0)


def test_importances_are_none_when_the_evaluator_fails(monkeypatch):
    study = study_with([(TrialState.COMPLETE, {}), (TrialState.COMPLETE, {})])

    def broken(*args, **kwargs):
        raise RuntimeError("evaluator failed")

    monkeypatch.setattr(optuna.importance, "get_param_importances", broken)

    assert param_importances(study) is None
