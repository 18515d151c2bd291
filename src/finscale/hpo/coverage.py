"""How many trials each value of each architecture dimension received, and how they ended.

TPE may never return to a value after one poor early trial, so "the deepest
model is worse" can rest on a single pruned trial. Counting trials per value,
zeros included, shows which conclusions stand on evidence and which on silence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from finscale.document import Block, Heading, Table
from finscale.document import render_markdown as render_blocks
from finscale.hpo.space import DIMENSIONS
from finscale.hpo.trial_records import state_counts

COUNT_KEYS = ("trials", "complete", "pruned", "failed", "duplicates")


def coverage(
    records: list[dict[str, Any]], values: Mapping[str, Iterable[int]]
) -> dict[str, dict[str, dict[str, int]]]:
    """Trial counts by state for every value of d_model, n_layers and n_heads.

    Returns ``{dimension: {str(value): {"trials", "complete", "pruned", "failed",
    "duplicates"}}}``, values in ascending numeric order. Every value of
    ``values`` (e.g. ``ArchitectureSpace.values``) appears, even with no trial;
    a value a record holds but ``values`` lacks (an imported trial, a grid
    since narrowed) appears too, so no trial goes uncounted. Keys are strings
    so the result survives a JSON round trip unchanged.

    ``duplicates`` counts COMPLETE trials that reused a near-duplicate's value
    (non-null ``duplicate_of``); they are also counted in ``complete``. A
    record without an architecture (a trial that failed before one was chosen)
    belongs to no value and is not counted.
    """
    with_architecture = [r for r in records if r.get("architecture")]
    result: dict[str, dict[str, dict[str, int]]] = {}
    for name in DIMENSIONS:
        by_value: dict[int, list[dict[str, Any]]] = {int(v): [] for v in values.get(name, ())}
        for record in with_architecture:
            value = record["architecture"].get(name)
            if value is not None:
                by_value.setdefault(int(value), []).append(record)
        result[name] = {str(v): _cell(by_value[v]) for v in sorted(by_value)}
    return result


def _cell(records: list[dict[str, Any]]) -> dict[str, int]:
    counts = state_counts(records)
    return {"trials": len(records), **{key: counts[key] for key in COUNT_KEYS[1:]}}


def coverage_blocks(cov: dict[str, dict[str, dict[str, int]]]) -> list[Block]:
    """One table per dimension of a `coverage` result, under a level-3 heading."""
    blocks: list[Block] = []
    # Fixed dimension order: a result read back from JSON has its keys sorted.
    names = [n for n in DIMENSIONS if n in cov] + sorted(n for n in cov if n not in DIMENSIONS)
    for name in names:
        rows = []
        # Keys of a result read back from JSON may be sorted as text ("128" < "16").
        for value, counts in sorted(cov[name].items(), key=lambda item: int(item[0])):
            # A value never tried is the finding a reader must not miss.
            marker = " (never tried)" if counts.get("trials", 0) == 0 else ""
            rows.append((f"{value}{marker}", *(str(counts.get(key, 0)) for key in COUNT_KEYS)))
        header = (name, *COUNT_KEYS)
        blocks += [Heading(name, 3), Table(header, tuple(rows), align="r" * len(header))]
    return blocks


def render_coverage(cov: dict[str, dict[str, dict[str, int]]]) -> str:
    """The markdown of `coverage_blocks`."""
    return render_blocks(coverage_blocks(cov))
