"""`finscale coord-check` as a user calls it."""

import json

import pytest


@pytest.mark.slow
def test_coord_check_writes_its_figure_and_json(tmp_path, finscale):
    out = tmp_path / "cc"
    args = ["coord-check", "--widths", "16,32", "--depths", "1,2", "--steps", "2", "--seeds", "1"]
    code, stdout, stderr = finscale(*args, "--out", out)
    assert code == 0, stderr
    document = json.loads((out / "coord_check_mup.json").read_text())
    assert set(document["sweeps"]) == {"width", "depth"}
    width = document["sweeps"]["width"]
    assert width["sizes"] == [16, 32] and len(width["activations"]["output"][0]) == 2
    assert (out / "coord_check_mup.png").read_bytes()[:4] == b"\x89PNG"
    assert "growth exponent" in stdout
    code, _, stderr = finscale("coord-check", "--parametrization", "ntk", "--out", out)
    assert code == 2 and stderr.startswith("error: unknown parametrization")
