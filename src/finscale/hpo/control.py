"""Stopping a study gracefully, and watching the machine it runs on.

A stop is requested by Ctrl-C, SIGTERM, `finscale stop RUN_DIR` (a STOP file
in the run directory, seen by every worker of the study) or the study's
deadline. The trial in flight finishes its current epoch, is recorded as
failed-for-resume and re-queued, and the worker exits cleanly.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

STOP_FILE = "STOP"


def request_stop(run_dir: Path) -> Path:
    """Ask every worker of the study in `run_dir` to stop after its current epoch."""
    from finscale.atomic import write_text_atomic

    return write_text_atomic(run_dir / STOP_FILE, f"stop requested by pid {os.getpid()}\n")


def clear_stop(run_dir: Path) -> None:
    (run_dir / STOP_FILE).unlink(missing_ok=True)


class StopSignal:
    """Whether this worker should stop, and why. Installs SIGINT/SIGTERM handlers
    while used as a context manager; a second Ctrl-C stops at once."""

    def __init__(self, run_dir: Path, deadline: float | None = None) -> None:
        self.run_dir = run_dir
        self.deadline = deadline  # time.time() after which no new epoch starts
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
        if self.reason is None and self.deadline is not None and time.time() >= self.deadline:
            self.reason = "the study's time limit (--timeout-hours) was reached"
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

    def __init__(self, device_type: str = "cpu") -> None:
        self.process = psutil.Process()
        self.process.cpu_percent()  # the first call only starts the interval
        self.device_type = device_type
        self.started = time.time()

    def sample(self, epoch: int) -> dict[str, Any]:
        record: dict[str, Any] = {
            "epoch": epoch,
            "seconds": round(time.time() - self.started, 3),
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
