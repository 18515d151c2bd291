"""Print how long `finscale data build` takes per tier and horizon on the bundled data.

    python benchmarks/data_build.py

Each line: tier, horizon, rows, features, samples per split, label balance,
seconds for a cold build (no store) and for a warm one (reused from a store).
"""

from __future__ import annotations

import tempfile
import time

from finscale.config import DataConfig
from finscale.data import build_dataset
from finscale.data.store import DataStore


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = DataStore(tmp)
        for tier in ("a25", "a50", "a100"):
            for horizon in (1, 3, 5):
                config = DataConfig(tier=tier, horizon_days=horizon)
                started = time.perf_counter()
                cold = build_dataset(config, store)
                cold_s = time.perf_counter() - started
                started = time.perf_counter()
                warm = build_dataset(config, store)
                warm_s = time.perf_counter() - started
                assert warm.reused and warm.entry["sha256"] == cold.entry["sha256"]
                s = cold.summary()
                splits = " ".join(
                    f"{name}={v['samples']}/{v['positive_rate']:.3f}"
                    for name, v in s["splits"].items()
                )
                print(
                    f"tier={tier} h={horizon} rows={s['rows']} "
                    f"dates={s['first_date']}..{s['last_date']} features={s['n_features']} "
                    f"samples/pos_rate: {splits} cold_s={cold_s:.2f} warm_s={warm_s:.2f}"
                )


if __name__ == "__main__":
    main()
