"""`finscale train` as a user runs it."""

import json

import pytest

from finscale.model import PatchTSTConfig, count_parameters
from tests.e2e.cli import run
from tests.e2e.conftest import STARTUP_THREADS

# Three years of data: the architectures and their counts are those of the full history
# (they depend on the features and the window, not on the rows), at a fifth of the cost.
RECENT = ["--start", "2016-01-01"]


@pytest.mark.slow
def test_train_one_architecture_prints_metrics_and_writes_its_record(tmp_path, finscale):
    out = tmp_path / "result.json"
    args = ["train", "--budget", "200K", "--arch-index", "5", "--epochs", "3", "--patience", "2"]
    args += RECENT
    code, stdout, stderr = finscale(*args, "--verbose", "--out", out)
    assert code == 0, stderr
    assert "architecture 5 of 10 (budget 200K): d_model 64, 4 layers, 2 heads" in stdout
    assert "227,137 parameters" in stdout
    assert "validation metrics (best epoch)" in stdout
    for metric in ("log_loss", "brier_skill", "roc_auc", "ece", "prediction_range", "f1"):
        assert metric in stdout
    record = json.loads(out.read_text())
    assert record["arch_index"] == 5 and record["budget"] == 200_000
    config = PatchTSTConfig(**record["model_config"])
    assert count_parameters(config) == record["param_count"] == 227_137
    assert 1 <= record["epochs_run"] <= 3 and len(record["history"]) == record["epochs_run"]
    # The learning curve is printed with --verbose, one row per epoch.
    for epoch in record["history"]:
        assert f"{epoch['val_loss']:.4f}" in stdout
    assert record["dtype_reason"] in stdout


@pytest.mark.slow
def test_train_json_is_the_record_and_repeats_exactly(tmp_path, finscale):
    args = ["train", "--budget", "200K", "--arch-index", "0", "--epochs", "1", "--json"]
    args += ["--device", "cpu", "--dtype", "fp32", "--seed", "3", *RECENT]
    # Once in the installed script, once in this process: the seed fixes the result across
    # processes (another hash seed, other RNG state before the call), on as many threads
    # (another count sums the float32 reductions in another order).
    threads = str(STARTUP_THREADS)
    first, second = run(args, tmp_path, OMP_NUM_THREADS=threads), finscale(*args)
    assert first[0] == 0 and second[0] == 0, first[2] + second[2]
    a, b = json.loads(first[1]), json.loads(second[1])
    assert a["val_metrics"] == b["val_metrics"]
    assert a["dtype"] == "fp32" and a["train_config"]["seed"] == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--arch-index", "10"], "budget 200K has 10 architectures (0 to 9), not 10"),
        (
            ["--arch-index", "0", "--lr", "0"],
            "train.learning_rate: Input should be greater than 0, got 0.0 (--lr)",
        ),
        (["--arch-index", "0", "--pos-weight", "many"], "(--pos-weight)"),
        (
            ["--arch-index", "0", "--micro-batch", "500"],
            "500 is larger than effective_batch 128 (--micro-batch)",
        ),
        (["--arch-index", "0", "--out", "result.txt"], "must be a .json file"),
        (["--arch-index", "0", "--device", "cuda:7"], "(--device)"),
    ],
)
def test_bad_train_options_give_one_error_line(extra, message, tmp_path, finscale):
    code, _stdout, stderr = finscale("train", "--budget", "200K", *extra)
    assert code == 2
    assert stderr.startswith("error: ") and message in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "result.txt").exists()
