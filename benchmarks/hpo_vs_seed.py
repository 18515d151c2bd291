"""Does finscale's search choose better configurations than the original method, for less
compute? The quality of a search is the validation log loss of the configuration it
chose, retrained with fresh seeds, not its best (luckiest) value.

    python benchmarks/hpo_vs_seed.py [--budgets 200K,2M] [--seeds 0,1,2,3,4]
        [--trials 40] [--at-trials 24] [--fresh-seeds 3] [--methods original,finscale,...]
        [--threads 1] [--no-match] [--out benchmarks/results/hpo_vs_seed.jsonl]

Every method runs the `quick` preset's study (same data, grid, trainer, epochs, early
stopping and training-value ranges) with its own search settings:

    original          independent TPE, 20 random starts, one categorical arch_idx, forced
                      extremes first, no pruning, no duplicate reuse (the original system)
    finscale          the preset as shipped (a search patience of 1 epoch, pruning from
                      the second epoch)
    finscale-earlier  the search before that: trials stop on the trainer's patience and
                      are pruned from the third epoch
    finscale-categorical / -independent / -no-pruning / -no-duplicates
                      the earlier search with one of its four differences from the
                      original's switched off
    finscale+finalists
                      as shipped, then the top FINALISTS trials retrained with
                      FINALIST_SEEDS more seeds each and the lowest seed mean crowned;
                      METHOD+finalistsKxS crowns any method's searches by its top K
                      trials with S more seeds each
    finscale-sha / -hyperband / -gp / -patience1 / -patience2 / -half-epochs / ...
                      levers for less search compute on top of the earlier search:
                      successive halving or Hyperband instead of the median pruner, the
                      noise-aware GP sampler, a search patience of 1 or 2 epochs, epochs
                      of half the training samples (the same schedule in samples)

A search of `--trials` trials is also read at each smaller size of `--at-trials`: its
first trials are what a search of that size runs, since a trial's sampling and pruning
depend only on the trials before it (seeded, one worker).

Per method x budget: the chosen configuration's fresh-seed validation log loss (mean over
sampler seeds, with its 95% t interval), the epochs and wall time the search spent
(median over sampler seeds), and the epochs it needed to first choose (its incumbent: the
best so far) a configuration at least as good as the original method's final choice (the
original's mean at that budget; median over the seeds that got there, and how many did).

Every method trains in fp32 (`train.dtype`), whatever the machine's `auto` precision, and
on `--threads` torch threads, so ledger rows from different sessions and machines compare;
each row records both. Each search and each retraining is appended to `--out` as one
JSON line as soon as it ends, so an interrupted benchmark resumes where it stopped and a
finished one reprints its table without training. Rows are keyed by the dataset and by
the config sections they ran (a search by model, train and search; a retraining by model
and train), never by a method's name: a preset change searches again, an older preset's
rows stay beside the new ones unread, and processes running different methods on their
own cores may share one ledger.
"""

from __future__ import annotations

import argparse
import hashlib
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

from finscale.config import SearchConfig, StudyConfig, load_study_config
from finscale.execution import SPLITS_ATTR
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
from finscale.train import epoch_samples
from finscale.units import format_budget, parse_budget

HALF = "half of the training samples"  # resolved per study, once its split is known

# The search before the quick preset's search patience of 1 and pruner warm-up of 1
# epoch: trials stopped on the trainer's patience, pruning from the third epoch. The
# levers below were measured on top of it, and keep it so their ledger rows keep their keys.
EARLIER = {"search.patience": None, "search.pruner_warmup_epochs": 2}
# The original method, as its documents describe it (its trials stop on the trainer's
# patience; it prunes nothing, so the warm-up is only pinned to keep its rows' keys).
ORIGINAL = {
    **EARLIER,
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
    "finscale-earlier": EARLIER,
    "finscale-categorical": {**EARLIER, "search.architecture_space": "categorical"},
    "finscale-independent": {
        **EARLIER,
        "search.multivariate": False,
        "search.constant_liar": False,
    },
    "finscale-no-pruning": {**EARLIER, "search.pruner": "none"},
    "finscale-no-duplicates": {**EARLIER, "search.duplicate_tolerance": 0.0},
    "finscale+finalists": {},
    # Levers for less search compute, each on top of the earlier search.
    "finscale-sha": {**EARLIER, "search.pruner": "successive_halving"},
    "finscale-hyperband": {**EARLIER, "search.pruner": "hyperband"},
    "finscale-gp": {**EARLIER, "search.sampler": "gp"},
    "finscale-patience1": {**EARLIER, "search.patience": 1},
    "finscale-patience2": {**EARLIER, "search.patience": 2},
    # Multi-fidelity: epochs of half the training samples, the same schedule in samples
    # (twice the epochs, patience and warm-up), so stopping and pruning decide twice as often.
    "finscale-half-epochs": {
        "train.samples_per_epoch": HALF,
        "train.max_epochs": 24,
        "search.patience": 6,
        "search.pruner_warmup_epochs": 4,
    },
    "finscale-sha-patience1": {
        **EARLIER,
        "search.pruner": "successive_halving",
        "search.patience": 1,
    },
    "finscale-gp-patience1": {**EARLIER, "search.sampler": "gp", "search.patience": 1},
    # What the quick preset ships now: patience 1, pruning from the second epoch.
    "finscale-patience1-warmup1": {"search.patience": 1, "search.pruner_warmup_epochs": 1},
}
FINALISTS = 3  # top trials retrained before one is crowned (finscale+finalists)
FINALIST_SEEDS = 2  # more seeds for each finalist, beside its trial's own
FRESH_SEED_BASE = 10_000  # fresh seeds of the quality measure: never a trial's seed
FINALIST_SEED_BASE = 20_000


# A search's crowning settings at their defaults: which trial wins is decided after it.
UNCROWNED = {
    f"search.{name}": SearchConfig.model_fields[name].default
    for name in ("finalists", "finalist_seeds")
}
DTYPE = "fp32"  # pinned: bf16 `auto` on some CPUs would change what a row measures


def study_config(method: str, trials: int, sampler_seed: int, n_train: int) -> StudyConfig:
    """The config a method's search runs. Finalists are left to `crowned` (the preset's,
    or a `+finalistsKxS` name's): the search itself trains its trials only, so its rows
    serve every crowning of them."""
    overrides = {
        "search.trials": trials,
        "search.sampler_seed": sampler_seed,
        "train.dtype": DTYPE,
        **METHODS[base_method(method)],
        **UNCROWNED,
    }
    if overrides.get("train.samples_per_epoch") == HALF:
        overrides["train.samples_per_epoch"] = n_train // 2
    return load_study_config("quick", overrides=overrides)


def config_key(config: StudyConfig, *sections: str) -> str:
    """12 hex digits of the named config sections, less what a ledger key names itself
    (the search's trials and sampler seed)."""
    dump = config.model_dump(mode="json")
    dump["search"].pop("trials")
    dump["search"].pop("sampler_seed")
    text = json.dumps({name: dump[name] for name in sections}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def epoch_fraction(config: StudyConfig, n_train: int) -> float:
    """The share of the training samples one of a config's epochs visits: an epoch of a
    search is counted as that fraction of a full epoch."""
    return epoch_samples(n_train, config.train.samples_per_epoch) / n_train


class Ledger:
    """The JSON lines of every finished search and retraining, keyed, appended as each
    ends (so a rerun skips them)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        self._read()

    def _read(self) -> None:
        if not self.path.exists():
            return
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill: that unit runs again
            self.rows[row["key"]] = row

    def get(self, key: str) -> dict[str, Any] | None:
        if key not in self.rows:
            self._read()  # another process on the same ledger may have added it since
        return self.rows.get(key)

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        row = {**row, "dtype": DTYPE, "threads": torch.get_num_threads()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One unbuffered write per row: lines of processes sharing the ledger never interleave.
        with self.path.open("ab", buffering=0) as out:
            out.write((json.dumps(row) + "\n").encode())
        self.rows[row["key"]] = row
        return row


def search(
    ledger: Ledger, method: str, seed: int, trials: int, store: Path, retrainer: Retrainer
) -> dict[str, Any]:
    """One search: its trials in order (number, value, architecture, params, epochs in
    full-epoch equivalents)."""
    budget, n_train = retrainer.budget, retrainer.n_train
    config = study_config(method, trials, seed, n_train)
    # Keyed by what the search ran, not by the method's name: a method whose preset
    # changed searches again, and two names of one configuration share their rows.
    settings = config_key(config, "model", "train", "search")
    key = f"search/{retrainer.data_key}/{settings}/{budget}/{seed}/{trials}"
    if (row := ledger.get(key)) is not None:
        return row
    fraction = epoch_fraction(config, n_train)
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
            "epochs": len(r["learning_curve"]) * fraction,
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
        self.config = study_config("finscale", 1, 0, n_train=0)
        with tempfile.TemporaryDirectory() as tmp:
            spec = StudySpec(self.config, budget, "bench", Path(tmp), "unused", store)
            self.prepared = prepare(spec)
        self.n_train: int = self.prepared.info[SPLITS_ATTR]["train"]["samples"]
        # Rows are keyed by the data they trained on: a ledger of other labels or
        # features (an older preset) is kept, never mixed in.
        self.data_key: str = self.prepared.dataset.key[:12]
        self.train_key = config_key(self.config, "model", "train")

    def val_loss(self, arch_index: int, params: dict[str, Any], seed: int) -> dict[str, Any]:
        rounded = {k: round(float(v), 12) for k, v in sorted(params.items())}
        key = (
            f"train/{self.data_key}/{self.train_key}/{self.budget}/{arch_index}/"
            f"{json.dumps(rounded)}/{seed}"
        )
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


def first(run: dict[str, Any], trials: int) -> list[dict[str, Any]]:
    """The first `trials` trials of a search, in order: what a search of that many trials
    runs, since each trial's sampling and pruning depend only on the trials before it."""
    return sorted((t for t in run["trials"] if t["number"] < trials), key=lambda t: t["number"])


def ranked(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Complete, trained trials by value, lowest first (the lowest number among equals),
    as `finscale.hpo.ranked_trials` ranks records."""
    scored = [
        t
        for t in trials
        if t["state"] == "COMPLETE" and not t["duplicate"] and t["value"] is not None
    ]
    return sorted(scored, key=lambda t: (t["value"], t["number"]))


def crowned(
    run: dict[str, Any], method: str, retrainer: Retrainer, trials: int
) -> tuple[dict, float, float]:
    """The configuration a method crowns after its first `trials` trials, the epochs it
    spent in all (finalists' re-runs included) and the seconds those re-runs took."""
    searched = first(run, trials)
    epochs = sum(t["epochs"] for t in searched)
    finalists = finalists_of(method)
    if finalists is None:
        return ranked(searched)[0], epochs, 0.0
    count, seeds = finalists
    best, best_mean, seconds = None, math.inf, 0.0
    for trial in ranked(searched)[:count]:
        reruns = [
            retrainer.val_loss(trial["arch_index"], trial["params"], FINALIST_SEED_BASE + k)
            for k in range(seeds)
        ]
        epochs += sum(r["epochs"] for r in reruns)
        seconds += sum(r["wall_s"] for r in reruns)
        mean = statistics.fmean([trial["value"], *(r["val_loss"] for r in reruns)])
        if mean < best_mean:
            best, best_mean = trial, mean
    return best, epochs, seconds


def finalists_of(method: str) -> tuple[int, int] | None:
    """(finalists, more seeds each) of a method crowned by finalists: `BASE+finalists`
    (FINALISTS x FINALIST_SEEDS), `BASE+finalistsKxS`, or the preset's own
    `search.finalists` under its base method's settings; None for a method crowned by
    its best trial."""
    _, plus, spec = method.partition("+finalists")
    if not plus:
        search = load_study_config("quick", overrides=METHODS[method]).search
        return (search.finalists, search.finalist_seeds) if search.finalists else None
    if not spec:
        return FINALISTS, FINALIST_SEEDS
    count, x, seeds = spec.partition("x")
    if not (x and count.isdigit() and seeds.isdigit() and int(count) and int(seeds)):
        raise ValueError(f"{method}: finalists are written +finalistsKxS, K and S >= 1")
    return int(count), int(seeds)


def base_method(method: str) -> str:
    """The search a method runs: its name less any `+finalists...` crowning."""
    return method.partition("+finalists")[0]


def incumbents(searched: list[dict[str, Any]]) -> list[tuple[float, dict[str, Any]]]:
    """(epochs spent so far, the best trial so far) each time the best changes."""
    out, best, spent = [], None, 0.0
    for trial in searched:
        spent += trial["epochs"]
        if trial["state"] != "COMPLETE" or trial["duplicate"] or trial["value"] is None:
            continue
        if best is None or trial["value"] < best["value"]:
            best = trial
            out.append((spent, trial))
    return out


def wall_share(run: dict[str, Any], trials: int) -> float:
    """A search's wall seconds up to its first `trials` trials, shared by epochs (the
    ledger times whole searches): exact for the whole search."""
    total = sum(t["epochs"] for t in run["trials"])
    part = sum(t["epochs"] for t in first(run, trials))
    return run["wall_s"] * (part / total if total else 1.0)


def interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% t interval over sampler seeds (NaN bounds for a single seed)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def report(rows: list[dict[str, Any]], budget: int, trials: int) -> None:
    print(
        f"\nbudget {format_budget(budget)}, {trials} trials: fresh-seed validation log loss "
        "of the chosen config"
    )
    print(
        f"{'method':<24} {'seeds':>5} {'val log loss [95% CI]':>28} {'epochs':>7} "
        f"{'vs orig':>7} {'wall s':>7} {'epochs to match':>16}"
    )
    bar_epochs = statistics.median(rows[0]["epochs"])  # the original's, listed first
    for row in rows:
        mean, low, high = interval(row["qualities"])
        matched = [e for e in row["to_match"] if e is not None]
        to_match = (
            f"{statistics.median(matched):.0f} ({len(matched)}/{len(row['to_match'])})"
            if matched
            else f"- (0/{len(row['to_match'])})"
            if row["to_match"]
            else "not measured"
        )
        epochs = statistics.median(row["epochs"])
        print(
            f"{row['method']:<24} {len(row['qualities']):>5} "
            f"{mean:>9.4f} [{low:.4f}, {high:.4f}] {epochs:>7.0f} "
            f"{epochs / bar_epochs:>7.0%} {statistics.median(row['wall_s']):>7.1f} "
            f"{to_match:>16}",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="200K,2M")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated sampler seeds")
    parser.add_argument("--trials", type=int, default=40, help="trials each search runs")
    parser.add_argument(
        "--at-trials",
        default="24",
        help="comma-separated smaller search sizes also reported, each a search's first trials",
    )
    parser.add_argument("--fresh-seeds", type=int, default=3)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument(
        "--no-match",
        action="store_true",
        help="skip the epochs-to-match column (it retrains every search's incumbents)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "hpo_vs_seed.jsonl"
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if base_method(m) not in METHODS]
    if unknown:
        print(f"error: unknown method {unknown[0]}; one of {', '.join(METHODS)}", file=sys.stderr)
        return 2
    for method in methods:
        try:
            finalists_of(method)
        except ValueError as exc:
            print(f"error: --methods {exc}", file=sys.stderr)
            return 2
    if "original" in methods:
        methods.remove("original")
    methods.insert(0, "original")  # the bar every method is measured against, listed first
    seeds = [int(s) for s in args.seeds.split(",")]
    sizes = sorted({int(k) for k in args.at_trials.split(",") if k.strip()} | {args.trials})
    if sizes[-1] > args.trials:
        print(
            f"error: --at-trials {sizes[-1]} is more than --trials {args.trials}", file=sys.stderr
        )
        return 2
    ledger = Ledger(args.out)
    store = Path(tempfile.gettempdir()) / "finscale-bench-store"
    for budget in (parse_budget(b) for b in args.budgets.split(",")):
        retrainer = Retrainer(ledger, budget, store)
        runs: dict[str, list[dict[str, Any]]] = {}
        # The original's searches last: processes sharing a ledger (one per method, on
        # their own cores) read them from the one that ran them instead of repeating them.
        for method in [*methods[1:], methods[0]]:
            base = base_method(method)
            for seed in seeds:
                run = search(ledger, base, seed, args.trials, store, retrainer)
                runs.setdefault(method, []).append(run)
        runs = {method: runs[method] for method in methods}  # the original listed first
        for trials in sizes:
            rows = measure(runs, retrainer, trials, args.fresh_seeds, match=not args.no_match)
            report(rows, budget, trials)
    return 0


def measure(
    runs: dict[str, list[dict[str, Any]]],
    retrainer: Retrainer,
    trials: int,
    fresh_seeds: int,
    match: bool = True,
) -> list[dict[str, Any]]:
    """Per method: the fresh-seed quality of each seed's choice after `trials` trials, its
    epochs and wall seconds, and (`match`) the epochs it took to first match the original's
    mean, which retrains every earlier incumbent with fresh seeds too."""
    finals = {
        method: [(run, *crowned(run, method, retrainer, trials)) for run in method_runs]
        for method, method_runs in runs.items()
    }
    for method, chosen_runs in finals.items():
        for run, chosen, epochs, _ in chosen_runs:
            quality = retrainer.quality(chosen, fresh_seeds)
            print(
                f"{format_budget(retrainer.budget)} {trials} trials {method} seed={run['seed']}: "
                f"chose #{chosen['number']} (arch {chosen['arch_index']}, trial value "
                f"{chosen['value']:.4f}) fresh-seed {quality:.4f}, {epochs:.0f} epochs",
                file=sys.stderr,
                flush=True,
            )
    bar = statistics.fmean(
        retrainer.quality(chosen, fresh_seeds) for _, chosen, _, _ in finals["original"]
    )
    rows = []
    for method, chosen_runs in finals.items():
        to_match = []
        for run, chosen, epochs, _ in chosen_runs if match else ():
            reached = None
            for spent, trial in incumbents(first(run, trials)):
                if retrainer.quality(trial, fresh_seeds) <= bar:
                    reached = spent
                    break
            # A crowning after the search (finalists) counts at the epochs it spent.
            if reached is None and retrainer.quality(chosen, fresh_seeds) <= bar:
                reached = epochs
            to_match.append(reached)
        rows.append(
            {
                "method": method,
                "qualities": [retrainer.quality(c, fresh_seeds) for _, c, _, _ in chosen_runs],
                "epochs": [e for _, _, e, _ in chosen_runs],
                "wall_s": [wall_share(run, trials) + extra for run, _, _, extra in chosen_runs],
                "to_match": to_match,
            }
        )
    return rows


if __name__ == "__main__":
    sys.exit(main())
