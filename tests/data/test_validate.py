import io

import numpy as np
import pandas as pd
import pytest

from finscale.data.sources import load_folder
from finscale.data.validate import CLOSE_ONLY, validate_ohlcv
from finscale.errors import DataValidationError

GOOD = """Date,Open,High,Low,Close,Adj Close,Volume
2020-01-02,100,102,99,101,101,1000
2020-01-03,101,103,100,102,102,1100
2020-01-06,102,104,101,103,103,1200
2020-01-07,103,105,102,104,104,1300
"""


def read(text):
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def replace_cell(text, line, column, value):
    rows = [r.split(",") for r in text.strip().splitlines()]
    rows[line][rows[0].index(column)] = value
    return "\n".join(",".join(r) for r in rows) + "\n"


def test_good_file_is_returned_clean():
    out = validate_ohlcv(read(GOOD), "SP500.csv")
    assert list(out.columns) == ["Open", "High", "Low", "Close", "Volume", "Adj Close"]
    assert out.index.name == "date" and out.index.is_monotonic_increasing
    assert (out.dtypes == np.float64).all()
    assert out.loc["2020-01-06", "Close"] == 103.0


@pytest.mark.parametrize(
    "line,column,value,message,where",
    [
        (3, "Date", "2020-13-45", "unparseable date '2020-13-45'", "column Date, row 3"),
        (3, "Date", "2020-01-03", "duplicate date 2020-01-03, also at row 2", "row 3"),
        (2, "Close", "abc", "non-numeric value 'abc'", "column Close, row 2, date 2020-01-03"),
        (4, "Open", "", "missing (NaN) value", "column Open, row 4, date 2020-01-07"),
        (1, "High", "inf", "infinite value", "column High, row 1, date 2020-01-02"),
        (2, "Low", "-1", "non-positive price -1", "column Low, row 2, date 2020-01-03"),
        (3, "Close", "0", "non-positive price 0", "column Close, row 3, date 2020-01-06"),
        (3, "Low", "200", "High 104 < Low 200", "column High, row 3, date 2020-01-06"),
        (2, "Volume", "-5", "negative volume -5", "column Volume, row 2, date 2020-01-03"),
    ],
)
def test_bad_cells_name_file_column_row_and_date(line, column, value, message, where):
    with pytest.raises(DataValidationError) as info:
        validate_ohlcv(read(replace_cell(GOOD, line, column, value)), "data/SP500.csv")
    text = str(info.value)
    assert message in text
    assert "data/SP500.csv" in text and where in text


def test_misspelled_column_is_named_with_its_likely_spelling():
    with pytest.raises(DataValidationError, match=r"missing column 'Close'; found 'Clsoe'"):
        validate_ohlcv(read(GOOD.replace("Close,Adj", "Clsoe,Adj")), "SP500.csv")


def test_missing_column_lists_what_was_found():
    text = "Date,Open,High,Low,Close\n2020-01-02,1,2,1,1\n"
    with pytest.raises(DataValidationError, match=r"missing column 'Volume'.*columns are"):
        validate_ohlcv(read(text), "SP500.csv")


def test_column_case_is_forgiven():
    out = validate_ohlcv(read(GOOD.lower()), "x.csv")
    assert out["Close"].iloc[0] == 101.0


def test_unsorted_dates_are_sorted():
    lines = GOOD.strip().splitlines()
    shuffled = "\n".join([lines[0], lines[3], lines[1], lines[4], lines[2]]) + "\n"
    out = validate_ohlcv(read(shuffled), "x.csv")
    assert out.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(out, validate_ohlcv(read(GOOD), "x.csv"))


def test_non_numeric_column_type_is_refused():
    frame = validate_ohlcv(read(GOOD), "x.csv").reset_index().rename(columns={"date": "Date"})
    frame["Volume"] = pd.to_datetime(frame["Date"])
    with pytest.raises(DataValidationError, match="column Volume is not numeric"):
        validate_ohlcv(frame, "x.parquet")


def test_close_only_series_needs_only_close():
    out = validate_ohlcv(
        read("Date,Close\n2020-01-02,15.5\n2020-01-03,16\n"), "VIX.csv", CLOSE_ONLY
    )
    assert list(out.columns) == ["Close"]


def test_folder_loader_reads_csv_and_parquet(tmp_path, csv_folder, sp500_frame):
    sp500_frame.iloc[:50].rename_axis("Date").to_parquet(tmp_path / "prices" / "OTHER.parquet")
    raw = load_folder(csv_folder, ["SP500", "OTHER"])
    sp = validate_ohlcv(raw["SP500"].frame, raw["SP500"].where)
    other = validate_ohlcv(raw["OTHER"].frame, raw["OTHER"].where)
    assert len(sp) == 1000 and len(other) == 50
    np.testing.assert_allclose(sp["Close"].to_numpy(), sp500_frame["Close"].iloc[-1000:].to_numpy())
    assert other.index[0] == sp500_frame.index[0]


def test_absent_symbol_names_the_folder_and_a_near_match(csv_folder):
    from finscale.errors import InputError

    with pytest.raises(InputError, match=r"symbol SP50 not found; did you mean SP500\?") as info:
        load_folder(csv_folder, ["SP50"])
    assert str(csv_folder) in str(info.value)
