"""The training layer: the hardware a run uses (device), one optimizer step (step),
the training loop (trainer), metrics, and the coordinate check. Other floors import
what this face re-exports."""

from finscale.train.coord_check import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DEPTHS,
    DEFAULT_LEARNING_RATE,
    DEFAULT_SEEDS,
    DEFAULT_STEPS,
    DEFAULT_WIDTHS,
    N_HEADS,
    check_arguments,
    coord_check,
    coord_check_document,
    sweep_configs,
)
from finscale.train.device import (
    CPU_BF16_MIN_FLOPS_PER_SAMPLE,
    Hardware,
    Precision,
    peak_flops,
    resolve_hardware,
)
from finscale.train.metrics import ECE_BINS, check_binary, classification_metrics, log_loss
from finscale.train.sampling import epoch_samples
from finscale.train.step import OptimizerStep
from finscale.train.trainer import (
    DeviceBatches,
    EpochRecord,
    TrainResult,
    predict_proba,
    train,
)

__all__ = [
    "CPU_BF16_MIN_FLOPS_PER_SAMPLE",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_DEPTHS",
    "DEFAULT_LEARNING_RATE",
    "DEFAULT_SEEDS",
    "DEFAULT_STEPS",
    "DEFAULT_WIDTHS",
    "ECE_BINS",
    "N_HEADS",
    "DeviceBatches",
    "EpochRecord",
    "Hardware",
    "OptimizerStep",
    "Precision",
    "TrainResult",
    "check_arguments",
    "check_binary",
    "classification_metrics",
    "coord_check",
    "coord_check_document",
    "epoch_samples",
    "log_loss",
    "peak_flops",
    "predict_proba",
    "resolve_hardware",
    "sweep_configs",
    "train",
]
