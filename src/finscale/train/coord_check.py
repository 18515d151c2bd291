"""The coordinate check of a parametrization: does every layer's activation size stay
put as the model grows?

Each shape of a width sweep (and of a depth sweep) trains a few AdamW steps at a
large learning rate on the same batches, and every layer's mean absolute
activation is recorded before each step. Under muP the curves over width lie
flat at every step (growth exponent near 0); under the standard parametrization
the output grows with width as soon as training moves it, the symptom that
moves the optimal learning rate with the shape (Yang et al. 2022, Figure 5; the
same check is `finscale coord-check`).

Layers, by name: `embedding` (the patch embedding's output), `attention` and
`feed_forward` (each block's branch output, averaged over blocks), `residual`
(the last block's output, the residual stream), `readout` (the final norm's
output, the head's input) and `output` (the logits).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from finscale.data import WindowDataset
from finscale.errors import InputError
from finscale.model import PatchTST, PatchTSTConfig

LAYERS = ("embedding", "attention", "feed_forward", "residual", "readout", "output")
SWEEPS = ("width", "depth")
DEFAULT_WIDTHS = (32, 64, 128, 256)
DEFAULT_DEPTHS = (2, 4, 8, 16)
N_HEADS = 4  # fixed, so that the head width grows with the model's (what 1/d_head is for)
# Large enough that training, not the initialisation, sets the activations within a
# few steps: where the standard parametrization's growth shows first.
DEFAULT_LEARNING_RATE = 1e-2
DEFAULT_STEPS, DEFAULT_SEEDS, DEFAULT_BATCH_SIZE = 5, 3, 64


@dataclass(frozen=True)
class SweepResult:
    """One sweep: `sizes` (widths or depths) and, per layer, the mean absolute
    activation by size and step (`activations[layer][i][t]`, seed mean)."""

    sweep: str
    sizes: tuple[int, ...]
    fixed: int  # the other dimension's value (the depth of a width sweep, and so on)
    activations: dict[str, list[list[float]]]

    def growth_exponents(self, step: int = -1) -> dict[str, float]:
        """Per layer, the slope of log(activation) against log(size) at one step
        (default the last): 0 is size-independent, 1 grows in proportion."""
        return {
            layer: growth_exponent(self.sizes, [values[step] for values in by_size])
            for layer, by_size in self.activations.items()
        }


def growth_exponent(sizes: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of log(values) on log(sizes); NaN where a value is not positive
    (a zero-initialised readout before its first step)."""
    x, y = np.log(np.asarray(sizes, float)), np.asarray(values, float)
    if len(x) < 2 or not np.all(y > 0):
        return math.nan
    return float(np.polyfit(x, np.log(y), 1)[0])


def sweep_configs(
    template: PatchTSTConfig, sweep: str, sizes: Sequence[int], fixed: int
) -> list[PatchTSTConfig]:
    """The shapes of a sweep, each relative to the sweep's smallest (the base shape)."""
    if sweep == "width":
        return [
            template.replace(
                d_model=d, n_layers=fixed, d_ff=4 * d, base_d_model=sizes[0], base_n_layers=fixed
            )
            for d in sizes
        ]
    return [
        template.replace(
            d_model=fixed, n_layers=n, d_ff=4 * fixed, base_d_model=fixed, base_n_layers=sizes[0]
        )
        for n in sizes
    ]


def check_arguments(
    widths: Sequence[int], depths: Sequence[int], steps: int, seeds: int, batch_size: int
) -> None:
    """Every argument of a check that needs no data, checked before any is built; the
    error names the argument."""
    for name, value in (("steps", steps), ("seeds", seeds), ("batch_size", batch_size)):
        if value < 1:
            raise InputError(f"{name} must be at least 1, got {value}", name)
    for sweep, sizes in (("width", widths), ("depth", depths)):
        if sizes:
            check_sizes(sizes, f"{sweep}s", N_HEADS if sweep == "width" else 1)


def check_sizes(sizes: Sequence[int], name: str, multiple_of: int = 1) -> tuple[int, ...]:
    """Sorted distinct positive sizes, at least two, each a multiple of `multiple_of`."""
    values = tuple(sorted(set(sizes)))
    if len(values) < 2 or values[0] < 1:
        raise InputError(f"need at least two positive sizes, got {list(sizes)}", name)
    bad = [v for v in values if v % multiple_of]
    if bad:
        raise InputError(f"{bad} not divisible by the {multiple_of} heads", name)
    return values


def coord_check(
    data: WindowDataset,
    parametrization: str,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    depths: Sequence[int] = DEFAULT_DEPTHS,
    steps: int = DEFAULT_STEPS,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    seeds: int = DEFAULT_SEEDS,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[SweepResult]:
    """The width sweep (at the smallest depth) and the depth sweep (at the smallest
    width) of one parametrization, on `data`'s training rows. Empty `depths` or
    `widths` skip that sweep."""
    check_arguments(widths, depths, steps, seeds, batch_size)
    rows = data.rows("train")
    if len(rows) < batch_size * steps:
        raise InputError(
            f"{len(rows)} training samples cannot fill {steps} batches of {batch_size}", "steps"
        )
    template = PatchTSTConfig(
        n_features=data.features.shape[1],
        context_days=data.context_days,
        n_heads=N_HEADS,
        dropout=0.0,
        parametrization=parametrization,
    )
    # The same batches for every shape and seed, drawn across the whole training span.
    order = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))]
    batches = [data.batch(order[t * batch_size : (t + 1) * batch_size]) for t in range(steps)]
    results = []
    for sweep, sizes in (("width", widths), ("depth", depths)):
        if not sizes:
            continue
        sizes = check_sizes(sizes, f"{sweep}s", N_HEADS if sweep == "width" else 1)
        # A width sweep at the smallest depth, a depth sweep at the smallest width.
        other = depths if sweep == "width" else widths
        fixed = min(other) if other else {"width": 2, "depth": DEFAULT_WIDTHS[0]}[sweep]
        per_size = []
        for config in sweep_configs(template, sweep, sizes, fixed):
            runs = [_activations(config, batches, learning_rate, seed) for seed in range(seeds)]
            per_size.append(np.mean(runs, axis=0))  # (layers, steps)
        activations = {
            layer: [[float(v) for v in size[k]] for size in per_size]
            for k, layer in enumerate(LAYERS)
        }
        results.append(SweepResult(sweep, sizes, fixed, activations))
    return results


def _activations(
    config: PatchTSTConfig,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    learning_rate: float,
    seed: int,
) -> np.ndarray:
    """Mean absolute activation of every layer before each of the steps: (layers, steps)."""
    torch.manual_seed(seed)
    model = PatchTST(config).train()
    optimizer = model.configure_optimizers(0.0, learning_rate, "cpu")
    seen: dict[str, list[float]] = {}

    def record(name: str):
        def hook(_module: Any, _inputs: Any, output: torch.Tensor) -> None:
            seen.setdefault(name, []).append(output.detach().abs().mean().item())

        return hook

    model.embed.register_forward_hook(record("embedding"))
    for block in model.blocks:
        block.attention.register_forward_hook(record("attention"))
        block.ff.register_forward_hook(record("feed_forward"))
    model.blocks[-1].register_forward_hook(record("residual"))
    model.norm.register_forward_hook(record("readout"))
    table = np.empty((len(LAYERS), len(batches)))
    for t, (x, y) in enumerate(batches):
        seen.clear()
        logits = model(x)
        seen["output"] = [logits.detach().abs().mean().item()]
        table[:, t] = [float(np.mean(seen[layer])) for layer in LAYERS]
        F.binary_cross_entropy_with_logits(logits, y).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return table


def coord_check_document(
    parametrization: str,
    results: list[SweepResult],
    steps: int,
    learning_rate: float,
    seeds: int,
    batch_size: int,
) -> dict[str, Any]:
    """The JSON `finscale coord-check` writes: the settings, each sweep's activations
    and its growth exponents at the last step."""
    return {
        "parametrization": parametrization,
        "steps": steps,
        "learning_rate": learning_rate,
        "seeds": seeds,
        "batch_size": batch_size,
        "n_heads": N_HEADS,
        "layers": list(LAYERS),
        "sweeps": {
            r.sweep: {**asdict(r), "growth_exponents": r.growth_exponents()} for r in results
        },
    }
