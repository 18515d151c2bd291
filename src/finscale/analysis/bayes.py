"""The planted-scaling control's floor: the Bayes log loss of the rows a study scores,
and the checks that set each budget and the law's E against it.

Where the labels were drawn from known probabilities p (`data.source: synthetic`),
no model can beat, in expectation, the log loss of p itself: the mean binary
entropy of p over the scored rows (nats). The baselines stage stores each scored
row's p beside the baselines' test predictions (`TEST_PROBABILITIES`, fold by fold
in the same row order), so the results read the Bayes log loss of exactly the
test rows of every budget's pooled test log loss. A budget whose test log loss
lies below it beyond its interval has been handed something no model can know:
a leak or a bug, never scaling.

Pure functions of the stored records.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from finscale.analysis.law_fit import Estimate
from finscale.analysis.scaling import ScalingLawBootstrap
from finscale.analysis.serial import Record, stored
from finscale.data import bayes_log_loss
from finscale.errors import InputError

# The key of a stored baselines record that holds the true probability of each test
# row's label (in the order of the baselines' test predictions); absent for market data.
TEST_PROBABILITIES = "test_label_probabilities"


@dataclass(frozen=True, kw_only=True)
class BayesCheck(Record):
    """One horizon's results set against its Bayes log loss (`HorizonResult.
    bayes_log_loss`, nats).

    below_bayes: the budgets whose test log loss lies wholly below the Bayes loss
    (the upper end of both its seed and its test-date interval below it): better
    than any model can be, so a leak or a bug; empty when none. E: the fitted
    law's irreducible loss with its interval, set beside the Bayes loss (None where
    no law was fitted); E_covers_bayes: whether the Bayes loss lies inside E's
    interval (None without a law or without finite bounds).
    """

    below_bayes: tuple[int, ...] = ()
    E: Estimate | None = stored(omit_none=True, parse=Estimate.from_dict)
    E_covers_bayes: bool | None = stored(omit_none=True)


def pooled_label_probabilities(
    records: Sequence[Mapping[str, Any] | None], n_test: int, what: str
) -> np.ndarray | None:
    """(n_test,) the true probability of every pooled test row's label, from a
    horizon's stored baselines records (one per fold, in fold order; one under
    holdout), or None where any record lacks them (market data, a record written
    before they were stored, a missing record). Refuses probabilities of another
    number of rows than the pooled test predictions (`n_test`)."""
    parts = [r.get(TEST_PROBABILITIES) if isinstance(r, Mapping) else None for r in records]
    if not parts or any(p is None for p in parts):
        return None
    p = np.concatenate([np.asarray(part, dtype=float) for part in parts])
    if p.shape != (n_test,):
        raise InputError(
            f"{what}: the stored label probabilities cover {p.size} test rows, the "
            f"evaluations {n_test}; remove the run directory's baselines/ folder and rerun",
            what,
        )
    return p


def horizon_bayes_log_loss(p: np.ndarray | None) -> float | None:
    """The Bayes log loss (nats) of the scored rows' true probabilities `p` (n_rows,),
    or None where they are not known."""
    return None if p is None else bayes_log_loss(p)


def _upper(row: Any) -> float:
    """The upper end of a budget's test log loss: the higher of its seed and test-date
    intervals' (NaN where neither is finite)."""
    metric = row.metrics["log_loss"]
    highs = [h for h in (metric.seed_high, metric.boot_high) if h is not None and math.isfinite(h)]
    return max(highs) if highs else math.nan


def bayes_check(
    bayes: float | None, rows: Sequence[Any], law: ScalingLawBootstrap | None
) -> BayesCheck | None:
    """The horizon's budgets (`rows`, their `ScalingRow`s) and fitted law (`law`, None
    where skipped) against its Bayes log loss `bayes` (nats); None where that is not
    known."""
    if bayes is None:
        return None
    below = tuple(row.budget for row in rows if _upper(row) < bayes)
    if law is None:
        return BayesCheck(below_bayes=below)
    E = law.E
    covers = None
    if all(v is not None and math.isfinite(v) for v in (E.low, E.high)):
        covers = bool(E.low <= bayes <= E.high)
    return BayesCheck(below_bayes=below, E=E, E_covers_bayes=covers)
