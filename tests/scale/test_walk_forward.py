"""The tiny study scored walk-forward: what the search, early stopping and the
baselines saw, and what the results say per fold and pooled."""

import itertools
import json
import multiprocessing
import os
import shutil
import time
from datetime import date

import numpy as np
import optuna
import pandas as pd
import pytest

from finscale.analysis import evaluation_seeds
from finscale.execution import open_storage
from finscale.execution.attrs import SPLITS_ATTR, WORKER_ATTR
from finscale.scale import (
    RESULTS_CSV,
    SCALING_JSON,
    baselines_path,
    build_results,
    evaluation_path,
    open_queue,
)
from finscale.scale.scale_spec import read_scale_file
from tests.scale.tiny import TINY_WALK_FORWARD_SETS, QuietReporter, spec_of


def _study_attrs(run_dir, budget):
    spec = spec_of(run_dir, **TINY_WALK_FORWARD_SETS).study_spec(budget, 1)
    study = optuna.load_study(study_name=spec.study_name, storage=open_storage(spec.storage))
    return study.user_attrs


def test_no_test_date_reaches_the_search_early_stopping_or_the_baselines(walk_copy):
    info = read_scale_file(walk_copy)
    results = build_results(walk_copy)
    seeds = evaluation_seeds(spec_of(walk_copy, **TINY_WALK_FORWARD_SETS).config)
    folds = [f.to_dict() for f in results.horizons["1"].folds]
    assert [f["fold"] for f in folds] == [0, 1, 2]
    first_test = folds[0]["test_start"]
    for study in info["studies"]:
        name = study["study_name"]
        for fold in folds:
            for seed in seeds:
                run = json.loads(evaluation_path(walk_copy, name, seed, fold["fold"]).read_text())
                # trained and early-stopped only before the fold's first test date
                assert run["train_span"][1] < fold["test_start"] == run["test_dates"][0]
                assert run["fold"] == fold["fold"]
                assert run["test_dates"][-1] == fold["test_end"]
        # the search validated (and trained) only before the first test fold
        splits = _study_attrs(walk_copy, study["budget"])[SPLITS_ATTR]
        assert set(splits) == {"train", "val"}
        assert splits["val"]["last_date"] < first_test
    for fold in folds:
        record = json.loads(baselines_path(walk_copy, 1, fold["fold"]).read_text())
        assert record["fold"] == fold["fold"]
        n_test = (
            date.fromisoformat(fold["test_end"]) - date.fromisoformat(fold["test_start"])
        ).days
        assert 0 < len(record["logistic"]["predictions"]["test"]) <= n_test + 1
    # folds follow each other, and each fold's training ends before its test starts
    for before, after in itertools.pairwise(folds):
        assert before["test_end"] < after["test_start"]
    for fold in folds:
        assert fold["train_end"] < fold["test_start"]


def test_results_are_given_per_fold_and_pooled(walk_copy):
    results = build_results(walk_copy)
    h = results.horizons["1"]
    assert h.scheme == "walk_forward"
    n_fold = [row.n_test for row in h.budgets[0].folds]
    assert sum(n_fold) == h.n_test and len(n_fold) == 3
    table = pd.read_csv(walk_copy / RESULTS_CSV)
    for row in h.budgets:
        assert [f.fold for f in row.folds] == [0, 1, 2]
        for f in row.folds:
            # A fold's mean is its stored runs' own test log loss; its interval is wide.
            loss = f.log_loss
            runs = table[(table["budget"] == row.budget) & (table["fold"] == f.fold)]
            assert loss.mean == pytest.approx(runs["test_log_loss"].mean(), rel=1e-9)
            assert loss.boot_low < loss.boot_high
            assert set(f.vs_baselines) == set(row.vs_baselines)
        for comparison in row.vs_baselines.values():
            assert comparison.log_loss.mde > 0
            assert comparison.folds_agree.folds == 3
    for step in h.steps:
        agree = step.folds_agree
        assert agree.folds == 3
        lower = sum(1 for f in step.per_fold if f.difference < 0)
        assert agree.lower == lower
        assert step.mde == step.log_loss.mde > 0
    # The pooled mean is the folds' means weighted by their test days.
    row = h.budgets[0]
    weighted = np.average([f.log_loss.mean for f in row.folds], weights=n_fold)
    assert row.metrics["log_loss"].mean == pytest.approx(weighted, rel=1e-9)
    assert sorted(table["fold"].unique().tolist()) == [0, 1, 2]
    assert len(table) == 3 * 3 * 2  # budgets x folds x seeds
    stored = json.loads((walk_copy / SCALING_JSON).read_text())["horizons"]["1"]["folds"]
    assert stored == [f.to_dict() for f in h.folds]


def test_the_report_shows_the_folds_the_power_and_the_mde_in_words(walk_copy):
    from finscale.scale import write_run_report

    results = build_results(walk_copy)
    paths = write_run_report(walk_copy, results)
    text = (walk_copy / "report.md").read_text()
    assert "### Walk-forward folds" in text and "## Power" in text
    assert "walk-forward evaluation: the search sees the first 50%" in text
    assert any(p.name == "folds_h1.png" for p in paths)
    h = results.horizons["1"]
    for step in h.steps:
        assert f"lower in {step.folds_agree.lower} of 3 folds" in text
        if step.verdict == "no detectable difference":
            assert f"could detect a change of {step.mde:.4f} or larger" in text


def test_each_study_carries_its_pbo_and_each_budget_its_sharpe_and_dsr(walk_copy):
    from dataclasses import replace

    from finscale.analysis.overfitting import (
        search_pbo,
    )
    from finscale.document import render_markdown
    from finscale.execution.attrs import VAL_LABELS_ATTR, VAL_PREDICTIONS_ATTR
    from finscale.report.sections import short_answer_blocks
    from finscale.scale import write_run_report

    results = build_results(walk_copy)
    stored = json.loads((walk_copy / SCALING_JSON).read_text())
    rows, saved_rows = results.horizons["1"].budgets, stored["horizons"]["1"]["budgets"]
    for row, saved in zip(rows, saved_rows, strict=True):
        pbo, dsr, sharpe = row.pbo, row.dsr, row.sharpe
        assert saved["pbo"]["value"] == pbo.value
        assert 0 <= pbo.value <= 1 and pbo.blocks == 16
        # the same figure straight from the study's storage
        attrs = _study_attrs(walk_copy, row.budget)
        spec = spec_of(walk_copy, **TINY_WALK_FORWARD_SETS).study_spec(row.budget, 1)
        study = optuna.load_study(study_name=spec.study_name, storage=open_storage(spec.storage))
        trained = [
            t.user_attrs[VAL_PREDICTIONS_ATTR]
            for t in study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
            if "duplicate_of" not in t.user_attrs
        ]
        assert pbo.trials == len(trained) >= 2
        direct = search_pbo(np.array(attrs[VAL_LABELS_ATTR]), np.array(trained), 16)
        assert direct.value == pytest.approx(pbo.value, abs=1e-9)
        assert 0 <= dsr.value <= 1 and dsr.trials == pbo.trials
        low, high = sharpe.interval
        assert low < high
        assert sharpe.n_days == results.horizons["1"].n_test
    paths = write_run_report(walk_copy, results)
    text = (walk_copy / "report.md").read_text()
    assert "### Overfitting of the search" in text
    assert "### Economic illustration (not a trading system)" in text
    assert any(p.name == "pbo_h1.png" for p in paths)
    # a study whose winner is luck says so in the short answer
    h = results.horizons["1"]
    lucky = replace(h.budgets[1], pbo=replace(h.budgets[1].pbo, value=0.7))
    budgets = (h.budgets[0], lucky, *h.budgets[2:])
    results = replace(results, horizons={"1": replace(h, budgets=budgets)})
    answer = render_markdown(short_answer_blocks(results))
    label = lucky.budget_label
    assert f"the search at {label}: **its winner is indistinguishable from luck**" in answer
    assert answer.count("indistinguishable from luck") == 1


class HeadAfterChild(QuietReporter):
    """A reporter that holds the head at its first evaluation unit, once its workers
    are spawned, until one of them has claimed a unit of its own: on a loaded machine
    the head could otherwise run every unit before its child's interpreter has started."""

    def __init__(self, spec, timeout_s=180):
        super().__init__()
        self.spec, self.timeout_s, self.waited = spec, timeout_s, False

    def unit(self, name, budget, horizon, detail):
        super().unit(name, budget, horizon, detail)
        # Units already stored are reported before any worker is spawned.
        if name != "evaluation" or self.waited or not multiprocessing.active_children():
            return
        self.waited = True
        deadline = time.time() + self.timeout_s
        while time.time() < deadline and not self.child_claimed():
            time.sleep(0.1)

    def child_claimed(self):
        for budget, horizon in self.spec.studies():
            queue = open_queue(self.spec.study_spec(budget, horizon))
            for trial in queue.get_trials(deepcopy=False):
                if trial.user_attrs.get(WORKER_ATTR, {}).get("pid") not in (None, os.getpid()):
                    return True
        return False


def test_local_workers_run_evaluation_units_side_by_side(walk_copy):
    import collections
    from dataclasses import replace

    from finscale.execution.attrs import RETRY_ATTR
    from finscale.scale import Pipeline
    from finscale.scale.queue import RUN_ATTR, Unit

    shutil.rmtree(walk_copy / "evaluation")
    # Seeds 5-8 are new units; seeds 3-4 (the first two after the search's 0, 1, 2) are
    # completed on the queues already and are collected from them without training.
    spec = replace(spec_of(walk_copy, **TINY_WALK_FORWARD_SETS, **{"scale.seeds": 6}), workers=2)
    seeds = evaluation_seeds(spec.config)
    assert seeds == tuple(range(3, 9))
    pipeline = Pipeline(spec, HeadAfterChild(spec))
    pipeline.load_winners()
    pipeline.evaluation()
    runners = collections.Counter()
    for budget, horizon in spec.studies():
        queue = open_queue(spec.study_spec(budget, horizon))
        trials = queue.get_trials(deepcopy=False)
        assert not any(RETRY_ATTR in t.user_attrs for t in trials)
        units = collections.Counter(Unit.of(t) for t in trials)
        assert set(units.values()) == {1} and len(units) == 3 * 6  # each unit run once
        for t in trials:
            runners[t.user_attrs["worker"]["pid"]] += Unit.of(t).seed >= seeds[2]
            assert t.user_attrs[RUN_ATTR]["seed"] == Unit.of(t).seed
        for fold in range(3):
            for seed in seeds:
                assert evaluation_path(
                    walk_copy, spec.study_name(budget, horizon), seed, fold
                ).exists()
    new_runners = {pid: n for pid, n in runners.items() if n}
    print(f"new units per process: {new_runners}")
    assert len(new_runners) == 2


def test_data_fraction_runs_give_the_joint_law_and_its_columns(walk_copy):
    from finscale.document import render_markdown
    from finscale.report.horizon import joint_law_blocks
    from finscale.scale import Pipeline
    from tests.scale.tiny import QuietReporter

    # Without data-scaling runs the joint law is skipped with its reason; L(N) stands.
    single = build_results(walk_copy).horizons["1"]
    assert "distinct training-sample counts" in single.joint_fit.skipped
    assert single.fit.law is not None
    sets = {**TINY_WALK_FORWARD_SETS, "scale.data_fractions": [0.25, 0.5, 1.0]}
    spec = spec_of(walk_copy, **sets)
    from finscale.scale import write_scale_file

    write_scale_file(spec)
    pipeline = Pipeline(spec, QuietReporter())
    pipeline.load_winners()
    pipeline.evaluation()
    results = build_results(walk_copy)
    h = results.horizons["1"]
    # the comparisons use the full-data runs only: unchanged by the extra runs
    assert h.steps == single.steps and h.fit == single.fit
    table = pd.read_csv(walk_copy / RESULTS_CSV)
    assert len(table) == 3 * 3 * 2 * 3  # budgets x folds x seeds x fractions
    columns = table.columns.tolist()
    assert columns.index("data_fraction") == columns.index("fold") + 1
    assert columns.index("train_samples") == columns.index("fold") + 2
    by_fraction = table.groupby(["fold", "data_fraction"])["train_samples"].first().unstack()
    np.testing.assert_allclose(by_fraction[0.25] / by_fraction[1.0], 0.25, atol=0.01)
    np.testing.assert_allclose(by_fraction[0.5] / by_fraction[1.0], 0.5, atol=0.01)
    joint = h.joint_fit
    assert set(joint.points.data_fraction) == {0.25, 0.5, 1.0}
    assert len(joint.points.test_log_loss) == 3 * 3 * 2  # budgets x fractions x seeds
    for name in ("E", "A", "alpha", "B", "beta"):
        estimate = getattr(joint.law, name)
        assert estimate.low < estimate.high, name
    marginal = joint.marginal
    assert marginal.n_params == max(joint.points.n_params)
    assert marginal.binding in (None, "data", "parameters")
    text = render_markdown(joint_law_blocks(h))
    assert "Marginal value at the largest run" in text and marginal.statement in text
    assert json.loads((walk_copy / SCALING_JSON).read_text())["horizons"]["1"]["joint_fit"]
