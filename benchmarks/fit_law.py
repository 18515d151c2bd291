"""Print how long `finscale fit-law` takes to fit L(N, D) with 1000 bootstrap resamples,
and, given a published table of language-model runs, the estimates it finds there.

    python benchmarks/fit_law.py [--runs 250] [--resamples 1000]
    python benchmarks/fit_law.py --csv svg_extracted_data.csv --drop-highest 5

The target: 250 runs and 1000 resamples in under 60 s on 2 cores. `--csv` reads a
table with the columns `Model Size`, `Training FLOP` and `loss` (the runs Epoch AI
extracted from Hoffmann et al.'s figure 4, github.com/epoch-research/analyzing-chinchilla,
data/svg_extracted_data.csv), takes D = FLOP / (6 N) tokens and, like Besiroglu et al.
(2024), leaves out the `--drop-highest` runs of highest loss; their published fit is
E 1.82, A 482.01, alpha 0.3478, B 2085.43, beta 0.3658.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from finscale.analysis.joint_law import NAMES, bootstrap_joint_law, joint_law

TARGET_SECONDS = 60.0
CHINCHILLA = {"E": 1.69, "A": 406.4, "alpha": 0.34, "B": 410.7, "beta": 0.28}


def synthetic(n_runs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs drawn from Chinchilla's published law at random sizes, with 2% noise."""
    rng = np.random.default_rng(seed)
    n = np.exp(rng.uniform(np.log(7e7), np.log(1.6e10), n_runs))
    d = np.exp(rng.uniform(np.log(5e9), np.log(5e11), n_runs))
    loss = joint_law(n, d, *(CHINCHILLA[k] for k in NAMES)) * np.exp(rng.normal(0, 0.02, n_runs))
    return n, d, loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=250)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--csv", help="a published table of runs (see the module docstring)")
    parser.add_argument("--drop-highest", type=int, default=0)
    args = parser.parse_args()
    if args.csv:
        import pandas as pd

        table = pd.read_csv(args.csv)
        n = table["Model Size"].to_numpy(float)
        d = table["Training FLOP"].to_numpy(float) / (6.0 * n)
        loss = table["loss"].to_numpy(float)
        if args.drop_highest:
            keep = loss < np.sort(loss)[-args.drop_highest]
            n, d, loss = n[keep], d[keep], loss[keep]
        truth = None
    else:
        n, d, loss = synthetic(args.runs)
        truth = CHINCHILLA
    started = time.perf_counter()
    boot = bootstrap_joint_law(n, d, loss, n_resamples=args.resamples)
    seconds = time.perf_counter() - started
    print(
        f"{n.size} runs, {args.resamples} resamples: {seconds:.1f} s "
        f"({'within' if seconds < TARGET_SECONDS else 'OVER'} the {TARGET_SECONDS:.0f} s target)"
    )
    print(f"{'parameter':<10}{'estimate':>12}{'95% interval':>28}{'truth':>10}")
    for name in NAMES:
        b = getattr(boot, name)
        shown = f"{truth[name]:.4g}" if truth else ""
        print(f"{name:<10}{b.value:>12.4g}   [{b.low:>10.4g}, {b.high:>10.4g}]{shown:>10}")


if __name__ == "__main__":
    main()
