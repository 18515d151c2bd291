"""The study configuration, validated once at the CLI and passed to every stage.

Unknown keys are rejected (a typo in a YAML file must not silently fall back
to a default). `DataConfig` is the data section; later stages add theirs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from finscale.config.base import StrictSection, as_int_list
from finscale.config.data import DataConfig
from finscale.config.model import ModelConfig, TrainConfig
from finscale.config.scale import EvaluationConfig, ScaleConfig
from finscale.config.search import SearchConfig
from finscale.errors import InputError

__all__ = [
    "PRESETS",
    "DataConfig",
    "EvaluationConfig",
    "ModelConfig",
    "ScaleConfig",
    "SearchConfig",
    "StudyConfig",
    "TrainConfig",
    "as_int_list",
    "config_from_mapping",
    "load_study_config",
]


class StudyConfig(StrictSection):
    """One study's whole configuration: data, architecture space, training defaults,
    search, and the scaling study around the searches. A YAML file or a shipped
    preset holds it; `--set key=value` edits any field by its dotted name
    (``train.max_epochs=20``)."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    search: SearchConfig = SearchConfig()
    scale: ScaleConfig = ScaleConfig()
    evaluation: EvaluationConfig = EvaluationConfig()


PRESETS = ("quick", "paper", "panel")


def preset_path(name: str) -> Path:
    return Path(__file__).parent.parent / "presets" / f"{name}.yaml"


def load_study_config(
    preset: str | None = None,
    path: str | Path | None = None,
    overrides: dict[str, object] | None = None,
) -> StudyConfig:
    """A study config from a preset or a YAML file (not both), then dotted overrides.

    Raises `InputError` naming the file or key on a missing file, bad YAML, an
    unknown key or an invalid value.
    """
    if preset is not None and path is not None:
        raise InputError("give --preset or --config, not both", "--config")
    raw: dict[str, object] = {}
    source = "defaults"
    if preset is not None:
        if preset not in PRESETS:
            raise InputError(f"no preset {preset!r}; presets: {', '.join(PRESETS)}", "--preset")
        path, source = preset_path(preset), f"preset {preset}"
    elif path is not None:
        source = str(path)
    if path is not None:
        raw = _read_config_file(Path(path))
    return config_from_mapping(raw, overrides, source)


def _read_config_file(path: Path) -> dict[str, object]:
    """A config file's mapping of sections; `InputError` (one line) when the file is
    missing, unreadable, empty or not a YAML mapping."""
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"config file {path} does not exist", "--config") from None
    except IsADirectoryError:
        raise InputError(f"config file {path} is a folder", "--config") from None
    except UnicodeDecodeError:
        raise InputError(f"config file {path} is not a text file", "--config") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or "a syntax error").split())
        raise InputError(
            f"config file {path} is not valid YAML{at}: {problem}", "--config"
        ) from None
    if loaded is None:
        raise InputError(f"config file {path} is empty", "--config")
    if not isinstance(loaded, dict):
        raise InputError(f"config file {path} must hold a mapping of sections", "--config")
    return loaded


def config_from_mapping(
    raw: dict[str, object], overrides: dict[str, object] | None = None, source: str = "config"
) -> StudyConfig:
    """A study config from a mapping of sections (a YAML file's, or one stored on a
    study) with dotted overrides applied; `InputError` names the bad key."""
    import copy

    raw = copy.deepcopy(raw)
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise InputError(f"{dotted}: {key} is not a section", "--set")
            node = child
        node[leaf] = value
    try:
        return StudyConfig(**raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        where = "--set" if dotted_in(key, overrides) else source
        raise InputError(f"{key}: {message}", where) from None


def dotted_in(key: str, overrides: dict[str, object] | None) -> bool:
    """Whether a validation error's dotted location was set by an override."""
    return any(key == k or key.startswith(k + ".") for k in overrides or {})
