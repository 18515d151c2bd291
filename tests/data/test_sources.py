import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finscale.data.sources import (
    _load_arch_data,
    _stocks_prices,
    load_bundled,
    load_sources,
    load_stocks,
    load_yahoo,
)
from finscale.data.validate import CLOSE_ONLY, validate_ohlcv
from finscale.errors import InputError

FIXTURE = Path(__file__).parents[1] / "fixtures" / "yahoo_gspc.json"


def recorded_download(calls):
    """Replays the recorded yfinance reply, checking how it was asked."""
    record = json.loads(FIXTURE.read_text())

    def download(ticker, **kwargs):
        calls.append((ticker, kwargs))
        columns = pd.MultiIndex.from_tuples(
            [tuple(c) for c in record["columns"]], names=record["column_names"]
        )
        index = pd.DatetimeIndex(pd.to_datetime(record["index"]), name=record["index_name"])
        return pd.DataFrame(record["data"], index=index, columns=columns)

    return download


def test_bundled_symbols_load_real_data():
    raw = load_bundled(["SP500", "NASDAQ", "VIX"])
    sp = validate_ohlcv(raw["SP500"].frame, raw["SP500"].where)
    vix = validate_ohlcv(raw["VIX"].frame, raw["VIX"].where, CLOSE_ONLY)
    assert sp.index[0] == pd.Timestamp("1999-01-04") and sp.index[-1] == pd.Timestamp("2018-12-31")
    assert len(sp) == 5031
    assert vix.index[0].year == 2014 and vix.index[-1].year == 2019
    assert raw["NASDAQ"].source == "bundled:arch.data.nasdaq"


@pytest.mark.parametrize("module_name", ["arch.data.sp500", "arch.data.nasdaq", "arch.data.vix"])
def test_bundled_files_read_as_arch_loads_them(module_name):
    import importlib

    expected = importlib.import_module(module_name).load()
    pd.testing.assert_frame_equal(_load_arch_data(module_name), expected)


def test_a_study_starts_without_arch_scikit_learn_scipy_stats_or_skfolio():
    # Each costs 2-4 s of every command's start-up (and of every spawned worker's): the
    # bundled data is a CSV, and the per-epoch scores are numpy.
    code = (
        "import sys; import finscale.cli, finscale.hpo, finscale.train.trainer; "
        "from finscale.data.sources import load_bundled, load_stocks; load_bundled(['SP500']); "
        "load_stocks(['AAPL']); print(sorted(m for m in ('arch', 'sklearn', 'scipy.stats', "
        "'skfolio') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_bundled_symbol_suggests_a_name():
    with pytest.raises(InputError, match="symbol NASDAC not found; did you mean NASDAQ"):
        load_bundled(["NASDAC"])


def test_yahoo_reply_is_flattened_and_validates():
    calls = []
    raw = load_yahoo(["SP500"], start="2016-01-01", download=recorded_download(calls))
    assert calls[0][0] == "^GSPC" and calls[0][1]["auto_adjust"] is True
    frame = validate_ohlcv(raw["SP500"].frame, raw["SP500"].where)
    bundled = validate_ohlcv(load_bundled(["SP500"])["SP500"].frame, "sp500")
    np.testing.assert_allclose(frame["Close"].to_numpy(), bundled["Close"].iloc[-520:].to_numpy())
    assert raw["SP500"].source == "yahoo:^GSPC"


def test_yahoo_without_the_extra_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_yfinance(name, *args, **kwargs):
        if name == "yfinance":
            raise ImportError("No module named 'yfinance'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_yfinance)
    with pytest.raises(InputError, match=r"pip install 'finscale\[yahoo\]'"):
        load_yahoo(["SP500"])


def test_empty_yahoo_reply_is_an_error():
    with pytest.raises(InputError, match=r"no rows for \^IXIC"):
        load_yahoo(["NASDAQ"], download=lambda *a, **k: pd.DataFrame())


def test_csv_source_needs_a_path():
    with pytest.raises(InputError, match=r"\(data.path\)"):
        load_sources("csv", ["SP500"])


def test_the_stocks_file_reads_as_skfolio_loads_it():
    from skfolio.datasets import load_sp500_dataset

    pd.testing.assert_frame_equal(_stocks_prices(), load_sp500_dataset())


def test_stocks_are_20_close_only_series_of_166_thousand_days():
    raw = load_sources("stocks", ["AAPL", "XOM"], targets=["AAPL", "XOM"])
    aapl = raw["AAPL"].validate(CLOSE_ONLY)
    assert list(aapl.columns) == ["Close"] and aapl.index[0] == pd.Timestamp("1990-01-02")
    assert aapl.index[-1].year == 2022 and raw["AAPL"].source == "skfolio:sp500_dataset"
    assert _stocks_prices().notna().sum().sum() == 166_260
    with pytest.raises(InputError, match="missing column 'Open' for symbol XOM"):
        raw["XOM"].validate()


def test_an_unknown_stock_suggests_a_name():
    with pytest.raises(InputError, match="symbol MSTF not found; did you mean MSFT") as caught:
        load_stocks(["MSTF"], targets=["MSTF"])
    assert caught.value.where == "data.target"


def test_stocks_without_skfolio_say_how_to_install(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "skfolio" else real_find_spec(name, *a),
    )
    with pytest.raises(InputError, match=r"pip install 'finscale\[stocks\]'") as caught:
        load_stocks(["AAPL"])
    assert caught.value.where == "data.source"
