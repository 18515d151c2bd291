"""The progress renderer's clock: elapsed time and the ETA from the pace of the units
finished since the start (or the duration model's, where given)."""

from finscale.cli.progress import Rate


def test_the_eta_is_the_pace_of_the_units_finished_since_the_start():
    now = [100.0]
    rate = Rate(clock=lambda: now[0])
    assert rate.text(0, 10) == "0:00:00 elapsed, ETA -"  # no pace yet
    now[0] = 160.0
    assert rate.text(2, 10) == "0:01:00 elapsed, ETA 0:04:00"  # 30 s a unit, 8 left
    assert rate.text(2, 10, eta_s=90.0) == "0:01:00 elapsed, ETA 0:01:30"  # the model's
    assert rate.text(12, 10) == "0:01:00 elapsed, ETA 0:00:00"


def test_a_resume_counts_only_the_units_finished_since_it_started():
    now = [0.0]
    rate = Rate(clock=lambda: now[0])
    now[0] = 500.0
    rate.restart(finished_before=4)  # four units came from an earlier run
    now[0] = 560.0
    assert rate.text(4, 10) == "0:01:00 elapsed, ETA -"
    assert rate.text(5, 10) == "0:01:00 elapsed, ETA 0:05:00"  # 60 s for 1 unit, 5 left
