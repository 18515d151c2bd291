"""The data, train and evaluation fields of a universe study: every symbol as a target,
cross-sectional labels, sampled epochs and the long-short illustration's quantile."""

import pytest

from finscale.config import DataConfig, EvaluationConfig, TrainConfig, load_study_config
from finscale.errors import InputError


def test_target_all_is_every_symbol_of_the_source():
    for config in (
        DataConfig(target="all"),
        DataConfig(targets="ALL"),
        DataConfig(targets=["all"]),
    ):
        assert config.all_targets and config.is_panel
    assert not DataConfig(targets="SP500,NASDAQ").all_targets


def test_all_stands_alone():
    with pytest.raises(ValueError, match="stands alone"):
        DataConfig(targets="all,SP500")


def test_threshold_defaults_by_label_mode():
    assert DataConfig().label_threshold == 0.01
    relative = DataConfig(targets="SP500,NASDAQ", label_mode="relative")
    assert relative.threshold is None and relative.label_threshold == 0.0
    assert (
        DataConfig(targets="A,B", label_mode="relative", threshold=0.002).label_threshold == 0.002
    )


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"label_mode": "relative"}, "data.label_mode", "two or more targets"),
        (
            {"targets": "A,B", "label_mode": "relative", "threshold_mode": "volatility"},
            "data.threshold_mode",
            "absolute labels",
        ),
        ({"threshold": 0}, "data.threshold", "relative"),
        ({"min_history_days": -1}, "data.min_history_days", "greater than or equal"),
    ],
)
def test_label_mode_rules_name_their_field(fields, field, message):
    with pytest.raises(InputError, match=message) as caught:
        load_study_config(overrides={f"data.{k}": v for k, v in fields.items()})
    assert caught.value.where == field


def test_samples_per_epoch_and_long_short_quantile_bounds():
    assert TrainConfig().samples_per_epoch is None
    assert TrainConfig(samples_per_epoch=5000).samples_per_epoch == 5000
    assert EvaluationConfig().long_short_quantile == 0.2
    for bad in (0, 0.6):
        with pytest.raises(ValueError):
            EvaluationConfig(long_short_quantile=bad)
    with pytest.raises(ValueError):
        TrainConfig(samples_per_epoch=0)


def test_the_stocks_source_defaults_to_every_stock_on_tier_close():
    config = DataConfig(source="stocks")
    assert config.all_targets and config.tier == "close"
    assert DataConfig(source="stocks", target="AAPL").target_symbols == ("AAPL",)
    with pytest.raises(ValueError, match="close prices only"):
        DataConfig(source="stocks", tier="a25")
