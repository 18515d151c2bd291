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
- `ScalingRow`: a budget's row of a horizon in `scaling.json`.

Inside the code each fact has one name, the training loop's (`epochs_run`,
`accumulation_steps`); `to_dict` and `from_dict` map them to the keys the
files have always had (`epochs`, `accumulation`), so stored runs stay readable
and nothing a user scripts against changes. Metrics, architectures and
training values stay mappings: their keys are the metric, grid and search
names of the layers that make them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Winner:
    """The best trial of one study (budget x horizon)."""

    study: str
    budget: int
    horizon_days: int
    trial: int  # the trial's number in its study
    hpo_val_log_loss: float
    architecture: Mapping[str, Any]  # the grid entry: index, d_model, ..., param_count
    params: Mapping[str, Any]  # its training values (learning_rate, weight_decay, ...)
    # Measured seconds per training epoch of the trial; None when it was not recorded.
    seconds_per_epoch: float | None = None

    def to_dict(self) -> dict[str, Any]:
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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Winner:
        return cls(
            study=data["study"],
            budget=data["budget"],
            horizon_days=data["horizon_days"],
            trial=data["trial"],
            hpo_val_log_loss=data["hpo_val_log_loss"],
            architecture=data["architecture"],
            params=data["params"],
            seconds_per_epoch=data.get("seconds_per_epoch"),
        )

    @property
    def param_count(self) -> int:
        return self.architecture["param_count"]


@dataclass(frozen=True)
class EvaluationRun:
    """One seed of a winner retrained and scored once on val and test, predictions
    included, so every later figure is computed without training again."""

    key: str  # hash of the run's inputs; a rerun with the same key is skipped
    tier: str
    seed: int
    winner: Winner
    micro_batch: int
    accumulation_steps: int
    effective_batch: int
    epochs_run: int
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "tier": self.tier,
            "seed": self.seed,
            **self.winner.to_dict(),
            "micro_batch": self.micro_batch,
            "accumulation": self.accumulation_steps,
            "effective_batch": self.effective_batch,
            "epochs": self.epochs_run,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "device": self.device,
            "dtype": self.dtype,
            "train_seconds": self.train_seconds,
            "samples_per_second": self.samples_per_second,
            "n_train": self.n_train,
            "samples_per_param": self.samples_per_param,
            "val_metrics": dict(self.val_metrics),
            "test_metrics": dict(self.test_metrics),
            "learning_curve": [dict(point) for point in self.learning_curve],
            "predictions": dict(self.predictions),
            "labels": dict(self.labels),
            "test_dates": list(self.test_dates),
            "fold": self.fold,
            "train_span": list(self.train_span) if self.train_span else None,
            "next_day_returns": dict(self.next_day_returns) if self.next_day_returns else None,
            "data_fraction": self.data_fraction,
            "test_symbols": list(self.test_symbols) if self.test_symbols else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationRun:
        return cls(
            key=data["key"],
            tier=data["tier"],
            seed=data["seed"],
            winner=Winner.from_dict(data),
            micro_batch=data["micro_batch"],
            accumulation_steps=data["accumulation"],
            effective_batch=data["effective_batch"],
            epochs_run=data["epochs"],
            best_epoch=data["best_epoch"],
            stopped_early=data["stopped_early"],
            device=data["device"],
            dtype=data["dtype"],
            train_seconds=data["train_seconds"],
            samples_per_second=data["samples_per_second"],
            n_train=data["n_train"],
            samples_per_param=data["samples_per_param"],
            val_metrics=data["val_metrics"],
            test_metrics=data["test_metrics"],
            learning_curve=tuple(data["learning_curve"]),
            predictions=data["predictions"],
            labels=data["labels"],
            test_dates=tuple(data["test_dates"]),
            fold=data.get("fold"),
            train_span=tuple(data["train_span"]) if data.get("train_span") else None,
            next_day_returns=data.get("next_day_returns"),
            data_fraction=data.get("data_fraction", 1.0),
            test_symbols=tuple(data["test_symbols"]) if data.get("test_symbols") else None,
        )


@dataclass(frozen=True)
class CrossBudgetCell:
    """B's winning architecture trained with A's winning training values (seed 0)."""

    key: str
    values_from: int  # budget A, whose winner's training values were used
    architecture_of: int  # budget B, whose winner's architecture was trained
    architecture: Mapping[str, Any]
    params: Mapping[str, Any]
    val_log_loss: float
    epochs_run: int
    train_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "values_from": self.values_from,
            "architecture_of": self.architecture_of,
            "architecture": dict(self.architecture),
            "params": dict(self.params),
            "val_log_loss": self.val_log_loss,
            "epochs": self.epochs_run,
            "train_seconds": self.train_seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CrossBudgetCell:
        return cls(
            key=data["key"],
            values_from=data["values_from"],
            architecture_of=data["architecture_of"],
            architecture=data["architecture"],
            params=data["params"],
            val_log_loss=data["val_log_loss"],
            epochs_run=data["epochs"],
            train_seconds=data["train_seconds"],
        )


@dataclass(frozen=True)
class ScalingRow:
    """What `scaling.json` says of one budget at one horizon: its winner, the
    intervals of its final runs, and its comparisons with the baselines."""

    budget: int
    budget_label: str
    study: str
    hpo_trial: int
    hpo_val_log_loss: float
    architecture: Mapping[str, Any]
    param_count: int
    params: Mapping[str, Any]
    n_train: int
    samples_per_param: float
    data_limited: bool  # fewer training samples per parameter than the study's threshold
    seeds: int
    epochs_run: tuple[int, ...]  # of each seed's run
    metrics: Mapping[str, Any]  # metric name -> seed and test-date intervals
    val_log_loss: tuple[float, ...]  # of each seed's run
    vs_baselines: Mapping[str, Any]  # baseline name -> paired differences and "beats"
    calibration: Mapping[str, Any]
    # Walk-forward: per test fold, its test log loss and comparisons; empty under holdout.
    folds: tuple[Mapping[str, Any], ...] = ()
    # The economic illustration: the long/flat signal's Sharpe ratio and its DSR.
    sharpe: Mapping[str, Any] | None = None
    dsr: Mapping[str, Any] | None = None
    # The probability of backtest overfitting of the budget's search (its study).
    pbo: Mapping[str, Any] | None = None
    # What the budget's search cost (trials, trained, epochs, seconds), and the training
    # values its study took from another's winner (`search.transfer`; None: its own).
    hpo_compute: Mapping[str, Any] | None = None
    transfer: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "budget_label": self.budget_label,
            "study": self.study,
            "hpo_trial": self.hpo_trial,
            "hpo_val_log_loss": self.hpo_val_log_loss,
            "architecture": dict(self.architecture),
            "param_count": self.param_count,
            "params": dict(self.params),
            "n_train": self.n_train,
            "samples_per_param": self.samples_per_param,
            "data_limited": self.data_limited,
            "seeds": self.seeds,
            "epochs": list(self.epochs_run),
            "metrics": dict(self.metrics),
            "val_log_loss": list(self.val_log_loss),
            "vs_baselines": dict(self.vs_baselines),
            "calibration": dict(self.calibration),
            "folds": [dict(f) for f in self.folds],
            "sharpe": dict(self.sharpe) if self.sharpe else None,
            "dsr": dict(self.dsr) if self.dsr else None,
            "pbo": dict(self.pbo) if self.pbo else None,
            "hpo_compute": dict(self.hpo_compute) if self.hpo_compute else None,
            "transfer": dict(self.transfer) if self.transfer else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScalingRow:
        return cls(
            budget=data["budget"],
            budget_label=data["budget_label"],
            study=data["study"],
            hpo_trial=data["hpo_trial"],
            hpo_val_log_loss=data["hpo_val_log_loss"],
            architecture=data["architecture"],
            param_count=data["param_count"],
            params=data["params"],
            n_train=data["n_train"],
            samples_per_param=data["samples_per_param"],
            data_limited=data["data_limited"],
            seeds=data["seeds"],
            epochs_run=tuple(data["epochs"]),
            metrics=data["metrics"],
            val_log_loss=tuple(data["val_log_loss"]),
            vs_baselines=data["vs_baselines"],
            calibration=data["calibration"],
            folds=tuple(data.get("folds") or ()),
            sharpe=data.get("sharpe"),
            dsr=data.get("dsr"),
            pbo=data.get("pbo"),
            hpo_compute=data.get("hpo_compute"),
            transfer=data.get("transfer"),
        )


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
