"""Print trials per hour for 1, 2, 3 workers on one `quick`-preset study in PostgreSQL.

    python benchmarks/workers_pg.py [--budgets 20K,200K] [--workers 1,2,3] [--trials 24]

Starts a throwaway PostgreSQL server from the machine's binaries (the one the tests
use), then for each budget and worker count runs a fresh study of `--trials` trials
on its own database, as users run it:

- `hpo --workers N`: one `finscale hpo --workers N` command (N processes on one
  machine, each with its share of the cores);
- `hpo + worker`: one `finscale hpo` and N-1 `finscale worker` processes, each with
  its own run directory, as on separate machines; they find each other on the
  machine and share its cores (`CoreShare`).

Each line: wall time of the commands, trials finished, and trials per hour over the
trials' own span (first trial start to last trial end, so dataset building and
process start-up are left out) and over the whole wall time, and the most
connections the study's database had open at once.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.postgres import PostgresServer, find_bin_dir

from finscale.execution import open_storage

STUDY = "bench"


def finscale(*args: str) -> list[str]:
    # The installed command, as users run it, from this interpreter's environment.
    return [str(Path(sys.executable).parent / "finscale"), *args]


def run_case(url: str, budget: str, workers: int, trials: int, mode: str, tmp: Path) -> dict:
    hpo = [
        "hpo",
        "--preset",
        "quick",
        "--budget",
        budget,
        "--trials",
        str(trials),
        "--storage",
        url,
        "--study",
        STUDY,
        "--run-dir",
        str(tmp / "hpo"),
    ]
    commands = []
    if mode == "hpo --workers N":
        commands.append(finscale(*hpo, "--workers", str(workers)))
    else:
        commands.append(finscale(*hpo))
        for index in range(1, workers):
            commands.append(
                finscale(
                    "worker",
                    "--storage",
                    url,
                    "--study",
                    STUDY,
                    "--wait-minutes",
                    "5",
                    "--run-dir",
                    str(tmp / f"worker{index}"),
                )
            )
    env = {**os.environ, "FINSCALE_STORE": str(tmp.parent / "store")}
    started = time.perf_counter()
    peak = ConnectionPeak(url)
    procs = [
        subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    for proc, command in zip(procs, commands, strict=True):
        _, stderr = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"error: finscale {command[1]} failed: {stderr.strip()}")
    wall_s = time.perf_counter() - started
    peak.stop()
    study = optuna.load_study(study_name=STUDY, storage=open_storage(url))
    done = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    span_s = (
        max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    ).total_seconds()
    return {
        "wall_s": wall_s,
        "span_s": span_s,
        "finished": len(done),
        "peak_connections": peak.most,
    }


class ConnectionPeak:
    """The most connections the study's database had open at once (pg_stat_activity,
    sampled every 0.2 s on a thread)."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.most = 0
        self._database = url.rsplit("/", 1)[1]
        self._conn = psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
        while not self._done.wait(0.2):
            (count,) = self._conn.execute(query, (self._database,)).fetchone()
            self.most = max(self.most, count)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
        self._conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="20K,200K")
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--modes", default="hpo --workers N,hpo + worker")
    args = parser.parse_args()
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("error: no PostgreSQL binaries found (apt install postgresql)")
    # A SIGTERM ends the run through `finally`, which deletes the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    server = PostgresServer(bin_dir)
    server.start()
    print(f"cpus={os.cpu_count()} trials={args.trials} postgres={bin_dir}", flush=True)
    try:
        with tempfile.TemporaryDirectory() as root:
            case = 0
            for budget in args.budgets.split(","):
                for mode in args.modes.split(","):
                    for workers in (int(w) for w in args.workers.split(",")):
                        if mode == "hpo + worker" and workers == 1:
                            continue  # the same command as `hpo --workers 1`
                        case += 1
                        url = server.create_database(f"bench{case}")
                        tmp = Path(root) / f"case{case}"
                        tmp.mkdir()
                        r = run_case(url, budget, workers, args.trials, mode, tmp)
                        print(
                            f"budget={budget} mode={mode!r:<18} workers={workers} "
                            f"wall_s={r['wall_s']:.1f} finished={r['finished']} "
                            f"trials_per_hour_span={3600 * r['finished'] / r['span_s']:.0f} "
                            f"trials_per_hour_wall={3600 * r['finished'] / r['wall_s']:.0f} "
                            f"peak_connections={r['peak_connections']}",
                            flush=True,
                        )
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
