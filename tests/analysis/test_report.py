"""The report of a scaling study: report.md, a self-contained report.html and its figures."""

from __future__ import annotations

import base64
import copy
import re
import shutil
import struct
import subprocess
from collections import Counter
from html.parser import HTMLParser

import numpy as np
import pytest

from finscale.analysis.figures import architecture_grid, fmt, hpo_history_figure, scaling_figure
from finscale.analysis.report import (
    Alert,
    Paragraph,
    build_blocks,
    fmt_interval,
    render_html,
    render_markdown,
    write_report,
)
from finscale.analysis.results import build_results
from finscale.cli import main
from finscale.errors import InputError
from finscale.units import format_budget

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Every horizon has these figures; cross_budget_h{h} too when the matrix was computed.
FIGURE_KINDS = ("scaling", "baselines", "reliability", "hpo", "architecture", "learning_curves")


@pytest.fixture(scope="module")
def report_run(tiny_scale_run, tmp_path_factory):
    """A copy of the tiny study (other tests share the original) with its report written."""
    run_dir = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(tiny_scale_run, run_dir)
    results = build_results(run_dir)
    paths = write_report(run_dir, results)
    return run_dir, results, paths


def expected_figure_ids(results) -> set[str]:
    ids = set()
    for horizon, h in results["horizons"].items():
        ids |= {f"{kind}_h{horizon}" for kind in FIGURE_KINDS}
        if h["cross_budget"] is not None:
            ids.add(f"cross_budget_h{horizon}")
    return ids


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which must come first after the signature."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


class PageParser(HTMLParser):
    """What the tests need of report.html: images, ids, external references, text."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []
        self.ids: Counter[str] = Counter()
        self.references: list[str] = []  # every src/href that is not a data URI
        self.tags: Counter[str] = Counter()
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags[tag] += 1
        if attributes.get("id"):
            self.ids[attributes["id"]] += 1
        if tag == "img":
            self.images.append(attributes)
        for name in ("src", "href"):
            value = attributes.get(name)
            if value is not None and not value.startswith("data:"):
                self.references.append(value)

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    parser.close()
    return parser


def signed(d) -> str:
    return f"{d['difference']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"


def test_html_is_self_contained_with_every_figure_and_verdict(report_run):
    run_dir, results, _ = report_run
    page = (run_dir / "report.html").read_text()
    parsed = parse(page)

    figures = expected_figure_ids(results)
    assert {img["data-figure"] for img in parsed.images} == figures
    for figure_id in figures:
        assert parsed.ids[figure_id] == 1, figure_id
    for img in parsed.images:
        assert img.get("alt"), img["id"]
        assert img["id"] == img["data-figure"]
        src = img["src"]
        assert src.startswith("data:image/png;base64,"), img["id"]
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        width, height = png_size(data)
        assert 300 <= width <= 4000 and 200 <= height <= 4000, (img["id"], width, height)

    # Nothing outside the file: no links, scripts or stylesheets, no http anywhere once the
    # data URIs (whose base64 may spell anything) are cut out.
    assert parsed.references == []
    assert not parsed.tags["script"] and not parsed.tags["link"] and not parsed.tags["a"]
    assert "http" not in re.sub(r'src="data:[^"]*"', "", page)
    assert 'src="figures/' not in page

    text = "".join(parsed.text)
    for h in results["horizons"].values():
        for step in h["steps"]:
            budgets = f"{format_budget(step['from_budget'])} -> {format_budget(step['to_budget'])}"
            assert budgets in text
            assert f"{step['verdict']} (test log loss change {signed(step['log_loss'])})" in text
        for row in h["budgets"]:
            for comparison in row["vs_baselines"].values():
                verdict = "beats" if comparison["beats"] else "does not beat"
                assert verdict in text
        alpha = h["fit"]["alpha"]
        assert (
            f"fitted alpha {alpha['value']:.4f} [{alpha['low']:.4f}, {alpha['high']:.4f}]" in text
        )
    # The data-limited warnings hold "<", so this also checks the escaping round trip.
    for warning in results["warnings"]:
        assert warning in text


def test_markdown_references_every_written_figure(report_run):
    run_dir, results, paths = report_run
    markdown = (run_dir / "report.md").read_text()
    referenced = re.findall(r"!\[[^\]]+\]\((figures/[^)]+\.png)\)", markdown)
    assert len(referenced) == len(set(referenced))
    pngs = {p.relative_to(run_dir).as_posix() for p in paths if p.suffix == ".png"}
    assert set(referenced) == pngs == {f"figures/{i}.png" for i in expected_figure_ids(results)}
    for name in referenced:
        assert (run_dir / name).read_bytes().startswith(PNG_SIGNATURE)
    assert {p.name for p in paths if p.suffix != ".png"} == {"report.md", "report.html"}
    # The scaling table the CLI prints is the report's own table.
    assert "| budget | architecture | params | samples/param |" in markdown
    for warning in results["warnings"]:
        assert f"> **Warning:** {warning}" in markdown


def test_rebuilding_gives_the_same_report_and_drops_stale_figures(report_run):
    run_dir, _, _ = report_run
    before = {name: (run_dir / name).read_bytes() for name in ("report.md", "report.html")}
    stale, foreign = run_dir / "figures" / "cross_budget_h99.png", run_dir / "figures" / "mine.png"
    stale.write_bytes(PNG_SIGNATURE)
    foreign.write_bytes(PNG_SIGNATURE)
    write_report(run_dir, build_results(run_dir))
    assert not stale.exists() and foreign.exists()  # only figures of the report's own naming
    foreign.unlink()
    assert (run_dir / "report.md").read_bytes() == before["report.md"]
    # The PNGs carry no timestamp or version tag, so the whole page repeats too.
    assert (run_dir / "report.html").read_bytes() == before["report.html"]


def test_report_of_a_directory_without_results_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "report.md").exists()
    with pytest.raises(InputError, match="no scaling results"):
        write_report(tmp_path, {"horizons": {}})


def test_a_skipped_fit_is_reported_and_drawn_without_a_law(report_run):
    run_dir, results, _ = report_run
    skipped = copy.deepcopy(results)
    for h in skipped["horizons"].values():
        h["fit"] = {"skipped": "needs 3 parameter counts", "points": h["fit"]["points"]}
    markdown = render_markdown(build_blocks(run_dir, skipped))
    assert "Scaling-law fit skipped: needs 3 parameter counts." in markdown
    assert "fitted alpha" not in markdown

    h = next(iter(skipped["horizons"].values()))
    fig = scaling_figure(
        (h["fit"]["points"]["n_params"], h["fit"]["points"]["test_log_loss"]),
        [(r["budget_label"], r["param_count"], r["metrics"]["log_loss"]) for r in h["budgets"]],
        h["fit"],
        {"base_rate": 0.4},
        "h=1",
    )
    (ax,) = fig.axes
    assert "fit skipped" in ax.get_title()
    labels = ax.get_legend_handles_labels()[1]
    assert "each seed" in labels and "base_rate (0.4000)" in labels
    assert not any(label.startswith("E + A") for label in labels)


def trial(number, state, value=None, last=None, duplicate_of=None, d_model=8, n_layers=1):
    return {
        "number": number,
        "state": state,
        "value": value,
        "last_value": last if last is not None else value,
        "duplicate_of": duplicate_of,
        "architecture": {"d_model": d_model, "n_layers": n_layers},
    }


TRIALS = [
    trial(0, "COMPLETE", 0.70, d_model=4),
    trial(1, "PRUNED", last=0.72, d_model=8),
    trial(2, "COMPLETE", 0.65, d_model=8, n_layers=2),
    trial(3, "COMPLETE", 0.65, duplicate_of=2, d_model=8, n_layers=2),
    trial(4, "FAIL"),
    trial(5, "COMPLETE", 0.69, d_model=4),
]


def test_hpo_history_marks_pruned_duplicate_failed_and_best_so_far():
    fig = hpo_history_figure([("4K", TRIALS, 2)])
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    for label in ("complete", "pruned (last value)", "duplicate (value reused)", "winner"):
        assert label in labels
    assert "1 failed" in ax.get_title()
    (best_line,) = [line for line in ax.get_lines() if line.get_label() == "best so far"]
    assert list(best_line.get_ydata()) == [0.70, 0.65, 0.65, 0.65]


def test_architecture_grid_keeps_the_best_complete_trial_per_cell():
    grid = architecture_grid(TRIALS, d_models=[4, 8, 16], n_layers=[1, 2])
    expected = np.array([[0.69, np.nan, np.nan], [np.nan, 0.65, np.nan]])
    np.testing.assert_array_equal(grid, expected)  # the pruned d8/L1 trial is not a result


def test_numbers_and_text_are_formatted_and_escaped_once():
    assert fmt(None) == fmt(float("nan")) == "n/a"
    assert fmt_interval(0.31264, 0.308, 0.31712) == "0.3126 [0.3080, 0.3171]"
    assert fmt_interval(0.5, 0.45, 0.55, digits=3) == "0.500 [0.450, 0.550]"
    assert fmt_interval(-0.0046, -0.023, 0.0158, signed=True) == "-0.0046 [-0.0230, +0.0158]"
    page = render_html([Paragraph("a <b> & **c** `d`"), Alert("x < 20")], "t")
    assert "a &lt;b&gt; &amp; <strong>c</strong> <code>d</code>" in page
    assert '<div class="warning"><strong>Warning:</strong> x &lt; 20</div>' in page


@pytest.mark.slow
def test_every_figure_loads_in_a_headless_browser(headless_browser, report_run, tmp_path):
    run_dir, results, _ = report_run
    # The probe goes into a copy in a folder without figures/, so only data URIs can load.
    probe = (
        "<script>window.addEventListener('load', function () {"
        "  var n = 0; for (var img of document.images) {"
        "    if (img.complete && img.naturalWidth > 0) n++; }"
        "  var div = document.createElement('div'); div.id = 'loaded'; div.textContent = n;"
        "  document.body.appendChild(div); });</script>"
    )
    page = tmp_path / "report.html"
    page.write_text((run_dir / "report.html").read_text().replace("</body>", probe + "</body>"))
    command = [
        *headless_browser,
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    match = re.search(r'<div id="loaded">(\d+)</div>', done.stdout)
    assert match, f"no probe result in the DOM (exit {done.returncode}): {done.stderr[-2000:]}"
    assert int(match.group(1)) == len(expected_figure_ids(results))
