"""The CLI as a user runs it. Most commands are called in-process (`finscale.cli.main`
returns the exit code; the output is captured), which is the same code path as the
installed script less a second of interpreter and import start-up per call; the tests
that need a real process (signals, kill -9, spawned workers, racing machines) run the
installed script with `tests.e2e.cli.run` or `start`."""

import pytest
import torch

from finscale.cli import main
from tests.e2e.cli import kill_started

# A fresh process's thread count: a command that shares the cores among workers sets its
# own, and the next in-process call must start from where a new process would.
STARTUP_THREADS = torch.get_num_threads()


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test():
    yield
    kill_started()


@pytest.fixture
def finscale(tmp_path, monkeypatch, capsys):
    """Call `finscale ARGS...` in-process from `tmp_path` (relative paths land there) with
    the store in `tmp_path/store`; returns (exit code, stdout, stderr) of that call alone."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FINSCALE_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("COLUMNS", "200")

    def call(*args) -> tuple[int, str, str]:
        capsys.readouterr()
        torch.set_num_threads(STARTUP_THREADS)
        try:
            code = main([str(arg) for arg in args])
        finally:
            torch.set_num_threads(STARTUP_THREADS)
        stdout, stderr = capsys.readouterr()
        return code, stdout, stderr

    return call
