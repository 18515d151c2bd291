"""The cross-budget matrix's plan: every training of a winner's architecture with
another winner's training values, its resume key, whether it is stored, and what it
would cost (`finscale validate-cross-budget --dry-run` prints it before any run)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finscale.analysis import Winner, cell_key, cross_budget_seed, plan_pairs
from finscale.scale.layout import cross_budget_path, stored
from finscale.scale.scale_spec import ScaleSpec


@dataclass(frozen=True)
class PlannedCell:
    """One training of the cross-budget matrix: `target`'s architecture with `source`'s
    training values, where it is stored, and what it would cost."""

    horizon_days: int
    source: Winner  # whose training values are used
    target: Winner  # whose architecture is trained, on its own budget's study
    path: Path
    key: str  # the cell's resume key
    stored: bool  # already stored with this key: a run skips it
    estimated_seconds: float  # upper bound; NaN when the winner's epoch time is unknown

    @property
    def values_from(self) -> int:
        return self.source.budget

    @property
    def architecture_of(self) -> int:
        return self.target.budget


def plan_cells(
    spec: ScaleSpec,
    winners_by_study: Mapping[tuple[int, int], Winner],
    prepared_of: Callable[[int, int], Any],
) -> list[PlannedCell]:
    """Every cell of the matrix, horizon by horizon: `winners_by_study` by (budget,
    horizon), `prepared_of(budget, horizon)` the prepared study of a budget."""
    from finscale.analysis import estimate_seconds

    plan = []
    train = spec.config.train
    train_dump = train.model_dump(mode="json")
    seed = cross_budget_seed(spec.config)
    for horizon in spec.horizons:
        winners = {b: w for (b, h), w in winners_by_study.items() if h == horizon}
        for source, target in plan_pairs(winners):
            if spec.config.search.transfer != "none" and dict(winners[source].params) == dict(
                winners[target].params
            ):
                # Values transferred from one to the other: the cell would only
                # repeat the target's own evaluation.
                continue
            path = cross_budget_path(spec.run_dir, horizon, source, target)
            key = cell_key(
                prepared_of(target, horizon).info,
                winners[source],
                winners[target],
                train_dump,
                seed,
            )
            plan.append(
                PlannedCell(
                    horizon_days=horizon,
                    source=winners[source],
                    target=winners[target],
                    path=path,
                    key=key,
                    stored=stored(path, key) is not None,
                    estimated_seconds=estimate_seconds(winners[target], train.max_epochs),
                )
            )
    return plan
