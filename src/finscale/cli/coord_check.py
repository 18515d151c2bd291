"""`finscale coord-check`: does a parametrization keep every layer's activations the
same size as the model grows? A figure and a JSON of a few training steps per shape."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from finscale.atomic import check_folder
from finscale.cli.options import StoreOpt, store_dir
from finscale.cli.progress import console
from finscale.errors import InputError
from finscale.train import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DEPTHS,
    DEFAULT_LEARNING_RATE,
    DEFAULT_SEEDS,
    DEFAULT_STEPS,
    DEFAULT_WIDTHS,
)


def _sizes(text: str, option: str) -> list[int]:
    """`32,64,128` as integers, or one clear error naming the option; "" is none."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"need comma-separated integers, got {text!r}", option) from None


def coord_check_command(
    parametrization: Annotated[str, typer.Option(help="standard, mup or completep.")] = "mup",
    widths: Annotated[
        str, typer.Option(help="d_model values of the width sweep, comma-separated ('' skips).")
    ] = ",".join(map(str, DEFAULT_WIDTHS)),
    depths: Annotated[
        str, typer.Option(help="n_layers values of the depth sweep, comma-separated ('' skips).")
    ] = ",".join(map(str, DEFAULT_DEPTHS)),
    steps: Annotated[int, typer.Option(help="AdamW steps per shape.")] = DEFAULT_STEPS,
    lr: Annotated[
        float, typer.Option(help="Learning rate (large, so that growth shows).")
    ] = DEFAULT_LEARNING_RATE,
    seeds: Annotated[int, typer.Option(help="Seeds averaged per shape.")] = DEFAULT_SEEDS,
    batch_size: Annotated[
        int, typer.Option("--batch", help="Samples per step.")
    ] = DEFAULT_BATCH_SIZE,
    out: Annotated[Path, typer.Option(help="Folder of the figure and JSON.")] = Path(
        "runs/coord-check"
    ),
    store: StoreOpt = None,
) -> None:
    """Train each shape of a width sweep (at the smallest depth) and a depth sweep (at
    the smallest width) for a few steps at a large learning rate on the bundled S&P 500
    data, and write every layer's mean absolute activation by step and size:
    OUT/coord_check_{parametrization}.json and .png. Under mup the width curves are
    flat (growth exponent near 0); under completep the depth curves too."""
    from finscale.atomic import write_bytes_atomic, write_json_atomic
    from finscale.config import DataConfig
    from finscale.data import DataStore, build_dataset
    from finscale.model import PARAMETRIZATIONS
    from finscale.report import coord_check_figure, png
    from finscale.train import check_arguments, coord_check, coord_check_document

    if parametrization not in PARAMETRIZATIONS:
        raise InputError(
            f"unknown parametrization {parametrization!r}; use {', '.join(PARAMETRIZATIONS)}",
            "--parametrization",
        )
    width_sizes, depth_sizes = _sizes(widths, "--widths"), _sizes(depths, "--depths")
    if not width_sizes and not depth_sizes:
        raise InputError("both sweeps are empty; give --widths or --depths", "--widths")
    if lr <= 0:
        raise InputError(f"learning rate must be positive, got {lr}", "--lr")
    check_arguments(width_sizes, depth_sizes, steps, seeds, batch_size)
    check_folder(out, "output folder", "--out")
    with console.status("building dataset", spinner="dots"):
        dataset = build_dataset(DataConfig(), DataStore(store_dir(store)))
    with console.status(f"coordinate check, {parametrization}", spinner="dots"):
        results = coord_check(
            dataset.windows(),
            parametrization,
            width_sizes,
            depth_sizes,
            steps,
            lr,
            seeds,
            batch_size,
        )
    document = coord_check_document(parametrization, results, steps, lr, seeds, batch_size)
    stem = out / f"coord_check_{parametrization}"
    json_path = write_json_atomic(stem.with_suffix(".json"), document)
    png_path = write_bytes_atomic(stem.with_suffix(".png"), png(coord_check_figure(document)))
    for result in results:
        exponents = result.growth_exponents()
        line = "  ".join(f"{layer} {value:+.2f}" for layer, value in exponents.items())
        console.print(f"{result.sweep} {list(result.sizes)}: growth exponent {line}")
    console.print(f"wrote {json_path}\nwrote {png_path}")
