"""Print what pruning and duplicate reuse save on a `quick`-preset study.

    python benchmarks/hpo_quick.py [--budget 200K] [--trials 16] [--seeds 0]
        [--variants pruning+duplicates,neither] [--set train.dtype=fp32 ...] [--workers 1]
        [--against OTHER/src --rounds 3]

Runs the same study (same sampler seed, same data) twice per seed in fresh
temporary run directories: once as shipped (median pruning, duplicate reuse
within 2% of each range) and once with both off. Each line: wall time, trials
per hour, the share of the wall time spent in training epochs (the learning
curves' epoch seconds, summed over workers, so up to N x 100% on N workers: the
training step and its validation pass; the rest is model build, sampling, storage
and records), epochs trained (summed over every trial's learning curve), trials
complete / pruned / reused as duplicates, and the best validation log loss reached.
`--set KEY=VALUE` (repeatable) overrides the preset for every variant, as `finscale
hpo --set` does; `--workers N` runs each study on N workers of this machine, as
`finscale hpo --workers N` does (each with its share of the cores:
`finscale.execution.control.CoreShare`).

`--against OTHER/src` measures this checkout against another one (a git worktree of an
older commit, say) side by side: every study runs `--rounds` times in a fresh process per
checkout, the two alternating (which goes first swaps each round), so both see the same
machine. Each checkout runs its own defaults; `--set` applies to both. The last line is
the ratio of median trials per hour, this checkout over the other.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from finscale.config import load_study_config
from finscale.hpo import JOURNAL_FILE, StudySpec, read_trial_records, run_study
from finscale.units import parse_budget

HERE_SRC = Path(__file__).resolve().parents[1] / "src"

VARIANTS = {
    "pruning+duplicates": {},
    "neither": {"search.pruner": "none", "search.duplicate_tolerance": 0.0},
}


def run_variant(
    budget: int,
    trials: int,
    seed: int,
    overrides: dict,
    store: Path,
    workers: int = 1,
    preset: str = "quick",
    deadline: float | None = None,
) -> dict:
    """One study of `trials` trials on `preset` with `overrides`, in a temporary run
    directory; `deadline` (a `time.time()`) after which no new epoch starts."""
    config = load_study_config(
        preset, overrides={"search.trials": trials, "search.sampler_seed": seed, **overrides}
    )
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        spec = StudySpec(
            config,
            budget,
            "bench",
            run_dir,
            str(run_dir / JOURNAL_FILE),
            store,
            workers,
            deadline=deadline,
        )
        started = time.perf_counter()
        outcome = run_study(spec)
        wall_s = time.perf_counter() - started
        records = read_trial_records(run_dir)
        # None when a deadline stopped the study before any trial completed.
        best = outcome.study.best_value if outcome.counts["complete"] else None
    epochs = sum(len(r["learning_curve"]) for r in records)
    epoch_s = sum(e["seconds"] for r in records for e in r["learning_curve"])
    return {
        "wall_s": wall_s,
        "trials_per_hour": trials / wall_s * 3600,
        "epoch_share": epoch_s / wall_s,
        "epochs": epochs,
        "best": best,
        **outcome.counts,
    }


def fail(message: str) -> None:
    """One `error:` line and exit code 2, as finscale's commands answer bad input."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def describe(r: dict) -> str:
    """One study's figures, as the lines print them."""
    best = "none" if r["best"] is None else f"{r['best']:.4f}"
    return (
        f"wall_s={r['wall_s']:.1f} trials_per_hour={r['trials_per_hour']:.0f} "
        f"epoch_share={r['epoch_share']:.0%} epochs={r['epochs']} complete={r['complete']} "
        f"pruned={r['pruned']} duplicates={r['duplicates']} failed={r['failed']} "
        f"best_val_log_loss={best}"
    )


def run_in_checkout(src: Path, job: dict) -> dict:
    """`run_variant(**job)` in a fresh process importing finscale from `src`."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(job)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"error: the study under {src} failed:\n{done.stderr.strip()}")  # exit 1
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(args: argparse.Namespace, budget: int, variants: dict) -> None:
    """Each study in this checkout and in `args.against`, alternating, `args.rounds`
    times; then the ratio of median trials per hour per variant."""
    other = Path(args.against).resolve()
    if not (other / "finscale" / "__init__.py").is_file():
        fail(f"--against {args.against} holds no finscale package (give its src/)")
    checkouts = {"this": HERE_SRC, "other": other}
    rates: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as store:
        for seed in (int(s) for s in args.seeds.split(",")):
            for name, variant in variants.items():
                for round_ in range(args.rounds):
                    order = ("this", "other") if round_ % 2 == 0 else ("other", "this")
                    for label in order:
                        job = {
                            "budget": budget,
                            "trials": args.trials,
                            "seed": seed,
                            "overrides": variant,
                            "store": str(Path(store) / label),  # caches per checkout
                            "workers": args.workers,
                        }
                        r = run_in_checkout(checkouts[label], job)
                        rates.setdefault((name, label), []).append(r["trials_per_hour"])
                        print(
                            f"checkout={label} round={round_} budget={args.budget} "
                            f"seed={seed} variant={name:<18} {describe(r)}",
                            flush=True,
                        )
    for name in variants:
        this = statistics.median(rates[(name, "this")])
        that = statistics.median(rates[(name, "other")])
        print(
            f"variant={name} median trials_per_hour: this={this:.0f} other={that:.0f} "
            f"ratio={this / that:.2f}x ({other})",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="200K")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seeds", default="0", help="comma-separated sampler seeds")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--against", help="another checkout's src/ to measure side by side")
    parser.add_argument("--rounds", type=int, default=3, help="studies per checkout")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one study for compare(), in the checkout PYTHONPATH names
        job = json.loads(args.child)
        job["store"] = Path(job["store"])
        print(json.dumps(run_variant(**job)))
        return
    budget = parse_budget(args.budget)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key.strip()] = yaml.safe_load(value)
    unknown = sorted(set(args.variants.split(",")) - set(VARIANTS))
    if unknown:
        fail(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    variants = {name: {**overrides, **VARIANTS[name]} for name in args.variants.split(",")}
    if args.against:
        compare(args, budget, variants)
        return
    with tempfile.TemporaryDirectory() as store:
        for seed in (int(s) for s in args.seeds.split(",")):
            for name, variant in variants.items():
                r = run_variant(budget, args.trials, seed, variant, Path(store), args.workers)
                print(
                    f"budget={args.budget} seed={seed} workers={args.workers} "
                    f"variant={name:<18} {describe(r)}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
