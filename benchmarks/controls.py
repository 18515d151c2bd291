"""Run the control preset as a user does, planted and null, and count what each study
called: the studies' own false-call rates beside the coverage benchmark's simulated ones.

    python benchmarks/controls.py --planted                 # the control preset once
    python benchmarks/controls.py --null-seeds 0,1,2,3,4    # its null control, one study per seed
    python benchmarks/controls.py --null-seeds 0,1 --null-control random_walk --preset quick

Each study is `finscale scale --preset PRESET` in its own run directory (under --root,
kept, so a rerun resumes), timed from the outside. A null study k sets
`data.null_seed=k` (a new shuffle of the labels) and `search.sampler_seed=k`. Per
study it prints and stores the calls below; at the end, how many null studies made
each call. Results go to benchmarks/results/controls.json (merged by study name).

Calls read from each study's scaling.json:
  primary      the primary size test's verdict
  steps        budget steps called improves / worsens after Holm's correction
  base rate    budgets called better than the base rate after Holm
  alpha > 0    the law's alpha interval lies above zero
  DSR          a winner's Deflated Sharpe Ratio at 0.95 or more
  PBO          each search's PBO and where it falls in its pure-noise reference
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "controls.json"
DSR_LINE = 0.95


def study_calls(scaling: dict) -> dict:
    """What one study called, from its scaling.json (every horizon pooled)."""
    horizons = list(scaling["horizons"].values())
    steps = [s["log_loss"]["holm_verdict"] for h in horizons for s in h["steps"]]
    budgets = [b for h in horizons for b in h["budgets"]]
    beats = [
        b["budget_label"]
        for b in budgets
        if b["vs_baselines"]["base_rate"]["log_loss"]["holm_verdict"] == "improves"
    ]
    fits = [h["fit"] for h in horizons if h.get("fit")]
    dsr = [b["dsr"]["value"] for b in budgets if b["dsr"].get("value") is not None]
    return {
        "primary": scaling["primary"]["verdict"],
        "slope_per_decade": scaling["primary"]["slope_per_decade"],
        "slope_interval": scaling["primary"]["interval"],
        "steps_improve": steps.count("improves"),
        "steps_worsen": steps.count("worsens"),
        "steps": [
            {
                "from": s["from_budget"],
                "to": s["to_budget"],
                "difference": s["log_loss"]["difference"],
                "interval": [s["log_loss"]["low"], s["log_loss"]["high"]],
                "verdict": s["log_loss"]["verdict"],
                "holm_verdict": s["log_loss"]["holm_verdict"],
            }
            for h in horizons
            for s in h["steps"]
        ],
        "beats_base_rate": beats,
        "alpha": [f["alpha"] for f in fits],
        "alpha_above_zero": any(f["alpha"]["low"] > 0 for f in fits),
        "E": [f["E"] for f in fits],
        "bayes_log_loss": [h.get("bayes_log_loss") for h in horizons],
        "below_bayes": [
            b for h in horizons for b in (h.get("bayes_check") or {}).get("below_bayes", [])
        ],
        "test_log_loss": {b["budget_label"]: b["metrics"]["log_loss"]["mean"] for b in budgets},
        "dsr": dsr,
        "dsr_significant": any(v >= DSR_LINE for v in dsr),
        "pbo": {
            b["budget_label"]: {
                "value": b["pbo"].get("value"),
                "null_quantile": b["pbo"].get("null_quantile"),
                "null_reference": b["pbo"].get("null_reference"),
            }
            for b in budgets
            if b.get("pbo")
        },
    }


def run_study(preset: str, run_dir: Path, sets: list[str]) -> tuple[dict, float]:
    """`finscale scale` on one run directory; its calls and its wall seconds."""
    entry = "import sys; from finscale.cli import main; sys.exit(main())"
    command = [sys.executable, "-c", entry, "scale", "--preset", preset]
    command += ["--run-dir", str(run_dir)]
    for item in sets:
        command += ["--set", item]
    env = {**os.environ, "FINSCALE_STORE": str(run_dir.parent / "store")}
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return study_calls(json.loads((run_dir / "scaling.json").read_text())), seconds


def tally(studies: list[dict]) -> dict:
    """How many null studies made each call."""
    return {
        "studies": len(studies),
        "primary_falls": sum(s["primary"] == "loss falls with size" for s in studies),
        "primary_rises": sum(s["primary"] == "loss rises with size" for s in studies),
        "any_step_improves": sum(s["steps_improve"] > 0 for s in studies),
        "any_step_worsens": sum(s["steps_worsen"] > 0 for s in studies),
        "beats_base_rate": sum(bool(s["beats_base_rate"]) for s in studies),
        "alpha_above_zero": sum(s["alpha_above_zero"] for s in studies),
        "dsr_significant": sum(s["dsr_significant"] for s in studies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="control")
    parser.add_argument("--planted", action="store_true", help="run the preset itself")
    parser.add_argument("--null-seeds", default="", help="seeds of null studies, e.g. 0,1,2")
    parser.add_argument("--null-control", default="shuffle", choices=("shuffle", "random_walk"))
    parser.add_argument("--root", type=Path, default=Path("runs/controls"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    studies = [(f"{args.preset}-planted", [])] if args.planted else []
    for seed in [int(s) for s in args.null_seeds.split(",") if s.strip()]:
        sets = [
            f"data.null_control={args.null_control}",
            f"data.null_seed={seed}",
            f"search.sampler_seed={seed}",
        ]
        studies.append((f"{args.preset}-{args.null_control}-{seed}", sets))
    for name, sets in studies:
        calls, seconds = run_study(args.preset, args.root / name, sets)
        calls["wall_seconds"] = round(seconds, 1)
        print(f"{name}: {calls_line(calls)}", flush=True)
        store({name: calls})
    prefix = f"{args.preset}-{args.null_control}-"
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    nulls = [v for k, v in stored.items() if k.startswith(prefix) and not k.endswith("-tally")]
    if nulls:
        counts = tally(nulls)
        store({f"{prefix}tally": counts})
        print(f"{args.null_control} null studies of {args.preset}: {json.dumps(counts)}")


def calls_line(calls: dict) -> str:
    steps = ", ".join(
        f"{s['from']}->{s['to']} {s['difference']:+.4f} [{s['interval'][0]:+.4f}, "
        f"{s['interval'][1]:+.4f}] {s['holm_verdict']}"
        for s in calls["steps"]
    )
    return (
        f"{calls['primary']} ({calls['slope_per_decade']:+.4f} "
        f"[{calls['slope_interval'][0]:+.4f}, {calls['slope_interval'][1]:+.4f}]); {steps}; "
        f"beats base rate {calls['beats_base_rate'] or 'none'}; alpha > 0 "
        f"{calls['alpha_above_zero']}; DSR {calls['dsr']}; {calls['wall_seconds']:.0f} s"
    )


def store(entries: dict) -> None:
    """Merge `entries` into the results file, read afresh: another run may have
    stored its studies since this one began."""
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    stored.update(entries)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(stored, indent=2) + "\n")


if __name__ == "__main__":
    main()
