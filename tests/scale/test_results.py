"""The results of a run directory: experiment_results.csv and scaling.json from what the
stages stored, with the columns and keys users script against."""

import json

import numpy as np
import pandas as pd
import pytest

from finscale.analysis import TEST_PROBABILITIES, ScalingRow, evaluation_seeds
from finscale.analysis.bootstrap import IMPROVES, NO_DIFFERENCE, WORSENS
from finscale.config import StudyConfig
from finscale.data import bayes_log_loss
from finscale.errors import InputError
from finscale.scale import (
    RESULTS_CSV,
    SCALING_JSON,
    baselines_path,
    build_results,
    evaluation_path,
    write_run_report,
)
from tests.analysis.test_records import SCALING_ROW_KEYS

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
# Every column of experiment_results.csv of the tiny study: the contract's columns, then
# the winner's training values and each split's metrics.
ALL_COLUMNS = [
    *CONTRACT_COLUMNS,
    "fold",
    "data_fraction",
    "train_samples",
    "best_epoch",
    "arch_index",
    "hpo_trial",
    "dropout",
    "learning_rate",
    "warmup_steps",
    "weight_decay",
    "n_train",
    "samples_per_param",
    "train_seconds",
    "device",
    "dtype",
    *(
        f"{split}_{name}"
        for split in ("test", "val")
        for name in (
            "log_loss",
            "brier",
            "brier_skill",
            "roc_auc",
            "accuracy",
            "precision",
            "recall",
            "f1",
            "ece",
            "prediction_range",
            "predicted_positive_rate",
            "positive_rate",
            "n_samples",
        )
    ),
]
SCALING_KEYS = {
    "transfer",
    "confidence_level",
    "primary",
    "family",
    "config",
    "horizons",
    "seeds",
    "study",
    "target",
    "tier",
    "warnings",
    "null_control",
    "label_mode",
}
HORIZON_KEYS = {
    "baselines",
    "block_days",
    "fold_block_days",
    "block_rule",
    "size_trend",
    "bootstrap_resamples",
    "budgets",
    "cross_budget",
    "fit",
    "joint_fit",
    "symbols",
    "folds",
    "horizon_days",
    "n_test",
    "scheme",
    "steps",
    "test_first_date",
    "test_last_date",
    "bayes_log_loss",
}


def test_results_hold_the_contract_columns_and_honest_verdicts(run_copy):
    results = build_results(run_copy)
    frame = pd.read_csv(run_copy / RESULTS_CSV)
    assert list(frame.columns[: len(CONTRACT_COLUMNS)]) == CONTRACT_COLUMNS
    assert list(frame.columns) == ALL_COLUMNS
    assert len(frame) == 3 * 2  # budgets x seeds
    # Each row names its run's actual seed: the evaluation seeds, after the search's 0, 1, 2.
    assert sorted(set(frame["seed"])) == [3, 4]
    assert {"test_log_loss", "test_roc_auc", "test_brier_skill", "val_log_loss"} <= set(frame)
    stored = json.loads((run_copy / SCALING_JSON).read_text())
    h1 = stored["horizons"]["1"]
    assert set(stored) == SCALING_KEYS and set(h1) == HORIZON_KEYS
    for row in h1["budgets"]:
        assert set(row) == SCALING_ROW_KEYS
        assert ScalingRow.from_dict(row).to_dict() == row
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
        # The mean over seeds is the stored runs' own test log loss; the interval is wide.
        m = row["metrics"]["log_loss"]
        runs = frame[frame["budget"] == row["budget"]]["test_log_loss"]
        assert m["mean"] == pytest.approx(runs.mean(), rel=1e-9)
        assert m["boot_low"] < m["boot_high"]
    assert len(results.warnings) == 3
    # Market data: no Bayes loss to set anything against, and no null control.
    assert h1["bayes_log_loss"] is None and stored["null_control"] == "none"
    assert stored["label_mode"] == results.label_mode == "absolute"
    # One primary test, the first horizon's size trend, outside the family; every other
    # verdict is in it, and the correction never calls what the raw interval does not.
    primary = stored["primary"]
    assert primary == h1["size_trend"] and "holm_verdict" not in primary
    low, high = primary["interval"]
    assert low <= primary["slope_per_decade"] <= high
    assert primary["min_detectable_slope"] > 0
    assert primary["verdict"] in (
        "loss falls with size",
        "no detectable trend",
        "loss rises with size",
    )
    family = stored["family"]
    members = [s["log_loss"] for s in h1["steps"]] + [
        c["log_loss"] for row in h1["budgets"] for c in row["vs_baselines"].values()
    ]
    assert family["size"] == len(members) == sum(family["members"].values())
    for d in members:
        assert d["holm_verdict"] in (d["verdict"], NO_DIFFERENCE)
    assert family["detectable"] <= family["raw_detectable"]
    assert h1["block_rule"] == "politis_white" and h1["block_days"] == max(h1["fold_block_days"])
    assert h1["block_days"] >= 1
    # The diagonal of the cross-budget matrix is each winner's own run with the matrix's
    # seed, the first evaluation seed (none of the search's), as every cell's.
    cross = h1["cross_budget"]
    assert cross["seed"] == evaluation_seeds(StudyConfig(**results.config))[0] == 3
    for j, row in enumerate(h1["budgets"]):
        own = json.loads(evaluation_path(run_copy, row["study"], cross["seed"]).read_text())
        assert cross["val_log_loss"][j][j] == pytest.approx(own["val_metrics"]["log_loss"])
    # Three distinct parameter counts: the law is fitted, with intervals from resampled
    # runs (whether they cover a known law is tests/analysis/test_scaling.py's question).
    fit = h1["fit"]
    for name in ("E", "A", "alpha"):
        assert fit[name]["low"] < fit[name]["high"], name
    assert fit["n_converged"] > 0.9 * fit["n_resamples"]
    # Whether the runs identify the law is stored with it, and why not in words.
    assert isinstance(fit["identified"], bool) and (fit["identified"] or fit["why"])
    assert sorted(set(fit["points"]["n_params"])) == [r["param_count"] for r in h1["budgets"]]
    # The runs' test log loss the law is fitted to is the records' own.
    assert sorted(fit["points"]["test_log_loss"]) == pytest.approx(sorted(frame["test_log_loss"]))


def test_a_planted_studys_test_rows_are_set_against_their_bayes_log_loss(run_copy):
    """The tiny study's baselines record given true probabilities of its test rows, as a
    planted study's baselines stage stores them (tests/scale/test_controls.py)."""
    path = baselines_path(run_copy, 1)
    record = json.loads(path.read_text())
    n_test = len(record["base_rate"]["predictions"]["test"])
    p = np.linspace(0.02, 0.1, n_test)
    record[TEST_PROBABILITIES] = p.tolist()
    path.write_text(json.dumps(record))
    results = build_results(run_copy)
    h1 = json.loads((run_copy / SCALING_JSON).read_text())["horizons"]["1"]
    assert h1["bayes_log_loss"] == pytest.approx(bayes_log_loss(p))
    check = h1["bayes_check"]
    # Every budget is far above a floor this low; the fitted law's E stands beside it.
    assert check["below_bayes"] == []
    assert check["E"] == h1["fit"]["E"]
    assert check["E_covers_bayes"] == (
        check["E"]["low"] <= h1["bayes_log_loss"] <= check["E"]["high"]
    )

    write_run_report(run_copy, results)
    markdown = (run_copy / "report.md").read_text()
    assert markdown.index("## Planted-scaling control") < markdown.index("## Short answer")
    assert f"Bayes log loss {bayes_log_loss(p):.4f}" in markdown
    assert markdown.index("## What this study could see") < markdown.index(
        "### Samples per parameter"
    )

    record[TEST_PROBABILITIES] = [*p.tolist(), 0.5]  # another row than the ones scored
    path.write_text(json.dumps(record))
    with pytest.raises(InputError, match="label probabilities cover"):
        build_results(run_copy)
