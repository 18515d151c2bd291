"""Datasets of the cross-section: tier close from close-only files, relative labels
over a panel, and the one error where an OHLCV tier meets close prices only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finscale.config import DataConfig, EvaluationConfig
from finscale.data import build_dataset
from finscale.data.assembly import LABEL
from finscale.data.build import _params
from finscale.data.panel import SYMBOL
from finscale.data.splits import NO_LABEL
from finscale.data.store import DataStore
from finscale.errors import InputError


def _write_close_only(folder, symbol: str, days: pd.DatetimeIndex, seed: int) -> None:
    """SYMBOL.csv with Date,Close only: a random walk with 1% daily moves."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, len(days))))
    frame = pd.DataFrame({"Date": days.strftime("%Y-%m-%d"), "Close": close})
    frame.to_csv(folder / f"{symbol}.csv", index=False)


@pytest.fixture(scope="module")
def relative_pair():
    config = DataConfig(target="SP500,NASDAQ", tier="close", label_mode="relative")
    return build_dataset(config)


def test_relative_labels_on_the_bundled_pair_split_each_day_in_two(relative_pair):
    summary = relative_pair.summary()
    assert summary["n_features"] == 35 and summary["roles"] == {"target": "SP500,NASDAQ"}
    assert summary["label"] == {"horizon_days": 1, "threshold": 0.0, "label_mode": "relative"}
    for split in summary["splits"].values():
        assert 0.48 <= split["positive_rate"] <= 0.52
    # Only each symbol's last row (no forward return) has no label.
    assert summary["row_states"]["no_label"] == 2
    table = relative_pair.table
    pair = table.pivot_table(index=table.index, columns=SYMBOL, values=LABEL).dropna()
    # Two symbols: one beats their mean, the other does not (ties aside).
    assert (pair.sum(axis=1) == 1).mean() > 0.99


def test_the_key_of_an_absolute_label_is_unchanged_and_a_relative_one_says_so():
    evaluation = EvaluationConfig()
    absolute = _params(DataConfig(), evaluation)["labels"]
    assert absolute == {
        "horizon_days": 1,
        "threshold": 0.01,
        "rule": "max_close",
        "threshold_mode": "fixed",
    }
    relative = _params(DataConfig(target="SP500,NASDAQ", label_mode="relative"), evaluation)
    assert relative["labels"]["label_mode"] == "relative"


def test_tier_close_reads_the_bundled_indices_alone():
    data = build_dataset(DataConfig(target="SP500", tier="close"))
    assert data.roles == {"target": "SP500"}  # neither NASDAQ nor VIX
    assert data.summary()["n_features"] == 35


def test_an_ohlcv_tier_of_close_only_files_is_one_error_naming_tier_close(tmp_path):
    days = pd.bdate_range("2010-01-04", periods=800)
    for k, symbol in enumerate(("AAA", "BBB")):
        _write_close_only(tmp_path / "prices", symbol, days, k)
    store = DataStore(tmp_path / "store")
    cases = (("a25", "AAA", ()), ("a50", "AAA", ("BBB",)), ("a25", "AAA,BBB", ()))
    for tier, targets, symbols in cases:
        config = DataConfig(
            source="csv", path=tmp_path / "prices", target=targets, symbols=symbols, tier=tier
        )
        with pytest.raises(InputError) as err:
            build_dataset(config, store)
        assert err.value.where == "data.tier" and err.value.fix == "close"
        assert f"tier {tier} needs OHLCV" in err.value.what
        assert "close prices only (no Open, High, Low, Volume)" in err.value.what
    assert not (tmp_path / "store").exists()
    data = build_dataset(
        DataConfig(source="csv", path=tmp_path / "prices", target="AAA,BBB", tier="close"), store
    )
    assert data.summary()["n_features"] == 35


def test_relative_labels_with_a_symbol_trading_alone_in_the_middle(tmp_path):
    # AAA trades throughout; BBB only at first and CCC only at last:
    # in between AAA has no relative label, and is no sample there.
    days = pd.bdate_range("2005-01-03", periods=2400)
    folder = tmp_path / "prices"
    _write_close_only(folder, "AAA", days, 0)
    _write_close_only(folder, "BBB", days[:1000], 1)
    _write_close_only(folder, "CCC", days[1300:], 2)
    config = DataConfig(
        source="csv", path=folder, target="AAA,BBB,CCC", tier="close", label_mode="relative"
    )
    data = build_dataset(config)
    table = data.table
    aaa = table[table[SYMBOL] == "AAA"]
    middle = aaa.loc[days[999] : days[1299]]
    assert middle[LABEL].isna().all()
    assert (middle["split"] == NO_LABEL).all()
    assert aaa.loc[: days[998], LABEL].notna().all()
    assert aaa.loc[days[1300] : days[-2], LABEL].notna().all()
