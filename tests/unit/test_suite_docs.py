"""docs/suites.md names every fixture and marker a suite gets, and no other."""

from __future__ import annotations

import re

from tests.conftest import ROOT

GUIDE = (ROOT / "docs" / "suites.md").read_text(encoding="utf-8")


def _fixtures(module: str) -> set[str]:
    source = (ROOT / module).read_text(encoding="utf-8")
    return {n for n in re.findall(r"@pytest\.fixture[^\n]*\ndef (\w+)", source) if not n.startswith("_")}


def _table_after(heading: str) -> set[str]:
    """The names in the first column of the first fixture table after `heading`."""
    start = GUIDE.index(heading)
    table = re.search(r"\| fixture \| scope \| what it is \|\n\|[-|]+\|\n((?:\|.*\n)+)", GUIDE[start:])
    assert table, heading
    return {name for row in table[1].splitlines() for name in re.findall(r"`(\w+)`", row.split("|")[1])}


def test_the_plugin_fixtures_are_listed() -> None:
    assert _table_after("Every suite gets the plugin's fixtures") == _fixtures("harness/plugin.py")


def test_the_built_in_suites_fixtures_are_listed() -> None:
    # corpus_key is a parameter made by suites/conftest.py's pytest_generate_tests, not a fixture function.
    assert _table_after("The fixtures of patchgate's own suites") == _fixtures("suites/conftest.py") | {"corpus_key"}


def test_every_marker_the_plugin_registers_is_explained() -> None:
    plugin = (ROOT / "harness" / "plugin.py").read_text(encoding="utf-8")
    markers = set(re.findall(r'addinivalue_line\(\s*"markers",\s*"(\w+)', plugin))
    assert len(markers) == 8
    explained = set(re.findall(r"@pytest\.mark\.(\w+)\(", GUIDE)) | set(re.findall(r"`(\w+)` (?:runs|lets)", GUIDE))
    assert markers <= explained, markers - explained
