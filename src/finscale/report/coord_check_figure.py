"""The coordinate-check figure: every layer's activation size against width (and
depth), one line per training step; flat lines are what muP and CompleteP promise."""

from __future__ import annotations

from typing import Any

from matplotlib import colormaps

from finscale.report.figures import panel_grid


def coord_check_figure(document: dict[str, Any]):
    """One row of panels per sweep (width, depth), one panel per layer, from the
    document `finscale.train.coord_check.coord_check_document` makes."""
    sweeps = document["sweeps"]
    layers = document["layers"]
    fig, axes = panel_grid(len(sweeps) * len(layers), width=2.9, height=2.5, max_cols=len(layers))
    colors = colormaps["viridis"]
    for row, (sweep, result) in enumerate(sweeps.items()):
        sizes = result["sizes"]
        for col, layer in enumerate(layers):
            ax = axes[row * len(layers) + col]
            by_size = result["activations"][layer]
            steps = len(by_size[0])
            for t in range(steps):
                values = [v[t] for v in by_size]
                ax.plot(
                    sizes,
                    values,
                    marker="o",
                    ms=3,
                    color=colors(t / max(1, steps - 1)),
                    label=f"step {t + 1}",
                )
            ax.set_xscale("log", base=2)
            if all(v > 0 for values in by_size for v in values):
                ax.set_yscale("log")
            exponent = result["growth_exponents"][layer]
            ax.set_title(f"{layer}: {sweep}^{exponent:+.2f}", fontsize=9)
            ax.set_xlabel("d_model" if sweep == "width" else "n_layers", fontsize=8)
            if col == 0:
                ax.set_ylabel("mean |activation|", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[len(layers) - 1].legend(fontsize=6, loc="best")
    fig.suptitle(
        f"coordinate check, {document['parametrization']}: AdamW at lr "
        f"{document['learning_rate']:g}, {document['seeds']} seeds; title: growth exponent at "
        "the last step",
        fontsize=10,
    )
    return fig
