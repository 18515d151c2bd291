"""The study configuration, validated once at the CLI and passed to every stage.

Unknown keys are rejected (a typo in a YAML file must not silently fall back
to a default). `DataConfig` is the data section; later stages add theirs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError, model_validator

from finscale.config.base import FieldError, StrictSection, as_int_list, input_error, overlaps
from finscale.config.data import DataConfig, SyntheticConfig
from finscale.config.model import ModelConfig, TrainConfig
from finscale.config.reference import ControlReference, control_reference
from finscale.config.scale import EvaluationConfig, ScaleConfig
from finscale.config.search import SearchConfig
from finscale.config.tables import markdown_table
from finscale.errors import InputError

__all__ = [
    "PRESETS",
    "ControlReference",
    "DataConfig",
    "EvaluationConfig",
    "ModelConfig",
    "ScaleConfig",
    "SearchConfig",
    "StudyConfig",
    "SyntheticConfig",
    "TrainConfig",
    "as_int_list",
    "config_from_mapping",
    "control_reference",
    "input_error",
    "load_study_config",
    "markdown_table",
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

    @model_validator(mode="after")
    def _window_holds_a_patch(self) -> StudyConfig:
        context, patch = self.data.context_days, self.model.patch_len
        if context < patch:
            raise FieldError(
                ("data.context_days", "model.patch_len"),
                f"context {context} days is shorter than a patch ({patch})",
            )
        return self

    @model_validator(mode="after")
    def _tiers_buildable(self) -> StudyConfig:
        """Every tier of `scale.tiers` is one the data section could be given: the
        study's data section with that tier passes the data rules (a close-only source
        builds tier close alone), so a tier no study could build is refused here,
        naming `scale.tiers`, before anything is trained."""
        tiers = self.scale.tiers
        if not tiers:
            return self
        if self.data.tier not in tiers:
            raise FieldError(
                ("scale.tiers", "data.tier"),
                f"{','.join(tiers)} leaves out data.tier {self.data.tier}, the tier the "
                "primary size test runs on: add it, or set data.tier to one of them",
                fix=",".join((self.data.tier, *tiers)),
            )
        for tier in tiers:
            try:
                DataConfig(**{**self.data.model_dump(), "tier": tier})
            except ValidationError as exc:
                cause = (exc.errors()[0].get("ctx") or {}).get("error")
                what = str(cause) if cause is not None else exc.errors()[0]["msg"]
                raise FieldError("scale.tiers", f"tier {tier}: {what}") from None
        return self

    @property
    def tiers(self) -> tuple[str, ...]:
        """The study's tiers in order: `scale.tiers`, or the data section's one tier."""
        return self.scale.tiers or (self.data.tier,)


PRESETS = ("quick", "paper", "panel", "control", "universe")


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
        raise InputError("give a preset or a config file, not both", "config")
    raw: dict[str, object] = {}
    source = None
    if preset is not None:
        if preset not in PRESETS:
            raise InputError(f"no preset {preset!r}; presets: {', '.join(PRESETS)}", "preset")
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
        raise InputError(f"config file {path} does not exist", "config") from None
    except IsADirectoryError:
        raise InputError(f"config file {path} is a folder", "config") from None
    except UnicodeDecodeError:
        raise InputError(f"config file {path} is not a text file", "config") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or "a syntax error").split())
        raise InputError(f"config file {path} is not valid YAML{at}: {problem}", "config") from None
    if loaded is None:
        raise InputError(f"config file {path} is empty", "config")
    if not isinstance(loaded, dict):
        raise InputError(f"config file {path} must hold a mapping of sections", "config")
    return loaded


def config_from_mapping(
    raw: dict[str, object], overrides: dict[str, object] | None = None, source: str | None = None
) -> StudyConfig:
    """A study config from a mapping of sections (a YAML file's, or one stored on a
    study) with dotted overrides applied, validated as one whole.

    An invalid value is an `InputError` whose where is the dotted field when an
    override set it (or when there is no `source`), else `source`: the preset, the
    file or the study the mapping came from."""
    import copy

    raw = copy.deepcopy(raw)
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise InputError(f"{dotted}: {key} is not a section", dotted)
            node = child
        node[leaf] = value
    try:
        return StudyConfig(**raw)
    except ValidationError as exc:
        error = input_error(exc, StudyConfig, prefer=list(overrides or {}))
        if source is None or (error.where and overlaps(error.where, overrides or {})):
            raise error from None
        raise InputError(error.what, source) from None
