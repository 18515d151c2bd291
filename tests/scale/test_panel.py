"""The tiny study on a panel of the bundled S&P 500 and NASDAQ, walk-forward: pooled
figures resample dates with both symbols, and the report gives a per-symbol table."""

import pandas as pd
import pytest

from finscale.scale import build_results, write_run_report
from tests.scale.tiny import TINY_WALK_FORWARD_SETS, run_pipeline, tiny_scale_spec

PANEL_SETS = {
    **TINY_WALK_FORWARD_SETS,
    "data.targets": ["SP500", "NASDAQ"],
    "scale.budgets": "4K,16K",
}


@pytest.fixture(scope="module")
def panel_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("panel")
    spec = tiny_scale_spec(root / "run", root / "store", **PANEL_SETS)
    run_pipeline(spec)
    return spec.run_dir


@pytest.mark.slow
def test_a_panel_study_gives_pooled_and_per_symbol_figures(panel_run):
    results = build_results(panel_run)
    h = results.horizons["1"]
    symbols = {s.symbol: s for s in h.symbols}
    assert set(symbols) == {"SP500", "NASDAQ"}
    assert sum(s.n_test for s in symbols.values()) == h.n_test
    for s in symbols.values():
        assert [b.budget for b in s.budgets] == [4_000, 16_000]
        for entry in s.budgets:
            assert entry.log_loss.boot_low < entry.log_loss.boot_high
        assert set(s.baselines) == set(h.baselines)
    # Log loss is a mean over test rows: the symbols' means, weighted by their test
    # rows, are the pooled mean (a row counted under the wrong symbol breaks this).
    for k, row in enumerate(h.budgets):
        by_symbol = [(s.n_test, s.budgets[k].log_loss.mean) for s in symbols.values()]
        pooled = sum(n * mean for n, mean in by_symbol) / sum(n for n, _ in by_symbol)
        assert row.metrics["log_loss"].mean == pytest.approx(pooled, rel=1e-9)
    table = pd.read_csv(panel_run / "experiment_results.csv")
    for row in h.budgets:
        assert 0 <= row.pbo.value <= 1
        assert "panel" in row.sharpe.skipped and row.dsr.value is None
        # every window of both symbols counts as a training sample
        runs = table[table["budget"] == row.budget]
        assert row.n_train == round(runs.groupby("fold")["train_samples"].first().mean())
    assert [f.fold for f in h.folds] == [0, 1, 2]
    # The panel's illustration: a long-short portfolio of the two symbols (one per leg),
    # the winner's beside the logistic baseline's, on every test date.
    for row in h.budgets:
        view = row.long_short
        assert (view.quantile, view.rebalance_days, view.skipped) == (0.2, 1, None)
        for figures in (view.model, view.logistic):
            low, high = figures.sharpe_ci
            assert low <= figures.sharpe <= high
            assert 0 < figures.annual_turnover <= 4 * 252
            assert h.n_test / 2 <= figures.n_days < h.n_test  # dates, each with both symbols
            assert figures.dsr.trials > 0 and 0 <= figures.dsr.value <= 1
        assert view.model.n_days == view.logistic.n_days
    assert results.label_mode == "absolute"
    write_run_report(panel_run, results)
    text = (panel_run / "report.md").read_text()
    assert "Long-short portfolio" in text and "| logistic baseline |" in text
    assert "not a trading system" in text
    assert "### Per symbol" in text and "`NASDAQ` (" in text
    assert "Panel of `SP500`, `NASDAQ`, each featured on its own series" in text
    assert results.target == "SP500, NASDAQ"
