"""Stop requests and machine monitoring."""

import os
import signal
import time

from finscale.hpo.control import (
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
    late = StopSignal(tmp_path, deadline=time.time() - 1)
    assert "--timeout-hours" in late.requested()


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


def test_resource_samples_hold_memory_and_cpu():
    sample = ResourceMonitor("cpu").sample(epoch=1)
    assert sample["epoch"] == 1 and sample["rss_bytes"] > 10**6
    assert sample["cpu_percent"] >= 0 and "temperature_c" in sample
