"""The docs say what the code does: config tables written from the config's fields,
every preset and every config section named where the README lists them."""

import importlib.util
import re
from pathlib import Path

import pytest

from finscale.config import PRESETS, StudyConfig

ROOT = Path(__file__).resolve().parent.parent
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def load_script():
    spec = importlib.util.spec_from_file_location(
        "config_tables", ROOT / "docs" / "config_tables.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


config_tables = load_script()


@pytest.mark.parametrize("path", config_tables.doc_files(ROOT), ids=lambda p: p.name)
def test_every_config_table_is_the_generated_one(path):
    stale = config_tables.stale_tables(path.read_text())
    assert stale == [], f"{path.name}: run python docs/config_tables.py"


def test_every_config_section_has_a_table_in_the_docs():
    text = "".join(p.read_text() for p in config_tables.doc_files(ROOT))
    tabled = {m["section"] for m in config_tables.TABLE.finditer(text)}
    sections = set(StudyConfig.model_fields)
    within = {  # a section within a section: `data.synthetic`
        f"{name}.{field}"
        for name in sections
        for field, info in StudyConfig.model_fields[name].annotation.model_fields.items()
        if info.default_factory is not None
    }
    assert within == {"data.synthetic"}
    assert tabled == sections | within


def test_a_stale_table_is_named_and_rewritten():
    doc = "before\n<!-- config-table: evaluation -->\n| old |\n<!-- /config-table -->\nafter\n"
    assert config_tables.stale_tables(doc) == ["evaluation"]
    fresh = config_tables.render(doc)
    assert fresh.startswith("before\n") and fresh.endswith("<!-- /config-table -->\nafter\n")
    assert "| `rolling_days` | 1260 |" in fresh and "| old |" not in fresh
    assert config_tables.stale_tables(fresh) == [] and config_tables.render(fresh) == fresh
    with pytest.raises(ValueError, match="no config section 'nope'"):
        config_tables.render("<!-- config-table: nope -->\n<!-- /config-table -->")


def readme_config_bullet() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("- **Config.**")
    return text[start : text.index("\n- **", start + 1)]


def test_the_readme_names_every_preset_and_counts_every_section():
    bullet = " ".join(readme_config_bullet().split())
    named = re.findall(r"`(?:--preset )?(\w+)`", bullet)
    assert [p for p in PRESETS if p not in named] == []
    sections = list(StudyConfig.model_fields)
    assert f"{NUMBER_WORDS[len(sections)]} sections" in bullet
    assert all(f"`{s}`" in bullet for s in sections)
    assert not re.search(rf"\b(?!{NUMBER_WORDS[len(sections)]})\w+ sections\b", bullet)
