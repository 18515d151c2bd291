"""Two runs of one study set side by side (`finscale report --compare`): each budget's
test log loss change from the other run to this one, paired on their shared test dates.

Two runs of the same data and evaluation plan score their winners on the same test
dates, so the per-date losses pair as a budget step's do: the interval of the
difference carries date and seed noise but not the dates' common swings, and a
consistent small change can show where two overlapping intervals of each run's
own loss cannot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from finscale.analysis.bootstrap import PairedDifference
from finscale.analysis.folds import Horizon, pooled_test
from finscale.analysis.records import EvaluationRun
from finscale.config import ScaleConfig
from finscale.errors import InputError


def paired_run_differences(
    evaluations: Mapping[tuple[int, int], Sequence[EvaluationRun]],
    other: Mapping[tuple[int, int], Sequence[EvaluationRun]],
    scale: ScaleConfig,
    threshold: float,
) -> dict[int, dict[int, PairedDifference]]:
    """By horizon and budget (those both runs have): the paired test log loss
    difference this run - other run (its verdict is this run's against the other).
    Raises `InputError` when the runs were scored on other test dates."""
    out: dict[int, dict[int, PairedDifference]] = {}
    for horizon in sorted({h for _, h in evaluations}):
        mine = {b: runs for (b, h), runs in evaluations.items() if h == horizon}
        h = Horizon(horizon, mine, scale, threshold)
        for budget in h.budgets:
            if (budget, horizon) not in other:
                continue
            y, preds, fold_ids = pooled_test(other[(budget, horizon)], h.what)
            if not (np.array_equal(y, h.y_test) and np.array_equal(fold_ids, h.fold_ids)):
                raise InputError(
                    f"{h.what}: the compared run scored its winners on other test dates; "
                    "compare runs of the same data and evaluation plan",
                    "compare",
                )
            out.setdefault(horizon, {})[budget] = h.difference(preds, h.preds[budget], "log_loss")
    return out
