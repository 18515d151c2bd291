"""The shipped reference figure of what a study can see: the primary slope that the
`control` preset (a planted-scaling study) measured, kept beside the presets in
`control_reference.json` and set by every report beside its own minimum detectable
slope."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

CONTROL_REFERENCE_FILE = "control_reference.json"


@dataclass(frozen=True)
class ControlReference:
    """The `control` preset's measured primary slope: `slope_per_decade` (nats of test
    log loss per tenfold parameters) with its `interval`, the `command` that measured
    it, when (`measured`) and a `note`."""

    preset: str
    slope_per_decade: float
    interval: tuple[float, float]
    command: str
    measured: str
    note: str = ""


def control_reference_path() -> Path:
    return Path(__file__).parent.parent / "presets" / CONTROL_REFERENCE_FILE


def control_reference(path: Path | None = None) -> ControlReference | None:
    """The reference figure in `path` (default: the shipped one), or None where the file
    is missing or does not hold a finite slope with a two-number interval: a report
    then says it has no reference rather than failing."""
    path = control_reference_path() if path is None else Path(path)
    try:
        data = json.loads(path.read_text())
        low, high = (float(v) for v in data["interval"])
        reference = ControlReference(
            preset=str(data["preset"]),
            slope_per_decade=float(data["slope_per_decade"]),
            interval=(low, high),
            command=str(data["command"]),
            measured=str(data["measured"]),
            note=str(data.get("note", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not all(math.isfinite(v) for v in (reference.slope_per_decade, low, high)):
        return None
    return reference
