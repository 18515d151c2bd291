"""The one fitter of finscale's scaling laws and the one bootstrap that refits them.

A law is a constant plus a power law of each resource,

    L = E + A_1 * X_1^(-alpha_1) + ... + A_k * X_k^(-alpha_k),

L(N) with one resource (the parameter count N, `finscale.analysis.scaling`) and
L(N, D) with two (N and the training-sample count D,
`finscale.analysis.joint_law`). Each is fitted as Hoffmann et al. (2022,
"Training compute-optimal large language models") fitted theirs and Besiroglu
et al. (2024, "Chinchilla scaling: a replication attempt") replicated it: the
log of the prediction written as a log-sum-exp,
log L = LSE(log E, a_1 - alpha_1 x_1, ..., a_k - alpha_k x_k), the Huber loss
(delta 1e-3) of its residuals against the log observed losses, minimised with
L-BFGS-B from a grid of starting points, the best kept. The bootstrap refits
every resample of the runs from the full-sample optimum, from the law's own
starts where that does not converge, and gives percentile intervals.

A law is a thin parametrisation over this: its starting grid, its checks of
the runs, its result type. Pure functions of numpy arrays.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special
from threadpoolctl import threadpool_limits

from finscale.analysis.serial import Record

HUBER_DELTA = 1e-3
# Beyond an exponent of about 3 a power law is a step: over one decade of the
# resource the excess loss A * X^(-alpha) falls by 1000x, so the data cannot tell
# alpha = 3 from alpha = 30 and an unbounded fit would drift off to infinity.
EXPONENT_BOUNDS = (0.0, 3.0)
# Log-space room around the observed losses for log E and each log A: wide enough
# to be inactive at any sensible fit (e^20 ~ 5e8), narrow enough that a flat curve,
# whose best A is 0, stops at a finite point instead of running away.
LOG_MARGIN = 20.0


@dataclass(frozen=True, kw_only=True)
class Estimate(Record):
    """A fitted quantity with its percentile interval over the bootstrap's resamples
    (NaN bounds when none converged), in the quantity's own units."""

    value: float
    low: float
    high: float


# What counts as an estimate leaning on a bound of the fit (`bound_problems`): an
# exponent within this of 0 or of EXPONENT_BOUNDS' top; an irreducible loss whose
# interval reaches below this share of the smallest observed loss (its floor is 0);
# an amplitude whose interval spans more than this many decades.
AT_BOUND = 1e-3
E_FLOOR_SHARE = 0.1
AMPLITUDE_DECADES = 3.0


@dataclass(frozen=True, kw_only=True)
class Draws(Record):
    """What a law's bootstrap drew: `n_resamples` resamples of the runs (seeded with
    `seed`), `n_converged` of them refitted, its intervals at `level`."""

    level: float
    n_resamples: int
    n_converged: int
    seed: int


def bound_problems(
    E: Estimate,
    terms: Sequence[tuple[str, Estimate, str, Estimate]],
    smallest_loss: float,
) -> list[str]:
    """What says a fitted law is not identified by its runs, in words (empty: nothing).

    E: the irreducible loss with its interval; terms: (amplitude name, amplitude,
    exponent name, exponent) of each power-law term, e.g. ("A", A, "alpha", alpha);
    smallest_loss: the smallest observed loss (nats). A law leans on a bound of its
    fit where an exponent or its interval reaches 0 (a flat term, whose amplitude
    then merges with E) or the top of EXPONENT_BOUNDS (a step), where E's interval
    runs down toward 0 (below E_FLOOR_SHARE of the smallest loss), where an
    amplitude's interval spans more than AMPLITUDE_DECADES decades, or where no
    resample converged (NaN bounds).
    """
    low_bound, high_bound = EXPONENT_BOUNDS
    estimates = [E, *(e for _, amplitude, _, exponent in terms for e in (amplitude, exponent))]
    if any(math.isnan(e.low) or math.isnan(e.high) for e in estimates):
        return ["no bootstrap resample converged, so the fit has no intervals"]
    out = []
    for amplitude_name, _, name, exponent in terms:
        interval = f"[{exponent.low:.3g}, {exponent.high:.3g}]"
        if exponent.value <= low_bound + AT_BOUND:
            out.append(
                f"{name} is fitted at 0 (interval {interval}): a flat law, in which "
                f"{amplitude_name} merges with E"
            )
        elif exponent.low <= low_bound + AT_BOUND:
            out.append(f"{name}'s interval {interval} reaches 0, a flat law")
        if max(exponent.value, exponent.high) >= high_bound - AT_BOUND:
            out.append(
                f"{name}'s interval {interval} reaches the fit's bound of {high_bound:g}, "
                "a step rather than a power law"
            )
    if E.low < E_FLOOR_SHARE * smallest_loss:
        out.append(
            f"E's interval runs down to {E.low:.3g}, toward 0 (the smallest loss is "
            f"{smallest_loss:.3g})"
        )
    for name, amplitude, _, _ in terms:
        decades = (
            math.inf
            if amplitude.low <= 0
            else math.log10(max(amplitude.high, amplitude.low) / amplitude.low)
        )
        if decades > AMPLITUDE_DECADES:
            out.append(
                f"{name}'s interval [{amplitude.low:.4g}, {amplitude.high:.4g}] spans "
                f"{decades:.0f} orders of magnitude"
            )
    return out


def checked_huber_delta(huber_delta: float) -> float:
    if not (math.isfinite(huber_delta) and huber_delta > 0):
        raise ValueError(f"huber_delta must be positive, got {huber_delta!r}")
    return float(huber_delta)


class PowerLawProblem:
    """The fit in centred units: x_i = log(X_i / ref_i), each ref_i the geometric mean
    of resource i, and theta = (log E, a_1, alpha_1, ..., a_k, alpha_k) with
    a_i = log A_i - alpha_i log ref_i, so every term is of the order of the losses
    (not of ref_i^alpha_i), E and each A_i stay positive, and L-BFGS-B's tolerances
    mean the same at any scale.

    resources: k arrays (n_runs,), finite and positive; loss: (n_runs,) likewise.
    """

    def __init__(self, resources: Sequence[np.ndarray], loss: np.ndarray, delta: float) -> None:
        self.resources = tuple(resources)
        self.log_refs = [float(np.log(r).mean()) for r in self.resources]
        self.log_x = [np.log(r) - ref for r, ref in zip(self.resources, self.log_refs, strict=True)]
        self.log_loss = np.log(loss)
        self.delta = float(delta)
        low, high = float(self.log_loss.min()), float(self.log_loss.max())
        amplitude = (low - LOG_MARGIN, high + LOG_MARGIN)
        self.bounds = [
            (low - LOG_MARGIN, high + math.log(2.0)),
            *[amplitude, EXPONENT_BOUNDS] * len(self.resources),
        ]

    @property
    def n_params(self) -> int:
        return 1 + 2 * len(self.resources)

    def with_losses(self, loss: np.ndarray) -> PowerLawProblem:
        """The same runs with other losses (a resample of the test dates): the same
        units, so a theta of this problem is a start of that one."""
        return PowerLawProblem(self.resources, loss, self.delta)

    def objective(self, theta: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray]:
        """Weighted sum of Huber losses of the log residuals / delta, and its gradient.

        Dividing by delta leaves the minimum where it is but makes the objective
        ~ |residual| instead of ~1e-3 x |residual|, so L-BFGS-B's absolute
        tolerances mean the same thing for any delta.
        """
        log_e = theta[0]
        terms = [theta[1 + 2 * i] - theta[2 + 2 * i] * x for i, x in enumerate(self.log_x)]
        # log(E + sum of terms) without overflow for a large term.
        log_pred = log_e
        for term in terms:
            log_pred = np.logaddexp(log_pred, term)
        residual = log_pred - self.log_loss
        value = float(weights @ special.huber(self.delta, residual)) / self.delta
        slope = weights * np.clip(residual, -self.delta, self.delta) / self.delta
        gradient = [slope @ np.exp(log_e - log_pred)]
        for term, x in zip(terms, self.log_x, strict=True):
            share = np.exp(term - log_pred)
            gradient += [slope @ share, -(slope @ (share * x))]
        return value, np.array(gradient)

    def grid_values(self, thetas: np.ndarray) -> np.ndarray:
        """The unweighted objective (times delta) at many thetas at once, (n_thetas,)."""
        log_pred = thetas[:, 0:1]
        for i, x in enumerate(self.log_x):
            a, alpha = thetas[:, 1 + 2 * i : 2 + 2 * i], thetas[:, 2 + 2 * i : 3 + 2 * i]
            log_pred = np.logaddexp(log_pred, a - alpha * x[None, :])
        return special.huber(self.delta, log_pred - self.log_loss[None, :]).sum(axis=1)

    def grid_starts(
        self,
        e_fractions: Sequence[float],
        exponents: Sequence[float],
        splits: Sequence[Sequence[float]],
    ) -> np.ndarray:
        """(n_starts, n_params) starts through the central run (every x_i = 0, the
        geometric-mean loss): E at each of `e_fractions` of the smallest loss, each
        exponent from `exponents`, and the excess over E at the centre shared among the
        terms as each of `splits` says (one share per term, summing to 1)."""
        centre = math.exp(float(self.log_loss.mean()))
        smallest = math.exp(float(self.log_loss.min()))
        rows = []
        k = len(self.resources)
        for fraction, *alphas, split in itertools.product(e_fractions, *[exponents] * k, splits):
            e0 = fraction * smallest
            excess = centre - e0  # > 0: centre >= smallest > e0
            row = [math.log(e0)]
            for share, alpha in zip(split, alphas, strict=True):
                row += [math.log(share * excess), alpha]
            rows.append(row)
        return np.array(rows)

    def best_starts(self, starts: np.ndarray, count: int) -> np.ndarray:
        """The `count` starts of the lowest objective, best first."""
        return starts[np.argsort(self.grid_values(starts))[:count]]

    def solve(self, starts: Any, weights: np.ndarray) -> optimize.OptimizeResult:
        """L-BFGS-B from each start (clipped into the bounds); the lowest objective."""
        lower, upper = np.array(self.bounds).T
        best = None
        for start in np.atleast_2d(np.asarray(starts, dtype=float)):
            result = optimize.minimize(
                self.objective,
                np.clip(start, lower, upper),
                args=(weights,),
                jac=True,
                method="L-BFGS-B",
                bounds=self.bounds,
            )
            if best is None or result.fun < best.fun:
                best = result
        assert best is not None
        return best

    def to_theta(self, E: float, *terms: float) -> np.ndarray:
        """theta of (E, A_1, alpha_1, ..., A_k, alpha_k) in the original units."""
        theta = [math.log(E)]
        for i, ref in enumerate(self.log_refs):
            amplitude, alpha = terms[2 * i], terms[2 * i + 1]
            theta += [math.log(amplitude) - alpha * ref, alpha]
        return np.array(theta)

    def from_theta(self, theta: np.ndarray) -> tuple[float, ...]:
        """(E, A_1, alpha_1, ..., A_k, alpha_k) in the original units."""
        values = [float(v) for v in theta]
        out = [math.exp(values[0])]
        for i, ref in enumerate(self.log_refs):
            a, alpha = values[1 + 2 * i], values[2 + 2 * i]
            out += [math.exp(a + alpha * ref), alpha]
        return tuple(out)

    def fit(self, starts: Any) -> Solution:
        """The full-sample fit from `starts` (every run weighted once)."""
        weights = np.ones(self.log_loss.size)
        with one_blas_thread():
            result = self.solve(starts, weights)
        return Solution(
            params=self.from_theta(result.x),
            objective=float(result.fun) * self.delta,
            n_points=int(weights.sum()),
            converged=bool(result.success),
        )


@dataclass(frozen=True)
class Solution:
    """A fit: (E, A_1, alpha_1, ...) in the original units, the minimised sum of Huber
    losses of log residuals (unitless), the runs fitted, and whether the optimiser of
    the best start reported success."""

    params: tuple[float, ...]
    objective: float
    n_points: int
    converged: bool


def one_blas_thread() -> Any:
    """Limit BLAS to one thread around many tiny L-BFGS-B solves.

    L-BFGS-B calls BLAS on 3-vectors; multithreaded OpenBLAS spins its threads
    on every call, which made 1000 bootstrap fits 4x slower on a busy 2-core
    machine (2.7 s against 0.7 s). threadpoolctl comes with scikit-learn.
    """
    return threadpool_limits(limits=1, user_api="blas")


def stratified_counts(strata: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each point is drawn in each resample, shape (n_resamples, n_points):
    drawn with replacement within each stratum (equal values of `strata`), as many
    as it holds, so every resample keeps every stratum's count."""
    counts = np.zeros((n_resamples, strata.size))
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        counts[:, members] = rng.multinomial(
            members.size, np.full(members.size, 1.0 / members.size), size=n_resamples
        )
    return counts


def inflated_within_strata(
    losses: np.ndarray, strata: np.ndarray, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Each run's loss on every resample of its stratum, (n_resamples, n_runs): every run
    takes the loss of a run of its own stratum drawn with replacement, moved away from
    the stratum's mean by sqrt(m / (m - 1)) (m runs in the stratum).

    A bootstrap of m values has variance (m - 1) / m of theirs, so with 3 seeds per
    budget it drew 2/3 of the seed variance and its intervals were too narrow; the
    factor makes the resampled mean's variance the usual unbiased estimate. The runs
    of a stratum share their resources, so replacing the loss is the same as redrawing
    the run. losses: (n_runs,) or (n_resamples, n_runs) (each row the losses on one
    resample of the test dates). A loss the stretch would push to zero or below keeps
    its drawn value (the fit is in log space).
    """
    losses = np.broadcast_to(np.asarray(losses, dtype=float), (n_resamples, strata.size))
    out = np.empty((n_resamples, strata.size))
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        m = members.size
        block = losses[:, members]
        drawn = np.take_along_axis(block, rng.integers(0, m, size=(n_resamples, m)), axis=1)
        if m < 2:
            out[:, members] = drawn
            continue
        centre = block.mean(axis=1, keepdims=True)
        stretched = centre + math.sqrt(m / (m - 1)) * (drawn - centre)
        out[:, members] = np.where(stretched > 0, stretched, drawn)
    return out


def percentile_bounds(values: np.ndarray, level: float) -> tuple[Any, Any]:
    """The percentile interval at `level` of `values` along its first axis (NaN when it
    has no rows)."""
    tail = 100.0 * (1.0 - level) / 2.0
    if values.shape[0] == 0:
        nan = np.full(values.shape[1:], math.nan)
        return nan, nan
    return np.percentile(values, tail, axis=0), np.percentile(values, 100.0 - tail, axis=0)


@dataclass(frozen=True)
class Resampling:
    """How a law's bootstrap draws: `n_resamples` resamples of the runs (a numpy
    Generator seeded with `seed`), percentile intervals at `level`, and optionally each
    run's loss on each resample of the test dates, `resampled_losses` (n_resamples,
    n_runs), which resample r then fits, so the intervals carry the test-date noise as
    well as the noise between runs."""

    n_resamples: int
    seed: int
    level: float
    resampled_losses: np.ndarray | None = None

    @classmethod
    def checked(
        cls, n_runs: int, n_resamples: int, seed: int, level: float, resampled_losses: Any
    ) -> Resampling:
        """ValueError unless `n_resamples` is a positive integer, `level` lies strictly
        between 0 and 1 and `resampled_losses` is None or (n_resamples, n_runs) finite
        and positive."""
        if int(n_resamples) != n_resamples or n_resamples < 1:
            raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
        n_resamples = int(n_resamples)
        if resampled_losses is not None:
            resampled_losses = np.asarray(resampled_losses, dtype=float)
            if resampled_losses.shape != (n_resamples, n_runs):
                raise ValueError(
                    f"resampled_losses must have shape ({n_resamples}, {n_runs}), "
                    f"got {resampled_losses.shape}"
                )
            if not (np.isfinite(resampled_losses).all() and (resampled_losses > 0).all()):
                raise ValueError("resampled_losses must be finite and positive")
        return cls(n_resamples, int(seed), float(level), resampled_losses)

    def refit(
        self,
        problem: PowerLawProblem,
        full_params: Sequence[float],
        strata: np.ndarray,
        fallback: Callable[[PowerLawProblem], np.ndarray],
        inflate: bool = False,
    ) -> tuple[np.ndarray, list[Estimate], Draws]:
        """The law refitted on every resample of the runs, drawn with replacement within
        each stratum (equal values of `strata`, (n_runs,)); with `inflate`, where every
        stratum's runs share their resources (seeds of one budget or (N, D) cell), the
        drawn losses are stretched about their stratum's mean so the resample carries the
        whole between-run variance (`inflated_within_strata`): the (n_converged, n_params)
        refitted parameters in the original units (resamples where no start converged
        left out), each full-sample parameter of `full_params` (E, A_1, alpha_1, ...)
        with its percentile interval over them, and what was drawn.

        Each resample starts from the full-sample optimum: a resample moves the
        optimum only a little, and on 300 resamples of 24 noisy runs that one start
        reached the objective of L(N)'s 12-start grid to 5e-8 at 1/20 of the cost.
        Where it does not converge, the resample starts from `fallback(its problem)`.
        """
        rng = np.random.default_rng(self.seed)
        base = np.exp(problem.log_loss) if self.resampled_losses is None else self.resampled_losses
        if inflate:
            losses = inflated_within_strata(base, strata, self.n_resamples, rng)
            counts = np.ones((self.n_resamples, strata.size))
        else:
            losses = None if self.resampled_losses is None else base
            counts = stratified_counts(strata, self.n_resamples, rng)
        centre = problem.to_theta(*full_params)
        params = np.full((self.n_resamples, problem.n_params), math.nan)
        with one_blas_thread():
            for row, weights in enumerate(counts):
                solver = problem
                if losses is not None:
                    # The same runs, so the full-sample optimum is still a start.
                    solver = problem.with_losses(losses[row])
                result = solver.solve(centre, weights)
                if not result.success:
                    result = solver.solve(fallback(solver), weights)
                if result.success:
                    params[row] = solver.from_theta(result.x)
        kept = params[~np.isnan(params[:, 0])]
        low, high = percentile_bounds(kept, self.level)
        estimates = [
            Estimate(value=float(value), low=float(low[column]), high=float(high[column]))
            for column, value in enumerate(full_params)
        ]
        draws = Draws(
            level=self.level,
            n_resamples=self.n_resamples,
            n_converged=int(kept.shape[0]),
            seed=self.seed,
        )
        return kept, estimates, draws
