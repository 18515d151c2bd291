"""What the report draws of one budget's study besides scaling.json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StudyFiles:
    """The stored records of one study the report draws from (`finscale.scale` reads
    them from a run directory)."""

    info: dict[str, Any]  # study.json ({} when missing)
    trials: list[dict[str, Any]]  # every finished trial record, by number
    curves: dict[int, list[dict[str, Any]]]  # by seed: its final-evaluation learning curve
