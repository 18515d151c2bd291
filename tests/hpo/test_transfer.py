"""Training values carried from one study to another: the pinned config, the record,
and the refusal to resume with other values."""

import pytest

from finscale.config import config_from_mapping
from finscale.errors import InputError
from finscale.hpo.space import ArchitectureSpace, within_tolerance
from finscale.hpo.transfer import (
    Transfer,
    check_same_transfer,
    transfer_of,
    transferred_config,
)
from finscale.model.grid import build_grid

VALUES = {"learning_rate": 2e-3, "weight_decay": 0.01, "warmup_steps": 12, "dropout": 0.15}


def config(**search):
    return config_from_mapping(
        {
            "model": {"parametrization": "mup", "d_models": [16, 32]},
            "search": {"trials": 16, **search},
        }
    )


def test_transferred_trials_default_to_a_quarter():
    assert config().search.transferred_trials == 4
    assert config(transfer_trials=6).search.transferred_trials == 6
    assert config(trials=2).search.transferred_trials == 1
    with pytest.raises(InputError, match=r"search\.transfer"):
        config(transfer="largest")


def test_a_transfer_pins_every_training_range_and_sets_the_trial_count():
    base = config(transfer="smallest")
    transfer = transfer_of("a25_20K_h1", 20_000, 7, {**VALUES, "d_model_rank": 2}, base)
    assert transfer.values == VALUES and transfer.parametrization == "mup"
    assert transfer.base_shape == (16, 2)  # the smallest of the default n_layers
    pinned = transferred_config(base, transfer)
    assert pinned.search.trials == 4
    assert pinned.search.learning_rate == (2e-3, 2e-3)
    assert pinned.search.warmup_steps == (12, 12)
    assert pinned.model == base.model and pinned.train == base.train
    # The space samples the architecture and nothing else: the middle is the value itself,
    # and any two trials of it are duplicates when their architecture is the same.
    space = ArchitectureSpace.from_grid(build_grid("20K", base.model), set())
    assert space.middle(pinned.search) == pytest.approx(VALUES)
    assert within_tolerance(VALUES, dict(VALUES), pinned.search, 0.0)
    assert Transfer.from_dict(transfer.to_dict()) == transfer


def test_a_winner_without_its_training_values_cannot_be_transferred():
    with pytest.raises(InputError, match="no dropout"):
        transfer_of("s", 1, 0, {k: v for k, v in VALUES.items() if k != "dropout"}, config())


def test_resuming_with_other_transferred_values_is_refused():
    transfer = transfer_of("s", 20_000, 7, VALUES, config())
    check_same_transfer(transfer.to_dict(), transfer, "big")
    check_same_transfer(None, None, "big")
    other = transfer_of("s", 20_000, 9, {**VALUES, "learning_rate": 1e-3}, config())
    with pytest.raises(InputError, match="trial 7 of s, this run would give it those of trial 9"):
        check_same_transfer(transfer.to_dict(), other, "big")
    with pytest.raises(InputError, match="no transferred values"):
        check_same_transfer(None, transfer, "big")
