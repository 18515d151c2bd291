import arch.data.sp500
import pytest


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
