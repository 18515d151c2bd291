"""The parameter-scaling law L(N) = E + A * N^(-alpha), its fit and bootstrap.

N is the number of trainable parameters of a model and L its test loss (log
loss in nats in this study). E is the irreducible loss, the limit for an
infinitely large model; A and alpha say how fast the loss approaches it.

The fit follows Hoffmann et al. 2022 ("Training Compute-Optimal Large
Language Models", the Chinchilla paper): minimise the Huber loss (delta 1e-3)
between log predicted and log observed losses with L-BFGS from a grid of
starting points, keeping the best. Intervals come from a bootstrap over the
runs, stratified by parameter count.

Pure functions of numpy arrays.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import optimize, special
from threadpoolctl import threadpool_limits

HUBER_DELTA = 1e-3
# Beyond an exponent of about 3 the power law is a step: over one decade of N
# the excess loss A * N^(-alpha) falls by 1000x, so the data cannot tell alpha = 3
# from alpha = 30 and an unbounded fit would drift off to infinity.
ALPHA_BOUNDS = (0.0, 3.0)
# Starting irreducible losses, as fractions of the smallest observed loss.
START_E_FRACTIONS = (0.1, 0.5, 0.9)
START_ALPHAS = (0.1, 0.3, 0.6, 1.0)
# Log-space room around the observed losses for log E and log A: wide enough to
# be inactive at any sensible fit (e^20 ~ 5e8), narrow enough that a flat curve,
# whose best A is 0, stops at a finite point instead of running away.
_LOG_MARGIN = 20.0


def scaling_law(n_params: Any, E: float, A: float, alpha: float) -> np.ndarray:
    """Loss predicted by the law, E + A * n_params^(-alpha).

    n_params: parameter counts, any shape, > 0. E in the units of the loss
    (nats), A in loss units x parameters^alpha, alpha unitless. Returns a
    float array of the shape of n_params.
    """
    n = np.asarray(n_params, dtype=float)
    return E + A * n ** (-alpha)


@dataclass(frozen=True)
class ScalingFit:
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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields: E, A, alpha, objective (floats), n_points, converged."""
        out = asdict(self)
        for key in ("E", "A", "alpha", "objective"):
            out[key] = float(out[key])
        out["n_points"] = int(out["n_points"])
        out["converged"] = bool(out["converged"])
        return out


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


class _Problem:
    """The fit in well-conditioned units.

    N is divided by its geometric mean n_ref, so log x = log(N / n_ref) is
    centred on 0 and the scaled amplitude a = log(A * n_ref^(-alpha)) is of
    the order of the losses instead of ~n_ref^alpha. Parameters
    theta = (log E, a, alpha) keep E and A positive.
    """

    def __init__(self, n: np.ndarray, loss: np.ndarray, delta: float) -> None:
        self.log_n_ref = float(np.log(n).mean())
        self.log_x = np.log(n) - self.log_n_ref
        self.log_loss = np.log(loss)
        self.delta = float(delta)
        low, high = float(self.log_loss.min()), float(self.log_loss.max())
        self.bounds = [
            (low - _LOG_MARGIN, high + math.log(2.0)),
            (low - _LOG_MARGIN, high + _LOG_MARGIN),
            ALPHA_BOUNDS,
        ]

    def objective(self, theta: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray]:
        """Weighted sum of Huber losses / delta and its gradient.

        Dividing by delta leaves the minimum where it is but makes the
        objective ~ |residual| instead of ~1e-3 x |residual|, so L-BFGS-B's
        absolute tolerances mean the same thing for any delta.
        """
        log_e, a, alpha = theta
        excess = a - alpha * self.log_x
        # log(E + A' x^-alpha) without overflow for large excess.
        log_pred = np.logaddexp(log_e, excess)
        residual = log_pred - self.log_loss
        value = float(weights @ special.huber(self.delta, residual)) / self.delta
        slope = weights * np.clip(residual, -self.delta, self.delta) / self.delta
        share_e = np.exp(log_e - log_pred)
        share_a = np.exp(excess - log_pred)
        gradient = np.array([slope @ share_e, slope @ share_a, -(slope @ (share_a * self.log_x))])
        return value, gradient

    def to_theta(self, E: float, A: float, alpha: float) -> np.ndarray:
        return np.array([math.log(E), math.log(A) - alpha * self.log_n_ref, alpha])

    def from_theta(self, theta: np.ndarray) -> tuple[float, float, float]:
        log_e, a, alpha = (float(v) for v in theta)
        return math.exp(log_e), math.exp(a + alpha * self.log_n_ref), alpha

    def grid_starts(self) -> list[np.ndarray]:
        """Starts through the central point (log x = 0, geometric-mean loss)."""
        centre = math.exp(float(self.log_loss.mean()))
        smallest = math.exp(float(self.log_loss.min()))
        starts = []
        for fraction in START_E_FRACTIONS:
            e0 = fraction * smallest
            for alpha in START_ALPHAS:
                # At log x = 0 the scaled law is E + A', so A' = centre - E passes
                # through the central point; centre >= smallest > e0 keeps it positive.
                starts.append(np.array([math.log(e0), math.log(centre - e0), alpha]))
        return starts

    def solve(self, starts: Iterable[np.ndarray], weights: np.ndarray) -> optimize.OptimizeResult:
        best = None
        for start in starts:
            lower, upper = np.array(self.bounds).T
            clipped = np.clip(np.asarray(start, dtype=float), lower, upper)
            result = optimize.minimize(
                self.objective,
                clipped,
                args=(weights,),
                jac=True,
                method="L-BFGS-B",
                bounds=self.bounds,
            )
            if best is None or result.fun < best.fun:
                best = result
        assert best is not None
        return best

    def to_fit(self, result: optimize.OptimizeResult, weights: np.ndarray) -> ScalingFit:
        E, A, alpha = self.from_theta(result.x)
        return ScalingFit(
            E=E,
            A=A,
            alpha=alpha,
            objective=float(result.fun) * self.delta,
            n_points=int(weights.sum()),
            converged=bool(result.success),
        )


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
    if not (math.isfinite(huber_delta) and huber_delta > 0):
        raise ValueError(f"huber_delta must be positive, got {huber_delta!r}")
    problem = _Problem(n, loss, huber_delta)
    if starts is None:
        thetas = problem.grid_starts()
    else:
        thetas = [problem.to_theta(*start) for start in starts]
        if not thetas:
            raise ValueError("starts is empty")
    weights = np.ones(n.size)
    with one_blas_thread():
        return problem.to_fit(problem.solve(thetas, weights), weights)


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
) -> dict[str, Any]:
    """Fit the law and bootstrap its parameters and predictions over the runs.

    n_params, losses: as `fit_scaling_law`. Each resample draws the runs with
    replacement within each distinct parameter count (every count keeps its
    number of runs, so no resample loses a budget) and refits, starting from
    the full-sample fit (from the grid of `fit_scaling_law` where that does
    not converge). With one run per count every resample equals the data and
    the intervals have zero width (a RuntimeWarning says so); with few runs
    per count they are narrower than nominal, as a bootstrap of k values
    understates their variance by (k - 1) / k. resampled_losses: optional
    (n_resamples, n_points), each run's loss recomputed on one resample of the
    test dates; resample r then fits those losses, so the intervals carry the
    test-date noise as well as the noise between runs (pass the losses of the
    date draws the budget comparisons use, so both tell one story). grid:
    parameter counts of the
    prediction band, default 50 log-spaced between the smallest and largest
    n_params. within_counts=False redraws the runs over the whole table
    instead (a table of one run per parameter count, as `finscale fit-law` reads).

    Returns a JSON-able dict:
      fit: the full-sample `ScalingFit.to_dict()`;
      E, A, alpha: {"value": full-sample estimate, "low", "high": percentile
        interval at `level` over the converged resamples};
      band: {"n_params", "fit", "low", "high"}: lists over grid, the
        full-sample prediction and its pointwise percentile interval;
      level, n_resamples, n_converged, seed.
    """
    n, loss = _checked_points(n_params, losses)
    grid, resampled_losses = _checked_bootstrap_args(n, n_resamples, level, grid, resampled_losses)
    if within_counts and resampled_losses is None and np.unique(n).size == n.size:
        warnings.warn(
            "every parameter count has one run: the stratified bootstrap cannot vary the data "
            "and its intervals have zero width",
            RuntimeWarning,
            stacklevel=2,
        )

    full = fit_scaling_law(n, loss, huber_delta)
    problem = _Problem(n, loss, huber_delta)
    # A resample moves the optimum only a little, so the full-sample optimum is
    # the one start: on 300 resamples of 24 noisy runs it reached the objective of
    # the 12-start grid to 5e-8 at 1/20 of the cost. The grid is the fallback for
    # a resample where that start does not converge.
    centre = [problem.to_theta(full.E, full.A, full.alpha)]
    grid_starts = problem.grid_starts()

    rng = np.random.default_rng(seed)
    # Within each parameter count, so no resample loses a budget; or, for a table of
    # single runs, over all points at once.
    counts = stratified_counts(n if within_counts else np.zeros_like(n), int(n_resamples), rng)
    params = np.full((int(n_resamples), 3), math.nan)
    with one_blas_thread():
        for row, weights in enumerate(counts):
            solver, starts = problem, grid_starts
            if resampled_losses is not None:
                # Same parameter counts, so the same units: the centre start still fits.
                solver = _Problem(n, resampled_losses[row], huber_delta)
                starts = solver.grid_starts()
            result = solver.solve(centre, weights)
            if not result.success:
                result = solver.solve(starts, weights)
            if result.success:
                params[row] = solver.from_theta(result.x)
    converged = ~np.isnan(params[:, 0])

    summary = _bootstrap_summary(full, params[converged], grid, level)
    summary.update(
        level=float(level),
        n_resamples=int(n_resamples),
        n_converged=int(converged.sum()),
        seed=int(seed),
    )
    return summary


def _checked_bootstrap_args(
    n: np.ndarray, n_resamples: int, level: float, grid: Any, resampled_losses: Any
) -> tuple[np.ndarray, np.ndarray | None]:
    """The prediction grid and resampled losses of `bootstrap_scaling_law` as arrays;
    raises ValueError on a count, level, grid or shape it cannot use."""
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
    if grid is None:
        grid = np.geomspace(n.min(), n.max(), 50)
    grid = np.asarray(grid, dtype=float).ravel()
    if grid.size == 0 or not (np.isfinite(grid).all() and (grid > 0).all()):
        raise ValueError("grid must be non-empty, finite and positive")
    if resampled_losses is not None:
        resampled_losses = np.asarray(resampled_losses, dtype=float)
        if resampled_losses.shape != (int(n_resamples), n.size):
            raise ValueError(
                f"resampled_losses must have shape ({int(n_resamples)}, {n.size}), "
                f"got {resampled_losses.shape}"
            )
        if not (np.isfinite(resampled_losses).all() and (resampled_losses > 0).all()):
            raise ValueError("resampled_losses must be finite and positive")
    return grid, resampled_losses


def _bootstrap_summary(
    full: ScalingFit, kept: np.ndarray, grid: np.ndarray, level: float
) -> dict[str, Any]:
    """The full-sample fit with percentile intervals of its parameters and of its
    prediction over `grid`, from `kept` (n_converged, 3) resampled (E, A, alpha)."""
    tail = 100.0 * (1.0 - level) / 2.0

    def interval(values: np.ndarray) -> tuple[Any, Any]:
        if values.shape[0] == 0:
            nan = np.full(values.shape[1:], math.nan)
            return nan, nan
        return np.percentile(values, tail, axis=0), np.percentile(values, 100.0 - tail, axis=0)

    low, high = interval(kept)
    summary: dict[str, Any] = {"fit": full.to_dict()}
    for column, name in enumerate(("E", "A", "alpha")):
        summary[name] = {
            "value": float(getattr(full, name)),
            "low": float(low[column]),
            "high": float(high[column]),
        }
    predictions = kept[:, 0:1] + kept[:, 1:2] * grid[None, :] ** (-kept[:, 2:3])
    band_low, band_high = interval(predictions.reshape(kept.shape[0], grid.size))
    summary["band"] = {
        "n_params": [float(v) for v in grid],
        "fit": [float(v) for v in full.predict(grid)],
        "low": [float(v) for v in np.broadcast_to(band_low, grid.shape)],
        "high": [float(v) for v in np.broadcast_to(band_high, grid.shape)],
    }
    return summary
