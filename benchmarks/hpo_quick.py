"""Print what pruning and duplicate reuse save on a `quick`-preset study.

    python benchmarks/hpo_quick.py [--budget 200K] [--trials 16] [--seeds 0]
        [--variants pruning+duplicates,neither] [--set train.dtype=fp32 ...] [--workers 1]

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
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from finscale.config import load_study_config
from finscale.hpo import JOURNAL_FILE, StudySpec, read_trial_records, run_study
from finscale.units import parse_budget

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="200K")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seeds", default="0", help="comma-separated sampler seeds")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    budget = parse_budget(args.budget)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key.strip()] = yaml.safe_load(value)
    variants = {name: {**overrides, **VARIANTS[name]} for name in args.variants.split(",")}
    with tempfile.TemporaryDirectory() as store:
        for seed in (int(s) for s in args.seeds.split(",")):
            for name, variant in variants.items():
                r = run_variant(budget, args.trials, seed, variant, Path(store), args.workers)
                print(
                    f"budget={args.budget} seed={seed} workers={args.workers} variant={name:<18} "
                    f"wall_s={r['wall_s']:.1f} trials_per_hour={r['trials_per_hour']:.0f} "
                    f"epoch_share={r['epoch_share']:.0%} epochs={r['epochs']} "
                    f"complete={r['complete']} "
                    f"pruned={r['pruned']} duplicates={r['duplicates']} failed={r['failed']} "
                    f"best_val_log_loss={r['best']:.4f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
