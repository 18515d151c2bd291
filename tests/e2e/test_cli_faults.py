"""Faults of the machine, not of the input: a full disk mid-study ends with one
`error:` line (exit 1) and the rerun resumes with every finished trial."""

import errno
import os
from pathlib import Path

import pytest

from finscale import atomic
from finscale.cli import main
from finscale.errors import os_error_line
from tests.e2e.test_cli_hpo import finished, load
from tests.hpo.conftest import TINY_BUDGET, set_flags

FULL_AT = "trial_0002.json"  # the record of the third trial meets a full disk


def hpo_args(run_dir: Path, store: Path) -> list[str]:
    return [
        *("hpo", "--budget", str(TINY_BUDGET), "--run-dir", str(run_dir)),
        *("--store", str(store), *set_flags(**{"search.trials": 5})),
    ]


def finished_values(run_dir: Path) -> dict[int, float | None]:
    return {t.number: t.value for t in finished(load(run_dir))}


@pytest.mark.slow
def test_a_full_disk_mid_study_is_one_line_and_the_rerun_resumes(tmp_path, capsys, monkeypatch):
    run_dir, store = tmp_path / "run", tmp_path / "store"
    real_write_atomic = atomic.write_atomic

    def disk_fills_up(path, write):
        if Path(path).name != FULL_AT:
            return real_write_atomic(path, write)

        def torn(tmp: Path) -> None:
            write(tmp)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write(2) says it

        return real_write_atomic(path, torn)

    monkeypatch.setattr(atomic, "write_atomic", disk_fills_up)
    assert main(hpo_args(run_dir, store)) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error: no space left on the device writing ")
    assert lines[-1].count("error:") == 1 and "Traceback" not in "\n".join(lines)
    assert str(run_dir / "trials" / FULL_AT) in lines[-1]
    assert "free space or move the run directory" in lines[-1]
    assert "rerun the same command to resume" in lines[-1]
    before = finished_values(run_dir)
    assert len(before) == 3  # trials 0-2 finished; the third's record was never written
    assert not (run_dir / "trials" / FULL_AT).exists()
    assert not list(run_dir.rglob("*.tmp")), "a temp file was left behind"

    monkeypatch.setattr(atomic, "write_atomic", real_write_atomic)
    assert main(hpo_args(run_dir, store)) == 0
    after = finished_values(run_dir)
    assert len(after) == 5
    assert {n: after[n] for n in before} == before  # resumed, nothing re-run
    assert (run_dir / "trials" / FULL_AT).exists()  # the missing record is written now


def test_every_os_error_gets_a_path_and_what_to_do():
    denied = os_error_line(OSError(errno.EACCES, "Permission denied", "/ro/run/study.json"))
    assert "cannot write /ro/run/study.json (Permission denied)" in denied
    assert "rerun the same command to resume" in denied
    other = os_error_line(OSError(errno.EIO, "Input/output error", "/disk/x.json"))
    assert other.startswith("Input/output error (/disk/x.json); fix the cause")


def test_an_atomic_write_that_fails_names_its_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "out.json"

    def fails(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    try:
        atomic.write_atomic(target, fails)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC and exc.filename == str(target)
    else:
        raise AssertionError("the failed write was not raised")
    assert list(tmp_path.iterdir()) == []
