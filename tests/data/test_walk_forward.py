import itertools

import numpy as np
import pytest

from finscale.config import DataConfig, EvaluationConfig
from finscale.data import Normalizer, build_dataset
from finscale.data.splits import OUTSIDE, PURGED, TEST, TRAIN, VAL, plan_walk_forward
from finscale.errors import InputError
from tests.data.test_splits import assert_leak_free, label_rows


def reads(rows, c, h):
    """Every row a sample's window (t-c+1 .. t) or label (t+1 .. t+h) reads."""
    return {r for t in rows for r in range(t - c + 1, t + h + 1)}


@pytest.mark.parametrize("h", [1, 3, 10])
@pytest.mark.parametrize("c", [1, 20, 60])
@pytest.mark.parametrize("window", ["expanding", "rolling"])
def test_no_test_date_reaches_the_search_or_a_folds_training(h, c, window):
    n_rows = 1400
    plan = plan_walk_forward(
        n_rows,
        c,
        h,
        (0.7, 0.15, 0.15),
        folds=4,
        search_fraction=0.5,
        window=window,
        rolling_days=300,
    )
    test_rows = [fold.rows(TEST) for fold in plan.folds]
    every_test_date = set(np.concatenate(test_rows).tolist())
    searched = np.concatenate([plan.search.rows(TRAIN), plan.search.rows(VAL)])
    # The search (its training and its validation, windows and labels) never reads
    # a row of any test fold.
    assert not reads(searched, c, h) & every_test_date
    assert plan.search.rows(TEST).size == 0
    for fold, test in zip(plan.folds, test_rows, strict=True):
        fitted = np.concatenate([fold.rows(TRAIN), fold.rows(VAL)])
        # Training and early stopping never read a date of this fold's test block,
        # nor a row its labels read.
        assert not reads(fitted, c, h) & (set(test.tolist()) | label_rows(test, h))
        assert_leak_free(fold, n_rows, c, h)


def test_folds_tile_the_rest_of_history_in_order():
    n_rows, c, h = 2000, 60, 5
    plan = plan_walk_forward(n_rows, c, h, folds=5, search_fraction=0.5)
    tests = [fold.rows(TEST) for fold in plan.folds]
    search_val = plan.search.rows(VAL)
    # The first fold starts right after the search region, each fold right after
    # the one before it (no test sample is purged: nothing follows a test block but
    # rows the fold does not use).
    assert tests[0].min() == search_val.max() + h + 1
    for before, after in itertools.pairwise(tests):
        assert after.min() == before.max() + 1
    assert tests[-1].max() == n_rows - h - 1
    sizes = [len(t) for t in tests]
    assert max(sizes) - min(sizes) <= 1
    n_samples = n_rows - (c - 1) - h
    assert sum(sizes) == n_samples - round(n_samples * 0.5)
    # The search trains then validates by the train:val ratio of the fractions.
    n_train, n_val = len(plan.search.rows(TRAIN)), len(search_val)
    assert n_train / (n_train + n_val) == pytest.approx(0.7 / 0.85, abs=0.01)
    assert (plan.search.assignment[tests[0].min() :] < 0).all()


def test_expanding_grows_and_rolling_keeps_its_length():
    n_rows, c, h = 3000, 20, 1
    expanding = plan_walk_forward(n_rows, c, h, folds=4, window="expanding")
    rolling = plan_walk_forward(n_rows, c, h, folds=4, window="rolling", rolling_days=500)
    first_sample = c - 1
    for fold in expanding.folds:
        assert fold.rows(TRAIN).min() == first_sample
        assert fold.rows(VAL).max() == fold.rows(TEST).min() - h - 1
    spans = []
    for fold in rolling.folds:
        used = np.concatenate([fold.rows(TRAIN), fold.rows(VAL)])
        spans.append(fold.rows(TEST).min() - used.min())
        assert (fold.assignment[first_sample : used.min()] == OUTSIDE).all()
    assert spans == [500] * 4
    grown = [len(f.rows(TRAIN)) for f in expanding.folds]
    assert grown == sorted(grown) and grown[-1] > grown[0]


def test_each_boundary_drops_exactly_h_samples():
    n_rows, c, h = 1000, 10, 4
    plan = plan_walk_forward(n_rows, c, h, folds=3)
    assert (plan.search.assignment == PURGED).sum() == 2 * h  # train|val, val|outside
    for fold in plan.folds:
        assert (fold.assignment == PURGED).sum() == 2 * h  # train|val, val|test


@pytest.mark.parametrize(
    "kwargs,key",
    [
        ({"folds": 1}, "evaluation.folds"),
        ({"search_fraction": 1.0}, "evaluation.search_fraction"),
        ({"window": "sliding"}, "evaluation.window"),
        ({"rolling_days": 1}, "evaluation.rolling_days"),
    ],
)
def test_bad_scheme_values_name_their_key(kwargs, key):
    with pytest.raises(InputError) as info:
        plan_walk_forward(500, 10, 1, **kwargs)
    assert info.value.where == key


# ---- the dataset under walk-forward evaluation (bundled S&P 500)


WALK = EvaluationConfig(scheme="walk_forward", folds=4)


def test_the_search_dataset_holds_no_test_row_and_its_key_names_the_scheme():
    holdout = build_dataset(DataConfig())
    walk = build_dataset(DataConfig(), evaluation=WALK)
    assert "test" not in walk.summary()["splits"]
    assert walk.summary()["row_states"]["outside"] > 0
    assert walk.key != holdout.key
    # The folds, window and rolling length change the evaluation, not the search.
    other = EvaluationConfig(scheme="walk_forward", folds=3, window="rolling", rolling_days=900)
    assert build_dataset(DataConfig(), evaluation=other).key == walk.key
    moved = EvaluationConfig(scheme="walk_forward", search_fraction=0.6)
    assert build_dataset(DataConfig(), evaluation=moved).key != walk.key


def test_each_fold_normalises_by_its_own_training_rows():
    walk = build_dataset(DataConfig(), evaluation=WALK)
    folds = walk.folds()
    assert len(folds) == 4 == len(walk.fold_dates())
    raw = walk.table[walk.feature_names].to_numpy(float)
    means = []
    for fold, dates in zip(folds, walk.fold_dates(), strict=True):
        train = fold.table["split"].to_numpy() == TRAIN
        expected = Normalizer.fit(raw, train, walk.continuous)
        np.testing.assert_allclose(fold.normalizer().mean, expected.mean)
        test_dates = fold.table.index[fold.table["split"].to_numpy() == TEST]
        assert str(test_dates[0].date()) == dates["test_start"]
        assert str(test_dates[-1].date()) == dates["test_end"]
        means.append(fold.normalizer().mean)
    assert not np.allclose(means[0], means[-1])
    # the search's own normaliser is untouched by the folds
    search_train = walk.table["split"].to_numpy() == TRAIN
    np.testing.assert_allclose(
        walk.normalizer().mean, Normalizer.fit(raw, search_train, walk.continuous).mean
    )
