"""Null controls on a built dataset: labels shuffled in blocks within each split and
fold, or prices replaced by a random walk, and nothing else changed."""

import numpy as np
import pytest

from finscale.config import DataConfig, EvaluationConfig
from finscale.data import DataStore, build_dataset
from finscale.data.controls import block_permutation
from finscale.data.splits import PURGED, SPLIT_NAMES

WALK_FORWARD = EvaluationConfig(scheme="walk_forward", folds=3, search_fraction=0.5)


@pytest.fixture(scope="module")
def real():
    return build_dataset(DataConfig(), evaluation=WALK_FORWARD)


@pytest.fixture(scope="module")
def shuffled():
    return build_dataset(DataConfig(null_control="shuffle"), evaluation=WALK_FORWARD)


def test_block_permutation_moves_whole_blocks():
    order = block_permutation(23, 5, np.random.default_rng(0))
    assert sorted(order) == list(range(23))
    assert not np.array_equal(order, np.arange(23))
    runs = np.split(order, np.flatnonzero(np.diff(order) != 1) + 1)
    assert all(run[0] % 5 == 0 for run in runs)  # every run starts a block
    assert len(block_permutation(0, 5, np.random.default_rng(0))) == 0


def test_shuffle_keeps_every_split_and_fold_rate_and_breaks_the_link(real, shuffled):
    labels, mixed = real.table["label"].to_numpy(), shuffled.table["label"].to_numpy()
    assert np.array_equal(np.isnan(labels), np.isnan(mixed))
    for plan in (real.table["split"].to_numpy(), *real.fold_assignments()):
        # Shuffled within each block before purging: a split's count moves by at most
        # the labels its purged edges dropped.
        edges = (plan == PURGED).sum()
        for code in SPLIT_NAMES:
            rows = plan == code
            if rows.any():
                assert abs(np.nansum(labels[rows]) - np.nansum(mixed[rows])) <= edges
    known = ~np.isnan(labels)
    assert (labels[known] != mixed[known]).mean() > 0.15
    assert shuffled.key != real.key
    np.testing.assert_array_equal(
        shuffled.table["ret_1d"].to_numpy(), real.table["ret_1d"].to_numpy()
    )
    assert shuffled.summary()["null_control"] == "shuffle"


def test_shuffles_differ_by_seed_and_repeat_by_seed(shuffled):
    again = build_dataset(DataConfig(null_control="shuffle"), evaluation=WALK_FORWARD)
    other = build_dataset(DataConfig(null_control="shuffle", null_seed=1), evaluation=WALK_FORWARD)
    np.testing.assert_array_equal(again.table["label"], shuffled.table["label"])
    assert not np.array_equal(
        other.table["label"].to_numpy(), shuffled.table["label"].to_numpy(), equal_nan=True
    )


def test_a_random_walk_replaces_the_target_and_stores_the_real_series(tmp_path, real):
    store = DataStore(tmp_path)
    walk = build_dataset(DataConfig(null_control="random_walk"), store)
    assert walk.table.index.equals(build_dataset(DataConfig()).table.index)
    assert not np.allclose(walk.table["ret_1d"], build_dataset(DataConfig()).table["ret_1d"])
    raw = [e for e in store.entries().values() if e["kind"] == "raw"]
    assert [e["symbol"] for e in raw] == ["SP500"]
    assert walk.entry["inputs"]["SP500"] == raw[0]["sha256"]  # the real series, stored
    assert walk.entry["params"]["null_control"] == {"kind": "random_walk", "seed": 0}


def test_a_planted_market_shuffled_loses_its_known_probabilities():
    config = {"source": "synthetic", "context_days": 32}
    small = {"symbols": 2, "days": 700, "teacher_width": 8, "teacher_days": 4}
    shuffled = build_dataset(DataConfig(**config, synthetic=small, null_control="shuffle"))
    assert shuffled.label_probabilities() is None
    assert "bayes_log_loss" not in shuffled.summary()["splits"]["train"]
    assert shuffled.summary()["planted"]["teacher_width"] == 8
