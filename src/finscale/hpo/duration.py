"""How long a study takes: every architecture's epoch estimated from its own cost,
calibrated on the few epochs actually timed.

An epoch's seconds are modelled as a non-negative mix of four costs the model states
itself: micro-batches (a fixed overhead per forward and backward pass), micro-batches x
layers (kernel launches, which dominate small models on a CPU), FLOPs
(`estimate_flops`, which dominate large ones on a GPU) and bytes moved
(`estimate_traffic_bytes`). Timing a handful of architectures at the grid's corners
(fewest and most parameters, fewest and most layers) fixes the four coefficients by
non-negative least squares, and the fit then prices every architecture of the grid:
the smallest model is not assumed to be the fastest (48 thin layers can be slower than
2 wide ones).

Pure functions of numbers; the timing itself is `preflight.time_one_epoch`. A running
study fits the same model on the epochs its finished trials trained (`StudyClock`), so
the ETA prices the architectures the search has not tried yet from its first trial on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from finscale.execution import SPLITS_ATTR
from finscale.hpo.spec import Prepared
from finscale.model import PlannedArchitecture, estimate_flops, estimate_traffic_bytes
from finscale.train import epoch_samples

COST_NAMES = ("micro_batches", "layer_passes", "flops", "traffic_bytes")


@dataclass(frozen=True)
class EpochCost:
    """What one epoch (training and the validation pass) of an architecture costs."""

    arch_index: int
    micro_batches: int
    layer_passes: int
    flops: int
    traffic_bytes: int

    def vector(self) -> np.ndarray:
        return np.array([float(getattr(self, name)) for name in COST_NAMES])


def epoch_cost(
    planned: PlannedArchitecture, n_train: int, n_val: int, effective_batch: int
) -> EpochCost:
    """The cost of one epoch of `planned` on `n_train` training and `n_val` validation
    samples at `effective_batch` samples per optimizer step."""
    arch = planned.architecture
    config = arch.config
    steps = math.ceil(n_train / effective_batch)
    accumulation = planned.batch.accumulation_steps if planned.batch else 1
    micro_batch = planned.batch.micro_batch if planned.batch else effective_batch
    # Validation runs forward only (a third of a training pass) in larger batches.
    micro_batches = steps * accumulation + math.ceil(n_val / max(1, micro_batch))
    flops = estimate_flops(config, n_train) + estimate_flops(config, n_val) // 3
    traffic = estimate_traffic_bytes(
        config, n_train + n_val // 3, micro_batches, steps, arch.param_count
    )
    return EpochCost(arch.index, micro_batches, micro_batches * config.n_layers, flops, traffic)


@dataclass(frozen=True)
class DurationModel:
    """Seconds per unit of each cost of `COST_NAMES`, fitted on timed epochs."""

    coefficients: tuple[float, float, float, float]
    timed: tuple[tuple[int, float], ...]  # (arch index, measured epoch seconds)

    def epoch_seconds(self, cost: EpochCost) -> float:
        return float(np.dot(cost.vector(), self.coefficients))


def fit_duration_model(costs: Sequence[EpochCost], seconds: Sequence[float]) -> DurationModel:
    """The non-negative coefficients that best price the timed epochs (`costs[i]` took
    `seconds[i]`). With fewer timings than costs the fit is one of many that price them
    exactly; it is chosen non-negative, so no cost ever makes an epoch cheaper."""
    from scipy.optimize import nnls

    if not costs or len(costs) != len(seconds):
        raise ValueError("need one measured duration per timed architecture")
    features = np.array([c.vector() for c in costs])
    # Each column on its own scale: FLOPs run to 1e12, micro-batches to 1e2.
    scale = features.max(axis=0)
    scale[scale == 0] = 1.0
    solution, _ = nnls(features / scale, np.asarray(seconds, float))
    coefficients = tuple(float(x) for x in solution / scale)
    timed = tuple((c.arch_index, float(s)) for c, s in zip(costs, seconds, strict=True))
    return DurationModel(coefficients, timed)  # type: ignore[arg-type]


def corner_architectures(planned: Iterable[PlannedArchitecture]) -> list[PlannedArchitecture]:
    """The architectures to time: fewest and most parameters, fewest and most layers
    (each once, in that order)."""
    allowed = list(planned)
    picks = [
        min(allowed, key=lambda p: (p.architecture.param_count, p.architecture.index)),
        max(allowed, key=lambda p: (p.architecture.param_count, -p.architecture.index)),
        min(allowed, key=lambda p: (p.architecture.config.n_layers, p.architecture.index)),
        max(allowed, key=lambda p: (p.architecture.config.n_layers, -p.architecture.index)),
    ]
    chosen: list[PlannedArchitecture] = []
    for pick in picks:
        if all(pick.architecture.index != c.architecture.index for c in chosen):
            chosen.append(pick)
    return chosen


@dataclass(frozen=True)
class StudyDuration:
    """A study's duration before it starts, in seconds: `expected` if trials spread
    evenly over the architectures and run `epochs_per_trial` epochs, `worst` if every
    trial ran the slowest architecture for every epoch."""

    epoch_seconds: dict[int, float]  # by arch index
    expected_s: float
    worst_s: float


def study_duration(
    model: DurationModel,
    costs: Iterable[EpochCost],
    trials: int,
    max_epochs: int,
    workers: int,
    epochs_per_trial: float | None = None,
) -> StudyDuration:
    """The expected and worst-case duration of `trials` trials of up to `max_epochs`
    epochs on `workers` workers; `epochs_per_trial` (the mean epochs the trials so far
    ran, early stopping and pruning included) lowers the expected one."""
    seconds = {c.arch_index: model.epoch_seconds(c) for c in costs}
    mean_epoch = float(np.mean(list(seconds.values())))
    per_trial = min(max_epochs, epochs_per_trial) if epochs_per_trial else max_epochs
    expected = trials * per_trial * mean_epoch / workers
    worst = math.ceil(trials / workers) * max_epochs * max(seconds.values())
    return StudyDuration(seconds, expected, worst)


def costs_of(
    prepared: Prepared, effective_batch: int, samples_per_epoch: int | None = None
) -> dict[int, EpochCost]:
    """The epoch cost of every architecture a study may sample, by grid index;
    `prepared` is the study's `Prepared`, an epoch the training samples it visits
    (`train.samples_per_epoch`, at most all of them)."""
    splits = prepared.info[SPLITS_ATTR]
    n_val = splits["val"]["samples"]
    n_train = epoch_samples(splits["train"]["samples"], samples_per_epoch)
    return {
        a.index: epoch_cost(prepared.planned[a.index], n_train, n_val, effective_batch)
        for a in prepared.space.allowed
    }


class StudyClock:
    """The expected time left of a running study: the duration model fitted on the
    finished trials (each one's seconds per epoch on its architecture) prices every
    architecture the search may sample, times the epochs a trial has run on average
    (early stopping, pruning and reused duplicates included)."""

    def __init__(self, costs: Mapping[int, EpochCost], max_epochs: int, workers: int) -> None:
        self.costs = dict(costs)
        self.max_epochs, self.workers = max_epochs, workers
        self._timed: list[tuple[EpochCost, float]] = []
        self._epochs: list[int] = []

    def observe(self, arch_index: int | None, epoch_seconds: Sequence[float]) -> None:
        """A finished trial: its architecture and the seconds of each epoch it trained
        (none for a reused duplicate). Its median epoch is what is fitted: a process's
        first epoch also pays one-off warm-up (imports, allocator, kernels)."""
        self._epochs.append(len(epoch_seconds))
        if epoch_seconds and arch_index in self.costs:
            self._timed.append((self.costs[arch_index], float(np.median(epoch_seconds))))

    def remaining_seconds(self, trials_left: int) -> float | None:
        """Seconds until `trials_left` more trials finish, or None before any timing."""
        if not self._timed or not self.costs:
            return None
        if trials_left <= 0:
            return 0.0
        model = fit_duration_model([c for c, _ in self._timed], [s for _, s in self._timed])
        mean_epochs = sum(self._epochs) / len(self._epochs)
        return study_duration(
            model, self.costs.values(), trials_left, self.max_epochs, self.workers, mean_epochs
        ).expected_s
