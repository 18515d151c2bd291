"""The figures of a scaling study's report, one function per figure.

Each takes the results it draws (`finscale.analysis.scaling_json`'s types) or the
stored records and returns a `matplotlib.figure.Figure`, drawn without pyplot: no
global backend state, nothing left open between reports. `png` turns one into bytes.
A figure reads an interval's `mean`, `seed_low`, `seed_high`, `boot_low` and
`boot_high`, which a `MetricSummary` and a `LossSummary` both have.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator, NullFormatter

from finscale.analysis import (
    HorizonFit,
    JointFit,
    JointPoints,
    LossSummary,
    MetricSummary,
    PBOSummary,
    ReliabilityBins,
)

DPI = 100
NA = "n/a"
LOSS_DIGITS = 4
AUC_DIGITS = 3


def as_float(value: Any) -> float:
    """A stored number as float; None (how scaling.json stores NaN) as NaN."""
    return math.nan if value is None else float(value)


def all_finite(*values: Any) -> bool:
    return all(math.isfinite(as_float(v)) for v in values)


def fmt(value: Any, digits: int = LOSS_DIGITS, signed: bool = False) -> str:
    """A number with fixed decimals; None and NaN as 'n/a'."""
    if not all_finite(value):
        return NA
    return f"{as_float(value):{'+' if signed else ''}.{digits}f}"


# Marker styles shared by the figures, so a seed or a pruned trial looks the same everywhere.
_SEED = {"s": 14, "color": "C0", "alpha": 0.45, "zorder": 3}
_MEAN = {"fmt": "o", "color": "C0", "ms": 7, "capsize": 4, "zorder": 4}
_DATES = {"color": "C0", "alpha": 0.25, "lw": 7}
_COMPLETE = {"color": "C0", "s": 22, "zorder": 3, "label": "complete"}
_DUPLICATE = {
    "s": 40,
    "facecolors": "none",
    "edgecolors": "C4",
    "marker": "s",
    "zorder": 3,
    "label": "duplicate (value reused)",
}
_PRUNED = {"color": "C3", "marker": "x", "s": 24, "zorder": 3, "label": "pruned (last value)"}
_WINNER = {"marker": "*", "s": 160, "color": "gold", "ec": "k", "zorder": 4, "label": "winner"}


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No Software tag: the bytes then depend on the drawing only, not the matplotlib version.
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def panel_grid(n: int, width: float = 4.2, height: float = 3.4, max_cols: int = 3):
    """A figure of n panels, at most max_cols per row; returns (figure, the n axes)."""
    cols = max(1, min(n, max_cols))
    fig = Figure(figsize=(width * cols, height * max(1, math.ceil(n / cols))), layout="constrained")
    axes = fig.subplots(max(1, math.ceil(n / cols)), cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def _empty(ax, title: str) -> None:
    """A panel whose records are missing says so instead of drawing empty axes."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, title, ha="center", va="center", transform=ax.transAxes)


def _title(text: str) -> str:
    return "\n".join(textwrap.fill(line, 90) for line in text.split("\n"))


def scaling_figure(
    budgets: Sequence[tuple[str, int, MetricSummary]],
    fit: HorizonFit,
    baselines: dict[str, float],
    title: str,
) -> Figure:
    """Test log loss against exact parameter count (log x).

    budgets: (label, param_count, test log-loss summary) of each budget. fit: the
    horizon's L(N) fit, the runs it is fitted to and its prediction band (or why it
    was skipped). baselines: name -> test log loss, drawn as labelled dashed lines.
    """
    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xscale("log")
    ax.scatter(fit.points.n_params, fit.points.test_log_loss, label="each seed", **_SEED)
    for i, (label, x, m) in enumerate(budgets):
        first = i == 0
        if all_finite(m.boot_low, m.boot_high):
            ax.vlines(
                x, m.boot_low, m.boot_high, label="test-date interval" if first else None, **_DATES
            )
        if all_finite(m.mean, m.seed_low, m.seed_high):
            yerr = [[m.mean - m.seed_low], [m.seed_high - m.mean]]
            ax.errorbar(
                x, m.mean, yerr=yerr, label="seed mean and interval" if first else None, **_MEAN
            )
        ax.annotate(label, (x, as_float(m.mean)), xytext=(6, 6), textcoords="offset points")
    if fit.skipped:
        title += "\nscaling-law fit skipped: " + fit.skipped
    elif fit.law:
        band = fit.law.band
        low, high = ([as_float(v) for v in values] for values in (band.low, band.high))
        ax.fill_between(band.n_params, low, high, color="C1", alpha=0.2, label="fit band")
        law = f"E + A·N^-α, α = {fmt(fit.law.alpha.value)}"
        ax.plot(band.n_params, band.fit, color="C1", lw=2, label=law)
    for i, (name, loss) in enumerate(sorted(baselines.items())):
        if all_finite(loss):
            ax.axhline(loss, ls="--", lw=1.2, color=f"C{2 + i}", label=f"{name} ({fmt(loss)})")
    ax.set_title(_title(title), fontsize=10)
    ax.set_xlabel("parameters (exact count, log scale)")
    ax.set_ylabel("test log loss (nats)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def hpo_history_figure(
    panels: Sequence[tuple[str, Sequence[dict[str, Any]], int | None]],
) -> Figure:
    """Validation log loss by trial number, one panel per budget.

    panels: (label, trial records, number of the winning trial). A record has
    number, state (COMPLETE, PRUNED, FAIL), value, last_value, duplicate_of.
    """
    fig, axes = panel_grid(len(panels))
    for ax, (label, trials, winner) in zip(axes, panels, strict=True):
        done = [t for t in trials if t["state"] == "COMPLETE" and t.get("value") is not None]
        done.sort(key=lambda t: t["number"])
        pruned = [t for t in trials if t["state"] == "PRUNED" and t.get("last_value") is not None]
        dups = [t for t in done if t.get("duplicate_of") is not None]
        failed = sum(t["state"] == "FAIL" for t in trials)

        for records, key, style in (
            ([t for t in done if t.get("duplicate_of") is None], "value", _COMPLETE),
            (dups, "value", _DUPLICATE),
            (pruned, "last_value", _PRUNED),
            ([t for t in done if t["number"] == winner], "value", _WINNER),
        ):
            if records:
                ax.scatter([t["number"] for t in records], [t[key] for t in records], **style)
        if done:
            best = np.minimum.accumulate([t["value"] for t in done])
            ax.step([t["number"] for t in done], best, where="post", color="k", label="best so far")
        failures = f", {failed} failed" if failed else ""
        ax.set_title(f"{label}: {len(trials)} trials{failures}", fontsize=10)
        ax.set_xlabel("trial number")
        ax.set_ylabel("validation log loss")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if trials:
            ax.legend(fontsize=7)
        else:
            _empty(ax, f"{label}: no trial records")
    return fig


def architecture_grid(
    trials: Sequence[dict[str, Any]], d_models: Sequence[int], n_layers: Sequence[int]
) -> np.ndarray:
    """Best validation log loss of the complete trials in each (n_layers, d_model) cell,
    NaN where none completed; rows follow n_layers, columns d_models."""
    grid = np.full((len(n_layers), len(d_models)), math.nan)
    for t in trials:
        arch = t.get("architecture") or {}
        complete = t["state"] == "COMPLETE" and t.get("value") is not None
        if complete and arch.get("d_model") in d_models and arch.get("n_layers") in n_layers:
            i, j = list(n_layers).index(arch["n_layers"]), list(d_models).index(arch["d_model"])
            grid[i, j] = np.fmin(grid[i, j], t["value"])
    return grid


def _norm(values: np.ndarray) -> Normalize:
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return Normalize(low, high if high > low else low + 1e-3)


def _annotate_cells(ax, grid: np.ndarray, norm: Normalize, bold_diagonal: bool = False) -> None:
    for (i, j), v in np.ndenumerate(grid):
        if math.isfinite(v):
            color = "white" if norm(v) > 0.6 else "black"  # dark end of viridis_r
            weight = "bold" if bold_diagonal and i == j else "normal"
            style = {"ha": "center", "va": "center", "fontsize": 8, "fontweight": weight}
            ax.text(j, i, f"{v:.4f}", color=color, **style)


def architecture_figure(
    panels: Sequence[tuple[str, Sequence[int], Sequence[int], np.ndarray]],
) -> Figure:
    """Heatmaps of `architecture_grid`, one panel per budget: (label, d_models, n_layers,
    grid). One colour scale for every panel, so budgets compare by colour; NaN is blank."""
    fig, axes = panel_grid(len(panels))
    norm = _norm(np.concatenate([grid.ravel() for *_, grid in panels]))
    image = None
    for ax, (label, d_models, n_layers, grid) in zip(axes, panels, strict=True):
        if grid.size == 0:
            _empty(ax, f"{label}: no trial records")
            continue
        masked = np.ma.masked_invalid(grid)
        image = ax.imshow(masked, cmap="viridis_r", norm=norm, aspect="auto", origin="lower")
        _annotate_cells(ax, grid, norm)
        ax.set_xticks(range(len(d_models)), [str(d) for d in d_models])
        ax.set_yticks(range(len(n_layers)), [str(n) for n in n_layers])
        ax.set(xlabel="d_model", ylabel="n_layers", title=f"{label}: best val log loss per cell")
    if image is not None:
        fig.colorbar(image, ax=axes, label="validation log loss (blank: no complete trial)")
    return fig


def reliability_figure(
    panels: Sequence[tuple[str, Mapping[str, ReliabilityBins], str | None]],
) -> Figure:
    """Reliability diagrams of pooled test predictions, one panel per budget:
    (label, {"uncalibrated": bins, best: bins}, best); best is None when no calibrator
    could be fitted."""
    fig, axes = panel_grid(len(panels))
    for ax, (label, reliability, best) in zip(axes, panels, strict=True):
        ax.plot([0, 1], [0, 1], ls=":", color="grey", label="perfect calibration")
        counts = ax.twinx()  # how many predictions each bin holds: which points carry weight
        tallest = 1
        for name, color in (("uncalibrated", "C0"), (best, "C1")):
            bins = reliability.get(name)
            if not bins:
                continue
            x, y = (
                np.array([as_float(v) for v in values])
                for values in (bins.mean_predicted, bins.observed_rate)
            )
            shown = np.isfinite(x) & np.isfinite(y)  # empty bins have no point
            ax.plot(x[shown], y[shown], marker="o", color=color, label=name)
            counts.stairs(bins.count, bins.bin_edges, color=color, alpha=0.25, fill=True)
            tallest = max(tallest, *bins.count)
        counts.set_ylim(0, 4 * tallest)
        counts.set_yticks([])
        title = f"{label}: uncalibrated vs {best}" if best else f"{label}: no calibrator fitted"
        ax.set(xlim=(0, 1), ylim=(0, 1), title=title)
        ax.set(xlabel="mean predicted probability", ylabel="observed positive rate")
        ax.legend(fontsize=7, loc="upper left")
    return fig


def learning_curves_figure(
    panels: Sequence[tuple[str, Mapping[int, Sequence[dict[str, Any]]]]],
) -> Figure:
    """Train (dashed) and validation (solid) loss per epoch of every seed of each winner:
    (label, {seed: its learning curve}), the seeds as they ran (the evaluation seeds)."""
    fig, axes = panel_grid(len(panels))
    for ax, (label, curves) in zip(axes, panels, strict=True):
        for color, (seed, curve) in enumerate(curves.items()):
            epochs = [p["epoch"] for p in curve]
            train, val = ([as_float(p.get(k)) for p in curve] for k in ("train_loss", "val_loss"))
            ax.plot(epochs, train, ls="--", color=f"C{color}", label=f"seed {seed} train")
            ax.plot(epochs, val, marker="o", ms=3, color=f"C{color}", label=f"seed {seed} val")
        if not any(curves.values()):
            _empty(ax, f"{label}: no stored learning curve")
            continue
        ax.set(xlabel="epoch", ylabel="log loss", title=f"{label}: final-evaluation runs")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def cross_budget_figure(
    labels: Sequence[str], values: Sequence[Sequence[Any]], title: str
) -> Figure:
    """Cross-budget matrix: row i = training values of budget i, column j = architecture
    of budget j, cell = validation log loss; the diagonal (the winners) is outlined."""
    grid = np.array([[as_float(v) for v in row] for row in values], dtype=float)
    n = len(labels)
    fig = Figure(figsize=(1.6 * n + 2.8, 1.2 * n + 1.8), layout="constrained")
    ax = fig.add_subplot()
    norm = _norm(grid)
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis_r", norm=norm)
    _annotate_cells(ax, grid, norm, bold_diagonal=True)
    for k in range(n):
        ax.add_patch(
            Rectangle((k - 0.5, k - 0.5), 1, 1, fill=False, ec="red", lw=1.5, clip_on=False)
        )
    ax.set_xticks(range(n), labels)
    ax.set_yticks(range(n), labels)
    ax.set(xlabel="architecture of budget", ylabel="training values from budget", title=title)
    fig.colorbar(image, ax=ax, label="validation log loss")
    return fig


def baseline_figure(
    models: Sequence[tuple[str, MetricSummary, MetricSummary, bool]], title: str
) -> Figure:
    """Forest plot of test log loss and AUC: (label, log-loss summary, AUC summary,
    is_baseline). Light thick bars: test-date interval; dark thin bars: seed interval
    (a baseline is deterministic and has none)."""
    fig = Figure(figsize=(10, 0.45 * len(models) + 1.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    rows = np.arange(len(models))[::-1]
    for ax, k, name in ((axes[0], 1, "test log loss"), (axes[1], 2, "test AUC")):
        for y, model in zip(rows, models, strict=True):
            m, baseline = model[k], model[3]
            color = "grey" if baseline else "C0"
            if all_finite(m.boot_low, m.boot_high):
                ax.hlines(y, m.boot_low, m.boot_high, color=color, alpha=0.3, lw=7)
            if not baseline and all_finite(m.seed_low, m.seed_high):
                ax.hlines(y, m.seed_low, m.seed_high, color=color, lw=2)
            ax.plot([m.mean], [y], "D" if baseline else "o", color=color)
        ax.set_xlabel(name)
        ax.grid(True, axis="x", alpha=0.3)
    # AUC lives in [0, 1]; a two-seed Student-t interval can overshoot it and squash the rest.
    axes[1].set_xlim(0, 1)
    axes[1].axvline(0.5, ls=":", color="grey")
    axes[0].set_yticks(rows, [m[0] for m in models])
    fig.suptitle(title, fontsize=10)
    return fig


def folds_figure(
    folds: Sequence[str], series: Sequence[tuple[str, Sequence[LossSummary], bool]], title: str
) -> Figure:
    """Test log loss on each walk-forward fold: one line per model.

    folds: a label per fold (its test period). series: (label, a log-loss summary
    per fold with mean, boot_low, boot_high, is_baseline); a transformer's
    test-date interval is drawn as a band, a baseline is a dashed grey line.
    """
    fig = Figure(figsize=(max(6.0, 1.5 * len(folds) + 2.5), 4.6), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(folds))
    transformer, baseline_markers = 0, iter("Ds^vP" * 4)
    for label, per_fold, baseline in series:
        means = [as_float(f.mean) for f in per_fold]
        if baseline:
            marker = next(baseline_markers)
            ax.plot(x, means, ls="--", marker=marker, ms=5, lw=1, color="grey", label=label)
            continue
        color = f"C{transformer}"
        transformer += 1
        low = [as_float(f.boot_low) for f in per_fold]
        high = [as_float(f.boot_high) for f in per_fold]
        ax.fill_between(x, low, high, color=color, alpha=0.12)
        ax.plot(x, means, marker="o", color=color, lw=2, label=label)
    ax.set_xticks(x, folds, fontsize=8)
    ax.set_xlabel("test fold (first - last test date)")
    ax.set_ylabel("test log loss (nats)")
    ax.set_title(_title(title), fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def pbo_figure(panels: Sequence[tuple[str, PBOSummary | None]]) -> Figure:
    """The logit distribution of each study's CSCV: (label, its PBO).

    A logit below zero is a half/half split of the validation dates where the
    in-sample best trial ranks below the out-of-sample median; PBO is their share,
    and the title sets it against pure-noise searches of the same shape.
    """
    fig, axes = panel_grid(len(panels))
    for ax, (label, pbo) in zip(axes, panels, strict=True):
        histogram = pbo.logit_histogram if pbo else None
        if not histogram or not histogram.counts:
            _empty(ax, f"{label}: no PBO (see the table)")
            continue
        counts, edges = histogram.counts, np.asarray(histogram.edges, dtype=float)
        centres, widths = (edges[1:] + edges[:-1]) / 2, np.diff(edges)
        colors = ["C3" if c < 0 else "C0" for c in centres]
        ax.bar(centres, counts, width=widths, color=colors, alpha=0.75, ec="white")
        ax.axvline(0, color="k", lw=1, ls=":")
        ax.set(
            xlabel="logit of the in-sample winner's out-of-sample rank",
            ylabel="half/half splits",
            title=f"{label}: PBO {fmt(pbo.value, 2)}{_null_words(pbo)}",
        )
        ax.grid(True, axis="y", alpha=0.3)
    return fig


def _null_words(pbo: PBOSummary) -> str:
    """' (pure noise 5-95%: 0.20-0.80)' after a PBO with a null reference, else ''."""
    ref = pbo.null_reference
    return "" if ref is None else f" (pure noise 5-95%: {fmt(ref.q05, 2)}-{fmt(ref.q95, 2)})"


def joint_law_figure(points: JointPoints, fit: JointFit, title: str) -> Figure:
    """Iso-loss contours of the fitted L(N, D) over parameters x training samples, with
    the runs on them (colour: observed test log loss) and the largest run marked."""
    n = np.asarray(points.n_params, dtype=float)
    d = np.asarray(points.train_samples, dtype=float)
    loss = np.asarray(points.test_log_loss, dtype=float)
    fig = Figure(figsize=(7.0, 5.0), layout="constrained")
    ax = fig.add_subplot()
    grid_n = np.geomspace(n.min() / 2, n.max() * 2, 80)
    grid_d = np.geomspace(d.min() / 2, d.max() * 2, 80)
    mesh_n, mesh_d = np.meshgrid(grid_n, grid_d)
    predicted = fit.predict(mesh_n, mesh_d)
    norm = _norm(np.concatenate([loss, predicted.ravel()]))
    contours = ax.contour(mesh_n, mesh_d, predicted, levels=12, cmap="viridis_r", norm=norm)
    ax.clabel(contours, fontsize=7, fmt="%.3f")
    points_drawn = ax.scatter(n, d, c=loss, cmap="viridis_r", norm=norm, ec="k", s=36, zorder=3)
    ax.scatter(
        [n.max()],
        [d.max()],
        marker="*",
        s=220,
        color="gold",
        ec="k",
        zorder=4,
        label="largest run (marginal value)",
    )
    ax.set(xscale="log", yscale="log", xlabel="parameters N", ylabel="training samples D")
    for axis in (ax.xaxis, ax.yaxis):  # minor labels of a short log axis overlap
        axis.set_minor_formatter(NullFormatter())
    ax.set_title(_title(title), fontsize=10)
    ax.grid(True, which="both", alpha=0.2)
    ax.legend(fontsize=8, loc="lower right")
    fig.colorbar(points_drawn, ax=ax, label="test log loss (runs); contours: the fitted law")
    return fig
