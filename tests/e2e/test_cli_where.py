"""Where a bad input is blamed: each ends in one line ``error: ... (<where>)`` naming
the flag the user typed (``--set KEY`` for a `--set` pair, the file for a value from a
config file), exit code 2, and nothing written. The layers below the CLI name config
fields; `finscale.cli.options` alone turns them into flags."""

from pathlib import Path

import pytest
import typer

import finscale.config as config_module
from finscale.cli.app import app
from finscale.cli.options import CONFIG_FLAGS, FLAG_OF_FIELD, config_default, flag_of
from finscale.config import StudyConfig

TRAIN = ["train", "--budget", "200K", "--arch-index", "0"]
HPO = ["hpo", "--budget", "200K", "--preset", "quick"]
SCALE = ["scale", "--preset", "quick"]

CASES = [
    # data
    (["data", "build", "--horizon", "90"], "less than or equal to 60", "--horizon"),
    (["data", "build", "--start", "2030-01-01"], "leaves no data of SP500", "--start"),
    (["data", "build", "--end", "1990-01-01"], "leaves no data of SP500", "--end"),
    (["data", "build", "--tier", "a75"], "data.tier", "--tier"),
    (["data", "build", "--target", "FTSE"], "symbol FTSE not found", "--target"),
    (["data", "build", "--tier", "a50", "--symbols", "DAX"], "symbol DAX not found", "--symbols"),
    (["data", "build", "--context", "1"], "data.context_days", "--context"),
    (["data", "build", "--source", "csv"], "needs path", "--source"),
    (["data", "build", "--symbols", "SP500"], "also listed in symbols", "--symbols"),
    (["data", "features", "--tier", "b9"], "data.tier", "--tier"),
    # grid and train
    (["grid", "--budget", "2M", "--context", "8"], "shorter than a patch (16)", "--context"),
    (["grid", "--budget", "2M", "--patch-len", "100"], "shorter than a patch", "--patch-len"),
    (["grid", "--budget", "2M", "--patch-len", "0"], "model.patch_len", "--patch-len"),
    (["grid", "--budget", "2M", "--tolerance", "2"], "model.budget_tolerance", "--tolerance"),
    (["grid", "--budget", "2M", "--memory-limit", "lots"], "memory size", "--memory-limit"),
    (["grid", "--budget", "2M", "--batch", "0"], "train.effective_batch", "--batch"),
    (["grid", "--budget", "2M", "--device", "tpu"], "unknown device", "--device"),
    (["grid", "--budget", "10"], "no architecture has 10 parameters", "--budget"),
    ([*TRAIN, "--lr", "0"], "train.learning_rate", "--lr"),
    ([*TRAIN, "--pos-weight", "many"], "train.pos_weight", "--pos-weight"),
    ([*TRAIN, "--micro-batch", "500"], "larger than effective_batch 128", "--micro-batch"),
    ([*TRAIN, "--epochs", "0"], "train.max_epochs", "--epochs"),
    # hpo
    ([*HPO, "--horizon", "90"], "data.horizon_days", "--horizon"),
    ([*HPO, "--trials", "0"], "search.trials", "--trials"),
    ([*HPO, "--tier", "a7"], "data.tier", "--tier"),
    ([*HPO, "--set", "train.max_epochs=-1"], "train.max_epochs", "--set train.max_epochs"),
    ([*HPO, "--set", "bogus.x=5"], "bogus: unknown section", "--set bogus.x"),
    ([*HPO, "--preset", "huge"], "no preset 'huge'", "--preset"),
    (["hpo", "--budget", "2X"], "not a parameter count", "--budget"),
    # scale
    ([*SCALE, "--horizons", "90"], "scale.horizons", "--horizons"),
    ([*SCALE, "--horizons", "1,0"], "scale.horizons", "--horizons"),
    ([*SCALE, "--seeds", "0"], "scale.seeds", "--seeds"),
    ([*SCALE, "--budgets", "20Q"], "budget '20Q'", "--budgets"),
    ([*SCALE, "--trials", "0"], "search.trials", "--trials"),
    ([*SCALE, "--tier", "a7"], "data.tier", "--tier"),
    ([*SCALE, "--set", "bogus.x=5"], "bogus: unknown section", "--set bogus.x"),
    ([*SCALE, "--set", "scale.horizons=[1, 90]"], "scale.horizons", "--set scale.horizons"),
    ([*SCALE, "--set", "train.max_epochs=-1"], "train.max_epochs", "--set train.max_epochs"),
    ([*SCALE, "--workers", "0"], "workers must be at least 1", "--workers"),
    ([*SCALE, "--config", "other.yaml"], "not both", "--config"),
    # coord-check
    (["coord-check", "--seeds", "0"], "seeds must be at least 1", "--seeds"),
    (["coord-check", "--steps", "0"], "steps must be at least 1", "--steps"),
    (["coord-check", "--batch", "0"], "batch_size must be at least 1", "--batch"),
    (["coord-check", "--widths", "30,64"], "not divisible by the 4 heads", "--widths"),
]


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def assert_refused(finscale, tmp_path, args, what, where) -> str:
    before = listing(tmp_path)
    code, _stdout, stderr = finscale(*args)
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert what in lines[0] and lines[0].endswith(f" ({where})"), lines[0]
    assert listing(tmp_path) == before  # no store, no run directory, no output
    return lines[0]


@pytest.mark.parametrize(("args", "what", "where"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_a_bad_input_names_the_flag_typed_and_writes_nothing(args, what, where, tmp_path, finscale):
    assert_refused(finscale, tmp_path, args, what, where)


def test_a_value_from_a_config_file_is_blamed_on_the_file(tmp_path, finscale):
    (tmp_path / "study.yaml").write_text("data:\n  horizon_days: 90\n")
    line = assert_refused(
        finscale, tmp_path, ["hpo", "--budget", "2M", "--config", "study.yaml"], "90", "study.yaml"
    )
    assert "data.horizon_days: " in line


def test_a_value_from_a_preset_is_blamed_on_the_preset(tmp_path, finscale, monkeypatch):
    broken = tmp_path.parent / f"{tmp_path.name}-quick.yaml"
    broken.write_text("scale:\n  horizons: [1, 90]\n")
    monkeypatch.setattr(config_module, "preset_path", lambda name: broken)
    line = assert_refused(finscale, tmp_path, [*SCALE, "--seeds", "2"], "90", "preset quick")
    assert line.startswith("error: scale.horizons: ")


def test_a_rule_across_sections_names_the_field_the_set_pair_broke(tmp_path, finscale):
    # The quick preset's 60-day context holds no 100-day patch; scale has no --patch-len.
    line = assert_refused(
        finscale,
        tmp_path,
        [*SCALE, "--set", "model.patch_len=100"],
        "shorter than a patch (100)",
        "--set model.patch_len",
    )
    assert line.startswith("error: model.patch_len: ")


def test_every_config_flag_sets_a_real_field_once():
    assert len(set(FLAG_OF_FIELD.values())) == len(FLAG_OF_FIELD)
    for field in CONFIG_FLAGS:
        section, name = field.split(".")
        assert name in StudyConfig.model_fields[section].annotation.model_fields


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (["data", "build"], "data.context_days"),
        (["data", "build"], "data.volatility_k"),
        (["grid"], "model.budget_tolerance"),
        (["train"], "train.learning_rate"),
        (["train"], "model.dropout"),
    ],
)
def test_help_shows_the_configs_own_default(command, field, finscale):
    code, stdout, _ = finscale(*command, "--help")
    assert code == 0
    row = next(line for line in stdout.splitlines() if f"{CONFIG_FLAGS[field].flag} " in line)
    assert f"[default: {config_default(field)}]" in row


def params_of(*path: str) -> list:
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command.params


def test_flag_of_prefers_the_set_pair_then_the_commands_flag_then_a_parameter():
    scale = params_of("scale")
    assert flag_of("scale.horizons", scale, None) == "--horizons"
    assert flag_of("scale.horizons", scale, ["scale.horizons=[90]"]) == "--set scale.horizons"
    assert flag_of("scale", scale, ["scale.horizons=[90]"]) == "--set scale.horizons"
    assert flag_of("run_dir", scale, None) == "--run-dir"  # a neutral name
    assert flag_of("data.symbols", scale, None) == "data.symbols"  # no --symbols on scale
    assert flag_of("preset quick", scale, None) == "preset quick"
    assert flag_of(None, scale, None) is None
    assert flag_of("run_dir", params_of("report"), None) == "RUN_DIR"  # an argument
    assert flag_of("data.symbols", params_of("data", "build"), None) == "--symbols"
