"""The document model: a report as a list of blocks (heading, paragraph, bullets,
table, figure, warning), rendered to markdown and to one self-contained HTML page.

Every document finscale writes (the scaling report, a study's summary) is built
once as blocks and rendered twice, so its markdown and its HTML cannot say
different things.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

# Where the markdown of a document looks for its figures, beside it.
FIGURES_DIR = "figures"


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str  # may hold **bold** and `code`: the only inline markup both renderers know


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    align: str = ""  # 'l' or 'r' per column; columns beyond it are left-aligned


@dataclass(frozen=True)
class Image:
    figure_id: str  # the PNG's file stem and the HTML id: tests find figures by it
    alt: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class Alert:
    text: str


Block = Heading | Paragraph | Bullets | Table | Image | Alert


def table_header(text: str) -> tuple[str, ...]:
    """Column names written as a markdown header row: "budget | params | ..."."""
    return tuple(name.strip() for name in text.split("|"))


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")


def _inline_html(text: str) -> str:
    return _BOLD.sub(r"<strong>\1</strong>", _CODE.sub(r"<code>\1</code>", html.escape(text)))


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render_markdown(blocks: Sequence[Block], figures_dir: str = FIGURES_DIR) -> str:
    """Markdown of the blocks; each image points at `figures_dir/{figure_id}.png`."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            parts.append(block.text)
        elif isinstance(block, Bullets):
            parts.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            align = block.align.ljust(len(block.header), "l")
            rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
            parts.append("\n".join([_md_row(block.header), rule, *map(_md_row, block.rows)]))
        elif isinstance(block, Image):
            path = f"{figures_dir}/{block.figure_id}.png"
            parts.append(f"![{block.alt}]({path})\n\n*{block.caption}*")
        elif isinstance(block, Alert):
            parts.append(f"> **Warning:** {block.text}")
    return "\n\n".join(parts) + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; color: #222; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; line-height: 1.45; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: .25em .55em; vertical-align: top; }
th { background: #f3f3f3; }
.r { text-align: right; font-variant-numeric: tabular-nums; }
code { background: #f3f3f3; padding: 0 .2em; }
.warning { background: #fff4e0; border-left: 5px solid #e69500; padding: .5em .9em; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: .9em; color: #555; }
"""


def _html_row(cells: Sequence[str], tag: str, align: str) -> str:
    return "".join(
        f'<{tag} class="{a}">{_inline_html(c)}</{tag}>' for c, a in zip(cells, align, strict=False)
    )


def render_html(blocks: Sequence[Block], title: str) -> str:
    """One self-contained page: inline CSS, figures as data URIs, no script, no links."""
    body = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{_inline_html(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{_inline_html(block.text)}</p>")
        elif isinstance(block, Bullets):
            body.append(
                "<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in block.items) + "</ul>"
            )
        elif isinstance(block, Table):
            align = block.align.ljust(len(block.header), "l")
            rows = "".join(f"<tr>{_html_row(r, 'td', align)}</tr>" for r in block.rows)
            head = _html_row(block.header, "th", align)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Image):
            data = base64.b64encode(block.png).decode("ascii")
            name, alt = html.escape(block.figure_id), html.escape(block.alt)
            body.append(
                f'<figure><img id="{name}" data-figure="{name}" alt="{alt}" '
                f'src="data:image/png;base64,{data}">'
                f"<figcaption>{_inline_html(block.caption)}</figcaption></figure>"
            )
        elif isinstance(block, Alert):
            text = _inline_html(block.text)
            body.append(f'<div class="warning"><strong>Warning:</strong> {text}</div>')
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
