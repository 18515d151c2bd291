"""A dataset's split plans from the study config, and the one check that every split
is large enough (one clear error naming the key to change).

Every target is one series (its row dates and which rows have a label); a
one-target dataset is a panel of one. The plans come from
`finscale.data.splits`, cut once on the calendar of every target's sample dates
and purged on each target's own rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from finscale.config import DataConfig, EvaluationConfig
from finscale.data.splits import (
    SPLIT_NAMES,
    TRAIN,
    SeriesRows,
    SplitPlan,
    WalkForwardPlan,
    plan_splits_on_calendar,
    plan_walk_forward_on_calendar,
)
from finscale.errors import InputError


def holdout_plans(series: Mapping[str, SeriesRows], config: DataConfig) -> dict[str, SplitPlan]:
    """Each target's holdout plan (`data.split`, `data.split_fractions`)."""
    return plan_splits_on_calendar(
        series,
        config.context_days,
        config.horizon_days,
        config.split,
        config.split_fractions,
        config.n_chunks,
    )


def walk_forward_plans(
    series: Mapping[str, SeriesRows], config: DataConfig, evaluation: EvaluationConfig
) -> dict[str, WalkForwardPlan]:
    """Each target's walk-forward plans: the search's and every test fold's."""
    return plan_walk_forward_on_calendar(
        series,
        config.context_days,
        config.horizon_days,
        config.split_fractions,
        evaluation.folds,
        evaluation.search_fraction,
        evaluation.window,
        evaluation.rolling_days,
    )


def search_assignments(
    series: Mapping[str, SeriesRows], config: DataConfig, evaluation: EvaluationConfig
) -> dict[str, np.ndarray]:
    """Each target's split codes under the study's scheme: the holdout split, or under
    walk-forward the search's plan (the test folds OUTSIDE), once every split of it
    (and of every test fold) is checked by `check_split_sizes`."""
    if evaluation.scheme == "walk_forward":
        walk = walk_forward_plans(series, config, evaluation)
        search = {name: plan.search for name, plan in walk.items()}
        folds = [
            {name: plan.folds[k] for name, plan in walk.items()} for k in range(evaluation.folds)
        ]
    else:
        search, folds = holdout_plans(series, config), []
    check_split_sizes(series, search, folds, config, evaluation)
    return {name: plan.assignment for name, plan in search.items()}


def split_counts(plans: Mapping[str, SplitPlan]) -> dict[str, int]:
    """Samples of each split (train, val, test), pooled over the targets' plans."""
    return {
        name: sum(int((plan.assignment == code).sum()) for plan in plans.values())
        for code, name in SPLIT_NAMES.items()
    }


def _day(date: np.datetime64) -> str:
    return str(np.datetime64(date, "D"))


def _rows(series: Mapping[str, SeriesRows]) -> str:
    """'4982 usable rows from 1999-03-16 to 2018-12-31' (a panel's: '... rows of 2 targets')."""
    n_rows = sum(len(dates) for dates, _ in series.values())
    first = min(dates[0] for dates, _ in series.values())
    last = max(dates[-1] for dates, _ in series.values())
    targets = f" of {len(series)} targets" if len(series) > 1 else ""
    return f"{n_rows} usable rows{targets} from {_day(first)} to {_day(last)}"


def _check_each_target_trains(
    series: Mapping[str, SeriesRows], search: Mapping[str, SplitPlan], least: int
) -> None:
    for name, plan in search.items():
        if int((plan.assignment == TRAIN).sum()) >= least:
            continue
        dates = series[name][0]
        counts = ", ".join(f"{k} {n}" for k, n in split_counts({name: plan}).items())
        raise InputError(
            f"target {name} has data from {_day(dates[0])} to {_day(dates[-1])} only, which "
            f"gives {counts} samples on the panel's split dates; each target needs at least "
            f"{least} training samples: drop it from targets or move the dates",
            f"target {name}",
        )


def check_split_sizes(
    series: Mapping[str, SeriesRows],
    search: Mapping[str, SplitPlan],
    folds: list[dict[str, SplitPlan]],
    config: DataConfig,
    evaluation: EvaluationConfig,
) -> None:
    """Every split holds at least `min_samples_per_split` samples, pooled over the
    targets: the holdout's train, val and test, or the walk-forward search's train and
    val and every test fold's three; in a panel every target trains on at least as
    many (its normaliser is fitted on them). Otherwise one error naming the key to
    change."""
    least = config.min_samples_per_split
    if len(series) > 1:
        _check_each_target_trains(series, search, least)
    counts = split_counts(search)
    if evaluation.scheme != "walk_forward":
        if min(counts.values()) < least:
            detail = ", ".join(f"{k} {n}" for k, n in counts.items())
            raise InputError(
                f"too few rows for context + horizon + three splits: {_rows(series)} give "
                f"{detail} samples after the {config.context_days}-day context and horizon "
                f"purges; each split needs at least {least}. Use more history, a shorter "
                "data.context_days or a smaller tier",
                f"symbol {next(iter(series))}" if len(series) == 1 else "data.targets",
            )
        return
    if min(counts["train"], counts["val"]) < least:
        raise InputError(
            f"the search's share of history gives train {counts['train']}, val "
            f"{counts['val']} samples ({_rows(series)}); each needs at least {least}: raise "
            "search_fraction or use more history",
            "evaluation.search_fraction",
        )
    for k, fold in enumerate(folds):
        _check_fold(k, split_counts(fold), least, evaluation)


def _check_fold(k: int, counts: dict[str, int], least: int, evaluation: EvaluationConfig) -> None:
    if min(counts.values()) >= least:
        return
    detail = ", ".join(f"{name} {n}" for name, n in counts.items())
    if counts["test"] < least:
        raise InputError(
            f"test fold {k} of {evaluation.folds} gets {detail} samples; each split needs "
            f"at least {least}, and the history after the search holds fewer than folds x "
            f"{least} test samples: use fewer folds, a smaller search_fraction or more "
            "history",
            "evaluation.folds",
        )
    rolling = evaluation.window == "rolling"
    raise InputError(
        f"test fold {k} of {evaluation.folds} gets {detail} samples; each split needs at "
        f"least {least}, and the fold's training history is too short: "
        + ("use a longer rolling_days" if rolling else "raise search_fraction")
        + " or more history",
        "evaluation.rolling_days" if rolling else "evaluation.search_fraction",
    )
