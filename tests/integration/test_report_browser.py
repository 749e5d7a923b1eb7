"""report.html in real headless Chromium: the rendered page shows the verdict and every difference."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.compare.diff import format_side
from harness.compare.engine import compare
from harness.compare.policy import ExpectedChange, Policy
from harness.model import CaseRecord, Comparison, Outcome, RunRecord
from harness.report import write_reports
from tests.conftest import require_tool
from tests.factories import make_case, make_reference_run

pytestmark = pytest.mark.browser

HOSTILE = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"
TIMEOUT = 90  # seconds for one Chromium invocation; it takes about two here


def _run(role: str, replica: int, cases: list[CaseRecord]) -> RunRecord:
    return make_reference_run(
        cases,
        role,
        replica,
        versions={"pydicom": "3.0.2", "pynetdicom": "3.0.4"},
        finished="2026-11-28T10:01:30+00:00",
        timings={"total": 90.0},
    )


def _cases(port: int, patched: bool) -> list[CaseRecord]:
    name = HOSTILE if patched else "Doe^Jane"
    return [
        make_case("echo/test_echo.py::test_echo", **{"echo.status": 0, "assoc": {"port": port}}),
        make_case(
            "qr/test_find.py::test_patient_level",
            find=[
                {"00100010": {"vr": "PN", "Value": [{"Alphabetic": name}]}, "00100020": {"vr": "LO", "Value": ["P1"]}}
            ],
        ),
        make_case("store/test_commit.py::test_commit", commit={"status": 0xC000 if patched else 0, "failed": []}),
        make_case("tls/test_tls.py::test_plain_refused", assoc={"accepted": not patched}),
        make_case("mwl/test_mwl.py::test_query", Outcome.NOT_APPLICABLE),
    ]


@pytest.fixture
def report(tmp_path: Path) -> tuple[Comparison, Path]:
    baselines = [_run("baseline", 1, _cases(40001, False)), _run("baseline", 2, _cases(40002, False))]
    candidate = _run("candidate", 1, _cases(40003, True))
    policy = Policy((ExpectedChange("tls/*", "assoc.accepted", "TLS now required", ticket="SEC-12"),))
    comparison = compare(baselines, candidate, policy, created="2026-11-28T10:05:00+00:00")
    runs = [r.manifest for r in (*baselines, candidate)]
    return comparison, write_reports(comparison, tmp_path / "out", runs)["html"]


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = require_tool("chromium", "apt-get install -y chromium")
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    done = subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


class _Page(HTMLParser):
    """The rendered DOM's text and the tags it holds."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_rendered_dom_shows_the_verdict_and_every_difference(tmp_path: Path, report: tuple[Comparison, Path]) -> None:
    comparison, html_path = report
    dom = _chromium(tmp_path, "--dump-dom", html_path.as_uri()).stdout
    page = _Page()
    page.feed(dom)
    text = "".join(page.text)
    assert "Verdict: REGRESSED" in text and "Exit code 1." in text
    for reason in comparison.reasons:
        assert reason in text
    differences = [d for c in comparison.cases for d in c.differences]
    assert len(differences) == 4  # noise, a value, a DICOM status, an expected change
    for d in differences:
        assert d.path in text and d.kind.value.replace("_", " ") in text
        assert format_side(d, "before", pretty=True) in text
        assert format_side(d, "after", pretty=True) in text
    assert HOSTILE in text  # shown as text ...
    assert "script" not in page.tags and "img" not in page.tags  # ... never run as markup
    assert "<title>patchgate: reference — REGRESSED</title>" in dom  # the injected script never ran


def test_screenshot_renders(tmp_path: Path, report: tuple[Comparison, Path]) -> None:
    _, html_path = report
    png = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={png}", "--window-size=1280,2000", "--hide-scrollbars", html_path.as_uri())
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 2000)
    assert len(data) > 20_000  # a blank page compresses to a few kB
