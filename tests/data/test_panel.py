"""A panel of the bundled S&P 500 and NASDAQ (and of CSV folders): one dataset, each
target's features, labels and normaliser its own, split boundaries shared dates."""

import numpy as np
import pytest
import torch

from finscale.config import DataConfig, EvaluationConfig
from finscale.data import build_dataset
from finscale.data.splits import TEST, TRAIN, VAL
from finscale.data.store import DataStore
from finscale.errors import InputError
from tests.conftest import write_symbol_csv

PANEL = ("SP500", "NASDAQ")


@pytest.fixture(scope="module")
def panel():
    return build_dataset(DataConfig(targets=PANEL))


def test_each_target_is_labelled_on_its_own_series_and_pooled(panel):
    alone = {t: build_dataset(DataConfig(target=t)) for t in PANEL}
    blocks = panel.blocks()
    assert [b[0] for b in blocks] == list(PANEL)
    for symbol, a, b in blocks:
        own = alone[symbol].table
        part = panel.table.iloc[a:b]
        np.testing.assert_array_equal(part["label"].to_numpy(), own["label"].to_numpy())
        np.testing.assert_allclose(part["ret_1d"].to_numpy(), own["ret_1d"].to_numpy())
    summary = panel.summary()
    assert summary["symbols"]["NASDAQ"]["rows"] == len(alone["NASDAQ"].table)
    assert summary["splits"]["train"]["samples"] == sum(
        a.summary()["splits"]["train"]["samples"] for a in alone.values()
    )


def test_a_panel_is_held_in_float32_with_one_code_per_symbol(panel):
    features = panel.table[panel.feature_names]
    assert set(features.dtypes.astype(str)) == {"float32"}
    assert panel.table["label"].dtype == np.float32
    assert list(panel.table["symbol"].cat.categories) == list(PANEL)
    windows = panel.windows()
    assert windows.features.dtype == torch.float32
    # normalised in float64 per target, stored in float32: the training rows of each
    # target have mean 0 and unit spread to float32 precision
    train = panel.table["split"].to_numpy() == TRAIN
    for _, a, b in panel.blocks():
        rows = windows.features[a:b][torch.from_numpy(train[a:b])].double()
        continuous = torch.from_numpy(panel.continuous)
        assert rows[:, continuous].mean(0).abs().max() < 1e-5


def test_split_dates_are_shared_and_the_normaliser_is_per_target(panel):
    windows = panel.windows()
    codes, dates = panel.table["split"].to_numpy(), panel.table.index.to_numpy()
    for _symbol, a, b in panel.blocks():
        train, val, test = (dates[a:b][codes[a:b] == s] for s in (TRAIN, VAL, TEST))
        assert train.max() < val.min() and val.max() < test.min()
        features = windows.features[a:b][torch.from_numpy(codes[a:b] == TRAIN)].double()
        torch.testing.assert_close(
            features.mean(0), torch.zeros(25, dtype=torch.float64), atol=1e-5, rtol=0
        )
        # no window reaches into the previous target's rows
        rows = np.flatnonzero(np.isin(codes[a:b], (TRAIN, VAL, TEST))) + a
        assert rows.min() - panel.config.context_days + 1 >= a
        # each target's next-day return is its own: its last row has none
        returns = panel.next_day_returns()
        assert np.isnan(returns[b - 1]) and np.isfinite(returns[a : b - 1]).all()
    starts = {s: dates[a:b][codes[a:b] == VAL].min() for s, a, b in panel.blocks()}
    assert len(set(starts.values())) == 1  # one boundary date for both
    table = panel.model_ready()
    assert set(table["symbol"]) == set(PANEL)


def test_walk_forward_folds_of_a_panel_share_their_dates():
    walk = build_dataset(
        DataConfig(targets=PANEL), evaluation=EvaluationConfig(scheme="walk_forward")
    )
    folds = walk.folds()
    spans = walk.fold_dates()
    assert len(folds) == 5 and len(spans) == 5
    for fold, span in zip(folds, spans, strict=True):
        codes, dates = fold.table["split"].to_numpy(), fold.table.index
        for _, a, b in fold.blocks():
            test = dates[a:b][codes[a:b] == TEST]
            fitted = dates[a:b][np.isin(codes[a:b], (TRAIN, VAL))]
            assert str(test.min().date()) == span["test_start"]
            assert fitted.max() < test.min()


def test_bad_targets_are_one_clear_error(tmp_path, sp500_frame, nasdaq_frame):
    folder = tmp_path / "prices"
    write_symbol_csv(folder, "SP500", sp500_frame, slice(-1500, None))
    # NASDAQ's history covers only the last 200 days: too short to train on
    write_symbol_csv(folder, "NASDAQ", nasdaq_frame, slice(-200, None))
    store = DataStore(tmp_path / "store")
    with pytest.raises(InputError, match="target NASDAQ has data from") as info:
        build_dataset(DataConfig(source="csv", path=folder, targets=PANEL), store)
    assert info.value.where == "target NASDAQ" and "training samples" in str(info.value)
    assert not store.root.exists()  # nothing written
    with pytest.raises(InputError, match="QQQ"):
        build_dataset(DataConfig(source="csv", path=folder, targets=("SP500", "QQQ")))
    with pytest.raises(InputError, match="named twice"):
        from finscale.config import config_from_mapping

        config_from_mapping({"data": {"targets": ["SP500", "NASDAQ", "SP500"]}})


def test_a_symbol_embedding_trains_on_the_panels_symbol_column(panel):
    from finscale.config import TrainConfig
    from finscale.model import PatchTST, PatchTSTConfig
    from finscale.train.trainer import train

    windows = panel.windows(symbol_column=True)
    assert windows.features.shape[1] == 26 and windows.feature_names[-1] == "symbol"
    # the index column names each row's target, and the windows stay views of one tensor
    for k, (_, a, b) in enumerate(panel.blocks()):
        assert (windows.features[a:b, -1] == k).all()
    assert (
        windows.windows.untyped_storage().data_ptr()
        == windows.features.untyped_storage().data_ptr()
    )
    config = PatchTSTConfig(d_model=16, n_layers=1, n_heads=2, d_ff=64, n_symbols=2)
    fast = TrainConfig(
        max_epochs=1, patience=1, effective_batch=512, warmup_steps=0, device="cpu", dtype="fp32"
    )
    torch.manual_seed(fast.seed)
    start = PatchTST(config).symbols.weight.detach().clone()
    result = train(config, windows, fast)
    assert not torch.equal(result.model.symbols.weight.detach(), start)  # it learns
    # the same window under the other symbol's index predicts differently
    x = windows.windows[windows.rows("val")[:4] - 59].clone()
    other = x.clone()
    other[..., -1] = 1 - other[..., -1]
    with torch.no_grad():
        assert not torch.allclose(result.model(x), result.model(other))
    # without the symbol column the model says what it expects
    with pytest.raises(InputError, match="symbol column"):
        train(config, panel.windows(), fast)
