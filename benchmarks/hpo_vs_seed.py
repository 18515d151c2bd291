"""Does finscale's search choose better configurations than the original method, for less
compute? The quality of a search is the validation log loss of the configuration it
chose, retrained with fresh seeds, not its best (luckiest) value.

    python benchmarks/hpo_vs_seed.py [--budgets 200K,2M] [--seeds 0,1,2,3,4]
        [--trials 40] [--fresh-seeds 3] [--methods original,finscale,...]
        [--threads 1] [--out benchmarks/results/hpo_vs_seed.jsonl]

Every method runs the `quick` preset's study (same data, grid, trainer, epochs, early
stopping and training-value ranges) with its own search settings:

    original          independent TPE, 20 random starts, one categorical arch_idx, forced
                      extremes first, no pruning, no duplicate reuse (the original system)
    finscale          the preset as shipped
    finscale-categorical / -independent / -no-pruning / -no-duplicates
                      the shipped search with one of its four differences switched off
    finscale+finalists
                      as shipped, then the top FINALISTS trials retrained with
                      FINALIST_SEEDS more seeds each and the lowest seed mean crowned

Per method x budget: the chosen configuration's fresh-seed validation log loss (mean over
sampler seeds, with its 95% t interval), the epochs and wall time the search spent
(median over sampler seeds), and the epochs it needed to first choose (its incumbent: the
best so far) a configuration at least as good as the original method's final choice (the
original's mean at that budget; median over the seeds that got there, and how many did).

Every method trains in fp32 (`train.dtype`), whatever the machine's `auto` precision, and
on `--threads` torch threads, so ledger rows from different sessions and machines compare;
each row records both. Each search and each retraining is appended to `--out` as one
JSON line as soon as it ends, so an interrupted benchmark resumes where it stopped and a
finished one reprints its table without training.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from scipy import stats

from finscale.config import StudyConfig, load_study_config
from finscale.hpo import (
    JOURNAL_FILE,
    TRAINING_PARAMS,
    StudySpec,
    best_trial,
    prepare,
    read_trial_records,
    run_study,
    train_configuration,
)
from finscale.units import format_budget, parse_budget

# The original method, as its documents describe it.
ORIGINAL = {
    "search.architecture_space": "categorical",
    "search.multivariate": False,
    "search.constant_liar": False,
    "search.n_startup_trials": 20,
    "search.pruner": "none",
    "search.duplicate_tolerance": 0.0,
    "search.forced_extremes": True,
}
METHODS: dict[str, dict[str, Any]] = {
    "original": ORIGINAL,
    "finscale": {},
    "finscale-categorical": {"search.architecture_space": "categorical"},
    "finscale-independent": {"search.multivariate": False, "search.constant_liar": False},
    "finscale-no-pruning": {"search.pruner": "none"},
    "finscale-no-duplicates": {"search.duplicate_tolerance": 0.0},
    "finscale+finalists": {},
}
FINALISTS = 3  # top trials retrained before one is crowned (finscale+finalists)
FINALIST_SEEDS = 2  # more seeds for each finalist, beside its trial's own
FRESH_SEED_BASE = 10_000  # fresh seeds of the quality measure: never a trial's seed
FINALIST_SEED_BASE = 20_000


DTYPE = "fp32"  # pinned: bf16 `auto` on some CPUs would change what a row measures


def study_config(method: str, trials: int, sampler_seed: int) -> StudyConfig:
    overrides = {
        "search.trials": trials,
        "search.sampler_seed": sampler_seed,
        "train.dtype": DTYPE,
    }
    return load_study_config("quick", overrides={**overrides, **METHODS[method]})


class Ledger:
    """The JSON lines of every finished search and retraining, keyed, appended as each
    ends (so a rerun skips them)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill: that unit runs again
                self.rows[row["key"]] = row

    def get(self, key: str) -> dict[str, Any] | None:
        return self.rows.get(key)

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        row = {**row, "dtype": DTYPE, "threads": torch.get_num_threads()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            out.write(json.dumps(row) + "\n")
        self.rows[row["key"]] = row
        return row


def search(ledger: Ledger, method: str, budget: int, seed: int, trials: int, store: Path):
    """One search: its trials in order (number, value, architecture, params, epochs)."""
    key = f"search/{method}/{budget}/{seed}/{trials}"
    if (row := ledger.get(key)) is not None:
        return row
    config = study_config(method, trials, seed)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        spec = StudySpec(config, budget, "bench", run_dir, str(run_dir / JOURNAL_FILE), store)
        started = time.perf_counter()
        outcome = run_study(spec)
        wall_s = time.perf_counter() - started
        if outcome.stop_reason is not None or not outcome.finished:
            # A search cut short (SIGTERM, a stop request) is not recorded: it reruns.
            raise SystemExit(f"stopped: {key} ({outcome.stop_reason or 'unfinished'})")
        records = read_trial_records(run_dir)
    best = best_trial(records)
    trials_run = [
        {
            "number": r["number"],
            "state": r["state"],
            "value": r["value"],
            "duplicate": r["duplicate_of"] is not None,
            "arch_index": (r["architecture"] or {}).get("index"),
            "params": {name: r["params"][name] for name in TRAINING_PARAMS if name in r["params"]},
            "epochs": len(r["learning_curve"]),
        }
        for r in records
    ]
    return ledger.add(
        {
            "key": key,
            "method": method,
            "budget": budget,
            "seed": seed,
            "wall_s": wall_s,
            "trials": trials_run,
            "best_number": best["number"] if best else None,
        }
    )


class Retrainer:
    """Trains one configuration of a budget's grid with a given seed (the ledger keeps
    each result), as the final evaluation trains a winner."""

    def __init__(self, ledger: Ledger, budget: int, store: Path) -> None:
        self.ledger, self.budget = ledger, budget
        self.config = study_config("finscale", 1, 0)
        with tempfile.TemporaryDirectory() as tmp:
            spec = StudySpec(self.config, budget, "bench", Path(tmp), "unused", store)
            self.prepared = prepare(spec)

    def val_loss(self, arch_index: int, params: dict[str, Any], seed: int) -> dict[str, Any]:
        rounded = {k: round(float(v), 12) for k, v in sorted(params.items())}
        key = f"train/{self.budget}/{arch_index}/{json.dumps(rounded)}/{seed}"
        if (row := self.ledger.get(key)) is not None:
            return row
        started = time.perf_counter()
        result = train_configuration(self.prepared, self.config, arch_index, params, seed)
        return self.ledger.add(
            {
                "key": key,
                "val_loss": result.val_loss,
                "epochs": result.epochs_run,
                "wall_s": time.perf_counter() - started,
            }
        )

    def quality(self, trial: dict[str, Any], fresh_seeds: int) -> float:
        """The mean validation log loss of a trial's configuration over fresh seeds."""
        losses = [
            self.val_loss(trial["arch_index"], trial["params"], FRESH_SEED_BASE + k)["val_loss"]
            for k in range(fresh_seeds)
        ]
        return statistics.fmean(losses)


def crowned(run: dict[str, Any], method: str, retrainer: Retrainer) -> tuple[dict, int, float]:
    """The configuration a method crowns at the end of its search, the epochs it spent in
    all (finalists' re-runs included) and the seconds those re-runs took."""
    trials = run["trials"]
    by_number = {t["number"]: t for t in trials}
    epochs = sum(t["epochs"] for t in trials)
    if method != "finscale+finalists":
        return by_number[run["best_number"]], epochs, 0.0
    scored = sorted(
        (t for t in trials if t["state"] == "COMPLETE" and not t["duplicate"]),
        key=lambda t: (t["value"], t["number"]),
    )[:FINALISTS]
    best, best_mean, seconds = None, math.inf, 0.0
    for trial in scored:
        reruns = [
            retrainer.val_loss(trial["arch_index"], trial["params"], FINALIST_SEED_BASE + k)
            for k in range(FINALIST_SEEDS)
        ]
        epochs += sum(r["epochs"] for r in reruns)
        seconds += sum(r["wall_s"] for r in reruns)
        mean = statistics.fmean([trial["value"], *(r["val_loss"] for r in reruns)])
        if mean < best_mean:
            best, best_mean = trial, mean
    return best, epochs, seconds


def incumbents(run: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(epochs spent so far, the best trial so far) each time the best changes."""
    out, best, spent = [], None, 0
    for trial in sorted(run["trials"], key=lambda t: t["number"]):
        spent += trial["epochs"]
        if trial["state"] != "COMPLETE" or trial["duplicate"] or trial["value"] is None:
            continue
        if best is None or trial["value"] < best["value"]:
            best = trial
            out.append((spent, trial))
    return out


def interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% t interval over sampler seeds (NaN bounds for a single seed)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def report(rows: list[dict[str, Any]], budget: int) -> None:
    print(f"\nbudget {format_budget(budget)}: fresh-seed validation log loss of the chosen config")
    print(
        f"{'method':<24} {'seeds':>5} {'val log loss [95% CI]':>28} {'epochs':>7} "
        f"{'wall s':>7} {'epochs to match':>16}"
    )
    for row in rows:
        mean, low, high = interval(row["qualities"])
        matched = [e for e in row["to_match"] if e is not None]
        to_match = (
            f"{statistics.median(matched):.0f} ({len(matched)}/{len(row['to_match'])})"
            if matched
            else f"- (0/{len(row['to_match'])})"
        )
        print(
            f"{row['method']:<24} {len(row['qualities']):>5} "
            f"{mean:>9.4f} [{low:.4f}, {high:.4f}] {statistics.median(row['epochs']):>7.0f} "
            f"{statistics.median(row['wall_s']):>7.1f} {to_match:>16}",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="200K,2M")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated sampler seeds")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--fresh-seeds", type=int, default=3)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "hpo_vs_seed.jsonl"
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        print(f"error: unknown method {unknown[0]}; one of {', '.join(METHODS)}", file=sys.stderr)
        return 2
    if "original" not in methods:
        methods.insert(0, "original")  # the bar every method is measured against
    seeds = [int(s) for s in args.seeds.split(",")]
    ledger = Ledger(args.out)
    store = Path(tempfile.gettempdir()) / "finscale-bench-store"
    for budget in (parse_budget(b) for b in args.budgets.split(",")):
        retrainer = Retrainer(ledger, budget, store)
        finals: dict[str, list[tuple[dict, dict, int, float]]] = {}
        for method in methods:
            base = "finscale" if method == "finscale+finalists" else method
            for seed in seeds:
                run = search(ledger, base, budget, seed, args.trials, store)
                chosen, epochs, extra_s = crowned(run, method, retrainer)
                finals.setdefault(method, []).append((run, chosen, epochs, extra_s))
                quality = retrainer.quality(chosen, args.fresh_seeds)
                print(
                    f"{format_budget(budget)} {method} seed={seed}: chose #{chosen['number']} "
                    f"(arch {chosen['arch_index']}, trial value {chosen['value']:.4f}) "
                    f"fresh-seed {quality:.4f}, {epochs} epochs",
                    file=sys.stderr,
                    flush=True,
                )
        bar = statistics.fmean(
            retrainer.quality(chosen, args.fresh_seeds) for _, chosen, _, _ in finals["original"]
        )
        rows = []
        for method, runs in finals.items():
            to_match = []
            for run, chosen, epochs, _ in runs:
                reached = None
                for spent, trial in incumbents(run):
                    if retrainer.quality(trial, args.fresh_seeds) <= bar:
                        reached = spent
                        break
                # A crowning after the search (finalists) counts at the epochs it spent.
                if reached is None and retrainer.quality(chosen, args.fresh_seeds) <= bar:
                    reached = epochs
                to_match.append(reached)
            rows.append(
                {
                    "method": method,
                    "qualities": [retrainer.quality(c, args.fresh_seeds) for _, c, _, _ in runs],
                    "epochs": [e for _, _, e, _ in runs],
                    "wall_s": [run["wall_s"] + extra for run, _, _, extra in runs],
                    "to_match": to_match,
                }
            )
        report(rows, budget)
    return 0


if __name__ == "__main__":
    sys.exit(main())
