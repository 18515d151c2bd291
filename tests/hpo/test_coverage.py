import json

from finscale.hpo.coverage import COUNT_KEYS, coverage, render_coverage

VALUES = {"d_model": (16, 24, 32), "n_layers": (1, 2), "n_heads": (2, 4, 8)}


def record(number, state, arch, duplicate_of=None):
    architecture = (
        None
        if arch is None
        else {"d_model": arch[0], "n_layers": arch[1], "n_heads": arch[2], "param_count": 1000}
    )
    return {
        "number": number,
        "state": state,
        "architecture": architecture,
        "duplicate_of": duplicate_of,
    }


RECORDS = [
    record(0, "COMPLETE", (16, 1, 2)),
    record(1, "COMPLETE", (16, 2, 4), duplicate_of=0),
    record(2, "PRUNED", (24, 1, 2)),
    record(3, "FAIL", (24, 2, 2)),
    record(4, "FAIL", None),  # failed before an architecture was chosen
    record(5, "COMPLETE", (16, 1, 4)),
]


def cell(trials=0, complete=0, pruned=0, failed=0, duplicates=0):
    return {
        "trials": trials,
        "complete": complete,
        "pruned": pruned,
        "failed": failed,
        "duplicates": duplicates,
    }


def test_counts_every_value_by_state_including_never_tried_ones():
    cov = coverage(RECORDS, VALUES)

    assert cov["d_model"] == {
        "16": cell(trials=3, complete=3, duplicates=1),
        "24": cell(trials=2, pruned=1, failed=1),
        "32": cell(),
    }
    assert cov["n_layers"] == {
        "1": cell(trials=3, complete=2, pruned=1),
        "2": cell(trials=2, complete=1, failed=1, duplicates=1),
    }
    assert cov["n_heads"] == {
        "2": cell(trials=3, complete=1, pruned=1, failed=1),
        "4": cell(trials=2, complete=2, duplicates=1),
        "8": cell(),
    }


def test_each_dimension_accounts_for_every_trial_with_an_architecture():
    cov = coverage(RECORDS, VALUES)
    with_architecture = [r for r in RECORDS if r["architecture"] is not None]

    for cells in cov.values():
        assert sum(c["trials"] for c in cells.values()) == len(with_architecture)
        assert sum(c["complete"] for c in cells.values()) == 3
        assert sum(c["duplicates"] for c in cells.values()) == 1
        for c in cells.values():
            assert c["trials"] == c["complete"] + c["pruned"] + c["failed"]
            assert c["duplicates"] <= c["complete"]


def test_a_pruned_trial_with_duplicate_of_is_not_a_duplicate():
    records = [record(0, "PRUNED", (16, 1, 2), duplicate_of=7)]

    assert coverage(records, VALUES)["d_model"]["16"] == cell(trials=1, pruned=1)


def test_values_outside_the_declared_ones_are_counted_in_numeric_order():
    records = [record(0, "COMPLETE", (24, 1, 2))]

    cov = coverage(records, {"d_model": [16, 128]})

    assert list(cov["d_model"]) == ["16", "24", "128"]
    assert cov["d_model"]["24"]["complete"] == 1
    # A dimension absent from `values` still lists what the records hold.
    assert list(cov["n_layers"]) == ["1"]


def test_no_records_gives_all_zero_cells():
    cov = coverage([], VALUES)

    assert {name: list(cells) for name, cells in cov.items()} == {
        name: [str(v) for v in values] for name, values in VALUES.items()
    }
    assert all(c == cell() for cells in cov.values() for c in cells.values())


def test_result_survives_a_json_round_trip():
    cov = coverage(RECORDS, VALUES)

    assert json.loads(json.dumps(cov, allow_nan=False)) == cov


def test_render_has_a_table_per_dimension_and_flags_never_tried_values():
    text = render_coverage(coverage(RECORDS, VALUES))

    for name in VALUES:
        assert f"### {name}" in text
        assert f"| {name} | " + " | ".join(COUNT_KEYS) + " |" in text
    assert "| 16 | 3 | 3 | 0 | 0 | 1 |" in text
    assert "| 24 | 2 | 0 | 1 | 1 | 0 |" in text
    assert "| 32 (never tried) | 0 | 0 | 0 | 0 | 0 |" in text
    assert "| 8 (never tried) |" in text


def test_render_of_json_sorted_keys_keeps_numeric_and_dimension_order():
    cov = coverage([record(0, "COMPLETE", (128, 1, 2))], {"d_model": (16, 24, 128)})
    reloaded = json.loads(json.dumps(cov, sort_keys=True))

    text = render_coverage(reloaded)

    assert text == render_coverage(cov)
    assert text.index("| 16 ") < text.index("| 24 ") < text.index("| 128 ")
    assert text.index("### d_model") < text.index("### n_layers") < text.index("### n_heads")
