"""The records that travel between the stages of a scaling study, as frozen dataclasses.

- `Winner`: a study's best trial, what final evaluation and the cross-budget
  matrix train again.
- `EvaluationRun`: one seed of a winner's final evaluation
  (`evaluation/{study}/seed_{k}.json`; under walk-forward one per fold and
  seed, `evaluation/{study}/fold_{f}/seed_{k}.json`).
- `CrossBudgetCell`: one cell of the cross-budget matrix
  (`cross_budget/h{h}/{A}_to_{B}.json`).
- `SearchTrials`: what a study's search saw on validation, read from its
  study.json and trial records (the probability of backtest overfitting and
  the trials' Sharpe ratios are computed from it).

What `scaling.json` says of them is `finscale.analysis.scaling_json`'s.

Inside the code each fact has one name, the training loop's (`epochs_run`,
`accumulation_steps`); `to_dict` and `from_dict` map them to the keys the
files have always had (`epochs`, `accumulation`), so stored runs stay readable
and nothing a user scripts against changes. Metrics, architectures and
training values stay mappings: their keys are the metric, grid and search
names of the layers that make them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from finscale.analysis.serial import Record, stored
from finscale.config import StudyConfig


@dataclass(frozen=True)
class Winner(Record):
    """The best trial of one study (budget x horizon)."""

    study: str
    budget: int
    horizon_days: int
    trial: int  # the trial's number in its study
    hpo_val_log_loss: float
    architecture: Mapping[str, Any]  # the grid entry: index, d_model, ..., param_count
    params: Mapping[str, Any]  # its training values (learning_rate, weight_decay, ...)
    # Measured seconds per training epoch of the trial; None when it was not recorded.
    seconds_per_epoch: float | None = stored(omit_none=True)

    def to_dict(self) -> dict[str, Any]:
        # In the order the files have always had it (a run's record holds it flat).
        out = {
            "trial": self.trial,
            "hpo_val_log_loss": self.hpo_val_log_loss,
            "architecture": dict(self.architecture),
            "params": dict(self.params),
            "budget": self.budget,
            "horizon_days": self.horizon_days,
            "study": self.study,
        }
        if self.seconds_per_epoch is not None:
            out["seconds_per_epoch"] = self.seconds_per_epoch
        return out

    @property
    def param_count(self) -> int:
        return self.architecture["param_count"]


@dataclass(frozen=True)
class EvaluationRun(Record):
    """One seed of a winner retrained and scored once on val and test, predictions
    included, so every later figure is computed without training again."""

    key: str  # hash of the run's inputs; a rerun with the same key is skipped
    tier: str
    seed: int
    winner: Winner = stored(flat=True, parse=Winner.from_dict)
    micro_batch: int
    accumulation_steps: int = stored("accumulation")
    effective_batch: int
    epochs_run: int = stored("epochs")
    best_epoch: int
    stopped_early: bool
    device: str
    dtype: str
    train_seconds: float
    samples_per_second: float
    n_train: int
    samples_per_param: float
    val_metrics: Mapping[str, Any]
    test_metrics: Mapping[str, Any]
    learning_curve: tuple[Mapping[str, float], ...]  # per epoch: epoch, train_loss, val_loss
    predictions: Mapping[str, list[float]]  # by split ("val", "test"): P(label 1) per sample
    labels: Mapping[str, list[int]]  # by split: the 0/1 label per sample
    test_dates: tuple[str, ...]  # YYYY-MM-DD of each test sample
    fold: int | None = None  # the walk-forward test fold; None under holdout
    # First and last date of the samples the run trained and early-stopped on.
    train_span: tuple[str, str] | None = None
    # By split: the target's simple return from each sample's close to the next day's.
    next_day_returns: Mapping[str, list[float]] | None = None
    # The share of the training samples it trained on (the most recent): 1 but in the
    # data-scaling runs of `scale.data_fractions`; n_train is its sample count D.
    data_fraction: float = 1.0
    # A panel's symbol of each test sample (None for one target).
    test_symbols: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CrossBudgetCell(Record):
    """B's winning architecture trained with A's winning training values and `seed`
    (the first final-evaluation seed; files of older versions lack it: seed 0)."""

    key: str
    values_from: int  # budget A, whose winner's training values were used
    architecture_of: int  # budget B, whose winner's architecture was trained
    architecture: Mapping[str, Any]
    params: Mapping[str, Any]
    val_log_loss: float
    epochs_run: int = stored("epochs")
    train_seconds: float
    seed: int = 0


@dataclass(frozen=True)
class SearchTrials:
    """A study's validation dates and every complete, trained trial's predictions on them.

    Duplicates (never trained, their value copied) and trials without stored
    predictions are left out of `predictions`; `complete` counts every complete
    trial all the same, since each was a draw the search could have crowned.
    """

    study: str
    dates: tuple[str, ...]  # YYYY-MM-DD of each validation sample
    labels: tuple[int, ...]  # 0/1 of each validation sample
    next_day_returns: tuple[float, ...]  # simple return from each date's close to the next
    predictions: Mapping[int, tuple[float, ...]]  # trial number -> P(label 1) per date
    complete: int  # complete trials of the study


def targets_text(
    config: StudyConfig, evaluations: Mapping[tuple[int, int], Sequence[EvaluationRun]]
) -> str:
    """The study's targets in words: the symbols its config names, or under `targets:
    all` (resolved when the data were built, not in the stored config) the count of
    the symbols its test predictions cover."""
    data = config.data
    if not data.all_targets:
        return ", ".join(data.target_symbols)
    symbols = {s for runs in evaluations.values() for run in runs for s in run.test_symbols or ()}
    count = f"{len(symbols)} " if symbols else ""
    return f"all {count}symbols of the {data.source} source"
