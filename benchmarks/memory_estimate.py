"""Print the memory planner's estimate against the measured peak of real training.

    python benchmarks/memory_estimate.py [--device cpu|cuda] [--dtype fp32,bf16]

Each architecture trains a few optimizer steps of the trainer's `OptimizerStep`
in a fresh subprocess (fused AdamW, gradients freed after each step, bf16
autocast when asked, gradient accumulation when the micro-batch is smaller
than the batch). Measured peak: on CPU the peak RSS of the subprocess minus its RSS
before the model is built; on CUDA `torch.cuda.max_memory_allocated`. Each
line prints estimate, measured and relative error; targets are 20% on CPU for
models of 1M parameters and up, 10% on CUDA.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

# (d_model, n_layers, n_heads, micro_batch, accumulation_steps): small to ~100M
# parameters, shallow-wide to deep-narrow, with and without accumulation.
CASES = [
    (64, 2, 8, 128, 1),
    (64, 48, 8, 128, 1),
    (128, 10, 8, 128, 1),
    (256, 2, 8, 128, 1),
    (256, 8, 8, 64, 2),
    (384, 12, 8, 32, 4),
    (512, 4, 8, 128, 1),
    (768, 6, 8, 256, 1),
    (1024, 8, 16, 16, 8),
]


def train_steps(config, micro_batch: int, accumulation_steps: int, steps: int, device, dtype):
    """`steps` optimizer steps of the trainer's `OptimizerStep` over groups of
    micro_batch x accumulation_steps samples."""
    import torch

    from finscale.config import TrainConfig
    from finscale.model import PatchTST
    from finscale.train.device import Precision
    from finscale.train.step import OptimizerStep

    group = micro_batch * accumulation_steps
    x = torch.randn(group, config.context_days, config.n_features, device=device)
    y = torch.randint(0, 2, (group,), device=device).float()
    # Built where it trains: a 2B model initialised on the CPU first would take
    # minutes and its size again in RAM.
    with device:
        model = PatchTST(config).train()
    train_config = TrainConfig(learning_rate=1e-4, warmup_steps=0, effective_batch=group)
    step = OptimizerStep(
        model, train_config, device, Precision(dtype, "benchmark"), micro_batch, 10
    )
    for _ in range(steps):
        step(x, y)


def child(args: argparse.Namespace) -> None:
    import torch

    from finscale.model import PatchTSTConfig

    torch.manual_seed(0)
    device = torch.device(args.device)
    config = PatchTSTConfig.from_dict(json.loads(args.config))
    # The baseline is taken after a tiny model has trained, so that library code
    # paged in by the first forward/backward/step is not charged to the model.
    tiny = config.replace(d_model=16, n_layers=1, n_heads=2, d_ff=64)
    train_steps(tiny, 2, 2, 2, device, args.dtype)
    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    train_steps(config, args.micro_batch, args.accumulation_steps, args.steps, device, args.dtype)
    if device.type == "cuda":
        measured = torch.cuda.max_memory_allocated(device)
    else:
        measured = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline_kib) * 1024
    print(json.dumps({"measured_bytes": measured}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--micro-batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--accumulation-steps", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.dtype = args.dtype.split(",")[0]
        child(args)
        return

    from finscale.model import PatchTSTConfig, count_parameters
    from finscale.model.memory import estimate_training_memory
    from finscale.units import format_bytes

    print(f"device={args.device} steps={args.steps} (measured: fresh subprocess per line)")
    errors = []
    for dtype in args.dtype.split(","):
        for d_model, n_layers, n_heads, micro_batch, steps in CASES:
            config = PatchTSTConfig(
                d_model=d_model, n_layers=n_layers, n_heads=n_heads, d_ff=4 * d_model
            )
            estimate = estimate_training_memory(
                config, micro_batch, dtype, args.device, steps
            ).peak_bytes
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    "--device",
                    args.device,
                    "--dtype",
                    dtype,
                    "--steps",
                    str(args.steps),
                    "--config",
                    config.to_json(),
                    "--micro-batch",
                    str(micro_batch),
                    "--accumulation-steps",
                    str(steps),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            measured = json.loads(out.stdout.strip().splitlines()[-1])["measured_bytes"]
            error = estimate / measured - 1
            n_params = count_parameters(config)
            if n_params >= 1_000_000:
                errors.append(abs(error))
            print(
                f"arch d={d_model} L={n_layers} h={n_heads} params={n_params} dtype={dtype} "
                f"micro_batch={micro_batch} accumulation={steps} "
                f"estimate={format_bytes(estimate)} measured={format_bytes(measured)} "
                f"error={error:+.1%}",
                flush=True,
            )
    if errors:
        print(f"worst |error| for models >= 1M parameters: {max(errors):.1%}")


if __name__ == "__main__":
    main()
