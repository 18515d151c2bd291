"""A planted study's run directory: the baselines stage stores each scored test row's
true probability, so scaling.json's Bayes log loss covers exactly the rows scored."""

import json

import numpy as np
import pytest

from finscale.analysis import TEST_PROBABILITIES
from finscale.data import bayes_log_loss
from finscale.data.controls import bayes_by_split
from finscale.data.splits import TEST
from finscale.scale import Pipeline, baselines_path, write_scale_file
from tests.scale.tiny import QuietReporter, tiny_scale_spec

# A small planted market in place of the tiny study's S&P 500.
PLANTED_SETS = {
    "data.start": None,
    "data.source": "synthetic",
    "data.synthetic": {"symbols": 2, "days": 700, "teacher_width": 8, "teacher_days": 4},
    "data.context_days": 32,
}
WALK_FORWARD_SETS = {
    "evaluation.scheme": "walk_forward",
    "evaluation.folds": 2,
    "evaluation.search_fraction": 0.5,
}


@pytest.mark.parametrize("scheme", ["holdout", "walk_forward"])
def test_a_planted_studys_baselines_hold_the_true_p_of_every_scored_test_row(tmp_path, scheme):
    sets = {**PLANTED_SETS, **(WALK_FORWARD_SETS if scheme == "walk_forward" else {})}
    spec = tiny_scale_spec(tmp_path / "run", tmp_path / "store", **sets)
    spec.run_dir.mkdir(parents=True)
    write_scale_file(spec)
    pipeline = Pipeline(spec, QuietReporter())
    pipeline.baselines()
    dataset = pipeline.prepared(spec.budgets[0], 1).dataset
    folds = spec.config.evaluation.scored_folds
    records = [json.loads(baselines_path(spec.run_dir, 1, f).read_text()) for f in folds]
    p = np.concatenate([r[TEST_PROBABILITIES] for r in records])
    predicted = sum(len(r["base_rate"]["predictions"]["test"]) for r in records)
    assert p.shape == (predicted,) and np.isfinite(p).all()
    if scheme == "holdout":
        # The stored rows are the test split's: their Bayes loss is the manifest's.
        assert bayes_log_loss(p) == pytest.approx(bayes_by_split(dataset.table)["test"], abs=1e-6)
    else:
        # Each fold's record holds its own test rows' p, in row order.
        truth = dataset.label_probabilities()
        for record, assignment in zip(records, dataset.fold_assignments(), strict=True):
            np.testing.assert_array_equal(record[TEST_PROBABILITIES], truth[assignment == TEST])
