"""The training layer: the hardware a run uses (device), one optimizer step (step),
the training loop (trainer), metrics."""

from finscale.train.metrics import ECE_BINS, check_binary, classification_metrics, log_loss

__all__ = ["ECE_BINS", "check_binary", "classification_metrics", "log_loss"]
