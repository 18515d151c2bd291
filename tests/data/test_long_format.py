"""One long file of many symbols (`--source csv --path FILE`), real files in tmp_path:
each symbol's rows, validated as a folder's files are, every error naming the symbol,
the file and the file's own row."""

import numpy as np
import pandas as pd
import pytest

from finscale.data.long_format import long_file_symbols, read_long_file
from finscale.data.sources import load_csv, load_long
from finscale.data.validate import CLOSE_ONLY, validate_ohlcv
from finscale.errors import DataValidationError, InputError

DAYS = 300


@pytest.fixture(scope="module")
def long_frame(sp500_frame, nasdaq_frame) -> pd.DataFrame:
    """SP500 and NASDAQ's last days as a vendor exports them: one row per symbol and
    day, interleaved by date, lower-case columns, and a column finscale does not read."""
    parts = []
    for symbol, frame in {"SP500": sp500_frame, "NASDAQ": nasdaq_frame}.items():
        part = frame.iloc[-DAYS:].rename_axis("Date").reset_index()
        part.columns = [str(c).lower().replace(" ", "_") for c in part.columns]
        part.insert(1, "symbol", symbol)
        part["exchange"] = "X"
        parts.append(part)
    out = pd.concat(parts).sort_values(["date", "symbol"], kind="stable")
    out["date"] = out["date"].dt.strftime("%Y-%m-%d")
    return out.reset_index(drop=True)


def write(frame: pd.DataFrame, path):
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_each_symbol_of_a_long_file_validates_as_its_own_file(
    tmp_path, long_frame, sp500_frame, nasdaq_frame, suffix
):
    path = write(long_frame, tmp_path / f"prices{suffix}")
    raw = load_csv(path, ["SP500", "NASDAQ"])
    for symbol, frame in {"SP500": sp500_frame, "NASDAQ": nasdaq_frame}.items():
        expected = validate_ohlcv(frame.iloc[-DAYS:], "bundled")
        pd.testing.assert_frame_equal(raw[symbol].validate(), expected)
        assert raw[symbol].ignored == ("exchange",)
        assert raw[symbol].where == str(path)
    # each symbol's rows keep their row numbers in the file (1-based, header excluded)
    assert raw["NASDAQ"].rows[:3].tolist() == [1, 3, 5]
    assert long_file_symbols(path) == ("NASDAQ", "SP500")


def test_the_long_file_is_read_once_for_all_its_symbols(tmp_path, long_frame, monkeypatch):
    path = write(long_frame, tmp_path / "prices.parquet")
    reads = []
    real = pd.read_parquet
    monkeypatch.setattr(pd, "read_parquet", lambda *a, **k: reads.append(a) or real(*a, **k))
    assert set(load_long(path, ["SP500", "NASDAQ"])) == {"SP500", "NASDAQ"}
    assert len(reads) == 1


def _corrupt(frame, row, column, value):
    frame = frame.copy()
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    return frame


# (column, value, message) of one bad NASDAQ cell at data row 101 of the file (row
# index 100; the file interleaves the two symbols, so it is NASDAQ's 51st row).
BAD_CELLS = [
    ("date", "yesterday", "unparseable date 'yesterday' for symbol NASDAQ"),
    ("close", "abc", "non-numeric value 'abc' for symbol NASDAQ"),
    ("close", "", "missing (NaN) value for symbol NASDAQ"),
    ("close", -1.0, "non-positive price -1 for symbol NASDAQ"),
    ("volume", -5, "negative volume -5 for symbol NASDAQ"),
    ("high", 1.0, "< Low"),
]


@pytest.mark.parametrize(
    ("suffix", "column", "value", "message"),
    [
        (suffix, *case)
        for suffix in (".csv", ".parquet")
        for case in BAD_CELLS
        if not (suffix == ".parquet" and case[1] == "abc")  # a parquet number is no text
    ],
)
def test_a_bad_cell_names_the_symbol_the_file_and_its_row(
    tmp_path, long_frame, suffix, column, value, message
):
    assert long_frame.loc[100, "symbol"] == "NASDAQ"
    bad = _corrupt(long_frame, 100, column, value)
    if suffix == ".parquet" and column != "date":
        bad[column] = pd.to_numeric(bad[column], errors="coerce")  # a typed column
    path = write(bad, tmp_path / f"prices{suffix}")
    raw = load_long(path, ["NASDAQ"])["NASDAQ"]
    with pytest.raises(DataValidationError) as caught:
        raw.validate()
    assert message in caught.value.what and "for symbol NASDAQ" in caught.value.what
    assert caught.value.where.startswith(f"{path}, column ")
    assert ", row 101" in caught.value.where


def test_a_duplicate_date_names_the_symbol_and_both_file_rows(tmp_path, long_frame):
    dates = long_frame["date"].to_numpy()
    bad = long_frame.copy()
    bad.loc[100, "date"] = dates[98]  # NASDAQ's row 99 again, at row 101
    path = write(bad, tmp_path / "prices.parquet")
    with pytest.raises(DataValidationError) as caught:
        load_long(path, ["NASDAQ"])["NASDAQ"].validate()
    assert str(caught.value) == (
        f"duplicate date {dates[98]} for symbol NASDAQ, also at row 99 "
        f"({path}, column Date, row 101)"
    )


def test_a_close_only_long_file_carries_only_its_columns(tmp_path, long_frame):
    path = write(long_frame[["date", "symbol", "close"]], tmp_path / "closes.csv")
    raw = load_long(path, ["SP500"])["SP500"]
    assert list(validate_ohlcv(raw.frame, raw.where, CLOSE_ONLY).columns) == ["Close"]
    assert raw.validate(CLOSE_ONLY).index.is_monotonic_increasing
    with pytest.raises(DataValidationError, match="missing column 'Open' for symbol SP500"):
        raw.validate()


def test_a_long_file_without_a_symbol_column_says_so(tmp_path, long_frame):
    path = write(long_frame.drop(columns="symbol"), tmp_path / "prices.csv")
    with pytest.raises(DataValidationError, match="missing column 'symbol' of a long file") as c:
        load_long(path, ["SP500"])
    assert c.value.where == str(path)
    with pytest.raises(DataValidationError, match="missing column 'symbol'"):
        long_file_symbols(path)


def test_a_row_without_a_symbol_is_named(tmp_path, long_frame):
    path = write(_corrupt(long_frame, 7, "symbol", " "), tmp_path / "prices.csv")
    with pytest.raises(DataValidationError, match="missing symbol") as caught:
        read_long_file(path)
    assert caught.value.where == f"{path}, column symbol, row 8"


def test_a_symbol_that_reads_as_missing_stays_a_symbol(tmp_path, long_frame):
    frame = long_frame.assign(symbol=np.where(long_frame["symbol"] == "SP500", "NA", "NAN"))
    path = write(frame, tmp_path / "prices.csv")
    assert long_file_symbols(path) == ("NA", "NAN")
    assert len(load_long(path, ["NA"])["NA"].validate()) == DAYS


def test_a_date_and_symbol_index_stored_by_pandas_is_read(tmp_path, long_frame):
    path = tmp_path / "indexed.parquet"
    long_frame.set_index(["date", "symbol"]).to_parquet(path)
    raw = load_long(path, ["SP500"])["SP500"]
    assert len(raw.validate()) == DAYS and raw.ignored == ("exchange",)
    assert long_file_symbols(path) == ("NASDAQ", "SP500")


def test_an_absent_symbol_and_a_wrong_path_are_named(tmp_path, long_frame):
    path = write(long_frame, tmp_path / "prices.csv")
    with pytest.raises(InputError, match=r"symbol NASDAC not found; did you mean NASDAQ"):
        load_long(path, ["NASDAC"])
    with pytest.raises(InputError, match=r"data path not found") as caught:
        load_csv(tmp_path / "nope.csv", ["SP500"])
    assert caught.value.where == "data.path"
    (tmp_path / "prices.txt").write_text("x")
    with pytest.raises(InputError, match="neither a folder nor a long"):
        load_csv(tmp_path / "prices.txt", ["SP500"])
