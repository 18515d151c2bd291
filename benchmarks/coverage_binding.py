"""The binding-resource call of the joint law L(N, D) on simulated runs whose truth is known.

The study's grid: three budgets (the quick study's winners, 17K, 227K and 1.6M
parameters) x three data fractions (1, 0.5, 0.25 of 2,836 training samples) x
three seeds, each run scored on the same `n_dates` test dates. A run's loss on
date t is the true law at its (N, D), plus a per-run offset (seed noise, sd
0.002 nats), plus a per-date loss common to every run (sd 0.5: which dates are
hard) and a per-date loss of its own (sd 0.1: where runs disagree), as on the
quick study, whose 3 seeds spread 0.003-0.006 nats on 2,461 test dates. The fit
and the call are the package's: `bootstrap_joint_law` with the runs redrawn
within each (N, D) cell and each run's loss on block-bootstrap resamples of the
dates (`bootstrap_indices`, blocks of 10 dates, as `joint_fit` passes them),
then `marginal_value` at the largest run.

Scenarios, by the predicted gains of 2x parameters and 2x data at the largest
run: two nulls where both gain the same (0.004 nats each, with equal exponents
0.3 / 0.3 and with unequal 0.15 / 0.6), a null where nothing helps (both terms
0), the first null again with the runs redrawn but not the test dates (as a
bootstrap over a table of runs alone draws), and an alternative where data
clearly binds (0.008 against 0.001). A null's
false-call rate is the share of studies where the interval of "data minus
parameters" excludes zero (`binding` not None); the alternative's power is the
share that call data. Few resamples per bootstrap (`RESAMPLES`, 100) and 12
studies per scenario keep the default run near two minutes on a quiet 2-core
machine; a percentile interval of 100 draws is a little noisier than the
study's 1,000, and 12 studies only tell a rate of 0 from one near 0.3. Measured
with 30 studies per scenario: 0/30 false calls in each of the three nulls with
date draws (0/60, 0/30, 0/30 before the seeds' spread was stretched), 2/30 with
the runs redrawn alone (4/30 before), power 10/30 (13/30 before).

`rows(reps, seed)` is the table `benchmarks/coverage.py` gathers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from finscale.analysis.joint_law import bootstrap_joint_law, joint_law, marginal_value
from finscale.analysis.resampling import bootstrap_indices

PARAM_COUNTS = (17_425.0, 227_137.0, 1_640_577.0)
FULL_TRAIN_SAMPLES = 2_836.0
DATA_FRACTIONS = (1.0, 0.5, 0.25)
SEEDS = 3
N_DATES = 738
BLOCK_DAYS = 10
RESAMPLES = 100
E_NATS = 0.33  # the quick study's losses, a label base rate near 0.1
SEED_SD = 0.002  # nats, a run's offset
COMMON_DATE_SD = 0.5  # nats, a date's loss shared by every run
RUN_DATE_SD = 0.1  # nats, a date's loss of one run of its own
FALSE_CALL_TARGET = 0.06


@dataclass(frozen=True)
class Scenario:
    """A true L(N, D) by the predicted gain (nats) of 2x parameters (`gain_params`) and
    2x data (`gain_data`) at the largest run, and its exponents."""

    name: str
    truth: str  # "null" or "alternative"
    gain_params: float
    gain_data: float
    alpha: float
    beta: float
    with_dates: bool = True  # False: the runs redrawn, the test dates not

    def law(self) -> tuple[float, float, float, float, float]:
        """(E, A, alpha, B, beta) whose doubling gains at the largest run are the
        scenario's."""
        n, d = max(PARAM_COUNTS), FULL_TRAIN_SAMPLES
        A = self.gain_params / (n ** (-self.alpha) * (1 - 2 ** (-self.alpha)))
        B = self.gain_data / (d ** (-self.beta) * (1 - 2 ** (-self.beta)))
        return E_NATS, A, self.alpha, B, self.beta


SCENARIOS = (
    Scenario("equal gains 0.004, alpha = beta = 0.3", "null", 0.004, 0.004, 0.3, 0.3),
    Scenario("equal gains 0.004, alpha 0.15, beta 0.6", "null", 0.004, 0.004, 0.15, 0.6),
    Scenario("nothing helps (A = B = 0)", "null", 0.0, 0.0, 0.3, 0.3),
    Scenario(
        "equal gains 0.004, alpha = beta = 0.3, runs redrawn without date draws",
        "null",
        0.004,
        0.004,
        0.3,
        0.3,
        with_dates=False,
    ),
    Scenario("data binds: 0.008 against 0.001", "alternative", 0.001, 0.008, 0.3, 0.3),
)


def simulated_study(
    scenario: Scenario, rng: np.random.Generator, n_dates: int = N_DATES
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One study's runs: N and D (n_runs,), each run's mean test loss (n_runs,) and its
    loss on each resample of the test dates (RESAMPLES, n_runs)."""
    n = np.repeat(PARAM_COUNTS, len(DATA_FRACTIONS) * SEEDS)
    d = np.tile(np.repeat(FULL_TRAIN_SAMPLES * np.array(DATA_FRACTIONS), SEEDS), len(PARAM_COUNTS))
    per_date = (
        joint_law(n, d, *scenario.law())[:, None]
        + rng.normal(0.0, SEED_SD, n.size)[:, None]
        + rng.normal(0.0, COMMON_DATE_SD, n_dates)[None, :]
        + rng.normal(0.0, RUN_DATE_SD, (n.size, n_dates))
    )
    indices = bootstrap_indices(n_dates, BLOCK_DAYS, RESAMPLES, int(rng.integers(2**31)))
    return n, d, per_date.mean(axis=1), per_date[:, indices].mean(axis=2).T


def calls(
    scenario: Scenario, reps: int, seed: int, n_dates: int = N_DATES, with_dates: bool = True
) -> list[str | None]:
    """The binding resource `marginal_value` names in each of `reps` simulated studies;
    `with_dates` False redraws the runs only (as `finscale fit-law` does with a table of
    runs), not the test dates."""
    rng = np.random.default_rng(seed)
    out = []
    for rep in range(reps):
        n, d, losses, resampled = simulated_study(scenario, rng, n_dates)
        boot = bootstrap_joint_law(
            n,
            d,
            losses,
            n_resamples=RESAMPLES,
            seed=rep,
            resampled_losses=resampled if with_dates else None,
        )
        out.append(marginal_value(boot, n.max(), d.max()).binding)
    return out


def rows(reps: int = 12, seed: int = 0) -> list[dict]:
    """One row per scenario: a null's false-call rate (target <= 0.06) or the
    alternative's power, over `reps` simulated studies."""
    out = []
    for k, scenario in enumerate(SCENARIOS):
        named = calls(scenario, reps, seed + 1000 * k, with_dates=scenario.with_dates)
        if scenario.truth == "null":
            value = sum(b is not None for b in named) / reps
            measure, target = "false_call", f"<= {FALSE_CALL_TARGET}"
            meets = value <= FALSE_CALL_TARGET
        else:
            value = sum(b == "data" for b in named) / reps
            measure, target, meets = "power", "", None
        out.append(
            {
                "verdict": "binding resource",
                "truth": scenario.truth,
                "scenario": f"{scenario.name}; {RESAMPLES} bootstrap resamples",
                "n_dates": N_DATES,
                "reps": reps,
                "measure": measure,
                "value": float(value),
                "target": target,
                "meets": meets,
            }
        )
    return out
