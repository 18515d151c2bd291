import dataclasses

import pytest

from finscale.config import DataConfig, TrainConfig
from finscale.data import build_dataset
from finscale.model import PatchTSTConfig
from finscale.train.device import Precision

FP32 = Precision("fp32", "test")


def fast(**changes) -> TrainConfig:
    """fp32 on CPU so that runs compare exactly; a short schedule."""
    values = {"device": "cpu", "dtype": "fp32", "max_epochs": 2, "warmup_steps": 5, "seed": 0}
    return TrainConfig(**(values | changes))


@pytest.fixture(scope="session")
def sp500_windows():
    """The bundled S&P 500 at tier a25, h=1: about 3,400 train and 740 val samples."""
    return build_dataset(DataConfig()).windows()


@pytest.fixture
def windows(sp500_windows):
    """A copy whose feature tensor a test may change."""
    return dataclasses.replace(sp500_windows, features=sp500_windows.features.clone())


@pytest.fixture
def tiny():
    """A model small enough for a few epochs per test; no dropout, so runs can be compared."""
    return PatchTSTConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, dropout=0.0)
