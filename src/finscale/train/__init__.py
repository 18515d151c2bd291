"""The training layer: the hardware a run uses (device), one optimizer step (step),
the training loop (trainer), metrics."""
