"""Each section's own rules: ranges, lists, cross-field checks, errors naming the key."""

import pytest
from pydantic import ValidationError

from finscale.config import TrainConfig, config_from_mapping, load_study_config
from finscale.errors import InputError


def test_heartbeat_grace_must_outlast_the_interval():
    with pytest.raises(InputError, match="heartbeat_grace_seconds"):
        load_study_config(
            overrides={"search.heartbeat_seconds": 30, "search.heartbeat_grace_seconds": 30}
        )


def test_train_config_rejects_bad_values():
    with pytest.raises(ValidationError, match="256 is larger than effective_batch 128"):
        TrainConfig(micro_batch=256, effective_batch=128)
    with pytest.raises(ValidationError, match="positive or 'balanced'"):
        TrainConfig(pos_weight=-1.0)
    with pytest.raises(ValidationError, match="extra"):
        TrainConfig(learning_rat=1e-3)
    assert TrainConfig(memory_limit_bytes="1GB").memory_limit_bytes == 10**9


@pytest.mark.parametrize(
    "key,value", [("pbo_blocks", 15), ("folds", 1), ("search_fraction", 1.2), ("window", "x")]
)
def test_bad_evaluation_values_name_their_key(key, value):
    with pytest.raises(InputError, match=f"evaluation.{key}"):
        config_from_mapping({"evaluation": {key: value}})


@pytest.mark.parametrize(
    "value,words", [([0.5], "must include 1.0"), ([0.0, 1.0], "in \\(0, 1\\]"), ([1.5], "in")]
)
def test_bad_data_fractions_name_their_key(value, words):
    with pytest.raises(InputError, match=r"scale\.data_fractions") as info:
        config_from_mapping({"scale": {"data_fractions": value}})
    assert info.match(words)
    fractions = config_from_mapping({"scale": {"data_fractions": "1.0,0.25,0.5"}})
    assert fractions.scale.data_fractions == (0.25, 0.5, 1.0)
