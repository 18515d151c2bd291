"""Bad inputs, one of each kind, across the commands, as a new user types them: each
ends in exactly one `error:` line that names its flag, argument or file in its
`(...)`, exit code 2, no traceback, and nothing on disk that was not there before
(the data store included). Every case is refused before any data is built, so each
takes a fraction of a second."""

import json
from pathlib import Path

import pytest

PASSWORD = "S3cretPW"
# A study.json that `summary` and `hpo import-trials` accept as a run directory's.
STUDY_FILE = {"study_name": "tiny"}
SCALE_FILE_WITH_BAD_CONFIG = {
    "config": {"data": 5},
    "storage": None,
    "studies": [{"budget": 8000, "horizon_days": 1, "study_name": "a25_8K_h1"}],
}


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """The `finscale` fixture's folder, holding the files the cases point at."""
    # A closed port is refused at once; its retries (meant for a server that is
    # restarting) would only make the case slow.
    monkeypatch.setattr("finscale.execution.storage.OPEN_ATTEMPTS", 1)
    (tmp_path / "afile").write_text("a file where a folder belongs\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "prices.csv").write_text("date,close\n2020-01-02,3257.85\n")
    header = "date,symbol,open,high,low,close,volume\n"
    rows = [f"2020-01-0{d},MSFT,1,2,1,2,10\n" for d in (2, 3, 2)]
    (tmp_path / "long_dup.csv").write_text(header + "".join(rows))
    (tmp_path / "long_nosym.csv").write_text(
        header.replace("symbol,", "") + "2020-01-02,1,2,1,2,10\n"
    )
    (tmp_path / "closes").mkdir()
    (tmp_path / "closes" / "AAA.csv").write_text("Date,Close\n2020-01-02,10.5\n2020-01-03,10.7\n")
    (tmp_path / "notes.txt").write_text("not a database\n")
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "bad.yaml").write_text("data:\n  tier: [a25\n")
    for name, content in {
        "empty_scale/scale.json": "{}",
        "list_scale/scale.json": "[1]",
        "bad_config_scale/scale.json": json.dumps(SCALE_FILE_WITH_BAD_CONFIG),
        "scale_run/scale.json": json.dumps({**SCALE_FILE_WITH_BAD_CONFIG, "config": {}}),
        "list_study/study.json": "[1]",
        "study_run/study.json": json.dumps(STUDY_FILE),
        "study_run/trials/trial_0000.json": "{}",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    return tmp_path


def listing(root: Path) -> dict[str, int]:
    """Every path under `root` and its size (folders 0)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size if p.is_file() else 0)
        for p in sorted(root.rglob("*"))
    }


HPO = ("hpo", "--budget", "200K")
BAD_URL = f"postgres:/u:{PASSWORD}@@127.0.0.1::x/db"

CASES = {
    # ---- storage: malformed, missing for a worker, unreachable, a folder, under a file
    "storage-one-slash": ([*HPO, "--storage", BAD_URL], "--storage"),
    "storage-no-scheme": (["scale", "--storage", f"u:{PASSWORD}@db.lan/optuna"], "--storage"),
    "storage-raw-at-in-password": (
        ["worker", "--storage", "postgresql://u:p@ss@db.lan/optuna", "--study", "x"],
        "--storage",
    ),
    "storage-postgres-scheme": ([*HPO, "--storage", "postgres://u:pw@db.lan/db"], "--storage"),
    "storage-in-memory-sqlite": ([*HPO, "--storage", "sqlite://"], "--storage"),
    "worker-missing-journal": (["worker", "--storage", "new.journal", "--study", "x"], "--storage"),
    "worker-missing-sqlite": (
        ["worker", "--storage", "sqlite:///new.db", "--study", "x"],
        "--storage",
    ),
    "scale-storage-closed-port": (
        ["scale", "--preset", "quick", "--storage", "postgresql://u:pw@127.0.0.1:1/db"],
        "--storage",
    ),
    # ---- a budget no architecture fits: refused before the data store is written
    "hpo-budget-fits-nothing": (["hpo", "--budget", "1K"], "--budget"),
    "scale-budget-fits-nothing": (["scale", "--preset", "quick", "--budgets", "1K"], "--budgets"),
    "storage-is-a-folder": ([*HPO, "--storage", "folder"], "--storage"),
    "storage-under-a-file": ([*HPO, "--storage", "afile/study.journal"], "--storage"),
    "sqlite-under-a-file": ([*HPO, "--storage", "sqlite:///afile/study.db"], "--storage"),
    "storage-is-a-csv": ([*HPO, "--storage", "prices.csv"], "--storage"),
    "worker-storage-is-a-csv": (["worker", "--storage", "prices.csv", "--study", "x"], "--storage"),
    "sqlite-storage-is-a-text-file": ([*HPO, "--storage", "sqlite:///notes.txt"], "--storage"),
    "summary-missing-storage": (["summary", "study_run", "--storage", "none.journal"], "--storage"),
    # ---- config files
    "config-empty": ([*HPO, "--config", "empty.yaml"], "--config"),
    "config-yaml-syntax": (["scale", "--config", "bad.yaml"], "--config"),
    "config-is-a-folder": ([*HPO, "--config", "folder"], "--config"),
    # ---- records of the wrong shape
    "report-not-a-run-directory": (["report", "folder"], "folder"),
    "report-scale-json-empty": (["report", "empty_scale"], "empty_scale/scale.json"),
    "report-scale-json-list": (["report", "list_scale"], "list_scale/scale.json"),
    "report-scale-json-bad-config": (
        ["report", "bad_config_scale"],
        "bad_config_scale/scale.json",
    ),
    "cross-budget-scale-json-empty": (
        ["validate-cross-budget", "empty_scale"],
        "empty_scale/scale.json",
    ),
    "summary-study-json-list": (["summary", "list_study"], "list_study/study.json"),
    # ---- folders and files that are files, or lie under one
    "hpo-run-dir-is-a-file": ([*HPO, "--run-dir", "afile"], "--run-dir"),
    "hpo-run-dir-under-a-file": ([*HPO, "--run-dir", "afile/run"], "--run-dir"),
    "scale-run-dir-is-a-file": (["scale", "--preset", "quick", "--run-dir", "afile"], "--run-dir"),
    "import-run-dir-under-a-file": (
        ["hpo", "import-trials", "study_run", "--run-dir", "afile/run"],
        "--run-dir",
    ),
    "hpo-store-is-a-file": ([*HPO, "--store", "afile"], "--store"),
    "data-store-under-a-file": (["data", "build", "--store", "afile/store"], "--store"),
    "data-out-under-a-file": (["data", "build", "--out", "afile/table.parquet"], "--out"),
    "train-out-under-a-file": (
        ["train", "--budget", "200K", "--arch-index", "0", "--out", "afile/run.json"],
        "--out",
    ),
    "coord-check-out-under-a-file": (["coord-check", "--out", "afile/check"], "--out"),
    "fit-law-table-is-a-folder": (
        ["fit-law", "folder", "--params-col", "n", "--loss-col", "loss"],
        "folder",
    ),
    # ---- values checked before any data is built
    "coord-check-width-not-divisible": (
        ["coord-check", "--widths", "33,64", "--depths", ""],
        "--widths",
    ),
    "study-name-with-a-slash": ([*HPO, "--study", "../elsewhere"], "--study"),
    "worker-study-name-with-a-slash": (
        ["worker", "--storage", "new.journal", "--study", "a/b"],
        "--study",
    ),
    "max-temp-not-positive": ([*HPO, "--max-temp", "0"], "--max-temp"),
    # ---- the controls
    "null-control-unknown": (["data", "build", "--null-control", "noise"], "--null-control"),
    "ohlcv-tier-of-close-prices": (
        ["data", "build", "--source", "csv", "--path", "closes", "--target", "AAA"],
        "--tier close",
    ),
    "synthetic-with-a-context-tier": (
        ["data", "build", "--source", "synthetic", "--tier", "a50"],
        "--tier",
    ),
    "synthetic-teacher-longer-than-the-window": (
        ["scale", "--set", "data.source=synthetic", "--set", "data.context_days=4"],
        "--set data.context_days",
    ),
    "synthetic-random-walk": (
        ["data", "build", "--source", "synthetic", "--null-control", "random_walk"],
        "--null-control",
    ),
    "null-seed-negative": (["data", "build", "--null-seed", "-1"], "--null-seed"),
    "null-block-days-zero": (
        ["scale", "--set", "data.null_block_days=0"],
        "--set data.null_block_days",
    ),
    "synthetic-signal-zero": (
        ["scale", "--set", "data.synthetic.signal=0"],
        "--set data.synthetic.signal",
    ),
    # ---- search levers
    "search-sampler-unknown": ([*HPO, "--set", "search.sampler=cmaes"], "--set search.sampler"),
    "search-patience-zero": ([*HPO, "--set", "search.patience=0"], "--set search.patience"),
    # ---- long files, targets all, min_history_days
    "long-file-duplicate-date": (
        ["data", "build", "--source", "csv", "--path", "long_dup.csv", "--target", "all"],
        "long_dup.csv, column Date, row 3",
    ),
    "long-file-without-a-symbol-column": (
        ["data", "build", "--source", "csv", "--path", "long_nosym.csv", "--target", "all"],
        "long_nosym.csv",
    ),
    "all-targets-of-yahoo": (["data", "build", "--source", "yahoo", "--target", "all"], "--target"),
    "min-history-drops-every-target": (
        ["data", "build", "--target", "all", "--min-history-days", "100000"],
        "--min-history-days",
    ),
    # ---- relative labels, the universe's flags
    "relative-label-of-one-target": (["scale", "--label-mode", "relative"], "--label-mode"),
    "relative-label-in-hpo-of-one-target": (
        [*HPO, "--preset", "quick", "--label-mode", "relative"],
        "--label-mode",
    ),
    "label-mode-unknown": (["data", "build", "--label-mode", "sideways"], "--label-mode"),
    "relative-label-with-a-volatility-threshold": (
        [
            *("data", "build", "--target", "all", "--label-mode", "relative"),
            *("--threshold-mode", "volatility"),
        ],
        "--threshold-mode",
    ),
    "absolute-label-at-zero-threshold": (["data", "build", "--threshold", "0"], "--threshold"),
    "samples-per-epoch-zero": (
        ["train", "--budget", "20K", "--arch-index", "0", "--samples-per-epoch", "0"],
        "--samples-per-epoch",
    ),
    "long-short-quantile-above-a-half": (
        ["scale", "--set", "evaluation.long_short_quantile=0.7"],
        "--set evaluation.long_short_quantile",
    ),
    "stocks-on-an-ohlcv-tier": (
        ["data", "build", "--source", "stocks", "--tier", "a50"],
        "--tier close",
    ),
    # ---- the tier axis
    "tiers-leaving-out-the-data-tier": (["scale", "--tiers", "a50,a100"], "--tiers a25,a50,a100"),
    "tier-named-twice": (["scale", "--tiers", "a25,a50,a25"], "--tiers"),
    "tier-unknown": (["scale", "--tiers", "a25,a75"], "--tiers"),
    "ohlcv-tier-of-the-stocks": (
        ["scale", "--preset", "universe", "--tiers", "close,a25"],
        "--tiers",
    ),
    "ohlcv-tier-of-close-only-files": (
        [
            *("scale", "--set", "data.source=csv", "--set", "data.path=closes"),
            *("--set", "data.target=AAA", "--tier", "close", "--tiers", "close,a25"),
        ],
        "--tiers",
    ),
    "synthetic-too-few-days": (
        ["scale", "--set", "data.synthetic.days=10"],
        "--set data.synthetic.days",
    ),
}


@pytest.mark.parametrize(("args", "where"), CASES.values(), ids=CASES.keys())
def test_a_bad_input_is_one_line_naming_its_place_and_writes_nothing(
    args, where, workdir, finscale
):
    before = listing(workdir)
    code, stdout, stderr = finscale(*args)
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert lines[0].endswith(f"({where})"), lines[0]
    assert "Traceback" not in stdout + stderr
    assert listing(workdir) == before


def test_a_yaml_error_says_where_in_the_file(workdir, finscale):
    _, _, stderr = finscale(*HPO, "--config", "bad.yaml")
    assert "config file bad.yaml is not valid YAML at line 3, column 1" in stderr


def test_an_empty_config_file_is_refused_by_name(workdir, finscale):
    _, _, stderr = finscale(*HPO, "--config", "empty.yaml")
    assert stderr.strip() == "error: config file empty.yaml is empty (--config)"


def test_a_duplicate_date_of_a_long_file_names_the_symbol_and_its_row(workdir, finscale):
    _, _, stderr = finscale(
        "data", "build", "--source", "csv", "--path", "long_dup.csv", "--target", "MSFT"
    )
    assert stderr.strip() == (
        "error: duplicate date 2020-01-02 for symbol MSFT, also at row 1 "
        "(long_dup.csv, column Date, row 3)"
    )


def test_a_run_directory_that_is_a_file_is_named_as_such(workdir, finscale):
    _, _, stderr = finscale(*HPO, "--run-dir", "afile")
    assert stderr.strip() == "error: run directory afile is a file (--run-dir)"


MISTYPED_URLS = [
    f"postgres:/u:{PASSWORD}@@127.0.0.1::x/db",
    f"postgresql:/u:{PASSWORD}@127.0.0.1:5432/db",
    f"postgresql://u:{PASSWORD}@@127.0.0.1::x/db",
    f"postgresql://u:{PASSWORD}@127.0.0.1:port/db",
    f"postgresql//u:{PASSWORD}@127.0.0.1/db",
    f"u:{PASSWORD}@127.0.0.1/db",
    f"postgres:/u:{PASSWORD}/127.0.0.1",
]


@pytest.mark.parametrize("url", MISTYPED_URLS)
def test_a_mistyped_url_never_shows_its_password(url, workdir, finscale):
    before = listing(workdir)
    outputs = []
    for args in (
        [*HPO, "--storage", url],
        ["scale", "--storage", url],
        ["worker", "--storage", url, "--study", "x"],
        ["summary", "study_run", "--storage", url],
        ["hpo", "import-trials", "study_run", "--run-dir", "imported", "--storage", url],
        ["validate-cross-budget", "scale_run", "--storage", url],
    ):
        code, stdout, stderr = finscale(*args)
        assert code == 2 and stderr.startswith("error: "), (args, stderr)
        outputs += [stdout, stderr]
    assert not any(PASSWORD in text for text in outputs)
    assert listing(workdir) == before
    assert not any(PASSWORD in path for path in listing(workdir))


def test_a_store_set_in_the_environment_is_blamed_on_its_variable(workdir, finscale, monkeypatch):
    monkeypatch.setenv("FINSCALE_STORE", str(workdir / "afile"))
    before = listing(workdir)
    code, _, stderr = finscale("data", "build")
    assert code == 2 and stderr.strip().endswith("is a file (FINSCALE_STORE)"), stderr
    assert listing(workdir) == before
