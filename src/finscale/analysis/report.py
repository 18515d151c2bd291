"""The report of a scaling study: report.md, a self-contained report.html and PNG figures.

The report is built once as a list of blocks (heading, paragraph, bullets, table,
figure, warning) and rendered twice, to markdown and to HTML, so the two files
cannot say different things; the figures come from `finscale.analysis.figures`.
Everything comes from `results` (scaling.json) and the records the run
directory stored; nothing is trained or scored here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from finscale.analysis.figures import (
    AUC_DIGITS,
    LOSS_DIGITS,
    all_finite,
    architecture_figure,
    architecture_grid,
    as_float,
    baseline_figure,
    cross_budget_figure,
    fmt,
    hpo_history_figure,
    learning_curves_figure,
    png,
    reliability_figure,
    scaling_figure,
)
from finscale.analysis.pipeline import STUDIES_DIR, evaluation_path, read_json
from finscale.atomic import write_bytes_atomic, write_text_atomic
from finscale.document import (
    FIGURES_DIR,
    Alert,
    Block,
    Bullets,
    Heading,
    Image,
    Paragraph,
    Table,
    render_html,
    render_markdown,
    table_header,
)
from finscale.errors import InputError
from finscale.units import format_budget

METHODOLOGY_DOC = "docs/methodology.md"

# ----------------------------------------------------------------- formatting


def fmt_interval(value: Any, low: Any, high: Any, digits: int = LOSS_DIGITS, signed=False) -> str:
    """'0.3126 [0.3080, 0.3171]'; the level is stated once per section, not per number."""
    return f"{fmt(value, digits, signed)} [{fmt(low, digits, signed)}, {fmt(high, digits, signed)}]"


def _seeds(metric: dict[str, Any], digits: int) -> str:
    return fmt_interval(metric["mean"], metric["seed_low"], metric["seed_high"], digits)


def _dates(metric: dict[str, Any], digits: int, with_mean: bool = False) -> str:
    interval = f"[{fmt(metric['boot_low'], digits)}, {fmt(metric['boot_high'], digits)}]"
    return f"{fmt(metric['mean'], digits)} {interval}" if with_mean else interval


def _difference(diff: dict[str, Any], digits: int = LOSS_DIGITS) -> str:
    return fmt_interval(diff["difference"], diff["low"], diff["high"], digits, signed=True)


def _arch(arch: dict[str, Any]) -> str:
    return f"d{arch['d_model']}/L{arch['n_layers']}/h{arch['n_heads']}"


def _mean(values: Sequence[Any]) -> float:
    finite = [as_float(v) for v in values if all_finite(v)]
    return sum(finite) / len(finite) if finite else math.nan


# ----------------------------------------------------------------- stored records


@dataclass(frozen=True)
class StudyFiles:
    """What the report reads of one budget's study besides `results`."""

    info: dict[str, Any]  # study.json ({} when missing)
    trials: list[dict[str, Any]]  # every finished trial record, by number
    curves: list[list[dict[str, Any]]]  # final-evaluation learning curve of each seed


def load_study_files(run_dir: Path, study: str, seeds: int) -> StudyFiles:
    folder = run_dir / STUDIES_DIR / study
    trials = [read_json(p) for p in sorted((folder / "trials").glob("trial_*.json"))]
    if not trials:  # a run whose per-trial records are gone: the export of finished trials
        trials = read_json(folder / f"{study}_all_trials.json") or []
    curves = [
        (read_json(evaluation_path(run_dir, study, seed)) or {}).get("learning_curve", [])
        for seed in range(seeds)
    ]
    trials = sorted((t for t in trials if t), key=lambda t: t["number"])
    return StudyFiles(read_json(folder / "study.json") or {}, trials, curves)


# ----------------------------------------------------------------- sections


def _level_note(results: dict[str, Any], h: dict[str, Any]) -> str:
    return (
        f"Intervals are {results['confidence_level']:.0%}: across {results['seeds']} training "
        f"seeds (Student t of the seed mean) and over test dates (circular block bootstrap, "
        f"{h['block_days']}-day blocks, {h['bootstrap_resamples']} resamples)."
    )


def _step_text(step: dict[str, Any]) -> str:
    return (
        f"{format_budget(step['from_budget'])} -> {format_budget(step['to_budget'])} "
        f"({step['from_params']:,} -> {step['to_params']:,} parameters): **{step['verdict']}** "
        f"(test log loss change {_difference(step['log_loss'])})"
    )


def _steps(h: dict[str, Any]) -> list[str]:
    return [_step_text(s) for s in h["steps"]] or ["one budget: no budget step to compare"]


def scaling_blocks(results: dict[str, Any]) -> list[Block]:
    """The scaling table and budget-step verdicts of every horizon."""
    blocks: list[Block] = []
    for horizon, h in results["horizons"].items():
        rows = tuple(
            (
                r["budget_label"],
                _arch(r["architecture"]),
                f"{r['param_count']:,}",
                f"{r['samples_per_param']:.3g}",
                _seeds(r["metrics"]["log_loss"], LOSS_DIGITS),
                _dates(r["metrics"]["log_loss"], LOSS_DIGITS),
                _seeds(r["metrics"]["roc_auc"], AUC_DIGITS),
                _dates(r["metrics"]["roc_auc"], AUC_DIGITS),
            )
            for r in h["budgets"]
        )
        header = table_header(
            "budget | architecture | params | samples/param | test log loss | log loss, dates | "
            "test AUC | AUC, dates"
        )
        blocks += [
            Heading(f"h={horizon}: test log loss by budget", 3),
            Paragraph(
                f"{_level_note(results, h)} Architecture: d_model/layers/heads. Each metric: "
                "seed mean [seed interval], then its test-date interval."
            ),
            Table(header, rows, "llrrrrrr"),
            Bullets(tuple(_steps(h))),
        ]
    return blocks


def scaling_table_markdown(results: dict[str, Any]) -> str:
    """The scaling table and verdicts of every horizon, as markdown (the CLI prints it)."""
    return render_markdown(scaling_blocks(results))


def _fit_text(fit: dict[str, Any]) -> str:
    if "skipped" in fit:
        return f"fit skipped: {fit['skipped']}"
    alpha = fit["alpha"]
    return f"fitted alpha {fmt_interval(alpha['value'], alpha['low'], alpha['high'])}"


def _best_row(h: dict[str, Any]) -> dict[str, Any]:
    """The transformer a user would pick: the lowest mean validation log loss of its final
    runs (picking the lowest test loss would select on the test split)."""
    return min(h["budgets"], key=lambda r: (_mean(r["val_log_loss"]), r["budget"]))


def _beats(comparison: dict[str, Any]) -> str:
    return "beats" if comparison["beats"] else "does not beat"


def short_answer_blocks(results: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [
        Heading("Short answer"),
        Paragraph(
            f"All intervals in this report are {results['confidence_level']:.0%} intervals. A "
            "difference is called only when its interval excludes zero; otherwise the verdict "
            "is **no detectable difference**."
        ),
    ]
    for horizon, h in results["horizons"].items():
        best = _best_row(h)
        items = _steps(h)
        for name, c in sorted(best["vs_baselines"].items()):
            items.append(
                f"best transformer ({best['budget_label']}, chosen on validation) vs `{name}`: "
                f"**{_beats(c)}** it (test log loss difference {_difference(c['log_loss'])}; "
                "negative = transformer better)"
            )
        caveat = "" if "skipped" in h["fit"] else " (interval over seeds and test dates)"
        items.append(f"scaling law: {_fit_text(h['fit'])}{caveat}")
        blocks += [Paragraph(f"**h={horizon}** ({horizon}-day horizon):"), Bullets(tuple(items))]
    runs = [r for h in results["horizons"].values() for r in h["budgets"]]
    limited = sum(r["data_limited"] for r in runs)
    if limited:
        blocks.append(
            Alert(
                f"{limited} of {len(runs)} budget runs are in a data-limited regime (too few "
                "training samples per parameter); see **Samples per parameter** below."
            )
        )
    return blocks


def data_blocks(results: dict[str, Any], files: dict[tuple[str, int], StudyFiles]) -> list[Block]:
    d = results["config"]["data"]
    fractions = "/".join(f"{f:g}" for f in d["split_fractions"])
    blocks: list[Block] = [
        Heading("Data and splits"),
        Paragraph(
            f"Target `{d['target']}` (source {d['source']}, feature tier `{d['tier']}`) from "
            f"{d['start'] or 'the first day of the data'} to "
            f"{d['end'] or 'the last day of the data'}; label rule "
            f"`{d['label_rule']}`, threshold {d['threshold']:g} ({d['threshold_mode']}); "
            f"{d['context_days']}-day context windows; {d['split']} split {fractions}. Split "
            "boundaries are purged by the label horizon; the test split is scored once, in "
            "final evaluation."
        ),
    ]
    header = table_header("split | first date | last date | samples | positives | positive rate")
    for horizon, h in results["horizons"].items():
        stats = files[(horizon, h["budgets"][0]["budget"])].info.get("split_statistics")
        blocks.append(Heading(f"h={horizon}", 3))
        if not stats:
            blocks.append(Paragraph("Split statistics not stored (no study.json)."))
            continue
        rows = tuple(
            (
                name,
                s["first_date"],
                s["last_date"],
                f"{s['samples']:,}",
                f"{s['positives']:,}",
                fmt(s["positive_rate"], 3),
            )
            for name, s in ((n, stats[n]) for n in ("train", "val", "test") if n in stats)
        )
        blocks.append(Table(header, rows, "lllrrr"))
    return blocks


def samples_blocks(results: dict[str, Any]) -> list[Block]:
    threshold = results["config"]["scale"]["min_samples_per_param"]
    rows = tuple(
        (
            f"h={horizon}",
            r["budget_label"],
            f"{r['param_count']:,}",
            f"{r['n_train']:,}",
            f"{r['samples_per_param']:.3g}",
            "**data-limited**" if r["data_limited"] else "ok",
        )
        for horizon, h in results["horizons"].items()
        for r in h["budgets"]
    )
    header = table_header("horizon | budget | params | training samples | samples/param | regime")
    return [
        Heading("Samples per parameter"),
        Paragraph(
            f"Training samples per trainable parameter; below {threshold:g} a model can memorise "
            "its training split, and a flat or rising loss curve says more about the data than "
            "about model size."
        ),
        Table(header, rows, "llrrrl"),
        *(Alert(w) for w in results["warnings"]),
    ]


def fit_blocks(results: dict[str, Any], horizon: str, fit: dict[str, Any]) -> list[Block]:
    if "skipped" in fit:
        return [Paragraph(f"Scaling-law fit skipped: {fit['skipped']}.")]
    E, A = fit["E"], fit["A"]
    blocks: list[Block] = [
        Paragraph(
            f"L(N) = E + A·N^-alpha fitted to {fit['fit']['n_points']} runs: "
            f"E = {fmt_interval(E['value'], E['low'], E['high'])}, "
            f"A = {A['value']:.4g} [{A['low']:.4g}, {A['high']:.4g}], **{_fit_text(fit)}** "
            f"({fit['level']:.0%} bootstrap over runs within each budget and over the test "
            "dates of the comparisons; "
            f"{fit['n_converged']} of {fit['n_resamples']} resamples converged)."
        )
    ]
    if not fit["fit"]["converged"]:
        blocks.append(Alert(f"h={horizon}: the full-sample scaling-law fit did not converge."))
    if results["seeds"] < 2:
        blocks.append(
            Alert(
                "one run per budget: the bootstrap over runs cannot vary the data, so the "
                "fit's intervals have zero width and say nothing about its uncertainty"
            )
        )
    return blocks


def baseline_blocks(h: dict[str, Any]) -> list[Block]:
    if not h["baselines"]:
        return [Paragraph("No baselines stored for this horizon.")]
    scores = tuple(
        (
            f"`{name}`",
            _dates(b["metrics"]["log_loss"], LOSS_DIGITS, with_mean=True),
            _dates(b["metrics"]["roc_auc"], AUC_DIGITS, with_mean=True),
        )
        for name, b in sorted(h["baselines"].items())
    )
    diffs = tuple(
        (
            r["budget_label"],
            f"`{name}`",
            _difference(c["log_loss"]),
            _difference(c["roc_auc"], AUC_DIGITS),
            f"**{_beats(c)}**",
        )
        for r in h["budgets"]
        for name, c in sorted(r["vs_baselines"].items())
    )
    return [
        Paragraph(
            "Baselines on the same splits and test dates (deterministic: one run, so only the "
            "test-date interval):"
        ),
        Table(table_header("baseline | test log loss [dates] | test AUC [dates]"), scores, "lrr"),
        Paragraph(
            "Paired differences, transformer minus baseline, on the same resampled test dates "
            "(log loss: negative is better; AUC: positive is better). A transformer **beats** a "
            "baseline only when its log-loss interval lies wholly below zero."
        ),
        Table(
            table_header("budget | baseline | log loss difference | AUC difference | verdict"),
            diffs,
            "llrrl",
        ),
    ]


def calibration_blocks(h: dict[str, Any]) -> list[Block]:
    rows = []
    for r in h["budgets"]:
        cal = r["calibration"]
        for name, entry in cal["methods"].items():
            test, cv = entry.get("test", {}), entry.get("val_cv", {})
            rows.append(
                (
                    r["budget_label"],
                    name + " (chosen)" * (name == cal["best"]),
                    fmt(cv.get("log_loss")),
                    fmt(test.get("log_loss")),
                    fmt(test.get("brier")),
                    fmt(test.get("ece")),
                )
            )
    header = table_header(
        "budget | method | val log loss (cross-fitted) | test log loss | test Brier | test ECE"
    )
    skipped = [
        Alert(f"budget {r['budget_label']}: {r['calibration']['skipped']}")
        for r in h["budgets"]
        if r["calibration"].get("skipped")
    ]
    return [
        Paragraph(
            "Each method is fitted on each seed's validation predictions and scored on its test "
            "predictions (means over seeds). The method is **chosen on validation** log loss, "
            "cross-fitted over blocks of days, never on test; the test columns are only scores."
        ),
        *skipped,
        Table(header, tuple(rows), "llrrrr"),
    ]


def cross_budget_blocks(cross: dict[str, Any] | None) -> list[Block]:
    if cross is None:
        return [Paragraph("No cross-budget matrix for this horizon.")]
    labels = [format_budget(b) for b in cross["budgets"]]
    rows = [
        (f"values of {labels[i]}", *map(fmt, values))
        for i, values in enumerate(cross["val_log_loss"])
    ]
    rows.append(("own-values margin", *(fmt(v, signed=True) for v in cross["own_values_margin"])))
    return [
        Paragraph(
            "Validation log loss of each budget's winning architecture (columns) trained with "
            "the winning training values of each budget (rows), seed 0; the diagonal is the "
            "winner itself. Margin: best off-diagonal cell minus the diagonal (positive: the "
            "budget's own values are the best of those tried)."
        ),
        Table(
            ("", *(f"architecture of {x}" for x in labels)), tuple(rows), "l" + "r" * len(labels)
        ),
    ]


def hpo_blocks(h: dict[str, Any], files: dict[int, StudyFiles]) -> list[Block]:
    rows = []
    for r in h["budgets"]:
        trials = files[r["budget"]].trials
        counts = [sum(t["state"] == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL")]
        duplicates = sum(t.get("duplicate_of") is not None for t in trials)
        values = ", ".join(
            f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in sorted(r["params"].items())
        )
        rows.append(
            (
                r["budget_label"],
                f"`{r['study']}`",
                *map(str, (len(trials), *counts, duplicates)),
                str(r["hpo_trial"]),
                fmt(r["hpo_val_log_loss"]),
                f"{_arch(r['architecture'])}, d_ff {r['architecture']['d_ff']}",
                values,
            )
        )
    header = table_header(
        "budget | study | trials | complete | pruned | failed | duplicates | best trial | "
        "best val log loss | architecture | training values"
    )
    note = (
        "Duplicates are complete trials whose configuration was within the duplicate tolerance "
        "of an earlier one: they reused its value instead of training again."
    )
    return [Table(header, tuple(rows), "llrrrrrrrll"), Paragraph(note)]


def methods_blocks(results: dict[str, Any]) -> list[Block]:
    blocks = ", ".join(f"h={k}: {h['block_days']} days" for k, h in results["horizons"].items())
    return [
        Heading("Methods"),
        Bullets(
            (
                f"Each budget's HPO winner is retrained with {results['seeds']} seeds and scored "
                "once on the test split; the search itself sees validation only.",
                "Seed intervals: Student t of the mean over seeds. Test-date intervals: circular "
                f"block bootstrap over test dates, blocks at least the label horizon ({blocks}).",
                "Comparisons (budget steps, transformer vs baseline) are paired: every model of a "
                "horizon is scored on the same resampled dates, and each resample also redraws "
                "each model's seeds.",
                "Verdict rule: a difference is called (improves, worsens, beats) only when its "
                "interval excludes zero; otherwise **no detectable difference**.",
                "Scaling law L(N) = E + A·N^-alpha: Huber loss of log losses, L-BFGS from a grid "
                "of starts (Hoffmann et al. 2022); its intervals come from refitting on each "
                "resample of the test dates (the comparisons' own draws) with the runs redrawn "
                "within each budget, so they carry date and seed noise; with few seeds per "
                "budget they are somewhat narrower than nominal.",
                f"Data handling (causal features, purged splits, labels): see `{METHODOLOGY_DOC}`.",
            )
        ),
    ]


# ----------------------------------------------------------------- the report


# Alt text and caption of each kind of figure; a figure's id and file stem is f"{kind}_h{horizon}".
FIGURE_TEXT = {
    "scaling": (
        "Scaling curve: test log loss against parameter count",
        "Test log loss by exact parameter count: each seed (dots), seed mean with its seed "
        "interval (error bar) and test-date interval (light bar), the fitted law with its "
        "prediction band, and each baseline (dashed).",
    ),
    "baselines": (
        "Baseline comparison: test log loss and AUC with intervals",
        "Each budget's transformer (blue) and each baseline (grey): point = mean, light bar = "
        "test-date interval, dark bar = seed interval.",
    ),
    "reliability": (
        "Reliability diagrams: uncalibrated vs chosen calibration",
        "Pooled test predictions of every seed in ten bins: observed positive rate against mean "
        "predicted probability, before and after the chosen method; shaded: how many "
        "predictions fall in each bin.",
    ),
    "cross_budget": (
        "Cross-budget matrix: validation log loss",
        "Rows: training values from a budget; columns: architecture of a budget; cells: "
        "validation log loss (outlined: each budget's winner).",
    ),
    "hpo": (
        "HPO history: validation log loss by trial",
        "Each trial's validation log loss by trial number, the best so far (line), pruned "
        "trials at their last reported value, duplicates that reused a value, and the winner.",
    ),
    "architecture": (
        "Architecture heatmap: best validation log loss by d_model and n_layers",
        "Best validation log loss over each study's complete trials per d_model x n_layers "
        "cell (blank: no complete trial there).",
    ),
    "learning_curves": (
        "Learning curves: train and validation loss per epoch",
        "Final-evaluation runs of each winner: train loss (dashed) and validation loss (solid) "
        "per epoch, one colour per seed.",
    ),
}


def _arch_panel(label: str, f: StudyFiles) -> tuple[str, list[int], list[int], np.ndarray]:
    """The heatmap axes are the study's grid dimensions (from study.json), so cells the
    search never tried show as blank instead of disappearing."""
    dims = f.info.get("dimension_values") or {}
    archs = [t["architecture"] for t in f.trials if t.get("architecture")]
    d_models = dims.get("d_model") or sorted({a["d_model"] for a in archs})
    n_layers = dims.get("n_layers") or sorted({a["n_layers"] for a in archs})
    return label, d_models, n_layers, architecture_grid(f.trials, d_models, n_layers)


def horizon_figures(horizon: str, h: dict[str, Any], files: dict[int, StudyFiles]) -> dict:
    """Every figure of one horizon as an Image block, by kind (no cross_budget without
    a matrix)."""
    rows, fit = h["budgets"], h["fit"]
    baselines = sorted(h["baselines"].items())
    models = [(f"transformer {r['budget_label']}", r["metrics"], False) for r in rows]
    models += [(name, b["metrics"], True) for name, b in baselines]
    figures = {
        "scaling": scaling_figure(
            (fit["points"]["n_params"], fit["points"]["test_log_loss"]),
            [(r["budget_label"], r["param_count"], r["metrics"]["log_loss"]) for r in rows],
            fit,
            {name: b["metrics"]["log_loss"]["mean"] for name, b in baselines},
            f"h={horizon}: test log loss by parameter count",
        ),
        "baselines": baseline_figure(
            [(name, m["log_loss"], m["roc_auc"], is_baseline) for name, m, is_baseline in models],
            f"h={horizon}: transformers and baselines",
        ),
        "reliability": reliability_figure(
            [
                (r["budget_label"], r["calibration"]["reliability"], r["calibration"]["best"])
                for r in rows
            ]
        ),
        "hpo": hpo_history_figure(
            [(r["budget_label"], files[r["budget"]].trials, r["hpo_trial"]) for r in rows]
        ),
        "architecture": architecture_figure(
            [_arch_panel(r["budget_label"], files[r["budget"]]) for r in rows]
        ),
        "learning_curves": learning_curves_figure(
            [(r["budget_label"], files[r["budget"]].curves) for r in rows]
        ),
    }
    if h["cross_budget"] is not None:
        cross = h["cross_budget"]
        figures["cross_budget"] = cross_budget_figure(
            [format_budget(b) for b in cross["budgets"]],
            cross["val_log_loss"],
            f"h={horizon}: cross-budget matrix",
        )
    return {
        kind: Image(
            f"{kind}_h{horizon}",
            f"{FIGURE_TEXT[kind][0]}, h={horizon}",
            FIGURE_TEXT[kind][1],
            png(fig),
        )
        for kind, fig in figures.items()
    }


def horizon_blocks(
    results: dict[str, Any], horizon: str, h: dict[str, Any], files: dict[int, StudyFiles]
) -> list[Block]:
    """Fit, baselines, calibration, cross-budget and HPO of one horizon, with its figures."""
    figures = horizon_figures(horizon, h, files)
    return [
        Heading(f"Horizon h={horizon}"),
        Heading("Scaling-law fit", 3),
        *fit_blocks(results, horizon, h["fit"]),
        figures["scaling"],
        Heading("Baselines", 3),
        *baseline_blocks(h),
        figures["baselines"],
        Heading("Calibration", 3),
        *calibration_blocks(h),
        figures["reliability"],
        Heading("Cross-budget transfer", 3),
        *cross_budget_blocks(h["cross_budget"]),
        *([figures["cross_budget"]] if "cross_budget" in figures else []),
        Heading("Hyperparameter search", 3),
        *hpo_blocks(h, files),
        figures["hpo"],
        figures["architecture"],
        figures["learning_curves"],
    ]


def build_blocks(run_dir: Path, results: dict[str, Any]) -> list[Block]:
    """The whole report as blocks; figures are rendered to PNG bytes here."""
    files = {
        (horizon, r["budget"]): load_study_files(run_dir, r["study"], r["seeds"])
        for horizon, h in results["horizons"].items()
        for r in h["budgets"]
    }
    budgets = sorted({budget for _, budget in files})
    blocks: list[Block] = [
        Heading(
            f"Scaling study {results['study']}: does a bigger transformer predict "
            f"{results['target']} better?",
            1,
        ),
        Paragraph(
            f"PatchTST classifiers at parameter budgets {', '.join(map(format_budget, budgets))}; "
            f"label horizons (days): {', '.join(results['horizons'])}; feature tier "
            f"`{results['tier']}`; {results['seeds']} seeds per winner. Built from "
            "`scaling.json` and the run directory's records by `finscale report`."
        ),
        *short_answer_blocks(results),
        *data_blocks(results, files),
        Heading("Scaling table"),
        *scaling_blocks(results),
        *samples_blocks(results),
    ]
    for horizon, h in results["horizons"].items():
        by_budget = {r["budget"]: files[(horizon, r["budget"])] for r in h["budgets"]}
        blocks += horizon_blocks(results, horizon, h, by_budget)
    return blocks + methods_blocks(results)


def write_report(run_dir: Path, results: dict[str, Any]) -> list[Path]:
    """Write figures/*.png, report.md and report.html into `run_dir`; returns the paths in
    the order written (figures first, so report.md never points at a missing file)."""
    run_dir = Path(run_dir)
    if not results.get("horizons"):
        raise InputError("no scaling results to report; run `finscale scale` first", str(run_dir))
    blocks = build_blocks(run_dir, results)
    paths = [
        write_bytes_atomic(run_dir / FIGURES_DIR / f"{b.figure_id}.png", b.png)
        for b in blocks
        if isinstance(b, Image)
    ]
    # A figure kind this run no longer draws (no cross-budget matrix, a dropped horizon)
    # must not linger next to the report as if it were current.
    drawn = set(paths)
    stale = re.compile(rf"({'|'.join(FIGURE_TEXT)})_h\d+\.png")
    for old in (run_dir / FIGURES_DIR).glob("*.png"):
        if old not in drawn and stale.fullmatch(old.name):
            old.unlink()
    title = blocks[0].text if isinstance(blocks[0], Heading) else "scaling study"
    paths.append(write_text_atomic(run_dir / "report.md", render_markdown(blocks)))
    paths.append(write_text_atomic(run_dir / "report.html", render_html(blocks, title)))
    return paths
