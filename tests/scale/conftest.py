import shutil

import pytest


@pytest.fixture
def run_copy(tiny_scale_run, tmp_path):
    """A private copy of the session's tiny study, for tests that change it."""
    copy = tmp_path / "run"
    shutil.copytree(tiny_scale_run, copy)
    return copy
