"""What a study is: its spec (config, budget, name, run directory, storage), what a
worker builds from it before the first trial, and the sampler and pruner it
searches with.

    spec = StudySpec(config, budget=..., study_name=..., run_dir=..., storage=..., ...)
    prepared = prepare(spec)

A stored study is the same search as a spec when its grid hash and dataset key
are the ones `prepare` computes; `check_resumable` refuses any other.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna

from finscale.config import StudyConfig, load_study_config
from finscale.data import ProcessedDataset, WindowDataset
from finscale.errors import InputError
from finscale.execution import (
    BUDGET_ATTR,
    CONFIG_ATTR,
    DATASET_KEY_ATTR,
    DIMENSION_VALUES_ATTR,
    EXCLUDED_ATTR,
    EXCLUDED_BY_MEMORY_ATTR,
    GRID_HASH_ATTR,
    GRID_SIZE_ATTR,
    HORIZON_ATTR,
    INITIALIZED_ATTR,
    SPLITS_ATTR,
    STUDY_NAME_ATTR,
    TIER_ATTR,
    TRANSFER_ATTR,
    TRIALS_ATTR,
    VAL_DATES_ATTR,
    VAL_LABELS_ATTR,
    VAL_RETURNS_ATTR,
    open_storage,
    redact,
)
from finscale.hpo.space import ArchitectureSpace
from finscale.hpo.transfer import Transfer
from finscale.model import ArchitectureGrid, PlannedArchitecture
from finscale.train import Hardware
from finscale.units import format_budget, parse_budget

# A run directory's files beside its trials/ records.
STUDY_FILE = "study.json"
JOURNAL_FILE = "study.journal"
# How often a worker that waits (for a study to appear, for trials running
# elsewhere) looks at the storage again.
POLL_SECONDS = 1.0
# A study its creator has not initialised this long after a worker found it never
# will be (its creator died in between).
INITIALIZATION_WAIT_SECONDS = 60.0
# Trials the median pruner waits for before it compares a curve with their median.
MEDIAN_PRUNER_STARTUP_TRIALS = 5
# Random seed bases of joining workers stay below this, leaving room for the
# 1000-per-worker offsets inside numpy's 32-bit seeds.
SEED_BASES = 2**31

optuna.logging.set_verbosity(optuna.logging.WARNING)


def default_study_name(tier: str, budget: int, horizon_days: int) -> str:
    return f"{tier}_{format_budget(budget)}_h{horizon_days}"


@dataclass(frozen=True)
class StudySpec:
    """Everything a worker needs to join a study; picklable for worker processes."""

    config: StudyConfig
    budget: int
    study_name: str
    run_dir: Path
    storage: str  # an Optuna storage URL, or the path of a local journal file
    store_dir: Path  # the data store
    workers: int = 1
    max_temp_c: float | None = None
    deadline: float | None = None  # time.time() after which workers stop
    # Base of the workers' TPE seeds (default: the config's sampler_seed); worker i of
    # this spec samples with base + 1000 i + (trials in the study when it starts).
    sampler_seed: int | None = None
    # The training values this study took from another's winner (its config's training
    # ranges are pinned to them: `finscale.hpo.transfer`); None: it searches its own.
    transfer: Transfer | None = None

    @property
    def trials(self) -> int:
        return self.config.search.trials


def new_study_spec(
    budget: str | int,
    preset: str | None = None,
    config_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    study_name: str | None = None,
    run_dir: Path | None = None,
    storage: str | None = None,
    store_dir: Path,
    workers: int = 1,
    max_temp_c: float | None = None,
    deadline: float | None = None,
) -> StudySpec:
    """The spec of one budget's study from a preset or a config file and dotted
    overrides. Without a name it is `{tier}_{budget}_h{horizon}`; without a run
    directory it lives in runs/{name}; without a storage, in a journal file there."""
    config = load_study_config(preset, config_path, dict(overrides or {}))
    n_params = parse_budget(budget)
    name = study_name or default_study_name(config.data.tier, n_params, config.data.horizon_days)
    run_dir = run_dir or Path("runs") / name
    return StudySpec(
        config=config,
        budget=n_params,
        study_name=name,
        run_dir=run_dir,
        storage=storage or str(run_dir / JOURNAL_FILE),
        store_dir=store_dir,
        workers=workers,
        max_temp_c=max_temp_c,
        deadline=deadline,
    )


def open_study_storage(spec: StudySpec) -> optuna.storages.BaseStorage:
    """The spec's storage, with heartbeats on when it is a database."""
    search = spec.config.search
    return open_storage(spec.storage, search.heartbeat_seconds, search.heartbeat_grace_seconds)


@dataclass
class Prepared:
    """What a worker builds before its first trial: data, grid, memory plan, space."""

    dataset: ProcessedDataset
    grid: ArchitectureGrid
    planned: dict[int, PlannedArchitecture]
    space: ArchitectureSpace
    hardware: Hardware  # resolved once for the worker; every trial trains on it
    info: dict[str, Any] = field(default_factory=dict)  # stored on the study

    @property
    def memory_limit_bytes(self) -> int:
        return self.hardware.memory_limit_bytes

    def windows(self) -> WindowDataset:
        """The study's windows as its models read them: with each row's symbol index as a
        last column when its architectures embed a panel's symbols."""
        return self.dataset.windows(symbol_column=self.grid.template.n_symbols > 0)

    def on(self, dataset: ProcessedDataset) -> Prepared:
        """The same study on other rows of its data (a walk-forward fold's dataset):
        grid, memory plan and hardware depend on the shapes only, so they are kept."""
        return replace(self, dataset=dataset)

    @property
    def device(self) -> str:
        return str(self.hardware.device)

    @property
    def dtype(self) -> str:
        return self.hardware.dtype


def grid_of(config: StudyConfig, budget: int) -> ArchitectureGrid:
    """The budget's architecture grid at the config's data shape: its tier's features,
    its context and its targets (one learned vector each under `model.symbol_embedding`).
    It needs no data (`targets: all` reads the source's list of symbols where the
    symbols are embedded), so a budget that no architecture fits is refused before
    anything is built or stored."""
    from finscale.data import resolve_targets, tier_features
    from finscale.model import build_grid

    data = resolve_targets(config.data) if config.model.symbol_embedding else config.data
    return build_grid(
        budget,
        config.model,
        len(tier_features(config.data.tier)),
        config.data.context_days,
        n_symbols=len(data.target_symbols),
    )


def prepare(spec: StudySpec, joined: dict[str, Any] | None = None) -> Prepared:
    """Build (or load from the store) the dataset, the grid and its memory plan.

    `joined` is the attrs of an existing study a worker joins: its excluded
    architectures define the space, whatever fits this worker's device, so every
    worker searches the same space."""
    from finscale.data import DataStore, build_dataset
    from finscale.model import plan_grid
    from finscale.train import resolve_hardware

    config = spec.config
    grid = grid_of(config, spec.budget)  # before the store is written: a budget may fit nothing
    dataset = build_dataset(config.data, DataStore(spec.store_dir), evaluation=config.evaluation)
    if grid.template.n_symbols not in (0, len(dataset.config.target_symbols)):
        # `data.min_history_days` dropped targets: one embedded vector per target kept
        grid = grid_of(config.model_copy(update={"data": dataset.config}), spec.budget)
    # One precision for the whole study, from its median architecture: trials
    # compare like with like.
    hardware = resolve_hardware(config.train, grid.median_flops_per_sample)
    planned = plan_grid(
        grid,
        config.train.effective_batch,
        hardware.memory_limit_bytes,
        hardware.dtype,
        hardware.device.type,
    )
    too_large = {p.architecture.index for p in planned if not p.fits}
    excluded = set(config.search.exclude_archs) | too_large
    if joined is not None:
        excluded = set(joined.get(EXCLUDED_ATTR, []))
    space = ArchitectureSpace.from_grid(grid, excluded, config.search.architecture_space)
    info = {
        STUDY_NAME_ATTR: spec.study_name,
        BUDGET_ATTR: spec.budget,
        TIER_ATTR: config.data.tier,
        HORIZON_ATTR: config.data.horizon_days,
        GRID_HASH_ATTR: grid.hash,
        GRID_SIZE_ATTR: len(grid),
        EXCLUDED_ATTR: sorted(excluded),
        EXCLUDED_BY_MEMORY_ATTR: sorted(too_large & excluded),
        DIMENSION_VALUES_ATTR: {name: list(v) for name, v in space.values.items()},
        DATASET_KEY_ATTR: dataset.key,
        SPLITS_ATTR: dataset.summary()["splits"],
        **_validation_dates(dataset),
        CONFIG_ATTR: config.model_dump(mode="json"),
        TRIALS_ATTR: spec.trials,
    }
    if spec.transfer is not None:
        info[TRANSFER_ATTR] = spec.transfer.to_dict()
    return Prepared(
        dataset,
        grid,
        {p.architecture.index: p for p in planned},
        space,
        hardware,
        info,
    )


def _validation_dates(dataset: ProcessedDataset) -> dict[str, list]:
    """The study's validation dates, labels and the target's next-day returns on them:
    what the trials' stored validation predictions are aligned to, and all the
    probability of backtest overfitting and the trials' Sharpe ratios need."""
    import numpy as np

    windows = dataset.windows()
    rows = windows.rows("val")
    returns = dataset.next_day_returns()[rows.numpy()]
    return {
        VAL_DATES_ATTR: [str(d)[:10] for d in dataset.table.index[rows.numpy()]],
        VAL_LABELS_ATTR: windows.labels[rows].numpy().astype(int).tolist(),
        VAL_RETURNS_ATTR: [round(float(r), 8) for r in np.nan_to_num(returns)],
    }


def check_resumable(study: optuna.Study, spec: StudySpec, prepared: Prepared) -> None:
    """Refuse to go on with a stored study that is another search than this spec's
    (another grid or dataset), or that its creator never initialised; waits up to
    `INITIALIZATION_WAIT_SECONDS` for a creator that is still at it."""
    deadline = time.time() + INITIALIZATION_WAIT_SECONDS
    while not study.user_attrs.get(INITIALIZED_ATTR):
        if time.time() > deadline:
            raise InputError(
                f"study {spec.study_name} exists in {redact(spec.storage)} but was never "
                "initialised by finscale; give another study name",
                "study",
            )
        time.sleep(0.2)
    attrs = study.user_attrs
    if attrs.get(GRID_HASH_ATTR) != prepared.grid.hash:
        raise InputError(
            f"study {spec.study_name} was searched on grid "
            f"{str(attrs.get(GRID_HASH_ATTR))[:12]}, this run's grid is "
            f"{prepared.grid.hash[:12]} (budget, tier, context, patch or architecture space "
            "changed); resuming would mix two searches: use another run directory or study",
            "budget",
        )
    stored_space = attrs.get(CONFIG_ATTR, {}).get("search", {}).get("architecture_space")
    if stored_space not in (None, spec.config.search.architecture_space):
        raise InputError(
            f"study {spec.study_name} samples a {stored_space} architecture space, this run "
            f"a {spec.config.search.architecture_space} one; their trials cannot inform each "
            "other: use another run directory or study, or the same search.architecture_space",
            "search.architecture_space",
        )
    if attrs.get(DATASET_KEY_ATTR) != prepared.dataset.key:
        raise InputError(
            f"study {spec.study_name} was searched on dataset "
            f"{str(attrs.get(DATASET_KEY_ATTR))[:16]}, "
            f"this run's dataset is {prepared.dataset.key[:16]} (data options changed); use "
            "another run directory or study",
            "config",
        )


def make_sampler(config: StudyConfig, seed: int) -> optuna.samplers.BaseSampler:
    if config.search.sampler == "gp":
        # Not deterministic: a seed's validation loss is one draw of the configuration's.
        return optuna.samplers.GPSampler(
            seed=seed,
            n_startup_trials=config.search.n_startup_trials,
            deterministic_objective=False,
        )
    return optuna.samplers.TPESampler(
        n_startup_trials=config.search.n_startup_trials,
        multivariate=config.search.multivariate,
        constant_liar=config.search.constant_liar,  # parallel workers spread out
        seed=seed,
    )


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    search = config.search
    if search.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=MEDIAN_PRUNER_STARTUP_TRIALS,
            n_warmup_steps=search.pruner_warmup_epochs,
        )
    if search.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=max(1, search.pruner_warmup_epochs), reduction_factor=3
        )
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=max(1, search.pruner_warmup_epochs),
            max_resource=config.train.max_epochs,
            reduction_factor=3,
        )
    return optuna.pruners.NopPruner()
