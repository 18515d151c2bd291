"""Predictions of a trained PatchTST on a dataset's rows: the window view on the
device, logits and probabilities in eval mode, batch by batch."""

from __future__ import annotations

import numpy as np
import torch

from finscale.data import WindowDataset
from finscale.model import PatchTST
from finscale.train.step import forward_context

# Inference keeps no activations for backward, so evaluation batches can be
# several times the training micro-batch.
EVAL_BATCH_FACTOR = 4


def device_windows(data: WindowDataset, device: torch.device) -> torch.Tensor:
    """The dataset's window view on `device`: the feature tensor is copied once and
    unfolded there, never the (much larger) windows themselves."""
    if device.type == "cpu":
        return data.windows
    features = data.features.to(device)
    return features.unfold(0, data.context_days, 1).transpose(1, 2)


@torch.inference_mode()
def predict_logits(
    model: PatchTST,
    data: WindowDataset,
    rows: torch.Tensor,
    device: torch.device,
    dtype: str = "fp32",
    batch_size: int = 512,
) -> torch.Tensor:
    """Logits (float32, on CPU) of the given rows, in order, in eval mode."""
    was_training = model.training
    model.eval()
    windows = device_windows(data, device)
    out = []
    for start in range(0, len(rows), batch_size):
        index = rows[start : start + batch_size].to(device) - (data.context_days - 1)
        with forward_context(device, dtype):
            out.append(model(windows[index]).float().cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def predict_proba(
    model: PatchTST,
    data: WindowDataset,
    rows: torch.Tensor,
    device: torch.device,
    dtype: str = "fp32",
    batch_size: int = 512,
) -> np.ndarray:
    """Predicted probability of a positive label for each row (float64)."""
    logits = predict_logits(model, data, rows, device, dtype, batch_size)
    return torch.sigmoid(logits.double()).numpy()
