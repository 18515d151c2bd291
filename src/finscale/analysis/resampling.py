"""The draws of test dates that every interval resamples: circular blocks of days
(`arch.bootstrap`), within each walk-forward fold, and for a panel whole dates with
every symbol on them. One matrix of draws serves every model of a horizon, so
comparisons are paired.

Pure functions of integers and date arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from arch.bootstrap import CircularBlockBootstrap


def block_length_days(n_samples: int, horizon_days: int) -> int:
    """Block length, in days (samples), of the block bootstrap over `n_samples` test dates.

    `max(horizon_days, ceil(n_samples ** (1/3)))`: labels over a horizon of h
    days overlap, so dates closer than h days are dependent and a block must
    never cut them apart; beyond that, blocks grow like n^(1/3), the usual
    rate for block bootstraps.
    """
    if int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    if int(horizon_days) != horizon_days or horizon_days < 1:
        raise ValueError(f"horizon_days must be a positive integer, got {horizon_days!r}")
    n = int(n_samples)
    # Integer cube root: the float n ** (1/3) is 3.0000000000000004 for n = 27,
    # whose ceiling would be one day too long.
    root = round(n ** (1.0 / 3.0))
    while root**3 < n:
        root += 1
    while root > 1 and (root - 1) ** 3 >= n:
        root -= 1
    return max(int(horizon_days), root)


def bootstrap_indices(n_samples: int, block_days: int, n_resamples: int, seed: int) -> np.ndarray:
    """Resampled test-date indices of a circular block bootstrap.

    Returns an int array of shape (n_resamples, n_samples): each row is made of
    blocks of `block_days` consecutive indices (modulo n_samples, the last block
    cut short), drawn by `arch.bootstrap.CircularBlockBootstrap` seeded with
    `seed`, so the same arguments give the same matrix. Share one matrix
    between all models of one horizon so that their comparisons are paired.
    """
    if int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    if int(block_days) != block_days or block_days < 1:
        raise ValueError(f"block_days must be a positive integer, got {block_days!r}")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    bootstrap = CircularBlockBootstrap(int(block_days), np.arange(int(n_samples)), seed=seed)
    rows = [positional[0] for positional, _ in bootstrap.bootstrap(int(n_resamples))]
    return np.stack(rows).astype(np.int64, copy=False)


def stratified_bootstrap_indices(
    sizes: Any, block_days: int, n_resamples: int, seed: int
) -> np.ndarray:
    """`bootstrap_indices` of consecutive strata (walk-forward test folds), side by side.

    sizes: the sample count of each stratum, in order; the strata occupy
    consecutive index ranges. Each stratum is resampled within itself (seed
    `seed + k` for stratum k), so no block crosses a boundary and every
    resample keeps each stratum's size. One stratum is `bootstrap_indices`.
    Returns int (n_resamples, sum(sizes)).
    """
    sizes = [int(n) for n in sizes]
    if not sizes:
        raise ValueError("sizes must name at least one stratum")
    offsets = np.cumsum([0, *sizes[:-1]])
    return np.concatenate(
        [
            bootstrap_indices(n, min(block_days, n), n_resamples, seed + k) + offset
            for k, (n, offset) in enumerate(zip(sizes, offsets, strict=True))
        ],
        axis=1,
    )


def date_bootstrap_indices(
    dates: Any, strata: Any, block_days: int, n_resamples: int, seed: int
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
    drawn = stratified_bootstrap_indices(sizes, block_days, n_resamples, seed)
    if (counts == 1).all():
        return order[drawn]
    out = np.empty((drawn.shape[0], n), dtype=np.int64)
    for row, groups in enumerate(drawn):
        take = counts[groups]
        first = np.repeat(starts[groups], take)
        within = np.arange(take.sum()) - np.repeat(np.cumsum(take) - take, take)
        out[row] = np.resize(order[first + within], n)
    return out
