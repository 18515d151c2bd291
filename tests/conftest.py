import os
import re
import uuid

import arch.data.sp500
import pytest

from tests.postgres import PostgresServer, find_bin_dir

# The tiny scaling study, run once per session for tests/scale and tests/report.
from tests.scale.tiny import tiny_scale_run  # noqa: F401

NO_POSTGRES = (
    "no PostgreSQL binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH; "
    "install Debian's postgresql to run the multi-machine tests"
)


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
def postgres_server():
    """A real PostgreSQL server for the whole session, deleted at the end.

    Skipped where PostgreSQL is not installed, unless FINSCALE_REQUIRE_POSTGRES=1 (CI), where
    a missing server is a failure rather than a silent skip.
    """
    bin_dir = find_bin_dir()
    if bin_dir is None:
        if os.environ.get("FINSCALE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"FINSCALE_REQUIRE_POSTGRES=1 but {NO_POSTGRES}", pytrace=False)
        pytest.skip(NO_POSTGRES)
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
