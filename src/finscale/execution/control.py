"""Stopping a study gracefully, and watching and sharing the machine it runs on.

A stop is requested by Ctrl-C, SIGTERM, `finscale stop RUN_DIR` (a STOP file
in the run directory, seen by every worker of the study) or the study's
deadline. The trial in flight finishes its current epoch, is recorded as
failed-for-resume and re-queued, and the worker exits cleanly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from finscale.atomic import try_lock, write_text_atomic

STOP_FILE = "STOP"


def request_stop(run_dir: Path) -> Path:
    """Ask every worker of the study in `run_dir` to stop after its current epoch."""
    return write_text_atomic(run_dir / STOP_FILE, f"stop requested by pid {os.getpid()}\n")


def clear_stop(run_dir: Path) -> None:
    (run_dir / STOP_FILE).unlink(missing_ok=True)


class StopRequested(Exception):
    """A stop was asked for (a signal, a STOP file, a deadline) and seen between two
    epochs; the unit in flight was not written, and a rerun resumes it."""


class StopSignal:
    """Whether this worker should stop, and why. Installs SIGINT/SIGTERM handlers
    while used as a context manager; a second Ctrl-C stops at once."""

    def __init__(
        self,
        run_dir: Path,
        deadline: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.run_dir = run_dir
        self.deadline = deadline  # clock() after which no new epoch starts
        self.clock = clock  # time.time: the deadline is a wall-clock time, shared by workers
        self.reason: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignal:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.reason = self.reason or f"{signal.Signals(signum).name} received"

    def requested(self) -> str | None:
        """The reason to stop, or None to go on."""
        if self.reason is None and (self.run_dir / STOP_FILE).exists():
            self.reason = f"stop requested ({self.run_dir / STOP_FILE})"
        if self.reason is None and self.deadline is not None and self.clock() >= self.deadline:
            self.reason = "the study's time limit was reached"
        return self.reason


def max_temperature_c() -> float | None:
    """The hottest sensor psutil can read, or None where the OS exposes none."""
    read = getattr(psutil, "sensors_temperatures", None)
    if read is None:
        return None
    try:
        sensors = read()
    except (OSError, RuntimeError):
        return None
    readings = [t.current for entries in sensors.values() for t in entries if t.current]
    return max(readings) if readings else None


class ResourceMonitor:
    """Samples this process's resident memory and CPU use, GPU memory and the
    machine's temperature, once per epoch."""

    def __init__(self, device_type: str = "cpu", clock: Callable[[], float] = time.time) -> None:
        self.process = psutil.Process()
        self.process.cpu_percent()  # the first call only starts the interval
        self.device_type = device_type
        self.clock = clock
        self.started = clock()

    def sample(self, epoch: int) -> dict[str, Any]:
        record: dict[str, Any] = {
            "epoch": epoch,
            "seconds": round(self.clock() - self.started, 3),
            "rss_bytes": self.process.memory_info().rss,
            "cpu_percent": self.process.cpu_percent(),
            "temperature_c": max_temperature_c(),
        }
        if self.device_type == "cuda":
            import torch

            record["gpu_memory_bytes"] = torch.cuda.memory_allocated()
            record["gpu_peak_memory_bytes"] = torch.cuda.max_memory_allocated()
        return record


def wait_until_cool(
    max_temp_c: float | None,
    stop: StopSignal,
    read: Callable[[], float | None] = max_temperature_c,
    poll_seconds: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Pause while the machine is hotter than `max_temp_c`; returns seconds paused.
    A stop request ends the pause. With no limit or no sensor it returns at once."""
    if max_temp_c is None:
        return 0.0
    paused = 0.0
    while stop.requested() is None:
        current = read()
        if current is None or current <= max_temp_c:
            break
        sleep(poll_seconds)
        paused += poll_seconds
    return paused


class CoreShare:
    """This process's share of the CPU cores among the finscale workers running on
    the machine, whichever command started them (`hpo --workers N`, several
    `finscale worker`, a `scale` beside workers).

    Two processes that each run torch on every core fight over them: on 2 cores,
    two small-model workers with 2 threads each train about 3 times slower than
    with 1 thread each (OpenMP threads spin waiting for a descheduled sibling).
    Each worker therefore holds a lock on its own file in a per-user folder of the
    machine, naming the cores it may run on; the kernel drops the lock when the
    process ends, however it ends. `threads()` counts the live workers whose
    cores overlap this one's and gives it its share; it is asked again before
    every trial, so workers that start or stop later rebalance the rest.

    The process's torch thread count is given back on exit: a share belongs to
    the work inside the block, and what runs after it (the scaling study's next
    stage, the next test) trains on the threads it had, so that two runs of the
    same unit before and after a search round their sums alike."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or Path(tempfile.gettempdir()) / f"finscale-workers-{os.getuid()}"
        self.cores = _cores()
        self._handle: Any = None
        self._path: Path | None = None
        self._threads: int | None = None

    def __enter__(self) -> CoreShare:
        import torch

        self._threads = torch.get_num_threads()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._path = self.folder / f"{os.getpid()}.cores"
        # Locked before it is visible under its name, so nobody takes it for a
        # dead worker's file in between.
        staging = self.folder / f".{os.getpid()}.{time.monotonic_ns()}"
        self._handle = open(staging, "w")  # held open: the lock lives as long as it
        try_lock(self._handle)
        self._handle.write(",".join(map(str, sorted(self.cores))))
        self._handle.flush()
        staging.replace(self._path)
        return self

    def __exit__(self, *exc_info: object) -> None:
        import torch

        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._path.unlink()
            self._handle.close()
            self._handle = None
        if self._threads is not None:
            torch.set_num_threads(self._threads)
            self._threads = None

    def sharing(self) -> int:
        """Live workers on this machine whose cores overlap this one's (itself included)."""
        count = 1 if self._handle is not None else 0
        for path in self.folder.glob("*.cores"):
            if path == self._path:
                continue
            cores = _live_cores(path)
            if cores is not None and cores & self.cores:
                count += 1
        return count

    def threads(self) -> int:
        """Torch threads for this worker: its cores divided among the workers on them."""
        return max(1, len(self.cores) // max(1, self.sharing()))


def _cores() -> set[int]:
    """The cores this process may run on (a Slurm task or a container may hold fewer
    than the machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def _live_cores(path: Path) -> set[int] | None:
    """The cores named in a worker's file while its worker lives; None once it has
    ended (its file is then removed)."""
    try:
        with open(path) as handle:
            if not try_lock(handle):
                text = handle.read()
                return {int(c) for c in text.split(",") if c.strip().isdigit()}
            path.unlink(missing_ok=True)  # a worker that died without removing it
            return None
    except OSError:
        return None
