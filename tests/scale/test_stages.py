"""The scaling pipeline on a real tiny study: what it stores, what a rerun skips,
what a changed input reruns, and that a stop loses nothing."""

import json

import optuna
import pytest

from finscale.analysis import evaluation_seeds, json_safe
from finscale.analysis.records import CrossBudgetCell, EvaluationRun
from finscale.execution import StopRequested, open_storage, request_stop
from finscale.execution.attrs import CONFIG_ATTR
from finscale.hpo.finalists import finalist_seeds, search_settings
from finscale.scale import Pipeline, build_results, evaluation_path, write_scale_file
from tests.analysis.test_records import CROSS_BUDGET_KEYS, EVALUATION_KEYS
from tests.scale.tiny import QuietReporter, run_pipeline, spec_of


def test_every_stage_stores_its_units(tiny_scale_run):
    spec = spec_of(tiny_scale_run)
    names = [spec.study_name(b, 1) for b in spec.budgets]
    assert names == ["a25_4K_h1", "a25_16K_h1", "a25_32K_h1"]
    for name in names:
        for seed in evaluation_seeds(spec.config):
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


def _search_seeds(spec, budget):
    """The seeds the study of `budget` trains with, from its stored config by the search's
    own code: its trials' (`train.seed`) and its finalists' re-runs' (as if turned on)."""
    study_spec = spec.study_spec(budget, 1)
    storage = open_storage(study_spec.storage)
    attrs = optuna.load_study(study_name=study_spec.study_name, storage=storage).user_attrs
    _, reruns, train_seed = search_settings(attrs)
    assert attrs[CONFIG_ATTR]["train"]["seed"] == train_seed
    return {train_seed, *finalist_seeds(train_seed, reruns)}


def test_no_evaluation_run_or_cross_budget_cell_repeats_a_run_of_the_search(tiny_scale_run):
    spec = spec_of(tiny_scale_run)
    searched = {b: _search_seeds(spec, b) for b in spec.budgets}
    assert searched[spec.budgets[0]] == {0, 1, 2}
    seeds = set()
    for budget in spec.budgets:
        folder = evaluation_path(tiny_scale_run, spec.study_name(budget, 1), 0).parent
        records = [json.loads(p.read_text()) for p in sorted(folder.glob("seed_*.json"))]
        assert len(records) == 2
        seeds |= {r["seed"] for r in records}
        assert searched[budget].isdisjoint(r["seed"] for r in records)
    cells = [
        CrossBudgetCell.from_dict(json.loads(p.read_text()))
        for p in sorted((tiny_scale_run / "cross_budget" / "h1").glob("*.json"))
    ]
    assert len(cells) == 6
    for cell in cells:
        assert cell.seed not in searched[cell.architecture_of] | searched[cell.values_from]
    # One seed for the whole matrix, the first evaluation seed: the diagonal's run.
    assert {cell.seed for cell in cells} == {min(seeds)} == {evaluation_seeds(spec.config)[0]}


def test_an_older_versions_seed_0_files_are_neither_read_nor_in_the_way(run_copy):
    """An older version evaluated with seeds 0, 1 (the first the search's own) and trained
    its cross-budget cells with seed 0; resuming its run directory trains the new
    seeds beside the old files, and the results read the new seeds only."""
    spec = spec_of(run_copy)
    first = evaluation_seeds(spec.config)[0]
    expected = json_safe(build_results(run_copy).to_dict())
    for budget in spec.budgets:
        new = evaluation_path(run_copy, spec.study_name(budget, 1), first)
        old = json.loads(new.read_text())
        # A seed-0 run far worse than any new one: read, it would move every figure.
        old["seed"] = 0
        old["predictions"]["test"] = [0.999 - 0.998 * y for y in old["labels"]["test"]]
        old["val_metrics"]["log_loss"] = 9.0
        new.with_name("seed_0.json").write_text(json.dumps(old))
    # An old cell: its key was of seed 0, and it names no seed.
    cell_path = sorted((run_copy / "cross_budget" / "h1").glob("*.json"))[0]
    cell = json.loads(cell_path.read_text())
    stale = {k: v for k, v in cell.items() if k != "seed"} | {"key": "old", "val_log_loss": 9.0}
    cell_path.write_text(json.dumps(stale))
    # Left as it is, the stale cell is not of the matrix's seed and not read into it.
    results = json_safe(build_results(run_copy).to_dict())
    matrix = results["horizons"]["1"]["cross_budget"]
    values = [v for row in matrix["val_log_loss"] for v in row]
    assert 9.0 not in values and values.count(None) == 1 and matrix["seed"] == first
    assert results["horizons"]["1"]["budgets"] == expected["horizons"]["1"]["budgets"]
    # A resume retrains the stale cell alone, and the results are the new seeds' again.
    reporter = run_pipeline(spec)
    ran = [(stage, skipped) for stage, _, _, _, skipped in reporter.units if not skipped]
    assert ran == [("cross_budget", False)]
    assert CrossBudgetCell.from_dict(json.loads(cell_path.read_text())).seed == first
    assert json_safe(build_results(run_copy).to_dict())["horizons"] == expected["horizons"]


def test_a_rerun_skips_every_unit_and_rewrites_nothing(run_copy):
    before = {p: p.stat().st_mtime_ns for p in run_copy.rglob("*.json") if "studies" not in p.parts}
    reporter = run_pipeline(spec_of(run_copy))
    assert reporter.units, "the pipeline reported no unit"
    assert all(skipped for *_, skipped in reporter.units), reporter.units
    after = {p: p.stat().st_mtime_ns for p in before}
    changed = [p for p in before if before[p] != after[p] and p.name != "scale.json"]
    assert changed == []


def test_more_seeds_run_only_the_new_seed(run_copy):
    spec = spec_of(run_copy, **{"scale.seeds": 3})
    reporter = run_pipeline(spec)
    ran = [(stage, detail) for stage, _, _, detail, skipped in reporter.units if not skipped]
    new = evaluation_seeds(spec.config)[-1]
    assert new == 5  # after the search's 0, 1, 2 and the stored 3, 4
    assert sorted(ran) == sorted(
        ("evaluation", f"{name} seed {new}") for name in ("a25_4K_h1", "a25_16K_h1", "a25_32K_h1")
    )


def test_a_changed_training_input_reruns_the_evaluation(run_copy):
    reporter = run_pipeline(spec_of(run_copy, **{"train.min_delta": 0.002}))
    ran = {stage for stage, *_, skipped in reporter.units if not skipped}
    # The study itself is the same search (its storage is the truth); its winner's
    # final runs and cross-budget cells depend on the training config and are redone.
    assert ran == {"evaluation", "cross_budget"}


def test_a_stop_mid_evaluation_writes_nothing_half_done(run_copy):
    spec = spec_of(run_copy)
    second = evaluation_seeds(spec.config)[1]
    missing = evaluation_path(run_copy, spec.study_name(spec.budgets[-1], 1), second)
    missing.unlink()
    write_scale_file(spec)
    pipeline = Pipeline(spec, QuietReporter())
    pipeline.load_winners()
    request_stop(run_copy)
    with pytest.raises(StopRequested):
        pipeline.evaluation()
    assert not missing.exists()
    assert not list(missing.parent.glob(".*.tmp"))
