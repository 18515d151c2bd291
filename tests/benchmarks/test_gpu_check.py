"""The GPU check's code paths on a CPU: its dry run prints its three tables with every
row and column a card's run prints, a child stopped at its deadline hands back what it
finished, and without CUDA the plain run says so in one line and exits 0."""

import subprocess
import sys

import pytest
import torch

from tests.benchmarks.loading import BENCHMARKS, loaded_benchmark


@pytest.fixture(scope="module")
def bench():
    yield from loaded_benchmark("gpu_check")


def read_tables(out: str) -> dict[str, list[dict[str, str]]]:
    """Each markdown table under its "## title": one dict per row, by header."""
    tables: dict[str, list[dict[str, str]]] = {}
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("## "):
            headers = [c.strip() for c in lines[i + 2].strip("|").split("|")]
            rows = []
            for row in lines[i + 4 :]:
                if not row.startswith("|"):
                    break
                cells = [c.strip() for c in row.strip("|").split("|")]
                rows.append(dict(zip(headers, cells, strict=True)))
            tables[line[3:]] = rows
    return tables


def number(text: str) -> float:
    return float(text.replace(",", ""))


@pytest.mark.slow
def test_the_dry_run_prints_every_table_with_its_rows_and_columns(bench, capsys):
    anchor = bench.throughput.DEFAULT_ANCHOR
    assert bench.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    tables = read_tables(out)
    titles = {part: title for part, (title, _) in bench.TABLES.items()}
    assert list(tables) == list(titles.values())
    for part, title in titles.items():
        headers = [header for _, header, _ in bench.columns(part)]
        assert all(list(row) == headers for row in tables[title])

    throughput = tables[titles["throughput"]]
    dtype = bench.settings_of(bench.argparse.Namespace(dry_run=True, anchor=anchor)).dtype
    expected = [("finscale", dtype, "no"), ("finscale", dtype, "aot_eager")]
    if anchor.exists():  # beside the repository, as CI has it
        expected = [("anchor", d, "no") for d in dict.fromkeys(["fp32", dtype])] + expected
    for model in ("20M", "200M"):
        rows = [r for r in throughput if r["model"] == model]
        assert [(r["trainer"], r["dtype"], r["compile"]) for r in rows] == expected
        for row in rows:
            assert row["note"] == ""
            assert number(row["samples/s"]) > 0 and number(row["MFU"]) > 0
            assert (row["x anchor"] != "") == anchor.exists()
        if anchor.exists():
            assert rows[0]["x anchor"] == "1.00"

    # The dry run's memory limit takes the planner down each path.
    memory = {r["model"]: r for r in tables[titles["memory"]]}
    assert list(memory) == ["20M", "200M", "2B"]
    assert (memory["20M"]["micro-batch"], memory["20M"]["accumulation"]) == ("32", "1")
    assert (memory["200M"]["micro-batch"], memory["200M"]["accumulation"]) == ("16", "2")
    for model in ("20M", "200M"):
        assert memory[model]["measured"] != "" and memory[model]["note"] == ""
    assert memory["2B"]["measured"] == "" and memory["2B"]["estimate"] != ""
    assert memory["2B"]["note"].startswith("does not fit at micro-batch 1")

    (search,) = tables[titles["search"]]
    assert (search["budget"], search["trials"], search["finished"]) == ("20K", "2", "2")
    assert number(search["trials/hour"]) > 0 and search["note"] == ""
    assert "total:" in out.splitlines()[-1]


def test_a_child_stopped_at_its_deadline_hands_back_the_rows_it_finished(bench, monkeypatch):
    monkeypatch.setattr(bench, "MIN_CHILD_SECONDS", 0.0)
    command = [
        sys.executable,
        "-c",
        "import time; print('{\"row\": 1}', flush=True); time.sleep(60)",
    ]
    rows, note = bench.run_child(command, 2.0)
    assert rows == [{"row": 1}]
    assert note.startswith("stopped at its time budget")
    rows, note = bench.run_child([sys.executable, "-c", "raise SystemExit('broken')"], 30.0)
    assert rows == [] and note == "failed: broken"


def test_with_less_time_left_than_a_child_needs_it_is_not_started(bench):
    assert bench.run_child([sys.executable, "-c", "print('{}')"], 1.0) == (
        [],
        "skipped: time budget spent",
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_the_plain_run_says_so_in_one_line_and_exits_0():
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu_check.py")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1
    assert done.stdout.startswith("gpu_check: no CUDA device on this machine")
