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
    plan_splits,
    plan_splits_on_calendar,
    plan_walk_forward,
    plan_walk_forward_on_calendar,
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
    search, folds = walk_forward_spans(len(calendar), (0.7, 0.15, 0.15), 3, 0.5, window, 400)
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


def one_series(dates, h):
    """(dates, labelled rows) of a series whose last h rows have no label."""
    return dates, np.arange(len(dates)) < len(dates) - h


@pytest.mark.parametrize("window", ["expanding", "rolling"])
def test_one_series_on_its_dates_is_the_plan_of_its_row_numbers(window):
    dates, (c, h) = BUSINESS[:1200], (20, 3)
    args = ((0.6, 0.2, 0.2), 4, 0.4, window, 250)
    on_dates = plan_walk_forward_on_calendar({"A": one_series(dates, h)}, c, h, *args)["A"]
    by_rows = plan_walk_forward(len(dates), c, h, *args)
    for dated, numbered in zip(
        [on_dates.search, *on_dates.folds], [by_rows.search, *by_rows.folds], strict=True
    ):
        np.testing.assert_array_equal(dated.assignment, numbered.assignment)
    holdout = plan_splits_on_calendar(
        {"A": one_series(dates, h)}, c, h, "chunked", (0.7, 0.15, 0.15), 3
    )
    np.testing.assert_array_equal(
        holdout["A"].assignment, plan_splits(len(dates), c, h, "chunked", n_chunks=3).assignment
    )


def test_a_symbol_inside_the_calendar_takes_its_boundary_dates():
    c, h = 5, 2
    a_dates, b_dates = BUSINESS[:1000], BUSINESS[500:1000]
    series = {"A": one_series(a_dates, h), "B": one_series(b_dates, h)}
    plans = plan_walk_forward_on_calendar(
        series, c, h, (0.7, 0.15, 0.15), 3, 0.5, "expanding", 1260
    )
    # B's dates lie inside A's: the calendar is A's, so A's plans are A's alone, and
    # B takes A's test dates in every fold (the first from B's first sample on).
    a_alone = plan_walk_forward(1000, c, h, folds=3, search_fraction=0.5)
    np.testing.assert_array_equal(plans["A"].search.assignment, a_alone.search.assignment)
    b_start = b_dates[c - 1]
    for a_fold, b_fold in zip(plans["A"].folds, plans["B"].folds, strict=True):
        a_test = a_dates[a_fold.rows(TEST)]
        np.testing.assert_array_equal(a_test[a_test >= b_start], b_dates[b_fold.rows(TEST)])
    assert plans["B"].search.rows(TRAIN).size == 0  # the search's training lies before B
