"""The scaling pipeline on a real tiny study: what it stores, what a rerun skips,
what a changed input reruns, and that a stop loses nothing."""

import json

import pytest

from finscale.analysis.records import CrossBudgetCell, EvaluationRun
from finscale.execution import StopRequested, request_stop
from finscale.scale import Pipeline, evaluation_path, write_scale_file
from tests.analysis.test_records import CROSS_BUDGET_KEYS, EVALUATION_KEYS
from tests.scale.tiny import QuietReporter, run_pipeline, spec_of


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
            # The file's keys are the contract's, and its record reads back whole.
            assert set(record) == EVALUATION_KEYS
            assert EvaluationRun.from_dict(record).to_dict() == record
    assert (tiny_scale_run / "baselines" / "h1.json").exists()
    cells = sorted((tiny_scale_run / "cross_budget" / "h1").glob("*.json"))
    assert len(cells) == 6
    for path in cells:
        record = json.loads(path.read_text())
        assert set(record) == CROSS_BUDGET_KEYS
        cell = CrossBudgetCell.from_dict(record)
        assert cell.to_dict() == record and cell.values_from != cell.architecture_of


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
