"""`finscale fit-law` on tables of runs, as a user calls it."""

import json

import numpy as np
import pandas as pd
import pytest

from finscale.analysis.joint_law import NAMES, joint_law
from tests.analysis.test_joint_law import CHINCHILLA


@pytest.fixture
def runs_csv(tmp_path):
    """Single runs drawn from Chinchilla's law with 1% noise: 5 model sizes x 6 token counts."""
    rng = np.random.default_rng(5)
    n = np.repeat(np.geomspace(7e7, 1.6e10, 5), 6)
    d = np.tile(np.geomspace(5e9, 5e11, 6), 5)
    loss = joint_law(n, d, *(CHINCHILLA[k] for k in NAMES)) * np.exp(rng.normal(0, 0.01, n.size))
    path = tmp_path / "runs.csv"
    pd.DataFrame({"params": n, "tokens": d, "loss": loss, "name": "run"}).to_csv(path, index=False)
    return path


def test_fit_law_prints_the_joint_law_as_json(runs_csv, finscale):
    args = ["fit-law", runs_csv, "--params-col", "params", "--data-col", "tokens"]
    code, stdout, stderr = finscale(*args, "--loss-col", "loss", "--bootstrap", "200", "--json")
    assert code == 0, stderr
    out = json.loads(stdout)
    assert out["n_runs"] == 30 and set(out["intervals"]) == set(NAMES)
    for name in NAMES:
        low, high = out["intervals"][name]
        assert low <= CHINCHILLA[name] <= high, name
    # the same seed gives the same intervals; another seed other ones
    again = json.loads(finscale(*args, "--loss-col", "loss", "--bootstrap", "200", "--json")[1])
    assert again["intervals"] == out["intervals"]
    other = json.loads(
        finscale(*args, "--loss-col", "loss", "--bootstrap", "200", "--seed", "1", "--json")[1]
    )
    assert other["intervals"] != out["intervals"]


def test_fit_law_without_a_data_column_fits_l_of_n(runs_csv, finscale, tmp_path):
    # One data size per model: the L(N) part of the law plus a constant.
    table = pd.read_csv(runs_csv)
    largest = table[table["tokens"] == table["tokens"].max()]
    path = tmp_path / "by_size.csv"
    largest.to_csv(path, index=False)
    code, stdout, stderr = finscale(
        "fit-law", path, "--params-col", "params", "--loss-col", "loss", "--bootstrap", "100"
    )
    assert code == 0, stderr
    assert "L(N) = E + A * N^-alpha" in stdout and "alpha" in stdout and "beta" not in stdout
    code, stdout, _ = finscale(
        *("fit-law", path, "--params-col", "params", "--loss-col", "loss", "--json"),
        *("--bootstrap", "100"),
    )
    out = json.loads(stdout)
    assert set(out["intervals"]) == {"E", "A", "alpha"} and out["n_runs"] == 5


def test_bad_tables_are_one_line_errors(runs_csv, finscale, tmp_path):
    table = pd.read_csv(runs_csv)
    negative = tmp_path / "negative.csv"
    table.assign(loss=-table["loss"]).to_csv(negative, index=False)
    one_size = tmp_path / "one_size.csv"
    table.assign(tokens=1e10).to_csv(one_size, index=False)
    cases = [
        ((runs_csv, "--params-col", "size", "--loss-col", "loss"), "no column 'size'"),
        ((runs_csv, "--params-col", "name", "--loss-col", "loss"), "is not numeric in row 2"),
        ((negative, "--params-col", "params", "--loss-col", "loss"), "must be positive"),
        (
            (one_size, "--params-col", "params", "--data-col", "tokens", "--loss-col", "loss"),
            "fit L(N) without --data-col",
        ),
        ((tmp_path / "absent.csv", "--params-col", "p", "--loss-col", "l"), "no such file"),
        (
            (runs_csv, "--params-col", "params", "--loss-col", "loss", "--bootstrap", "0"),
            "--bootstrap",
        ),
    ]
    for args, message in cases:
        code, stdout, stderr = finscale("fit-law", *args)
        lines = stderr.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), stderr
        assert message in lines[0] and stdout == ""
