"""How much of a search's ranking is luck: the probability of backtest overfitting
(PBO) and its distribution under the null.

PBO (Bailey, Borwein, Lopez de Prado and Zhu 2015, "The probability of
backtest overfitting", by combinatorially symmetric cross-validation, CSCV):
the trials' validation losses by date, a matrix of shape (n_dates, n_trials),
are cut into S contiguous blocks of dates (S even). For each of the C(S, S/2)
ways to take half the blocks as in-sample (IS) and the other half as
out-of-sample (OOS), the trial with the lowest IS mean loss is the IS winner,
and its OOS performance is ranked among all trials: omega = rank / (n_trials
+ 1), rank 1 the worst OOS and n_trials the best, and its logit
lambda = ln(omega / (1 - omega)). PBO is the share of combinations where the
IS winner ranks below the OOS median (lambda < 0; a winner exactly at the
median counts half, so that pure noise gives 0.5 for every trial count; losses
within a relative `TIE_RTOL` of each other tie, so that rounding in the sums
does not break a tie of two identical trials). The degradation slope regresses
the winner's OOS loss on its IS loss over the combinations: near 0 or negative,
IS success says nothing about OOS.

One search's PBO is a noisy figure: pure noise gives 0.5 on average, but one
noise-only search of 40 trials ranges over roughly 0.2-0.8 (5-95%). The
`null_reference` of a PBO is its distribution over simulated searches of the
same shape (trials, dates, blocks) in which no trial is better than another:
each trial's loss is independent noise per date. A per-date loss component
shared by all trials (a hard day is hard for every model) adds the same amount
to every trial's in-sample and out-of-sample mean, so it changes no argmin and
no rank: the null needs none. Only a PBO below the null's 5% quantile says the
in-sample ranking carries out of sample more often than pure noise does.

The Sharpe-ratio side of the same question (DSR, PSR, the economic
illustration) is `finscale.analysis.sharpe`.

Vectorised NumPy; pure functions of arrays.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from finscale.analysis.bootstrap import sample_log_loss
from finscale.analysis.serial import Record, stored

PBO_BLOCKS = 16
# Two mean losses within this relative distance tie: rounding in block sums of
# identical trials differs in the last digits, real differences are far larger.
TIE_RTOL = 1e-9
# Simulated searches per null reference of a PBO, and their seed. The 5% quantile's
# share is then known to +-0.007 (one standard error), so a call below it keeps a
# size of 4-6%; one reference of 40 trials and 16 blocks takes a few seconds.
PBO_NULL_SIMULATIONS = 1000
PBO_NULL_SEED = 20150901
LOGIT_BINS = 20  # of the logit histogram stored with a PBO


@dataclass(frozen=True, kw_only=True)
class Histogram(Record):
    """Counts of values in the bins between consecutive `edges`."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class NullReference(Record):
    """The distribution of a PBO under the null (no trial better than another) for one
    search shape: its 5%, 50% and 95% quantiles over `simulations` simulated searches."""

    q05: float
    q50: float
    q95: float
    simulations: int


@dataclass(frozen=True, kw_only=True)
class PBOSummary(Record):
    """What a file keeps of a study's probability of backtest overfitting: `value` in
    [0, 1] over `trials` trials cut into `blocks` blocks of dates, the number of
    `combinations`, the quartiles and histogram of the combinations' logits, the
    degradation line (out-of-sample against in-sample loss, nats) and the winner's mean
    in-sample and out-of-sample loss, the `null_reference` of its shape and the
    `null_quantile` where `value` falls in it (the share of null searches below it,
    ties half; None in files written before the reference); or, where the search
    cannot be judged, `value` None and the reason `skipped`."""

    value: float | None
    blocks: int
    trials: int
    combinations: int | None = stored(unless_skipped=True)
    logit_quartiles: tuple[float, float, float] | None = stored(unless_skipped=True)
    logit_histogram: Histogram | None = stored(unless_skipped=True, parse=Histogram.from_dict)
    degradation_slope: float | None = stored(unless_skipped=True)
    degradation_intercept: float | None = stored(unless_skipped=True)
    mean_in_sample_loss: float | None = stored(unless_skipped=True)
    mean_out_of_sample_loss: float | None = stored(unless_skipped=True)
    null_reference: NullReference | None = stored(omit_none=True, parse=NullReference.from_dict)
    null_quantile: float | None = stored(omit_none=True)
    skipped: str | None = stored(omit_none=True)

    @property
    def beats_null(self) -> bool:
        """The one call a PBO supports: below its null's 5% quantile, the search's ranking
        carries out of sample more often than pure noise does (False where not known)."""
        ref = self.null_reference
        return self.value is not None and ref is not None and self.value < ref.q05


@dataclass(frozen=True)
class PBOResult:
    """The CSCV estimate of one study's probability of backtest overfitting.

    logits, in_sample_loss, out_of_sample_loss: one value per combination
    (shape (combinations,)): the IS winner's lambda, its IS and OOS mean loss.
    """

    value: float
    blocks: int
    trials: int
    combinations: int
    logits: np.ndarray
    in_sample_loss: np.ndarray
    out_of_sample_loss: np.ndarray
    degradation_slope: float
    degradation_intercept: float

    def summary(self) -> PBOSummary:
        """What a file keeps: the logits' quartiles and histogram, not the full arrays."""
        q25, q50, q75 = np.percentile(self.logits, [25, 50, 75]).tolist()
        return PBOSummary(
            value=self.value,
            blocks=self.blocks,
            trials=self.trials,
            combinations=self.combinations,
            logit_quartiles=(q25, q50, q75),
            logit_histogram=logit_histogram(self.logits, self.trials),
            degradation_slope=self.degradation_slope,
            degradation_intercept=self.degradation_intercept,
            mean_in_sample_loss=float(self.in_sample_loss.mean()),
            mean_out_of_sample_loss=float(self.out_of_sample_loss.mean()),
        )


def logit_histogram(logits: np.ndarray, trials: int, bins: int = LOGIT_BINS) -> Histogram:
    """Counts of the combinations' logits in `bins` equal bins over the range a study of
    `trials` trials can reach, [-ln(trials), ln(trials)] (rank 1 to rank n)."""
    reach = math.log(max(int(trials), 2))
    edges = np.linspace(-reach, reach, bins + 1)
    counts, _ = np.histogram(np.clip(logits, -reach, reach), bins=edges)
    return Histogram(edges=tuple(edges.tolist()), counts=tuple(counts.tolist()))


def _checked_losses(losses: Any) -> np.ndarray:
    losses = np.asarray(losses, dtype=float)
    if losses.ndim != 2:
        raise ValueError(f"losses must have shape (n_dates, n_trials), got {losses.shape}")
    if losses.shape[1] < 2:
        raise ValueError(f"PBO needs at least 2 trials, got {losses.shape[1]}")
    if not np.isfinite(losses).all():
        raise ValueError("losses must be finite")
    return losses


def check_blocks(blocks: int, n_dates: int) -> None:
    """Raise ValueError unless `blocks` is an even number >= 2 and at most `n_dates`."""
    if int(blocks) != blocks or blocks < 2 or blocks % 2:
        raise ValueError(f"blocks must be an even integer >= 2, got {blocks!r}")
    if blocks > n_dates:
        raise ValueError(f"blocks ({blocks}) must not exceed the number of dates ({n_dates})")


@functools.lru_cache(maxsize=8)
def half_splits(blocks: int) -> np.ndarray:
    """Every choice of blocks/2 of `blocks` as in-sample: bool (C(blocks, blocks/2), blocks).

    Cached and read-only: building the 12,870 rows of 16 blocks costs more than a CSCV.
    """
    rows = list(itertools.combinations(range(blocks), blocks // 2))
    mask = np.zeros((len(rows), blocks), dtype=bool)
    for i, chosen in enumerate(rows):
        mask[i, list(chosen)] = True
    mask.setflags(write=False)
    return mask


def oos_relative_rank(oos_loss: np.ndarray, winner: np.ndarray) -> np.ndarray:
    """omega = rank / (n_trials + 1) of each row's winner by OOS loss, best = n_trials.

    oos_loss: (rows, n_trials); winner: (rows,) column indices. Losses within a
    relative `TIE_RTOL` of the winner's tie with it and share the mean of their
    ranks (two identical trials' sums can differ in the last digits).
    """
    n_trials = oos_loss.shape[1]
    mine = oos_loss[np.arange(len(winner)), winner][:, None]
    tolerance = TIE_RTOL * np.maximum(np.abs(mine), 1.0)
    tied_mask = np.abs(oos_loss - mine) <= tolerance
    worse = ((oos_loss > mine) & ~tied_mask).sum(axis=1)
    tied = tied_mask.sum(axis=1)  # includes the winner itself
    rank = worse + 1 + (tied - 1) / 2.0
    return rank / (n_trials + 1)


def share_below_median(omega: np.ndarray) -> float:
    """PBO from the winners' relative ranks: the share below the median (omega < 1/2),
    one exactly at it counting half (omega is a count over n_trials + 1, so exact)."""
    twice = 2.0 * np.asarray(omega)
    at_median = np.isclose(twice, 1.0, rtol=0, atol=1e-12)
    return float(np.mean((twice < 1.0) & ~at_median) + 0.5 * np.mean(at_median))


def probability_of_backtest_overfitting(losses: Any, blocks: int = PBO_BLOCKS) -> PBOResult:
    """PBO by CSCV of the trials' losses by date (lower is better).

    losses: (n_dates, n_trials), in date order, e.g. each trial's per-date
    validation log loss. blocks: the even number S of contiguous date blocks
    (sizes differ by at most one date).
    """
    losses = _checked_losses(losses)
    n_dates, n_trials = losses.shape
    check_blocks(blocks, n_dates)
    pieces = np.array_split(np.arange(n_dates), blocks)
    sums = np.stack([losses[piece].sum(axis=0) for piece in pieces])  # (S, n_trials)
    counts = np.array([len(piece) for piece in pieces], dtype=float)  # (S,)
    mask = half_splits(blocks).astype(float)  # (C, S)
    is_sum, is_count = mask @ sums, mask @ counts
    is_loss = is_sum / is_count[:, None]
    oos_loss = (sums.sum(axis=0) - is_sum) / (counts.sum() - is_count)[:, None]
    winner = np.argmin(is_loss, axis=1)
    omega = oos_relative_rank(oos_loss, winner)
    logits = np.log(omega / (1.0 - omega))
    value = share_below_median(omega)
    rows = np.arange(len(winner))
    winner_is, winner_oos = is_loss[rows, winner], oos_loss[rows, winner]
    if np.ptp(winner_is) > 0:
        slope, intercept = np.polyfit(winner_is, winner_oos, 1)
    else:
        slope, intercept = math.nan, float(winner_oos.mean())
    return PBOResult(
        value=value,
        blocks=int(blocks),
        trials=n_trials,
        combinations=len(rows),
        logits=logits,
        in_sample_loss=winner_is,
        out_of_sample_loss=winner_oos,
        degradation_slope=float(slope),
        degradation_intercept=float(intercept),
    )


# ---- the PBO of pure noise ------------------------------------------------------


def null_pbo_values(
    n_trials: int,
    n_dates: int,
    blocks: int = PBO_BLOCKS,
    simulations: int = PBO_NULL_SIMULATIONS,
    seed: int = PBO_NULL_SEED,
) -> np.ndarray:
    """(simulations,) PBOs of simulated searches in which no trial is better: each of
    `n_trials` trials' loss on each of `n_dates` dates is independent standard normal
    noise, cut into `blocks` blocks as `probability_of_backtest_overfitting` cuts them.

    Sorted, read-only and cached per arguments (the same seed gives the same values).
    CSCV sees a loss matrix only through its block sums, and a block sum of m
    independent N(0, 1) dates is N(0, m): the simulation draws the sums directly, which
    is the same distribution as drawing every date (the dates enter only as block
    sizes). A loss shared by all trials on a date shifts every trial's in-sample and
    out-of-sample mean alike and changes no argmin or rank, so it is left out; a common
    scale is left out for the same reason. The argmin and ranks are taken on the sums:
    dividing a combination's sums by its date count scales a whole row alike.
    """
    check_blocks(blocks, n_dates)
    if int(n_trials) != n_trials or n_trials < 2:
        raise ValueError(f"n_trials must be an integer >= 2, got {n_trials!r}")
    return _null_pbo_values(int(n_trials), int(n_dates), int(blocks), int(simulations), seed)


@functools.lru_cache(maxsize=64)
def _null_pbo_values(
    n_trials: int, n_dates: int, blocks: int, simulations: int, seed: int
) -> np.ndarray:
    counts = np.array([len(p) for p in np.array_split(np.arange(n_dates), blocks)], float)
    splits = half_splits(blocks)
    # Half the combinations hold block 0 in-sample; the other half are their
    # complements, whose in-sample sums are the first half's out-of-sample sums.
    half = splits[splits[:, 0]].astype(np.float32)
    rng = np.random.default_rng(seed)
    # float32: only argmins and orderings of sums of a few hundred unit draws are
    # used, and it halves the memory traffic that is the simulation's cost.
    sums = rng.standard_normal((blocks, simulations, n_trials), dtype=np.float32)
    sums *= np.sqrt(counts).astype(np.float32)[:, None, None]
    below = np.zeros(simulations)
    chunk = max(1, 2**21 // (half.shape[0] * n_trials))  # about 8 MB of float32 per array
    for start in range(0, simulations, chunk):
        part = sums[:, start : start + chunk]  # (blocks, k, n_trials)
        k = part.shape[1]
        in_half = (half @ part.reshape(blocks, -1)).reshape(half.shape[0], k, n_trials)
        out_half = part.sum(axis=0)[None] - in_half
        for inside, outside in ((in_half, out_half), (out_half, in_half)):
            winner = inside.argmin(axis=2)[..., None]
            mine = np.take_along_axis(outside, winner, axis=2)
            twice_rank = 2 * ((outside > mine).sum(axis=2) + 1)  # no ties in continuous noise
            below[start : start + k] += (twice_rank < n_trials + 1).sum(axis=0)
            below[start : start + k] += 0.5 * (twice_rank == n_trials + 1).sum(axis=0)
    values = np.sort(below / splits.shape[0])
    values.setflags(write=False)
    return values


def null_reference(
    n_trials: int, n_dates: int, blocks: int = PBO_BLOCKS, simulations: int = PBO_NULL_SIMULATIONS
) -> NullReference:
    """The 5/50/95% quantiles of `null_pbo_values` of this shape."""
    values = null_pbo_values(n_trials, n_dates, blocks, simulations)
    q05, q50, q95 = np.quantile(values, [0.05, 0.5, 0.95]).tolist()
    return NullReference(q05=q05, q50=q50, q95=q95, simulations=int(values.size))


def null_quantile(value: float, null_values: np.ndarray) -> float:
    """Where `value` falls among `null_values`: the share below it, those equal to it
    (within 1e-12, PBOs being shares of a finite count) counting half."""
    values = np.asarray(null_values, dtype=float)
    equal = np.isclose(values, value, rtol=0, atol=1e-12)
    return float(np.mean((values < value) & ~equal) + 0.5 * np.mean(equal))


def with_null_reference(
    summary: PBOSummary, n_dates: int, simulations: int = PBO_NULL_SIMULATIONS
) -> PBOSummary:
    """`summary` with the null reference of its shape (its trials and blocks over
    `n_dates` dates) and where its value falls in it; unchanged where it was skipped."""
    if summary.value is None:
        return summary
    values = null_pbo_values(summary.trials, n_dates, summary.blocks, simulations)
    return dataclasses.replace(
        summary,
        null_reference=null_reference(summary.trials, n_dates, summary.blocks, simulations),
        null_quantile=null_quantile(summary.value, values),
    )


def search_pbo(
    labels: Any,
    predictions: Any,
    blocks: int = PBO_BLOCKS,
    dates: Any = None,
    null_simulations: int = PBO_NULL_SIMULATIONS,
) -> PBOSummary:
    """The PBO of a study's trials from their validation predictions.

    labels: (n_samples,) 0/1; predictions: (n_trials, n_samples) P(label 1) of every
    complete trained trial; dates: (n_samples,) the date of each sample, where a
    panel has several samples (symbols) per date: their losses are averaged per
    date, so the blocks cut dates. The summary of
    `probability_of_backtest_overfitting` of the per-date log losses with the null
    reference of its shape (`with_null_reference`, over `null_simulations` simulated
    searches), or, when the search cannot be judged (fewer than two trials, fewer
    dates than blocks), `value` None and the reason `skipped`.
    """
    predictions = np.asarray(predictions, dtype=float).reshape(-1, len(labels))
    n_trials = predictions.shape[0]
    n_dates = predictions.shape[1] if dates is None else len(set(np.asarray(dates).tolist()))
    if n_trials < 2:
        reason = f"PBO compares trials; this study has {n_trials} with stored predictions"
    elif n_dates < blocks:
        reason = f"{n_dates} validation dates cannot be cut into {blocks} blocks"
    else:
        losses = sample_log_loss(labels, predictions).T  # (n_samples, n_trials)
        if dates is not None and n_dates < losses.shape[0]:
            days, day = np.unique(np.asarray(dates), return_inverse=True)
            sums = np.zeros((days.size, n_trials))
            np.add.at(sums, day, losses)
            losses = sums / np.bincount(day, minlength=days.size)[:, None]
        summary = probability_of_backtest_overfitting(losses, blocks).summary()
        return with_null_reference(summary, losses.shape[0], null_simulations)
    return PBOSummary(value=None, blocks=int(blocks), trials=n_trials, skipped=reason)
