"""Rewrite the config tables of the docs from the config's own fields.

Every table between `<!-- config-table: SECTION -->` and `<!-- /config-table -->` in
README.md and docs/*.md is `finscale.config.markdown_table` of that section of the
study config: keys, defaults, bounds and descriptions come from the code, so the
docs cannot drift from it. Edit a field's `description=` in src/finscale/config/,
then run

    python docs/config_tables.py          # rewrite the tables in place
    python docs/config_tables.py --check  # exit 1 naming each stale table (the tests run this)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from finscale.config import StudyConfig, markdown_table

ROOT = Path(__file__).resolve().parent.parent
TABLE = re.compile(
    r"(?P<open><!-- config-table: (?P<section>[\w.]+) -->\n)"
    r"(?P<body>.*?)"
    r"(?P<close><!-- /config-table -->)",
    re.DOTALL,
)


def doc_files(root: Path = ROOT) -> list[Path]:
    """The docs that may hold config tables."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def section_table(section: str) -> str:
    """The table of one section of the study config (`scale`, `evaluation`, ...; a
    section within one is dotted, `data.synthetic`)."""
    model = StudyConfig
    for name in section.split("."):
        if name not in model.model_fields:
            known = ", ".join(model.model_fields)
            raise ValueError(f"no config section {section!r}; sections: {known}")
        model = model.model_fields[name].annotation
    return markdown_table(model)


def render(text: str) -> str:
    """`text` with every marked table replaced by its generated one."""
    return TABLE.sub(
        lambda m: m["open"] + section_table(m["section"]) + m["close"],
        text,
    )


def stale_tables(text: str) -> list[str]:
    """The sections whose marked table in `text` differs from the generated one."""
    return [m["section"] for m in TABLE.finditer(text) if m["body"] != section_table(m["section"])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    stale = []
    for path in doc_files():
        text = path.read_text()
        if args.check:
            stale += [f"{path.relative_to(ROOT)}: {s}" for s in stale_tables(text)]
        elif render(text) != text:
            path.write_text(render(text))
            print(f"rewrote {path.relative_to(ROOT)}")
    if stale:
        print("stale config tables (run python docs/config_tables.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
