"""A GPU check in one command, under 8 minutes: what finscale does on a CUDA card.

    python benchmarks/gpu_check.py [--anchor ../shared/anchors/seed_baseline.py]
        [--budget-s 420] [--batch 128] [--search-trials 4] [--search-epochs 5]
    python benchmarks/gpu_check.py --dry-run     # every code path on CPU, tiny shapes

Without a CUDA device it prints one line saying so and exits 0. On a CUDA card it
prints a header (card, torch, compute dtype, the card's data-sheet peak, the memory
limit the planner plans for) and three tables:

1. Throughput at ~20M (d512/L6/h8) and ~200M (d1024/L16/h16) parameters, batch 128
   (a study's effective batch), on the default data shape (25 features x 60 days,
   patch 16 stride 8: 6 tokens). The anchor is the original system's model and step
   (`SeedPatchTST` and the step of ../shared/anchors/seed_baseline.py, loaded from
   there, never copied), run eager on the card in fp32 as it ran, and under bf16
   autocast; finscale is its trainer's `OptimizerStep` under bf16 autocast, eager
   and with `torch.compile` (inductor, as `train.compile` does). samples/s: after
   the warm-up steps (compilation included in `warm-up s`), synchronised. `x
   anchor`: samples/s over the anchor's fp32 eager samples/s at the same shape.
   FLOP/s counts matrix products by finscale's `estimate_flops` for every row (the
   anchor computes the same products); MFU is that over the card's dense bf16 peak
   (`finscale.train.device.CUDA_PEAK_FLOPS`: H100 SXM 989, H100 PCIe 756, H200
   989, A100 312, L4 121 TFLOP/s, ...). An unknown card is named and MFU left out.
2. Memory, at 20M, 200M and 2B (d2048/L48/h16, 2.4B, the 2B grid's largest): the
   micro-batch the planner (`plan_batch`) chooses within the card's memory limit for
   an effective batch of up to 65,536 (the largest micro-batch that fits), trained 3
   optimizer steps of 2 accumulated micro-batches when the plan accumulates (every
   gradient alive: the plan's worst case) by `memory_estimate.py`'s child in a fresh
   process; the estimate against `torch.cuda.max_memory_allocated`. A model that
   does not fit at micro-batch 1 shows its plan alone.
3. Search: a 4-trial study of the `paper` preset at 20M on the bundled data, run as
   `hpo_quick.py` runs one, 5 epochs a trial at most: trials/hour (trials finished
   over the study's wall time, data build included), with epochs and the mean
   seconds of a training epoch, so the rate at other epoch counts can be judged.

Each part has a share of `--budget-s` (55%, 20%, the rest; what a part leaves
passes to the next) and runs in child processes stopped at its deadline, so the
whole stays within the budget plus start-up; a row cut short says so.

`--dry-run` runs the same code on the CPU: tiny models (d16/L1, d32/L2, d48/L2) in
place of 20M/200M/2B, bf16 autocast, torch.compile with the `aot_eager` backend
(forward and backward traced, no code generated), one thread per child (on a
loaded machine more only spin), MFU against this CPU's measured bf16 matmul peak,
the estimate against the child's peak RSS growth (`memory_estimate.py`'s CPU
measure; mostly noise at these sizes), and a 2-trial `quick` search at 20K with 1
epoch on 2016-2019. Its figures check code paths, not speed;
`tests/benchmarks/test_gpu_check.py` runs it.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from finscale.config import TrainConfig
from finscale.model import PatchTSTConfig, count_parameters, estimate_flops, plan_batch
from finscale.model.memory import ArchitectureTooLarge, estimate_training_memory
from finscale.train.device import MemoryLimit, cpu_has_bf16, default_memory_limit, peak_flops
from finscale.units import architecture_label, format_bytes, parse_budget

BENCHMARKS = Path(__file__).resolve().parent


def sibling(name: str) -> ModuleType:
    """A benchmark beside this one, imported by its path (benchmarks/ is no package)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up by name
        spec.loader.exec_module(module)
    return sys.modules[name]


throughput = sibling("train_throughput")
hpo_quick = sibling("hpo_quick")

# Budget -> ("d,L,h" measured on a card, its tiny stand-in in the dry run).
MODELS = {
    "20M": ("512,6,8", "16,1,2"),
    "200M": ("1024,16,16", "32,2,4"),
    "2B": ("2048,48,16", "96,2,4"),
}
THROUGHPUT_MODELS = ("20M", "200M")
FIRST_MODEL_SHARE = 0.4  # of the throughput part's time: the 200M compile takes longer
# Where each part's deadline falls, as a share of the budget from the start.
PART_ENDS = {"throughput": 0.55, "memory": 0.75, "search": 1.0}
MIN_CHILD_SECONDS = 5.0  # with less left, a child is not started
SEARCH_MARGIN_SECONDS = 20.0  # no new epoch this close to the search's deadline


@dataclass(frozen=True)
class Settings:
    """What one check runs: a card's sizes by default, or the dry run's tiny ones
    (`DRY_RUN`). Children get it as JSON (`to_json`, `from_json`)."""

    device: str = "cuda"
    dtype: str = "bf16"
    dry_run: bool = False
    anchor: str | None = None  # the anchor's path; None: not found, its rows left out
    batch: int = 128
    steps: int = 20  # timed optimizer steps per throughput row
    warmup: int = 3
    compile_backend: str = "inductor"  # as train.compile, or a cheaper backend
    max_micro_batch: int = 65536
    memory_steps: int = 3
    search_budget: str = "20M"
    search_preset: str = "paper"
    search_trials: int = 4
    search_overrides: dict[str, Any] = field(default_factory=lambda: {"train.max_epochs": 5})
    child_threads: int | None = None  # OMP_NUM_THREADS of every child; None: their default

    def arch(self, model: str) -> str:
        return MODELS[model][1 if self.dry_run else 0]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return cls(**json.loads(text))


DRY_RUN = Settings(
    device="cpu",
    dry_run=True,
    batch=8,
    steps=2,
    warmup=1,
    compile_backend="aot_eager",
    max_micro_batch=32,
    memory_steps=2,
    search_budget="20K",
    search_preset="quick",
    search_trials=2,
    search_overrides={"train.max_epochs": 1, "data.start": "2016-01-01", "data.end": "2019-12-31"},
    child_threads=1,
)


def settings_of(args: argparse.Namespace) -> Settings:
    anchor = str(args.anchor) if args.anchor.exists() else None
    if args.dry_run:
        # bf16 where the CPU has bf16 units; elsewhere it is emulated, and measuring
        # its matmul peak alone takes seconds a process.
        dtype = "bf16" if cpu_has_bf16() else "fp32"
        return dataclasses.replace(DRY_RUN, dtype=dtype, anchor=anchor)
    return Settings(
        dtype="bf16" if torch.cuda.is_bf16_supported() else "fp32",
        anchor=anchor,
        batch=args.batch,
        steps=args.steps,
        max_micro_batch=args.max_micro_batch,
        search_trials=args.search_trials,
        search_overrides={"train.max_epochs": args.search_epochs},
    )


def architecture(spec: str) -> PatchTSTConfig:
    """PatchTST "d,L,h" on the default data shape, d_ff = 4 d as the anchor builds it."""
    d, n_layers, n_heads = map(int, spec.split(","))
    return PatchTSTConfig(d_model=d, n_layers=n_layers, n_heads=n_heads, d_ff=4 * d)


# ---------------------------------------------------------------- child processes


def emit(row: dict[str, Any]) -> None:
    """A child's result: one JSON line on stdout, flushed, so that a child stopped at
    its deadline still hands back the rows it finished."""
    print(json.dumps(row), flush=True)


def run_child(
    command: list[str], seconds: float, threads: int | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Runs `command` in its own process group for at most `seconds`; returns the JSON
    objects it printed, one a line, and None or a note on why it stopped short."""
    if seconds < MIN_CHILD_SECONDS:
        return [], "skipped: time budget spent"
    env = None if threads is None else {**os.environ, "OMP_NUM_THREADS": str(threads)}
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its compile workers stop with it
    )
    try:
        out, err = process.communicate(timeout=seconds)
        note = None
        if process.returncode != 0:
            lines = [line for line in err.splitlines() if line.strip()]
            last = lines[-1] if lines else f"exit status {process.returncode}"
            note = ("out of memory: " if "out of memory" in err.lower() else "failed: ") + last
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        note = f"stopped at its time budget ({seconds:.0f} s)"
    rows = []
    for line in out.splitlines():
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows, note


def run_part(
    settings: Settings, part: str, argument: str, seconds: float
) -> tuple[list[dict[str, Any]], str | None]:
    """This script as a child running `part` of `settings` (see `run_child`)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", part, argument]
    return run_child([*command, "--settings", settings.to_json()], seconds, settings.child_threads)


# ---------------------------------------------------------------- throughput


def load_anchor(path: str) -> ModuleType:
    """The anchor's module, imported from its file (it stays outside this repository)."""
    spec = importlib.util.spec_from_file_location("seed_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_anchor_step(
    anchor: ModuleType, config: PatchTSTConfig, device: str, dtype: str, batch: int, steps: int
) -> tuple[float, int]:
    """(samples/s, parameters) of the anchor's model and step (AdamW at its defaults,
    BCE, zero_grad, backward, step) as its `main` runs them, on `device`, under bf16
    autocast when `dtype` is bf16; after two warm-up steps, as the anchor takes."""
    torch.manual_seed(0)
    c = config
    shape = (c.n_features, c.context_days, c.patch_len, c.stride)
    model = anchor.SeedPatchTST(*shape, c.d_model, c.n_layers, c.n_heads, c.d_ff).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-4)
    x = torch.randn(batch, c.context_days, c.n_features, device=device)
    y = torch.randint(0, 2, (batch, 1), device=device).float()

    def step() -> None:
        with torch.autocast(torch.device(device).type, torch.bfloat16, enabled=dtype == "bf16"):
            logits = model(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    params = sum(p.numel() for p in model.parameters())
    return batch * steps / (time.perf_counter() - started), params


def child_throughput(settings: Settings, model: str) -> None:
    """Every throughput row of one model, each emitted once measured; the compiled
    run last, as the one most likely to reach the deadline."""
    config = architecture(settings.arch(model))
    batch = settings.batch

    def row(trainer, dtype, compiled, params, samples, flops, warmup=None) -> None:
        emit({"model": model, "arch": architecture_label(config), "batch": batch,
              "trainer": trainer, "dtype": dtype, "compile": compiled, "params": params,
              "samples_per_s": samples, "flops_per_s": flops, "warmup_s": warmup})  # fmt: skip

    if settings.anchor:
        anchor = load_anchor(settings.anchor)
        for dtype in dict.fromkeys(["fp32", settings.dtype]):
            samples, params = time_anchor_step(
                anchor, config, settings.device, dtype, batch, settings.steps
            )
            row("anchor", dtype, "no", params, samples, estimate_flops(config) * samples)
    for compiled in (False, True):
        inductor = compiled and settings.compile_backend == "inductor"
        train_config = TrainConfig(
            learning_rate=1e-4,
            warmup_steps=0,
            device=settings.device,
            dtype=settings.dtype,
            compile=inductor,
        )
        backend = settings.compile_backend if compiled and not inductor else None
        t = throughput.time_optimizer_step(
            config, train_config, batch, settings.steps, settings.warmup, backend
        )
        how = settings.compile_backend if compiled else "no"
        row("finscale", t.dtype, how, t.params, t.samples_per_second, t.flops_per_second,
            t.warmup_seconds)  # fmt: skip


def throughput_rows(settings: Settings, peak: float | None, deadline: float) -> list[dict]:
    rows = []
    for i, model in enumerate(THROUGHPUT_MODELS):
        share = FIRST_MODEL_SHARE if i == 0 else 1 / (len(THROUGHPUT_MODELS) - i)
        seconds = (deadline - time.time()) * share
        found, note = run_part(settings, "throughput", model, seconds)
        anchor = next((r for r in found if r["trainer"] == "anchor" and r["dtype"] == "fp32"), None)
        for row in found:
            row["mfu"] = None if peak is None else row["flops_per_s"] / peak
            row["x_anchor"] = anchor and row["samples_per_s"] / anchor["samples_per_s"]
        rows += found
        if note:
            label = architecture_label(architecture(settings.arch(model)))
            rows.append({"model": model, "arch": label, "note": note})
    return rows


# ---------------------------------------------------------------- memory


def memory_rows(settings: Settings, limit_bytes: int, deadline: float) -> list[dict]:
    device_type = torch.device(settings.device).type
    rows = []
    for model in MODELS:
        config = architecture(settings.arch(model))
        row: dict[str, Any] = {
            "model": model,
            "arch": architecture_label(config),
            "params": count_parameters(config),
            "dtype": settings.dtype,
        }
        rows.append(row)
        try:
            plan = plan_batch(
                config, settings.max_micro_batch, limit_bytes, settings.dtype, device_type
            )
        except ArchitectureTooLarge as exc:
            row["micro_batch"], row["estimate"] = 1, exc.memory_bytes
            row["note"] = f"does not fit at micro-batch 1 (limit {format_bytes(limit_bytes)})"
            continue
        # Accumulating, every gradient is alive from the second micro-batch on: two
        # micro-batches reach the plan's peak.
        accumulation = min(plan.accumulation_steps, 2)
        row["micro_batch"], row["accumulation"] = plan.micro_batch, accumulation
        row["estimate"] = estimate_training_memory(
            config, plan.micro_batch, settings.dtype, device_type, accumulation
        ).peak_bytes
        flags = (
            f"--child --device {device_type} --dtype {settings.dtype} "
            f"--steps {settings.memory_steps} --micro-batch {plan.micro_batch} "
            f"--accumulation-steps {accumulation}"
        )
        script = str(BENCHMARKS / "memory_estimate.py")
        command = [sys.executable, script, *flags.split(), "--config", config.to_json()]
        found, note = run_child(command, deadline - time.time(), settings.child_threads)
        if found:
            row["measured"] = found[-1]["measured_bytes"]
            if row["measured"] > 0:
                row["error"] = row["estimate"] / row["measured"] - 1
        if note:
            row["note"] = ("plan only: " if note.startswith("skipped") else "") + note
    return rows


# ---------------------------------------------------------------- search


def child_search(settings: Settings, deadline: str) -> None:
    with tempfile.TemporaryDirectory() as store:
        emit(
            hpo_quick.run_variant(
                parse_budget(settings.search_budget),
                settings.search_trials,
                0,
                settings.search_overrides,
                Path(store),
                preset=settings.search_preset,
                deadline=float(deadline),
            )
        )


def search_rows(settings: Settings, deadline: float) -> list[dict]:
    # After the soft deadline no epoch starts, so the study ends and exports its trials
    # before the hard one stops the child.
    soft = deadline - min(SEARCH_MARGIN_SECONDS, (deadline - time.time()) / 4)
    found, note = run_part(settings, "search", str(soft), deadline - time.time())
    row: dict[str, Any] = {
        "budget": settings.search_budget,
        "preset": settings.search_preset,
        "trials": settings.search_trials,
    }
    if found:
        r = found[-1]
        row.update({key: r[key] for key in ("finished", "complete", "pruned", "failed", "epochs")})
        row["wall_s"], row["best"] = r["wall_s"], r["best"]
        row["trials_per_hour"] = r["finished"] / r["wall_s"] * 3600
        row["epoch_s"] = r["wall_s"] * r["epoch_share"] / max(r["epochs"], 1)
        if r["finished"] < settings.search_trials and note is None:
            note = f"stopped at the time budget after {r['finished']} trials"
    if note:
        row["note"] = note
    return [row]


# ---------------------------------------------------------------- tables


def si(v: float) -> str:
    """3 significant figures with a K/M/G/T suffix: 19088513 -> 19.1M."""
    for suffix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{suffix}"
    return f"{v:.3g}"


FORMATS: dict[str, Callable[[Any], str]] = {
    "text": str,
    "si": si,
    "bytes": format_bytes,
    "error": lambda v: f"{v:+.1%}",
    **{str(digits): (lambda v, d=digits: f"{v:,.{d}f}") for digits in range(5)},
}
# part: (title, its columns as "key=header:format", the header's "_" a space; the
# header defaults to the key, the format to text)
TABLES = {
    "throughput": (
        "Train throughput against the anchor",
        "model arch params:si trainer dtype compile batch samples_per_s=samples/s:0 "
        "flops_per_s=FLOP/s:si mfu=MFU:3 x_anchor:2 warmup_s=warm-up_s:1 note",
    ),
    "memory": (
        "Memory planner's estimate against the measured peak",
        "model arch params:si dtype micro_batch=micro-batch accumulation estimate:bytes "
        "measured:bytes error:error note",
    ),
    "search": (
        "Search",
        "budget preset trials finished complete pruned failed epochs wall_s:1 "
        "trials_per_hour=trials/hour:0 epoch_s=s/epoch:2 best=best_val_log_loss:4 note",
    ),
}


def columns(part: str) -> list[tuple[str, str, str]]:
    """(key, header, format) of each column of a part's table."""
    parsed = []
    for column in TABLES[part][1].split():
        name, _, fmt = column.partition(":")
        key, _, header = name.partition("=")
        parsed.append((key, (header or key).replace("_", " "), fmt or "text"))
    return parsed


def format_table(part: str, rows: list[dict]) -> str:
    """One markdown table: a title line, the header, a rule, a line per row; a value
    a row lacks is left blank."""
    cols = columns(part)
    headers = [header for _, header, _ in cols]
    cells = [["" if row.get(k) is None else FORMATS[f](row[k]) for k, _, f in cols] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]

    def line(values) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    rule = line("-" * w for w in widths)
    return "\n".join([f"## {TABLES[part][0]}", "", line(headers), rule, *map(line, cells), ""])


# ---------------------------------------------------------------- the check


def dry_run_limit(settings: Settings) -> MemoryLimit:
    """A memory limit for the tiny stand-ins that takes the planner down each of its
    paths: the 20M fits whole, the 200M accumulates, the 2B does not fit."""
    config = architecture(settings.arch("200M"))
    half = settings.max_micro_batch // 2
    limit = estimate_training_memory(config, half, settings.dtype, "cpu", 2).peak_bytes
    return MemoryLimit(limit, f"dry run: the 200M stand-in's estimate at micro-batch {half}")


def check(settings: Settings, budget_s: float) -> dict[str, list[dict]]:
    """Runs the three parts within `budget_s`, printing each table when it is done;
    returns their rows."""
    started = time.time()
    device = torch.device(settings.device)
    peak, source = peak_flops(device, settings.dtype)  # type: ignore[arg-type]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)"
    limit = dry_run_limit(settings) if settings.dry_run else default_memory_limit(device)
    print(
        f"device: {name}; torch {torch.__version__}; dtype {settings.dtype}; "
        f"budget {budget_s:.0f} s"
    )
    if peak is None:
        print(f"peak: unknown card ({name}): MFU left out")
    else:
        print(f"peak: {si(peak)} FLOP/s ({source})")
    print(f"memory limit: {format_bytes(limit.bytes)} ({limit.source})")
    print(f"anchor: {settings.anchor or 'not found (pass --anchor PATH): its rows left out'}")
    print(flush=True)
    deadlines = {part: started + end * budget_s for part, end in PART_ENDS.items()}
    tables = {"throughput": throughput_rows(settings, peak, deadlines["throughput"])}
    print(format_table("throughput", tables["throughput"]), flush=True)
    tables["memory"] = memory_rows(settings, limit.bytes, deadlines["memory"])
    print(format_table("memory", tables["memory"]), flush=True)
    tables["search"] = search_rows(settings, deadlines["search"])
    print(format_table("search", tables["search"]), flush=True)
    print(f"total: {time.time() - started:.0f} s", flush=True)
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="every code path on CPU, tiny")
    parser.add_argument("--anchor", type=Path, default=throughput.DEFAULT_ANCHOR)
    parser.add_argument("--budget-s", type=float, default=420.0, help="seconds, all parts")
    parser.add_argument("--batch", type=int, default=Settings.batch)
    parser.add_argument("--steps", type=int, default=Settings.steps, help="timed steps per row")
    parser.add_argument("--max-micro-batch", type=int, default=Settings.max_micro_batch)
    parser.add_argument("--search-trials", type=int, default=Settings.search_trials)
    parser.add_argument("--search-epochs", type=int, default=5)
    parser.add_argument("--child", nargs=2, metavar=("PART", "ARG"), help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        part, argument = args.child
        {"throughput": child_throughput, "search": child_search}[part](
            Settings.from_json(args.settings), argument
        )
        return 0
    if not args.dry_run and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        print(
            f"gpu_check: no CUDA device on this machine (torch {torch.__version__}, {build}); "
            "nothing measured (--dry-run runs its code paths on CPU)"
        )
        return 0
    check(settings_of(args), args.budget_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
