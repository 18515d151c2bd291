"""Stop requests and machine monitoring."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from finscale.execution.control import (
    CoreShare,
    ResourceMonitor,
    StopSignal,
    clear_stop,
    request_stop,
    wait_until_cool,
)


def test_stop_file_and_deadline_are_seen_with_their_reason(tmp_path):
    stop = StopSignal(tmp_path)
    assert stop.requested() is None
    request_stop(tmp_path)
    assert "stop requested" in stop.requested()
    clear_stop(tmp_path)
    assert StopSignal(tmp_path).requested() is None
    now = [999.9]
    timed = StopSignal(tmp_path, deadline=1000.0, clock=lambda: now[0])
    assert timed.requested() is None  # a tenth of a second early
    now[0] = 1000.0
    assert "time limit was reached" in timed.requested()
    now[0] = 0.0
    assert "time limit was reached" in timed.requested()  # once seen, the reason stays


def test_sigterm_sets_the_reason_and_handlers_are_restored(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    with StopSignal(tmp_path) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested() == "SIGTERM received"
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_hot_machine_pauses_until_it_cools(tmp_path):
    readings = iter([92.0, 90.0, 86.0, 84.0, 99.0])
    slept = []
    paused = wait_until_cool(
        85.0, StopSignal(tmp_path), read=lambda: next(readings), poll_seconds=30, sleep=slept.append
    )
    assert paused == 90 and slept == [30, 30, 30]


def test_a_stop_request_ends_the_pause_and_no_limit_or_sensor_never_pauses(tmp_path):
    stop = StopSignal(tmp_path)

    def hot_then_stop():
        request_stop(tmp_path)
        return 120.0

    assert wait_until_cool(85.0, stop, read=hot_then_stop, sleep=lambda s: None) == 30
    assert wait_until_cool(None, StopSignal(tmp_path), read=lambda: 200.0) == 0
    clear_stop(tmp_path)
    assert wait_until_cool(85.0, StopSignal(tmp_path), read=lambda: None) == 0


def test_resource_samples_hold_memory_cpu_and_seconds_since_the_start():
    now = [50.0]
    monitor = ResourceMonitor("cpu", clock=lambda: now[0])
    started_wall, started_cpu = time.monotonic(), time.process_time()
    while time.process_time() - started_cpu < 0.3:  # busy: the CPU share is measurable
        pass
    wall, cpu = time.monotonic() - started_wall, time.process_time() - started_cpu
    now[0] = 62.5
    sample = monitor.sample(epoch=1)
    assert sample["epoch"] == 1 and sample["seconds"] == 12.5
    # Resident memory as the OS reports it, CPU use as this process measured it itself.
    assert sample["rss_bytes"] == pytest.approx(psutil.Process().memory_info().rss, rel=0.1)
    assert sample["cpu_percent"] == pytest.approx(100 * cpu / wall, rel=0.5)
    assert "temperature_c" in sample


HOLD_A_SHARE = """
import sys, time
from pathlib import Path
from finscale.execution.control import CoreShare
share = CoreShare(Path(sys.argv[1]))
if sys.argv[2] != "same":
    share.cores = {10_000}  # a worker pinned to other cores (another Slurm task)
with share:
    print("holding", flush=True)
    time.sleep(300)  # a real process holding its share until the test kills it
"""


def _hold_shares(folder, *cores):
    """One process per entry of `cores` ("same" or "other"), started together (each
    pays the package import), returned once every one holds its share."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HOLD_A_SHARE, str(folder), which],
            stdout=subprocess.PIPE,
            text=True,
        )
        for which in cores
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "holding"
    return procs


@pytest.mark.slow
def test_workers_on_one_machine_share_its_cores_and_a_dead_one_gives_them_back(tmp_path):
    with CoreShare(tmp_path) as share:
        cores = len(share.cores)
        assert share.sharing() == 1 and share.threads() == cores
        others = _hold_shares(tmp_path, "same", "same", "other")
        try:
            # The worker on other cores does not count.
            assert share.sharing() == 3
            assert share.threads() == max(1, cores // 3)
            others[0].send_signal(signal.SIGKILL)
            others[0].wait(timeout=30)
            assert share.sharing() == 2
            assert not (tmp_path / f"{others[0].pid}.cores").exists()
            assert (tmp_path / f"{others[1].pid}.cores").exists()
        finally:
            for proc in others:
                proc.kill()
                proc.wait(timeout=30)
        assert share.sharing() == 1
    assert list(tmp_path.glob("*.cores")) == []


def test_a_share_gives_the_process_its_thread_count_back(tmp_path):
    import torch

    before = torch.get_num_threads()
    with CoreShare(tmp_path) as share:
        torch.set_num_threads(1 if before > 1 else 2)  # a worker takes its share
        assert share.threads() >= 1
    # What runs after the block (the next stage, the next test) trains on its own threads.
    assert torch.get_num_threads() == before
