"""Forced extremes: the first trials of a study test the edges of the grid.

TPE's random start rarely lands on the smallest or largest value of a
dimension, yet those are the points a scaling study is asked about ("is the
deepest model at this budget any good?"). So the study opens with min and max
d_model, min and max n_layers, min and max n_heads, each with the other
dimensions as near their middle as the grid allows and the training values at
the middle of their ranges.
"""

from __future__ import annotations

from typing import Any

from finscale.config import SearchConfig
from finscale.hpo.space import DIMENSIONS, ArchitectureSpace
from finscale.model import Architecture

# The user attr that marks an enqueued extreme, e.g. "max n_layers".


def forced_extremes(space: ArchitectureSpace, search: SearchConfig) -> list[dict[str, Any]]:
    """Up to six `{"params": ..., "label": ...}`, in order min/max d_model, n_layers,
    n_heads; an architecture already chosen for an earlier extreme is not repeated
    (a dimension with one value has no separate min and max)."""
    middle_rank = {name: (len(space.values[name]) - 1) / 2 for name in DIMENSIONS}
    chosen: list[dict[str, Any]] = []
    seen: set[int] = set()
    for name in DIMENSIONS:
        for label, value in (("min", space.values[name][0]), ("max", space.values[name][-1])):
            on_edge = [a for a in space.allowed if getattr(a.config, name) == value]

            def off_middle(arch: Architecture, name: str = name) -> float:
                ranks = space.ranks(arch)
                return sum(
                    (ranks[f"{other}_rank"] - middle_rank[other]) ** 2
                    for other in DIMENSIONS
                    if other != name
                )

            arch = min(on_edge, key=lambda a: (off_middle(a), a.index))
            if arch.index in seen:
                continue
            seen.add(arch.index)
            chosen.append(
                {
                    "params": {**space.params_of(arch), **space.middle(search)},
                    "label": f"{label} {name}",
                    "arch_index": arch.index,
                }
            )
    return chosen
