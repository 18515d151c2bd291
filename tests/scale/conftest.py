import shutil

import pytest


@pytest.fixture
def run_copy(tiny_scale_run, tmp_path):
    """A private copy of the session's tiny study, for tests that change it."""
    copy = tmp_path / "run"
    shutil.copytree(tiny_scale_run, copy)
    return copy


@pytest.fixture
def walk_copy(tiny_walk_forward_run, tmp_path):
    """A private copy of the session's tiny walk-forward study."""
    target = tmp_path / "run"
    shutil.copytree(tiny_walk_forward_run, target)
    return target
