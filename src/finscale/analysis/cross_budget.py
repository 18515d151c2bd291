"""Cross-budget validation: do the training values found at one size transfer to another?

For budgets A and B of one horizon, cell (A, B) is the validation log loss of
B's winning architecture trained with A's winning training values (learning
rate, weight decay, warmup, dropout), with the first final-evaluation seed
(`cross_budget_seed`). The diagonal is the winner itself: its final-evaluation
run with that same seed, not trained again. No seed the search trained with is
among them, so every cell is a run the search never saw: a diagonal that
repeated the search's winning run would carry its selection luck (its value is
the lowest of many noisy draws) against off-diagonal cells that do not. A row
that is good across every column means those values transfer; a column whose
diagonal is far below its other cells means the search at that size found
values the others would miss.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from finscale.analysis.evaluate import evaluation_seeds, run_key
from finscale.analysis.records import CrossBudgetCell, Winner
from finscale.analysis.serial import Record, stored, tuple_of
from finscale.config import StudyConfig
from finscale.hpo import Prepared


def cross_budget_seed(config: StudyConfig) -> int:
    """The seed every cell of the matrix trains with: the first evaluation seed
    (`evaluation_seeds`), so the diagonal is the winner's final-evaluation run of the
    same seed and no cell repeats a run of the search."""
    return evaluation_seeds(config)[0]


@dataclass(frozen=True, kw_only=True)
class CrossBudgetMatrix(Record):
    """The cross-budget matrix of one horizon: `val_log_loss[i][j]` (nats, NaN where not
    trained) is budget j's winning architecture trained with budget i's winning
    training values; `own_values_margin[j]`, column j's best off-diagonal cell minus
    its diagonal (positive: the column's own values are the best of those tried);
    `seed`, the training seed of every cell (files of older versions lack it: their
    cells trained with seed 0, the search's own)."""

    budgets: tuple[int, ...]
    val_log_loss: tuple[tuple[float, ...], ...] = stored(parse=tuple_of(tuple))
    own_values_margin: tuple[float, ...]
    seed: int = 0


def plan_pairs(winners: dict[int, Winner]) -> list[tuple[int, int]]:
    """Every ordered (values_from, architecture_of) pair of distinct budgets, in order."""
    budgets = sorted(winners)
    return [(a, b) for a in budgets for b in budgets if a != b]


def cell_key(
    info: dict[str, Any], source: Winner, target: Winner, train: dict[str, Any], seed: int
) -> str:
    """The input hash of a cell trained with `seed` (`cross_budget_seed`)."""
    return run_key("cross_budget", info, target.architecture, source.params, train, seed)


def estimate_seconds(target: Winner, max_epochs: int) -> float:
    """Upper-bound seconds to train `target`'s architecture once: its HPO trial's
    measured seconds per epoch times the epoch limit (NaN when not measured)."""
    per_epoch = target.seconds_per_epoch
    return math.nan if per_epoch is None else per_epoch * max_epochs


def cross_budget_cell(
    prepared: Prepared,
    config: StudyConfig,
    source: Winner,
    target: Winner,
    on_epoch: Callable[[Any], None] | None = None,
) -> CrossBudgetCell:
    """Train `target`'s architecture with `source`'s training values and the seed of the
    matrix (`cross_budget_seed`) on the study of `target`'s budget (`prepared`);
    returns the cell's record."""
    from finscale.hpo import train_configuration

    seed = cross_budget_seed(config)
    result = train_configuration(
        prepared, config, target.architecture["index"], source.params, seed, on_epoch
    )
    train = config.train.model_dump(mode="json")
    return CrossBudgetCell(
        key=cell_key(prepared.info, source, target, train, seed),
        values_from=source.budget,
        architecture_of=target.budget,
        architecture=target.architecture,
        params=source.params,
        val_log_loss=result.val_loss,
        epochs_run=result.epochs_run,
        train_seconds=result.train_seconds,
        seed=seed,
    )


def matrix(budgets: list[int], cells: dict[tuple[int, int], float], seed: int) -> CrossBudgetMatrix:
    """The matrix of `cells` ((values_from, architecture_of) -> validation log loss, each
    trained with `seed`): rows are where the training values come from, columns the
    architecture."""
    rows = [tuple(cells.get((a, b), math.nan) for b in budgets) for a in budgets]
    regret = []
    for j in range(len(budgets)):
        others = [rows[i][j] for i in range(len(budgets)) if i != j and math.isfinite(rows[i][j])]
        own = rows[j][j]
        regret.append(min(others) - own if others and math.isfinite(own) else math.nan)
    return CrossBudgetMatrix(
        budgets=tuple(budgets),
        val_log_loss=tuple(rows),
        own_values_margin=tuple(regret),
        seed=seed,
    )
