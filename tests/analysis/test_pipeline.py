"""The scaling pipeline on a real tiny study: what it stores, what a rerun skips,
what a changed input reruns, and that a stop loses nothing."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from finscale.analysis.bootstrap import IMPROVES, NO_DIFFERENCE, WORSENS
from finscale.analysis.pipeline import (
    Pipeline,
    StopRequested,
    evaluation_path,
    write_scale_file,
)
from finscale.analysis.results import (
    RESULTS_CSV,
    SCALING_JSON,
    build_results,
    calibration_summary,
)
from finscale.hpo.control import request_stop
from tests.analysis.conftest import QuietReporter, run_pipeline, tiny_scale_spec

CONTRACT_COLUMNS = [
    "tier",
    "budget",
    "horizon",
    "seed",
    "d_model",
    "n_layers",
    "n_heads",
    "d_ff",
    "param_count",
    "micro_batch",
    "accumulation",
    "epochs",
]


@pytest.fixture
def run_copy(tiny_scale_run, tmp_path):
    """A private copy of the session's tiny study, for tests that change it."""
    copy = tmp_path / "run"
    shutil.copytree(tiny_scale_run, copy)
    return copy


def spec_of(run_dir, **overrides):
    return tiny_scale_spec(run_dir, run_dir.parent.parent / "store", **overrides)


def test_every_stage_stores_its_units(tiny_scale_run):
    spec = spec_of(tiny_scale_run)
    names = [spec.study_name(b, 1) for b in spec.budgets]
    assert names == ["a25_4K_h1", "a25_16K_h1", "a25_32K_h1"]
    for name in names:
        for seed in range(2):
            record = json.loads(evaluation_path(tiny_scale_run, name, seed).read_text())
            assert record["seed"] == seed
            assert len(record["predictions"]["test"]) == len(record["labels"]["test"]) > 100
            # The architecture evaluated is the study's best trial's.
            best = json.loads((tiny_scale_run / "studies" / name / f"{name}_best.json").read_text())
            assert record["architecture"] == best["architecture"]
            assert record["trial"] == best["best_trial"]
    assert (tiny_scale_run / "baselines" / "h1.json").exists()
    assert len(list((tiny_scale_run / "cross_budget" / "h1").glob("*.json"))) == 6


def test_a_rerun_skips_every_unit_and_rewrites_nothing(run_copy):
    before = {p: p.stat().st_mtime_ns for p in run_copy.rglob("*.json") if "studies" not in p.parts}
    reporter = run_pipeline(spec_of(run_copy))
    assert reporter.units, "the pipeline reported no unit"
    assert all(skipped for *_, skipped in reporter.units), reporter.units
    after = {p: p.stat().st_mtime_ns for p in before}
    changed = [p for p in before if before[p] != after[p] and p.name != "scale.json"]
    assert changed == []


def test_more_seeds_run_only_the_new_seed(run_copy):
    reporter = run_pipeline(spec_of(run_copy, **{"scale.seeds": 3}))
    ran = [(stage, detail) for stage, _, _, detail, skipped in reporter.units if not skipped]
    assert sorted(ran) == sorted(
        ("evaluation", f"{name} seed 2") for name in ("a25_4K_h1", "a25_16K_h1", "a25_32K_h1")
    )


def test_a_changed_training_input_reruns_the_evaluation(run_copy):
    reporter = run_pipeline(spec_of(run_copy, **{"train.min_delta": 0.002}))
    ran = {stage for stage, *_, skipped in reporter.units if not skipped}
    # The study itself is the same search (its storage is the truth); its winner's
    # final runs and cross-budget cells depend on the training config and are redone.
    assert ran == {"evaluation", "cross_budget"}


def test_a_stop_mid_evaluation_writes_nothing_half_done(run_copy):
    spec = spec_of(run_copy)
    missing = evaluation_path(run_copy, spec.study_name(spec.budgets[-1], 1), 1)
    missing.unlink()
    write_scale_file(spec)
    pipeline = Pipeline(spec, QuietReporter())
    pipeline.load_winners()
    request_stop(run_copy)
    with pytest.raises(StopRequested):
        pipeline.evaluation()
    assert not missing.exists()
    assert not list(missing.parent.glob(".*.tmp"))


def test_results_hold_the_contract_columns_and_honest_verdicts(run_copy):
    results = build_results(run_copy)
    frame = pd.read_csv(run_copy / RESULTS_CSV)
    assert list(frame.columns[: len(CONTRACT_COLUMNS)]) == CONTRACT_COLUMNS
    assert len(frame) == 3 * 2  # budgets x seeds
    assert {"test_log_loss", "test_roc_auc", "test_brier_skill", "val_log_loss"} <= set(frame)
    stored = json.loads((run_copy / SCALING_JSON).read_text())
    h1 = stored["horizons"]["1"]
    assert [row["budget"] for row in h1["budgets"]] == [4000, 16000, 32000]
    for step in h1["steps"]:
        d = step["log_loss"]
        assert step["verdict"] in (IMPROVES, NO_DIFFERENCE, WORSENS)
        if d["low"] <= 0 <= d["high"]:
            assert step["verdict"] == NO_DIFFERENCE
    for row in h1["budgets"]:
        # 1,155 training samples against thousands of parameters.
        assert row["data_limited"] and row["samples_per_param"] < 1
        assert set(row["vs_baselines"]) == {"base_rate", "logistic", "volatility"}
        m = row["metrics"]["log_loss"]
        assert m["boot_low"] <= m["mean"] <= m["boot_high"]
    assert len(results["warnings"]) == 3
    # The diagonal of the cross-budget matrix is each winner's own seed-0 run.
    cross = h1["cross_budget"]
    for j, row in enumerate(h1["budgets"]):
        seed0 = json.loads(evaluation_path(run_copy, row["study"], 0).read_text())
        assert cross["val_log_loss"][j][j] == pytest.approx(seed0["val_metrics"]["log_loss"])
    # Three distinct parameter counts: the law is fitted, with intervals around it.
    fit = h1["fit"]
    for name in ("E", "A", "alpha"):
        assert fit[name]["low"] <= fit[name]["value"] <= fit[name]["high"], name
    assert fit["n_converged"] > 0.9 * fit["n_resamples"]
    assert sorted(set(fit["points"]["n_params"])) == [r["param_count"] for r in h1["budgets"]]
    # The runs' test log loss the law is fitted to is the records' own.
    assert sorted(fit["points"]["test_log_loss"]) == pytest.approx(sorted(frame["test_log_loss"]))


def _record(y_val, y_test, seed):
    rng = np.random.default_rng(seed)
    p_val = np.clip(0.2 + 0.5 * np.asarray(y_val) + rng.normal(0, 0.1, len(y_val)), 0.01, 0.99)
    p_test = np.clip(0.2 + 0.5 * np.asarray(y_test) + rng.normal(0, 0.1, len(y_test)), 0.01, 0.99)
    return {
        "labels": {"val": list(y_val), "test": list(y_test)},
        "predictions": {"val": p_val.tolist(), "test": p_test.tolist()},
    }


def test_calibration_is_chosen_on_validation_or_skipped_with_its_reason():
    y_test = [0, 1] * 50
    spread = [int(i % 7 == 0) for i in range(140)]
    summary = calibration_summary([_record(spread, y_test, s) for s in range(2)])
    assert summary["best"] in ("temperature", "platt", "isotonic")
    assert summary["best"] in summary["reliability"]
    # Every positive of validation in its first fifth: fitted on the other four fifths,
    # a calibrator sees no positive. The report says so instead of failing.
    clustered = [1] * 10 + [0] * 130
    summary = calibration_summary([_record(clustered, y_test, s) for s in range(2)])
    assert summary["best"] is None and "both classes" in summary["skipped"]
    assert summary["methods"]["uncalibrated"]["test"]["log_loss"] > 0
    assert sum(summary["reliability"]["uncalibrated"]["count"]) == 2 * len(y_test)
