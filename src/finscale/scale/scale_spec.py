"""One scaling study: its config, where it lives, and its record in `scale.json`.

A run directory holds one study's config: `check_run_dir_matches` refuses to
resume it with other data or model settings, and `spec_of_run_dir` rebuilds
the spec a directory was made with, for the commands that work on a finished
or stopped study.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finscale.atomic import write_json_atomic
from finscale.config import StudyConfig, config_from_mapping, load_study_config
from finscale.errors import InputError
from finscale.execution import redact
from finscale.hpo import (
    JOURNAL_FILE,
    StudySpec,
    Transfer,
    default_study_name,
    grid_of,
    transferred_config,
)
from finscale.scale.layout import SCALE_FILE, study_dir
from finscale.units import format_budget

# The run directory of a study made without --run-dir: runs/{preset or config stem}.
DEFAULT_RUNS_DIR = Path("runs")


@dataclass(frozen=True)
class ScaleSpec:
    """One scaling study: its config, where it lives, and where its studies are stored."""

    config: StudyConfig
    run_dir: Path
    store_dir: Path
    storage: str | None = None  # one Optuna URL for every study; None: a journal per study
    workers: int = 1

    @property
    def budgets(self) -> tuple[int, ...]:
        return self.config.scale.budgets

    @property
    def horizons(self) -> tuple[int, ...]:
        return self.config.scale.horizons

    def horizon_config(self, horizon_days: int) -> StudyConfig:
        """The config of this study's searches at one of its horizons (validated again:
        `scale.horizons` and `data.horizon_days` share their bounds)."""
        return config_from_mapping(self.config.model_dump(), {"data.horizon_days": horizon_days})

    def study_name(self, budget: int, horizon_days: int) -> str:
        return default_study_name(self.config.data.tier, budget, horizon_days)

    def study_spec(
        self, budget: int, horizon_days: int, transfer: Transfer | None = None
    ) -> StudySpec:
        """One budget's study; with `transfer`, its training values pinned to those
        transferred (`search.transfer`)."""
        name = self.study_name(budget, horizon_days)
        run_dir = study_dir(self.run_dir, name)
        config = self.horizon_config(horizon_days)
        return StudySpec(
            config=config if transfer is None else transferred_config(config, transfer),
            transfer=transfer,
            budget=budget,
            study_name=name,
            run_dir=run_dir,
            storage=self.storage or str(run_dir / JOURNAL_FILE),
            store_dir=self.store_dir,
            workers=self.workers,
        )

    def transfers_to(self, budget: int) -> bool:
        """Whether this budget's study takes its training values from the smallest's."""
        return self.config.search.transfer == "smallest" and budget != min(self.budgets)

    def studies(self) -> Iterator[tuple[int, int]]:
        """(budget, horizon) of every study, horizon by horizon, smallest budget first."""
        for horizon in self.horizons:
            for budget in self.budgets:
                yield budget, horizon

    @property
    def tiers(self) -> tuple[str, ...]:
        """Every tier of the study in order (`scale.tiers`, or the data section's one)."""
        return self.config.tiers

    @property
    def other_tiers(self) -> tuple[str, ...]:
        """The tiers besides the data section's: each its own studies of every budget and
        horizon, compared with the next tier (`tier_spec`)."""
        return tuple(t for t in self.tiers if t != self.config.data.tier)

    def tier_budgets(self, tier: str) -> tuple[int, ...]:
        """The budgets whose grid holds an architecture on `tier`'s features: a tier of
        many features has no architecture at a budget its patch embedding alone
        outgrows, and is compared at the others."""
        config = config_from_mapping(self.config.model_dump(), {"data.tier": tier})
        fits = []
        for budget in self.budgets:
            try:
                grid_of(config, budget)
            except InputError:
                continue
            fits.append(budget)
        return tuple(fits)

    def tier_spec(self, tier: str) -> ScaleSpec:
        """The studies of another tier, in this run directory: the same config on `tier`,
        at the budgets its grid holds (`tier_budgets`), evaluated on the full training
        data only (the data-scaling runs and the cross-budget matrix belong to the
        primary tier's laws). It leaves out `scale.tiers`, so adding a tier later
        leaves every other tier's inputs, and so its stored runs, as they were."""
        budgets = self.tier_budgets(tier)
        if not budgets:
            raise InputError(
                f"tier {tier} has no architecture at any budget "
                f"({', '.join(map(format_budget, self.budgets))}) on its "
                f"{len(_tier_features(tier))} features",
                "scale.tiers",
            )
        scale = self.config.scale.model_copy(
            update={
                "tiers": (),
                "budgets": budgets,
                "data_fractions": (1.0,),
                "cross_budget": False,
            }
        )
        config = config_from_mapping(
            self.config.model_copy(update={"scale": scale}).model_dump(), {"data.tier": tier}
        )
        return ScaleSpec(config, self.run_dir, self.store_dir, self.storage, self.workers)


def new_scale_spec(
    preset: str | None,
    config_path: Path | None,
    overrides: Mapping[str, Any],
    run_dir: Path | None,
    storage: str | None,
    store_dir: Path,
    workers: int = 1,
) -> ScaleSpec:
    """The spec of a study from a preset or a config file and dotted overrides; without
    `run_dir` it lives in runs/{preset, or the config file's stem, or "scale"}."""
    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}", "workers")
    study_config = load_study_config(preset, config_path, dict(overrides))
    name = preset or (config_path.stem if config_path is not None else "scale")
    return ScaleSpec(
        config=study_config,
        run_dir=run_dir or DEFAULT_RUNS_DIR / name,
        store_dir=store_dir,
        storage=storage,
        workers=workers,
    )


def write_scale_file(spec: ScaleSpec) -> Path:
    """scale.json: the config and every study of the plan (the storage's password
    redacted)."""
    return write_json_atomic(
        spec.run_dir / SCALE_FILE,
        {
            "config": spec.config.model_dump(mode="json"),
            "storage": redact(spec.storage) if spec.storage else None,
            "studies": [
                {"budget": b, "horizon_days": h, "study_name": spec.study_name(b, h)}
                for b, h in spec.studies()
            ],
            # The studies of the tiers besides the data section's (`scale.tiers`).
            "tier_studies": [
                {
                    "tier": tier,
                    "budget": b,
                    "horizon_days": h,
                    "study_name": spec.tier_spec(tier).study_name(b, h),
                }
                for tier, other in ((t, spec.tier_spec(t)) for t in spec.other_tiers)
                for b, h in other.studies()
            ],
        },
    )


def read_scale_file(run_dir: Path) -> dict[str, Any]:
    """A run directory's scale.json, checked to hold what `write_scale_file` writes: a
    valid config, the storage (or null) and every study's budget, horizon and name.
    Anything else is one `InputError` naming the file and what is wrong."""
    path = run_dir / SCALE_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(
            f"{run_dir} is not a scaling study's run directory (no {SCALE_FILE})", str(run_dir)
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"{path} is not valid JSON", str(path)) from None
    problem = _scale_file_problem(info)
    if problem is not None:
        raise InputError(f"{path} is not a scaling study's record: {problem}", str(path))
    config_from_mapping(info["config"], None, str(path))  # names a bad key and the file
    return info


def _scale_file_problem(info: Any) -> str | None:
    if not isinstance(info, dict):
        return f"it holds a {type(info).__name__}, not a mapping"
    if not isinstance(info.get("config"), dict):
        return "no config section"
    if not isinstance(info.get("storage"), str | None):
        return "storage is not a string"
    studies = info.get("studies")
    if not isinstance(studies, list) or not studies:
        return "no list of studies"
    for i, study in enumerate(studies):
        if not (
            isinstance(study, dict)
            and isinstance(study.get("budget"), int)
            and isinstance(study.get("horizon_days"), int)
            and isinstance(study.get("study_name"), str)
        ):
            return f"studies[{i}] is not a budget, horizon_days and study_name"
    for i, study in enumerate(info.get("tier_studies", [])):  # absent before tiers
        if not (
            isinstance(study, dict)
            and isinstance(study.get("tier"), str)
            and isinstance(study.get("budget"), int)
            and isinstance(study.get("horizon_days"), int)
            and isinstance(study.get("study_name"), str)
        ):
            return f"tier_studies[{i}] is not a tier, budget, horizon_days and study_name"
    return None


def spec_of_run_dir(run_dir: Path, storage: str | None, store_dir: Path) -> ScaleSpec:
    """The ScaleSpec a run directory was made with (its scale.json); `storage`, when
    given, replaces the recorded one (whose password scale.json does not keep)."""
    info = read_scale_file(run_dir)
    recorded = info.get("storage")
    if storage is None and recorded and "***" in recorded:
        raise InputError(
            f"the study's storage {recorded} needs its password: pass the storage's full URL",
            "storage",
        )
    return ScaleSpec(
        config=StudyConfig(**info["config"]),
        run_dir=run_dir,
        store_dir=store_dir,
        storage=storage or recorded,
    )


def check_run_dir_matches(spec: ScaleSpec) -> None:
    """A run directory holds one study's config: resuming with other data or model options
    would mix two studies (the HPO storage would refuse it later, after hours)."""
    if not (spec.run_dir / SCALE_FILE).exists():
        return
    recorded = read_scale_file(spec.run_dir)
    now = spec.config.model_dump(mode="json")
    changed = [
        section for section in ("data", "model") if recorded["config"].get(section) != now[section]
    ]
    if changed:
        raise InputError(
            f"{spec.run_dir} holds a study with other {' and '.join(changed)} settings; "
            "use another run directory or the same options",
            "run_dir",
        )


def check_data(spec: ScaleSpec) -> list[str]:
    """Every budget's grid, then (built, or loaded from the store) every horizon's
    dataset, so that a budget no architecture fits, and data that cannot give the
    configured splits or walk-forward folds, are an `InputError` naming the key before
    a run directory or a study exists. The grids need only the tier's feature count
    and the number of targets, so a budget that fits nothing is refused before the
    store is written. The other tiers of `scale.tiers` are built first, without
    writing the store: a tier whose input the source lacks (a context index, VIX's
    years, OHLCV columns) is an `InputError` naming scale.tiers before anything is
    written. Returns the warnings to show: the budgets a tier has no architecture at."""
    from finscale.data import DataStore, build_dataset, resolve_targets

    # `targets: all` resolved first, so that a source without a list of symbols is
    # blamed on its own key, not on the budgets
    config = spec.config.model_copy(update={"data": resolve_targets(spec.config.data)})
    for budget in spec.budgets:
        try:
            grid_of(config, budget)
        except InputError as exc:
            raise InputError(exc.what, "scale.budgets") from None
    warnings = []
    for tier in spec.other_tiers:
        other = spec.tier_spec(tier)
        left_out = [b for b in spec.budgets if b not in other.budgets]
        if left_out:
            warnings.append(
                f"tier {tier} ({len(_tier_features(tier))} features) has no architecture at "
                f"{', '.join(map(format_budget, left_out))}: it is compared at "
                f"{', '.join(map(format_budget, other.budgets))} only"
            )
        for horizon in spec.horizons:
            config = other.horizon_config(horizon)
            try:
                build_dataset(config.data, None, evaluation=config.evaluation)
            except InputError as exc:
                raise InputError(
                    f"tier {tier} cannot be built: {exc.what}", "scale.tiers"
                ) from None
    store = DataStore(spec.store_dir)
    for horizon in spec.horizons:
        config = spec.horizon_config(horizon)
        build_dataset(config.data, store, evaluation=config.evaluation)
    return warnings


def _tier_features(tier: str) -> list:
    from finscale.data import tier_features

    return tier_features(tier)
