"""The secondary comparisons of a study, corrected as one family (Holm 1979).

A study makes one primary test (`finscale.analysis.size_trend`) and many
secondary comparisons: every budget step, every budget against every baseline,
each of them on each walk-forward fold, the size trend of every horizon but
the primary one, and, in a study of several feature tiers, each tier against
the next at every budget and horizon. Each keeps its raw interval; with twenty of them at 5%, one is
expected to come out "detectable" by chance alone, so each also gains a
`holm_verdict`: its direction where Holm's step-down procedure rejects "no
difference" at the study's level over the whole family, NO_DIFFERENCE otherwise.
Holm controls the chance of any false call in the family at the level, whatever
the dependence between the comparisons, and never calls less than Bonferroni.

The p-values are two-sided, from each comparison's bootstrap standard error
(normal approximation): a percentile p-value of 1,000 resamples cannot go below
0.001, too coarse for a family of dozens.

Pure functions of the results' records.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from finscale.analysis.bootstrap import IMPROVES, NO_DIFFERENCE, WORSENS, PairedDifference
from finscale.analysis.folds import FoldAgreement, FoldDifference
from finscale.analysis.scaling_json import Family, HorizonResult
from finscale.analysis.size_trend import NO_TREND, SizeTrend
from finscale.analysis.tiers import FAMILY_KIND as TIER_KIND
from finscale.analysis.tiers import TierResults

METHOD = "holm"


def holm_rejections(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Which hypotheses Holm's step-down procedure rejects at family-wise `alpha`.

    The i-th smallest p-value (i from 0) is rejected while every smaller one was
    and it is at most alpha / (m - i); NaN p-values are never rejected.
    """
    p = np.array([1.0 if p is None or math.isnan(p) else p for p in p_values], dtype=float)
    m = p.size
    rejected = [False] * m
    for rank, index in enumerate(np.argsort(p, kind="stable")):
        if p[index] > alpha / (m - rank):
            break
        rejected[int(index)] = True
    return rejected


def _corrected(item: Any, rejected: bool) -> Any:
    """A comparison with its holm_verdict: its raw verdict where rejected, else none."""
    if isinstance(item, SizeTrend):
        return dataclasses.replace(item, holm_verdict=item.verdict if rejected else NO_TREND)
    return dataclasses.replace(item, holm_verdict=item.verdict if rejected else NO_DIFFERENCE)


def _holm_agreement(agree: FoldAgreement | None, folds: Sequence[Any]) -> FoldAgreement | None:
    if agree is None:
        return None
    return dataclasses.replace(
        agree,
        holm_improves=sum(1 for f in folds if f.holm_verdict == IMPROVES),
        holm_worsens=sum(1 for f in folds if f.holm_verdict == WORSENS),
    )


class _Members:
    """The family's comparisons in a fixed order, each with the kind it counts as."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []

    def add(self, kind: str, item: PairedDifference | FoldDifference | SizeTrend | None) -> None:
        if item is not None:
            self.items.append((kind, item))


def _collect(
    horizons: Mapping[str, HorizonResult], primary: int | None, tiers: TierResults | None
) -> _Members:
    members = _Members()
    for key, h in horizons.items():
        for step in h.steps:
            members.add("budget steps", step.log_loss)
            for f in step.per_fold or ():
                members.add("budget steps on single folds", f)
        for row in h.budgets:
            for comparison in row.vs_baselines.values():
                members.add("against a baseline", comparison.log_loss)
            for fold in row.folds:
                for f in fold.vs_baselines.values():
                    members.add("against a baseline on single folds", f)
        if h.size_trend is not None and int(key) != primary:
            members.add("size trends of other horizons", h.size_trend)
    for comparison in tiers.comparisons if tiers is not None else ():
        members.add(TIER_KIND, comparison.log_loss)
    return members


def corrected_family(
    horizons: Mapping[str, HorizonResult],
    primary: int | None,
    level: float,
    tiers: TierResults | None = None,
) -> tuple[dict[str, HorizonResult], Family, TierResults | None]:
    """Every secondary comparison of `horizons` (and of `tiers`, the comparisons of a
    study on several feature tiers) with its holm_verdict, and the family.

    primary: the horizon whose size trend is the study's primary test (left out of
    the family); level: the study's confidence level, family-wise 1 - level.
    """
    members = _collect(horizons, primary, tiers)
    alpha = 1.0 - level
    rejected = holm_rejections([item.p_value for _, item in members.items], alpha)
    new = {
        id(item): _corrected(item, r) for (_, item), r in zip(members.items, rejected, strict=True)
    }

    def fix(item: Any) -> Any:
        return new.get(id(item), item)

    out = {}
    for key, h in horizons.items():
        steps = []
        for step in h.steps:
            per_fold = None if step.per_fold is None else tuple(fix(f) for f in step.per_fold)
            steps.append(
                dataclasses.replace(
                    step,
                    log_loss=fix(step.log_loss),
                    per_fold=per_fold,
                    folds_agree=_holm_agreement(step.folds_agree, per_fold or ()),
                )
            )
        rows = []
        for row in h.budgets:
            folds = tuple(
                dataclasses.replace(
                    fold, vs_baselines={n: fix(f) for n, f in fold.vs_baselines.items()}
                )
                for fold in row.folds
            )
            vs = {}
            for name, comparison in row.vs_baselines.items():
                per_fold = [fold.vs_baselines[name] for fold in folds if name in fold.vs_baselines]
                vs[name] = dataclasses.replace(
                    comparison,
                    log_loss=fix(comparison.log_loss),
                    folds_agree=_holm_agreement(comparison.folds_agree, per_fold),
                )
            rows.append(dataclasses.replace(row, vs_baselines=vs, folds=folds))
        out[key] = dataclasses.replace(
            h, steps=tuple(steps), budgets=tuple(rows), size_trend=fix(h.size_trend)
        )
    if tiers is not None:
        comparisons = tuple(
            dataclasses.replace(c, log_loss=fix(c.log_loss)) for c in tiers.comparisons
        )
        tiers = dataclasses.replace(tiers, comparisons=comparisons)
    counts: dict[str, int] = {}
    for kind, _ in members.items:
        counts[kind] = counts.get(kind, 0) + 1
    family = Family(
        method=METHOD,
        level=level,
        size=len(members.items),
        members=counts,
        detectable=sum(1 for item in new.values() if _detectable(item.holm_verdict)),
        raw_detectable=sum(1 for _, item in members.items if _detectable(item.verdict)),
    )
    return out, family, tiers


def _detectable(verdict: str | None) -> bool:
    return verdict not in (None, NO_DIFFERENCE, NO_TREND)
