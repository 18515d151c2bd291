"""The draws of test dates that every interval resamples: circular blocks of days
(as `arch.bootstrap.CircularBlockBootstrap` draws them), within each walk-forward
fold, and for a panel whole dates with every symbol on them. One matrix of draws
serves every model of a horizon, so comparisons are paired.

How long a block must be depends on how strongly the per-date losses depend on
each other, not only on how many there are: `automatic_block_days` reads it from
the data (Politis and White 2004, with Patton, Politis and White's 2009
correction, as `arch.bootstrap.optimal_block_length` computes it), never shorter
than the label horizon. `newey_west_spread` is the standard error of a mean of
dependent per-date values by another road (a Bartlett-kernel long-run variance),
kept beside the bootstrap's as a cross-check.

Pure functions of integers and arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from arch.bootstrap import optimal_block_length
from arch.covariance.kernel import Bartlett

# A circular block as long as the sample redraws the same dates in another order:
# blocks are capped so that every fold holds at least this many.
MIN_BLOCKS_PER_FOLD = 4


def automatic_block_days(series: Any, horizon_days: int) -> int:
    """Block length, in days, of the circular block bootstrap of per-date `series`.

    series: (n_days,) or (n_days, n_series) per-date values in date order (a
    model's per-date loss, a difference of two models'). Politis-White's automatic
    length for the circular bootstrap of each column, the longest of them rounded
    up, never shorter than `horizon_days` (labels over h days overlap, so dates
    closer than h are dependent whatever the estimate says) and never longer than
    n_days / MIN_BLOCKS_PER_FOLD (a block as long as the sample only rotates it);
    where the two bounds cross, `horizon_days` wins. A constant column has no
    dependence to measure and asks for no more than the floor.
    """
    if int(horizon_days) != horizon_days or horizon_days < 1:
        raise ValueError(f"horizon_days must be a positive integer, got {horizon_days!r}")
    values = np.asarray(series, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] < 1:
        raise ValueError(
            f"series must have shape (n_days,) or (n_days, n_series), got {values.shape}"
        )
    if not np.isfinite(values).all():
        raise ValueError("series must be finite")
    n_days = values.shape[0]
    varying = values[:, values.std(axis=0) > 0]
    estimate = 1.0
    if varying.shape[1] and n_days >= 8:  # the estimator needs a few lags to look at
        estimate = float(np.nanmax(optimal_block_length(varying)["circular"].to_numpy()))
    cap = max(n_days // MIN_BLOCKS_PER_FOLD, 1)
    return max(int(horizon_days), min(math.ceil(estimate), cap))


def newey_west_spread(series: Any, bandwidth_days: int) -> float:
    """Standard error of the mean of per-date `series` (n_days,) under dependence:
    sqrt(long-run variance / n_days), the long-run variance a Bartlett-kernel
    (Newey-West) estimate with `bandwidth_days` lags. NaN for fewer than two days."""
    values = np.asarray(series, dtype=float).ravel()
    if values.size < 2:
        return math.nan
    if int(bandwidth_days) != bandwidth_days or bandwidth_days < 0:
        raise ValueError(f"bandwidth_days must be a non-negative integer, got {bandwidth_days!r}")
    if values.std() == 0:
        return 0.0
    bandwidth = min(int(bandwidth_days), values.size - 1)
    long_run = float(np.asarray(Bartlett(values, bandwidth=bandwidth).cov.long_run).item())
    return math.sqrt(max(long_run, 0.0) / values.size)


def bootstrap_indices(n_samples: int, block_days: int, n_resamples: int, seed: int) -> np.ndarray:
    """Resampled test-date indices of a circular block bootstrap.

    Returns an int array of shape (n_resamples, n_samples): each row is made of
    blocks of `block_days` consecutive indices (modulo n_samples, the last block
    cut short), each block starting at a uniformly drawn index: the draw of
    `arch.bootstrap.CircularBlockBootstrap`, made for every resample at once
    (arch draws one resample per Python iteration, which was half the time of a
    report) from a numpy Generator seeded with `seed`, so the same arguments
    give the same matrix. Share one matrix between all models of one horizon so
    that their comparisons are paired.
    """
    if int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    if int(block_days) != block_days or block_days < 1:
        raise ValueError(f"block_days must be a positive integer, got {block_days!r}")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    n, block, count = int(n_samples), int(block_days), int(n_resamples)
    starts = np.random.default_rng(seed).integers(0, n, size=(count, -(-n // block)))
    rows = (starts[:, :, None] + np.arange(block)).reshape(count, -1)[:, :n]
    return (rows % n).astype(np.int64, copy=False)


def per_stratum(block_days: int | Sequence[int], n_strata: int) -> list[int]:
    """One block length per stratum: `block_days` for each, or its own for each."""
    if np.ndim(block_days) == 1:
        lengths = [int(b) for b in block_days]  # type: ignore[union-attr]
        if len(lengths) != n_strata:
            raise ValueError(f"{len(lengths)} block lengths for {n_strata} strata")
        return lengths
    return [int(block_days)] * n_strata


def stratified_bootstrap_indices(
    sizes: Any, block_days: int | Sequence[int], n_resamples: int, seed: int
) -> np.ndarray:
    """`bootstrap_indices` of consecutive strata (walk-forward test folds), side by side.

    sizes: the sample count of each stratum, in order; the strata occupy
    consecutive index ranges. block_days: one block length for all, or one per
    stratum (each fold's own dependence). Each stratum is resampled within
    itself (seed `seed + k` for stratum k), so no block crosses a boundary and
    every resample keeps each stratum's size. One stratum is `bootstrap_indices`.
    Returns int (n_resamples, sum(sizes)).
    """
    sizes = [int(n) for n in sizes]
    if not sizes:
        raise ValueError("sizes must name at least one stratum")
    blocks = per_stratum(block_days, len(sizes))
    offsets = np.cumsum([0, *sizes[:-1]])
    return np.concatenate(
        [
            bootstrap_indices(n, min(b, n), n_resamples, seed + k) + offset
            for k, (n, b, offset) in enumerate(zip(sizes, blocks, offsets, strict=True))
        ],
        axis=1,
    )


def date_bootstrap_indices(
    dates: Any, strata: Any, block_days: int | Sequence[int], n_resamples: int, seed: int
) -> np.ndarray:
    """Resampled sample indices that draw dates, every sample of a drawn date together
    (all the symbols of a panel on that day), in blocks of `block_days` dates within
    each stratum (walk-forward fold).

    dates: (n,) the date of each sample; strata: (n,) its stratum, the strata in
    order of first appearance, each a consecutive range. The dates of each stratum
    are resampled as `stratified_bootstrap_indices` resamples samples, and each
    drawn date is expanded into its samples; a resample of a panel whose dates carry
    different numbers of symbols is cut or wrapped round to n samples (exact for a
    balanced panel). With one sample per date this is `stratified_bootstrap_indices`.
    Returns int (n_resamples, n).
    """
    dates = np.asarray(dates)
    strata = np.asarray(strata)
    n = dates.size
    if n == 0 or strata.shape != dates.shape:
        raise ValueError("dates and strata must be non-empty and of one shape")
    # each stratum's rank in order of first appearance, then samples sorted by (rank, date)
    _, first_seen, inverse = np.unique(strata, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first_seen))[inverse.ravel()]
    n_strata = first_seen.size
    order = np.lexsort((dates, rank))
    keys_rank, keys_date = rank[order], dates[order]
    new_group = np.r_[True, (keys_rank[1:] != keys_rank[:-1]) | (keys_date[1:] != keys_date[:-1])]
    starts = np.flatnonzero(new_group)
    counts = np.diff(np.r_[starts, n])
    group_stratum = keys_rank[starts]
    sizes = np.bincount(group_stratum, minlength=n_strata).tolist()
    drawn = stratified_bootstrap_indices(
        sizes, per_stratum(block_days, n_strata), n_resamples, seed
    )
    if (counts == 1).all():
        return order[drawn]
    out = np.empty((drawn.shape[0], n), dtype=np.int64)
    for row, groups in enumerate(drawn):
        take = counts[groups]
        first = np.repeat(starts[groups], take)
        within = np.arange(take.sum()) - np.repeat(np.cumsum(take) - take, take)
        out[row] = np.resize(order[first + within], n)
    return out


# Values gathered per chunk of resamples by `resampled_means`: (rows x chunk x dates)
# float64 stays near 64 MiB (a study of 80,000 test dates and 27 runs would gather
# 17 GB at once).
GATHER_BYTES = 64 * 2**20


def resampled_means(values: Any, indices: Any) -> np.ndarray:
    """Each row's mean over each resample of its columns.

    values: (n_rows, n_dates); indices: (n_resamples, n_draws) column indices.
    Returns (n_resamples, n_rows): ``values[:, indices].mean(axis=2).T``, gathered a
    chunk of resamples at a time so memory stays bounded whatever the test length.
    """
    values = np.asarray(values, dtype=float)
    indices = np.asarray(indices)
    if values.ndim != 2 or indices.ndim != 2:
        raise ValueError("values must be (n_rows, n_dates) and indices (n_resamples, n_draws)")
    out = np.empty((indices.shape[0], values.shape[0]))
    per_resample = max(1, values.shape[0] * indices.shape[1] * 8)
    chunk = max(1, GATHER_BYTES // per_resample)
    for start in range(0, indices.shape[0], chunk):
        block = indices[start : start + chunk]
        out[start : start + len(block)] = values[:, block].mean(axis=2).T
    return out
