"""How often a panel's long-short illustration calls a Sharpe ratio where there is none,
and how often its interval covers the true Sharpe ratio where there is one: the
percentile interval over block-bootstrap draws of test dates and the Deflated Sharpe
Ratio over a trial count, each computed by the package's own functions
(`finscale.analysis.long_short`: `long_short_returns` per fold, then `figures`, which
draws the interval with `sharpe_interval` and deflates with `deflated_sharpe_of_count`)
on simulated panels whose truth is known.

    python benchmarks/coverage_long_short.py [--reps 1000] [--seed 0]
    python benchmarks/coverage_long_short.py --quick     # a smoke run, a few reps each

Imported by `benchmarks/coverage.py` too: `rows(reps, seed)` gives one dict per verdict
and scenario (keys: verdict, truth, scenario, n_dates, reps, measure, value, se, ci,
target, meets; ci the Clopper-Pearson interval of the rate at 95%).

Market: `N_SYMBOLS` symbols, each day's return (close to next close) the sum of a
persistent alpha (AR(1), coefficient 0.9, sd `ALPHA_SD`), a common factor times the
symbol's beta (about 1; 1% a day) and an idiosyncratic part (1.5% a day), factor and
idiosyncratic shocks Student t(4) scaled by a stochastic volatility (log-volatility
AR(1), coefficient 0.98, sd 0.35, a common and an own component): fat tails,
volatility clusters and cross-sectional correlation. A model's predictions are
persistent too (AR(1) noise, coefficient 0.9): on each date 0.5 plus 0.05 x (c alpha
+ sqrt(1 - c^2) noise), c the skill; c = 0 under the null (predictions independent
of every future return). A study: `N_DAYS` test dates in `FOLDS` walk-forward folds,
top and bottom 20% long and short, rebalanced every h days, 1,000 bootstrap draws, the
interval at 0.95.

- Null: no skill and no costs (the least favourable null: the true Sharpe ratio is
  exactly 0; costs would pull it below). Rates at which the DSR over 16 and over 48
  trials reaches 0.95 (target <= 0.06) and at which the interval lies above 0
  (one-sided, nominal 0.025; target <= 0.035); coverage of 0.
- Alternative: skill c = 0.5 (a rank correlation near 0.04 with the next day's
  returns), 5 bp per unit of turnover as the universe preset trades. The true Sharpe
  ratio is that of one `TRUTH_DAYS`-day path of the same process (its own standard
  error about 0.03 a year, against a half-width near 0.9). Coverage of the interval
  (target 0.93-0.97) at h = 1 and h = 5 (positions held five days), and with an edge
  that comes and goes (the skill c_t = 0.5 (1 + 0.5 z_t), z_t AR(1) with coefficient
  0.98: months of more and of less skill), whose serial dependence a block bootstrap
  within 400-day folds cannot see.

The study draws its blocks from each fold's per-date losses, never shorter than h; the
losses of a simulated panel are not those of a study, so the interval here uses the
rule's floor, h days (`blocks of h days`), and, for comparison, blocks of 20 days.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

# One thread per process: the products here are small, and threads only contend. Only
# when run as a script: imported (by a test), it must not change the threads of the
# importer's later subprocesses.
if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter
from scipy.stats import binomtest

from finscale.analysis.long_short import (
    figures,
    long_short_returns,
    long_short_weights,
    portfolio_returns,
    sharpe_interval,
)
from finscale.analysis.sharpe import deflated_sharpe_of_count, sharpe_ratio

DEFAULT_REPS = 1000  # every scenario in about 6 minutes on one core (+-0.007 at 0.95)
N_SYMBOLS = 20
N_DAYS = 1200
FOLDS = 3
TRUTH_DAYS = 300_000
QUANTILE = 0.2
COST_BPS = 5.0
LEVEL = 0.95
RESAMPLES = 1000
TRIALS = (16, 48)
CALL = 0.95  # a DSR at or above this reads as a Sharpe ratio beyond the search's luck
SKILL = 0.5
ALPHA_SD = 0.0012  # daily sd of a symbol's predictable return
ALPHA_PHI = 0.9
PREDICTION_PHI = 0.9
VOLATILITY_PHI = 0.98
VOLATILITY_SD = 0.35  # sd of the log volatility
FACTOR_SD, OWN_SD = 0.010, 0.015  # daily
COMPARISON_BLOCK_DAYS = 20
COVERAGE_TARGET = (0.93, 0.97)
FALSE_CALL_TARGET = 0.06
ONE_SIDED_TARGET = 0.035  # nominal (1 - LEVEL) / 2 = 0.025
RESULTS = Path(__file__).parent / "results" / "coverage_long_short.json"


@dataclass(frozen=True)
class Scenario:
    name: str
    truth: str  # "null" or "alternative"
    horizon: int  # rebalance every this many days
    skill: float = 0.0
    swing: float = 0.0  # the skill's relative swing over a regime (0: constant)
    cost_bps: float = 0.0


SCENARIOS = (
    Scenario("no skill, no costs, h = 1", "null", 1),
    Scenario("no skill, no costs, h = 5 (held 5 days)", "null", 5),
    Scenario("skill 0.5, 5 bp, h = 1", "alternative", 1, SKILL, cost_bps=COST_BPS),
    Scenario("skill 0.5, 5 bp, h = 5 (held 5 days)", "alternative", 5, SKILL, cost_bps=COST_BPS),
    Scenario(
        "skill 0.5 swinging +-50% over months, 5 bp, h = 5",
        "alternative",
        5,
        SKILL,
        swing=0.5,
        cost_bps=COST_BPS,
    ),
)


def ar1(phi: float, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Stationary AR(1) series along the first axis (days), unit marginal variance."""
    shocks = rng.standard_normal(shape) * math.sqrt(1.0 - phi**2)
    path = lfilter([1.0], [1.0, -phi], shocks, axis=0)
    start = rng.standard_normal((1, shape[1]))  # from the stationary distribution
    return path + start * phi ** np.arange(1, shape[0] + 1)[:, None]


def market(n_days: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n_days, N_SYMBOLS) standardised alpha and each day's simple return to the next
    close: alpha + beta x factor + own, the shocks t(4) in clustered volatility."""
    alpha = ar1(ALPHA_PHI, (n_days, N_SYMBOLS), rng)
    common = ar1(VOLATILITY_PHI, (n_days, 1), rng)
    own = ar1(VOLATILITY_PHI, (n_days, N_SYMBOLS), rng)
    log_vol = VOLATILITY_SD * (0.7 * common + math.sqrt(1 - 0.7**2) * own)

    def t4(shape: tuple[int, int]) -> np.ndarray:  # unit variance: t(4) has variance 2
        return rng.standard_t(4, shape) / math.sqrt(2.0)

    beta = 1.0 + 0.2 * rng.standard_normal(N_SYMBOLS)
    factor = FACTOR_SD * np.exp(VOLATILITY_SD * common - VOLATILITY_SD**2 / 2) * t4((n_days, 1))
    idiosyncratic = OWN_SD * np.exp(log_vol - VOLATILITY_SD**2 / 2) * t4((n_days, N_SYMBOLS))
    return alpha, ALPHA_SD * alpha + beta * factor + idiosyncratic


def predictions(alpha: np.ndarray, s: Scenario, rng: np.random.Generator) -> np.ndarray:
    """(n_days, N_SYMBOLS) predicted probabilities: the scenario's skill on the alpha,
    persistent noise elsewhere."""
    skill = np.full((alpha.shape[0], 1), s.skill)
    if s.swing:
        skill = np.clip(s.skill * (1.0 + s.swing * ar1(0.98, skill.shape, rng)), -0.95, 0.95)
    noise = ar1(PREDICTION_PHI, alpha.shape, rng)
    return 0.5 + 0.05 * (skill * alpha + np.sqrt(1.0 - skill**2) * noise)


def true_sharpe(s: Scenario, seed: int, n_days: int = TRUTH_DAYS) -> float:
    """The strategy's annualised Sharpe ratio on one `n_days`-day path (0 under the
    null, exactly: predictions independent of returns of mean 0, no costs)."""
    if s.truth == "null":
        return 0.0
    rng = np.random.default_rng([seed, 99])
    alpha, returns = market(n_days, rng)
    weights = long_short_weights(predictions(alpha, s, rng), QUANTILE, s.horizon)
    return float(sharpe_ratio(portfolio_returns(weights, returns, s.cost_bps)))


def fold_sizes(n_days: int = N_DAYS, folds: int = FOLDS) -> list[int]:
    return [len(part) for part in np.array_split(np.arange(n_days), folds)]


def one_study(s: Scenario, truth: float, rng: np.random.Generator, n_days: int) -> dict:
    """What the illustration said on one simulated panel: 1.0 where the call was made
    or the interval covers the truth, per key."""
    alpha, returns = market(n_days, rng)
    p = predictions(alpha, s, rng)
    sizes = fold_sizes(n_days)
    paths = []
    start = 0
    for n in sizes:  # each fold's portfolio from its own rows, as the study trades it
        dates = np.repeat(np.arange(start, start + n), N_SYMBOLS)
        symbols = np.tile(np.arange(N_SYMBOLS), n)
        rows = slice(start, start + n)
        paths.append(
            long_short_returns(
                dates,
                symbols,
                p[rows].ravel(),
                returns[rows].ravel(),
                QUANTILE,
                s.horizon,
                s.cost_bps,
            )
        )
        start += n
    daily = np.concatenate([d for d, _ in paths])
    traded = np.concatenate([t for _, t in paths])
    shown = figures(daily, traded, sizes, s.horizon, LEVEL, RESAMPLES, TRIALS[0])
    low, high = shown.sharpe_ci
    out = {
        f"dsr {TRIALS[0]}": float(shown.dsr.value >= CALL),
        f"dsr {TRIALS[1]}": float(deflated_sharpe_of_count(daily, TRIALS[1]).value >= CALL),
        "above 0": float(low > 0),
        "covers": float(low <= truth <= high),
    }
    if s.truth == "alternative":
        low, high = sharpe_interval(daily, sizes, COMPARISON_BLOCK_DAYS, LEVEL, RESAMPLES)
        out["covers, blocks 20"] = float(low <= truth <= high)
    return out


VERDICTS = {  # key: (verdict, measure under the null, measure under the alternative)
    f"dsr {TRIALS[0]}": (f"long-short DSR >= 0.95, {TRIALS[0]} trials", "false_call", "power"),
    f"dsr {TRIALS[1]}": (f"long-short DSR >= 0.95, {TRIALS[1]} trials", "false_call", "power"),
    "above 0": ("long-short Sharpe interval above 0", "false_call", "power"),
    "covers": ("long-short Sharpe interval, blocks of h days", "coverage", "coverage"),
    "covers, blocks 20": ("long-short Sharpe interval, blocks of 20 days", "", "coverage"),
}


def _row(key: str, s: Scenario, truth: float, n_days: int, hits: list[float]) -> dict:
    verdict, null_measure, alternative_measure = VERDICTS[key]
    measure = null_measure if s.truth == "null" else alternative_measure
    count, reps = round(sum(hits)), len(hits)
    value = count / reps
    ci = binomtest(count, reps).proportion_ci(0.95, method="exact")
    target, meets = "", None
    if measure == "coverage" and "20 days" not in verdict:
        target = f"{COVERAGE_TARGET[0]}-{COVERAGE_TARGET[1]}"
        meets = COVERAGE_TARGET[0] <= value <= COVERAGE_TARGET[1]
    elif measure == "false_call":
        limit = ONE_SIDED_TARGET if key == "above 0" else FALSE_CALL_TARGET
        target, meets = f"<= {limit}", value <= limit
    return {
        "verdict": verdict,
        "truth": s.truth,
        "scenario": f"{s.name}; true Sharpe {truth:.2f}",
        "true_sharpe": truth,
        "n_dates": n_days,
        "reps": reps,
        "measure": measure,
        "value": value,
        "se": math.sqrt(max(value * (1 - value), 1e-12) / reps),
        "ci": [float(ci.low), float(ci.high)],
        "target": target,
        "meets": meets,
    }


def rows(
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    n_days: int = N_DAYS,
    truth_days: int = TRUTH_DAYS,
    progress: Callable[[str], None] = print,
) -> list[dict]:
    """One dict per verdict and scenario over `reps` simulated panels of `n_days` test
    dates each: a null's false-call rates and coverage of 0, an alternative's coverage
    of its true Sharpe ratio (from one `truth_days`-day path) and the powers."""
    out = []
    for index, s in enumerate(SCENARIOS):
        started = time.perf_counter()
        truth = true_sharpe(s, seed + index, truth_days)
        rng = np.random.default_rng([seed, index])
        outcomes = [one_study(s, truth, rng, n_days) for _ in range(reps)]
        elapsed = time.perf_counter() - started
        progress(f"{s.name}: truth {truth:.3f}, {reps} panels in {elapsed:.0f} s")
        for key in outcomes[0]:
            out.append(_row(key, s, truth, n_days, [o[key] for o in outcomes]))
    return out


def markdown(rows: list[dict]) -> str:
    lines = [
        "| verdict | truth | scenario | test days | reps | measure | value [95% CI] | target "
        "| meets |",
        "|---|---|---|---:|---:|---|---:|---|---|",
    ]
    for r in rows:
        meets = "" if r["meets"] is None else ("yes" if r["meets"] else "**no**")
        low, high = r["ci"]
        lines.append(
            f"| {r['verdict']} | {r['truth']} | {r['scenario']} | {r['n_dates']} | {r['reps']} | "
            f"{r['measure'].replace('_', ' ')} | {r['value']:.3f} [{low:.3f}, {high:.3f}] | "
            f"{r['target']} | {meets} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=DEFAULT_REPS, help="panels per scenario")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a smoke run: a few reps each")
    args = parser.parse_args()
    started = time.perf_counter()
    table = rows(5 if args.quick else args.reps, args.seed)
    print(markdown(table))
    print(f"{time.perf_counter() - started:.0f} s")
    if not args.quick:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(table, indent=1) + "\n")
        print(f"wrote {RESULTS}")
    failing = [r for r in table if r["meets"] is False]
    print(
        f"{len(table) - len(failing)} of {len(table)} rows meet their target or are not "
        f"judged; {len(failing)} miss"
    )


if __name__ == "__main__":
    main()
