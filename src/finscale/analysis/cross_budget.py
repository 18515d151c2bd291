"""Cross-budget validation: do the training values found at one size transfer to another?

For budgets A and B of one horizon, cell (A, B) is the validation log loss of
B's winning architecture trained with A's winning training values (learning
rate, weight decay, warmup, dropout), seed 0. The diagonal is the winner
itself: the final evaluation's seed-0 run, not trained again. A row that is
good across every column means those values transfer; a column whose
diagonal is far below its other cells means the search at that size found
values the others would miss.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from finscale.analysis.evaluate import run_key
from finscale.analysis.records import CrossBudgetCell, Winner
from finscale.analysis.serial import Record, stored, tuple_of
from finscale.hpo import Prepared

CROSS_SEED = 0


@dataclass(frozen=True, kw_only=True)
class CrossBudgetMatrix(Record):
    """The cross-budget matrix of one horizon: `val_log_loss[i][j]` (nats, NaN where not
    trained) is budget j's winning architecture trained with budget i's winning
    training values; `own_values_margin[j]`, column j's best off-diagonal cell minus
    its diagonal (positive: the column's own values are the best of those tried)."""

    budgets: tuple[int, ...]
    val_log_loss: tuple[tuple[float, ...], ...] = stored(parse=tuple_of(tuple))
    own_values_margin: tuple[float, ...]


def plan_pairs(winners: dict[int, Winner]) -> list[tuple[int, int]]:
    """Every ordered (values_from, architecture_of) pair of distinct budgets, in order."""
    budgets = sorted(winners)
    return [(a, b) for a in budgets for b in budgets if a != b]


def cell_key(info: dict[str, Any], source: Winner, target: Winner, train: dict[str, Any]) -> str:
    return run_key("cross_budget", info, target.architecture, source.params, train, CROSS_SEED)


def estimate_seconds(target: Winner, max_epochs: int) -> float:
    """Upper-bound seconds to train `target`'s architecture once: its HPO trial's
    measured seconds per epoch times the epoch limit (NaN when not measured)."""
    per_epoch = target.seconds_per_epoch
    return math.nan if per_epoch is None else per_epoch * max_epochs


def cross_budget_cell(
    prepared: Prepared,
    config: Any,
    source: Winner,
    target: Winner,
    on_epoch: Callable[[Any], None] | None = None,
) -> CrossBudgetCell:
    """Train `target`'s architecture with `source`'s training values (seed 0) on the
    study of `target`'s budget (`prepared`); returns the cell's record."""
    from finscale.hpo import train_configuration

    result = train_configuration(
        prepared, config, target.architecture["index"], source.params, CROSS_SEED, on_epoch
    )
    return CrossBudgetCell(
        key=cell_key(prepared.info, source, target, config.train.model_dump(mode="json")),
        values_from=source.budget,
        architecture_of=target.budget,
        architecture=target.architecture,
        params=source.params,
        val_log_loss=result.val_loss,
        epochs_run=result.epochs_run,
        train_seconds=result.train_seconds,
    )


def matrix(budgets: list[int], cells: dict[tuple[int, int], float]) -> CrossBudgetMatrix:
    """The matrix of `cells` ((values_from, architecture_of) -> validation log loss):
    rows are where the training values come from, columns the architecture."""
    rows = [tuple(cells.get((a, b), math.nan) for b in budgets) for a in budgets]
    regret = []
    for j in range(len(budgets)):
        others = [rows[i][j] for i in range(len(budgets)) if i != j and math.isfinite(rows[i][j])]
        own = rows[j][j]
        regret.append(min(others) - own if others and math.isfinite(own) else math.nan)
    return CrossBudgetMatrix(
        budgets=tuple(budgets), val_log_loss=tuple(rows), own_values_margin=tuple(regret)
    )
