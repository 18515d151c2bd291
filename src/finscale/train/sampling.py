"""Which training rows an epoch visits, and in what order.

An epoch is every training row in a fresh seeded order, or with
`train.samples_per_epoch` a fresh seeded draw of that many rows without
replacement: on a panel of many symbols an epoch then costs what it costs on one
index, so early stopping and pruning see as many validation checks per unit of
compute. Pure functions of integers and tensors.
"""

from __future__ import annotations

import torch


def epoch_samples(n_train: int, samples_per_epoch: int | None) -> int:
    """Training samples one epoch visits: `samples_per_epoch`, at most all `n_train`
    (None: all)."""
    if n_train < 0:
        raise ValueError(f"n_train must be >= 0, got {n_train!r}")
    if samples_per_epoch is None:
        return n_train
    if samples_per_epoch < 1:
        raise ValueError(f"samples_per_epoch must be >= 1 or None, got {samples_per_epoch!r}")
    return min(n_train, samples_per_epoch)


def epoch_order(
    train_rows: torch.Tensor, n_samples: int, generator: torch.Generator
) -> torch.Tensor:
    """(n_samples,) distinct rows of `train_rows` in the epoch's random order: the
    first `n_samples` of one permutation of all of them, so drawing every row is
    exactly the shuffle of a full epoch (same generator, same order) and each epoch's
    call draws afresh."""
    permutation = torch.randperm(len(train_rows), generator=generator)
    if n_samples < len(train_rows):
        permutation = permutation[:n_samples]
    return train_rows[permutation]
