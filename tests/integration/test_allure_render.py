"""A real validation's junit.xml and allure-results, and the Allure 3 report generated from them read in Chromium.

One validation of the reference device whose patch stops auditing (a security loosening), with a policy entry
and ticket for one audit case and the profile's `[report] ticket_url`. Allure 3 comes from tools/allure
(`npm ci --prefix tools/allure`, as .ci/run does); the report is served on 127.0.0.1 because Allure 3's page
fetches its data, which Chromium refuses from file://.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.demo import demo_text
from harness.rundir import RunDir
from tests.integration.test_report_browser import _devtools

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ALLURE = ROOT / "tools" / "allure" / "node_modules" / ".bin" / "allure"
TICKETS = "https://tracker.example/browse/{ticket}"
EXPECTED = "audit/test_audit.py::test_transport"  # declared below, ticket SEC-77: minor, linked
LOOSENED = "audit/test_audit.py::test_events[store]"  # audit events lost: critical
PROFILE = f"""
[report]
ticket_url = "{TICKETS}"

[[expected]]
case = "{EXPECTED}"
path = "*"
reason = "the audit trail moves to another transport"
ticket = "SEC-77"
"""


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of `patchgate validate` on the no-audit patch (REGRESSED: exit 1)."""
    folder = tmp_path_factory.mktemp("allure")
    profile = folder / "profile.toml"
    profile.write_text(demo_text("no-audit") + PROFILE, encoding="utf-8")
    out = folder / "out"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "validate", "--profile", str(profile), "--out", str(out)],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def _durations(out: Path) -> dict[str, float]:
    """The candidate's recorded duration of each case (its observations.jsonl)."""
    return {c.case: c.duration for c in RunDir(out / "runs" / "candidate-1").iter_cases()}


def test_junit_times_are_the_candidates_recorded_durations(validated: Path) -> None:
    recorded = _durations(validated)
    suite = ET.parse(validated / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    manifest = json.loads((validated / "runs" / "candidate-1" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["timings"]["suites"] > 0
    assert float(suite.get("time", "0")) == pytest.approx(manifest["timings"]["suites"], abs=0.001)
    times = {f"{c.get('classname', '').replace('.', '/')}.py::{c.get('name')}": c.get("time") for c in suite}
    case = times[LOOSENED]
    assert recorded[LOOSENED] > 0
    assert case is not None and float(case) == pytest.approx(recorded[LOOSENED], abs=0.0005)
    assert sum(1 for t in times.values() if t and float(t) > 0) >= len(recorded) // 2
    failure = next(c for c in suite.iter("testcase") if c.get("name") == "test_events[store]").find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert message.startswith("C-STORE events: ") and "\n" not in message and "more)" in message


def test_allure_results_carry_duration_severity_and_links(validated: Path) -> None:
    results = {}
    for path in (validated / "allure-results").glob("*-result.json"):
        result = json.loads(path.read_text(encoding="utf-8"))
        results[result["fullName"]] = result
    recorded = _durations(validated)
    loosened, expected = results[LOOSENED], results[EXPECTED]
    assert loosened["stop"] - loosened["start"] == round(recorded[LOOSENED] * 1000) > 0
    severity = {
        r["fullName"]: next(x["value"] for x in r["labels"] if x["name"] == "severity") for r in results.values()
    }
    assert (severity[LOOSENED], severity[EXPECTED]) == ("critical", "minor")
    assert expected["links"] == [{"name": "SEC-77", "url": TICKETS.format(ticket="SEC-77"), "type": "issue"}]
    assert {x["name"]: x["value"] for x in loosened["labels"]}.items() >= {
        "story": "C-STORE",
        "epic": "patchgate",
    }.items()
    properties = (validated / "allure-results" / "environment.properties").read_text(encoding="utf-8")
    assert "candidate.variant=candidate\n" in properties and "device=reference\n" in properties


def _allure() -> str:
    if ALLURE.is_file():
        return str(ALLURE)
    message = f"Allure 3 not installed at {ALLURE}: npm ci --prefix tools/allure"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: a missing tool is a failure, not a skip)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def served(validated: Path) -> Iterator[tuple[str, Path]]:
    """The Allure 3 report generated from the validation's allure-results, served on loopback: (URL, folder)."""
    allure = _allure()
    report = validated / "allure-report"
    done = subprocess.run(
        [allure, "generate", str(validated / "allure-results"), "-o", str(report)],
        capture_output=True, text=True, timeout=300, check=False, cwd=validated,
    )  # fmt: skip
    assert done.returncode == 0 and (report / "index.html").is_file(), done.stdout[-2000:] + done.stderr[-2000:]

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request would bury the test's own output

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(report)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html", report
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _report_id(report: Path, case: str) -> str:
    """Allure's own id of a case's result in the generated report (its page is index.html#<id>)."""
    for path in (report / "data" / "test-results").glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("fullName") == case:
            return str(data["id"])
    raise AssertionError(f"{case} is not in the generated report")


def _shown(seconds: float) -> str:
    """A duration as Allure 3 writes it: "5ms", "2s 803ms"."""
    ms = round(seconds * 1000)
    return f"{ms}ms" if ms < 1000 else f"{ms // 1000}s {ms % 1000}ms"


def _text_when(page: Any, wanted: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = str(page.evaluate("document.body ? document.body.innerText : ''"))
        if wanted in text:
            return text
        assert time.monotonic() < deadline, f"{wanted!r} not shown in {timeout} s; the page says: {text[:1500]}"
        time.sleep(0.2)


def test_allure_3_renders_severity_duration_and_the_ticket_link(tmp_path: Path, served: tuple[str, Path]) -> None:
    url, report = served
    recorded = _durations(report.parent)
    with _devtools(tmp_path) as page:
        page.open(url)
        _text_when(page, "failed")
        page.call("Page.navigate", {"url": f"{url}#{_report_id(report, EXPECTED)}"})
        text = _text_when(page, "SEC-77")
        assert "Minor" in text.splitlines()
        assert _shown(recorded[EXPECTED]) in text.splitlines()
        hrefs = page.evaluate("Array.from(document.querySelectorAll('a')).map(a => a.href)")
        assert TICKETS.format(ticket="SEC-77") in hrefs
        assert {"before", "after"} <= set(text.splitlines())
        page.call("Page.navigate", {"url": f"{url}#{_report_id(report, LOOSENED)}"})
        text = _text_when(page, "test_events[store]")
        lines = text.splitlines()
        assert "Critical" in lines and "Failed" in lines
        assert _shown(recorded[LOOSENED]) in lines
