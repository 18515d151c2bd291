"""Where raw daily series come from: the bundled `arch` data, the 20 stocks skfolio
ships, a folder of files or one long file of many symbols, Yahoo, or the synthetic
market of the planted-scaling control.

Every loader returns `RawSeries` objects holding the frame as read, untouched:
validation (`finscale.data.validate`) is the one place that judges it.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from finscale.config import DataConfig, SyntheticConfig
from finscale.data.long_format import (
    LONG_FILE_SUFFIXES,
    long_file_symbols,
    read_error,
    read_long_file,
)
from finscale.data.synthetic import synthetic_market
from finscale.data.validate import OHLCV, ignored_columns, validate_ohlcv
from finscale.errors import InputError

# Bundled symbols and the `arch.data` module that ships each one (real daily
# index data: S&P 500 and NASDAQ composite OHLCV 1999-2018, VIX close 2014-2019).
BUNDLED_MODULES = {"SP500": "arch.data.sp500", "NASDAQ": "arch.data.nasdaq", "VIX": "arch.data.vix"}

# Yahoo tickers for the bundled symbol names; any other symbol is used as typed.
YAHOO_TICKERS = {"SP500": "^GSPC", "NASDAQ": "^IXIC", "VIX": "^VIX"}

FILE_SUFFIXES = (".csv", ".parquet")

# `source: stocks`: the daily adjusted closes of 20 US large-cap stocks, 1990-2022,
# that skfolio ships (`skfolio.datasets.load_sp500_dataset`), in its package folder.
STOCKS_FILE = ("datasets", "data", "sp500_dataset.csv.gz")
STOCKS_SOURCE = "skfolio:sp500_dataset"


@dataclass(frozen=True)
class RawSeries:
    """One symbol's daily rows as the source gave them.

    `where` names the file or module, for error messages; `source` is the
    short provenance recorded in the store manifest. A series cut from a file of
    many symbols carries `rows`, the file's 1-based data row of each frame row, so
    that validation names the symbol and the file's row; `ignored` names the
    columns of its file that validation never reads.
    """

    symbol: str
    frame: pd.DataFrame
    source: str
    where: str
    rows: np.ndarray | None = None
    ignored: tuple[str, ...] = ()

    def validate(self, required: Sequence[str] = OHLCV) -> pd.DataFrame:
        """The frame checked and cleaned by `validate_ohlcv` (the `required` columns)."""
        many = self.rows is not None
        return validate_ohlcv(
            self.frame,
            self.where,
            required,
            symbol=self.symbol if many else None,
            rows=self.rows,
        )


def _check_symbols(symbols: Sequence[str]) -> list[str]:
    cleaned = [s.strip() for s in symbols if s and s.strip()]
    if not cleaned:
        raise InputError("no symbol requested", "data.target")
    duplicated = sorted({s for s in cleaned if cleaned.count(s) > 1})
    if duplicated:
        raise InputError(f"symbol requested twice: {', '.join(duplicated)}", "data.symbols")
    return cleaned


def _absent(symbol: str, available: Sequence[str], where: str) -> InputError:
    near = difflib.get_close_matches(symbol, list(available), n=1)
    hint = (
        f"; did you mean {near[0]}?" if near else f"; available: {', '.join(available) or 'none'}"
    )
    return InputError(f"symbol {symbol} not found{hint}", where)


def _load_arch_data(module_name: str) -> pd.DataFrame:
    """The frame `arch.data.<name>.load()` returns, read from the file arch ships.

    Importing any `arch.data` module runs arch's `__init__`, which loads its models
    with statsmodels and scipy: about 2.4 s of every command's start-up, for a CSV.
    So the file is read where arch keeps it (`arch/data/<name>/<name>.csv.gz`), parsed
    as arch parses it (tests hold the two equal); an arch that moved it is imported.
    """
    name = module_name.rsplit(".", 1)[-1]
    spec = importlib.util.find_spec("arch")  # finds the package without running it
    roots = spec.submodule_search_locations if spec is not None else None
    path = Path(next(iter(roots or []), "")) / "data" / name / f"{name}.csv.gz"
    if not roots or not path.is_file():
        return importlib.import_module(module_name).load()
    frame = pd.read_csv(path)
    if "Date" in frame:
        frame["Date"] = pd.to_datetime(frame["Date"])
        frame = frame.set_index("Date")
    return frame.apply(pd.to_numeric, errors="coerce")


def load_bundled(symbols: Sequence[str], targets: Collection[str] = ()) -> dict[str, RawSeries]:
    """Load bundled symbols (`SP500`, `NASDAQ`, `VIX`) from the `arch` package; a
    symbol it lacks is blamed on `data.target` where it is one of `targets`, else on
    `data.symbols`."""
    out: dict[str, RawSeries] = {}
    for symbol in _check_symbols(symbols):
        module_name = BUNDLED_MODULES.get(symbol)
        if module_name is None:
            field = "data.target" if symbol in targets else "data.symbols"
            raise _absent(symbol, list(BUNDLED_MODULES), field)
        frame = _load_arch_data(module_name)
        if symbol == "VIX":
            # arch ships VIX as one column named 'vix' on a weekday calendar, with
            # NaN on the market holidays when no VIX was published: not data errors.
            frame = frame.rename(columns={"vix": "Close"}).dropna()
        frame = frame.reset_index()
        out[symbol] = RawSeries(symbol, frame, f"bundled:{module_name}", module_name)
    return out


def _read_file(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            if "Date" not in frame.columns and frame.index.name is not None:
                frame = frame.reset_index()
            return frame
        # Read every column as text: validation converts and names the first bad cell.
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise read_error(path, exc) from exc


def load_folder(path: str | Path, symbols: Sequence[str]) -> dict[str, RawSeries]:
    """Load `SYMBOL.csv` or `SYMBOL.parquet` for each symbol from a folder.

    Files hold `Date,Open,High,Low,Close,Volume` (`Adj Close` optional); the
    file stem is the symbol.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"data folder not found: {folder}", "data.path")
    found = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in FILE_SUFFIXES}
    out: dict[str, RawSeries] = {}
    for symbol in _check_symbols(symbols):
        file = found.get(symbol)
        if file is None:
            raise _absent(symbol, sorted(found), str(folder))
        frame = _read_file(file)
        out[symbol] = RawSeries(
            symbol,
            frame,
            f"file:{file.resolve()}",
            str(file),
            ignored=ignored_columns(list(frame.columns)),
        )
    return out


def _folder_symbols(folder: Path) -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in folder.iterdir() if p.suffix.lower() in FILE_SUFFIXES))


def _long_file(path: str | Path) -> Path:
    """`path` as a long file: an existing `.csv` or `.parquet` file."""
    file = Path(path)
    if file.suffix.lower() not in LONG_FILE_SUFFIXES:
        raise InputError(
            f"{file} is neither a folder nor a long .csv or .parquet file", "data.path"
        )
    return file


def load_long(path: str | Path, symbols: Sequence[str]) -> dict[str, RawSeries]:
    """Each symbol's rows of one long file (`finscale.data.long_format`), read once."""
    long = read_long_file(_long_file(path))
    out: dict[str, RawSeries] = {}
    for symbol in _check_symbols(symbols):
        if symbol not in long.positions:
            raise _absent(symbol, long.symbols, str(path))
        frame, rows = long.rows_of(symbol)
        out[symbol] = RawSeries(
            symbol, frame, f"file:{long.path.resolve()}", str(path), rows, long.ignored
        )
    return out


def load_csv(path: str | Path, symbols: Sequence[str]) -> dict[str, RawSeries]:
    """The `csv` source: a folder of `SYMBOL.csv`/`SYMBOL.parquet` files, or one long file."""
    if not Path(path).exists():
        raise InputError(f"data path not found: {path}", "data.path")
    if Path(path).is_dir():
        return load_folder(path, symbols)
    return load_long(path, symbols)


def _stocks_prices() -> pd.DataFrame:
    """The frame `skfolio.datasets.load_sp500_dataset()` returns (dates x 20 symbols).

    Importing skfolio costs about 3 s (it imports scikit-learn and cvxpy), so, as with
    arch's files, the file is read where skfolio keeps it, parsed as skfolio parses it
    (a test holds the two equal); a skfolio that moved it is imported.
    """
    spec = importlib.util.find_spec("skfolio")  # finds the package without running it
    if spec is None:
        raise InputError(
            "the stocks source needs skfolio: pip install 'finscale[stocks]'", "data.source"
        )
    roots = spec.submodule_search_locations
    path = Path(next(iter(roots or []), "")).joinpath(*STOCKS_FILE)
    if roots and path.is_file():
        frame = pd.read_csv(path, sep=",", index_col=0)
        frame.index = pd.to_datetime(frame.index, format="%Y-%m-%d")
        return frame
    try:
        return importlib.import_module("skfolio.datasets").load_sp500_dataset()
    except ImportError as exc:
        raise InputError(
            "the stocks source needs skfolio: pip install 'finscale[stocks]'", "data.source"
        ) from exc


def stocks_symbols() -> tuple[str, ...]:
    """The 20 symbols of `source: stocks`, in skfolio's (alphabetical) order."""
    return tuple(str(c) for c in _stocks_prices().columns)


def load_stocks(symbols: Sequence[str], targets: Collection[str] = ()) -> dict[str, RawSeries]:
    """Each symbol's daily adjusted close of `source: stocks`, a close-only series
    (`Date`, `Close`); a symbol it lacks is blamed on `data.target` where it is one of
    `targets`, else on `data.symbols`."""
    prices = _stocks_prices()
    out: dict[str, RawSeries] = {}
    for symbol in _check_symbols(symbols):
        if symbol not in prices.columns:
            field = "data.target" if symbol in targets else "data.symbols"
            raise _absent(symbol, [str(c) for c in prices.columns], field)
        close = prices[symbol]
        kept = close.notna().to_numpy()  # before a stock's listing (none in skfolio's file)
        frame = pd.DataFrame({"Date": close.index[kept], "Close": close.to_numpy()[kept]})
        rows = np.flatnonzero(kept) + 1
        out[symbol] = RawSeries(symbol, frame, STOCKS_SOURCE, "skfolio sp500_dataset", rows)
    return out


def _import_yfinance_download() -> Callable[..., pd.DataFrame]:
    try:
        import yfinance
    except ImportError as exc:
        raise InputError(
            "the yahoo source needs yfinance: pip install 'finscale[yahoo]'", "data.source"
        ) from exc
    return yfinance.download


def _flatten_yahoo(frame: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """yfinance >= 0.2.48 returns (Price, Ticker) MultiIndex columns even for one ticker."""
    if isinstance(frame.columns, pd.MultiIndex):
        level = frame.columns.names.index("Ticker") if "Ticker" in frame.columns.names else 1
        if ticker in frame.columns.get_level_values(level):
            frame = frame.xs(ticker, axis=1, level=level)
        else:
            frame = frame.droplevel(level, axis=1)
    frame = frame.reset_index()
    first = frame.columns[0]
    if first != "Date" and str(first).lower() in ("date", "datetime", "index"):
        frame = frame.rename(columns={first: "Date"})
    frame.columns.name = None
    return frame


def load_yahoo(
    symbols: Sequence[str],
    start: str = "1999-01-01",
    end: str | None = None,
    download: Callable[..., pd.DataFrame] | None = None,
) -> dict[str, RawSeries]:
    """Download daily bars with yfinance (extra `yahoo`); needs a network.

    `SP500`, `NASDAQ` and `VIX` map to `^GSPC`, `^IXIC` and `^VIX`; other
    symbols are Yahoo tickers as typed. `download` defaults to
    `yfinance.download` and exists so that tests can replay a recorded reply.
    """
    download = download or _import_yfinance_download()
    out: dict[str, RawSeries] = {}
    for symbol in _check_symbols(symbols):
        ticker = YAHOO_TICKERS.get(symbol, symbol)
        frame = download(
            ticker, start=start, end=end, interval="1d", auto_adjust=True, progress=False
        )
        if frame is None or len(frame) == 0:
            raise InputError(f"Yahoo returned no rows for {ticker}", f"symbol {symbol}")
        out[symbol] = RawSeries(symbol, _flatten_yahoo(frame, ticker), f"yahoo:{ticker}", ticker)
    return out


def load_synthetic(config: SyntheticConfig, symbols: Sequence[str]) -> dict[str, RawSeries]:
    """The synthetic market's bars (`finscale.data.synthetic`) of the given symbols."""
    market = synthetic_market(config)
    where = f"synthetic market (seed {config.seed})"
    for symbol in _check_symbols(symbols):
        if symbol not in market:
            raise _absent(symbol, list(market), "data.targets")
    return {
        symbol: RawSeries(symbol, market[symbol], f"synthetic:seed={config.seed}", where)
        for symbol in symbols
    }


def load_sources(
    source: str,
    symbols: Sequence[str],
    path: str | Path | None = None,
    targets: Collection[str] = (),
    synthetic: SyntheticConfig | None = None,
    **yahoo_kwargs,
) -> dict[str, RawSeries]:
    """Dispatch on the `data.source` name: `bundled`, `stocks`, `csv` (a folder or a
    long file), `yahoo` or `synthetic` (the market `synthetic` describes); `targets`:
    which of `symbols` are labelled (the others are context)."""
    if source == "synthetic":
        return load_synthetic(synthetic or SyntheticConfig(), symbols)
    if source == "bundled":
        return load_bundled(symbols, targets)
    if source == "stocks":
        return load_stocks(symbols, targets)
    if source == "csv":
        if path is None:
            raise InputError("the csv source needs a folder of SYMBOL.csv files", "data.path")
        return load_csv(path, symbols)
    if source == "yahoo":
        return load_yahoo(symbols, **yahoo_kwargs)
    raise InputError(
        f"unknown source {source!r}; use bundled, stocks, csv, yahoo or synthetic", "data.source"
    )


# `targets: all` of bundled data: the two OHLCV indices (VIX has a close only, and
# serves as tier a100's volatility index).
BUNDLED_TARGETS = ("SP500", "NASDAQ")


def source_symbols(config: DataConfig) -> tuple[str, ...]:
    """Every symbol `config`'s source holds, as `targets: all` takes them: a long
    file's symbols, a folder's file stems, bundled SP500 and NASDAQ, the 20 stocks,
    the synthetic market's names. Yahoo lists none: `all` is an error there."""
    if config.source == "bundled":
        return BUNDLED_TARGETS
    if config.source == "stocks":
        return stocks_symbols()
    if config.source == "synthetic":
        return config.synthetic.symbol_names
    if config.source == "csv" and config.path is not None:
        path = Path(config.path)
        if not path.exists():
            raise InputError(f"data path not found: {path}", "data.path")
        return _folder_symbols(path) if path.is_dir() else long_file_symbols(_long_file(path))
    raise InputError(
        f"targets all needs a source that lists its symbols (bundled, stocks, csv, "
        f"synthetic), not {config.source}; name the symbols",
        "data.target",
    )
