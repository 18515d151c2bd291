"""The coordinate check: what muP and CompleteP promise about activation sizes, on the
bundled data, and the growth exponent it is judged by."""

import math

import pytest

from finscale.errors import InputError
from finscale.model import PatchTSTConfig
from finscale.train.coord_check import (
    LAYERS,
    check_sizes,
    coord_check,
    coord_check_document,
    growth_exponent,
    sweep_configs,
)


def test_growth_exponent_is_the_log_log_slope():
    assert growth_exponent([32, 64, 128], [1.0, 2.0, 4.0]) == pytest.approx(1.0)
    assert growth_exponent([2, 4, 8, 16], [3.0, 3.0, 3.0, 3.0]) == pytest.approx(0.0, abs=1e-12)
    assert growth_exponent([2, 4], [1.0, 0.25]) == pytest.approx(-2.0)
    assert math.isnan(growth_exponent([32, 64], [0.0, 0.0]))  # a zero readout at init


def test_sweeps_are_relative_to_their_smallest_shape():
    template = PatchTSTConfig(n_heads=4, parametrization="completep")
    widths = sweep_configs(template, "width", (32, 64, 128), fixed=2)
    assert [c.width_multiplier for c in widths] == [1.0, 2.0, 4.0]
    assert {c.n_layers for c in widths} == {2} and {c.depth_multiplier for c in widths} == {1.0}
    depths = sweep_configs(template, "depth", (2, 8), fixed=32)
    assert [c.residual_multiplier for c in depths] == [1.0, 0.25]
    with pytest.raises(InputError, match="not divisible"):
        check_sizes([30, 64], "widths", multiple_of=4)
    with pytest.raises(InputError, match="at least two"):
        check_sizes([64], "widths")


@pytest.mark.slow
def test_mup_keeps_every_layer_flat_in_width_and_standard_output_grows(sp500_windows):
    exponents = {}
    for parametrization in ("standard", "mup"):
        (width,) = coord_check(sp500_windows, parametrization, (32, 64, 128, 256), (), steps=5)
        exponents[parametrization] = width.growth_exponents()
    assert set(exponents["mup"]) == set(LAYERS)
    for layer, value in exponents["mup"].items():
        assert abs(value) < 0.15, (layer, value)
    assert exponents["standard"]["output"] > 0.5
    assert exponents["standard"]["feed_forward"] > 1.0


@pytest.mark.slow
def test_completep_keeps_the_residual_stream_flat_in_depth_where_mup_does_not(sp500_windows):
    residual = {}
    for parametrization in ("mup", "completep"):
        (depth,) = coord_check(sp500_windows, parametrization, (), (2, 4, 8, 16), steps=5)
        residual[parametrization] = depth.growth_exponents()["residual"]
        document = coord_check_document(parametrization, [depth], 5, 1e-2, 3, 64)
        assert document["sweeps"]["depth"]["fixed"] == 32
    assert abs(residual["completep"]) < 0.08
    assert residual["mup"] > residual["completep"] + 0.05
