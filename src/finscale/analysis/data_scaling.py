"""What a horizon's runs say beyond the comparisons: the joint law L(N, D) of its
data-scaling runs, and a panel's figures symbol by symbol.

Both read a `finscale.analysis.folds.Horizon` (the pooled test dates and each
budget's predictions) and return what `scaling.json` stores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from finscale.analysis.bootstrap import sample_log_loss
from finscale.analysis.folds import (
    Horizon,
    LossSummary,
    PairedDates,
    by_fold,
    loss_summary,
    pooled_test,
)
from finscale.analysis.joint_law import (
    JointLawBootstrap,
    MarginalValue,
    bootstrap_joint_law,
    identification_problem,
    marginal_value,
)
from finscale.analysis.law_fit import bound_problems
from finscale.analysis.records import EvaluationRun
from finscale.analysis.resampling import resampled_means
from finscale.analysis.serial import Record, if_key, mapping_of, stored, tuple_of
from finscale.config import ScaleConfig
from finscale.errors import InputError
from finscale.units import format_budget


@dataclass(frozen=True, kw_only=True)
class SymbolBudget(Record):
    """One budget's test log loss on one symbol's test samples: its seed mean and
    interval, and its interval over that symbol's own resampled dates."""

    budget: int
    log_loss: LossSummary = stored(parse=LossSummary.from_dict)


@dataclass(frozen=True, kw_only=True)
class SymbolRow(Record):
    """A panel's figures on one symbol: its `n_test` test samples, each budget's and
    each baseline's test log loss there, with an interval over its own resampled
    dates."""

    symbol: str
    n_test: int
    budgets: tuple[SymbolBudget, ...] = stored(parse=tuple_of(SymbolBudget.from_dict))
    baselines: Mapping[str, LossSummary] = stored(parse=mapping_of(LossSummary.from_dict))


@dataclass(frozen=True, kw_only=True)
class JointPoints(Record):
    """The runs L(N, D) is fitted to, one per seed, budget and data fraction: parameter
    count N, training-sample count D, the fraction of the training data and the
    pooled test log loss (nats)."""

    n_params: tuple[float, ...]
    train_samples: tuple[float, ...]
    data_fraction: tuple[float, ...]
    test_log_loss: tuple[float, ...]


@dataclass(frozen=True, kw_only=True)
class JointHorizonFit(Record):
    """`scaling.json`'s `joint_fit` of a horizon: L(N, D) with its intervals (its keys
    stand among these) and the marginal value of each resource at the largest run, or
    why the runs cannot identify it (`skipped`); the runs it was fitted to; and whether
    the fitted law leans on a bound of its fit (`identified` False, `why` in words; None
    where skipped and in a file written before the judgement)."""

    skipped: str | None = stored(omit_none=True)
    law: JointLawBootstrap | None = stored(
        flat=True, parse=if_key("fit", JointLawBootstrap.from_dict), default=None
    )
    points: JointPoints = stored(parse=JointPoints.from_dict)
    marginal: MarginalValue | None = stored(omit_none=True, parse=MarginalValue.from_dict)
    identified: bool | None = stored(omit_none=True)
    why: str | None = stored(omit_none=True)


def symbol_rows(
    h: Horizon, baseline_preds: Mapping[str, np.ndarray], scale: ScaleConfig, threshold: float
) -> tuple[SymbolRow, ...]:
    """A panel's test log loss per symbol: each budget and baseline on that symbol's
    test samples, with an interval over its own resampled dates."""
    if not h.panel:
        return ()
    out = []
    dates = np.array(h.test_dates)
    for symbol in dict.fromkeys(h.symbols.tolist()):
        mask = h.symbols == symbol
        all_sizes = [int((mask & fold).sum()) for fold in h.masks]
        sizes = [n for n in all_sizes if n]
        blocks = [b for n, b in zip(all_sizes, h.fold_block_days, strict=True) if n]
        sample = PairedDates(h.y_test[mask], sizes, blocks, scale, threshold, dates[mask])
        out.append(
            SymbolRow(
                symbol=str(symbol),
                n_test=int(mask.sum()),
                budgets=tuple(
                    SymbolBudget(budget=b, log_loss=loss_summary(sample, h.preds[b][:, mask]))
                    for b in h.budgets
                ),
                baselines={
                    name: loss_summary(sample, p[:, mask]) for name, p in baseline_preds.items()
                },
            )
        )
    return tuple(out)


def joint_fit(
    h: Horizon,
    evaluations: Mapping[int, Sequence[EvaluationRun]],
    data_runs: Mapping[int, Mapping[float, Sequence[EvaluationRun]]],
    scale: ScaleConfig,
) -> JointHorizonFit:
    """L(N, D) fitted to every seed's pooled test log loss at every budget and data
    fraction (D: the mean training-sample count over its folds), with intervals over
    runs within each (N, D) cell and the comparisons' test-date draws, and the
    marginal value of each resource at the largest run."""
    n_params, n_samples, fractions, per_sample = [], [], [], []
    for b in h.budgets:
        groups = {1.0: (h.preds[b], evaluations[b])}
        for fraction, runs in sorted((data_runs.get(b) or {}).items()):
            y, preds, fold_ids = pooled_test(runs, h.what)
            if not np.array_equal(y, h.y_test) or not np.array_equal(fold_ids, h.fold_ids):
                raise InputError(
                    f"{h.what}: the data-scaling runs of {format_budget(b)} were scored on other "
                    "test dates; remove their evaluation/ folders and rerun",
                    h.what,
                )
            groups[fraction] = (preds, runs)
        for fraction, (preds, runs) in sorted(groups.items()):
            first_of_fold = [group[0] for group in by_fold(runs).values()]
            d = float(np.mean([r.n_train for r in first_of_fold]))
            losses = sample_log_loss(h.y_test, preds)
            for row in losses:
                n_params.append(float(runs[0].winner.param_count))
                n_samples.append(d)
                fractions.append(fraction)
                per_sample.append(row)
    stacked = np.array(per_sample)
    losses = stacked.mean(axis=1)
    points = JointPoints(
        n_params=tuple(n_params),
        train_samples=tuple(n_samples),
        data_fraction=tuple(fractions),
        test_log_loss=tuple(losses.tolist()),
    )
    problem = identification_problem(n_params, n_samples)
    if problem:
        return JointHorizonFit(skipped=problem, points=points)
    boot = bootstrap_joint_law(
        np.array(n_params),
        np.array(n_samples),
        losses,
        n_resamples=scale.bootstrap_resamples,
        seed=0,
        level=h.level,
        resampled_losses=resampled_means(stacked, h.pooled.indices),
    )
    marginal = marginal_value(boot, max(n_params), max(n_samples))
    terms = [("A", boot.A, "alpha", boot.alpha), ("B", boot.B, "beta", boot.beta)]
    problems = bound_problems(boot.E, terms, float(losses.min()))
    return JointHorizonFit(
        law=boot,
        points=points,
        marginal=marginal,
        identified=not problems,
        why="; ".join(problems) or None,
    )
