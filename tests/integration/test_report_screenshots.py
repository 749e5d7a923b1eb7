"""Screenshots of report.html by headless Chromium: the regression demo's first screen renders, and the docs keep theirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.rundir import OutDir
from tests.chromium import SIZE, ChromiumError, find_chromium, png_rows, png_size, screenshot
from tests.conftest import ROOT, require_tool, run_cli

pytestmark = pytest.mark.browser

REGRESSED = (0xA2, 0x23, 0x1D)  # the verdict banner's background (report.css .v-REGRESSED)
IMAGES = ROOT / "docs" / "images"
DOCS = ("report-clean.png", "report-regression.png")  # written by scripts/report_screenshots.py
LIMIT = 300_000  # bytes, as the script holds them


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("regression")
    result = run_cli("validate", "--demo", "regression", "--out", str(out), "--force", "--quiet")
    assert result.code == 1, result.stdout + result.stderr
    return OutDir(out).html


def test_the_regression_reports_first_screen_renders(regression: Path, tmp_path: Path) -> None:
    chromium = require_tool("chromium", "apt-get install -y chromium")
    png = screenshot(regression, tmp_path / "first-screen.png", chromium=chromium)
    data = png.read_bytes()
    assert png_size(data) == SIZE == (1280, 900)
    rows = png_rows(data, 200)
    top = rows[:60]  # the banner starts the page: a blank or unstyled page has none of its red
    red = sum(px == REGRESSED for row in top for px in row)
    assert red > SIZE[0] * 20, f"the verdict banner's red fills {red} pixels of the top 60 rows"
    colours = {px for row in rows for px in row}
    assert len(colours) > 16, f"{len(colours)} distinct colours in the top 200 rows: the page did not render"


def test_a_missing_page_or_chromium_says_so(tmp_path: Path) -> None:
    with pytest.raises(ChromiumError, match="no such page"):
        screenshot(tmp_path / "nope.html", tmp_path / "nope.png", chromium="/bin/true")
    with pytest.raises(ChromiumError, match="exited 1 without writing"):
        page = tmp_path / "page.html"
        page.write_text("<p>x</p>")
        screenshot(page, tmp_path / "x.png", chromium="/bin/false")


def test_find_chromium_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHROMIUM", str(tmp_path / "no-chromium"))
    with pytest.raises(ChromiumError, match=r"is not an executable; hint: apt-get install -y chromium"):
        find_chromium()
    monkeypatch.delenv("CHROMIUM")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ChromiumError, match="none of chromium, chromium-browser, google-chrome is on PATH"):
        find_chromium()


@pytest.mark.parametrize("name", DOCS)
def test_the_docs_keep_their_screenshots(name: str) -> None:
    """docs/images holds both first screens (scripts/report_screenshots.py writes them): PNGs, 1280 wide, small."""
    data = (IMAGES / name).read_bytes()
    assert png_size(data) == SIZE, f"{name}: regenerate with scripts/report_screenshots.py"
    assert len(data) <= LIMIT, f"{name}: {len(data):,} bytes"
    colours = {px for row in png_rows(data, 100) for px in row}
    assert len(colours) > 16, f"{name}: {len(colours)} colours in its top rows: a blank page"
