"""The report of a scaling study: report.md, a self-contained report.html and its figures."""

from __future__ import annotations

import base64
import dataclasses
import re
import shutil
import struct
import subprocess
from collections import Counter
from html.parser import HTMLParser

import pytest

from finscale.analysis import ScalingResults
from finscale.document import Heading, render_markdown
from finscale.errors import InputError
from finscale.report import build_blocks
from finscale.report.figures import scaling_figure
from finscale.scale import build_results, study_files_of, write_run_report
from finscale.units import format_budget

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A scaling.json without a horizon: nothing to report.
NO_HORIZONS = {
    "study": "s",
    "tier": "a25",
    "target": "SP500",
    "confidence_level": 0.95,
    "seeds": 2,
    "config": {},
    "horizons": {},
    "warnings": [],
}
# Every horizon has these figures; cross_budget_h{h} too when the matrix was computed.
FIGURE_KINDS = (
    "scaling",
    "baselines",
    "reliability",
    "hpo",
    "architecture",
    "learning_curves",
    "pbo",
)


@pytest.fixture(scope="module")
def report_run(tiny_scale_run, tmp_path_factory):
    """A copy of the tiny study (other tests share the original) with its report written."""
    run_dir = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(tiny_scale_run, run_dir)
    results = build_results(run_dir)
    paths = write_run_report(run_dir, results)
    return run_dir, results, paths


def expected_figure_ids(results) -> set[str]:
    ids = set()
    for horizon, h in results.horizons.items():
        ids |= {f"{kind}_h{horizon}" for kind in FIGURE_KINDS}
        if h.cross_budget is not None:
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
    return f"{d.difference:+.4f} [{d.low:+.4f}, {d.high:+.4f}]"


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
    for h in results.horizons.values():
        for step in h.steps:
            budgets = f"{format_budget(step.from_budget)} -> {format_budget(step.to_budget)}"
            assert budgets in text
            # The call is the comparison's within the study's Holm-corrected family.
            call = step.log_loss.holm_verdict
            assert call in ("improves", "worsens", "no detectable difference")
            could = ""
            if call == "no detectable difference":
                could = (
                    f"; this study could detect a change of {step.mde:.4f} or larger with 80% power"
                )
            change = f"(test log loss change {signed(step.log_loss)})"
            assert f"{call}{could}" in text and change in text
        for row in h.budgets:
            for comparison in row.vs_baselines.values():
                call = comparison.log_loss.holm_verdict
                verdict = (
                    "beats"
                    if call == "improves"
                    else "is beaten by"
                    if call == "worsens"
                    else "does not beat"
                )
                assert verdict in text
        assert h.size_trend is not None
        assert h.size_trend.statement.split(";")[0].split(":")[0] in text
        alpha = h.fit.law.alpha
        assert f"fitted alpha {alpha.value:.4f} [{alpha.low:.4f}, {alpha.high:.4f}]" in text
    # The data-limited warnings hold "<", so this also checks the escaping round trip.
    for warning in results.warnings:
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
    for warning in results.warnings:
        assert f"> **Warning:** {warning}" in markdown


def test_rebuilding_gives_the_same_report_and_drops_stale_figures(report_run):
    run_dir, _, _ = report_run
    before = {name: (run_dir / name).read_bytes() for name in ("report.md", "report.html")}
    stale, foreign = run_dir / "figures" / "cross_budget_h99.png", run_dir / "figures" / "mine.png"
    stale.write_bytes(PNG_SIGNATURE)
    foreign.write_bytes(PNG_SIGNATURE)
    write_run_report(run_dir, build_results(run_dir))
    assert not stale.exists() and foreign.exists()  # only figures of the report's own naming
    foreign.unlink()
    assert (run_dir / "report.md").read_bytes() == before["report.md"]
    # The PNGs carry no timestamp or version tag, so the whole page repeats too.
    assert (run_dir / "report.html").read_bytes() == before["report.html"]


def test_a_report_of_results_without_a_horizon_is_refused(tmp_path):
    with pytest.raises(InputError, match="no scaling results"):
        write_run_report(tmp_path, ScalingResults.from_dict(NO_HORIZONS))
    assert not any(tmp_path.iterdir())


def test_a_skipped_fit_is_reported_and_drawn_without_a_law(report_run):
    run_dir, results, _ = report_run
    stored = results.to_dict()
    for h in stored["horizons"].values():
        h["fit"] = {"skipped": "needs 3 parameter counts", "points": h["fit"]["points"]}
    skipped = ScalingResults.from_dict(stored)
    markdown = render_markdown(build_blocks(skipped, study_files_of(run_dir, skipped)))
    assert "Scaling-law fit skipped: needs 3 parameter counts." in markdown
    assert "fitted alpha" not in markdown

    h = next(iter(skipped.horizons.values()))
    fig = scaling_figure(
        [(r.budget_label, r.param_count, r.metrics["log_loss"]) for r in h.budgets],
        h.fit,
        {"base_rate": 0.4},
        "h=1",
    )
    (ax,) = fig.axes
    assert "fit skipped" in ax.get_title()
    labels = ax.get_legend_handles_labels()[1]
    assert "each seed" in labels and "base_rate (0.4000)" in labels
    assert not any(label.startswith("E + A") for label in labels)


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


def test_pbo_and_sharpe_tables_set_each_figure_against_its_reference(report_run):
    from finscale.report.text import pbo_text

    run_dir, results, _ = report_run
    text = (run_dir / "report.md").read_text()
    assert "PSR (test Sharpe > 0)" in text and "winner's validation Sharpe" in text
    assert "null 5% / 50% / 95%" in text
    for h in results.horizons.values():
        for row in h.budgets:
            assert pbo_text(row.pbo) in text
            assert row.pbo.null_reference is not None and 0 <= row.pbo.null_quantile <= 1
            assert 0 <= row.psr.value <= 1 and row.psr.n_days == h.n_test
            low, high = row.psr.annualised_interval
            assert f"{row.psr.annualised_sharpe:.2f} [{low:.2f}, {high:.2f}]" in text


def test_a_law_its_runs_do_not_identify_is_said_first_and_keeps_its_numbers(report_run):
    run_dir, results, _ = report_run
    stored = results.to_dict()
    for h in stored["horizons"].values():
        # The quick study's fit as a file written before the judgement holds it.
        for key in ("identified", "why"):
            h["fit"].pop(key, None)
        h["fit"]["E"] = {"value": 0.3273, "low": 0.0241, "high": 0.3563}
        h["fit"]["A"] = {"value": 0.02468, "low": 0.02456, "high": 1.462e10}
        h["fit"]["alpha"] = {"value": 0.0, "low": 0.0, "high": 2.9441}
    flat = ScalingResults.from_dict(stored)
    markdown = render_markdown(build_blocks(flat, study_files_of(run_dir, flat)))
    lead = markdown.index("**The scaling law is not identified by these runs**")
    section = markdown[lead:]
    assert section.index("L(N) = E + A·N^-alpha fitted") < section.index("## ")
    assert "fitted alpha 0.0000 [0.0000, 2.9441]" in section
    assert "alpha is fitted at 0" in markdown and "orders of magnitude" in markdown
    assert "not identified by these runs (fitted alpha" in markdown  # the short answer
    assert "**data-limited** means this regime only" in markdown


def test_a_null_control_says_so_in_the_reports_first_line(report_run):
    run_dir, results, _ = report_run
    null = dataclasses.replace(results, null_control="shuffle")
    blocks = build_blocks(null, study_files_of(run_dir, null))
    first = render_markdown(blocks).splitlines()[0]
    assert first.startswith("**Null control (shuffle)**:")
    assert "nothing here can be learned; every call below should be null" in first
    # The page's title is still the study's heading.
    title = next(b.text for b in blocks if isinstance(b, Heading))
    assert title.startswith(f"Scaling study {results.study}")
    # A study on real labels leads with its title.
    assert render_markdown(build_blocks(results, study_files_of(run_dir, results))).startswith(
        f"# Scaling study {results.study}"
    )
