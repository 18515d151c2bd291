"""One size check for a single series and a panel (a single series is a panel of one
symbol): each split's samples pooled over the targets, one error naming the key."""

import pytest

from finscale.config import DataConfig, EvaluationConfig
from finscale.data.plans import search_assignments
from finscale.errors import InputError
from tests.data.test_panel_splits import BUSINESS, one_series


def _tables(lengths, h=1):
    return {name: one_series(BUSINESS[-n:], h) for name, n in lengths.items()}


@pytest.mark.parametrize(
    "lengths", [{"A": 1500}, {"A": 1500, "B": 1500}], ids=["one series", "panel"]
)
@pytest.mark.parametrize(
    "evaluation,words,key",
    [
        (EvaluationConfig(scheme="walk_forward", folds=40), "fewer than folds x", "folds"),
        (
            EvaluationConfig(scheme="walk_forward", search_fraction=0.05),
            "search's share",
            "search_fraction",
        ),
        (
            EvaluationConfig(scheme="walk_forward", window="rolling", rolling_days=40),
            "training history is too short",
            "rolling_days",
        ),
    ],
)
def test_one_size_check_for_a_series_and_a_panel(lengths, evaluation, words, key):
    config = DataConfig(context_days=20)
    with pytest.raises(InputError, match=words) as info:
        search_assignments(_tables(lengths), config, evaluation)
    assert info.value.where == f"evaluation.{key}"


def test_a_panel_target_too_short_to_train_is_named():
    with pytest.raises(InputError, match="target B has data from") as info:
        search_assignments(
            _tables({"A": 1500, "B": 120}), DataConfig(context_days=20), EvaluationConfig()
        )
    assert info.value.where == "target B"
    with pytest.raises(InputError, match="too few rows") as info:
        search_assignments(
            _tables({"A": 150, "B": 150}), DataConfig(context_days=20), EvaluationConfig()
        )
    assert info.value.where == "data.targets" and "of 2 targets" in str(info.value)


def test_more_folds_than_dates_is_an_error_not_a_crash():
    # Test blocks that round to nothing at the calendar's end are skipped, then the
    # size check names the folds.
    tables = _tables({"A": 90, "B": 90})
    config = DataConfig(context_days=5, min_samples_per_split=1)
    evaluation = EvaluationConfig(scheme="walk_forward", folds=80, search_fraction=0.65)
    with pytest.raises(InputError, match="test fold") as info:
        search_assignments(tables, config, evaluation)
    assert info.value.where == "evaluation.folds"
