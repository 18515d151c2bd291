"""K trials of one architecture trained as one batched model, beside K trained one by one.

    python benchmarks/batched_trials.py [--k 1,2,4,8,16] [--batch 128] [--steps 20]
        [--rounds 3] [--threads 1] [--device cpu] [--dtype fp32] [--budget 20K]
        [--arch d,L,h]

Issue 36's lever for tiny models: a study's trials of one architecture differ only
in their weights and training values, so K of them can train as one model whose
parameters are stacked along a leading model axis (`torch.func.stack_module_state`),
run by `vmap` over `functional_call`: one forward and one backward per step for all
K, with kernels K times wider, instead of K small ones.

The architecture is the median, by training FLOPs per sample, of the `quick`
preset's grid at `--budget` on its data shape (the architecture whose FLOPs
`ArchitectureGrid.median_flops_per_sample` names), with the preset's dropout;
`--arch d,L,h` takes another width, depth and head count on the same shape (the
preset's d_ff rule). Trial k has its own initial weights (seed k), learning rate and
weight decay (drawn log-uniform from the preset's search ranges, the same draws at
every K) and its own random batch each step, as K trials with their own seeds
shuffle the data differently. Both ways run the same steps on the same batches:

    sequential  K `PatchTST` models, each with the trainer's own `OptimizerStep`
                (forward, BCE with logits, backward, gradient clipping, fused AdamW
                with decay on matrices only, the learning-rate schedule)
    batched     one `BatchedTrials`: the K models stacked into one (K, P) tensor, a
                vmap'd forward (dropout drawn independently per model, the math
                attention kernel), one backward of the summed per-model losses, each
                model's gradient clipped to its own norm, and `BatchedAdamW` (torch's
                AdamW update on the (K, P) tensor with a learning rate and decay per
                model and per parameter group, a few kernels per step in all)

Before any timing, `faithfulness` trains K = 3 both ways for 3 steps with dropout off
and prints the largest difference of any weight, in float64 and in float32: the
batched model must be the K trainers, not a cheaper approximation of them. In
float64 they agree to ~1e-16; anything above `FLOAT64_TOLERANCE` (1e-12) stops the
run before timing. The float32 figure (~1e-6 to 1e-5) is rounding that Adam's
normalised first steps magnify, shown for scale.

Each row is one K; every figure is the median of `--rounds` rounds in which the two
ways alternate first, each after `--warmup` untimed steps. Columns:

    K                  trials trained together
    seq samples/s      K x batch / (seconds of one step of each of the K trainers)
    batched samples/s  K x batch / (seconds of one step of the batched model)
    speed-up           batched over sequential samples/s (above 1: batching earns)
    memory             on CUDA the allocator's peak during each way's round (largest
                       round); on a CPU the process's peak RSS so far (it only grows: a
                       row's rise over the previous row bounds what that K added)

`--threads` (default 1: the comparison with trials run one per core) sets torch's
threads and OMP_NUM_THREADS only when run as a script; imported, the module leaves
the environment alone. Eager on both sides (the trainer's default `train.compile`
off); the trainer's skip of a non-finite step and micro-batch accumulation are left
out of the batched model, which the benchmark does not need.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import math
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel

from finscale.config import TrainConfig, load_study_config
from finscale.data import tier_features
from finscale.model import PatchTST, PatchTSTConfig, build_grid, estimate_flops
from finscale.model.patchtst import parameter_groups
from finscale.train.device import Precision
from finscale.train.step import OptimizerStep, forward_context, learning_rate_factor
from finscale.units import format_budget, parse_budget

PRESET = "quick"
TOTAL_STEPS = 10**6  # the schedule's length: its cosine barely moves over a benchmark
BATCH_POOL = 4  # distinct random batches per model, cycled: memory stays small at K = 16
ADAM_BETAS = (0.9, 0.999)  # torch's AdamW defaults, as the trainer uses them
# Largest |batched - sequential| weight the float64 check accepts: it measures ~1e-16
# (rounding), and a real mistake ~1e-3 (the learning rates' scale), so 1e-12 parts
# the two by orders of magnitude either way.
FLOAT64_TOLERANCE = 1e-12


# ---------------------------------------------------------------- the setting


@dataclass(frozen=True)
class Trials:
    """What K trials of one architecture train with: weights seeded `seed + k`, and per
    trial a peak learning rate and a weight decay, (K,) each."""

    config: PatchTSTConfig
    learning_rates: tuple[float, ...]
    weight_decays: tuple[float, ...]
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0

    @property
    def k(self) -> int:
        return len(self.learning_rates)

    def models(
        self, device: torch.device, float_dtype: torch.dtype = torch.float32
    ) -> list[PatchTST]:
        models = []
        for k in range(self.k):
            torch.manual_seed(self.seed + k)
            models.append(PatchTST(self.config).to(device, float_dtype).train())
        return models

    def train_config(self, k: int, device: torch.device, dtype: str) -> TrainConfig:
        return TrainConfig(
            learning_rate=self.learning_rates[k],
            weight_decay=self.weight_decays[k],
            warmup_steps=self.warmup_steps,
            min_lr_ratio=self.min_lr_ratio,
            grad_clip=self.grad_clip,
            device=str(device),
            dtype=dtype,
        )


def log_uniform(low: float, high: float, n: int, seed: int) -> tuple[float, ...]:
    """`n` draws log-uniform in [low, high], as a search samples them; the first m of
    n draws are the m draws of the same seed."""
    u = torch.rand(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return tuple(math.exp(math.log(low) + (math.log(high) - math.log(low)) * x) for x in u)


def study_trials(k: int, config: PatchTSTConfig, grad_clip: float = 1.0) -> Trials:
    """K trials as the preset's search would draw them: learning rates and weight decays
    from its ranges."""
    search = load_study_config(PRESET).search
    return Trials(
        config,
        log_uniform(*search.learning_rate, k, seed=0),
        log_uniform(*search.weight_decay, k, seed=1),
        grad_clip=grad_clip,
    )


def preset_architecture(budget: str, arch: str | None = None) -> PatchTSTConfig:
    """The median architecture (by `estimate_flops`) of the preset's grid at `budget`, or
    `arch` ("d,L,h") on the same data shape with the preset's d_ff rule."""
    study = load_study_config(PRESET)
    grid = build_grid(
        parse_budget(budget),
        study.model,
        len(tier_features(study.data.tier)),
        study.data.context_days,
    )
    if arch is not None:
        d, layers, heads = map(int, arch.split(","))
        return grid.template.replace(
            d_model=d, n_layers=layers, n_heads=heads, d_ff=study.model.d_ff(d)
        )
    median = grid.median_flops_per_sample
    return next(a.config for a in grid.architectures if estimate_flops(a.config) == median)


def random_batches(
    k: int,
    batch: int,
    config: PatchTSTConfig,
    device: torch.device,
    float_dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`BATCH_POOL` pairs of inputs (K, batch, context_days, features) and 0/1 labels
    (K, batch): model k's batch of a step is [k] of that step's pair."""
    generator = torch.Generator().manual_seed(seed)
    shape = (k, batch, config.context_days, config.input_features)
    return [
        (
            torch.randn(shape, generator=generator, dtype=float_dtype).to(device),
            torch.randint(0, 2, (k, batch), generator=generator).float().to(device),
        )
        for _ in range(BATCH_POOL)
    ]


# ---------------------------------------------------------------- the batched model


def clip_per_model_(grad: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Scale each model's gradient, in place, to a norm of at most `max_norm`, as
    `torch.nn.utils.clip_grad_norm_` does for one model (coefficient max_norm /
    (norm + 1e-6), at most 1). `grad`: (K, P), every parameter of model k in row k.
    Returns the (K,) norms before clipping."""
    norms = grad.norm(dim=1)
    grad.mul_((max_norm / (norms + 1e-6)).clamp(max=1.0)[:, None])
    return norms


def adamw_update_(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    lr: torch.Tensor,
    weight_decay: torch.Tensor,
    step: int,
    eps: float,
    betas: tuple[float, float] = ADAM_BETAS,
) -> None:
    """torch's AdamW update of step `step` (1-based), in place, each element at its own
    rate and decay: `param`, `grad` and the moments (K, P); `lr` and `weight_decay`
    broadcast to them. Decoupled decay first, as torch does."""
    beta1, beta2 = betas
    param.mul_(1 - lr * weight_decay)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2**step)).add_(eps)
    param.sub_(lr / (1 - beta1**step) * exp_avg / denom)


class BatchedAdamW:
    """AdamW over K models' parameters held as one (K, P) tensor, as a fused optimizer
    holds them: a handful of kernels per step, whatever K and the parameter count.

    `lr_scales` and `decays` (P,) are each parameter's learning-rate factor and decay
    factor (its group's in `parameter_groups`: decay on matrices only, the
    parametrization's scales), `weight_decays` (K,) each model's decay, so row k is
    updated exactly as its own `configure_optimizers` would update model k.
    """

    def __init__(
        self,
        flat: torch.Tensor,
        lr_scales: torch.Tensor,
        decays: torch.Tensor,
        weight_decays: torch.Tensor,
        eps: float,
    ) -> None:
        self.flat = flat
        self.lr_scales = lr_scales
        self.decay = weight_decays[:, None] * decays  # (K, P): fixed for a run
        self.eps = eps
        self.exp_avg = torch.zeros_like(flat)
        self.exp_avg_sq = torch.zeros_like(flat)
        self.steps = 0

    @torch.no_grad()
    def step(self, learning_rates: torch.Tensor) -> None:
        """One update at (K,) learning rates (the schedule's, before group factors)."""
        self.steps += 1
        lr = learning_rates[:, None] * self.lr_scales
        adamw_update_(
            self.flat,
            self.flat.grad,
            self.exp_avg,
            self.exp_avg_sq,
            lr,
            self.decay,
            self.steps,
            self.eps,
        )
        self.flat.grad = None


def group_factors(model: PatchTST) -> dict[str, tuple[float, float]]:
    """Each parameter's (learning-rate factor, decay factor) by name: its group's in
    `parameter_groups` at rate 1 and decay 1, to multiply by a trial's values."""
    names = {id(p): name for name, p in model.named_parameters()}
    return {
        names[id(p)]: (group["lr_scale"], group["weight_decay"])
        for group in parameter_groups(model, 1.0, 1.0)
        for p in group["params"]
    }


class BatchedTrials:
    """K `PatchTST` models of one config trained as one: what `OptimizerStep` does for
    each, in one vmap'd forward and one backward. The models are copied, not changed.

    The stacked parameters (`stack_module_state`) live side by side in one (K, P)
    leaf, `flat`; each forward views it as the (K, ...) tensors `functional_call`
    takes, so backward leaves every gradient in one (K, P) tensor too.
    """

    def __init__(
        self, models: list[PatchTST], trials: Trials, device: torch.device, dtype: str
    ) -> None:
        params, self.buffers = stack_module_state(models)  # (K, ...) each
        self.shapes = {name: p.shape[1:] for name, p in params.items()}
        self.flat = torch.cat([p.detach().flatten(1) for p in params.values()], dim=1)
        self.flat.requires_grad_()
        self.base = copy.deepcopy(models[0]).to("meta")  # the code; its weights unused
        self.trials = trials
        self.device = device
        self.dtype = dtype
        # In the weights' dtype: a float32 rate would round a float64 check's updates.
        like = {"device": device, "dtype": self.flat.dtype}
        factors = group_factors(models[0])
        lr_scales, decays = (
            torch.cat(
                [torch.full((p[0].numel(),), factors[n][i], **like) for n, p in params.items()]
            )
            for i in (0, 1)
        )
        self.peak_lr = torch.tensor(trials.learning_rates, **like)
        self.optimizer = BatchedAdamW(
            self.flat,
            lr_scales,
            decays,
            torch.tensor(trials.weight_decays, **like),
            models[0].config.adam_eps,
        )
        self.forward = vmap(self._logits, randomness="different")

    def params(self) -> dict[str, torch.Tensor]:
        """The stacked parameters, (K, ...) each by name: views of `flat`."""
        views, start = {}, 0
        for name, shape in self.shapes.items():
            size = math.prod(shape)
            views[name] = self.flat[:, start : start + size].view(-1, *shape)
            start += size
        return views

    def _logits(self, params, buffers, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.base, (params, buffers), (x,))

    def __call__(self, inputs: torch.Tensor, labels: torch.Tensor) -> tuple[list, list]:
        """One step of every model: `inputs` (K, batch, days, features), `labels` (K,
        batch). Returns each model's mean loss and gradient norm, on the host."""
        # The math attention kernel: CPU flash attention has no vmap batching rule
        # (vmap would loop over the models); at a window's few tokens math is as fast.
        with forward_context(self.device, self.dtype), sdpa_kernel(SDPBackend.MATH):
            logits = self.forward(self.params(), self.buffers, inputs)
        losses = F.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none").mean(
            dim=1
        )
        # Each model's parameters get the gradient of its own loss alone.
        losses.sum().backward()
        t = self.trials
        if t.grad_clip > 0:
            norms = clip_per_model_(self.flat.grad, t.grad_clip)
        else:
            norms = torch.zeros_like(losses)
        factor = learning_rate_factor(
            self.optimizer.steps, t.warmup_steps, TOTAL_STEPS, t.min_lr_ratio
        )
        self.optimizer.step(self.peak_lr * factor)
        loss_values, norm_values = torch.stack([losses.detach(), norms.float()]).tolist()
        return loss_values, norm_values

    def weights(self, k: int) -> dict[str, torch.Tensor]:
        """Model k's parameters, by name."""
        return {name: p[k].detach() for name, p in self.params().items()}


def sequential_steps(
    models: list[PatchTST], trials: Trials, device: torch.device, dtype: str, batch: int
) -> list[OptimizerStep]:
    """The trainer's own step for each model, at its trial's values."""
    return [
        OptimizerStep(
            model,
            trials.train_config(k, device, dtype),
            device,
            Precision(dtype, "asked"),
            batch,
            TOTAL_STEPS,
        )
        for k, model in enumerate(models)
    ]


# ---------------------------------------------------------------- faithfulness


@dataclass(frozen=True)
class Faithfulness:
    """How far the batched models ended from the K trainers: the largest |difference|
    of any weight of any model, and the largest distance any weight moved from its
    initial value (the scale the difference is small against)."""

    max_abs_difference: float
    max_movement: float


def faithfulness(
    config: PatchTSTConfig,
    k: int = 3,
    steps: int = 3,
    batch: int = 16,
    grad_clip: float = 1.0,
    device: str = "cpu",
    float_dtype: torch.dtype = torch.float64,
) -> Faithfulness:
    """Train `k` trials of `config` with dropout off for `steps` steps both ways, from the
    same initial weights on the same batches, and compare model by model.

    Both run the math attention kernel. In float64 (the default) the two agree to
    rounding (~1e-16 at 20K); a real mistake shows far above it: a learning rate
    shared by the models ~8e-3, one clipping norm for all ~9e-4, decay on vectors
    too ~2e-6. In float32 they differ by up to ~1e-5 after 3 steps: rounding of the
    summation order, which Adam's normalised first steps magnify where a gradient
    is near zero (so a float32 check could not see the decay mistake)."""
    config = config.replace(dropout=0.0, attention_dropout=0.0, head_dropout=0.0)
    trials = study_trials(k, config, grad_clip)
    target = torch.device(device)
    models = trials.models(target, float_dtype)
    initial = [{n: p.detach().clone() for n, p in m.named_parameters()} for m in models]
    batched = BatchedTrials(models, trials, target, "fp32")
    sequential = sequential_steps(models, trials, target, "fp32", batch)
    pool = random_batches(k, batch, config, target, float_dtype)
    # Both under the math attention kernel, the batched model's: the kernel is not what
    # is checked, and the trainer's float32 loss would round another kernel's last-bit
    # differences into float32 ones.
    with sdpa_kernel(SDPBackend.MATH):
        for x, y in itertools.islice(itertools.cycle(pool), steps):
            batched(x, y)
            for i, step in enumerate(sequential):
                step(x[i], y[i])
    difference = movement = 0.0
    for i, model in enumerate(models):
        mine = batched.weights(i)
        for name, p in model.named_parameters():
            difference = max(difference, (mine[name] - p).abs().max().item())
            movement = max(movement, (p - initial[i][name]).abs().max().item())
    return Faithfulness(difference, movement)


# ---------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timing:
    samples_per_second: float  # of all K models together
    peak_bytes: int  # CUDA: the allocator's peak during the run; CPU: process peak RSS


def peak_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def time_way(
    way: str, trials: Trials, device: torch.device, dtype: str, batch: int, steps: int, warmup: int
) -> Timing:
    """Samples/s of `steps` steps of all K trials, one way ("sequential" or "batched"),
    after `warmup` untimed steps; every step ends with the losses on the host."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    models = trials.models(device)
    pool = random_batches(trials.k, batch, trials.config, device)
    if way == "batched":
        batched = BatchedTrials(models, trials, device, dtype)

        def one(x: torch.Tensor, y: torch.Tensor) -> None:
            batched(x, y)
    else:
        sequential = sequential_steps(models, trials, device, dtype, batch)

        def one(x: torch.Tensor, y: torch.Tensor) -> None:
            for i, step in enumerate(sequential):
                step(x[i], y[i])

    batches = itertools.cycle(pool)
    for _ in range(warmup):
        one(*next(batches))
    started = time.perf_counter()
    for _ in range(steps):
        one(*next(batches))
    seconds = (time.perf_counter() - started) / steps
    return Timing(trials.k * batch / seconds, peak_bytes(device))


# ---------------------------------------------------------------- the table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", default="1,2,4,8,16", help="comma-separated trial counts")
    parser.add_argument("--batch", type=int, default=128, help="samples per model per step")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is shown")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (applied when run as a script)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--budget", default="20K", help="the quick preset's grid to take")
    parser.add_argument("--arch", default=None, help="d,L,h instead of the grid's median")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    config = preset_architecture(args.budget, args.arch)
    ks = [int(k) for k in args.k.split(",") if k.strip()]
    n_params = PatchTST(config).num_parameters()
    print(
        f"{PRESET} {format_budget(parse_budget(args.budget))}: d{config.d_model}/"
        f"L{config.n_layers}/h{config.n_heads} d_ff={config.d_ff} params={n_params:,} "
        f"dropout={config.dropout}; batch {args.batch}, {args.steps} steps after "
        f"{args.warmup}, median of {args.rounds} rounds; {device} {args.dtype}, "
        f"threads={torch.get_num_threads()}",
        flush=True,
    )
    exact = faithfulness(config, device=args.device)
    rounded = faithfulness(config, device=args.device, float_dtype=torch.float32)
    print(
        f"faithfulness (K=3, 3 steps, dropout off): max |batched - sequential| weight "
        f"{exact.max_abs_difference:.1e} in float64 (tolerance {FLOAT64_TOLERANCE:.0e}), "
        f"{rounded.max_abs_difference:.1e} in float32; weights moved up to "
        f"{exact.max_movement:.1e}",
        flush=True,
    )
    if not exact.max_abs_difference <= FLOAT64_TOLERANCE:
        print("the batched model does not train as the K trainers do: nothing timed")
        return 1
    print()
    print("| K | seq samples/s | batched samples/s | speed-up | memory |")
    print("|---:|---:|---:|---:|---|")
    for k in ks:
        trials = study_trials(k, config)
        runs: dict[str, list[Timing]] = {"sequential": [], "batched": []}
        for r in range(args.rounds):
            ways = list(runs) if r % 2 == 0 else list(reversed(runs))
            for way in ways:
                runs[way].append(
                    time_way(way, trials, device, args.dtype, args.batch, args.steps, args.warmup)
                )
        seq, bat = (statistics.median(t.samples_per_second for t in runs[w]) for w in runs)
        print(
            f"| {k} | {seq:,.0f} | {bat:,.0f} | {bat / seq:.2f} | {memory_cell(runs, device)} |",
            flush=True,
        )
    return 0


def memory_cell(runs: dict[str, list[Timing]], device: torch.device) -> str:
    mib = {way: max(t.peak_bytes for t in timings) / 2**20 for way, timings in runs.items()}
    if device.type == "cuda":
        return f"seq {mib['sequential']:,.1f} MiB, batched {mib['batched']:,.1f} MiB"
    return f"RSS {max(mib.values()):,.0f} MiB"


if __name__ == "__main__":
    arguments = parse_args()
    # Threads only when run as a script: imported (by a test), the module must not
    # change the importer's threads or those of its later subprocesses.
    os.environ["OMP_NUM_THREADS"] = str(arguments.threads)
    torch.set_num_threads(arguments.threads)
    sys.exit(main(sys.argv[1:]))
