"""The records that cross the layers: each survives a round trip through its on-disk
form, and that form has exactly the keys the files have always had."""

import json

import pytest

from finscale.analysis import (
    BaselineComparison,
    CalibrationScores,
    CalibrationSummary,
    CrossBudgetCell,
    EvaluationRun,
    MetricSummary,
    PairedDifference,
    ReliabilityBins,
    ScalingRow,
    SplitScores,
    Winner,
)

# The keys of evaluation/{study}/seed_{k}.json (seconds_per_epoch only where the
# winner's epoch time was measured).
EVALUATION_KEYS = {
    "fold",
    "data_fraction",
    "test_symbols",
    "train_span",
    "next_day_returns",
    "accumulation",
    "architecture",
    "best_epoch",
    "budget",
    "device",
    "dtype",
    "effective_batch",
    "epochs",
    "horizon_days",
    "hpo_val_log_loss",
    "key",
    "labels",
    "learning_curve",
    "micro_batch",
    "n_train",
    "params",
    "predictions",
    "samples_per_param",
    "samples_per_second",
    "seconds_per_epoch",
    "seed",
    "stopped_early",
    "study",
    "test_dates",
    "test_metrics",
    "tier",
    "train_seconds",
    "trial",
    "val_metrics",
}
# The keys of cross_budget/h{h}/{A}_to_{B}.json.
CROSS_BUDGET_KEYS = {
    "architecture",
    "architecture_of",
    "epochs",
    "key",
    "params",
    "seed",
    "train_seconds",
    "val_log_loss",
    "values_from",
}
# The keys of a budget's row of scaling.json (horizons.{h}.budgets[i]).
SCALING_ROW_KEYS = {
    "hpo_compute",
    "transfer",
    "folds",
    "sharpe",
    "dsr",
    "psr",
    "pbo",
    "architecture",
    "budget",
    "budget_label",
    "calibration",
    "data_limited",
    "epochs",
    "hpo_trial",
    "hpo_val_log_loss",
    "metrics",
    "n_train",
    "param_count",
    "params",
    "samples_per_param",
    "seeds",
    "study",
    "val_log_loss",
    "vs_baselines",
}
WINNER_KEYS = {
    "architecture",
    "budget",
    "horizon_days",
    "hpo_val_log_loss",
    "params",
    "seconds_per_epoch",
    "study",
    "trial",
}

ARCHITECTURE = {
    "d_ff": 32,
    "d_model": 8,
    "index": 2,
    "n_heads": 2,
    "n_layers": 1,
    "param_count": 4273,
}
PARAMS = {"dropout": 0.2, "learning_rate": 1.7e-4, "warmup_steps": 2, "weight_decay": 3.2e-3}
METRICS = {"log_loss": 0.61, "roc_auc": 0.55, "n_samples": 4}


def winner(**changes) -> Winner:
    fields = {
        "study": "a25_4K_h1",
        "budget": 4000,
        "horizon_days": 1,
        "trial": 1,
        "hpo_val_log_loss": 0.63,
        "architecture": ARCHITECTURE,
        "params": PARAMS,
        "seconds_per_epoch": 0.19,
    }
    return Winner(**{**fields, **changes})


def evaluation_run(**changes) -> EvaluationRun:
    fields = {
        "key": "9b7a14577aeebed3",
        "tier": "a25",
        "seed": 1,
        "winner": winner(),
        "micro_batch": 128,
        "accumulation_steps": 2,
        "effective_batch": 256,
        "epochs_run": 3,
        "best_epoch": 2,
        "stopped_early": False,
        "device": "cpu",
        "dtype": "fp32",
        "train_seconds": 8.5,
        "samples_per_second": 272.8,
        "n_train": 1155,
        "samples_per_param": 0.27,
        "val_metrics": METRICS,
        "test_metrics": {**METRICS, "log_loss": 0.66},
        "learning_curve": ({"epoch": 1, "train_loss": 0.69, "val_loss": 0.59},),
        "predictions": {"val": [0.4, 0.6], "test": [0.3, 0.5, 0.7, 0.2]},
        "labels": {"val": [0, 1], "test": [0, 1, 1, 0]},
        "test_dates": ("2018-01-02", "2018-01-03", "2018-01-04", "2018-01-05"),
        "fold": 2,
        "train_span": ("2009-01-02", "2017-12-29"),
        "next_day_returns": {"val": [0.01, -0.02], "test": [0.0, 0.01, -0.01, 0.02]},
    }
    return EvaluationRun(**{**fields, **changes})


def cross_budget_cell() -> CrossBudgetCell:
    return CrossBudgetCell(
        key="ab2ae1aa0838b400",
        values_from=32000,
        architecture_of=4000,
        architecture=ARCHITECTURE,
        params=PARAMS,
        val_log_loss=0.6337,
        epochs_run=2,
        train_seconds=1.53,
        seed=3,
    )


LOG_LOSS = MetricSummary(
    mean=0.66,
    per_seed=(0.65, 0.67),
    seed_std=0.014,
    seed_low=0.53,
    seed_high=0.79,
    boot_low=0.6,
    boot_high=0.7,
    n_seeds=2,
    n_resamples=100,
    n_valid_resamples=100,
)
DIFFERENCE = PairedDifference(
    metric="log_loss",
    level=0.95,
    n_resamples=100,
    difference=0.01,
    low=-0.02,
    high=0.04,
    lower_is_better=True,
    verdict="no detectable difference",
    spread=0.015,
    date_spread=0.012,
    seed_spread=0.009,
    mde=0.042,
)
SCORES = CalibrationScores(ece=0.05, brier=0.24, log_loss=0.67)
# An empty bin: scaling.json holds its NaN means as null.
BINS = ReliabilityBins(
    bin_edges=(0.0, 0.5, 1.0), mean_predicted=(0.3, None), observed_rate=(0.4, None), count=(4, 0)
)


def scaling_row() -> ScalingRow:
    return ScalingRow(
        budget=4000,
        budget_label="4K",
        study="a25_4K_h1",
        hpo_trial=1,
        hpo_val_log_loss=0.63,
        architecture=ARCHITECTURE,
        param_count=4273,
        params=PARAMS,
        n_train=1155,
        samples_per_param=0.27,
        data_limited=True,
        seeds=2,
        epochs_run=(2, 3),
        metrics={"log_loss": LOG_LOSS},
        val_log_loss=(0.61, 0.62),
        vs_baselines={
            "base_rate": BaselineComparison(log_loss=DIFFERENCE, roc_auc=DIFFERENCE, beats=False)
        },
        calibration=CalibrationSummary(
            skipped="one class",
            methods={"uncalibrated": SplitScores(test=SCORES)},
            best=None,
            reliability={"uncalibrated": BINS},
        ),
    )


RECORDS = [
    (winner(), WINNER_KEYS),
    (evaluation_run(), EVALUATION_KEYS),
    (cross_budget_cell(), CROSS_BUDGET_KEYS),
    (scaling_row(), SCALING_ROW_KEYS),
]


@pytest.mark.parametrize(("record", "keys"), RECORDS, ids=lambda x: type(x).__name__)
def test_a_record_round_trips_through_json_with_todays_keys(record, keys):
    data = record.to_dict()
    assert set(data) == keys
    # Through real JSON: tuples come back as lists and must still compare equal.
    loaded = json.loads(json.dumps(data))
    assert type(record).from_dict(loaded) == record
    assert type(record).from_dict(loaded).to_dict() == loaded


def test_the_training_loops_names_are_written_under_the_files_names():
    data = evaluation_run(accumulation_steps=4, epochs_run=7).to_dict()
    assert (data["accumulation"], data["epochs"]) == (4, 7)
    assert "accumulation_steps" not in data and "epochs_run" not in data
    assert cross_budget_cell().to_dict()["epochs"] == 2
    assert scaling_row().to_dict()["epochs"] == [2, 3]


def test_a_cross_budget_cell_of_an_older_version_reads_as_trained_with_seed_0():
    # Older versions wrote no seed: their cells trained with seed 0, the search's own.
    data = {k: v for k, v in cross_budget_cell().to_dict().items() if k != "seed"}
    assert CrossBudgetCell.from_dict(data).seed == 0


def test_an_evaluation_run_holds_its_winner_flat_as_the_files_do():
    data = evaluation_run().to_dict()
    for key, value in winner().to_dict().items():
        assert data[key] == value
    assert EvaluationRun.from_dict(data).winner == winner()


def test_an_unmeasured_epoch_time_is_left_out_of_the_file():
    unmeasured = winner(seconds_per_epoch=None)
    assert set(unmeasured.to_dict()) == WINNER_KEYS - {"seconds_per_epoch"}
    run = evaluation_run(winner=unmeasured)
    assert "seconds_per_epoch" not in run.to_dict()
    assert EvaluationRun.from_dict(run.to_dict()) == run
