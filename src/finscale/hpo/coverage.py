"""How many trials each value of each architecture dimension received, and how they ended.

TPE may never return to a value after one poor early trial, so "the deepest
model is worse" can rest on a single pruned trial. Counting trials per value,
zeros included, shows which conclusions stand on evidence and which on silence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from finscale.hpo.space import DIMENSIONS

# Record states (Optuna's TrialState names) and the count each one adds to.
STATE_COUNT_KEYS = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}
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
        seen = {
            int(r["architecture"][name])
            for r in with_architecture
            if r["architecture"].get(name) is not None
        }
        declared = {int(v) for v in values.get(name, ())}
        cells = {str(v): dict.fromkeys(COUNT_KEYS, 0) for v in sorted(declared | seen)}
        for record in with_architecture:
            value = record["architecture"].get(name)
            if value is None:
                continue
            cell = cells[str(int(value))]
            cell["trials"] += 1
            state_key = STATE_COUNT_KEYS.get(record.get("state", ""))
            if state_key is not None:
                cell[state_key] += 1
            if record.get("state") == "COMPLETE" and record.get("duplicate_of") is not None:
                cell["duplicates"] += 1
        result[name] = cells
    return result


def render_coverage(cov: dict[str, dict[str, dict[str, int]]]) -> str:
    """One markdown table per dimension of a `coverage` result, under a ### heading."""
    sections = []
    # Fixed dimension order: a result read back from JSON has its keys sorted.
    names = [n for n in DIMENSIONS if n in cov] + sorted(n for n in cov if n not in DIMENSIONS)
    for name in names:
        cells = cov[name]
        lines = [
            f"### {name}",
            "",
            f"| {name} | " + " | ".join(COUNT_KEYS) + " |",
            "|---:|" + "---:|" * len(COUNT_KEYS),
        ]
        # Keys of a result read back from JSON may be sorted as text ("128" < "16").
        for value, counts in sorted(cells.items(), key=lambda item: int(item[0])):
            row = " | ".join(str(counts.get(key, 0)) for key in COUNT_KEYS)
            # A value never tried is the finding a reader must not miss.
            marker = " (never tried)" if counts.get("trials", 0) == 0 else ""
            lines.append(f"| {value}{marker} | {row} |")
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"
