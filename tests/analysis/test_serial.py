"""A result's stored form: the keys it has always had, a skipped computation leaving out
what it did not compute, a NaN the file holds as null kept, and a missing key named."""

import pytest

from finscale.analysis import PBOSummary, SharpeView

COMPUTED = {
    "value": 0.25,
    "blocks": 16,
    "trials": 12,
    "combinations": 12870,
    "logit_quartiles": [-0.4, 0.3, 1.1],
    "logit_histogram": {"edges": [-2.5, 0.0, 2.5], "counts": [3, 9]},
    # Every split's winner had the same in-sample loss: no slope (NaN, stored as null).
    "degradation_slope": None,
    "degradation_intercept": 0.69,
    "mean_in_sample_loss": 0.68,
    "mean_out_of_sample_loss": 0.7,
}


def test_a_skipped_computation_stores_only_what_it_knows_and_why():
    skipped = PBOSummary(value=None, blocks=16, trials=1, skipped="1 trial")
    assert skipped.to_dict() == {"value": None, "blocks": 16, "trials": 1, "skipped": "1 trial"}
    assert PBOSummary.from_dict(skipped.to_dict()) == skipped
    shown = SharpeView.not_shown("a panel")
    assert shown.to_dict() == {"value": None, "interval": None, "skipped": "a panel"}


def test_a_computed_result_keeps_a_null_figure_and_reads_back_as_stored():
    pbo = PBOSummary.from_dict(COMPUTED)
    assert pbo.degradation_slope is None and pbo.logit_histogram.counts == (3, 9)
    assert pbo.to_dict() == COMPUTED


def test_a_missing_key_is_named():
    with pytest.raises(KeyError, match="trials"):
        PBOSummary.from_dict({"value": 0.5, "blocks": 16})


def test_files_before_the_null_reference_and_the_psr_read_back():
    from finscale.analysis import DeflatedSharpe, NullReference, ProbabilisticSharpe

    # a PBO with its reference keeps it; one without (COMPUTED, an older file) has none
    ref = NullReference(q05=0.2, q50=0.5, q95=0.8, simulations=1000)
    stored = {**COMPUTED, "null_reference": ref.to_dict(), "null_quantile": 0.12}
    assert PBOSummary.from_dict(stored).null_reference == ref
    assert PBOSummary.from_dict(COMPUTED).null_quantile is None
    old_dsr = {"value": 0.4, "trials": 12, "benchmark_sharpe": 0.1, "sharpe": 0.05}
    assert DeflatedSharpe.from_dict(old_dsr).to_dict() == old_dsr
    unknown = ProbabilisticSharpe.not_known("no returns")
    assert unknown.to_dict() == {"value": None, "benchmark_sharpe": 0.0, "skipped": "no returns"}
    assert ProbabilisticSharpe.from_dict(unknown.to_dict()) == unknown
