"""One trial of a study: sample a configuration, reuse a near-duplicate's result or
train it, and record everything on the trial.

Every value a record needs is stored as a user attr of the Optuna trial, so
the storage stays the single source of truth and records are plain exports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from finscale.config import StudyConfig, TrainConfig
from finscale.data import WindowDataset
from finscale.execution import (
    ARCHITECTURE_ATTR,
    BATCH_ATTR,
    DUPLICATE_ATTR,
    EPOCHS_RUN_ATTR,
    FAIL_ATTR,
    LEARNING_CURVE_ATTR,
    RESOURCES_ATTR,
    RESUME_ATTR,
    STORAGE_ERRORS,
    TRAIN_SECONDS_ATTR,
    TRAINING_ATTR,
    VAL_METRICS_ATTR,
    VAL_PREDICTIONS_ATTR,
    ResourceMonitor,
    StopRequested,
    StopSignal,
    requeue,
    wait_until_cool,
)
from finscale.hpo.space import (
    MODEL_PARAMS,
    TRAINING_PARAMS,
    ArchitectureSpace,
    within_tolerance,
)
from finscale.hpo.spec import Prepared
from finscale.model import Architecture, PatchTSTConfig, PlannedArchitecture
from finscale.train import Hardware, resolve_hardware

if TYPE_CHECKING:
    from finscale.train import EpochRecord, TrainResult


@dataclass
class TrialContext:
    """What every trial of one worker shares."""

    config: StudyConfig
    space: ArchitectureSpace
    planned: dict[int, PlannedArchitecture]  # by grid index
    windows: WindowDataset
    stop: StopSignal
    max_temp_c: float | None = None
    hardware: Hardware | None = None  # None: each training resolves the config's


@dataclass(frozen=True)
class TrialOutcome:
    state: TrialState
    value: float | None
    reason: str | None = None  # why a trial failed or was pruned


def architecture_attr(arch: Architecture) -> dict[str, int]:
    c = arch.config
    return {
        "index": arch.index,
        "d_model": c.d_model,
        "n_layers": c.n_layers,
        "n_heads": c.n_heads,
        "d_ff": c.d_ff,
        "param_count": arch.param_count,
    }


def batch_attr(
    micro_batch: int, accumulation_steps: int, effective_batch: int, memory_bytes: int
) -> dict[str, int]:
    """The batch plan a trial trains with, as its `BATCH_ATTR`."""
    return {
        "micro_batch": micro_batch,
        "accumulation_steps": accumulation_steps,
        "effective_batch": effective_batch,
        "memory_estimate_bytes": memory_bytes,
    }


def training_configs(
    arch: Architecture,
    planned: PlannedArchitecture,
    params: dict[str, Any],
    config: StudyConfig,
    seed: int | None = None,
) -> tuple[PatchTSTConfig, TrainConfig]:
    """The model and training configs of one architecture with a trial's training values
    (`params`), on the memory planner's micro-batch; `seed` replaces the config's."""
    model_config = arch.config.replace(**{name: params[name] for name in MODEL_PARAMS})
    update: dict[str, Any] = {
        name: params[name] for name in TRAINING_PARAMS if name not in MODEL_PARAMS
    }
    if planned.batch is not None and config.train.micro_batch is None:
        update["micro_batch"] = planned.batch.micro_batch
    if seed is not None:
        update["seed"] = seed
    return model_config, config.train.model_copy(update=update)


def train_configuration(
    prepared: Prepared,
    config: StudyConfig,
    arch_index: int,
    params: dict[str, Any],
    seed: int | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Train one grid architecture of a study (`prepared`, its `Prepared`) with training
    values `params` and `seed` (None: the config's), as a trial trains it: the one
    retraining that final evaluation, the cross-budget matrix and finalists share."""
    from finscale.train import train

    model_config, train_config = training_configs(
        prepared.grid[arch_index], prepared.planned[arch_index], params, config, seed=seed
    )
    return train(
        model_config,
        prepared.windows(),
        train_config,
        on_epoch=on_epoch,
        hardware=prepared.hardware,
    )


def find_duplicate(
    study: optuna.Study, arch_index: int, params: dict[str, Any], config: StudyConfig
) -> optuna.trial.FrozenTrial | None:
    """The first completed, trained trial on the same architecture whose training values
    are within the study's duplicate tolerance of `params`."""
    for other in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        attrs = other.user_attrs
        if DUPLICATE_ATTR in attrs or attrs.get(ARCHITECTURE_ATTR, {}).get("index") != arch_index:
            continue
        if within_tolerance(params, other.params, config.search, config.search.duplicate_tolerance):
            return other
    return None


def run_trial(study: optuna.Study, trial: optuna.Trial, ctx: TrialContext) -> TrialOutcome:
    """Run one asked trial to its end and tell the study its outcome.

    A stop request finishes the current epoch, fails the trial for resume and
    re-queues its configuration; a training fault fails it with its reason;
    a near-duplicate of a completed trial completes with that trial's value.
    """
    from finscale.train import train

    config = ctx.config
    params, arch, planned = _choose_architecture(trial, ctx)
    original = find_duplicate(study, arch.index, params, config)
    if original is not None:
        trial.set_user_attr(DUPLICATE_ATTR, original.number)
        study.tell(trial, original.value)
        return TrialOutcome(TrialState.COMPLETE, original.value)

    model_config, train_config = training_configs(arch, planned, params, config)
    if config.search.patience is not None:  # a search's fidelity, never final evaluation's
        train_config = train_config.model_copy(update={"patience": config.search.patience})
    monitor = ResourceMonitor(_device_type(train_config, ctx.hardware))
    curve: list[dict[str, Any]] = []
    resources: list[dict[str, Any]] = []
    pruning = config.search.pruner != "none"

    def on_epoch(record: EpochRecord) -> None:
        curve.append(asdict(record))
        sample = monitor.sample(record.epoch)
        sample["paused_seconds"] = wait_until_cool(ctx.max_temp_c, ctx.stop)
        resources.append(sample)
        trial.report(record.val_loss, record.epoch)
        if ctx.stop.requested():
            raise StopRequested(ctx.stop.reason)
        if pruning and trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {record.epoch}")

    started = time.time()
    try:
        result = train(
            model_config, ctx.windows, train_config, on_epoch=on_epoch, hardware=ctx.hardware
        )
    except optuna.TrialPruned as exc:
        _record_run(trial, curve, resources, started)
        study.tell(trial, state=TrialState.PRUNED)
        return TrialOutcome(TrialState.PRUNED, curve[-1]["val_loss"], str(exc))
    except StopRequested as exc:
        reason = f"stopped after epoch {len(curve)}: {exc}; re-queued to run first on resume"
        fail_for_resume(study, trial, reason, curve, resources, started)
        return TrialOutcome(TrialState.FAIL, None, reason)
    except KeyboardInterrupt:
        fail_for_resume(study, trial, "interrupted", curve, resources, started)
        raise
    except (optuna.exceptions.UpdateFinishedTrialError, *STORAGE_ERRORS):
        raise  # the storage's fault, not this configuration's: the worker handles it
    except Exception as exc:  # a fault of this configuration; the study goes on
        reason = f"{type(exc).__name__}: {exc}"
        _record_run(trial, curve, resources, started)
        trial.set_user_attr(FAIL_ATTR, reason)
        study.tell(trial, state=TrialState.FAIL)
        return TrialOutcome(TrialState.FAIL, None, reason)

    _record_run(trial, curve, resources, started)
    _record_result(trial, result)
    study.tell(trial, result.val_loss)
    return TrialOutcome(TrialState.COMPLETE, result.val_loss)


def _choose_architecture(
    trial: optuna.Trial, ctx: TrialContext
) -> tuple[dict[str, Any], Architecture, PlannedArchitecture]:
    """Sample the trial's params, map them to the allowed architecture they select and
    record it with its planned batch; returns (params, architecture, plan)."""
    params = ctx.space.suggest(trial, ctx.config.search)
    arch = ctx.space.architecture_of(params)
    planned = ctx.planned[arch.index]
    trial.set_user_attr(ARCHITECTURE_ATTR, architecture_attr(arch))
    if planned.batch is not None:
        batch = planned.batch
        trial.set_user_attr(
            BATCH_ATTR,
            batch_attr(
                batch.micro_batch,
                batch.accumulation_steps,
                batch.effective_batch,
                batch.memory_bytes,
            ),
        )
    return params, arch, planned


def _record_result(trial: optuna.Trial, result: TrainResult) -> None:
    """What a completed training reports: the batch it ran on, the trainer's figures
    and the validation metrics."""
    trial.set_user_attr(
        BATCH_ATTR,
        batch_attr(
            result.micro_batch,
            result.accumulation_steps,
            result.effective_batch,
            result.memory_estimate_bytes,
        ),
    )
    trial.set_user_attr(
        TRAINING_ATTR,
        {
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "stopped_early": result.stopped_early,
            "device": result.device,
            "dtype": result.dtype,
            "train_seconds": result.train_seconds,
            "samples_per_second": result.samples_per_second,
            "flops_per_second": result.flops_per_second,
            "mfu": result.mfu,
            "peak_rss_bytes": result.peak_rss_bytes,
            "oom_retries": result.oom_retries,
            "pos_weight": result.pos_weight,
        },
    )
    trial.set_user_attr(VAL_METRICS_ATTR, result.val_metrics)
    # By date, for the overfitting analysis of the search (PBO, the trials' Sharpe ratios);
    # six decimals keep a trial's record small and change no log loss beyond 1e-6.
    trial.set_user_attr(VAL_PREDICTIONS_ATTR, [round(p, 6) for p in result.val_probabilities])


def fail_for_resume(
    study: optuna.Study,
    trial: optuna.Trial,
    reason: str,
    curve: list[dict[str, Any]],
    resources: list[dict[str, Any]],
    started: float,
) -> None:
    """Fail a trial that was stopped, not broken, and queue its configuration again."""
    _record_run(trial, curve, resources, started)
    trial.set_user_attr(FAIL_ATTR, reason)
    trial.set_user_attr(RESUME_ATTR, True)
    frozen = study.tell(trial, state=TrialState.FAIL)
    requeue(study, frozen)


def _record_run(
    trial: optuna.Trial,
    curve: list[dict[str, Any]],
    resources: list[dict[str, Any]],
    started: float,
) -> None:
    trial.set_user_attr(LEARNING_CURVE_ATTR, curve)
    trial.set_user_attr(RESOURCES_ATTR, resources)
    trial.set_user_attr(EPOCHS_RUN_ATTR, len(curve))
    trial.set_user_attr(TRAIN_SECONDS_ATTR, round(time.time() - started, 3))


def _device_type(config: TrainConfig, hardware: Hardware | None) -> str:
    return (hardware or resolve_hardware(config)).device.type
