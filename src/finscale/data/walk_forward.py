"""Walk-forward evaluation of a built dataset's rows: its plans from the study
config, and the check that every split of the search and of every fold is large
enough (one clear error naming the key to change)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from finscale.config import DataConfig, EvaluationConfig
from finscale.data.splits import SPLIT_NAMES, SplitPlan, WalkForwardPlan, plan_walk_forward
from finscale.errors import InputError


def split_counts(plan: SplitPlan) -> dict[str, int]:
    """Samples of each split (train, val, test) of a plan."""
    return {name: int((plan.assignment == code).sum()) for code, name in SPLIT_NAMES.items()}


def walk_forward_plan(
    n_rows: int, labeled: np.ndarray, config: DataConfig, evaluation: EvaluationConfig
) -> WalkForwardPlan:
    return plan_walk_forward(
        n_rows,
        config.context_days,
        config.horizon_days,
        config.split_fractions,
        evaluation.folds,
        evaluation.search_fraction,
        evaluation.window,
        evaluation.rolling_days,
        labeled=labeled,
    )


def check_walk_forward(
    plan: WalkForwardPlan,
    table: pd.DataFrame,
    config: DataConfig,
    evaluation: EvaluationConfig,
) -> None:
    """Every split of the search and of every fold holds the minimum sample count; an
    error names the key to change."""
    least = config.min_samples_per_split
    search = split_counts(plan.search)
    if min(search["train"], search["val"]) < least:
        raise InputError(
            f"the search's share of history gives train {search['train']}, val "
            f"{search['val']} samples ({len(table)} rows from {table.index[0].date()}); each "
            f"needs at least {least}: raise search_fraction or use more history",
            "evaluation.search_fraction",
        )
    for k, fold in enumerate(plan.folds):
        counts = split_counts(fold)
        if min(counts.values()) >= least:
            continue
        detail = ", ".join(f"{name} {n}" for name, n in counts.items())
        if counts.get("test", 0) < least:
            raise InputError(
                f"test fold {k} of {len(plan.folds)} gets {detail} samples; each split needs "
                f"at least {least}, and the history after the search holds fewer than folds x "
                f"{least} test samples: use fewer folds, a smaller search_fraction or more "
                "history",
                "evaluation.folds",
            )
        rolling = evaluation.window == "rolling"
        raise InputError(
            f"test fold {k} of {len(plan.folds)} gets {detail} samples; each split needs at "
            f"least {least}, and the fold's training history is too short: "
            + ("use a longer rolling_days" if rolling else "raise search_fraction")
            + " or more history",
            "evaluation.rolling_days" if rolling else "evaluation.search_fraction",
        )
