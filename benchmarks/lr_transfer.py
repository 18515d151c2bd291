"""Print where the optimal learning rate lies for each width and depth, under each
parametrization: the check that training values tuned on a small model transfer.

    python benchmarks/lr_transfer.py [--epochs 12] [--seeds 2] [--samples 2048]
        [--sweeps standard:width,mup:width,standard:depth,completep:depth]

Every shape trains the same `--samples` training samples of the bundled S&P 500
(tier a25, h=1) for `--epochs` epochs (AdamW, warmup and cosine decay as the
studies train, no early stopping, no dropout), at each learning rate of a
factor-2 grid. The criterion is the final training log loss: what the
parametrization governs is optimisation, and on one market's daily labels the
validation loss's noise would hide it (the validation optimum is printed beside
it). Sweeps: width 32 -> 256 at 2 layers under standard and mup; depth 2 -> 16
at width 32 under standard and completep; the base shape is each sweep's
smallest.

Measured tables: benchmarks/results/lr_transfer.json (4 epochs, all sweeps) and
lr_transfer_width_12_epochs.json and lr_transfer_depth_12_epochs.json (12 epochs).

The target: under mup (width) and completep (depth) the optimum moves at most
one grid step across the 8x change; the table says what standard does. Beside
each optimum: the training loss at the base shape's best rate minus the shape's
own best, what a search done only at the base shape would lose there.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from finscale.config import DataConfig, TrainConfig
from finscale.data import build_dataset
from finscale.model import PatchTST
from finscale.model.patchtst import PatchTSTConfig
from finscale.train.coord_check import N_HEADS, sweep_configs
from finscale.train.device import Precision
from finscale.train.step import OptimizerStep

SWEEPS = (
    ("width", "standard", (32, 64, 128, 256), 2),
    ("width", "mup", (32, 64, 128, 256), 2),
    ("depth", "standard", (2, 4, 8, 16), 32),
    ("depth", "completep", (2, 4, 8, 16), 32),
)
LEARNING_RATES = tuple(1e-4 * 2**k for k in range(9))  # 1e-4 to 2.56e-2
TARGET_STEPS = 1  # grid steps the optimum may move across 8x under mup / completep


def train_once(config, batches, val, train_all, lr, epochs, seed) -> tuple[float, float]:
    """Final (training, validation) log loss of one shape at one learning rate."""
    torch.manual_seed(seed)
    model = PatchTST(config)
    train = TrainConfig(
        learning_rate=lr, warmup_steps=10, weight_decay=0.01, grad_clip=1.0, max_epochs=epochs
    )
    step = OptimizerStep(
        model,
        train,
        torch.device("cpu"),
        Precision("fp32", "benchmark"),
        512,
        epochs * len(batches),
    )
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for k in torch.randperm(len(batches), generator=generator).tolist():
            step(*batches[k])
    model.eval()
    with torch.no_grad():
        losses = [
            F.binary_cross_entropy_with_logits(model(x), y).item() for x, y in (train_all, val)
        ]
    return losses[0], losses[1]


def optimum(losses: dict[float, float]) -> float:
    finite = {lr: loss for lr, loss in losses.items() if math.isfinite(loss)}
    return min(finite, key=finite.get)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12, help="the quick preset's max_epochs")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=2048, help="training samples")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--out", type=Path, default=None, help="also write the table as JSON")
    parser.add_argument(
        "--sweeps",
        default=",".join(f"{p}:{s}" for s, p, _, _ in SWEEPS),
        help="which sweeps, as parametrization:sweep pairs (default: all four)",
    )
    args = parser.parse_args()

    data = build_dataset(DataConfig()).windows()
    rows = data.rows("train")[-args.samples :]
    batches = [data.batch(rows[i : i + args.batch]) for i in range(0, len(rows), args.batch)]
    train_all, val = data.batch(rows), data.batch(data.rows("val"))
    template = PatchTSTConfig(
        n_features=data.features.shape[1],
        context_days=data.context_days,
        n_heads=N_HEADS,
        dropout=0.0,
    )
    started = time.time()
    table = []
    print(
        f"{len(rows)} training samples, {args.epochs} epochs, {args.seeds} seeds, "
        f"learning rates {LEARNING_RATES[0]:g} x 2^k, k = 0..{len(LEARNING_RATES) - 1}"
    )
    chosen = set(args.sweeps.split(","))
    for sweep, parametrization, sizes, fixed in SWEEPS:
        if f"{parametrization}:{sweep}" not in chosen:
            continue
        configs = sweep_configs(
            template.replace(parametrization=parametrization), sweep, sizes, fixed
        )
        best_train, best_val = [], []
        for size, config in zip(sizes, configs, strict=True):
            train_losses, val_losses = {}, {}
            for lr in LEARNING_RATES:
                runs = [
                    train_once(config, batches, val, train_all, lr, args.epochs, seed)
                    for seed in range(args.seeds)
                ]
                train_losses[lr] = float(np.mean([r[0] for r in runs]))
                val_losses[lr] = float(np.mean([r[1] for r in runs]))
            best_train.append(optimum(train_losses))
            best_val.append(optimum(val_losses))
            # What tuning at the base shape costs here: the loss at the base shape's best
            # rate minus this shape's own best (0 where the optimum transferred exactly).
            regret = train_losses[best_train[0]] - train_losses[best_train[-1]]
            table.append(
                {
                    "sweep": sweep,
                    "parametrization": parametrization,
                    "size": size,
                    "train_loss": train_losses,
                    "val_loss": val_losses,
                    "best_lr_train": best_train[-1],
                    "best_lr_val": best_val[-1],
                    "transfer_regret": regret,
                }
            )
            print(
                f"  {parametrization:9s} {sweep} {size:4d}: best lr {best_train[-1]:.2e} "
                f"(train loss {train_losses[best_train[-1]]:.4f}; at the base shape's best "
                f"{regret:+.4f}), by val {best_val[-1]:.2e}"
                f"  [{time.time() - started:.0f} s]",
                flush=True,
            )
        shift = round(math.log2(best_train[-1] / best_train[0]))
        spread = round(math.log2(max(best_train) / min(best_train)))
        verdict = "within" if abs(shift) <= TARGET_STEPS and spread <= TARGET_STEPS else "beyond"
        print(
            f"{parametrization} over {sweep} {sizes[0]} -> {sizes[-1]}: the optimum moves "
            f"{shift:+d} grid steps (spread {spread}), {verdict} the target of {TARGET_STEPS}"
        )
        table.append(
            {
                "sweep": sweep,
                "parametrization": parametrization,
                "shift_steps": shift,
                "spread_steps": spread,
            }
        )
    print(f"total {time.time() - started:.0f} s")
    if args.out is not None:
        args.out.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
