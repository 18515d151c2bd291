"""The search benchmark's bookkeeping: a smaller search is a larger one's first trials,
crowned and costed on those alone; epochs of a sampled search count as their share."""

import json
from pathlib import Path

import pytest
from benchmarks.hpo_vs_seed import (
    FINALIST_SEEDS,
    FINALISTS,
    base_method,
    config_key,
    crowned,
    epoch_fraction,
    finalists_of,
    first,
    incumbents,
    study_config,
)


def trial(number, value, epochs, state="COMPLETE", duplicate=False):
    return {
        "number": number,
        "state": state,
        "value": value,
        "duplicate": duplicate,
        "arch_index": number,
        "params": {},
        "epochs": epochs,
    }


RUN = {
    "seed": 0,
    "wall_s": 100.0,
    "trials": [
        trial(0, 0.52, 6),
        trial(1, 0.50, 7),
        trial(2, None, 2, state="PRUNED"),
        trial(3, 0.50, 0, duplicate=True),  # reuses #1's value: never the one crowned
        trial(4, 0.49, 5),
    ],
}


def test_a_smaller_search_is_crowned_and_costed_on_its_first_trials():
    best, epochs, extra_s = crowned(RUN, "finscale", retrainer=None, trials=4)
    assert best["number"] == 1 and epochs == 6 + 7 + 2 + 0 and extra_s == 0.0
    best, epochs, _ = crowned(RUN, "finscale", retrainer=None, trials=5)
    assert best["number"] == 4 and epochs == 20
    assert [t["number"] for t in first(RUN, 2)] == [0, 1]


def test_incumbents_mark_the_epochs_spent_when_the_best_changes():
    assert [(spent, t["number"]) for spent, t in incumbents(first(RUN, 5))] == [
        (6, 0),
        (13, 1),
        (20, 4),
    ]


@pytest.mark.parametrize(("method", "share"), [("original", 1.0), ("finscale-half-epochs", 0.5)])
def test_an_epoch_of_a_sampled_search_counts_as_its_share_of_the_training_samples(method, share):
    config = study_config(method, trials=4, sampler_seed=0, n_train=1000)
    assert epoch_fraction(config, n_train=1000) == share


def test_a_search_is_keyed_by_what_it_ran_not_by_its_methods_name():
    def key(method, trials=40, seed=0):
        return config_key(
            study_config(method, trials, seed, n_train=1000), "model", "train", "search"
        )

    # The trial count and the seed are the ledger key's own parts, not the config's.
    assert key("finscale", trials=24, seed=3) == key("finscale")
    assert key("finscale-patience1") != key("finscale") != key("original")
    assert key("finscale-patience1-warmup1") == key("finscale")  # what the preset ships
    assert key("finscale+finalists") == key("finscale")  # one search, crowned two ways


def test_a_method_crowned_by_finalists_names_its_search_and_its_reruns():
    assert (base_method("finscale+finalists2x1"), finalists_of("finscale+finalists2x1")) == (
        "finscale",
        (2, 1),
    )
    assert finalists_of("finscale+finalists") == (FINALISTS, FINALIST_SEEDS)
    assert (base_method("finscale-gp"), finalists_of("finscale-gp")) == ("finscale-gp", None)
    for bad in ("finscale+finalists2", "finscale+finalists0x1", "finscale+finalistsAxB"):
        with pytest.raises(ValueError, match=r"\+finalistsKxS"):
            finalists_of(bad)


@pytest.mark.parametrize("method", ["original", "finscale-earlier", "finscale-gp", "finscale"])
def test_the_committed_ledgers_hold_each_methods_searches_under_todays_key(method):
    """A preset change must not orphan the rows the README's table is printed from: the
    original and the levers pin the search settings they ran with."""
    ledgers = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    key = config_key(study_config(method, 40, 0, n_train=1000), "model", "train", "search")
    keys = {
        json.loads(line)["key"].split("/")[2]
        for ledger in ("hpo_vs_seed.jsonl", "hpo_vs_seed_2m.jsonl")
        for line in (ledgers / ledger).read_text().splitlines()
        if line.startswith('{"key": "search/')
    }
    assert key in keys
