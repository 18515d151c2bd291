"""The house's floor order (DESIGN.md): each floor imports only the floors below it,
and no two modules import each other, however deep inside a function the import
hides."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import finscale

PACKAGE_DIR = Path(finscale.__file__).parent
# Lowest first. A module of the ground floor is named by its file; every other
# floor is a subpackage (or the config module).
FLOORS = (
    ("ground", ("errors", "atomic", "units", "document")),
    ("config", ("config",)),
    ("data", ("data",)),
    ("model", ("model",)),
    ("train", ("train",)),
    ("execution", ("execution",)),
    ("hpo", ("hpo",)),
    ("analysis", ("analysis",)),
    ("report", ("report",)),
    ("scale", ("scale",)),
    ("cli", ("cli",)),
)


def module_name(path: Path) -> str:
    parts = ["finscale", *path.relative_to(PACKAGE_DIR).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def floor_of(module: str) -> int:
    """Index of a finscale module's floor; the package's own __init__ is the ground."""
    parts = module.split(".")
    if len(parts) == 1:
        return 0
    for index, (_, heads) in enumerate(FLOORS):
        if parts[1] in heads:
            return index
    raise AssertionError(f"{module} is on no floor of DESIGN.md; add it to FLOORS")


def imports_in(source: str, package: str) -> set[str]:
    """Every dotted name a module's source imports, at the top or inside a function;
    `from a import b` counts as importing `a.b` where that is a finscale module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return found


def imported_modules(module: str) -> set[str]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return {m for m in imports_in(path.read_text(), package) if m in MODULES and m != module}


GRAPH = {module: imported_modules(module) for module in MODULES}


def test_the_floors_cover_every_module():
    for module in MODULES:
        floor_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_floor_above_its_own(module):
    own = floor_of(module)
    upward = sorted(m for m in GRAPH[module] if floor_of(m) > own)
    assert not upward, (
        f"{module} ({FLOORS[own][0]} floor) imports {upward}, which live on higher floors"
    )


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph (its modules in order), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_hidden_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_imports_inside_functions_and_relative_imports_are_read():
    source = (
        "import os\n"
        "from finscale.data import features\n"
        "def f():\n"
        "    from finscale.units import parse_budget\n"
        "    from . import labels\n"
    )
    found = imports_in(source, "finscale.data")
    assert {"finscale.data.features", "finscale.units", "finscale.data.labels"} <= found


# A flag spelled like `--horizon` anywhere in a string: below the CLI, errors and
# messages name the config field (`data.horizon_days`) or a neutral name (`run_dir`),
# and the CLI alone turns them into the flag the user typed.
FLAG = re.compile(r"(?<![\w-])--[A-Za-z]")


def flag_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of each string literal of `source` that spells a flag; docstrings,
    which may tell how a command calls the code, are left out."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and FLAG.search(node.value)
    ]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if floor_of(m) < len(FLOORS) - 1))
def test_no_module_below_the_cli_spells_a_flag(module):
    found = flag_literals(MODULES[module].read_text())
    assert not found, f"{module} spells a flag; name the config field instead: {found}"


def test_flag_literals_are_found_in_plain_and_formatted_strings_but_not_docstrings():
    source = (
        '"""Run `finscale hpo --budget 2M`."""\n'
        "def f(n):\n"
        '    """Called by `scale --workers N`."""\n'
        '    raise InputError(f"got {n}; use --context", "--context")\n'
        'x = "a---b -- c 2--d"\n'
    )
    assert sorted(text for _, text in flag_literals(source)) == ["--context", "; use --context"]


# ---------------------------------------------------------------- faces

# The floors that are packages: each one's `__init__` is its face, the only way in
# for the other floors (Optuna's `optuna/pruners/__init__.py` is the example).
PACKAGES = tuple(
    head for _, heads in FLOORS for head in heads if (PACKAGE_DIR / head / "__init__.py").exists()
)


def face_names(package: str) -> set[str]:
    """The names a floor's face binds: what its `__init__` imports or defines."""
    tree = ast.parse((PACKAGE_DIR / package / "__init__.py").read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom | ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def past_the_face(source: str, own: str) -> list[str]:
    """The imports of a module on floor package `own` that reach into another floor's
    submodule: `from finscale.hpo.attrs import X`, `import finscale.hpo.attrs`, or
    `from finscale.hpo import attrs` where the face does not bind `attrs` itself."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            dotted = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            dotted = [node.module]
            if node.module.count(".") == 1:
                package = node.module.split(".")[1]
                if package in PACKAGES and package != own:
                    bound = face_names(package)
                    dotted += [f"{node.module}.{a.name}" for a in node.names if a.name not in bound]
        else:
            continue
        for name in dotted:
            parts = name.split(".")
            inside = parts[0] == "finscale" and len(parts) > 2 and parts[1] in PACKAGES
            if inside and parts[1] != own and name in MODULES:
                found.append(name)
    return found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_other_floors_come_in_through_the_face(module):
    own = module.split(".")[1] if "." in module else ""
    past = past_the_face(MODULES[module].read_text(), own)
    assert not past, f"{module} reaches past a face into {past}: import from the package"


def test_the_face_check_sees_a_submodule_import():
    assert past_the_face("from finscale.hpo.study import run_study", "scale") == [
        "finscale.hpo.study"
    ]
    assert past_the_face("from finscale.execution import attrs", "scale") == [
        "finscale.execution.attrs"
    ]
    assert past_the_face("import finscale.data.store", "cli") == ["finscale.data.store"]
    assert past_the_face("from finscale.hpo.study import run_study", "hpo") == []
    assert past_the_face("from finscale.hpo import run_study", "scale") == []


@pytest.mark.parametrize("package", PACKAGES)
def test_every_name_on_a_face_resolves(package):
    face = importlib.import_module(f"finscale.{package}")
    assert face.__all__, f"finscale.{package} has an empty __all__"
    unbound = [name for name in face.__all__ if not hasattr(face, name)]
    assert not unbound, f"finscale.{package}.__all__ names {unbound}, which it does not bind"
    assert set(face.__all__) <= face_names(package)
