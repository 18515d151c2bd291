"""Every figure of one horizon of the report, drawn and captioned as an Image block."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from finscale.analysis import HorizonResult
from finscale.document import Image
from finscale.execution import DIMENSION_VALUES_ATTR
from finscale.report.figures import (
    architecture_figure,
    architecture_grid,
    baseline_figure,
    cross_budget_figure,
    folds_figure,
    hpo_history_figure,
    joint_law_figure,
    learning_curves_figure,
    pbo_figure,
    png,
    reliability_figure,
    scaling_figure,
)
from finscale.report.study_files import StudyFiles
from finscale.units import format_budget

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
    "folds": (
        "Walk-forward folds: test log loss of each budget on each test period",
        "Each budget's transformer (line, seed mean; band: test-date interval of the fold) and "
        "each baseline (dashed grey) on every walk-forward test fold, in date order.",
    ),
    "pbo": (
        "Overfitting of the search: the logit distribution of each study's CSCV",
        "For every half/half split of the validation dates into blocks: the logit of the "
        "in-sample best trial's out-of-sample rank (below zero, red: it ranks below the "
        "out-of-sample median). PBO is the red share.",
    ),
    "joint_law": (
        "Joint law: iso-loss contours of L(N, D) with the runs",
        "Contours: test log loss predicted by the fitted L(N, D) over parameters and training "
        "samples; dots: every seed's pooled test log loss at each budget and data fraction, "
        "coloured on the same scale; star: the largest run, where the marginal value of each "
        "resource is read.",
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
    dims = f.info.get(DIMENSION_VALUES_ATTR) or {}
    archs = [t["architecture"] for t in f.trials if t.get("architecture")]
    d_models = dims.get("d_model") or sorted({a["d_model"] for a in archs})
    n_layers = dims.get("n_layers") or sorted({a["n_layers"] for a in archs})
    return label, d_models, n_layers, architecture_grid(f.trials, d_models, n_layers)


def horizon_figures(
    horizon: str, h: HorizonResult, files: Mapping[int, StudyFiles]
) -> dict[str, Image]:
    """Every figure of one horizon as an Image block, by kind (no cross_budget without
    a matrix); `files` holds each budget's study files."""
    rows = h.budgets
    baselines = sorted(h.baselines.items())
    models = [(f"transformer {r.budget_label}", r.metrics, False) for r in rows]
    models += [(name, b.metrics, True) for name, b in baselines]
    figures = {
        "scaling": scaling_figure(
            [(r.budget_label, r.param_count, r.metrics["log_loss"]) for r in rows],
            h.fit,
            {name: b.metrics["log_loss"].mean for name, b in baselines},
            f"h={horizon}: test log loss by parameter count",
        ),
        "baselines": baseline_figure(
            [(name, m["log_loss"], m["roc_auc"], is_baseline) for name, m, is_baseline in models],
            f"h={horizon}: transformers and baselines",
        ),
        "reliability": reliability_figure(
            [(r.budget_label, r.calibration.reliability, r.calibration.best) for r in rows]
        ),
        "hpo": hpo_history_figure(
            [(r.budget_label, files[r.budget].trials, r.hpo_trial) for r in rows]
        ),
        "architecture": architecture_figure(
            [_arch_panel(r.budget_label, files[r.budget]) for r in rows]
        ),
        "learning_curves": learning_curves_figure(
            [(r.budget_label, files[r.budget].curves) for r in rows]
        ),
        "pbo": pbo_figure([(r.budget_label, r.pbo) for r in rows]),
    }
    if h.folds:
        figures["folds"] = folds_figure(
            [f"{f.test_start[:7]}\n{f.test_end[:7]}" for f in h.folds],
            [(f"transformer {r.budget_label}", [f.log_loss for f in r.folds], False) for r in rows]
            + [
                (name, [f.log_loss for f in b.folds], True)
                for name, b in baselines
                if b.folds is not None
            ],
            f"h={horizon}: test log loss by walk-forward fold",
        )
    joint = h.joint_fit
    if joint is not None and joint.law is not None:
        figures["joint_law"] = joint_law_figure(
            joint.points, joint.law.fit, f"h={horizon}: L(N, D) and the runs"
        )
    if h.cross_budget is not None:
        figures["cross_budget"] = cross_budget_figure(
            [format_budget(b) for b in h.cross_budget.budgets],
            h.cross_budget.val_log_loss,
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
