import os
import re
import shutil
import uuid
from pathlib import Path

import arch.data.sp500
import pytest

from tests.postgres import PostgresServer, find_bin_dir

# The tiny scaling study, run once per session for tests/scale and tests/report.
from tests.scale.tiny import tiny_scale_run, tiny_walk_forward_run  # noqa: F401

E2E_DIR = Path(__file__).parent / "e2e"
POSTGRES_FIXTURES = {"postgres_server", "postgres_url"}
# Session fixtures that cost far more than the inner loop's budget: a test that needs one
# is slow even where its own body is quick.
SLOW_FIXTURES = {
    "tiny_scale_run",  # a whole tiny scaling study (tests/scale/tiny.py)
    "tiny_walk_forward_run",  # the same study scored walk-forward
    "real_study",  # a real study of several trials (tests/hpo/test_summary.py)
}
# The session's tiny studies (tests/scale/tiny.py): built once per process that needs one.
STUDY_FIXTURES = {"tiny_scale_run", "tiny_walk_forward_run"}
NO_POSTGRES = (
    "no PostgreSQL binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH; "
    "install Debian's postgresql to run the multi-machine tests"
)
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Headless as root (CI) and off the network: no sandbox, GPU, first-run page or background
# traffic. The caller adds a fresh --user-data-dir.
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
NO_BROWSER = (
    f"no headless browser on PATH (looked for {', '.join(BROWSERS)}); "
    "install Debian's chromium to open the report in a real browser"
)


def pytest_configure(config):
    """Under pytest-xdist (`-n 2`), one thread per worker process and its children: the
    workers already fill the cores, and two torch or BLAS pools per core only spin
    against each other (a small training step runs many times slower)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import threadpoolctl
        import torch

        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)
        threadpoolctl.threadpool_limits(1)


def pytest_collection_modifyitems(config, items):
    """Mark every CLI test (tests/e2e) `e2e`, every test on the PostgreSQL server
    `postgres` and every test on the tiny scaling study `slow`, so `-m` selects them
    without a marker to forget."""
    for item in items:
        fixtures = set(item.fixturenames)
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)
        if POSTGRES_FIXTURES & fixtures:
            item.add_marker(pytest.mark.postgres)
        if SLOW_FIXTURES & fixtures:
            item.add_marker(pytest.mark.slow)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items[:] = heavy_files_first(items)


def heavy_files_first(items):
    """`items` in the order `-n 2 --dist worksteal` runs best: the files that use a
    session's tiny study first, then the files with slow tests, then the rest, each
    file's tests together and in their order.

    worksteal hands the first worker the first half of the items and the second the
    rest; a worker that runs dry takes the end of the other's queue. The studies at the
    front run on one worker, so each is built once, not once per worker; the slow files
    next run early, so the run ends on short tests instead of one worker idling while
    the other finishes a long one; whole files keep their module fixtures built once."""
    study = {item.path for item in items if STUDY_FIXTURES & set(item.fixturenames)}
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    return sorted(items, key=lambda item: (item.path not in study, item.path not in slow))


def skip_unless_required(variable, reason):
    """Skip for want of `reason`, or fail where `variable`=1 (CI), where the test must run."""
    if os.environ.get(variable) == "1":
        pytest.fail(f"{variable}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sp500_frame():
    return arch.data.sp500.load()


@pytest.fixture(scope="session")
def sp500_close(sp500_frame):
    return sp500_frame["Close"].to_numpy(float)


@pytest.fixture(scope="session")
def nasdaq_frame():
    import arch.data.nasdaq

    return arch.data.nasdaq.load()


def write_symbol_csv(folder, symbol, frame, rows=None):
    """Write a bundled frame as a user's SYMBOL.csv (Date,Open,High,Low,Close,Adj Close,Volume)."""
    folder.mkdir(parents=True, exist_ok=True)
    subset = frame if rows is None else frame.iloc[rows]
    path = folder / f"{symbol}.csv"
    subset.rename_axis("Date").reset_index().to_csv(path, index=False, date_format="%Y-%m-%d")
    return path


@pytest.fixture
def csv_folder(tmp_path, sp500_frame, nasdaq_frame):
    """A user's data folder: the last 1000 days of S&P 500 and NASDAQ as CSV files."""
    folder = tmp_path / "prices"
    write_symbol_csv(folder, "SP500", sp500_frame, slice(-1000, None))
    write_symbol_csv(folder, "NASDAQ", nasdaq_frame, slice(-1000, None))
    return folder


@pytest.fixture(scope="session")
def headless_browser():
    """The command line of a headless Chromium, less its --user-data-dir.

    Skipped where none is on PATH, unless FINSCALE_REQUIRE_BROWSER=1 (CI) makes that a
    failure. Session-scoped, so the skip comes before a test's costlier fixtures are built.
    """
    browser = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if browser is None:
        skip_unless_required("FINSCALE_REQUIRE_BROWSER", NO_BROWSER)
    return [browser, *BROWSER_FLAGS]


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the whole session, deleted at the end.

    Skipped where PostgreSQL is not installed, unless FINSCALE_REQUIRE_POSTGRES=1 (CI), where
    a missing server is a failure rather than a silent skip.
    """
    bin_dir = find_bin_dir()
    if bin_dir is None:
        skip_unless_required("FINSCALE_REQUIRE_POSTGRES", NO_POSTGRES)
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def postgres_url(postgres_server, request):
    """The URL (with password) of a fresh, empty database for this test alone."""
    stem = re.sub(r"[^a-z0-9_]+", "_", request.node.name.lower()).strip("_")[:51] or "db"
    return postgres_server.create_database(f"{stem}_{uuid.uuid4().hex[:8]}")
