"""Panels: every symbol's splits from one calendar of dates, purged on its own rows, so no
date that an evaluation label of any symbol reads reaches any symbol's training."""

import numpy as np
import pytest

from finscale.data.splits import (
    OUTSIDE,
    TEST,
    TRAIN,
    VAL,
    holdout_spans,
    project_spans,
    sample_dates,
    walk_forward_spans,
)
from tests.data.test_splits import assert_leak_free

DAYS = np.arange("2000-01-03", "2008-01-01", dtype="datetime64[D]")
BUSINESS = DAYS[np.is_busday(DAYS)]


def _panel(c, h):
    """Three series: the full history; a later start with holes; an earlier end."""
    series = {
        "A": BUSINESS[:1800],
        "B": np.delete(BUSINESS[300:1800], np.arange(0, 1500, 17)),
        "C": BUSINESS[:1500],
    }
    labeled = {k: np.arange(len(d)) < len(d) - h for k, d in series.items()}
    calendar = np.unique(
        np.concatenate([sample_dates(d, c, h, labeled[k]) for k, d in series.items()])
    )
    return series, labeled, calendar


def _read_dates(dates, rows, c, h, window):
    """Every date the windows (t-c+1 .. t, if `window`) and labels (t+1 .. t+h) of `rows` read."""
    out = set()
    for t in rows:
        lo = t - c + 1 if window else t + 1
        out.update(dates[lo : t + h + 1].tolist())
    return out


def _assert_no_date_leaks(plans, series, c, h):
    evaluation = set()
    for name, plan in plans.items():
        dates = series[name]
        evaluation |= _read_dates(
            dates, np.concatenate([plan.rows(VAL), plan.rows(TEST)]), c, h, False
        )
    for name, plan in plans.items():
        trained = _read_dates(series[name], plan.rows(TRAIN), c, h, True)
        assert not trained & evaluation, (
            f"{name}: a training window or label reads an evaluation date"
        )
        assert_leak_free(plan, len(series[name]), c, h)


@pytest.mark.parametrize("h", [1, 3, 5])
@pytest.mark.parametrize("c", [1, 20])
@pytest.mark.parametrize("kind,chunks", [("chronological", 1), ("chunked", 3)])
def test_holdout_boundaries_are_dates_shared_by_every_symbol(h, c, kind, chunks):
    series, labeled, calendar = _panel(c, h)
    spans = holdout_spans(len(calendar), kind, (0.7, 0.15, 0.15), chunks)
    plans = {k: project_spans(spans, calendar, d, c, h, labeled[k]) for k, d in series.items()}
    _assert_no_date_leaks(plans, series, c, h)
    # every symbol's test block starts on or after the one test boundary date
    test_start = calendar[next(lo for split, lo, _ in spans if split == TEST)]
    for name, plan in plans.items():
        if plan.rows(TEST).size:
            assert series[name][plan.rows(TEST)[0]] >= test_start
        assert (series[name][plan.rows(TRAIN)] < test_start).all()
    # the symbol that ends early has no test samples; the others do
    assert plans["C"].rows(TEST).size == 0 and plans["A"].rows(TEST).size > 0


@pytest.mark.parametrize("h", [1, 5])
@pytest.mark.parametrize("window", ["expanding", "rolling"])
def test_walk_forward_folds_are_dates_shared_by_every_symbol(h, window):
    c = 20
    series, labeled, calendar = _panel(c, h)
    search, folds = walk_forward_spans(0, len(calendar), (0.7, 0.15, 0.15), 3, 0.5, window, 400)
    plans = {k: project_spans(search, calendar, d, c, h, labeled[k]) for k, d in series.items()}
    _assert_no_date_leaks(plans, series, c, h)
    first_test = calendar[search[-1][1]]
    for name, plan in plans.items():
        # the search sees nothing from the first test date on, in any symbol
        seen = _read_dates(
            series[name], np.concatenate([plan.rows(TRAIN), plan.rows(VAL)]), c, h, True
        )
        assert max(seen) < first_test
        later = plan.assignment[series[name] >= first_test]
        assert not np.isin(later, [TRAIN, VAL, TEST]).any() and (later == OUTSIDE).any()
    for spans in folds:
        fold_plans = {
            k: project_spans(spans, calendar, d, c, h, labeled[k]) for k, d in series.items()
        }
        _assert_no_date_leaks(fold_plans, series, c, h)
