"""Print the build time and peak memory of a panel dataset, and the time and peak
memory of one training epoch on it, against the number of symbols.

    python benchmarks/panel_scale.py [--symbols 1,10,100,500] [--years 20]
        [--samples-per-epoch 100000]

Each symbol is a synthetic daily OHLCV series (a geometric random walk with
volatility clustering, 252 business days a year) written as a CSV file, so the
build reads, validates, features and labels every series as `finscale data
build --source csv --target ...` does. Each count runs in a fresh process, so
its peak resident memory is its own. The epoch trains a small PatchTST (d16/L1/h2)
on `--samples-per-epoch` training windows (`train.samples_per_epoch`; 0: every
one), with the batch plan the trainer picks; the windows are views of one feature
tensor (checked), never copies. The table is float32, per symbol as it is built:
at 500 symbols x 20 years the whole process peaks at 1.24 GB, against 3.17 GB when
the table was float64 (the measured figures are in docs/methodology.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

BUSINESS_DAYS_PER_YEAR = 252


def synthetic_prices(days: int, seed: int) -> pd.DataFrame:
    """OHLCV of one synthetic symbol: GARCH-like returns, a range around each close."""
    rng = np.random.default_rng(seed)
    sigma = np.empty(days)
    returns = np.empty(days)
    variance = 1e-4
    for t in range(days):
        variance = 2e-6 + 0.9 * variance + 0.08 * (returns[t - 1] ** 2 if t else 1e-4)
        sigma[t] = np.sqrt(variance)
        returns[t] = rng.normal(2e-4, sigma[t])
    close = 100 * np.exp(np.cumsum(returns))
    spread = np.abs(rng.normal(0, sigma, days)) * close
    open_ = close * np.exp(rng.normal(0, sigma / 3))
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    dates = pd.bdate_range("1999-01-04", periods=days)
    return pd.DataFrame(
        {
            "Date": dates.strftime("%Y-%m-%d"),
            "Open": open_,
            "High": high,
            "Low": low,
            "Close": close,
            "Volume": rng.integers(1_000_000, 5_000_000, days),
        }
    )


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def one(n_symbols: int, years: int, samples_per_epoch: int | None) -> dict:
    """Build a panel of `n_symbols` synthetic series and train one epoch on it."""
    import torch

    from finscale.config import DataConfig, TrainConfig
    from finscale.data import build_dataset
    from finscale.model import PatchTSTConfig
    from finscale.train.trainer import train

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names = [f"S{k:04d}" for k in range(n_symbols)]
        for k, name in enumerate(names):
            synthetic_prices(years * BUSINESS_DAYS_PER_YEAR, k).to_csv(
                folder / f"{name}.csv", index=False
            )
        before = peak_rss_bytes()
        started = time.perf_counter()
        config = DataConfig(source="csv", path=folder, targets=tuple(names))
        dataset = build_dataset(config)
        windows = dataset.windows()
        build_s = time.perf_counter() - started
        build_rss = peak_rss_bytes()
        view = (
            windows.windows.untyped_storage().data_ptr()
            == windows.features.untyped_storage().data_ptr()
        )
        model = PatchTSTConfig(
            n_features=len(dataset.feature_names), d_model=16, n_layers=1, n_heads=2, d_ff=64
        )
        train_config = TrainConfig(
            max_epochs=1,
            samples_per_epoch=samples_per_epoch,
            patience=1,
            effective_batch=256,
            warmup_steps=0,
            device="cpu",
            dtype="fp32",
        )
        result = train(model, windows, train_config)
        return {
            "symbols": n_symbols,
            "rows": len(dataset.table),
            "train_samples": len(windows.rows("train")),
            "build_s": build_s,
            "build_peak_rss_mb": (build_rss - before) / 2**20,
            "epoch_s": result.train_seconds,
            "samples_per_s": result.samples_per_second,
            "peak_rss_mb": peak_rss_bytes() / 2**20,
            "windows_are_views": bool(view),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", default="1,10,100,500")
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument(
        "--samples-per-epoch",
        type=int,
        default=100_000,
        help="training windows of the timed epoch (0: every one)",
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.years, args.samples_per_epoch or None)))
        return
    print(
        f"{'symbols':>8}{'rows':>10}{'train':>10}{'build s':>9}{'build MB':>10}"
        f"{'epoch s':>9}{'samples/s':>11}{'peak MB':>9}  views"
    )
    for count in (int(c) for c in args.symbols.split(",")):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                *("--one", str(count), "--years", str(args.years)),
                *("--samples-per-epoch", str(args.samples_per_epoch)),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['symbols']:>8}{r['rows']:>10,}{r['train_samples']:>10,}{r['build_s']:>9.1f}"
            f"{r['build_peak_rss_mb']:>10.0f}{r['epoch_s']:>9.1f}{r['samples_per_s']:>11,.0f}"
            f"{r['peak_rss_mb']:>9.0f}  {'yes' if r['windows_are_views'] else 'NO'}"
        )


if __name__ == "__main__":
    main()
