"""`targets: all` resolved to the source's symbols, the 20 stocks of `source: stocks`,
and the targets `min_history_days` drops: real files, the real bundled data."""

import logging

import pandas as pd
import pytest

from finscale.config import DataConfig
from finscale.data import build_dataset, resolve_targets
from finscale.errors import InputError

STOCKS = [
    "AAPL",
    "AMD",
    "BAC",
    "BBY",
    "CVX",
    "GE",
    "HD",
    "JNJ",
    "JPM",
    "KO",
    "LLY",
    "MRK",
    "MSFT",
    "PEP",
    "PFE",
    "PG",
    "RRC",
    "UNH",
    "WMT",
    "XOM",
]


def long_file(path, frames: dict[str, pd.DataFrame]):
    """`frames` (symbol: a bundled OHLCV frame) as one long parquet file."""
    parts = [
        f.rename_axis("date").reset_index().assign(symbol=symbol) for symbol, f in frames.items()
    ]
    pd.concat(parts).to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def three_symbols(tmp_path_factory, sp500_frame, nasdaq_frame):
    """A long file of SP500 and NASDAQ's last 700 days and SHORT, 100 days of SP500."""
    path = tmp_path_factory.mktemp("long") / "prices.parquet"
    return long_file(
        path,
        {
            "SP500": sp500_frame.iloc[-700:],
            "NASDAQ": nasdaq_frame.iloc[-700:],
            "SHORT": sp500_frame.iloc[-100:],
        },
    )


def test_all_takes_every_symbol_of_each_source(three_symbols, csv_folder):
    def targets(**data):
        return resolve_targets(DataConfig(targets="all", **data)).target_symbols

    assert targets(source="csv", path=three_symbols) == ("NASDAQ", "SHORT", "SP500")
    assert targets(source="csv", path=csv_folder) == ("NASDAQ", "SP500")
    assert targets(source="bundled") == ("SP500", "NASDAQ")
    assert targets(source="stocks") == tuple(STOCKS)
    assert targets(source="synthetic", synthetic={"symbols": 3}) == ("SYN001", "SYN002", "SYN003")
    # context symbols are not targets
    assert targets(source="csv", path=three_symbols, symbols="NASDAQ") == ("SHORT", "SP500")
    resolved = resolve_targets(DataConfig(source="csv", path=three_symbols, target="all"))
    assert resolved.target == "NASDAQ" and resolved.is_panel and not resolved.all_targets


def test_all_needs_a_source_that_lists_its_symbols():
    with pytest.raises(InputError, match="targets all needs a source that lists") as caught:
        resolve_targets(DataConfig(source="yahoo", target="all"))
    assert caught.value.where == "data.target"


def test_a_source_of_one_symbol_is_a_one_target_dataset(tmp_path, sp500_frame):
    path = long_file(tmp_path / "one.parquet", {"SP500": sp500_frame.iloc[-400:]})
    resolved = resolve_targets(DataConfig(source="csv", path=path, target="all"))
    assert resolved.target_symbols == ("SP500",) and not resolved.is_panel
    with pytest.raises(InputError, match="needs two or more targets; the source holds only SP500"):
        resolve_targets(DataConfig(source="csv", path=path, target="all", label_mode="relative"))


def test_stocks_default_to_every_stock_and_keep_explicit_symbols():
    assert DataConfig(source="stocks").all_targets
    assert DataConfig(source="stocks", target="AAPL,MSFT").target_symbols == ("AAPL", "MSFT")
    assert DataConfig(source="stocks", targets=["KO"]).target_symbols == ("KO",)
    assert DataConfig(source="bundled").target_symbols == ("SP500",)


def test_min_history_days_drops_and_says_the_short_targets(three_symbols, caplog):
    config = DataConfig(source="csv", path=three_symbols, target="all", min_history_days=500)
    with caplog.at_level(logging.WARNING, logger="finscale.data"):
        dataset = build_dataset(config)
    assert dataset.config.target_symbols == ("NASDAQ", "SP500")
    assert dataset.entry["dropped_targets"] == {"SHORT": 100}
    assert dataset.summary()["dropped_targets"] == {"SHORT": 100}
    assert set(dataset.row_symbols()) == {"NASDAQ", "SP500"}
    assert "dropped 1 of 3 targets" in caplog.text and "SHORT (100 rows)" in caplog.text
    # rows are counted in the date range
    ranged = config.model_copy(update={"start": pd.Timestamp("2017-06-01").date()})
    with pytest.raises(InputError, match="every target has fewer") as caught:
        build_dataset(ranged)
    assert caught.value.where == "data.min_history_days"


def test_a_drop_that_leaves_one_target_gives_a_one_target_dataset(three_symbols):
    config = DataConfig(
        source="csv", path=three_symbols, targets="SP500,SHORT", min_history_days=500
    )
    dataset = build_dataset(config)
    assert dataset.config.target_symbols == ("SP500",) and not dataset.config.is_panel
    assert dataset.entry["dropped_targets"] == {"SHORT": 100}
    with pytest.raises(InputError, match="needs two or more targets; only SP500") as caught:
        build_dataset(config.model_copy(update={"label_mode": "relative", "threshold": 0.0}))
    assert caught.value.where == "data.min_history_days"


def test_min_history_days_refuses_a_single_short_target(three_symbols):
    config = DataConfig(source="csv", path=three_symbols, target="SHORT", min_history_days=101)
    with pytest.raises(InputError, match=r"SHORT \(100 rows\)"):
        build_dataset(config)


def test_the_grid_embeds_one_vector_per_symbol_of_all(three_symbols):
    from finscale.analysis.records import targets_text
    from finscale.config import StudyConfig
    from finscale.hpo import grid_of

    config = StudyConfig(
        data={"source": "csv", "path": str(three_symbols), "target": "all"},
        model={"symbol_embedding": True},
    )
    assert grid_of(config, 200_000).template.n_symbols == 3
    assert targets_text(config, {}) == "all symbols of the csv source"
