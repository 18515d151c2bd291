"""A floor's `__init__` is its face: every name in its `__all__` resolves, and every
name another floor imports from one of its submodules is on the face."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import finscale

PACKAGE_DIR = Path(finscale.__file__).parent
BENCHMARKS_DIR = PACKAGE_DIR.parents[1] / "benchmarks"
FACES = ("data", "train")


def names_imported_from(floor: str) -> dict[str, str]:
    """Each name that a module outside `floor` (or a benchmark script) imports from one
    of its submodules, at the top or inside a function, with the importing file."""
    found = {}
    outside = [p for p in PACKAGE_DIR.rglob("*.py") if p.relative_to(PACKAGE_DIR).parts[0] != floor]
    for path in sorted([*outside, *BENCHMARKS_DIR.glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                f"finscale.{floor}."
            ):
                for alias in node.names:
                    found[alias.name] = str(path.relative_to(PACKAGE_DIR.parents[1]))
    return found


@pytest.mark.parametrize("floor", FACES)
def test_every_name_of_a_face_resolves(floor):
    face = importlib.import_module(f"finscale.{floor}")
    for name in face.__all__:
        assert getattr(face, name) is not None, f"finscale.{floor}.{name}"


@pytest.mark.parametrize("floor", FACES)
def test_the_face_holds_what_other_floors_use(floor):
    face = importlib.import_module(f"finscale.{floor}")
    missing = {n: where for n, where in names_imported_from(floor).items() if n not in face.__all__}
    assert not missing, f"finscale.{floor} does not re-export {missing}"
