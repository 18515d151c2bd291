"""optuna-dashboard, which the README recommends for watching a study, reads the journal
that `finscale hpo` writes: the README's command serves it and its API lists the study."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest

from finscale.cli import main
from tests.hpo.conftest import TINY_BUDGET, set_flags

pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is the `dashboard` extra")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str, server: subprocess.Popen, timeout_s: float = 60):
    """The JSON of `url`, polled until the server answers (it takes a second or two)."""
    deadline = time.time() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return json.load(response)
        except OSError as exc:  # refused while it starts, or a timeout under load
            if server.poll() is not None:
                raise AssertionError(f"optuna-dashboard exited: {server.communicate()}") from exc
            if time.time() > deadline:
                raise AssertionError(f"{url} did not answer within {timeout_s} s") from exc
            time.sleep(0.2)


@pytest.mark.slow
def test_optuna_dashboard_lists_the_study_of_a_finscale_journal(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FINSCALE_STORE", str(tmp_path / "store"))
    run_dir = tmp_path / "run"
    flags = set_flags(**{"search.trials": 2, "train.max_epochs": 1, "train.patience": 1})
    assert main(["hpo", "--budget", str(TINY_BUDGET), "--run-dir", str(run_dir), *flags]) == 0
    capsys.readouterr()
    journal = run_dir / "study.journal"
    name = json.loads((run_dir / "study.json").read_text())["study_name"]

    port = free_port()
    script = os.path.join(os.path.dirname(sys.executable), "optuna-dashboard")
    # The README's command: the journal path as the storage.
    server = subprocess.Popen(
        [script, str(journal), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}/api/studies"
    try:
        listed = get_json(base, server)["study_summaries"]
        assert [study["study_name"] for study in listed] == [name]
        assert listed[0]["directions"] == ["minimize"]
        # It reads the trials too, with the attributes finscale writes on them.
        trials = get_json(f"{base}/{listed[0]['study_id']}", server)["trials"]
    finally:
        server.terminate()
        server.communicate(timeout=30)
    # The same trials as the journal holds (two run; forced extremes wait in the queue).
    backend = optuna.storages.journal.JournalFileBackend(str(journal))
    stored = optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(backend))
    assert [(t["number"], t["state"].upper()) for t in trials] == [
        (t.number, t.state.name) for t in stored.trials
    ]
    complete = [t for t in trials if t["state"] == "Complete"]
    assert len(complete) == 2
    assert all("worker" in {a["key"] for a in t["user_attrs"]} for t in complete)
