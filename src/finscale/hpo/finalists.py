"""Finalists: the top trials of a study retrained with more seeds before one is crowned.

Every trial trains once, with the study's one training seed, and the noise of that one
draw is as large as the differences a search looks for: the lowest value of many noisy
values is mostly luck (`benchmarks/hpo_vs_seed.py` measures it). So once a study has
its trials, the `search.finalists` best complete trials are trained again with
`search.finalist_seeds` other seeds each, and the crowned winner is the finalist with
the lowest mean validation log loss over its seeds (its trial's own value included).

A finished Optuna trial cannot be changed, so each re-run is a study attribute of its
own (`finalist:{number}:{seed}`: no read-modify-write between processes), and a resume
trains only the re-runs missing. The trial records and `{study}_best.json` carry them.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial

from finscale.config import StudyConfig
from finscale.execution import (
    ARCHITECTURE_ATTR,
    CONFIG_ATTR,
    FINALIST_ATTR_PREFIX,
    StopRequested,
    StopSignal,
)
from finscale.hpo.objective import train_configuration
from finscale.hpo.ranking import TrialLike, best_trial, finite, ranked_trials
from finscale.hpo.spec import Prepared

if TYPE_CHECKING:
    from finscale.train import EpochRecord

# The seeds of a trial's re-runs: the training seed plus 1, 2, ... (never the trial's own).
FINALIST_SEED_OFFSET = 1


@dataclass(frozen=True)
class FinalistRun:
    """One re-run of a finalist: its seed, validation log loss and epochs trained."""

    number: int
    seed: int
    val_loss: float
    epochs: int

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "val_loss": self.val_loss, "epochs": self.epochs}


def finalist_key(number: int, seed: int) -> str:
    return f"{FINALIST_ATTR_PREFIX}{number}:{seed}"


def finalist_seeds(train_seed: int, count: int) -> list[int]:
    return [train_seed + FINALIST_SEED_OFFSET + k for k in range(count)]


def search_seeds(config: StudyConfig) -> list[int]:
    """Every training seed a search of `config` may train with, in order: its trials'
    (`train.seed`) and its finalists' re-runs' (`search.finalist_seeds` of them). The
    re-run seeds count even where `search.finalists` is 0, so turning finalists on
    later moves no seed that runs outside the search (`finscale.analysis`'s
    evaluation seeds) onto one the search trains with."""
    train_seed = config.train.seed
    return [train_seed, *finalist_seeds(train_seed, config.search.finalist_seeds)]


def finalist_runs(study_attrs: Mapping[str, Any]) -> dict[int, list[FinalistRun]]:
    """Every stored re-run, by trial number, in seed order."""
    runs: dict[int, list[FinalistRun]] = {}
    for key, value in study_attrs.items():
        if not key.startswith(FINALIST_ATTR_PREFIX):
            continue
        number, seed = (int(part) for part in key[len(FINALIST_ATTR_PREFIX) :].split(":"))
        runs.setdefault(number, []).append(
            FinalistRun(number, seed, float(value["val_loss"]), int(value["epochs"]))
        )
    return {n: sorted(r, key=lambda run: run.seed) for n, r in runs.items()}


def search_settings(study_attrs: Mapping[str, Any]) -> tuple[int, int, int]:
    """(finalists, seeds per finalist, training seed) of the study's stored config."""
    config = study_attrs.get(CONFIG_ATTR) or {}
    search, train = config.get("search", {}), config.get("train", {})
    return (
        int(search.get("finalists", 0)),
        int(search.get("finalist_seeds", 0)),
        int(train.get("seed", 0)),
    )


def pending(
    trials: Iterable[FrozenTrial], study_attrs: Mapping[str, Any]
) -> list[tuple[FrozenTrial, int]]:
    """The (finalist trial, seed) re-runs the study still needs, best trial first."""
    count, seeds, train_seed = search_settings(study_attrs)
    if count <= 0 or seeds <= 0:
        return []
    return [
        (trial, seed)
        for trial in ranked_trials(trials)[:count]
        for seed in finalist_seeds(train_seed, seeds)
        if finalist_key(trial.number, seed) not in study_attrs
    ]


@dataclass(frozen=True)
class Crowning:
    """The crowned trial of a study and the evidence: `mean` is its seed mean (its own
    value alone when the study has no finalists); `finalists` the seed mean of each
    finalist, by trial number."""

    trial: TrialLike | None
    mean: float | None
    finalists: dict[int, float]
    seeds: dict[int, int]  # by trial number: the seeds its mean is over

    @property
    def by_finalists(self) -> bool:
        return bool(self.finalists)


def crown(trials: Iterable[TrialLike], study_attrs: Mapping[str, Any]) -> Crowning:
    """The trial a study crowns: the finalist with the lowest mean over its seeds once
    every finalist has all its re-runs, else the best single value (`best_trial`)."""
    trials = list(trials)
    count, seeds, _ = search_settings(study_attrs)
    runs = finalist_runs(study_attrs)
    finalists = ranked_trials(trials)[: max(0, count)] if seeds > 0 else []
    complete = finalists and all(len(runs.get(_number(t), [])) >= seeds for t in finalists)
    if not complete:
        best = best_trial(trials)
        return Crowning(best, _value(best), {}, {})
    means = {
        _number(t): statistics.fmean([_value(t), *(r.val_loss for r in runs[_number(t)])])
        for t in finalists
    }
    # The lowest mean; among equal means, the better single value (the earlier rank).
    winner = min(finalists, key=lambda t: (means[_number(t)], finalists.index(t)))
    return Crowning(
        winner,
        means[_number(winner)],
        means,
        {_number(t): 1 + len(runs[_number(t)]) for t in finalists},
    )


def finalist_epochs(study_attrs: Mapping[str, Any]) -> int:
    """Epochs trained by every stored re-run."""
    return sum(r.epochs for runs in finalist_runs(study_attrs).values() for r in runs)


def train_finalist(
    prepared: Prepared,
    config: StudyConfig,
    trial: FrozenTrial,
    seed: int,
    stop: StopSignal | None = None,
) -> tuple[float, int]:
    """Train a finalist's configuration (architecture, training values) with `seed`, as
    its trial trained; returns (validation log loss, epochs). `prepared` is the study's
    `Prepared`; a requested `stop` ends it after the current epoch (`StopRequested`)."""

    def on_epoch(record: EpochRecord) -> None:
        if stop is not None and stop.requested():
            raise StopRequested(stop.reason)

    index = trial.user_attrs[ARCHITECTURE_ATTR]["index"]
    result = train_configuration(prepared, config, index, trial.params, seed, on_epoch)
    return result.val_loss, result.epochs_run


def run_finalists(
    study: optuna.Study,
    train_one: Callable[[FrozenTrial, int], tuple[float, int]],
    on_run: Callable[[FinalistRun, int, int], None] | None = None,
) -> tuple[list[FinalistRun], str | None]:
    """Train every pending re-run of `study` with `train_one(trial, seed)` -> (validation
    log loss, epochs) and store each as it ends; `on_run(run, done, total)` reports it.
    Returns the runs trained here and the reason of a stop (None when all ran); a stop
    leaves the rest to a resume."""
    todo = pending(study.get_trials(deepcopy=False), study.user_attrs)
    done: list[FinalistRun] = []
    for trial, seed in todo:
        try:
            val_loss, epochs = train_one(trial, seed)
        except StopRequested as exc:
            return done, str(exc)
        run = FinalistRun(trial.number, seed, val_loss, epochs)
        study.set_user_attr(finalist_key(trial.number, seed), run.to_dict())
        done.append(run)
        if on_run is not None:
            on_run(run, len(done), len(todo))
    return done, None


def finalist_record(number: int, study_attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """A trial record's `finalist` section: its re-runs and seed mean, or None."""
    runs = finalist_runs(study_attrs).get(number)
    if not runs:
        return None
    return {"runs": [r.to_dict() for r in runs]}


def attrs_of_records(
    study_info: Mapping[str, Any], records: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """The study attrs `crown` reads, rebuilt from a run directory's study.json and trial
    records (each carries its re-runs), for readers without the storage."""
    attrs: dict[str, Any] = {CONFIG_ATTR: study_info.get(CONFIG_ATTR) or {}}
    for record in records:
        for run in (record.get("finalist") or {}).get("runs", []):
            attrs[finalist_key(int(record["number"]), int(run["seed"]))] = run
    return attrs


def _number(trial: TrialLike) -> int:
    return trial.number if isinstance(trial, FrozenTrial) else int(trial["number"])


def _value(trial: TrialLike | None) -> float | None:
    if trial is None:
        return None
    value = trial.value if isinstance(trial, FrozenTrial) else trial.get("value")
    return finite(None if value is None else float(value))


__all__ = [
    "Crowning",
    "FinalistRun",
    "attrs_of_records",
    "crown",
    "finalist_epochs",
    "finalist_record",
    "finalist_runs",
    "pending",
    "run_finalists",
    "train_finalist",
]
