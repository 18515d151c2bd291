"""The parameter-scaling law L(N) = E + A * N^(-alpha), its fit and bootstrap.

N is the number of trainable parameters of a model and L its test loss (log
loss in nats in this study). E is the irreducible loss, the limit for an
infinitely large model; A and alpha say how fast the loss approaches it.

The fit follows Hoffmann et al. 2022 ("Training Compute-Optimal Large
Language Models", the Chinchilla paper): minimise the Huber loss (delta 1e-3)
between log predicted and log observed losses with L-BFGS from a grid of
starting points, keeping the best. Intervals come from a bootstrap over the
runs, stratified by parameter count; `finscale.analysis.law_fit` fits and
resamples every law of the study, this one is its single power-law term.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from finscale.analysis import law_fit
from finscale.analysis.law_fit import Draws, Estimate, PowerLawProblem, bound_problems
from finscale.analysis.serial import Record, stored

HUBER_DELTA = law_fit.HUBER_DELTA

# Starting irreducible losses, as fractions of the smallest observed loss.
START_E_FRACTIONS = (0.1, 0.5, 0.9)
START_ALPHAS = (0.1, 0.3, 0.6, 1.0)
# One power-law term takes the whole excess over E at the central point.
_ONE_TERM = ((1.0,),)
# Budget means within this many step noises of each other are "flat": their range is
# within a 95% half-width of one paired budget step (1.96 standard errors, rounded).
FLAT_STEPS = 2.0


def scaling_law(n_params: Any, E: float, A: float, alpha: float) -> np.ndarray:
    """Loss predicted by the law, E + A * n_params^(-alpha).

    n_params: parameter counts, any shape, > 0. E in the units of the loss
    (nats), A in loss units x parameters^alpha, alpha unitless. Returns a
    float array of the shape of n_params.
    """
    n = np.asarray(n_params, dtype=float)
    return E + A * n ** (-alpha)


@dataclass(frozen=True)
class ScalingFit(Record):
    """A fitted law L(N) = E + A * N^(-alpha), N in parameters.

    objective: the minimised sum of Huber losses of log residuals (unitless).
    n_points: runs fitted. converged: the optimiser of the best start reported
    success.
    """

    E: float
    A: float
    alpha: float
    objective: float
    n_points: int
    converged: bool

    def predict(self, n_params: Any) -> np.ndarray:
        """Loss predicted at `n_params` (any shape), in the units of the fitted losses."""
        return scaling_law(n_params, self.E, self.A, self.alpha)


@dataclass(frozen=True, kw_only=True)
class PredictionBand(Record):
    """The law's predicted loss over a grid of parameter counts (`n_params`): the
    full-sample fit and its pointwise percentile interval (`low`, `high`), in the
    units of the fitted losses."""

    n_params: tuple[float, ...]
    fit: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]


@dataclass(frozen=True, kw_only=True)
class ScalingLawBootstrap(Record):
    """The law fitted to every run and bootstrapped over them: the full-sample `fit`,
    its estimates E, A and alpha with their percentile intervals over the converged
    resamples, its prediction `band` over a grid of parameter counts, and what the
    bootstrap drew (its keys stand among these)."""

    fit: ScalingFit = stored(parse=ScalingFit.from_dict)
    E: Estimate = stored(parse=Estimate.from_dict)
    A: Estimate = stored(parse=Estimate.from_dict)
    alpha: Estimate = stored(parse=Estimate.from_dict)
    band: PredictionBand = stored(parse=PredictionBand.from_dict)
    draws: Draws = stored(flat=True, parse=Draws.from_dict)


def _checked_points(n_params: Any, losses: Any) -> tuple[np.ndarray, np.ndarray]:
    n = np.asarray(n_params, dtype=float)
    loss = np.asarray(losses, dtype=float)
    if n.ndim != 1 or loss.ndim != 1:
        raise ValueError(f"n_params and losses must be 1-D, got shapes {n.shape} and {loss.shape}")
    if n.size != loss.size:
        raise ValueError(f"{n.size} parameter counts but {loss.size} losses")
    if n.size < 3:
        raise ValueError(f"fitting 3 parameters needs at least 3 points, got {n.size}")
    if not (np.isfinite(n).all() and (n > 0).all()):
        raise ValueError("parameter counts must be finite and positive")
    if not (np.isfinite(loss).all() and (loss > 0).all()):
        raise ValueError("losses must be finite and positive (the fit is in log space)")
    if np.unique(n).size < 2:
        raise ValueError("the law needs at least 2 distinct parameter counts")
    return n, loss


def _grid_starts(problem: PowerLawProblem) -> np.ndarray:
    """The 12 starts through the central point (E at 0.1, 0.5, 0.9 of the smallest
    loss, alpha at 0.1, 0.3, 0.6, 1.0)."""
    return problem.grid_starts(START_E_FRACTIONS, START_ALPHAS, _ONE_TERM)


def fit_scaling_law(
    n_params: Any,
    losses: Any,
    huber_delta: float = HUBER_DELTA,
    starts: Iterable[tuple[float, float, float]] | None = None,
) -> ScalingFit:
    """Fit L(N) = E + A * N^(-alpha) to runs (n_params[i], losses[i]).

    n_params: parameter counts (n_points,), losses: test losses (n_points,),
    both finite and positive, at least 3 points over at least 2 distinct
    counts; several runs (seeds) per count are separate points. Minimises
    sum huber(huber_delta, log L_pred - log L_obs) over (log E, log A, alpha)
    with L-BFGS-B, alpha bounded to [0, 3], from every start and keeps the
    lowest objective. starts: (E, A, alpha) in the original units; default a
    grid of 12 (E at 0.1, 0.5, 0.9 of the smallest loss, alpha at 0.1, 0.3,
    0.6, 1.0, A through the central point).

    A flat loss curve is fitted, not rejected: A shrinks towards 0 or alpha to
    0 and the predictions are flat.
    """
    n, loss = _checked_points(n_params, losses)
    problem = PowerLawProblem([n], loss, law_fit.checked_huber_delta(huber_delta))
    if starts is None:
        thetas = _grid_starts(problem)
    else:
        thetas = [problem.to_theta(*start) for start in starts]
        if not thetas:
            raise ValueError("starts is empty")
    solution = problem.fit(thetas)
    return ScalingFit(*solution.params, solution.objective, solution.n_points, solution.converged)


def bootstrap_scaling_law(
    n_params: Any,
    losses: Any,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    grid: Any = None,
    resampled_losses: Any = None,
    within_counts: bool = True,
    huber_delta: float = HUBER_DELTA,
) -> ScalingLawBootstrap:
    """Fit the law and bootstrap its parameters and predictions over the runs.

    n_params, losses: as `fit_scaling_law`. Each resample draws the runs with
    replacement within each distinct parameter count (every count keeps its
    number of runs, so no resample loses a budget) and refits, starting from
    the full-sample fit (from the grid of `fit_scaling_law` where that does
    not converge). With one run per count every resample equals the data and
    the intervals have zero width (a RuntimeWarning says so); the drawn losses
    are stretched about their count's mean by sqrt(k / (k - 1)), as a bootstrap
    of k values would understate their variance by (k - 1) / k
    (`law_fit.inflated_within_strata`). resampled_losses: optional
    (n_resamples, n_points), each run's loss recomputed on one resample of the
    test dates; resample r then fits those losses, so the intervals carry the
    test-date noise as well as the noise between runs (pass the losses of the
    date draws the budget comparisons use, so both tell one story). grid:
    parameter counts of the prediction band, default 50 log-spaced between the
    smallest and largest n_params. within_counts=False redraws the runs over the
    whole table instead (a table of one run per parameter count, as
    `finscale fit-law` reads).

    Returns the full-sample fit, E, A and alpha with their percentile intervals
    at `level` over the converged resamples, and the prediction band over `grid`
    (`ScalingLawBootstrap`; `to_dict()` is its JSON form).
    """
    n, loss = _checked_points(n_params, losses)
    resampling = law_fit.Resampling.checked(n.size, n_resamples, seed, level, resampled_losses)
    grid = _checked_grid(n, grid)
    if within_counts and resampled_losses is None and np.unique(n).size == n.size:
        warnings.warn(
            "every parameter count has one run: the stratified bootstrap cannot vary the data "
            "and its intervals have zero width",
            RuntimeWarning,
            stacklevel=2,
        )
    full = fit_scaling_law(n, loss, huber_delta)
    # Within each parameter count, so no resample loses a budget; or, for a table of
    # single runs, over all points at once.
    strata = n if within_counts else np.zeros_like(n)
    kept, estimates, draws = resampling.refit(
        PowerLawProblem([n], loss, huber_delta),
        (full.E, full.A, full.alpha),
        strata,
        _grid_starts,
        inflate=within_counts,
    )
    return ScalingLawBootstrap(
        fit=full,
        **dict(zip(("E", "A", "alpha"), estimates, strict=True)),
        band=_band(full, kept, grid, resampling.level),
        draws=draws,
    )


def _checked_grid(n: np.ndarray, grid: Any) -> np.ndarray:
    """The parameter counts of the prediction band: `grid`, or 50 log-spaced over n."""
    if grid is None:
        grid = np.geomspace(n.min(), n.max(), 50)
    grid = np.asarray(grid, dtype=float).ravel()
    if grid.size == 0 or not (np.isfinite(grid).all() and (grid > 0).all()):
        raise ValueError("grid must be non-empty, finite and positive")
    return grid


def _band(full: ScalingFit, kept: np.ndarray, grid: np.ndarray, level: float) -> PredictionBand:
    """The full-sample prediction over `grid` and its pointwise percentile interval over
    `kept` (n_converged, 3) resampled (E, A, alpha)."""
    predictions = kept[:, 0:1] + kept[:, 1:2] * grid[None, :] ** (-kept[:, 2:3])
    low, high = law_fit.percentile_bounds(predictions.reshape(kept.shape[0], grid.size), level)
    return PredictionBand(
        n_params=tuple(float(v) for v in grid),
        fit=tuple(float(v) for v in full.predict(grid)),
        low=tuple(float(v) for v in np.broadcast_to(low, grid.shape)),
        high=tuple(float(v) for v in np.broadcast_to(high, grid.shape)),
    )


@dataclass(frozen=True, kw_only=True)
class Identification(Record):
    """Whether the runs identify a fitted law: `identified` False where an estimate or
    its interval leans on a bound of the fit, and `why` in words (what leans where, and
    the cause in the runs); None where it is."""

    identified: bool
    why: str | None


def identification(
    law: ScalingLawBootstrap, n_params: Any, losses: Any, step_noise: float | None = None
) -> Identification:
    """Judge whether the runs (n_params, losses), (n_runs,) each, identify the fitted
    L(N) `law` (`law_fit.bound_problems`), and name the cause where they do not: how
    many budgets carry the law's 3 parameters, and whether the losses are flat (the
    range of the budgets' mean losses within FLAT_STEPS x `step_noise`, the standard
    error of a paired step between budgets in nats; unjudged when None)."""
    n, loss = _checked_points(n_params, losses)
    problems = bound_problems(law.E, [("A", law.A, "alpha", law.alpha)], float(loss.min()))
    if not problems:
        return Identification(identified=True, why=None)
    counts = np.unique(n)
    means = np.array([loss[n == c].mean() for c in counts])
    causes = [
        f"{counts.size} budgets for a law of 3 parameters"
        + (" (none to spare)" if counts.size <= 3 else "")
    ]
    if step_noise is not None and np.isfinite(step_noise):
        spread = float(means.max() - means.min())
        if spread <= FLAT_STEPS * step_noise:
            causes.append(
                f"the losses are flat: the budgets' mean test log losses span {spread:.2g} "
                f"nats, within {FLAT_STEPS:g} standard errors of a step between budgets "
                f"({step_noise:.2g} nats each)"
            )
        else:
            causes.append(
                f"the budgets' mean test log losses span {spread:.2g} nats against a step "
                f"noise of {step_noise:.2g} nats"
            )
    return Identification(
        identified=False, why="; ".join(problems) + ". Cause: " + "; ".join(causes)
    )
