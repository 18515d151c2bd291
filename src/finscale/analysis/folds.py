"""Test dates scored fold by fold (walk-forward) or all at once (holdout): one model's
runs pooled over folds, the dates comparisons are paired on, and how many folds
agree.

Under walk-forward every fold is scored by its own retrained models; the pooled
test dates are the folds' dates one after another, and every bootstrap draw
resamples each fold within itself (`stratified_bootstrap_indices`), so no block
crosses a fold boundary. Holdout is one fold, numbered -1.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from finscale.analysis.bootstrap import (
    IMPROVES,
    WORSENS,
    MetricSummary,
    PairedDifference,
    automatic_block_days,
    date_bootstrap_indices,
    paired_difference,
    sample_log_loss,
    stratified_bootstrap_indices,
    summarize_runs,
)
from finscale.analysis.records import EvaluationRun
from finscale.analysis.resampling import newey_west_spread, per_stratum
from finscale.analysis.serial import Record, stored
from finscale.config import ScaleConfig
from finscale.errors import InputError


@dataclass(frozen=True, kw_only=True)
class LossSummary(Record):
    """A model's test log loss (nats) on some test dates: the seed mean, its interval
    over seeds and its interval over resampled dates (`MetricSummary`'s)."""

    mean: float
    seed_low: float
    seed_high: float
    boot_low: float
    boot_high: float


@dataclass(frozen=True, kw_only=True)
class FoldLoss(Record):
    """A model's test log loss on one walk-forward fold."""

    fold: int
    log_loss: LossSummary = stored(parse=LossSummary.from_dict)


@dataclass(frozen=True, kw_only=True)
class FoldDifference(Record):
    """A paired log-loss difference on one fold's own test dates (nats): `fold` (left
    out where the fold is the row's own), the difference, its interval, its verdict and
    its minimum detectable effect, its p-value and its verdict once the study's family
    is corrected (`PairedDifference`'s)."""

    fold: int | None = stored(omit_none=True)
    difference: float
    low: float
    high: float
    verdict: str | None
    mde: float
    p_value: float | None = stored(omit_none=True)
    holm_verdict: str | None = stored(omit_none=True)


@dataclass(frozen=True, kw_only=True)
class FoldAgreement(Record):
    """How many of `folds` a difference (lower is better) goes each way: `lower` by its
    point estimate, `improves` and `worsens` by its interval, `holm_improves` and
    `holm_worsens` by its verdict within the study's corrected family (None until
    the family is corrected)."""

    folds: int
    lower: int
    improves: int
    worsens: int
    holm_improves: int | None = stored(omit_none=True)
    holm_worsens: int | None = stored(omit_none=True)


@dataclass(frozen=True, kw_only=True)
class FoldSpan(Record):
    """A walk-forward fold's dates (YYYY-MM-DD): what its models trained on (None where
    the runs did not record it) and its test dates."""

    fold: int
    train_start: str | None
    train_end: str | None
    test_start: str
    test_end: str


def stacked_predictions(runs: Sequence[EvaluationRun], split: str) -> np.ndarray:
    return np.array([r.predictions[split] for r in runs], dtype=float)


def shared_labels(runs: Sequence[EvaluationRun], split: str, what: str) -> np.ndarray:
    labels = np.array(runs[0].labels[split], dtype=int)
    for r in runs[1:]:
        if r.labels[split] != runs[0].labels[split]:
            raise InputError(
                f"{what}: the stored {split} labels differ between runs of one horizon; the "
                "runs were made on different data; remove the run directory's evaluation/ "
                "folder and rerun",
                what,
            )
    return labels


def by_fold(runs: Sequence[EvaluationRun]) -> dict[int | None, list[EvaluationRun]]:
    """Runs grouped by test fold, folds and seeds in stored order."""
    groups: dict[int | None, list[EvaluationRun]] = {}
    for r in runs:
        groups.setdefault(r.fold, []).append(r)
    return groups


def pooled_test(
    runs: Sequence[EvaluationRun], what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One model's test labels (n,), predictions (n_seeds, n) and fold of each sample
    (n,), the folds' test dates one after another (one fold, -1, under holdout)."""
    labels, preds, fold_ids = [], [], []
    seeds = None
    for fold, group in by_fold(runs).items():
        y = shared_labels(group, "test", what)
        p = stacked_predictions(group, "test")
        if seeds is not None and p.shape[0] != seeds:
            raise InputError(f"{what}: fold {fold} has {p.shape[0]} seeds, another {seeds}", what)
        seeds = p.shape[0]
        labels.append(y)
        preds.append(p)
        fold_ids.append(np.full(len(y), -1 if fold is None else fold))
    return np.concatenate(labels), np.concatenate(preds, axis=1), np.concatenate(fold_ids)


def pooled_symbols(runs: Sequence[EvaluationRun]) -> np.ndarray:
    """The symbol of each pooled test sample of a panel's runs (folds in order)."""
    return np.concatenate(
        [np.array(group[0].test_symbols or (), dtype=object) for group in by_fold(runs).values()]
    )


class PairedDates:
    """Test dates that comparisons are paired on (all of a horizon's, or one fold's):
    their labels, the bootstrap's date draws, the interval level and the threshold.

    sizes: samples of each stratum (fold), in order; block_days: the block length of
    each stratum (or one for all); dates: (n,) each sample's date where several
    samples share a date (a panel), None where each sample is a date.
    """

    def __init__(
        self,
        y: np.ndarray,
        sizes: Sequence[int],
        block_days: int | Sequence[int],
        scale: ScaleConfig,
        threshold: float,
        dates: np.ndarray | None = None,
    ) -> None:
        self.y = y
        self.sizes = [int(n) for n in sizes]
        self.blocks = per_stratum(block_days, len(self.sizes))
        self.dates = dates
        if dates is None:
            self.indices = stratified_bootstrap_indices(
                self.sizes, self.blocks, scale.bootstrap_resamples, 0
            )
        else:  # draw dates, every sample (symbol) of a date together
            strata = np.repeat(np.arange(len(self.sizes)), self.sizes)
            self.indices = date_bootstrap_indices(
                dates, strata, self.blocks, scale.bootstrap_resamples, 0
            )
        self.level = scale.confidence_level
        self.threshold = threshold

    def summarize(self, preds: np.ndarray) -> dict[str, MetricSummary]:
        return summarize_runs(self.y, preds, self.indices, self.threshold, self.level)

    def difference(self, first: np.ndarray, second: np.ndarray, metric: str) -> PairedDifference:
        diff = paired_difference(
            self.y, first, second, self.indices, metric, 0, self.level, self.threshold
        )
        if metric != "log_loss":
            return diff
        return dataclasses.replace(diff, newey_west_spread=self.newey_west(first, second))

    def newey_west(self, first: np.ndarray, second: np.ndarray) -> float:
        """The log-loss difference's standard error by another road than the bootstrap:
        each fold's per-date difference of seed means by a Newey-West long-run variance
        (its block length as bandwidth), the folds weighted by their samples, plus the
        seeds' part s_a^2 / k_a + s_b^2 / k_b of the two models' full-sample losses."""
        per_sample = sample_log_loss(self.y, second).mean(axis=0) - sample_log_loss(
            self.y, first
        ).mean(axis=0)
        n = per_sample.size
        variance = 0.0
        start = 0
        for size, block in zip(self.sizes, self.blocks, strict=True):
            piece = per_sample[start : start + size]
            if self.dates is not None:
                piece = per_date_means(piece, self.dates[start : start + size])
            variance += (size / n) ** 2 * newey_west_spread(piece, block) ** 2
            start += size
        for preds in (first, second):
            k = preds.shape[0]
            if k > 1:
                per_seed = sample_log_loss(self.y, preds).mean(axis=1)
                variance += float(per_seed.var(ddof=1)) / k
        return math.sqrt(variance)


def per_date_means(values: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """The mean of `values` (n,) over the samples of each date, dates in sorted order."""
    _, inverse = np.unique(dates, return_inverse=True)
    inverse = inverse.ravel()
    counts = np.bincount(inverse)
    return np.bincount(inverse, weights=values) / counts


def block_days_of_folds(
    losses: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    dates: np.ndarray | None,
    horizon_days: int,
) -> list[int]:
    """Each fold's block length read from its data (`automatic_block_days`): the
    per-date loss of every model in `losses` (each (n,), seed means) and the
    differences of consecutive ones, on that fold's dates (a panel's averaged over
    the symbols of a date), the longest any of them asks for."""
    out = []
    for mask in masks:
        columns = [loss[mask] for loss in losses]
        columns += [b - a for a, b in itertools.pairwise(columns)]
        if dates is not None:
            columns = [per_date_means(c, dates[mask]) for c in columns]
        out.append(automatic_block_days(np.column_stack(columns), horizon_days))
    return out


def fold_agreement(per_fold: Sequence[FoldDifference]) -> FoldAgreement:
    """How many folds a difference (lower is better) goes each way."""
    return FoldAgreement(
        folds=len(per_fold),
        lower=sum(1 for f in per_fold if f.difference < 0),
        improves=sum(1 for f in per_fold if f.verdict == IMPROVES),
        worsens=sum(1 for f in per_fold if f.verdict == WORSENS),
    )


def loss_summary(sample: PairedDates, preds: np.ndarray) -> LossSummary:
    return LossSummary.from_attributes(sample.summarize(preds)["log_loss"])


class Horizon:
    """What every comparison of one horizon shares: the pooled test dates of every fold
    (one fold under holdout) and each fold's own; each budget's pooled predictions."""

    def __init__(
        self,
        horizon: int,
        evaluations: Mapping[int, Sequence[EvaluationRun]],
        scale: ScaleConfig,
        threshold: float,
    ) -> None:
        self.horizon = horizon
        self.what = f"h={horizon}"
        self.budgets = sorted(evaluations)
        self.runs = [r for b in self.budgets for r in evaluations[b]]
        self.preds = {}
        for b in self.budgets:
            y, self.preds[b], fold_ids = pooled_test(evaluations[b], self.what)
            if b == self.budgets[0]:
                self.y_test, self.fold_ids = y, fold_ids
            elif not np.array_equal(y, self.y_test) or not np.array_equal(fold_ids, self.fold_ids):
                raise InputError(
                    f"{self.what}: budgets were scored on different test dates; remove the "
                    "run directory's evaluation/ folder and rerun",
                    self.what,
                )
        self.n_test = len(self.y_test)
        self.fold_numbers = [int(f) for f in dict.fromkeys(self.fold_ids.tolist())]
        self.masks = [self.fold_ids == f for f in self.fold_numbers]
        sizes = [int(m.sum()) for m in self.masks]
        first = evaluations[self.budgets[0]]
        self.test_dates = [d for group in by_fold(first).values() for d in group[0].test_dates]
        dates = np.array(self.test_dates)
        # A panel has several samples (symbols) per date: the bootstrap draws dates.
        self.panel = len(set(self.test_dates)) < len(self.test_dates)
        self.symbols = pooled_symbols(first) if self.panel else None
        by_date = dates if self.panel else None
        if scale.block_days:
            self.fold_block_days = [scale.block_days] * len(self.masks)
        else:
            losses = [
                sample_log_loss(self.y_test, self.preds[b]).mean(axis=0) for b in self.budgets
            ]
            self.fold_block_days = block_days_of_folds(losses, self.masks, by_date, horizon)
        self.block_days = max(self.fold_block_days)
        self.pooled = PairedDates(
            self.y_test, sizes, self.fold_block_days, scale, threshold, by_date
        )
        self.walk_forward = self.fold_numbers != [-1]
        self.per_fold = (
            [
                PairedDates(
                    self.y_test[m],
                    [int(m.sum())],
                    block,
                    scale,
                    threshold,
                    dates[m] if self.panel else None,
                )
                for m, block in zip(self.masks, self.fold_block_days, strict=True)
            ]
            if self.walk_forward
            else []
        )
        self.level = scale.confidence_level
        self.threshold = threshold
        self.fold_spans = [
            FoldSpan(
                fold=fold,
                train_start=group[0].train_span[0] if group[0].train_span else None,
                train_end=group[0].train_span[1] if group[0].train_span else None,
                test_start=min(group[0].test_dates),
                test_end=max(group[0].test_dates),
            )
            for fold, group in by_fold(first).items()
            if fold is not None
        ]

    def summarize(self, preds: np.ndarray) -> dict[str, MetricSummary]:
        return self.pooled.summarize(preds)

    def difference(self, first: np.ndarray, second: np.ndarray, metric: str) -> PairedDifference:
        return self.pooled.difference(first, second, metric)

    def fold_differences(self, first: np.ndarray, second: np.ndarray) -> tuple[FoldDifference, ...]:
        """The log-loss difference second - first on each fold's own test dates."""
        return tuple(
            FoldDifference.from_attributes(
                sample.difference(first[:, mask], second[:, mask], "log_loss"), fold=fold
            )
            for fold, mask, sample in zip(
                self.fold_numbers, self.masks, self.per_fold, strict=False
            )
        )
