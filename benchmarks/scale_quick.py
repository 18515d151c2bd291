"""Print how long the README's main job, `finscale scale --preset quick`, takes, stage by
stage, from an empty run directory and an empty data store (as on a fresh clone).

    python benchmarks/scale_quick.py [--keep DIR] [--set KEY=VALUE ...]

The target: the whole study, report included, well inside 8 minutes on a 2-core CPU.
`--set` overrides the preset as `finscale scale --set` does (e.g.
`--set evaluation.scheme=holdout` times the single test period).
Each line: a stage, its units run, and its wall seconds (summed over units);
then the total and the study's scaling table and verdicts as the command printed them.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from finscale.cli.options import parse_sets
from finscale.config import load_study_config
from finscale.report import scaling_table_markdown
from finscale.scale import STAGES, Pipeline, ScaleSpec, write_scale_file

TARGET_SECONDS = 8 * 60


class StageTimer:
    """A pipeline reporter that adds up the seconds of every unit per stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.units: dict[str, int] = defaultdict(int)
        self.stage_name = ""

    def stage(self, name: str, units: int) -> None:
        self.stage_name = name

    def unit(self, name, budget, horizon, detail) -> None:
        pass

    def done(self, seconds: float, skipped: bool) -> None:
        self.seconds[self.stage_name] += seconds
        self.units[self.stage_name] += 0 if skipped else 1

    def hpo_callbacks(self, spec, prepared=None) -> dict:
        return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key of the preset (repeatable)",
    )
    args = parser.parse_args()
    overrides = parse_sets(args.sets)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        config = load_study_config("quick", overrides=overrides)
        spec = ScaleSpec(config, root / "run", root / "store")
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        write_scale_file(spec)
        timer = StageTimer()
        started = time.perf_counter()
        results = Pipeline(spec, timer).run()
        total_s = time.perf_counter() - started
    print(f"{'stage':<14}{'units':>6}{'seconds':>10}")
    for stage in STAGES:
        print(f"{stage:<14}{timer.units[stage]:>6}{timer.seconds[stage]:>10.1f}")
    verdict = "within" if total_s < TARGET_SECONDS else "OVER"
    target = f"{verdict} the {TARGET_SECONDS // 60}-minute target"
    print(f"{'total':<14}{'':>6}{total_s:>10.1f}  ({target})")
    print()
    print(scaling_table_markdown(results))


if __name__ == "__main__":
    main()
