"""Final evaluation: the winner of a study retrained with several seeds and scored
once on the test split.

This is the only place finscale touches the test split. Each seed's run is a
JSON record holding its metrics, learning curve and the validation and test
predictions, so every later figure (intervals, calibration, baselines,
report) is computed from stored predictions without training again.

The seeds are fresh (`evaluation_seeds`): none is a seed the search trained with,
so no evaluation run repeats the run that won the search, whose value is the
lowest of many noisy draws and biased low for that very reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from finscale.analysis.records import EvaluationRun, Winner
from finscale.config import StudyConfig
from finscale.errors import InputError
from finscale.execution import ARCHITECTURE_ATTR, DATASET_KEY_ATTR, GRID_HASH_ATTR, TRAINING_ATTR
from finscale.hpo import TRAINING_PARAMS, Prepared, crown, search_seeds, train_configuration

SPLITS = ("val", "test")


def evaluation_seeds(config: StudyConfig) -> tuple[int, ...]:
    """The `scale.seeds` training seeds of every winner's final evaluation, in order:
    the first seeds after every seed its search may train with (`finscale.hpo.
    search_seeds`: `train.seed` and the finalists' re-run seeds), so no evaluation run
    repeats a run the search selected on. With the defaults (seed 0, 2 finalist
    seeds, 3 evaluation seeds): 3, 4, 5. The cross-budget matrix trains with the
    first (`finscale.analysis.cross_budget.cross_budget_seed`)."""
    first = max(search_seeds(config)) + 1
    return tuple(range(first, first + config.scale.seeds))


def crowned_trial(study: optuna.Study) -> FrozenTrial:
    """The trial final evaluation trains again: the study's crown (`finscale.hpo.crown`:
    the finalist with the lowest mean over its seeds once every finalist has its re-runs,
    else the best single value, which is all `finscale.hpo.best_trial` ever gives), or an
    error that says what to run when no trial completed."""
    return _crowned(study)[0]


def _crowned(study: optuna.Study) -> tuple[FrozenTrial, float]:
    crowning = crown(study.get_trials(deepcopy=False), study.user_attrs)
    if crowning.trial is None or crowning.mean is None:
        raise InputError(
            f"study {study.study_name} has no completed trial to evaluate; run more trials "
            "(finscale hpo/scale resumes it)",
            study.study_name,
        )
    return crowning.trial, crowning.mean


def winner_of(study: optuna.Study, budget: int, horizon_days: int) -> Winner:
    """The study's crowned trial as the `Winner` that final evaluation trains again; its
    `hpo_val_log_loss` is the finalists' seed mean where the study ran finalists."""
    trial, value = _crowned(study)
    training = trial.user_attrs.get(TRAINING_ATTR) or {}
    epochs_run = training.get("epochs_run")
    seconds = training.get("train_seconds")
    return Winner(
        study=study.study_name,
        budget=budget,
        horizon_days=horizon_days,
        trial=trial.number,
        hpo_val_log_loss=value,
        architecture=trial.user_attrs[ARCHITECTURE_ATTR],
        params={name: trial.params[name] for name in TRAINING_PARAMS},
        seconds_per_epoch=seconds / epochs_run if seconds and epochs_run else None,
    )


def input_key(**inputs: Any) -> str:
    """A hash of everything a stored result depends on: a stage whose stored key
    matches is done and skipped; any change of input runs it again."""
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_key(
    stage: str,
    info: dict[str, Any],
    architecture: dict[str, Any],
    params: dict[str, Any],
    train: dict[str, Any],
    seed: int,
) -> str:
    """The input hash of one training run of a stage: the study's dataset and grid, the
    architecture trained, its training values, the training config and the seed."""
    return input_key(
        stage=stage,
        dataset=info[DATASET_KEY_ATTR],
        grid=info[GRID_HASH_ATTR],
        architecture=architecture["index"],
        params=params,
        train=train,
        seed=seed,
    )


def evaluation_key(
    info: dict[str, Any],
    winner: Winner,
    config: StudyConfig,
    seed: int,
    fold: int | None = None,
    data_fraction: float = 1.0,
) -> str:
    train = config.train.model_dump(mode="json")
    if fold is not None:
        # A fold's rows depend on the whole scheme, not only on the search's dataset.
        train = {**train, "fold": fold, "evaluation": config.evaluation.model_dump(mode="json")}
    if data_fraction != 1.0:
        train = {**train, "data_fraction": data_fraction}
    return run_key("evaluation", info, winner.architecture, winner.params, train, seed)


def evaluate_seed(
    prepared: Prepared,
    config: StudyConfig,
    winner: Winner,
    seed: int,
    on_epoch: Callable[[Any], None] | None = None,
    fold: int | None = None,
    key: str | None = None,
    data_fraction: float = 1.0,
) -> EvaluationRun:
    """Train the winner's architecture with its training values and `seed` on the train
    split, early-stopped on val, then predict val and test once.

    `prepared` is the study's `finscale.hpo.study.Prepared` (dataset, grid, plan);
    under walk-forward, with `fold`, its dataset is that fold's (`Prepared.on`).
    `key`: the run's input key when another process computed it (a worker running
    the head's unit on its own device); by default the key of these inputs.
    `data_fraction` < 1 trains on the most recent fraction of the training samples
    only (`ProcessedDataset.with_train_fraction`), validation and test unchanged.
    Returns the run, predictions included.
    """
    if data_fraction != 1.0:
        prepared = prepared.on(prepared.dataset.with_train_fraction(data_fraction))
    import numpy as np

    from finscale.train import classification_metrics, predict_proba

    index = winner.architecture["index"]
    result = train_configuration(prepared, config, index, winner.params, seed, on_epoch)
    windows = prepared.windows()
    device = prepared.hardware.device
    threshold = config.train.decision_threshold
    predictions, labels, metrics = {}, {}, {}
    for split in SPLITS:
        rows = windows.rows(split)
        p = predict_proba(result.model, windows, rows, device, result.dtype)
        y = windows.labels[rows].numpy().astype(int)
        predictions[split], labels[split] = p.tolist(), y.tolist()
        metrics[split] = classification_metrics(y, p, threshold)
    n_train = len(windows.rows("train"))
    test_rows = windows.rows("test").numpy()
    fitted = np.sort(np.concatenate([windows.rows("train").numpy(), windows.rows("val").numpy()]))
    returns = prepared.dataset.next_day_returns()
    # The training figures (micro_batch, accumulation_steps, ..., samples_per_second)
    # are the training result's own, under the same names.
    return EvaluationRun.from_attributes(
        result,
        key=key or evaluation_key(prepared.info, winner, config, seed, fold, data_fraction),
        tier=prepared.info["tier"],
        seed=seed,
        winner=winner,
        n_train=n_train,
        samples_per_param=n_train / result.param_count,
        val_metrics=metrics["val"],
        test_metrics=metrics["test"],
        learning_curve=tuple(
            {"epoch": r.epoch, "train_loss": r.train_loss, "val_loss": r.val_loss}
            for r in result.history
        ),
        predictions=predictions,
        labels=labels,
        test_dates=tuple(str(d)[:10] for d in windows.dates[test_rows]),
        fold=fold,
        train_span=(str(windows.dates[fitted[0]])[:10], str(windows.dates[fitted[-1]])[:10]),
        next_day_returns={split: returns[windows.rows(split).numpy()].tolist() for split in SPLITS},
        data_fraction=data_fraction,
        test_symbols=(
            tuple(prepared.dataset.row_symbols()[test_rows].tolist())
            if prepared.dataset.config.is_panel
            else None
        ),
    )
