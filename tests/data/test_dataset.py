import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from finscale.config import DataConfig
from finscale.data import Normalizer, build_dataset
from finscale.data.assembly import resolve_roles
from finscale.data.splits import NO_LABEL, PURGED, SPLIT_NAMES, TRAIN
from finscale.data.store import DataStore
from finscale.errors import InputError
from tests.conftest import write_symbol_csv


@pytest.fixture(scope="module")
def bundled_a25():
    return build_dataset(DataConfig())


def test_bundled_default_dataset(bundled_a25):
    summary = bundled_a25.summary()
    assert summary["n_features"] == 25 and summary["roles"] == {"target": "SP500"}
    assert summary["first_date"] > "1999-01-04" and summary["last_date"] == "2018-12-31"
    splits = summary["splits"]
    assert set(splits) == {"train", "val", "test"}
    assert splits["train"]["last_date"] < splits["val"]["first_date"] < splits["test"]["first_date"]
    total = sum(s["samples"] for s in splits.values())
    assert splits["test"]["samples"] == pytest.approx(0.15 * total, rel=0.02)
    for s in splits.values():
        assert 0.05 < s["positive_rate"] < 0.6


def test_windows_are_views_of_one_feature_tensor(bundled_a25):
    data = bundled_a25.windows()
    windows = data.windows
    assert windows.shape == (len(data.features) - 59, 60, 25)
    assert windows.untyped_storage().data_ptr() == data.features.untyped_storage().data_ptr()
    rows = data.rows("val")[:7]
    x, y = data.batch(rows)
    assert x.shape == (7, 60, 25) and y.shape == (7,)
    t = int(rows[3])
    torch.testing.assert_close(x[3], data.features[t - 59 : t + 1])
    assert not torch.isnan(y).any()
    assert set(torch.unique(y).tolist()) <= {0.0, 1.0}


def test_normalisation_uses_training_rows_only(bundled_a25):
    data = bundled_a25.windows()
    train = data.features[data.rows("train")].double()
    torch.testing.assert_close(
        train.mean(0), torch.zeros(25, dtype=torch.float64), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        train.std(0, unbiased=False), torch.ones(25, dtype=torch.float64), atol=1e-4, rtol=0
    )
    test = data.features[data.rows("test")].double()
    assert test.mean(0).abs().max() > 0.05  # the test period is not standardised on itself


def test_every_windows_call_shares_one_feature_tensor(bundled_a25):
    first, second = bundled_a25.windows(), bundled_a25.windows()
    assert first is not second
    assert first.features is second.features and first.labels is second.labels
    storage = first.features.untyped_storage().data_ptr()
    assert second.windows.untyped_storage().data_ptr() == storage


def test_the_normaliser_is_fitted_once_on_training_rows(bundled_a25, monkeypatch):
    fresh = dataclasses.replace(bundled_a25)  # nothing fitted or built yet
    fits = []
    original = Normalizer.fit.__func__

    def counting_fit(cls, values, train_rows, continuous):
        fits.append(train_rows)
        return original(cls, values, train_rows, continuous)

    monkeypatch.setattr(Normalizer, "fit", classmethod(counting_fit))
    normalizer = fresh.normalizer()
    data = fresh.windows()
    fresh.windows()
    fresh.model_ready()
    assert fresh.normalizer() is normalizer and len(fits) == 1
    train_rows = fresh.table["split"].to_numpy() == TRAIN
    np.testing.assert_array_equal(fits[0], train_rows)
    raw = fresh.table.loc[train_rows, fresh.feature_names].to_numpy(float)
    continuous = fresh.continuous
    np.testing.assert_allclose(normalizer.mean[continuous], raw.mean(0)[continuous])
    np.testing.assert_allclose(normalizer.std[continuous], raw.std(0)[continuous])
    expected = normalizer.transform(fresh.table[fresh.feature_names].to_numpy(float))
    torch.testing.assert_close(data.features, torch.from_numpy(expected.astype(np.float32)))


@pytest.mark.parametrize("fraction", [0.25, 0.5])
def test_a_train_fraction_keeps_the_most_recent_training_samples_only(bundled_a25, fraction):
    full = bundled_a25.windows()
    part = bundled_a25.with_train_fraction(fraction).windows()
    train, kept = full.rows("train").numpy(), part.rows("train").numpy()
    assert len(kept) == round(len(train) * fraction)
    np.testing.assert_array_equal(kept, train[-len(kept) :])  # the most recent ones
    for split in ("val", "test"):
        np.testing.assert_array_equal(part.rows(split), full.rows(split))
    # standardised on the rows it trains on, not on the whole training split
    torch.testing.assert_close(
        part.features[part.rows("train")].double().mean(0),
        torch.zeros(25, dtype=torch.float64),
        atol=1e-5,
        rtol=0,
    )
    assert bundled_a25.with_train_fraction(1.0) is bundled_a25
    with pytest.raises(ValueError, match="fraction"):
        bundled_a25.with_train_fraction(0.0)


def test_model_ready_table(bundled_a25):
    table = bundled_a25.model_ready()
    assert list(table.columns[:2]) == ["date", "symbol"]
    assert list(table.columns[-2:]) == ["label", "split"]
    assert len(table.columns) == 25 + 4 and set(table["symbol"]) == {"SP500"}
    feature_columns = table.columns[2:-2]
    assert all(pd.api.types.is_numeric_dtype(table[c]) for c in feature_columns)
    assert set(table["label"].unique()) == {0, 1}
    states = bundled_a25.table["split"].to_numpy()
    assert len(table) == int(np.isin(states, list(SPLIT_NAMES)).sum())
    purged_dates = bundled_a25.table.index[states == PURGED]
    assert len(purged_dates) == 2 and not table["date"].isin(purged_dates).any()
    assert not table["date"].isin(bundled_a25.table.index[states == NO_LABEL]).any()


def _csv_config(folder, **kw):
    return DataConfig(source="csv", path=folder, **kw)


def test_altering_the_future_changes_nothing_at_or_before_t(tmp_path, sp500_frame):
    """Causality of the whole pipeline: features, normalisation statistics, labels."""
    rows = slice(-1500, None)
    write_symbol_csv(tmp_path / "a", "SP500", sp500_frame, rows)
    base = build_dataset(_csv_config(tmp_path / "a", horizon_days=3))
    train_dates = base.table.index[base.table["split"] == TRAIN]
    t = train_dates[-1] + pd.Timedelta(days=10)  # a day after every training row and its label
    altered = sp500_frame.iloc[rows].copy()
    future = altered.index > t
    rng = np.random.default_rng(0)
    factor = rng.uniform(0.8, 1.25, future.sum())
    for column in ["Open", "High", "Low", "Close", "Adj Close"]:
        altered.loc[future, column] *= factor
    altered.loc[future, "Volume"] = rng.permutation(altered.loc[future, "Volume"].to_numpy())
    write_symbol_csv(tmp_path / "b", "SP500", altered)
    other = build_dataset(_csv_config(tmp_path / "b", horizon_days=3))

    assert base.entry["inputs"] != other.entry["inputs"]
    upto = base.table.index <= t
    names = base.feature_names
    pd.testing.assert_frame_equal(base.table.loc[upto, names], other.table.loc[upto, names])
    before = base.table.index[upto][:-3]  # labels read 3 days ahead
    pd.testing.assert_series_equal(
        base.table.loc[before, "label"], other.table.loc[before, "label"]
    )
    np.testing.assert_array_equal(base.normalizer().mean, other.normalizer().mean)
    np.testing.assert_array_equal(base.normalizer().std, other.normalizer().std)
    assert not base.table.loc[~upto, names].equals(other.table.loc[~upto, names])


def test_truncating_the_future_changes_no_feature(tmp_path, sp500_frame):
    write_symbol_csv(tmp_path / "full", "SP500", sp500_frame, slice(-1500, None))
    write_symbol_csv(tmp_path / "cut", "SP500", sp500_frame, slice(-1500, -400))
    full = build_dataset(_csv_config(tmp_path / "full"))
    cut = build_dataset(_csv_config(tmp_path / "cut"))
    names = full.feature_names
    common = cut.table.index
    pd.testing.assert_frame_equal(full.table.loc[common, names], cut.table[names])


def test_store_reuses_until_an_input_or_parameter_changes(tmp_path, sp500_frame):
    folder = tmp_path / "prices"
    write_symbol_csv(folder, "SP500", sp500_frame, slice(-1200, None))
    store = DataStore(tmp_path / "store")
    first = build_dataset(_csv_config(folder), store)
    again = build_dataset(_csv_config(folder), store)
    assert not first.reused and again.reused
    assert again.entry["sha256"] == first.entry["sha256"]
    pd.testing.assert_frame_equal(first.table, again.table)

    entries = store.entries()
    raw = [e for e in entries.values() if e["kind"] == "raw"]
    processed = [e for e in entries.values() if e["kind"] == "processed"]
    assert len(raw) == 1 and len(processed) == 1
    for entry in entries.values():
        assert {"source", "rows", "first_date", "last_date", "sha256", "created_at"} <= set(entry)
    assert processed[0]["inputs"] == {"SP500": raw[0]["sha256"]}
    assert raw[0]["rows"] == 1200 and raw[0]["last_date"] == "2018-12-31"

    changed_parameter = build_dataset(_csv_config(folder, threshold=0.02), store)
    assert not changed_parameter.reused and changed_parameter.key != first.key

    edited = sp500_frame.iloc[-1200:].copy()
    edited.iloc[-1, edited.columns.get_loc("Close")] *= 1.01
    write_symbol_csv(folder, "SP500", edited)
    changed_input = build_dataset(_csv_config(folder), store)
    assert not changed_input.reused and changed_input.key != first.key

    # A damaged processed file is rebuilt, never trusted.
    path = store.root / store.entries()[f"processed/{first.key}"]["path"]
    write_symbol_csv(folder, "SP500", sp500_frame, slice(-1200, None))
    pd.DataFrame({"x": [1]}).to_parquet(path)
    rebuilt = build_dataset(_csv_config(folder), store)
    assert not rebuilt.reused and rebuilt.entry["sha256"] == first.entry["sha256"]


def test_larger_tiers_on_bundled_data():
    a50 = build_dataset(DataConfig(tier="a50"))
    assert a50.roles == {"target": "SP500", "context": "NASDAQ"} and len(a50.feature_names) == 50
    a100 = build_dataset(DataConfig(tier="a100", horizon_days=5))
    assert list(a100.roles.items()) == [("target", "SP500"), ("context", "NASDAQ"), ("vix", "VIX")]
    assert len(a100.feature_names) == 100
    # VIX starts in 2014, so the a100 dataset does too.
    assert a100.table.index[0].year >= 2014
    table = a100.model_ready()
    assert set(table["vix_regime"].unique()) <= {0, 1, 2}
    assert table["vix_regime"].dtype.kind == "i"


def test_volatility_scaled_labels_build(bundled_a25):
    scaled = build_dataset(
        DataConfig(threshold_mode="volatility", volatility_k=0.5, horizon_days=3)
    )
    rates = [s["positive_rate"] for s in scaled.summary()["splits"].values()]
    fixed = [s["positive_rate"] for s in bundled_a25.summary()["splits"].values()]
    assert np.ptp(rates) < np.ptp(fixed) + 0.05
    assert scaled.key != bundled_a25.key


def test_chunked_split_builds_with_validation_across_history():
    data = build_dataset(DataConfig(split="chunked", n_chunks=4))
    summary = data.summary()
    assert summary["splits"]["val"]["first_date"] < "2004-01-01"
    assert summary["splits"]["test"]["first_date"] > summary["splits"]["val"]["last_date"]


@pytest.mark.parametrize(
    "config,match",
    [
        (dict(tier="a25", symbols=("NASDAQ",)), "tier a25 does not use NASDAQ"),
        (dict(tier="a50", symbols=("NASDAQ", "DJI")), "one context symbol"),
    ],
)
def test_symbols_that_do_not_fit_the_tier(config, match):
    with pytest.raises(InputError, match=match):
        resolve_roles(DataConfig(**config))


def test_csv_tier_without_its_context_symbol(csv_folder):
    with pytest.raises(InputError, match=r"tier a50 needs a context symbol.*data.symbols"):
        build_dataset(_csv_config(csv_folder, tier="a50"))


def test_too_few_rows_is_a_clear_error(tmp_path, sp500_frame):
    write_symbol_csv(tmp_path, "SP500", sp500_frame, slice(-300, None))
    store = DataStore(tmp_path / "store")
    with pytest.raises(InputError, match=r"too few rows for context \+ horizon \+ three splits"):
        build_dataset(_csv_config(tmp_path), store)
    assert not store.root.exists()  # nothing written


def test_a_new_feature_spec_rebuilds(tmp_path, csv_folder, monkeypatch):
    from finscale.data import features

    store = DataStore(tmp_path / "store")
    first = build_dataset(_csv_config(csv_folder), store)
    monkeypatch.setattr(features, "FEATURE_SPEC_VERSION", "changed")
    again = build_dataset(_csv_config(csv_folder), store)
    assert not again.reused and again.key != first.key
    assert again.entry["feature_spec"]["version"] == "changed"


def test_date_range_trims_the_dataset_not_the_stored_input(tmp_path):
    import datetime as dt

    store = DataStore(tmp_path / "store")
    config = DataConfig(start=dt.date(2005, 1, 1), end=dt.date(2012, 12, 31))
    data = build_dataset(config, store)
    assert data.table.index[0] >= pd.Timestamp("2005-01-01")
    assert data.table.index[-1] <= pd.Timestamp("2012-12-31")
    raw = [e for e in store.entries().values() if e["kind"] == "raw"]
    assert raw[0]["first_date"] == "1999-01-04" and raw[0]["last_date"] == "2018-12-31"
    assert data.key != build_dataset(DataConfig(), store).key


def test_must_exist_refuses_to_build(tmp_path):
    store = DataStore(tmp_path / "store")
    with pytest.raises(InputError, match="no stored dataset for these options"):
        build_dataset(DataConfig(), store, must_exist=True)
    build_dataset(DataConfig(), store)
    assert build_dataset(DataConfig(), store, must_exist=True).reused
