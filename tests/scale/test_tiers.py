"""A study on several feature tiers (`scale.tiers`): the tiers' studies beside the
primary's, resumed like any other unit, and each tier compared with the next."""

import json

import pytest

from finscale.analysis import evaluation_seeds
from finscale.data import tier_features
from finscale.scale import SCALING_JSON, build_results, evaluation_path
from finscale.scale.scale_spec import read_scale_file
from tests.scale.tiny import TINY_WALK_FORWARD_SETS, run_pipeline, spec_of

TIERS = {**TINY_WALK_FORWARD_SETS, "scale.tiers": "a25,a50"}


@pytest.mark.slow
def test_adding_a_tier_to_a_finished_study_runs_only_the_new_tier(walk_copy):
    primary_files = {p: p.read_bytes() for p in (walk_copy / "evaluation").rglob("*.json")}
    spec = spec_of(walk_copy, **TIERS)
    reporter = run_pipeline(spec)
    primary = [u for u in reporter.units if not u[0].startswith("tier ")]
    assert primary and all(skipped for *_, skipped in primary)
    added = [u for u in reporter.units if u[0].startswith("tier a50 ")]
    assert not any(skipped for *_, skipped in added)
    evaluations = [u for u in added if u[0] == "tier a50 evaluation"]
    assert len(evaluations) == 3 * 3 * 2  # budgets x folds x seeds: full data only
    info = read_scale_file(walk_copy)
    names = [s["study_name"] for s in info["tier_studies"]]
    assert names == ["a50_4K_h1", "a50_16K_h1", "a50_32K_h1"]
    seeds = evaluation_seeds(spec.config)
    for name in names:
        assert all(evaluation_path(walk_copy, name, seeds[-1], fold).exists() for fold in range(3))

    # The primary tier's runs are those it had: its verdicts are the study's as before.
    assert {p: p.read_bytes() for p in primary_files} == primary_files
    results = build_results(walk_copy)
    tiers = results.tiers
    assert [(t.tier, t.n_features) for t in tiers.tiers] == [
        ("a25", len(tier_features("a25"))),
        ("a50", len(tier_features("a50"))),
    ]
    assert [c.budget for c in tiers.comparisons] == list(spec.budgets)
    for comparison in tiers.comparisons:
        assert (comparison.tier, comparison.next_tier) == ("a25", "a50")
        assert comparison.shared_test_days > 0 and comparison.log_loss.holm_verdict is not None
    assert results.family.members["tier against the next"] == 3
    assert results.family.size == sum(results.family.members.values())
    stored = json.loads((walk_copy / SCALING_JSON).read_text())
    assert {"shared_test_days", "change", "low", "high", "mde", "holm_verdict"} <= set(
        stored["tiers"]["comparisons"][0]
    )

    # Run again: every unit of both tiers is found and skipped.
    again = run_pipeline(spec)
    assert again.units and all(skipped for *_, skipped in again.units)


def test_a_tier_is_studied_at_the_budgets_its_grid_holds(tmp_path):
    from finscale.scale import check_data, new_scale_spec, write_scale_file

    spec = new_scale_spec(
        "quick", None, {"scale.tiers": "a25,a50,a100"}, tmp_path / "run", None, tmp_path / "store"
    )
    # a100's 100 features x 16-day patches alone outgrow 20K parameters.
    assert spec.tier_spec("a50").budgets == (20_000, 200_000, 2_000_000)
    assert spec.tier_spec("a100").budgets == (200_000, 2_000_000)
    (warning,) = check_data(spec)
    assert warning == (
        "tier a100 (100 features) has no architecture at 20K: it is compared at 200K, 2M only"
    )
    spec.run_dir.mkdir(parents=True)
    write_scale_file(spec)
    studies = read_scale_file(spec.run_dir)["tier_studies"]
    assert [s["study_name"] for s in studies] == [
        "a50_20K_h1",
        "a50_200K_h1",
        "a50_2M_h1",
        "a100_200K_h1",
        "a100_2M_h1",
    ]
