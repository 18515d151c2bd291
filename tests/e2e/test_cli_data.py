"""The `finscale data` commands as a user runs them, on real files."""

import json
from pathlib import Path

import pandas as pd
import pytest

from finscale.cli import main
from tests.conftest import write_symbol_csv


def test_build_bundled_writes_model_ready_table(tmp_path, finscale):
    out = tmp_path / "sp500_h1.parquet"
    code, stdout, stderr = finscale("data", "build", "--out", out, "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    table = pd.read_parquet(out)
    assert summary["out"]["rows"] == len(table)
    assert list(table.columns[:2]) == ["date", "symbol"]
    assert list(table.columns[-2:]) == ["label", "split"]
    assert len(table.columns) == 25 + 4
    assert set(table["split"].astype(str)) == {"train", "val", "test"}
    assert sum(s["samples"] for s in summary["splits"].values()) == len(table)
    # The manifest now holds the raw input and the processed dataset.
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    kinds = sorted(e["kind"] for e in manifest["entries"].values())
    assert kinds == ["processed", "raw"]

    code, stdout, _ = finscale("data", "show", "--json")
    assert code == 0 and json.loads(stdout)["reused"] is True


def test_build_csv_folder_human_summary(tmp_path, csv_folder, finscale):
    out = tmp_path / "ready.parquet"
    code, stdout, stderr = finscale(
        *("data", "build", "--source", "csv", "--path", csv_folder, "--symbols", "NASDAQ"),
        *("--tier", "a50", "--horizon", "3", "--split", "chunked", "--out", out),
    )
    assert code == 0, stderr
    assert "features   50 (tier a50)" in stdout
    assert "context NASDAQ" in stdout and "sha256 dataset" in stdout
    assert len(pd.read_parquet(out).columns) == 50 + 4


def test_features_lists_every_feature(finscale):
    code, stdout, _ = finscale("data", "features", "--tier", "a50", "--json")
    features = json.loads(stdout)
    assert code == 0 and len(features) == 50
    assert all(f["description"] for f in features)


@pytest.mark.parametrize(
    "corrupt,message",
    [
        (lambda t: t.replace("Close,Adj Close", "Clsoe,Adj Close"), "missing column 'Close'"),
        (lambda t: t.replace("2016-03-01", "2016-02-29", 1), "duplicate date 2016-02-29"),
        (lambda t: t.replace("2016-03-01", "yesterday", 1), "unparseable date 'yesterday'"),
    ],
)
def test_bad_file_one_error_line_exit_2_nothing_written(
    tmp_path, sp500_frame, corrupt, message, finscale
):
    folder = tmp_path / "prices"
    path = write_symbol_csv(folder, "SP500", sp500_frame, slice(-1000, None))
    path.write_text(corrupt(path.read_text()))
    out = tmp_path / "out.parquet"
    # In-process, a traceback would be an exception out of main(), failing the test.
    code, _, stderr = finscale("data", "build", "--source", "csv", "--path", folder, "--out", out)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "SP500.csv" in lines[0]
    assert not out.exists() and not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["data", "build", "--target", "FTSE"], "symbol FTSE not found"),
        (
            ["data", "build", "--tier", "a75"],
            "data.tier: Input should be 'a25', 'a50', 'a100' or 'close', got 'a75' (--tier)",
        ),
        (["data", "build", "--horizon", "0"], "(--horizon)"),
        (["data", "build", "--source", "csv"], "needs path"),
        (["data", "build", "--out", "table.csv"], "must be a .parquet file, got table.csv (--out)"),
        (["data", "build", "--no-such-flag"], "No such option: --no-such-flag"),
        (
            ["data", "features", "--tier", "b9"],
            "data.tier: Input should be 'a25', 'a50', 'a100' or 'close', got 'b9' (--tier)",
        ),
    ],
)
def test_bad_flags_one_error_line_exit_2(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.setenv("FINSCALE_STORE", str(tmp_path / "store"))
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "store").exists()


def test_data_build_of_a_panel_shows_rows_per_symbol_and_a_symbol_column(tmp_path, finscale):
    out = tmp_path / "panel.parquet"
    code, stdout, stderr = finscale("data", "build", "--target", "SP500,NASDAQ", "--out", out)
    assert code == 0, stderr
    assert "SP500" in stdout and "NASDAQ" in stdout and "4920" in stdout  # samples per symbol
    table = pd.read_parquet(out)
    assert table.groupby("symbol").size().to_dict() == {"NASDAQ": 4920, "SP500": 4920}
    code, stdout, stderr = finscale("data", "build", "--target", "SP500,NASDAQ,SP500")
    assert code == 2 and "named twice" in stderr and len(stderr.strip().splitlines()) == 1


def test_a_planted_market_shows_its_bayes_log_loss_and_a_null_control_says_so(finscale):
    code, stdout, stderr = finscale("data", "build", "--source", "synthetic", "--context", "32")
    assert code == 0, stderr
    assert "planted: drawn from a known p(window)" in stdout
    assert "Bayes log loss" in stdout
    code, stdout, stderr = finscale(
        "data", "show", "--source", "synthetic", "--context", "32", "--json"
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["reused"] is True and summary["null_control"] == "none"
    bayes = [split["bayes_log_loss"] for split in summary["splits"].values()]
    assert all(0.4 < b < 0.69 for b in bayes)
    manifest = json.loads((Path("store") / "manifest.json").read_text())
    (processed,) = [e for e in manifest["entries"].values() if e["kind"] == "processed"]
    assert processed["bayes_log_loss"]["test"] == summary["splits"]["test"]["bayes_log_loss"]

    code, stdout, stderr = finscale("data", "build", "--null-control", "shuffle")
    assert code == 0, stderr
    assert "null control shuffle" in stdout


def test_a_long_file_of_every_symbol_builds_a_panel_and_show_names_ignored_columns(
    tmp_path, sp500_frame, nasdaq_frame, finscale, caplog
):
    parts = [
        frame.iloc[-500:].rename_axis("date").reset_index().assign(symbol=symbol, venue="X")
        for symbol, frame in {"SP500": sp500_frame, "NASDAQ": nasdaq_frame}.items()
    ]
    pd.concat(parts).to_parquet(tmp_path / "long.parquet", index=False)
    args = ("--source", "csv", "--path", "long.parquet", "--target", "all", "--tier", "a25")
    code, stdout, stderr = finscale("data", "build", *args, "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["roles"] == {"target": "NASDAQ,SP500"}
    assert set(summary["symbols"]) == {"NASDAQ", "SP500"}
    assert summary["ignored_columns"] == {"long.parquet": ["venue"]}
    code, stdout, stderr = finscale("data", "show", *args)
    assert code == 0, stderr
    assert "ignored columns of long.parquet: venue" in stdout
    # a target with a short history is dropped, said on the log and shown
    with caplog.at_level("WARNING", logger="finscale.data"):
        code, stdout, stderr = finscale("data", "build", *args, "--min-history-days", "600")
    assert code == 2 and "every target has fewer" in stderr and "(--min-history-days)" in stderr
    three = pd.concat([parts[0], parts[1].iloc[-300:], parts[0].assign(symbol="DOW")])
    three.to_parquet(tmp_path / "long.parquet", index=False)
    with caplog.at_level("WARNING", logger="finscale.data"):
        code, stdout, stderr = finscale("data", "build", *args, "--min-history-days", "400")
    assert code == 0, stderr
    assert "dropped 1 of 3 targets" in caplog.text and "NASDAQ (300 rows)" in caplog.text
    assert "dropped targets (data.min_history_days): NASDAQ (300 rows)" in stdout


def test_data_build_of_relative_labels_on_tier_close_and_its_show(finscale):
    args = ("--target", "SP500,NASDAQ", "--tier", "close", "--label-mode", "relative")
    code, stdout, stderr = finscale("data", "build", *args)
    assert code == 0, stderr
    assert "relative: return over 1 day(s) beats the panel's equal-weight return by > 0" in stdout
    code, stdout, stderr = finscale("data", "show", *args, "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["reused"] is True and summary["tier"] == "close"
    assert summary["n_features"] == 35 and summary["roles"] == {"target": "SP500,NASDAQ"}
    assert summary["label"]["label_mode"] == "relative"
    assert all(0.48 <= s["positive_rate"] <= 0.52 for s in summary["splits"].values())
    code, stdout, stderr = finscale("data", "features", "--tier", "close")
    assert code == 0 and "tier close: 35 features, needs target, panel" in stdout
