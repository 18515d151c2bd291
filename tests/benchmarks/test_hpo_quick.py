"""hpo_quick's side-by-side mode: the two checkouts alternate which goes first, the ratio
is of their medians, and a path holding no finscale is one error line."""

import argparse
import subprocess
import sys

import pytest

from tests.benchmarks.loading import BENCHMARKS, loaded_benchmark


@pytest.fixture(scope="module")
def bench():
    yield from loaded_benchmark("hpo_quick")


def test_checkouts_alternate_and_the_ratio_is_of_their_medians(
    bench, monkeypatch, capsys, tmp_path
):
    other = tmp_path / "src"  # the runs are recorded, not made: a package marker will do
    (other / "finscale").mkdir(parents=True)
    (other / "finscale" / "__init__.py").write_text("")
    rates = {"this": iter([300.0, 100.0, 200.0]), "other": iter([100.0, 50.0, 400.0])}
    order = []

    def recorded(src, job):
        label = "other" if src == other else "this"
        order.append((label, job["store"].rsplit("/", 1)[-1]))
        return {
            "wall_s": 1.0,
            "trials_per_hour": next(rates[label]),
            "epoch_share": 0.5,
            "epochs": 10,
            "best": 0.5,
            "complete": 2,
            "pruned": 0,
            "duplicates": 0,
            "failed": 0,
        }

    monkeypatch.setattr(bench, "run_in_checkout", recorded)
    args = argparse.Namespace(
        against=str(other), seeds="0", rounds=3, trials=2, workers=1, budget="20K"
    )
    bench.compare(args, 20_000, {"pruning+duplicates": {}})
    out = capsys.readouterr().out.splitlines()
    # First this, then the other; the next round the other first: each checkout leads
    # as often as the machine allows, and each keeps its own data cache.
    assert [line.split()[0] for line in out[:6]] == [
        "checkout=this",
        "checkout=other",
        "checkout=other",
        "checkout=this",
        "checkout=this",
        "checkout=other",
    ]
    assert [label for label, _store in order] == [line.split()[0][9:] for line in out[:6]]
    assert all(label == store for label, store in order)
    assert out[-1].startswith("variant=pruning+duplicates median trials_per_hour:")
    assert "this=200 other=100 ratio=2.00x" in out[-1]


def test_a_path_without_finscale_is_one_error_line(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "hpo_quick.py"), "--against", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: --against {tmp_path} holds no finscale package (give its src/)"
    ]
    assert done.stdout == ""
