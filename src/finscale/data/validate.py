"""Validation of raw daily series: the single gate between a source and the pipeline.

Each check names the file, the column and the first offending row (1-based data
row, header excluded) and date, so a user can open the file and fix it; a series cut
from a long file of many symbols names its symbol too, and its rows are the file's.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from finscale.errors import DataValidationError

OHLCV = ("Open", "High", "Low", "Close", "Volume")
CLOSE_ONLY = ("Close",)
PRICE_COLUMNS = ("Open", "High", "Low", "Close", "Adj Close")
OPTIONAL_COLUMNS = ("Adj Close",)


class _Rows:
    """Where a series' rows are: the file, the symbol a long file's rows belong to
    (`of`, appended to each message), and each row's number in the file."""

    def __init__(self, where: str, symbol: str | None, rows: np.ndarray | None) -> None:
        self.where = where
        self.of = f" for symbol {symbol}" if symbol else ""
        self.rows = rows

    def __call__(self, row: int) -> int:
        """The file's 1-based data row of the frame's `row` (0-based position)."""
        return int(self.rows[row]) if self.rows is not None else row + 1


def _find_columns(
    frame: pd.DataFrame, wanted: Sequence[str], where: str, of: str = ""
) -> dict[str, str]:
    """Map each wanted name to the frame's column; case and spacing are forgiven, typos not."""
    by_key = {column_key(c): c for c in frame.columns}
    mapping: dict[str, str] = {}
    for name in wanted:
        column = by_key.get(name.lower())
        if column is None:
            if name in OPTIONAL_COLUMNS:
                continue
            near = difflib.get_close_matches(name, [str(c) for c in frame.columns], n=1, cutoff=0.6)
            found = ", ".join(str(c) for c in frame.columns) or "none"
            hint = f"; found {near[0]!r}, a misspelling?" if near else f"; columns are {found}"
            raise DataValidationError(f"missing column {name!r}{of}{hint}", where)
        mapping[name] = column
    return mapping


def _row_where(where: str, column: str | None, row: int, date: object = None) -> str:
    """`where`, the column, the row as the file numbers it (`row`: 1-based data row) and
    the date or value."""
    parts = [where]
    if column:
        parts.append(f"column {column}")
    parts.append(f"row {row}")
    if date is not None and not (isinstance(date, float) and np.isnan(date)):
        parts.append(f"date {pd.Timestamp(date).date()}" if _is_date(date) else f"value {date!r}")
    return ", ".join(parts)


def _is_date(value: object) -> bool:
    return isinstance(value, pd.Timestamp | np.datetime64) and not pd.isna(value)


def _parse_dates(raw: pd.Series, at: _Rows) -> pd.DatetimeIndex:
    if pd.api.types.is_datetime64_any_dtype(raw):
        dates = pd.to_datetime(raw)
        bad = dates.isna().to_numpy()
    else:
        text = raw.astype(str).str.strip()
        dates = pd.to_datetime(text, errors="coerce", format="mixed")
        bad = dates.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise DataValidationError(
            f"unparseable date {raw.iloc[row]!r}{at.of}", _row_where(at.where, "Date", at(row))
        )
    index = pd.DatetimeIndex(dates)
    if index.tz is not None:
        index = index.tz_localize(None)
    return index.normalize()


def _to_float(raw: pd.Series, column: str, dates: pd.DatetimeIndex, at: _Rows) -> np.ndarray:
    if pd.api.types.is_bool_dtype(raw) or not (
        pd.api.types.is_numeric_dtype(raw)
        or pd.api.types.is_object_dtype(raw)
        or pd.api.types.is_string_dtype(raw)
    ):
        raise DataValidationError(f"column {column} is not numeric ({raw.dtype}){at.of}", at.where)
    if pd.api.types.is_numeric_dtype(raw):
        values = raw.to_numpy(dtype=float, na_value=np.nan)
    else:
        text = raw.astype(str).str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
        missing_text = text.str.lower().isin(["", "nan", "na", "null", "none", "n/a"])
        bad = np.isnan(values) & ~missing_text.to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise DataValidationError(
                f"non-numeric value {raw.iloc[row]!r}{at.of}",
                _row_where(at.where, column, at(row), dates[row]),
            )
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argmax(bad))
        what = "missing (NaN) value" if np.isnan(values[row]) else "infinite value"
        raise DataValidationError(
            f"{what}{at.of}", _row_where(at.where, column, at(row), dates[row])
        )
    return values


def validate_ohlcv(
    frame: pd.DataFrame,
    where: str,
    required: Sequence[str] = OHLCV,
    *,
    symbol: str | None = None,
    rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """Check one symbol's raw rows and return them clean.

    Returns a float64 frame indexed by a sorted, unique, tz-naive `date` index
    with the `required` columns (and `Adj Close` when present), in that order.
    Unsorted dates are sorted; duplicated dates, unparseable dates,
    non-numeric cells, NaN or infinite values, non-positive prices, negative
    volume and High < Low raise `DataValidationError`.

    `symbol` and `rows` describe a series cut from a long file of many symbols:
    each message names the symbol, and `rows` (one per row of `frame`) is the
    file's own row number (1-based data row, header excluded) of each row.
    """
    if "Date" not in {str(c).strip().title() for c in frame.columns} and frame.index.name:
        frame = frame.reset_index()
    at = _Rows(where, symbol, rows)
    columns = _find_columns(frame, ("Date", *required, *OPTIONAL_COLUMNS), where, at.of)
    if len(frame) == 0:
        raise DataValidationError(f"no rows{at.of}", where)

    dates = _parse_dates(frame[columns["Date"]].reset_index(drop=True), at)
    duplicated = dates.duplicated(keep="first")
    if duplicated.any():
        row = int(np.argmax(duplicated))
        first = int(np.argmax(dates == dates[row]))
        raise DataValidationError(
            f"duplicate date {dates[row].date()}{at.of}, also at row {at(first)}",
            _row_where(where, "Date", at(row)),
        )

    # Built from plain values so no frequency is inferred: trading days have none.
    out = pd.DataFrame(index=pd.DatetimeIndex(dates.to_numpy(), name="date"))
    for name, column in columns.items():
        if name == "Date":
            continue
        values = _to_float(frame[column].reset_index(drop=True), name, dates, at)
        if name in PRICE_COLUMNS and (values <= 0).any():
            row = int(np.argmax(values <= 0))
            raise DataValidationError(
                f"non-positive price {values[row]:g}{at.of}",
                _row_where(where, name, at(row), dates[row]),
            )
        if name == "Volume" and (values < 0).any():
            row = int(np.argmax(values < 0))
            raise DataValidationError(
                f"negative volume {values[row]:g}{at.of}",
                _row_where(where, name, at(row), dates[row]),
            )
        out[name] = values

    if "High" in out and "Low" in out:
        inverted = (out["High"] < out["Low"]).to_numpy()
        if inverted.any():
            row = int(np.argmax(inverted))
            raise DataValidationError(
                f"High {out['High'].iloc[row]:g} < Low {out['Low'].iloc[row]:g}{at.of}",
                _row_where(where, "High", at(row), dates[row]),
            )

    # Sorting is safe only now that duplicates are ruled out.
    if not out.index.is_monotonic_increasing:
        out = out.sort_index(kind="stable")
    return out


def column_key(name: object) -> str:
    """A column's name as validation matches it: case, spacing and `_` forgiven."""
    return str(name).strip().lower().replace("_", " ")


def ignored_columns(columns: Sequence[object], read: Sequence[str] = ()) -> tuple[str, ...]:
    """The columns of a file that validation never reads: all but the date, OHLCV and
    adjusted close, and `read` (a long file's symbol column)."""
    known = {column_key(c) for c in ("Date", *OHLCV, *OPTIONAL_COLUMNS, *read)}
    return tuple(str(c) for c in columns if column_key(c) not in known)
