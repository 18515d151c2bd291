"""`finscale grid` as a user runs it (in-process: it starts nothing)."""

import json

import pytest

from finscale.cli import main
from finscale.model import PatchTSTConfig, count_parameters
from finscale.model.memory import estimate_training_memory


@pytest.mark.parametrize("budget", ["2M", "20M", "200M", "2B"])
def test_grid_json_rebuilds_every_architecture(budget, finscale):
    code, stdout, stderr = finscale("grid", "--budget", budget, "--json", "--dtype", "fp32")
    assert code == 0, stderr
    rows = json.loads(stdout)
    assert [r["index"] for r in rows] == list(range(len(rows))) and rows
    for row in rows:
        config = PatchTSTConfig(**row["config"])
        assert count_parameters(config) == row["param_count"]
        if row["micro_batch"] is None:
            assert row["accumulation_steps"] is None and row["fits"] is False
        else:
            steps = row["accumulation_steps"]
            assert row["micro_batch"] * steps >= 128 > row["micro_batch"] * (steps - 1)
            estimate = estimate_training_memory(config, row["micro_batch"], "fp32", "cpu", steps)
            assert row["memory_bytes"] == estimate.peak_bytes


@pytest.mark.slow
def test_grid_table_says_the_data_shape_and_memory_plan(finscale):
    code, stdout, stderr = finscale(
        "grid", "--budget", "2M", "--tier", "a100", "--memory-limit", "8GB", "--dtype", "bf16"
    )
    assert code == 0, stderr
    assert "100 features x 60 days, patch 16 stride 8 (6 patches)" in stdout
    assert "memory limit 7.45 GiB (--memory-limit)" in stdout
    assert "bf16 (asked)" in stdout
    assert " 128 x 1" in stdout


def test_tight_memory_limit_excludes_architectures_instead_of_trying_them(finscale):
    code, stdout, stderr = finscale("grid", "--budget", "2M", "--memory-limit", "40MB", "--json")
    assert code == 0, stderr
    rows = json.loads(stdout)
    fits = [r for r in rows if r["fits"]]
    excluded = [r for r in rows if not r["fits"]]
    assert fits and excluded
    assert all(r["memory_bytes"] > 40e6 for r in excluded)
    assert all(r["memory_bytes"] <= 40e6 and r["micro_batch"] < 128 for r in fits)

    code, stdout, _ = finscale("grid", "--budget", "2M", "--memory-limit", "40MB")
    assert f"{len(excluded)} of {len(rows)} architectures do not fit" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "2X"], "error: budget '2X' is not a parameter count"),
        (["--budget", "10"], "nearest budgets with architectures: 130K (--budget)"),
        (["--budget", "2M", "--n-heads", "0"], "n_heads: need a non-empty list"),
        (["--budget", "2M", "--memory-limit", "lots"], "(--memory-limit)"),
        (["--budget", "2M", "--tier", "a7"], "got 'a7' (--tier)"),
        (["--budget", "2M", "--context", "8"], "shorter than a patch (16) (--context)"),
        (["--budget", "2M", "--tolerance", "2"], "(--tolerance)"),
        (["--budget", "2M", "--device", "tpu"], "(--device)"),
        (["--budget", "2M", "--dtype", "fp8"], "(--dtype)"),
        ([], "Missing option '--budget'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    code = main(["grid", *args])
    stdout, stderr = capsys.readouterr()
    assert code == 2
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
