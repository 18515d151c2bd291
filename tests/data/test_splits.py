import itertools

import numpy as np
import pytest

from finscale.data.splits import NO_LABEL, NO_WINDOW, PURGED, TEST, TRAIN, VAL, plan_splits
from finscale.errors import InputError


def label_rows(rows, h):
    """Every row some sample's label reads: t+1 .. t+h."""
    return {t + d for t in rows for d in range(1, h + 1)}


def assert_leak_free(plan, n_rows, c, h):
    train, val, test = (plan.rows(s) for s in (TRAIN, VAL, TEST))
    evaluation_labels = label_rows(val, h) | label_rows(test, h)
    for t in train:
        # Neither the window (t-c+1 .. t) nor the label (t+1 .. t+h) of a training
        # sample touches a row that an evaluation label reads.
        touched = set(range(t - c + 1, t + h + 1))
        assert not touched & evaluation_labels, f"train row {t} touches an evaluation label"
    # Training label intervals never overlap evaluation label intervals (the weaker rule).
    assert not label_rows(train, h) & evaluation_labels
    # Validation and test label intervals are disjoint too.
    assert not label_rows(val, h) & label_rows(test, h)
    samples = np.concatenate([train, val, test])
    assert samples.min() >= c - 1, "a sample without a full window"
    assert samples.max() <= n_rows - h - 1, "a sample without a label"


@pytest.mark.parametrize("h", [1, 3, 5])
@pytest.mark.parametrize("c", [1, 5, 20, 60])
@pytest.mark.parametrize(
    "kind,chunks", [("chronological", 1), ("chunked", 1), ("chunked", 3), ("chunked", 5)]
)
def test_no_training_window_or_label_reaches_an_evaluation_label(h, c, kind, chunks):
    n_rows = 1500
    plan = plan_splits(n_rows, c, h, kind, (0.7, 0.15, 0.15), chunks)
    assert_leak_free(plan, n_rows, c, h)


@pytest.mark.parametrize(
    "n_rows,c,h,chunks", list(itertools.product([200, 333], [2, 7], [1, 4], [2, 4]))
)
def test_chunked_small_grids_leak_free(n_rows, c, h, chunks):
    assert_leak_free(plan_splits(n_rows, c, h, "chunked", (0.6, 0.2, 0.2), chunks), n_rows, c, h)


def test_chronological_order_and_purge_counts():
    n_rows, c, h = 1000, 60, 5
    plan = plan_splits(n_rows, c, h, "chronological")
    a = plan.assignment
    train, val, test = plan.rows(TRAIN), plan.rows(VAL), plan.rows(TEST)
    assert train.max() < val.min() and val.max() < test.min()
    assert (a[: c - 1] == NO_WINDOW).all()
    assert (a[-h:] == NO_LABEL).all()
    # Two boundaries, each dropping the h samples before it.
    assert (a == PURGED).sum() == 2 * h
    assert val.min() - train.max() == h + 1 and test.min() - val.max() == h + 1
    n_samples = n_rows - (c - 1) - h
    assert len(test) == pytest.approx(0.15 * n_samples, abs=1)


def test_chunked_interleaves_validation_and_keeps_test_last():
    n_rows, c, h, chunks = 3000, 20, 3, 4
    plan = plan_splits(n_rows, c, h, "chunked", (0.7, 0.15, 0.15), chunks)
    blocks = [(b.split, b.start) for b in plan.blocks]
    assert [s for s, _ in blocks] == [TRAIN, VAL] * chunks + [TEST]
    assert plan.rows(TEST).min() > max(plan.rows(TRAIN).max(), plan.rows(VAL).max())
    # train->val: h dropped; val->train: h dropped before and h + c - 1 after; val->test: h.
    expected = chunks * h + (chunks - 1) * (h + h + c - 1) + h
    assert (plan.assignment == PURGED).sum() == expected
    # Validation spans many regimes: its samples cover most of the pre-test history.
    val = plan.rows(VAL)
    assert val.max() - val.min() > 0.6 * plan.rows(TEST).min()


def test_custom_labeled_mask_excludes_unlabeled_rows():
    labeled = np.ones(300, dtype=bool)
    labeled[:25] = False  # e.g. a volatility threshold still warming up
    labeled[-3:] = False
    plan = plan_splits(300, 10, 3, labeled=labeled)
    samples = np.flatnonzero(plan.assignment >= 0)
    assert samples.min() >= 25


def test_bad_fractions_are_rejected():
    with pytest.raises(InputError, match="fractions"):
        plan_splits(100, 5, 1, fractions=(0.8, 0.3, 0.1))
    with pytest.raises(InputError, match="split"):
        plan_splits(100, 5, 1, kind="random")


@pytest.mark.parametrize("kind", ["chronological", "chunked"])
def test_rows_without_a_label_inside_the_samples_stay_unlabelled(kind):
    # A relative label is missing on a date the symbol trades alone: such rows are
    # no sample, and the plan around them is the one of a fully labelled series.
    n_rows, c, h = 600, 20, 3
    labeled = np.arange(n_rows) < n_rows - h
    gaps = [100, 101, 350, 470]
    labeled[gaps] = False
    plan = plan_splits(n_rows, c, h, kind, (0.7, 0.15, 0.15), 3, labeled=labeled)
    full = plan_splits(n_rows, c, h, kind, (0.7, 0.15, 0.15), 3)
    assert (plan.assignment[gaps] == NO_LABEL).all()
    others = np.setdiff1d(np.arange(n_rows), gaps)
    # The calendar lost four dates, so a cut may move by a row or two; nothing else.
    assert (plan.assignment[others] != full.assignment[others]).sum() <= 4 * (h + 1) * 3
    assert_leak_free(plan, n_rows, c, h)
