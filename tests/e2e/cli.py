"""The installed `finscale` script in a real process, for the tests that need one
(signals, kill -9, spawned workers, several machines on one study, the script's own exit
code); everything else calls the CLI in-process through the `finscale` fixture."""

import contextlib
import os
import signal
import subprocess
import sys

from finscale.cli import main

SCRIPT = os.path.join(os.path.dirname(sys.executable), "finscale")
# Every process `start` began, so a failed test leaves none running (see kill_started).
STARTED: list[subprocess.Popen] = []


def script_env(tmp_path, **env) -> dict[str, str]:
    """The environment of a user with the store in `tmp_path/store` and a wide terminal.

    One OpenMP thread per process unless `env` says otherwise: these tests run several
    processes side by side (workers, a head and its spawned children) on a machine of
    two cores, where two spinning threads each slow a small training step tenfold."""
    return {
        **os.environ,
        "FINSCALE_STORE": str(tmp_path / "store"),
        "COLUMNS": "200",
        "OMP_NUM_THREADS": "1",
        **env,
    }


def run(args, tmp_path, **env) -> tuple[int, str, str]:
    """Run the installed script in `tmp_path` to its end; returns (exit code, stdout, stderr)."""
    proc = subprocess.run(
        [SCRIPT, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=script_env(tmp_path, **env),
    )
    return proc.returncode, proc.stdout, proc.stderr


def start(args, tmp_path, **env) -> subprocess.Popen:
    """Start the installed script in `tmp_path`, its stdout and stderr piped, in a session
    of its own (with the workers it spawns)."""
    proc = subprocess.Popen(
        [SCRIPT, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=script_env(tmp_path, **env),
        start_new_session=True,
    )
    STARTED.append(proc)
    return proc


def kill_started() -> None:
    """Kill what is left of every process `start` began, spawned workers included."""
    while STARTED:
        proc = STARTED.pop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=30)


def assert_one_line_errors(cases, capsys):
    """Each command of `cases` (argument lists) exits 2 with one `error: ` line on stderr."""
    for args in cases:
        code = main(args)
        stderr = capsys.readouterr().err
        assert code == 2, (args, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, stderr)
