"""Training throughput of finscale's trainer beside the anchor, in one run.

    python benchmarks/train_throughput.py [--anchor ../shared/anchors/seed_baseline.py]
        [--dtype auto,fp32] [--device cpu] [--batch 128] [--steps 8]

For each architecture the anchor (an eager fp32 trainer built the way the
original system was; outside this repository, never copied into it) runs in
a subprocess, then finscale's `OptimizerStep` on the same shapes, alternating
for several rounds so that both see the same machine state (a shared 2-core
machine varies by +-20% between runs; each line is the median). Both print

    arch d=.. L=.. h=.. params=.. samples/s=.. GFLOP/s=.. of_peak=..

finscale's figures are the trainer's own: `PatchTST.estimate_flops` (matrix
products counted exactly, as its records count them) and `estimate_mfu`
against the peak. The anchor's formula (6 x body parameters x tokens + 12 x
layers x tokens^2 x d_model per sample, body = parameters - head weight -
position table) counts biases and norms as products and the embedding's
backward twice: 0.8% to 2.5% above finscale's count for the default
architectures, so compare samples/s for speed and of_peak for efficiency.
On CPU the peak is this machine's fp32 matmul peak measured as the anchor
measures it (1024^2, the mean of 10, best of 5); on CUDA the data-sheet peak
of `finscale.train.device.peak_flops` at the run's dtype. A ratio line per
architecture compares samples/s with the target: 3x for d_model >= 128,
2x for the deep-narrow 64/48/8. `time_optimizer_step` also times the trainer for `gpu_check.py`.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from finscale.config import TrainConfig
from finscale.model import PatchTST, PatchTSTConfig, estimate_mfu
from finscale.train.device import peak_flops, resolve_hardware
from finscale.train.step import OptimizerStep

ARCHITECTURES = ["64,48,8", "128,10,8", "256,2,8", "512,4,8"]
DEFAULT_ANCHOR = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "seed_baseline.py"


def matmul_peak_gflops(n: int = 1024, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 / ((time.perf_counter() - started) / repeats) / 1e9


@dataclass(frozen=True)
class StepTiming:
    """One trainer's optimizer steps on one architecture, timed."""

    params: int
    samples_per_second: float
    flops_per_second: float  # from `estimate_flops`: matrix products only
    warmup_seconds: float  # the warm-up steps, compilation included
    dtype: str


def patchtst_config(args, spec: str) -> PatchTSTConfig:
    """The PatchTST of "d,L,h" on the data shape of `args` (features, context, patch,
    stride), d_ff = 4 d as the anchor builds it."""
    d, n_layers, h = map(int, spec.split(","))
    return PatchTSTConfig(
        n_features=args.features,
        context_days=args.context,
        patch_len=args.patch,
        stride=args.stride,
        d_model=d,
        n_layers=n_layers,
        n_heads=h,
        d_ff=4 * d,
    )


def time_optimizer_step(
    config: PatchTSTConfig,
    train_config: TrainConfig,
    batch: int,
    steps: int,
    warmup: int = 2,
    compile_backend: str | None = None,
) -> StepTiming:
    """Samples/s of finscale's `OptimizerStep` on random data after `warmup` steps.

    `compile_backend`: None compiles as `train_config.compile` says (inductor); a
    name compiles the model with that torch.compile backend instead ("aot_eager"
    traces forward and backward without generating code: cheap on a CPU)."""
    hardware = resolve_hardware(train_config)
    device = hardware.device
    torch.manual_seed(0)
    model = PatchTST(config).to(device).train()
    step = OptimizerStep(model, train_config, device, hardware.precision, batch, 10**6)
    if compile_backend is not None:
        step.forward = torch.compile(model, backend=compile_backend)
    x = torch.randn(batch, config.context_days, config.n_features, device=device)
    y = torch.randint(0, 2, (batch,), device=device).float()
    started = time.perf_counter()
    for _ in range(warmup):
        step(x, y)
    warmup_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(steps):
        step(x, y)  # returns host floats: every step is synchronised
    seconds = (time.perf_counter() - started) / steps
    return StepTiming(
        model.num_parameters(),
        batch / seconds,
        model.estimate_flops(batch) / seconds,
        warmup_seconds,
        hardware.dtype,
    )


def finscale_line(args, spec: str, dtype: str, cpu_peak: float) -> tuple[str, float]:
    config = patchtst_config(args, spec)
    train_config = TrainConfig(learning_rate=1e-4, warmup_steps=0, device=args.device, dtype=dtype)
    hardware = resolve_hardware(train_config)
    peak = cpu_peak if hardware.device.type == "cpu" else hardware.peak_flops_per_second
    timing = time_optimizer_step(config, train_config, args.batch, args.steps)
    mfu = estimate_mfu(timing.flops_per_second, peak)
    line = (
        f"arch d={config.d_model} L={config.n_layers} h={config.n_heads} "
        f"params={timing.params} samples/s={timing.samples_per_second:.0f} "
        f"GFLOP/s={timing.flops_per_second / 1e9:.1f} "
        f"of_peak={'n/a' if mfu is None else f'{mfu:.2f}'}"
    )
    return f"{line} dtype={timing.dtype}", timing.samples_per_second


def anchor_line(args, spec: str) -> tuple[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            str(args.anchor),
            "--batch",
            str(args.batch),
            "--steps",
            str(args.steps),
            "--features",
            str(args.features),
            "--context",
            str(args.context),
            "--patch",
            str(args.patch),
            "--stride",
            str(args.stride),
            "--arch",
            spec,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("arch "))
    samples = float(re.search(r"samples/s=([0-9.]+)", line).group(1))
    return line, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchor", type=Path, default=DEFAULT_ANCHOR)
    parser.add_argument("--no-anchor", action="store_true", help="finscale lines only")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto", help="comma-separated: auto, fp32, bf16")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="repeats; the median is shown")
    parser.add_argument("--features", type=int, default=25)
    parser.add_argument("--context", type=int, default=60)
    parser.add_argument("--patch", type=int, default=16)
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--arch", nargs="*", default=ARCHITECTURES)
    args = parser.parse_args()
    if not args.no_anchor and not args.anchor.exists():
        parser.error(f"anchor not found at {args.anchor}; pass --anchor PATH or --no-anchor")
    if args.device != "cpu" and not args.no_anchor:
        print("note: the anchor runs on CPU only; compare GPU runs with --no-anchor figures")

    # A peak is a maximum: the best of a few measurements, so that one slow sample on
    # a shared machine does not inflate every of_peak figure.
    cpu_peak = max(matmul_peak_gflops() for _ in range(5)) * 1e9
    print(
        f"fp32 matmul peak: {cpu_peak / 1e9:.0f} GFLOP/s, threads={torch.get_num_threads()}",
        flush=True,
    )
    if args.device != "cpu":
        device = resolve_hardware(TrainConfig(device=args.device)).device
        for dtype in ("fp32", "bf16"):
            peak, source = peak_flops(device, dtype)
            shown = "unknown" if peak is None else f"{peak / 1e12:.1f} TFLOP/s"
            print(f"{device} {dtype} peak: {shown} ({source})", flush=True)
    print(f"each line: the median of {args.rounds} rounds, anchor and finscale alternating")
    dtypes = args.dtype.split(",")
    for spec in args.arch:
        d = int(spec.split(",")[0])
        target = 3.0 if d >= 128 else 2.0
        runs: dict[str, list[tuple[str, float]]] = {name: [] for name in ["anchor", *dtypes]}
        for _ in range(args.rounds):
            if not args.no_anchor:
                runs["anchor"].append(anchor_line(args, spec))
            for dtype in dtypes:
                runs[dtype].append(finscale_line(args, spec, dtype, cpu_peak))
        anchor = median_run(runs["anchor"]) if not args.no_anchor else None
        if anchor:
            print(f"anchor   {anchor[0]}", flush=True)
        for dtype in dtypes:
            line, samples = median_run(runs[dtype])
            print(f"finscale {line}", flush=True)
            if anchor:
                ratio = samples / anchor[1]
                verdict = "meets" if ratio >= target else "below"
                print(
                    f"ratio    arch {spec} {dtype}: {ratio:.2f}x the anchor "
                    f"({verdict} the {target}x target)",
                    flush=True,
                )


def median_run(runs: list[tuple[str, float]]) -> tuple[str, float]:
    """The run with the median samples/s (the lower middle one of an even count)."""
    return sorted(runs, key=lambda run: run[1])[(len(runs) - 1) // 2]


if __name__ == "__main__":
    main()
