"""Feature scaling across tiers: does a study on more features predict better?

A study on several tiers (`scale.tiers`) runs every budget and horizon on each.
Per budget and horizon, each tier is compared with the next in the order given:
the paired change in test log loss (next tier minus this one, nats) on the test
samples both tiers scored, with its block-bootstrap interval, MDE and p-value,
then corrected in the study's family (`finscale.analysis.family`). Tiers may
cover different dates (tier a100 starts where VIX's history does, and its
walk-forward folds tile a shorter span): the comparison keeps the samples both
have, keyed by date (and symbol, in a panel), stratified by the first tier's
folds, so it is paired on exactly the dates it names.

Each tier's loss is also summarised on the samples every tier shares, so that
the lines of one figure are drawn on one set of dates.

Pure functions of the runs' records.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from finscale.analysis.bootstrap import PairedDifference
from finscale.analysis.draw_metrics import sample_log_loss
from finscale.analysis.folds import (
    LossSummary,
    PairedDates,
    block_days_of_folds,
    by_fold,
    loss_summary,
    pooled_symbols,
    pooled_test,
)
from finscale.analysis.records import EvaluationRun
from finscale.analysis.serial import Record, mapping_of, stored, tuple_of
from finscale.config import ScaleConfig
from finscale.errors import InputError

# The kind the tier comparisons count as among the study's family of comparisons.
FAMILY_KIND = "tier against the next"

# (budget, horizon) -> the runs of one study, folds in order, seeds in order within each
Runs = Mapping[tuple[int, int], Sequence[EvaluationRun]]


@dataclass(frozen=True, kw_only=True)
class TierInfo(Record):
    """One tier of the study: its feature count, the budgets it was studied at (those
    whose grid holds an architecture on its features), test samples (pooled over
    folds, at the first horizon), the training samples of its last fold's runs (the
    most history), and the span of its test dates (YYYY-MM-DD)."""

    tier: str
    n_features: int
    budgets: tuple[int, ...]
    test_samples: int
    train_samples: int
    first_test_date: str
    last_test_date: str


@dataclass(frozen=True, kw_only=True)
class TierComparison(Record):
    """One tier against the next at one budget and horizon, on the test samples both
    have: `shared_test_days` distinct dates (`shared_samples` samples, a panel's
    symbols counted apart) from `first_shared_date` to `last_shared_date`;
    `log_loss` the paired change next tier minus this tier (negative: the next tier
    predicts better), its interval, `mde`, verdict and `holm_verdict`."""

    horizon_days: int
    budget: int
    tier: str
    next_tier: str
    shared_test_days: int
    shared_samples: int
    first_shared_date: str
    last_shared_date: str
    log_loss: PairedDifference = stored(parse=PairedDifference.from_dict)

    def to_dict(self) -> dict:
        # The figures a script reads first, flat beside the full difference.
        change = self.log_loss
        return {
            **super().to_dict(),
            "change": change.difference,
            "low": change.low,
            "high": change.high,
            "mde": change.mde,
            "holm_verdict": change.holm_verdict,
        }


@dataclass(frozen=True, kw_only=True)
class TierLoss(Record):
    """Each tier's test log loss at one budget and horizon on the samples every tier
    shares (`shared_test_days` dates, `first_shared_date` to `last_shared_date`), by
    tier."""

    horizon_days: int
    budget: int
    shared_test_days: int
    first_shared_date: str
    last_shared_date: str
    log_loss: Mapping[str, LossSummary] = stored(parse=mapping_of(LossSummary.from_dict))


@dataclass(frozen=True, kw_only=True)
class TierResults(Record):
    """`scaling.json`'s `tiers`: every tier in order, each against the next at every
    budget and horizon, and the losses on the dates all tiers share."""

    tiers: tuple[TierInfo, ...] = stored(parse=tuple_of(TierInfo.from_dict))
    comparisons: tuple[TierComparison, ...] = stored(parse=tuple_of(TierComparison.from_dict))
    losses: tuple[TierLoss, ...] = stored(parse=tuple_of(TierLoss.from_dict))


@dataclass(frozen=True)
class _Pooled:
    """One study's pooled test samples: labels (n,), predictions (seeds, n), each
    sample's fold (n,), date (n,) and key (date, or date and symbol in a panel)."""

    y: np.ndarray
    preds: np.ndarray
    fold_ids: np.ndarray
    dates: np.ndarray
    keys: np.ndarray
    panel: bool

    @classmethod
    def of(cls, runs: Sequence[EvaluationRun], what: str) -> _Pooled:
        y, preds, fold_ids = pooled_test(runs, what)
        dates = np.array([d for group in by_fold(runs).values() for d in group[0].test_dates])
        panel = len(set(dates.tolist())) < len(dates)
        keys = (
            np.char.add(np.char.add(dates, "|"), pooled_symbols(runs).astype(str))
            if panel
            else dates
        )
        return cls(y, preds, fold_ids, dates, keys, panel)

    def take(self, index: np.ndarray) -> _Pooled:
        return _Pooled(
            self.y[index],
            self.preds[:, index],
            self.fold_ids[index],
            self.dates[index],
            self.keys[index],
            self.panel,
        )


def shared_samples(pooled: Sequence[_Pooled], what: str) -> list[_Pooled]:
    """Each of `pooled` on the samples all of them have, in the first one's order (its
    folds one after another). Labels that differ on a shared sample are an
    `InputError`: the tiers were not labelled alike."""
    common = set(pooled[0].keys.tolist())
    for other in pooled[1:]:
        common &= set(other.keys.tolist())
    first = np.flatnonzero(np.isin(pooled[0].keys, list(common)))
    order = pooled[0].keys[first]
    out = [pooled[0].take(first)]
    for other in pooled[1:]:
        position = {key: i for i, key in enumerate(other.keys.tolist())}
        out.append(other.take(np.array([position[k] for k in order.tolist()], dtype=int)))
    for other in out[1:]:
        if not np.array_equal(other.y, out[0].y):
            raise InputError(
                f"{what}: the tiers' runs label the same test dates differently; they must "
                "share the data section but for the tier",
                what,
            )
    return out


def _paired_dates(
    pooled: Sequence[_Pooled], scale: ScaleConfig, threshold: float, horizon: int
) -> PairedDates:
    """The bootstrap over the shared samples, stratified by the first's folds."""
    first = pooled[0]
    folds = list(dict.fromkeys(first.fold_ids.tolist()))
    masks = [first.fold_ids == f for f in folds]
    by_date = first.dates if first.panel else None
    if scale.block_days:
        blocks: list[int] = [scale.block_days] * len(masks)
    else:
        losses = [sample_log_loss(p.y, p.preds).mean(axis=0) for p in pooled]
        blocks = block_days_of_folds(losses, masks, by_date, horizon)
    sizes = [int(m.sum()) for m in masks]
    return PairedDates(first.y, sizes, blocks, scale, threshold, by_date)


def compare_tiers(
    first: _Pooled,
    second: _Pooled,
    budget: int,
    horizon: int,
    tiers: tuple[str, str],
    scale: ScaleConfig,
    threshold: float,
) -> TierComparison:
    """`tiers[1]` against `tiers[0]` at one budget and horizon on the samples both have."""
    what = f"h={horizon} budget {budget}: tier {tiers[0]} against {tiers[1]}"
    a, b = shared_samples([first, second], what)
    if a.y.size == 0:
        raise InputError(f"{what}: the tiers share no test date", "scale.tiers")
    paired = _paired_dates([a, b], scale, threshold, horizon)
    days = np.unique(a.dates)
    return TierComparison(
        horizon_days=horizon,
        budget=budget,
        tier=tiers[0],
        next_tier=tiers[1],
        shared_test_days=int(days.size),
        shared_samples=int(a.y.size),
        first_shared_date=str(days[0]),
        last_shared_date=str(days[-1]),
        log_loss=paired.difference(a.preds, b.preds, "log_loss"),
    )


def tier_info(tier: str, studies: Runs, n_features: int) -> TierInfo:
    """A tier's feature count, budgets, samples and test span, from its smallest
    budget's runs at the first horizon."""
    budget, horizon = min(studies, key=lambda k: (k[1], k[0]))
    runs = studies[(budget, horizon)]
    dates = sorted({d for run in runs for d in run.test_dates})
    last_fold = list(by_fold(runs).values())[-1]
    return TierInfo(
        tier=tier,
        n_features=n_features,
        budgets=tuple(sorted({b for b, h in studies if h == horizon})),
        test_samples=len(pooled_test(runs, tier)[0]),
        train_samples=int(last_fold[0].n_train),
        first_test_date=dates[0],
        last_test_date=dates[-1],
    )


def tier_results(
    evaluations: Mapping[str, Runs],
    n_features: Mapping[str, int],
    scale: ScaleConfig,
    threshold: float,
) -> TierResults:
    """Every tier of `evaluations` (by tier, in the study's order; each maps (budget,
    horizon) to its runs), each against the next at every budget and horizon both
    were studied at, and every tier's loss on the samples all tiers share wherever
    all of them were studied."""
    tiers = list(evaluations)
    infos = tuple(tier_info(t, evaluations[t], n_features[t]) for t in tiers)
    keys = sorted({k for t in tiers for k in evaluations[t]}, key=lambda k: (k[1], k[0]))
    comparisons, losses = [], []
    for budget, horizon in keys:
        what = f"h={horizon} budget {budget}"
        pooled = {
            t: _Pooled.of(evaluations[t][(budget, horizon)], f"{what} tier {t}")
            for t in tiers
            if (budget, horizon) in evaluations[t]
        }
        for ta, tb in itertools.pairwise(tiers):
            if ta in pooled and tb in pooled:
                comparisons.append(
                    compare_tiers(
                        pooled[ta], pooled[tb], budget, horizon, (ta, tb), scale, threshold
                    )
                )
        if len(pooled) < len(tiers):
            continue
        shared = shared_samples(list(pooled.values()), what)
        if shared[0].y.size == 0:
            continue
        paired = _paired_dates(shared, scale, threshold, horizon)
        days = np.unique(shared[0].dates)
        losses.append(
            TierLoss(
                horizon_days=horizon,
                budget=budget,
                shared_test_days=int(days.size),
                first_shared_date=str(days[0]),
                last_shared_date=str(days[-1]),
                log_loss={
                    t: loss_summary(paired, p.preds) for t, p in zip(tiers, shared, strict=True)
                },
            )
        )
    return TierResults(tiers=infos, comparisons=tuple(comparisons), losses=tuple(losses))
