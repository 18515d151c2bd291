"""The report's "Features" section: each tier's loss against budget on the shared
dates, each tier against the next in a table, and one sentence no stronger than
the Holm verdicts."""

import dataclasses

import pytest

from finscale.analysis import (
    IMPROVES,
    NO_DIFFERENCE,
    WORSENS,
    ScalingResults,
    corrected_family,
    tier_results,
)
from finscale.config import StudyConfig
from finscale.document import Heading, Image, Paragraph, Table, render_html, render_markdown
from finscale.report import build_blocks, write_report
from finscale.report.figures import fmt
from finscale.report.study_files import StudyFiles
from finscale.report.text import difference_text
from finscale.report.tiers import (
    TIERS_FIGURE,
    features_answer,
    tier_blocks,
    tiers_figure,
)
from tests.analysis.test_tiers import A25, A50, DATES, SCALE, _runs
from tests.report.test_controls import results_of

# a100 starts later still: its history is a quarter of a25's.
A100 = _runs([(300, 350), (350, 400)], skill=0.3, seed0=2)
BUDGETS = (4000, 40000)
HORIZONS = (1, 5)


@pytest.fixture(scope="module")
def tiers():
    """Three tiers at two budgets and two horizons (the same runs at each), corrected
    as the study's family."""
    runs = {"a25": A25, "a50": A50, "a100": A100}
    raw = tier_results(
        {t: {(b, h): r for b in BUDGETS for h in HORIZONS} for t, r in runs.items()},
        {"a25": 25, "a50": 50, "a100": 100},
        SCALE,
        0.5,
    )
    _, family, corrected = corrected_family({}, None, 0.95, raw)
    return corrected, family


def _study(tiers=None, family=None) -> ScalingResults:
    """The two-budget test study, its config a real one, on these tiers."""
    config = StudyConfig().model_dump(mode="json")
    return dataclasses.replace(results_of(), config=config, tiers=tiers, family=family)


def _files(results):
    return {
        (h, r.budget): StudyFiles({}, [], {})
        for h, x in results.horizons.items()
        for r in x.budgets
    }


def _with_calls(tiers, calls):
    """`tiers` with the comparisons' verdicts replaced, in order: (raw, holm) each."""
    comparisons = tuple(
        dataclasses.replace(
            c, log_loss=dataclasses.replace(c.log_loss, verdict=raw, holm_verdict=holm)
        )
        for c, (raw, holm) in zip(tiers.comparisons, calls, strict=True)
    )
    return dataclasses.replace(tiers, comparisons=comparisons)


def test_a_study_of_one_tier_has_no_features_section():
    one = _study()
    assert tier_blocks(one) == []
    markdown = render_markdown(build_blocks(one, _files(one)))
    assert "Features" not in markdown and "feature tier `a25`;" in markdown


def test_the_section_draws_every_tier_on_the_shared_days_and_tables_each_comparison(tiers):
    corrected, family = tiers
    blocks = tier_blocks(_study(corrected, family))
    assert blocks[0] == Heading("Features")
    (image,) = [b for b in blocks if isinstance(b, Image)]
    assert image.figure_id == TIERS_FIGURE and image.png.startswith(b"\x89PNG")
    # Every line on the 100 days a100 has, which all tiers share.
    assert f"h=1: 100 test days, {DATES[300]} to {DATES[399]}" in image.caption
    comparisons, info = (b for b in blocks if isinstance(b, Table))
    assert len(comparisons.rows) == len(BUDGETS) * len(HORIZONS) * 2
    pairs = {row[2] for row in comparisons.rows}
    assert pairs == {"a25 -> a50", "a50 -> a100"}
    for row, c in zip(comparisons.rows, corrected.comparisons, strict=True):
        assert row[3] == f"{c.shared_test_days:,}"
        assert row[4] == f"{c.first_shared_date} to {c.last_shared_date}"
        assert row[5] == difference_text(c.log_loss) and row[6] == fmt(c.log_loss.mde)
        assert (row[7], row[8]) == (c.log_loss.verdict, f"**{c.log_loss.holm_verdict}**")
    # a25 against a50 on a50's 300 days, a50 against a100 on a100's 100.
    assert {(row[2], row[3]) for row in comparisons.rows} == {
        ("a25 -> a50", "300"),
        ("a50 -> a100", "100"),
    }
    assert [row[:2] for row in info.rows] == [("`a25`", "25"), ("`a50`", "50"), ("`a100`", "100")]
    assert info.rows[2][4] == f"{DATES[300]} to {DATES[399]}"
    family_line = next(b.text for b in blocks if "primary hypothesis" in getattr(b, "text", ""))
    assert family.members["tier against the next"] == 8
    assert "The 8 tier comparisons join" in family_line and "grows to 8" in family_line


def test_the_figure_has_a_panel_per_horizon_and_a_line_per_tier(tiers):
    corrected, _ = tiers
    losses = [x for x in corrected.losses if x.horizon_days == 1]
    panel = ("h=1", BUDGETS, {t: [x.log_loss[t] for x in losses] for t in ("a25", "a50", "a100")})
    fig = tiers_figure([panel, panel])
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4K", "40K"]
    assert ax.get_legend_handles_labels()[1] == ["a25", "a50", "a100"]
    assert len(ax.collections) == 3  # an interval band per tier


def test_the_answer_is_no_stronger_than_the_holm_verdicts(tiers):
    corrected, _ = tiers
    n = len(corrected.comparisons)
    # Raw calls the correction took back: no tier is said to predict better.
    none = _with_calls(corrected, [(IMPROVES, NO_DIFFERENCE)] * 2 + [(NO_DIFFERENCE,) * 2] * 6)
    text = features_answer(none)
    smallest = fmt(min(c.log_loss.mde for c in corrected.comparisons))
    assert text.startswith("**Did more features help?** **No detectable difference** between")
    assert "at any budget or horizon after Holm correction" in text
    assert f"the smallest change they could detect with 80% power was {smallest} nats" in text
    assert "2 of them exclude zero on their own interval" in text
    assert "better" not in text

    # One call survives: named with its tiers and budget, the rest said to be no difference.
    one = _with_calls(corrected, [(IMPROVES, IMPROVES)] + [(NO_DIFFERENCE,) * 2] * (n - 1))
    first = corrected.comparisons[0]
    text = features_answer(one)
    assert text.startswith(
        "**Did more features help?** In part: `a50` (50 features) predicts **better** "
        f"than `a25` (25 features) at h={first.horizon_days}: 4K (Holm-corrected); the other "
        f"{n - 1} comparisons show **no detectable difference**"
    )
    worse = _with_calls(corrected, [(WORSENS, WORSENS)] + [(NO_DIFFERENCE,) * 2] * (n - 1))
    assert features_answer(worse).startswith(
        "**Did more features help?** No: `a50` (50 features) predicts **worse** than"
    )
    mixed = _with_calls(
        corrected, [(IMPROVES, IMPROVES), (WORSENS, WORSENS)] + [(NO_DIFFERENCE,) * 2] * (n - 2)
    )
    text = features_answer(mixed)
    assert text.startswith("**Did more features help?** Mixed: `a50` (50 features) predicts ")
    assert "; `a100` (100 features) predicts **worse** than `a50` (50 features) at h=1: 4K" in text
    every = _with_calls(corrected, [(IMPROVES, IMPROVES)] * n)
    text = features_answer(every)
    assert text.startswith("**Did more features help?** Yes:") and "no detectable" not in text
    assert "at h=1: 4K, 40K; h=5: 4K, 40K" in text


def test_the_report_places_the_section_and_says_the_tiers_where_one_tiers_rows_stand(tiers):
    corrected, family = tiers
    study = _study(corrected, family)
    blocks = build_blocks(study, _files(study))
    markdown = render_markdown(blocks)
    assert markdown.index("## Power") < markdown.index("## Features")
    assert markdown.index("## Features") < markdown.index("## Horizon h=1")
    answer = features_answer(corrected)
    short = markdown[markdown.index("## Short answer") : markdown.index("## Data and splits")]
    assert answer in short and "Everything below in this section is tier `a25`'s" in short
    data = markdown[markdown.index("## Data and splits") : markdown.index("## Scaling table")]
    assert "(source bundled, feature tiers `a25`, `a50`, `a100`) from" in data
    assert "feature tiers `a25`, `a50`, `a100` (model size on `a25`" in markdown
    assert "The split statistics below are tier `a25`'s" in data
    assert any(isinstance(b, Paragraph) and b.text == answer for b in tier_blocks(study))
    assert f'id="{TIERS_FIGURE}"' in render_html(blocks, "t")


def test_a_rewritten_report_of_one_tier_drops_the_tier_figure(tiers, tmp_path):
    corrected, family = tiers
    study = _study(corrected, family)
    write_report(tmp_path, study, _files(study))
    figure = tmp_path / "figures" / f"{TIERS_FIGURE}.png"
    assert figure.exists()
    one = _study()
    write_report(tmp_path, one, _files(one))
    assert not figure.exists()
