"""Train/validation/test assignment of samples, purged at every boundary.

A *sample* is a row t with a full input window (rows t-c+1 .. t, c =
`context_days`) and a label (which reads rows t+1 .. t+h, h = `horizon_days`).
Splits are contiguous blocks of samples in date order, planned once on a
*calendar* of sample dates and projected on every series' own rows (a single
series is a panel of one symbol over the calendar of its own sample dates, or
of its row numbers). At every boundary, on each series' own rows:

- the last h samples of the earlier block are dropped, so no label of a block
  reads a row of the block after it;
- where a training block follows an evaluation (val/test) block, the first
  h + c - 1 samples of the training block are also dropped, so no training
  window (inputs or label) contains a row that an evaluation label reads.

Two splitters of a holdout plan (`plan_splits_on_calendar`):

- ``chronological``: train, val, test in date order by the fractions.
- ``chunked``: the test block stays last (the untouched future), and the
  history before it is cut into `n_chunks` chunks, each a train block followed
  by a val block, so validation is drawn from many regimes.

And one scheme of several plans, `plan_walk_forward_on_calendar`: the search
sees the first `search_fraction` of the calendar (train then val, by the
train:val ratio of the fractions), and the rest is tiled into `folds`
contiguous test blocks. Fold k trains on every sample before its test block
(expanding) or the last `rolling_days` of them (rolling), early-stopping on the
last part of that history by the same ratio. Rows a plan does not use are
OUTSIDE. The search's val block is followed by an OUTSIDE block (the test
folds) and purged like any other, so no label of the search reads a row of the
first test fold; a fold's test block is last in its plan and is not purged.

`plan_splits` and `plan_walk_forward` are the one-series forms over row numbers.
Pure functions of integers (and sorted dates): easy to test exhaustively.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import numpy as np

from finscale.errors import InputError

SplitKind = Literal["chronological", "chunked"]
WindowKind = Literal["expanding", "rolling"]

TRAIN, VAL, TEST = 0, 1, 2
PURGED, NO_WINDOW, NO_LABEL, OUTSIDE = -1, -2, -3, -4
SPLIT_NAMES = {TRAIN: "train", VAL: "val", TEST: "test"}
ROW_STATES = {
    **SPLIT_NAMES,
    PURGED: "purged",
    NO_WINDOW: "no_window",
    NO_LABEL: "no_label",
    OUTSIDE: "outside",
}
EVALUATION = (VAL, TEST)


@dataclass(frozen=True)
class Block:
    """Rows ``start .. stop-1`` assigned to `split` before purging."""

    split: int
    start: int
    stop: int


@dataclass(frozen=True)
class SplitPlan:
    """Per-row assignment: TRAIN/VAL/TEST, or PURGED/NO_WINDOW/NO_LABEL."""

    assignment: np.ndarray
    blocks: tuple[Block, ...]
    context_days: int
    horizon_days: int

    def rows(self, split: int) -> np.ndarray:
        return np.flatnonzero(self.assignment == split)


def _cut(n: int, fractions: tuple[float, ...]) -> list[int]:
    """Cumulative cut points of n items by fractions (last cut is exactly n)."""
    cuts = np.round(np.cumsum(fractions) * n).astype(int).tolist()
    cuts[-1] = n
    return cuts


Span = tuple[int, int, int]  # (split code, first calendar index, one past the last)
SeriesRows = tuple[np.ndarray, np.ndarray]  # (row dates, sorted and unique; rows with a label)


def _train_val(lo: int, hi: int, fractions: tuple[float, float, float]) -> list[Span]:
    """[lo, hi) cut into a train span and a val span by the train:val ratio."""
    train_f, val_f, _ = fractions
    mid = lo + round((hi - lo) * train_f / (train_f + val_f))
    return [(TRAIN, lo, mid), (VAL, mid, hi)]


def holdout_spans(
    n_samples: int, kind: SplitKind, fractions: tuple[float, float, float], n_chunks: int
) -> list[Span]:
    """The unpurged, non-empty spans of a holdout split of `n_samples` calendar dates."""
    train_f, val_f, _ = fractions
    if kind == "chronological":
        a, b, c = _cut(n_samples, fractions)
        spans = [(TRAIN, 0, a), (VAL, a, b), (TEST, b, c)]
    elif kind == "chunked":
        history = _cut(n_samples, (train_f + val_f, 1.0 - train_f - val_f))[0]
        spans = []
        for lo, hi in pairwise([0, *_cut(history, (1.0 / n_chunks,) * n_chunks)]):
            spans += _train_val(lo, hi, fractions)
        spans.append((TEST, history, n_samples))
    else:
        raise InputError(f"unknown split {kind!r}; use chronological or chunked", "data.split")
    return [(split, lo, hi) for split, lo, hi in spans if hi > lo]


def walk_forward_spans(
    n_samples: int,
    fractions: tuple[float, float, float],
    folds: int,
    search_fraction: float,
    window: WindowKind,
    rolling_days: int,
) -> tuple[list[Span], list[list[Span]]]:
    """The unpurged spans of the search (train, val, then OUTSIDE) and of every fold
    (train, val, test) over `n_samples` calendar dates."""
    end_search = round(n_samples * search_fraction)
    search = [*_train_val(0, end_search, fractions), (OUTSIDE, end_search, n_samples)]
    test_cuts = [
        end_search,
        *(end_search + c for c in _cut(n_samples - end_search, (1.0 / folds,) * folds)),
    ]
    fold_spans = []
    for test_start, test_stop in pairwise(test_cuts):
        lo = 0 if window == "expanding" else max(0, test_start - rolling_days)
        # Rows after the test block stay OUTSIDE without a purge: test labels may read
        # them (they are the future), and this fold's model never sees them.
        fold_spans.append([*_train_val(lo, test_start, fractions), (TEST, test_start, test_stop)])
    return search, fold_spans


def _check_shape(context_days: int, horizon_days: int, fractions: tuple[float, ...]) -> None:
    if context_days < 1 or horizon_days < 1:
        raise ValueError("context_days and horizon_days must be >= 1")
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-9:
        raise InputError(
            f"split fractions must be three positive numbers summing to 1, got {fractions}",
            "split_fractions",
        )


def _check_walk_forward(folds: int, search_fraction: float, window: str, rolling_days: int) -> None:
    if folds < 2:
        raise InputError(f"folds must be >= 2, got {folds}", "evaluation.folds")
    if not 0.0 < search_fraction < 1.0:
        raise InputError(
            f"search_fraction must lie strictly between 0 and 1, got {search_fraction}",
            "evaluation.search_fraction",
        )
    if window not in ("expanding", "rolling"):
        raise InputError(
            f"unknown window {window!r}; use expanding or rolling", "evaluation.window"
        )
    if rolling_days < 2:
        raise InputError(
            f"rolling_days must be >= 2, got {rolling_days}", "evaluation.rolling_days"
        )


def _samples(
    n_rows: int, context_days: int, horizon_days: int, labeled: np.ndarray | None
) -> tuple[np.ndarray, int, int]:
    """The assignment before any split (NO_WINDOW, NO_LABEL, else OUTSIDE) and the
    first and one-past-last sample row (equal when there is no sample)."""
    assignment = np.full(n_rows, NO_LABEL, dtype=np.int8)
    if labeled is None:
        labeled = np.arange(n_rows) < n_rows - horizon_days
    labeled = np.asarray(labeled, dtype=bool)
    assignment[: context_days - 1] = NO_WINDOW

    # Samples are the labelled rows from the first full window on. A row inside them
    # may lack a label (a relative label on a date the symbol trades alone): it
    # stays NO_LABEL, and the blocks and purges around it count rows as usual.
    candidates = np.flatnonzero(labeled[context_days - 1 :]) + context_days - 1
    if len(candidates) == 0:
        return assignment, 0, 0
    first, stop = int(candidates[0]), int(candidates[-1]) + 1
    assignment[first:stop] = np.where(labeled[first:stop], OUTSIDE, NO_LABEL)
    return assignment, first, stop


def _purged(
    assignment: np.ndarray, blocks: list[Block], context_days: int, horizon_days: int
) -> SplitPlan:
    """Write `blocks` into `assignment` and purge every boundary between them; rows
    without a label stay NO_LABEL."""
    unlabeled = assignment == NO_LABEL
    for block in blocks:
        assignment[block.start : block.stop] = block.split
    for earlier, later in pairwise(blocks):
        # The earlier block's last h labels would read rows of the later block.
        assignment[max(earlier.start, later.start - horizon_days) : later.start] = PURGED
        if later.split == TRAIN and earlier.split in EVALUATION:
            # Training windows must not contain a row an evaluation label reads.
            embargo = horizon_days + context_days - 1
            assignment[later.start : min(later.stop, later.start + embargo)] = PURGED
    assignment[unlabeled] = NO_LABEL
    return SplitPlan(assignment, tuple(blocks), context_days, horizon_days)


def sample_dates(
    dates: np.ndarray, context_days: int, horizon_days: int, labeled: np.ndarray | None
) -> np.ndarray:
    """The dates of one series' samples (rows with a full window and a label)."""
    base, first, stop = _samples(len(dates), context_days, horizon_days, labeled)
    return np.asarray(dates)[first:stop][base[first:stop] == OUTSIDE]


def sample_calendar(
    series: Mapping[str, SeriesRows], context_days: int, horizon_days: int
) -> np.ndarray:
    """The sorted union of every series' sample dates."""
    dates = [sample_dates(d, context_days, horizon_days, lab) for d, lab in series.values()]
    return np.unique(np.concatenate(dates)) if dates else np.array([])


def project_spans(
    spans: list[Span],
    calendar: np.ndarray,
    dates: np.ndarray,
    context_days: int,
    horizon_days: int,
    labeled: np.ndarray | None,
) -> SplitPlan:
    """One series' plan from spans over a shared calendar of sample dates: each span
    [lo, hi) takes the series' samples dated from calendar[lo] to before calendar[hi],
    and every boundary is then purged on the series' own rows, by its own context
    and horizon, so no label of one block reads a row of the next in this series.

    calendar: sorted unique dates (the union of every series' sample dates); dates:
    the series' row dates, sorted; labeled: its rows with a label (default: all but
    the last `horizon_days`). A panel's series share their boundary dates, whatever
    dates each of them has.
    """
    base, first, stop = _samples(len(dates), context_days, horizon_days, labeled)
    dates = np.asarray(dates)
    blocks = []
    for split, lo, hi in spans:
        if hi <= lo:
            continue
        start = max(first, int(np.searchsorted(dates, calendar[lo], side="left")))
        end = stop if hi >= len(calendar) else int(np.searchsorted(dates, calendar[hi], "left"))
        end = min(end, stop)
        if end > start:
            blocks.append(Block(split, start, end))
    return _purged(base, blocks, context_days, horizon_days)


def plan_splits_on_calendar(
    series: Mapping[str, SeriesRows],
    context_days: int,
    horizon_days: int,
    kind: SplitKind,
    fractions: tuple[float, float, float],
    n_chunks: int,
) -> dict[str, SplitPlan]:
    """Each series' holdout plan: the splitter cuts the calendar (every series' sample
    dates), and each block is projected on every series' rows and purged there.

    Purge rule, on each series' own rows: drop the h samples before every later
    block; where a training block follows an evaluation block, also drop the first
    h + c - 1 samples of the training block.
    """
    _check_shape(context_days, horizon_days, fractions)
    if n_chunks < 1:
        raise InputError(f"n_chunks must be >= 1, got {n_chunks}", "n_chunks")
    calendar = sample_calendar(series, context_days, horizon_days)
    spans = holdout_spans(len(calendar), kind, fractions, n_chunks)
    return {
        name: project_spans(spans, calendar, dates, context_days, horizon_days, labeled)
        for name, (dates, labeled) in series.items()
    }


@dataclass(frozen=True)
class WalkForwardPlan:
    """The search's plan (TRAIN, VAL, then OUTSIDE) and one plan per test fold
    (TRAIN, VAL for early stopping, TEST, OUTSIDE elsewhere), in date order."""

    search: SplitPlan
    folds: tuple[SplitPlan, ...]


def plan_walk_forward_on_calendar(
    series: Mapping[str, SeriesRows],
    context_days: int,
    horizon_days: int,
    fractions: tuple[float, float, float],
    folds: int,
    search_fraction: float,
    window: WindowKind,
    rolling_days: int,
) -> dict[str, WalkForwardPlan]:
    """Each series' walk-forward plans: the search and the test folds cut the calendar
    (every series' sample dates), and each block is projected on every series' rows.

    Purge rule, on each series' own rows: drop the h samples before every later
    block (the search's val block before the first test fold included); where a
    training block follows an evaluation block, also drop the first h + c - 1
    samples of the training block. A fold's test block is last and not purged.

    `fractions` gives only the train:val ratio (its test share is unused: the folds
    are the test). `rolling_days`, used under window ``rolling``, counts calendar
    dates (trading days) of training history before each fold, its early-stopping
    block included.
    """
    _check_shape(context_days, horizon_days, fractions)
    _check_walk_forward(folds, search_fraction, window, rolling_days)
    calendar = sample_calendar(series, context_days, horizon_days)
    search, fold_spans = walk_forward_spans(
        len(calendar), fractions, folds, search_fraction, window, rolling_days
    )

    def plan(spans: list[Span], dates: np.ndarray, labeled: np.ndarray | None) -> SplitPlan:
        return project_spans(spans, calendar, dates, context_days, horizon_days, labeled)

    return {
        name: WalkForwardPlan(
            plan(search, dates, labeled), tuple(plan(s, dates, labeled) for s in fold_spans)
        )
        for name, (dates, labeled) in series.items()
    }


def plan_splits(
    n_rows: int,
    context_days: int,
    horizon_days: int,
    kind: SplitKind = "chronological",
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    n_chunks: int = 5,
    labeled: np.ndarray | None = None,
) -> SplitPlan:
    """Assign each of `n_rows` rows of one series to a split, purging every boundary.

    `labeled` marks rows that have a label (default: all but the last
    `horizon_days`). Rows before the first full window are NO_WINDOW, rows
    without a label NO_LABEL; samples dropped at a boundary are PURGED.
    """
    one = {"": (np.arange(n_rows), labeled)}
    return plan_splits_on_calendar(one, context_days, horizon_days, kind, fractions, n_chunks)[""]


def plan_walk_forward(
    n_rows: int,
    context_days: int,
    horizon_days: int,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    folds: int = 5,
    search_fraction: float = 0.5,
    window: WindowKind = "expanding",
    rolling_days: int = 1260,
    labeled: np.ndarray | None = None,
) -> WalkForwardPlan:
    """The search's plan and every test fold's plan of one series of `n_rows` rows
    (`plan_walk_forward_on_calendar` over its row numbers)."""
    one = {"": (np.arange(n_rows), labeled)}
    return plan_walk_forward_on_calendar(
        one, context_days, horizon_days, fractions, folds, search_fraction, window, rolling_days
    )[""]
