"""One long file of many symbols, as vendors export them: a `.csv` or `.parquet` file
with columns `date, symbol, open, high, low, close, volume` (any case; `adj_close`
optional; or only `date, symbol, close`), one row per symbol and day.

The file is read once; each symbol's rows are cut from it with their row numbers in
the file (1-based data row, header excluded), so that validation
(`finscale.data.validate`) names the symbol and the file's own row. Columns that
validation never reads are listed (`ignored`), for `finscale data show`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from finscale.data.validate import column_key, ignored_columns
from finscale.errors import DataValidationError, InputError

SYMBOL_COLUMN = "symbol"
LONG_FILE_SUFFIXES = (".csv", ".parquet")


def read_error(path: Path, exc: Exception) -> InputError:
    """The one error of a file that cannot be read: its reader's first line."""
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InputError(f"cannot read file: {first_line}", str(path))


def _column(columns: list[str], name: str, path: Path) -> str:
    """The column of `columns` that is `name` (case and spacing forgiven)."""
    for column in columns:
        if column_key(column) == name:
            return column
    near = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
    hint = (
        f"; found {near[0]!r}, a misspelling?"
        if near
        else f"; columns are {', '.join(columns) or 'none'} (a file of one symbol belongs in "
        "a folder of SYMBOL.csv files, given as the path)"
    )
    raise DataValidationError(f"missing column {name!r} of a long file{hint}", str(path))


def _header(path: Path) -> list[str]:
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return [str(c) for c in pq.read_schema(path).names]
        return [str(c) for c in pd.read_csv(path, nrows=0, skipinitialspace=True).columns]
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise read_error(path, exc) from exc


def _symbols_of(raw: pd.Series, column: str, path: Path) -> pd.Series:
    """Each row's symbol as stripped text; a row without one is an error naming it."""
    text = raw.astype(str).str.strip()
    missing = (raw.isna() | (text == "")).to_numpy()
    if missing.any():
        row = int(np.argmax(missing))
        raise DataValidationError("missing symbol", f"{path}, column {column}, row {row + 1}")
    return text


def long_file_symbols(path: str | Path) -> tuple[str, ...]:
    """The symbols of a long file, sorted, read from its symbol column alone."""
    path = Path(path)
    column = _column(_header(path), SYMBOL_COLUMN, path)
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            raw = pq.read_table(path, columns=[column]).column(0).to_pandas()
        else:
            raw = pd.read_csv(
                path,
                usecols=[column],
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                skipinitialspace=True,
            )[column]
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise read_error(path, exc) from exc
    return tuple(sorted(_symbols_of(raw, column, path).unique()))


@dataclass(frozen=True)
class LongFile:
    """A long file read once: its rows as read, and each symbol's rows in it.

    `positions` maps each symbol to the 0-based positions of its rows in `frame`
    (in file order); `ignored` names the columns validation never reads.
    """

    path: Path
    frame: pd.DataFrame
    positions: dict[str, np.ndarray]
    ignored: tuple[str, ...]

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(sorted(self.positions))

    def rows_of(self, symbol: str) -> tuple[pd.DataFrame, np.ndarray]:
        """(the symbol's rows as read, each one's 1-based data row in the file)."""
        positions = self.positions[symbol]
        return self.frame.iloc[positions].reset_index(drop=True), positions + 1


def read_long_file(path: str | Path) -> LongFile:
    """Read a long `.csv` or `.parquet` file once. Prices are read as numbers where
    every cell is one, else as text that validation converts, naming the first bad
    cell; dates and symbols are read as text (a symbol such as NA stays a symbol)."""
    path = Path(path)
    header = _header(path)
    column = _column(header, SYMBOL_COLUMN, path)
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
            if any(name is not None for name in frame.index.names):
                frame = frame.reset_index()  # a (date, symbol) index stored by pandas
        else:
            as_text = {c: str for c in header if column_key(c) in ("date", SYMBOL_COLUMN)}
            frame = pd.read_csv(
                path,
                dtype=as_text,
                keep_default_na=False,
                na_values=[""],
                skipinitialspace=True,
            )
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise read_error(path, exc) from exc
    symbols = _symbols_of(frame[column], column, path)
    positions = {
        str(s): np.asarray(p) for s, p in symbols.groupby(symbols, sort=False).indices.items()
    }
    return LongFile(path, frame, positions, ignored_columns(list(frame.columns), (column,)))
