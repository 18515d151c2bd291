"""Is bf16 autocast faster than fp32 for a model on this CPU? Where does it start to pay?

    python benchmarks/cpu_precision.py [--budgets 20K,200K,2M] [--per-budget 5]
        [--steps 30] [--threads N]

For each budget of the `quick` preset, `--per-budget` architectures spread over the
grid's training FLOPs per sample (`estimate_flops`) are timed at the trainer's own
`OptimizerStep` (forward, backward, clipping, fused AdamW) on the bundled data's first
effective batch, in fp32 and under bf16 autocast, alternating rounds so that both see
the same machine state. Each line: the architecture, its MFLOP per sample, the median
milliseconds per step in each precision and their ratio (above 1: bf16 is faster).
`finscale.train.device.CPU_BF16_MIN_FLOPS_PER_SAMPLE` is where `dtype: auto` starts to
choose bf16 on a CPU with bf16 units; this prints the figures it rests on. On a CPU
without bf16 units bf16 is emulated and slower everywhere.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from finscale.config import load_study_config
from finscale.hpo import JOURNAL_FILE, StudySpec, prepare, training_configs
from finscale.model.patchtst import PatchTST, estimate_flops
from finscale.train.device import CPU_BF16_MIN_FLOPS_PER_SAMPLE, Precision
from finscale.train.trainer import DeviceBatches, OptimizerStep
from finscale.units import parse_budget

TRAINING_VALUES = {"learning_rate": 1e-3, "weight_decay": 0.01, "warmup_steps": 20, "dropout": 0.1}
ROUNDS = 3


def step_ms(step: OptimizerStep, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="20K,200K,2M")
    parser.add_argument("--per-budget", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    config = load_study_config("quick")
    cpu = torch.device("cpu")
    print(
        f"threads={torch.get_num_threads()} "
        f"bf16 from {CPU_BF16_MIN_FLOPS_PER_SAMPLE / 1e6:.0f} MFLOP/sample under dtype auto"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for budget in args.budgets.split(","):
            run = Path(tmp) / budget
            spec = StudySpec(
                config, parse_budget(budget), "p", run, str(run / JOURNAL_FILE), Path(tmp)
            )
            prepared = prepare(spec)
            data = prepared.dataset.windows()
            x, y = DeviceBatches.of(data, cpu)(data.rows("train")[: config.train.effective_batch])
            allowed = [a.index for a in prepared.space.allowed]
            order = sorted(allowed, key=lambda i: estimate_flops(prepared.grid[i].config))
            count = min(args.per_budget, len(order))
            picks = [order[round(k * (len(order) - 1) / max(1, count - 1))] for k in range(count)]
            for index in dict.fromkeys(picks):
                model_config, train_config = training_configs(
                    prepared.grid[index], prepared.planned[index], TRAINING_VALUES, config
                )
                steps = {}
                for dtype in ("fp32", "bf16"):
                    torch.manual_seed(0)
                    step = OptimizerStep(
                        PatchTST(model_config),
                        train_config,
                        cpu,
                        Precision(dtype, "asked"),
                        train_config.effective_batch,
                        1000,
                    )
                    step_ms(step, x, y, 3)  # warm-up: first-call allocations, kernel choice
                    steps[dtype] = step
                times: dict[str, list[float]] = {"fp32": [], "bf16": []}
                for _ in range(ROUNDS):
                    for dtype, step in steps.items():
                        times[dtype].append(step_ms(step, x, y, args.steps))
                fp32, bf16 = (statistics.median(times[d]) for d in ("fp32", "bf16"))
                c = model_config
                print(
                    f"budget={budget} d_model={c.d_model} n_layers={c.n_layers} "
                    f"n_heads={c.n_heads} params={prepared.grid[index].param_count} "
                    f"mflop_per_sample={estimate_flops(c) / 1e6:.1f} fp32_ms={fp32:.2f} "
                    f"bf16_ms={bf16:.2f} bf16_speedup={fp32 / bf16:.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
