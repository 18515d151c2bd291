"""Benchmarks as the tests import them: by file path, and checked to leave the process
alone on import."""

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def loaded_benchmark(name: str) -> Iterator[ModuleType]:
    """Yield `benchmarks/{name}.py` as a module (a fixture's body), then forget it and
    the sibling benchmarks it imported.

    Only benchmark modules are forgotten: a library module the benchmark imported first
    (torch._dynamo, say) stays, since importing some of them twice registers their
    operators twice and fails every later test that reaches them.

    Imported, a benchmark leaves the environment and torch's thread count alone (it sets
    them only as a script): a thread count set here would reach every later test and
    subprocess of the suite and change its sums' rounding."""
    before = set(sys.modules)
    threads = os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads()
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    assert (os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads()) == threads
    yield module
    for loaded in set(sys.modules) - before:
        path = getattr(sys.modules[loaded], "__file__", None)
        if loaded == name or (path is not None and Path(path).parent == BENCHMARKS):
            del sys.modules[loaded]
