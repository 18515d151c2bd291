"""The training layer: device and precision choice, the trainer, metrics."""
