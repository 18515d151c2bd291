"""Synthetic markets whose truth is known: the planted-scaling control and the
random-walk null control.

Prices and volumes made here go through the same validation, features, windows,
splits, purges and folds as real data (`finscale.data.dataset`). Two uses:

- `simulate_ohlcv`: daily OHLCV bars from a zero-mean return process, GARCH(1, 1)
  with Student-t shocks (simulated by `arch`, the field's library for it) for the
  synthetic market, or i.i.d. normal at a fixed volatility for the driftless random
  walk of `data.null_control: random_walk`, where no past predicts the future;
- `Teacher`: the planted labelling rule of `data.source: synthetic`. Labels are
  drawn from known probabilities p(window), so the Bayes log loss of any set of
  samples is known exactly: the mean binary entropy of their p
  (`bayes_log_loss`).

The teacher is a random two-layer network on the model-ready window (the z-scored
features of its last `teacher_days` days): `width` hidden units, each the square
`(u . x)^2` of one random direction u of that window, summed with random signs,
centred and scaled once (`Teacher.fit`). Being even, it has no linear part: a
logistic regression learns little from it (the features' skew leaves a sliver).
Being a
quadratic form of rank `width`, a model must carry about `width` directions of
each window to represent it, and a model narrower than that cannot: the best loss
reachable falls with capacity until it reaches the teacher's. The logits are
scaled to a standard deviation of `signal`, which sets how far below the base
rate's log loss the Bayes loss lies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

from finscale.config import SyntheticConfig

# The synthetic calendar: business days from this date (holidays play no part).
SYNTHETIC_START = "2000-01-03"
# GARCH(1, 1) in percent units (unconditional daily volatility 1%, persistence
# 0.98) with Student-t shocks of 6 degrees of freedom: typical of an equity index.
GARCH_PARAMS = {"omega": 0.02, "alpha": 0.08, "beta": 0.90, "nu": 6.0}
_BURN_DAYS = 500
_LN2 = float(np.log(2.0))


def garch_log_returns(days: int, rng: np.random.Generator) -> np.ndarray:
    """(days,) daily log returns of a zero-mean GARCH(1, 1) with Student-t shocks."""
    from arch.univariate import GARCH, StudentsT, ZeroMean  # arch's models load slowly

    model = ZeroMean(volatility=GARCH(), distribution=StudentsT(seed=rng))
    params = [GARCH_PARAMS[k] for k in ("omega", "alpha", "beta", "nu")]
    percent = model.simulate(params, days, burn=_BURN_DAYS)["data"].to_numpy()
    return percent / 100.0


def simulate_ohlcv(
    log_returns: np.ndarray,
    dates: pd.DatetimeIndex,
    rng: np.random.Generator,
    first_close: float = 100.0,
) -> pd.DataFrame:
    """Daily bars (`Date`, `Open`, `High`, `Low`, `Close`, `Volume`) whose closes
    follow `log_returns` (one per date).

    Each day's move is split into an overnight gap (a quarter of its variance) and
    the session; the high and low reach beyond the open and close by half-normal
    excursions of the day's scale; volume is log-normal, persistent, and higher on
    days of large moves, as volume is.
    """
    log_returns = np.asarray(log_returns, dtype=float)
    days = len(log_returns)
    if days != len(dates):
        raise ValueError(f"{days} returns for {len(dates)} dates")
    scale = np.sqrt(
        pd.Series(log_returns**2).ewm(halflife=20).mean().to_numpy() + 1e-10
    )  # a day's size, as the market would have judged it
    close = first_close * np.exp(np.cumsum(log_returns))
    previous = np.r_[first_close, close[:-1]]
    gap = np.clip(rng.normal(0.0, 0.5, days), -1.0, 1.0) * np.abs(log_returns)
    open_ = previous * np.exp(gap)
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.5, days)) * scale)
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.5, days)) * scale)
    persistent = np.zeros(days)
    shocks = rng.normal(0.0, 0.2, days)
    for t in range(1, days):  # AR(1) in log volume
        persistent[t] = 0.9 * persistent[t - 1] + shocks[t]
    surprise = np.abs(log_returns) / scale
    volume = np.round(1e6 * np.exp(persistent + 0.3 * surprise))
    return pd.DataFrame(
        {"Date": dates, "Open": open_, "High": high, "Low": low, "Close": close, "Volume": volume}
    )


def synthetic_market(config: SyntheticConfig) -> dict[str, pd.DataFrame]:
    """The market's bars by symbol: `config.symbols` independent GARCH series of
    `config.days` business days each, from `config.seed`."""
    dates = pd.bdate_range(SYNTHETIC_START, periods=config.days)
    out = {}
    for k, symbol in enumerate(config.symbol_names):
        rng = np.random.default_rng([config.seed, k])
        out[symbol] = simulate_ohlcv(garch_log_returns(config.days, rng), dates, rng)
    return out


def random_walk(frame: pd.DataFrame, seed: int | Sequence[int]) -> pd.DataFrame:
    """A driftless Gaussian random walk on `frame`'s dates (a validated bar frame
    indexed by date), at the daily volatility of its closes and from its first close:
    a market where no past predicts the future."""
    close = frame["Close"].to_numpy(float)
    volatility = float(np.std(np.diff(np.log(close)), ddof=1))
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, volatility, len(frame))
    returns[0] = 0.0
    bars = simulate_ohlcv(returns, pd.DatetimeIndex(frame.index), rng, float(close[0]))
    return bars.set_index("Date").rename_axis(frame.index.name)


# ---------------------------------------------------------------- the teacher


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """H(p) in nats, elementwise (0 at p = 0 or 1)."""
    p = np.asarray(p, dtype=float)
    q = np.clip(p, 1e-300, 1.0)
    r = np.clip(1.0 - p, 1e-300, 1.0)
    return -(p * np.log(q) + (1.0 - p) * np.log(r))


def bayes_log_loss(p: np.ndarray) -> float:
    """The log loss of the true probabilities `p` on labels drawn from them, in
    expectation: the least any model can reach (nats)."""
    p = np.asarray(p, dtype=float)
    if p.size == 0:
        raise ValueError("no probabilities")
    return float(binary_entropy(p).mean())


@dataclass(frozen=True)
class Teacher:
    """The planted rule: p(window) = sigmoid(signal * f(window) / sd + offset).

    `width` quadratic units on random directions of the window, drawn from `seed`;
    `sd` and `offset` are fitted once on the windows the rule is first applied to
    (`fit`), so the logits have standard deviation `signal` and the mean
    probability is `base_rate`.
    """

    width: int
    signal: float
    seed: int
    base_rate: float = 0.5
    sd: float = 1.0
    offset: float = 0.0

    def raw(self, windows: np.ndarray) -> np.ndarray:
        """(n,) the unscaled rule on (n, context_days, n_features) windows."""
        flat = np.asarray(windows, dtype=float).reshape(len(windows), -1)
        rng = np.random.default_rng([self.seed, 7919])
        directions = rng.normal(0.0, 1.0, (flat.shape[1], self.width)) / np.sqrt(flat.shape[1])
        signs = rng.choice([-1.0, 1.0], self.width)
        # Centring and scale are left to `fit`: it sets them once, so the rule stays
        # one fixed function of the window.
        return (flat @ directions) ** 2 @ signs / np.sqrt(self.width)

    def fit(self, windows: np.ndarray) -> Teacher:
        """The teacher scaled on these windows: logits of sd `signal`, mean p `base_rate`."""
        raw = self.raw(windows)
        sd = float(raw.std()) or 1.0
        logits = self.signal * (raw - raw.mean()) / sd
        offset = _solve_offset(logits, self.base_rate) - self.signal * raw.mean() / sd
        return Teacher(self.width, self.signal, self.seed, self.base_rate, sd, offset)

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        """(n,) p(window) in (0, 1)."""
        logits = self.signal * self.raw(windows) / self.sd + self.offset
        return expit(logits)


def _solve_offset(logits: np.ndarray, base_rate: float) -> float:
    """The shift b with mean(sigmoid(logits + b)) = base_rate (the mean rises with b)."""
    return float(brentq(lambda b: expit(logits + b).mean() - base_rate, -50.0, 50.0, xtol=1e-12))
