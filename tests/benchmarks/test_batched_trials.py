"""The batched-trials benchmark's code paths on a tiny architecture: K trials trained as
one stacked model end where the trainer's K optimizer steps end, and the table prints
one row per K with positive figures."""

import pytest
import torch

from tests.benchmarks.loading import loaded_benchmark

TINY = "8,1,2"  # d_model, n_layers, n_heads on the quick preset's data shape: 4K parameters


@pytest.fixture(scope="module")
def bench():
    yield from loaded_benchmark("batched_trials")


@pytest.mark.parametrize("grad_clip", [1.0, 0.01])  # 0.01 clips every model, every step
def test_k_batched_trials_end_where_the_trainers_k_steps_end(bench, grad_clip):
    config = bench.preset_architecture("20K", TINY)
    exact = bench.faithfulness(config, k=3, grad_clip=grad_clip)
    # The weights moved by ~the learning rates (1e-4 to 3e-3 a step); the two ways
    # differ only by float64 rounding.
    assert exact.max_movement > 1e-3
    assert exact.max_abs_difference <= bench.FLOAT64_TOLERANCE
    rounded = bench.faithfulness(config, k=3, grad_clip=grad_clip, float_dtype=torch.float32)
    assert rounded.max_abs_difference < 1e-4


def test_the_median_architecture_of_the_20k_grid_is_about_20k_parameters(bench):
    config = bench.preset_architecture("20K")
    assert 15_000 <= bench.PatchTST(config).num_parameters() <= 25_000


def test_the_table_prints_one_row_per_k_with_positive_figures(bench, capsys):
    argv = ["--k", "1,2", "--steps", "1", "--warmup", "0", "--rounds", "1"]
    assert bench.main([*argv, "--batch", "8", "--arch", TINY]) == 0
    out = capsys.readouterr().out
    assert "float64 (tolerance 1e-12)" in out
    rows = [line.strip("|").split("|") for line in out.splitlines() if line.startswith("| ")]
    header, *rows = rows
    assert [c.strip() for c in header] == [
        "K",
        "seq samples/s",
        "batched samples/s",
        "speed-up",
        "memory",
    ]
    assert [int(row[0]) for row in rows] == [1, 2]
    for row in rows:
        seq, batched, speed_up = (float(c.replace(",", "")) for c in row[1:4])
        assert seq > 0 and batched > 0 and speed_up > 0
        assert row[4].strip().endswith("MiB")
