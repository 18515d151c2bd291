"""The joint law of parameters and data, L(N, D) = E + A * N^(-alpha) + B * D^(-beta),
its fit, its bootstrap and what it says about the binding resource.

N is a model's trainable parameter count, D its number of training samples
and L its test loss (nats). E is the loss of an infinite model on infinite
data; A, alpha and B, beta say how fast more parameters and more data
approach it.

The fit is Hoffmann et al. (2022, "Training compute-optimal large language
models") as Besiroglu et al. (2024, "Chinchilla scaling: a replication
attempt") replicated it: the log of the prediction written as a log-sum-exp,
log L = LSE(a - alpha log N, b - beta log D, e), the Huber loss (delta 1e-3)
of its residuals against the log observed losses, minimised with L-BFGS-B
from a grid of starting points, the best kept. Intervals come from a
bootstrap that redraws the runs within each (N, D) cell and, where given,
the test dates the runs were scored on.

Pure functions of numpy arrays.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special

from finscale.analysis.scaling import (
    ALPHA_BOUNDS,
    HUBER_DELTA,
    one_blas_thread,
    stratified_counts,
)

NAMES = ("E", "A", "alpha", "B", "beta")
# The five parameters need three levels of each resource: with two levels of N
# (or D) the additive law has fewer distinct values than unknowns.
MIN_LEVELS = 3
# Starts: E at these fractions of the smallest loss, each exponent on this
# grid, and the excess over E at the central run split between the two terms.
START_E_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)
START_EXPONENTS = (0.1, 0.3, 0.6, 1.0, 1.5)
START_SHARES = (0.2, 0.5, 0.8)
START_POLISHED = 12  # the grid's best starts that L-BFGS-B runs from
_LOG_MARGIN = 20.0
DOUBLING = 2.0


def joint_law(
    n_params: Any, n_samples: Any, E: float, A: float, alpha: float, B: float, beta: float
) -> np.ndarray:
    """E + A * N^(-alpha) + B * D^(-beta), broadcast over `n_params` and `n_samples`."""
    n = np.asarray(n_params, dtype=float)
    d = np.asarray(n_samples, dtype=float)
    return E + A * n ** (-alpha) + B * d ** (-beta)


@dataclass(frozen=True)
class JointFit:
    """A fitted L(N, D) = E + A N^-alpha + B D^-beta (N parameters, D samples)."""

    E: float
    A: float
    alpha: float
    B: float
    beta: float
    objective: float  # the minimised sum of Huber losses of log residuals
    n_points: int
    converged: bool

    def predict(self, n_params: Any, n_samples: Any) -> np.ndarray:
        return joint_law(n_params, n_samples, self.E, self.A, self.alpha, self.B, self.beta)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: float(getattr(self, name)) for name in NAMES}
        out.update(
            objective=float(self.objective),
            n_points=int(self.n_points),
            converged=bool(self.converged),
        )
        return out


def identification_problem(n_params: Any, n_samples: Any) -> str | None:
    """Why these runs cannot identify the five parameters, or None when they can."""
    n_levels = np.unique(np.asarray(n_params, dtype=float)).size
    d_levels = np.unique(np.asarray(n_samples, dtype=float)).size
    if d_levels < MIN_LEVELS or n_levels < MIN_LEVELS:
        return (
            f"L(N, D) has 5 parameters and needs at least {MIN_LEVELS} distinct parameter "
            f"counts and {MIN_LEVELS} distinct training-sample counts; these runs have "
            f"{n_levels} and {d_levels}"
        )
    return None


def _checked_runs(
    n_params: Any, n_samples: Any, losses: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, d, loss = (np.asarray(v, dtype=float) for v in (n_params, n_samples, losses))
    if not (n.ndim == d.ndim == loss.ndim == 1) or not (n.size == d.size == loss.size):
        raise ValueError(
            f"n_params, n_samples and losses must be 1-D of one length, got {n.shape}, "
            f"{d.shape}, {loss.shape}"
        )
    for name, values in (("parameter counts", n), ("sample counts", d), ("losses", loss)):
        if not (np.isfinite(values).all() and (values > 0).all()):
            raise ValueError(f"{name} must be finite and positive")
    problem = identification_problem(n, d)
    if problem:
        raise ValueError(problem)
    return n, d, loss


class _Problem:
    """The fit in centred units: x = log(N / n_ref), y = log(D / d_ref) with the
    references the geometric means, theta = (log E, a, alpha, b, beta) with
    a = log A - alpha log n_ref and b = log B - beta log d_ref, so the terms are of
    the order of the losses and L-BFGS-B's tolerances mean the same at any scale."""

    def __init__(self, n: np.ndarray, d: np.ndarray, loss: np.ndarray, delta: float) -> None:
        self.log_n_ref = float(np.log(n).mean())
        self.log_d_ref = float(np.log(d).mean())
        self.x = np.log(n) - self.log_n_ref
        self.y = np.log(d) - self.log_d_ref
        self.log_loss = np.log(loss)
        self.delta = float(delta)
        low, high = float(self.log_loss.min()), float(self.log_loss.max())
        amplitude = (low - _LOG_MARGIN, high + _LOG_MARGIN)
        self.bounds = [
            (low - _LOG_MARGIN, high + math.log(2.0)),
            amplitude,
            ALPHA_BOUNDS,
            amplitude,
            ALPHA_BOUNDS,
        ]

    def objective(self, theta: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray]:
        """Weighted Huber loss / delta of the log residuals, and its gradient."""
        log_e, a, alpha, b, beta = theta
        term_n = a - alpha * self.x
        term_d = b - beta * self.y
        log_pred = np.logaddexp(np.logaddexp(log_e, term_n), term_d)
        residual = log_pred - self.log_loss
        value = float(weights @ special.huber(self.delta, residual)) / self.delta
        slope = weights * np.clip(residual, -self.delta, self.delta) / self.delta
        share_e = np.exp(log_e - log_pred)
        share_n = np.exp(term_n - log_pred)
        share_d = np.exp(term_d - log_pred)
        gradient = np.array(
            [
                slope @ share_e,
                slope @ share_n,
                -(slope @ (share_n * self.x)),
                slope @ share_d,
                -(slope @ (share_d * self.y)),
            ]
        )
        return value, gradient

    def grid_values(self, thetas: np.ndarray) -> np.ndarray:
        """The unweighted objective at many thetas at once, shape (n_thetas,)."""
        log_e, a, alpha, b, beta = (thetas[:, k : k + 1] for k in range(5))
        log_pred = np.logaddexp(
            np.logaddexp(log_e, a - alpha * self.x[None, :]), b - beta * self.y[None, :]
        )
        return special.huber(self.delta, log_pred - self.log_loss[None, :]).sum(axis=1)

    def grid_starts(self) -> np.ndarray:
        """(n_starts, 5) starts through the central run (x = y = 0, geometric-mean loss)."""
        centre = math.exp(float(self.log_loss.mean()))
        smallest = math.exp(float(self.log_loss.min()))
        rows = []
        for fraction, alpha, beta, share in itertools.product(
            START_E_FRACTIONS, START_EXPONENTS, START_EXPONENTS, START_SHARES
        ):
            e0 = fraction * smallest
            excess = centre - e0  # > 0: centre >= smallest > e0
            rows.append(
                [
                    math.log(e0),
                    math.log(share * excess),
                    alpha,
                    math.log((1 - share) * excess),
                    beta,
                ]
            )
        return np.array(rows)

    def solve(self, starts: np.ndarray, weights: np.ndarray) -> optimize.OptimizeResult:
        lower, upper = np.array(self.bounds).T
        best = None
        for start in np.atleast_2d(starts):
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

    def best_grid_starts(self, count: int = START_POLISHED) -> np.ndarray:
        starts = self.grid_starts()
        return starts[np.argsort(self.grid_values(starts))[:count]]

    def from_theta(self, theta: np.ndarray) -> tuple[float, ...]:
        log_e, a, alpha, b, beta = (float(v) for v in theta)
        return (
            math.exp(log_e),
            math.exp(a + alpha * self.log_n_ref),
            alpha,
            math.exp(b + beta * self.log_d_ref),
            beta,
        )

    def to_theta(self, E: float, A: float, alpha: float, B: float, beta: float) -> np.ndarray:
        return np.array(
            [
                math.log(E),
                math.log(A) - alpha * self.log_n_ref,
                alpha,
                math.log(B) - beta * self.log_d_ref,
                beta,
            ]
        )

    def to_fit(self, result: optimize.OptimizeResult, weights: np.ndarray) -> JointFit:
        E, A, alpha, B, beta = self.from_theta(result.x)
        return JointFit(
            E=E,
            A=A,
            alpha=alpha,
            B=B,
            beta=beta,
            objective=float(result.fun) * self.delta,
            n_points=int(weights.sum()),
            converged=bool(result.success),
        )


def fit_joint_law(
    n_params: Any, n_samples: Any, losses: Any, huber_delta: float = HUBER_DELTA
) -> JointFit:
    """Fit L(N, D) to runs (n_params[i], n_samples[i], losses[i]).

    Every array (n_runs,), finite and positive, with at least three distinct
    values of N and of D (`identification_problem`). The grid of 375 starts is
    scored at once and L-BFGS-B runs from its 12 best; exponents are bounded to
    [0, 3].
    """
    n, d, loss = _checked_runs(n_params, n_samples, losses)
    if not (math.isfinite(huber_delta) and huber_delta > 0):
        raise ValueError(f"huber_delta must be positive, got {huber_delta!r}")
    problem = _Problem(n, d, loss, huber_delta)
    weights = np.ones(n.size)
    with one_blas_thread():
        return problem.to_fit(problem.solve(problem.best_grid_starts(), weights), weights)


def _cell_counts(n: np.ndarray, d: np.ndarray, n_resamples: int, rng: np.random.Generator):
    """How often each run is drawn in each resample (n_resamples, n_runs): runs redrawn
    with replacement within each (N, D) cell, so every cell keeps its count; where
    every cell holds one run (a table of single runs) that would redraw nothing, so
    the runs are redrawn over the whole table instead (as Besiroglu et al. do)."""
    cells = np.unique(np.stack([n, d], axis=1), axis=0, return_inverse=True)[1].ravel()
    if np.unique(cells).size == cells.size:
        cells = np.zeros_like(cells)
    return stratified_counts(cells, n_resamples, rng)


def bootstrap_joint_law(
    n_params: Any,
    n_samples: Any,
    losses: Any,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    huber_delta: float = HUBER_DELTA,
    resampled_losses: Any = None,
) -> dict[str, Any]:
    """Fit L(N, D) and bootstrap it: every resample redraws the runs within each (N, D)
    cell (over all runs where each cell has one) and refits from the full-sample
    optimum (from the grid's best starts where that does not converge).
    `resampled_losses` (n_resamples, n_runs): each run's loss on one resample of the
    test dates, fitted by that resample, so the intervals carry date noise too.

    Returns a JSON-able dict: `fit` (the full-sample `JointFit.to_dict()`); per
    parameter {"value", "low", "high"}; `samples` (n_converged, 5) resampled
    parameters in NAMES order, for derived quantities; level, n_resamples,
    n_converged, seed.
    """
    n, d, loss = _checked_runs(n_params, n_samples, losses)
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
    if resampled_losses is not None:
        resampled_losses = np.asarray(resampled_losses, dtype=float)
        if resampled_losses.shape != (int(n_resamples), n.size):
            raise ValueError(
                f"resampled_losses must have shape ({int(n_resamples)}, {n.size}), "
                f"got {resampled_losses.shape}"
            )
    full = fit_joint_law(n, d, loss, huber_delta)
    problem = _Problem(n, d, loss, huber_delta)
    centre = problem.to_theta(full.E, full.A, full.alpha, full.B, full.beta)
    rng = np.random.default_rng(seed)
    counts = _cell_counts(n, d, int(n_resamples), rng)
    params = np.full((int(n_resamples), 5), math.nan)
    with one_blas_thread():
        for row, weights in enumerate(counts):
            solver = problem
            if resampled_losses is not None:
                solver = _Problem(n, d, resampled_losses[row], huber_delta)
            result = solver.solve(centre, weights)
            if not result.success:
                result = solver.solve(solver.best_grid_starts(4), weights)
            if result.success:
                params[row] = solver.from_theta(result.x)
    kept = params[~np.isnan(params[:, 0])]
    tail = 100.0 * (1.0 - level) / 2.0
    out: dict[str, Any] = {"fit": full.to_dict()}
    for column, name in enumerate(NAMES):
        low, high = (
            np.percentile(kept[:, column], [tail, 100.0 - tail]) if kept.size else (math.nan,) * 2
        )
        out[name] = {"value": float(getattr(full, name)), "low": float(low), "high": float(high)}
    out.update(
        samples=kept,
        level=float(level),
        n_resamples=int(n_resamples),
        n_converged=int(kept.shape[0]),
        seed=int(seed),
    )
    return out


def marginal_value(
    boot: dict[str, Any], n_params: float, n_samples: float, factor: float = DOUBLING
) -> dict[str, Any]:
    """The predicted change of loss for `factor` x parameters and `factor` x data at
    (n_params, n_samples), each with its interval over the bootstrap's samples, and
    which resource binds as far as the interval of their difference says.

    Returns {"n_params", "n_samples", "factor", "params": {value, low, high},
    "data": {...}, "difference": data minus params {...}, "binding": "data",
    "parameters" or None, "statement"}. Changes are negative where the resource
    helps; `binding` is "data" only when doubling data is predicted to lower the
    loss more than doubling parameters with the whole interval of the difference
    below zero (and "parameters" the other way round).
    """
    level = boot["level"]
    tail = 100.0 * (1.0 - level) / 2.0

    def changes(E, A, alpha, B, beta):
        more_n = A * n_params ** (-alpha) * (factor ** (-alpha) - 1.0)
        more_d = B * n_samples ** (-beta) * (factor ** (-beta) - 1.0)
        return more_n, more_d

    fit = boot["fit"]
    point_n, point_d = changes(*(fit[name] for name in NAMES))
    samples = np.asarray(boot["samples"], dtype=float).reshape(-1, 5)
    draws_n, draws_d = changes(*samples.T)

    def summary(point: float, draws: np.ndarray) -> dict[str, float]:
        low, high = np.percentile(draws, [tail, 100.0 - tail]) if draws.size else (math.nan,) * 2
        return {"value": float(point), "low": float(low), "high": float(high)}

    difference = summary(point_d - point_n, draws_d - draws_n)
    binding = "data" if difference["high"] < 0 else "parameters" if difference["low"] > 0 else None
    times = f"{factor:g}x"
    statement = (
        f"data-limited: {times} the data is predicted to help more than {times} the parameters"
        if binding == "data"
        else f"parameter-limited: {times} the parameters is predicted to help more than "
        f"{times} the data"
        if binding == "parameters"
        else f"neither resource is detectably the binding one: the predicted gains of {times} "
        f"data and {times} parameters are within each other's intervals"
    )
    return {
        "n_params": float(n_params),
        "n_samples": float(n_samples),
        "factor": float(factor),
        "params": summary(point_n, draws_n),
        "data": summary(point_d, draws_d),
        "difference": difference,
        "binding": binding,
        "statement": statement,
    }
