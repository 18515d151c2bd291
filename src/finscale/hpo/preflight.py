"""Pre-flight: what a study will run on and roughly how long it takes, before it starts.

A study that dies on hour six because the disk filled, the storage was
unreachable or the largest architecture swaps is a lost day. The checks here
run in seconds (plus one timed epoch of up to four architectures at the grid's
corners, `duration.py`) and print what was found.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import psutil

from finscale.execution import (
    EXCLUDED_ATTR,
    SPLITS_ATTR,
    check_storage_usable,
    open_storage,
    redact,
    storage_exists,
)
from finscale.hpo.duration import (
    COST_NAMES,
    corner_architectures,
    costs_of,
    fit_duration_model,
    study_duration,
)
from finscale.hpo.objective import architecture_attr
from finscale.hpo.spec import Prepared, StudySpec
from finscale.model import PlannedArchitecture
from finscale.units import architecture_label, format_bytes, format_duration

# A trial record with its learning curve and resource samples, with room to spare.
RECORD_BYTES_PER_EPOCH = 600
RECORD_BYTES_FIXED = 16_000


def _existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def _free_disk_bytes(path: Path) -> int:
    return shutil.disk_usage(_existing_parent(path)).free


def time_one_epoch(spec: StudySpec, prepared: Prepared, arch_index: int) -> float:
    """Seconds of one training epoch (with validation) of a grid architecture."""
    from finscale.train import train

    planned = prepared.planned[arch_index]
    # Two epochs, the second timed: the first pays for allocator and kernel warm-up.
    update: dict[str, Any] = {"max_epochs": 2, "patience": 2}
    if planned.batch is not None and spec.config.train.micro_batch is None:
        update["micro_batch"] = planned.batch.micro_batch
    config = spec.config.train.model_copy(update=update)
    result = train(
        planned.architecture.config,
        prepared.windows(),
        config,
        hardware=prepared.hardware,
    )
    return result.history[-1].seconds


def preflight(spec: StudySpec, prepared: Prepared, time_epochs: bool = True) -> dict[str, Any]:
    """Every pre-flight check as a JSON-safe dict; raises `InputError` on a storage
    that cannot be reached."""
    config = spec.config
    existing: dict[str, int] = {}
    check_storage_usable(spec.storage)
    if storage_exists(spec.storage):
        storage = open_storage(spec.storage)
        existing = {
            s.study_name: len(
                storage.get_all_trials(storage.get_study_id_from_name(s.study_name), deepcopy=False)
            )
            for s in storage.get_all_studies()
        }
    trials_needed = spec.trials
    record_bytes = trials_needed * (
        RECORD_BYTES_FIXED + RECORD_BYTES_PER_EPOCH * config.train.max_epochs
    )
    memory = psutil.virtual_memory()
    device: dict[str, Any] = {
        "device": prepared.device,
        "dtype": prepared.dtype,
        "memory_limit_bytes": prepared.memory_limit_bytes,
        "ram_available_bytes": memory.available,
        "ram_total_bytes": memory.total,
        "cpu_count": psutil.cpu_count(),
    }
    if prepared.device.startswith("cuda"):
        import torch

        free, total = torch.cuda.mem_get_info(torch.device(prepared.device))
        device.update(gpu_free_bytes=free, gpu_total_bytes=total)
    report: dict[str, Any] = {
        "study": spec.study_name,
        "run_dir": str(spec.run_dir),
        "dataset": {
            "key": prepared.dataset.key,
            "splits": prepared.info[SPLITS_ATTR],
            "n_features": len(prepared.dataset.feature_names),
        },
        "storage": {
            "url": redact(spec.storage),
            "reachable": True,
            "studies": len(existing),
            "this_study_trials": existing.get(spec.study_name),
        },
        "device": device,
        "disk": {
            "free_bytes": _free_disk_bytes(spec.run_dir),
            "records_estimate_bytes": record_bytes,
        },
        "grid": {
            "hash": prepared.grid.hash,
            "size": len(prepared.grid),
            "allowed": len(prepared.space.allowed),
            "architectures": _architecture_rows(prepared),
        },
        "duration": None,
    }
    if time_epochs:
        report["duration"] = _duration_estimate(spec, prepared)
    return report


def _architecture_rows(prepared: Prepared) -> list[dict[str, Any]]:
    """Every grid architecture with its memory plan and why it is excluded, if it is."""
    rows = []
    excluded = set(prepared.info[EXCLUDED_ATTR])
    for index, planned in sorted(prepared.planned.items()):
        c = planned.architecture.config
        rows.append(
            {
                "index": index,
                "d_model": c.d_model,
                "n_layers": c.n_layers,
                "n_heads": c.n_heads,
                "param_count": planned.architecture.param_count,
                "micro_batch": planned.batch.micro_batch if planned.batch else None,
                "accumulation_steps": planned.batch.accumulation_steps if planned.batch else None,
                "memory_estimate_bytes": planned.memory_bytes,
                "excluded": index in excluded,
                "why_excluded": (
                    "memory estimate over the limit"
                    if not planned.fits
                    else "exclude_archs"
                    if index in excluded
                    else None
                ),
            }
        )
    return rows


def _duration_estimate(spec: StudySpec, prepared: Prepared) -> dict[str, Any]:
    """The study's expected and worst-case duration: a few architectures' epochs timed
    (`duration.corner_architectures`), every other one priced by the fitted model."""
    epochs, trials = spec.config.train.max_epochs, spec.trials
    allowed = [prepared.planned[a.index] for a in prepared.space.allowed]
    train = spec.config.train
    costs = costs_of(prepared, train.effective_batch, train.samples_per_epoch)
    timed = corner_architectures(allowed)
    seconds = [time_one_epoch(spec, prepared, p.architecture.index) for p in timed]
    model = fit_duration_model([costs[p.architecture.index] for p in timed], seconds)
    duration = study_duration(model, costs.values(), trials, epochs, spec.workers)
    by_params = sorted(allowed, key=lambda p: p.architecture.param_count)

    def row(planned: PlannedArchitecture, measured: float | None = None) -> dict[str, Any]:
        arch = planned.architecture
        return {
            "index": arch.index,
            "params": arch.param_count,
            "label": architecture_label(architecture_attr(arch)),
            "epoch_s": measured if measured is not None else duration.epoch_seconds[arch.index],
            "estimate_s": duration.epoch_seconds[arch.index],
        }

    measured = {p.architecture.index: s for p, s in zip(timed, seconds, strict=True)}
    planned_of = {p.architecture.index: p for p in allowed}
    fastest = min(duration.epoch_seconds, key=duration.epoch_seconds.get)
    slowest = max(duration.epoch_seconds, key=duration.epoch_seconds.get)
    return {
        "smallest": row(by_params[0], measured.get(by_params[0].architecture.index)),
        "largest": row(by_params[-1], measured.get(by_params[-1].architecture.index)),
        "fastest": row(planned_of[fastest], measured.get(fastest)),
        "slowest": row(planned_of[slowest], measured.get(slowest)),
        "timed": [row(p, s) for p, s in zip(timed, seconds, strict=True)],
        "coefficients": dict(zip(COST_NAMES, model.coefficients, strict=True)),
        "max_epochs": epochs,
        "trials": trials,
        "workers": spec.workers,
        "study_expected_s": duration.expected_s,
        "study_worst_s": duration.worst_s,
        # An upper bound: every trial on the slowest architecture for every epoch.
        "study_upper_bound_s": duration.worst_s,
    }


def preflight_lines(report: dict[str, Any]) -> list[str]:
    """The report as short lines for a terminal."""
    d, disk, grid = report["device"], report["disk"], report["grid"]
    splits = report["dataset"]["splits"]
    lines = [
        f"study      {report['study']} in {report['run_dir']}",
        "dataset    "
        + ", ".join(
            f"{name} {s['samples']} ({s['positive_rate']:.1%} positive)"
            for name, s in splits.items()
        )
        + f"; {report['dataset']['n_features']} features, key {report['dataset']['key'][:16]}",
        f"storage    {report['storage']['url']}: reachable, "
        + (
            f"study has {report['storage']['this_study_trials']} trials (resumes)"
            if report["storage"]["this_study_trials"] is not None
            else "new study"
        ),
        f"device     {d['device']} {d['dtype']}, "
        f"memory limit {format_bytes(d['memory_limit_bytes'])}"
        f", RAM available {format_bytes(d['ram_available_bytes'])} of "
        f"{format_bytes(d['ram_total_bytes'])}"
        + (
            f", GPU free {format_bytes(d['gpu_free_bytes'])} of "
            f"{format_bytes(d['gpu_total_bytes'])}"
            if "gpu_free_bytes" in d
            else ""
        ),
        f"disk       {format_bytes(disk['free_bytes'])} free, records need about "
        f"{format_bytes(disk['records_estimate_bytes'])}",
        f"grid       {grid['size']} architectures, {grid['allowed']} searched, "
        f"grid {grid['hash'][:12]}",
    ]
    for arch in grid["architectures"]:
        if arch["excluded"]:
            lines.append(
                f"  excluded #{arch['index']} d_model {arch['d_model']} x {arch['n_layers']} "
                f"layers x {arch['n_heads']} heads ({arch['param_count']:,} params): "
                f"{arch['why_excluded']} ({format_bytes(arch['memory_estimate_bytes'])})"
            )
    if disk["free_bytes"] < disk["records_estimate_bytes"]:
        lines.append("  warning: the disk may fill before the study ends")
    duration = report["duration"]
    if duration is not None:
        fast, slow = duration["fastest"], duration["slowest"]
        lines.append(
            f"duration   one epoch {fast['epoch_s']:.2f} s ({fast['label']}, "
            f"{fast['params']:,} params) to {slow['epoch_s']:.2f} s ({slow['label']}, "
            f"{slow['params']:,} params): {len(duration['timed'])} timed, the rest from their "
            "FLOPs and memory traffic"
        )
        lines.append(
            f"           expected {format_duration(duration['study_expected_s'])} for "
            f"{duration['trials']} trials x {duration['max_epochs']} epochs on "
            f"{duration['workers']} worker(s), at most "
            f"{format_duration(duration['study_worst_s'])} (every trial on the slowest); "
            "early stopping and pruning shorten both"
        )
    return lines
