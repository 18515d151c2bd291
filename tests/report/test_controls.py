"""What the report and the CLI's summary say of the study's controls and sensitivity:
a null control first, a planted control near the top with each budget beside the Bayes
loss, a rising loss called overfitting, and what the study could have seen against
the control preset's shipped reference slope."""

import dataclasses
import json

import pytest

from finscale.analysis import (
    RISES,
    BayesCheck,
    Estimate,
    ScalingResults,
    SizeTrend,
)
from finscale.config import control_reference
from finscale.document import Alert, Table, render_markdown
from finscale.report import scaling_table_markdown
from finscale.report.controls import (
    e_against_bayes_text,
    planted_blocks,
    reference_text,
    sensitivity_blocks,
)
from finscale.report.text import trend_text
from tests.analysis.test_bayes import OLD_RESULTS, row

REFERENCE_NAME = "The control preset's measured slope, a shipped reference figure"


def trend(verdict="no detectable trend", slope=0.001, interval=(-0.004, 0.006), mds=0.008):
    return SizeTrend(
        horizon_days=1,
        slope_per_decade=slope,
        interval=interval,
        spread=mds / 2.8,
        min_detectable_slope=mds,
        verdict=verdict,
        statement="",
        level=0.95,
        n_budgets=3,
        p_value=0.5,
    )


def results_of(null_control="none", bayes=None, check=None, primary=None, samples=(0.5, 20.0)):
    """A two-budget study (4K, 40K) at h=1, as scaling.json would read it back."""
    rows = []
    for budget, spp in zip((4000, 40000), samples, strict=True):
        r = row(budget, 0.66, seed_high=0.67, boot_high=0.70)
        metrics = {"log_loss": r.metrics["log_loss"], "roc_auc": r.metrics["log_loss"]}
        rows.append(
            dataclasses.replace(
                r,
                budget_label=f"{budget // 1000}K",
                metrics=metrics,
                samples_per_param=spp,
                data_limited=spp < 1,
            )
        )
    base = ScalingResults.from_dict(
        {**OLD_RESULTS, "config": {"scale": {"min_samples_per_param": 1.0}}}
    )
    h = dataclasses.replace(
        base.horizons["1"], budgets=tuple(rows), bayes_log_loss=bayes, bayes_check=check
    )
    return dataclasses.replace(base, horizons={"1": h}, null_control=null_control, primary=primary)


@pytest.mark.parametrize("kind", ["shuffle", "random_walk"])
def test_a_null_control_says_so_first_in_the_cli_summary(kind):
    first = scaling_table_markdown(results_of(kind)).splitlines()[0]
    assert first.startswith(f"**Null control ({kind})**:")
    assert "nothing here can be learned; every call below should be null" in first


def test_a_study_on_real_labels_says_no_control():
    summary = scaling_table_markdown(results_of())
    assert "Null control" not in summary
    assert summary.startswith("**Primary test**")
    assert planted_blocks(results_of()) == []


def test_a_bigger_model_detectably_worse_is_called_overfitting_never_scaling():
    rising = trend(RISES, slope=0.0082, interval=(0.0029, 0.0139))
    text = trend_text(rising)
    assert text.startswith(f"**{RISES}** (slope +0.0082 [+0.0029, +0.0139]")
    assert text.endswith(
        "the bigger models are detectably worse: overfitting with size, not scaling"
    )
    summary = scaling_table_markdown(results_of(primary=rising))
    assert "overfitting with size, not scaling" in summary.splitlines()[0]
    assert "overfitting" not in trend_text(trend("loss falls with size", -0.01, (-0.02, -0.001)))


def test_a_planted_study_shows_each_budget_beside_the_bayes_loss():
    check = BayesCheck(
        below_bayes=(4000,), E=Estimate(value=0.61, low=0.58, high=0.64), E_covers_bayes=True
    )
    results = results_of(bayes=0.6, check=check)
    blocks = planted_blocks(results)
    markdown = render_markdown(blocks)
    assert markdown.startswith("## Planted-scaling control")
    assert "labels are drawn from known probabilities" in markdown
    (table,) = [b for b in blocks if isinstance(b, Table)]
    assert "Bayes log loss" in table.header
    # Each budget: its test loss, the Bayes loss and how far above it (0.66 - 0.60).
    assert [(r[0], r[4], r[5]) for r in table.rows] == [
        ("4K", "0.6000", "+0.0600"),
        ("40K", "0.6000", "+0.0600"),
    ]
    assert (
        "The law's E (its loss at unlimited size) 0.6100 [0.5800, 0.6400] against the Bayes log "
        "loss 0.6000: the Bayes loss lies inside E's interval"
    ) in markdown
    (alert,) = [b for b in blocks if isinstance(b, Alert)]
    assert "budget 4K scores below the Bayes log loss" in alert.text and "leak" in alert.text


def test_the_laws_e_is_worded_against_the_bayes_loss():
    h = results_of(bayes=0.6).horizons["1"]
    assert e_against_bayes_text(h).startswith("No law fitted (needs 3 parameter counts)")

    def worded(low, high):
        E = Estimate(value=(low + high) / 2, low=low, high=high)
        check = BayesCheck(E=E, E_covers_bayes=low <= 0.6 <= high)
        return e_against_bayes_text(dataclasses.replace(h, bayes_check=check))

    assert "E's interval lies above the Bayes loss" in worded(0.62, 0.65)
    assert "E's interval lies below the Bayes loss" in worded(0.50, 0.55)
    assert "the Bayes loss lies inside E's interval" in worded(0.55, 0.65)


def test_what_the_study_could_see_sets_its_detectable_slope_beside_the_reference(tmp_path):
    results = results_of(primary=trend(mds=0.008))
    markdown = render_markdown(sensitivity_blocks(results))
    assert markdown.startswith("## What this study could see")
    assert "steeper than 0.0080 nats per decade with 80% power" in markdown
    shipped = control_reference()
    assert shipped is not None and shipped.preset == "control"
    assert f"{REFERENCE_NAME}: " in markdown
    low, high = shipped.interval
    assert f"{shipped.slope_per_decade:+.4f} [{low:+.4f}, {high:+.4f}]" in markdown
    assert f"`{shipped.command}`" in markdown
    # 4K has 0.5 training samples per parameter, under the threshold of 1.
    assert "**Data-limited**: 1 of 2 budget runs have fewer than 1 training samples" in markdown
    assert "0.5 training samples per parameter, at 4K (h=1)" in markdown

    missing = render_markdown(sensitivity_blocks(results, tmp_path / "none.json"))
    assert f"{REFERENCE_NAME}: no reference" in missing


def test_the_reference_says_whether_an_effect_that_size_would_have_been_seen(tmp_path):
    path = tmp_path / "reference.json"
    path.write_text(
        json.dumps(
            {
                "preset": "control",
                "slope_per_decade": -0.02,
                "interval": [-0.03, -0.01],
                "command": "finscale scale --preset control",
                "measured": "2025-01-01",
            }
        )
    )
    reference = control_reference(path)
    assert reference is not None and reference.interval == (-0.03, -0.01)
    assert "would have seen it" in reference_text(reference, 0.01)
    missed = reference_text(reference, 0.05)
    assert "2.5 times smaller" in missed and "could have missed it" in missed
    assert "measured: 2025-01-01" in missed
    path.write_text('{"preset": "control", "slope_per_decade": "steep"}')
    assert control_reference(path) is None
    assert control_reference(tmp_path / "absent.json") is None


def test_a_study_without_a_data_limited_budget_says_so():
    markdown = render_markdown(sensitivity_blocks(results_of(samples=(2.0, 30.0))))
    assert "Not data-limited: every budget run has at least 1 training samples per parameter" in (
        markdown
    )
    assert "No primary test" in markdown
