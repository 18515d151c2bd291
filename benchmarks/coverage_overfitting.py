"""How often the overfitting verdicts call skill where there is none, and how often they
find it where there is some: the PBO against its null reference, the Deflated Sharpe
Ratio of the winner's validation Sharpe ratio and the probabilistic Sharpe ratio of the
test Sharpe ratio, each computed by the package's own functions on simulated studies
whose truth is known.

Imported by `benchmarks/coverage.py`: `rows(reps, seed)` gives one dict per verdict and
scenario (keys: verdict, truth, scenario, n_dates, reps, measure, value, target, meets).

One simulated study: daily next-day returns with zero mean (1% daily volatility; normal,
or Student t with 4 degrees of freedom scaled to the same volatility), the label of each
date is whether the return is positive (horizon 1 day). A search of `n_trials` trials
predicts P(up) on `VAL_DAYS` validation dates; the winner is the trial of the lowest mean
validation log loss, as the search crowns it. Its final evaluation is `SEEDS` retrained
seeds predicting the test dates; the long/flat signal and its Sharpe ratio come from
`finscale.analysis.economics.economic_view` on those runs (threshold chosen on each
run's validation dates, 1 bp per unit of position change), the PBO from
`finscale.analysis.overfitting.search_pbo` of the search's predictions.

Under the null no trial has skill: each predicts 0.5 plus noise (independent per trial
and date; in the "shared" scenarios plus a component common to every trial on a date,
which moves every trial's loss together; in the "clustered" scenario trials come in 4
groups sharing a group component, a correlation the PBO's null does not model). The
calls must then be rare: false-call rate at most 6% at the nominal 5%. Under the
alternative the winner's trial (and its retrained seeds) is right on a share `SKILL` of
the dates: the rate of each call is its power.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from finscale.analysis.bootstrap import sample_log_loss
from finscale.analysis.economics import economic_view
from finscale.analysis.overfitting import (
    PBO_BLOCKS,
    search_pbo,
)
from finscale.analysis.records import EvaluationRun, SearchTrials, Winner
from finscale.analysis.resampling import stratified_bootstrap_indices

DEFAULT_REPS = 120  # every row below in about 2 minutes on a busy 2-core machine (+-0.02 at 5%)
VAL_DAYS = 1500
TEST_DAYS = (738, 150)
SEEDS = 3
DAILY_VOLATILITY = 0.01
NOISE = 0.04  # spread of a trial's predictions around 0.5
SHARED = 0.04  # spread of the component shared by every trial on a date
SKILL = 0.06  # share of dates a skilled trial (or seed) leans the right way
LEAN = 0.1  # how far it leans
CALL = 0.95  # a DSR or PSR above this calls skill (one-sided 5%)
FALSE_CALL_TARGET = 0.06


@dataclass(frozen=True)
class Scenario:
    name: str
    truth: str  # "null" or "alternative"
    n_trials: int
    returns: str = "normal"  # or "t4"
    shared: float = 0.0  # spread of the per-date component every trial shares
    clusters: int = 0  # trials in this many groups sharing a group component
    skill: float = 0.0  # share of dates the winner (and its seeds) lean the right way


SCENARIOS = (
    Scenario("40 trials, normal returns, independent trial noise", "null", 40),
    Scenario("20 trials, t(4) returns, shared per-date noise", "null", 20, "t4", SHARED),
    Scenario("40 trials in 4 correlated clusters, normal returns", "null", 40, clusters=4),
    Scenario("40 trials, one skilled, normal returns", "alternative", 40, skill=SKILL),
)


def _returns(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    if kind == "t4":  # unit variance: t(4) has variance 2
        return rng.standard_t(4, n) / math.sqrt(2.0) * DAILY_VOLATILITY
    return rng.normal(0.0, DAILY_VOLATILITY, n)


def _lean(rng: np.random.Generator, r: np.ndarray, skill: float) -> np.ndarray:
    """LEAN towards the sign of the next-day return on a share `skill` of dates, else 0."""
    return np.where(rng.random(r.size) < skill, LEAN * np.sign(r), 0.0)


def _search(rng: np.random.Generator, s: Scenario, r: np.ndarray) -> np.ndarray:
    """(n_trials, VAL_DAYS) predictions; trial 0 carries the scenario's skill."""
    p = 0.5 + NOISE * rng.standard_normal((s.n_trials, r.size))
    if s.shared:
        p += s.shared * rng.standard_normal(r.size)
    if s.clusters:
        group = np.arange(s.n_trials) % s.clusters
        p += NOISE * rng.standard_normal((s.clusters, r.size))[group]
    if s.skill:
        p[0] += _lean(rng, r, s.skill)
    return np.clip(p, 0.01, 0.99)


def _run(seed: int, winner: Winner, p_val, r_val, p_test, r_test) -> EvaluationRun:
    def labels(r: np.ndarray) -> list[int]:
        return (r > 0).astype(int).tolist()

    return EvaluationRun(
        key=f"seed{seed}",
        tier="simulated",
        seed=seed,
        winner=winner,
        micro_batch=1,
        accumulation_steps=1,
        effective_batch=1,
        epochs_run=1,
        best_epoch=1,
        stopped_early=False,
        device="cpu",
        dtype="float32",
        train_seconds=0.0,
        samples_per_second=0.0,
        n_train=1,
        samples_per_param=1.0,
        val_metrics={},
        test_metrics={},
        learning_curve=(),
        predictions={"val": p_val.tolist(), "test": p_test.tolist()},
        labels={"val": labels(r_val), "test": labels(r_test)},
        test_dates=(),
        next_day_returns={"val": r_val.tolist(), "test": r_test.tolist()},
    )


def _study(rng: np.random.Generator, s: Scenario) -> Iterator[tuple[str, int, bool]]:
    """The calls of one simulated study: (verdict, n_dates, called)."""
    r_val = _returns(rng, s.returns, VAL_DAYS)
    y_val = (r_val > 0).astype(int)
    predictions = _search(rng, s, r_val)
    pbo = search_pbo(y_val, predictions, PBO_BLOCKS)
    yield "PBO below null 5%", VAL_DAYS, pbo.beats_null
    best = int(np.argmin(sample_log_loss(y_val, predictions).mean(axis=1)))
    search = SearchTrials(
        study="simulated",
        dates=(),
        labels=tuple(y_val.tolist()),
        next_day_returns=tuple(r_val.tolist()),
        predictions={k: tuple(row) for k, row in enumerate(predictions.tolist())},
        complete=s.n_trials,
    )
    winner = Winner("simulated", 1, 1, best, 0.69, {"param_count": 1}, {})
    # The winner's seeds: its skill (if any) with fresh noise, on validation and test.
    skill = s.skill if best == 0 else 0.0
    for n_test in TEST_DAYS:
        r_test = _returns(rng, s.returns, n_test)
        runs = []
        for seed in range(SEEDS):
            p_val = np.clip(
                0.5 + NOISE * rng.standard_normal(VAL_DAYS) + _lean(rng, r_val, skill), 0.01, 0.99
            )
            p_test = np.clip(
                0.5 + NOISE * rng.standard_normal(n_test) + _lean(rng, r_test, skill), 0.01, 0.99
            )
            runs.append(_run(seed, winner, p_val, r_val, p_test, r_test))
        indices = stratified_bootstrap_indices([n_test], 10, 20, 0)
        first = n_test == TEST_DAYS[0]  # the DSR does not depend on the test dates
        _, dsr, psr = economic_view(runs, search if first else None, 1, 1.0, indices, 0.95)
        if first:
            yield "DSR > 0.95", VAL_DAYS, dsr.value is not None and dsr.value > CALL
        yield "PSR > 0.95", n_test, psr.value is not None and psr.value > CALL


def rows(reps: int = DEFAULT_REPS, seed: int = 0) -> list[dict]:
    """One dict per verdict and scenario: the false-call rate of each call under the
    null scenarios (target <= 6%), its power under the alternative, over `reps`
    simulated studies each."""
    out = []
    for index, s in enumerate(SCENARIOS):
        rng = np.random.default_rng([seed, index])
        calls: dict[tuple[str, int], list[bool]] = {}
        for _ in range(reps):
            for verdict, n_dates, called in _study(rng, s):
                calls.setdefault((verdict, n_dates), []).append(bool(called))
        for (verdict, n_dates), called in calls.items():
            rate = float(np.mean(called))
            null = s.truth == "null"
            out.append(
                {
                    "verdict": verdict,
                    "truth": s.truth,
                    "scenario": s.name,
                    "n_dates": n_dates,
                    "reps": reps,
                    "measure": "false_call" if null else "power",
                    "value": rate,
                    "target": f"<= {FALSE_CALL_TARGET:.2f}" if null else "",
                    "meets": rate <= FALSE_CALL_TARGET if null else None,
                }
            )
    return out
