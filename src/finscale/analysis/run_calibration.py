"""The calibration of a budget's final runs, as `scaling.json` keeps it: each
method fitted on each seed's validation predictions and scored on its test
predictions, the best chosen on cross-fitted validation log loss, and the
reliability bins of the pooled test predictions before and after it.

Pure computation on stored runs (`finscale.analysis.calibration` fits and scores).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from finscale.analysis.calibration import (
    METHODS,
    CalibrationScores,
    Calibrator,
    SplitScores,
    calibrate,
    calibration_scores,
    reliability_bins,
)
from finscale.analysis.records import EvaluationRun
from finscale.analysis.scaling_json import CalibrationSummary

# Labels and predictions of one split: (n_samples,) 0/1 labels and P(label 1).
SplitArrays = tuple[np.ndarray, np.ndarray]


def split_arrays(run: EvaluationRun, split: str) -> SplitArrays:
    """A stored run's (labels, predictions) of one split."""
    return (
        np.array(run.labels[split], dtype=int),
        np.array(run.predictions[split], dtype=float),
    )


def calibration_summary(splits: Sequence[tuple[SplitArrays, SplitArrays]]) -> CalibrationSummary:
    """Calibration of one budget's runs, given each seed's ((y_val, p_val), (y_test,
    p_test)): every method fitted on each seed's validation predictions and scored on its
    test predictions, averaged over seeds; the best method by cross-fitted validation log
    loss; reliability bins of the pooled test predictions before and after the best method.

    When the validation split cannot fit a calibrator (a block of days without a
    positive, common with rare labels), the summary says why (`skipped`) and keeps
    the uncalibrated scores and bins instead of failing the whole report.
    """
    y = np.concatenate([y_test for _, (y_test, _) in splits])
    raw = np.concatenate([p_test for _, (_, p_test) in splits])
    try:
        per_seed = [
            calibrate(y_val, p_val, y_test, p_test) for (y_val, p_val), (y_test, p_test) in splits
        ]
    except ValueError as exc:
        scores = [calibration_scores(y_test, p_test) for _, (y_test, p_test) in splits]
        return CalibrationSummary(
            skipped=f"no calibrator could be fitted on the validation split: {exc}",
            methods={"uncalibrated": SplitScores(test=CalibrationScores.mean(scores))},
            best=None,
            reliability={"uncalibrated": reliability_bins(y, raw)},
        )
    uncalibrated = [s.uncalibrated for s in per_seed]
    methods = {
        "uncalibrated": SplitScores(
            test=CalibrationScores.mean([s.test for s in uncalibrated]),
            val=CalibrationScores.mean([s.val for s in uncalibrated]),
        )
    }
    for name in METHODS:
        fits = [s.methods[name] for s in per_seed]
        methods[name] = SplitScores(
            test=CalibrationScores.mean([f.test for f in fits]),
            val=CalibrationScores.mean([f.val for f in fits]),
            val_cv=CalibrationScores.mean([f.val_cv for f in fits]),
        )
    # Chosen on validation log loss cross-fitted over blocks of days: in-sample, isotonic
    # regression always wins, and the test split is only scored.
    best = min(METHODS, key=lambda m: methods[m].val_cv.log_loss)
    # The calibrators calibrate() fitted, rebuilt from their params: not fitted twice.
    calibrated = np.concatenate(
        [
            Calibrator(best, seed_result.methods[best].params).transform(p_test)
            for seed_result, (_, (_, p_test)) in zip(per_seed, splits, strict=True)
        ]
    )
    return CalibrationSummary(
        methods=methods,
        best=best,
        reliability={
            "uncalibrated": reliability_bins(y, raw),
            best: reliability_bins(y, calibrated),
        },
    )


def calibration_of_runs(runs: Sequence[EvaluationRun]) -> CalibrationSummary:
    """`calibration_summary` of a budget's stored runs."""
    return calibration_summary([(split_arrays(r, "val"), split_arrays(r, "test")) for r in runs])
