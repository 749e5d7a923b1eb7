"""report.html in real headless Chromium: the rendered page shows the verdict, every difference, the security posture."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import select
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.compare.engine import compare
from harness.compare.performance import compare_metric
from harness.compare.policy import ExpectedChange, Policy
from harness.model import CaseRecord, Comparison, Direction, Observation, Outcome, RunRecord, Security
from harness.report import write_reports
from harness.report._attributes import named_path
from harness.report._view import _side
from harness.rundir import RunDir, read_run
from tests.conftest import require_tool
from tests.factories import make_case, make_reference_run
from tests.unit.test_report_robustness import CORPUS as ROBUSTNESS_CORPUS
from tests.unit.test_report_robustness import HOSTILE as ROBUSTNESS_HOSTILE
from tests.unit.test_report_robustness import compared as robustness_comparison

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
    done = subprocess.run(
        [binary, *_flags(tmp_path), *args], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _flags(tmp_path: Path) -> list[str]:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    return [
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
    for reason in comparison.reasons:  # a regressed case's line is its test's sentence in the banner
        test = reason.removeprefix("regressed: ").split(": ")[0].partition("[")[0]
        assert (test if reason.startswith("regressed: ") else reason) in text
    differences = [d for c in comparison.cases for d in c.differences]
    assert len(differences) == 4  # noise, a value, a DICOM status, an expected change
    for d in differences:  # each as the page says it: tags named, statuses with their meaning
        case = next(c for c in comparison.cases if d in c.differences)
        assert named_path(d.path) in text and d.kind.value.replace("_", " ") in text
        assert _side(d, "before", case.service).text in text
        assert _side(d, "after", case.service).text in text
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


# --- The security posture section ---------------------------------------------------------------

TLS1 = "tls/test_tls.py::test_protocol_version[TLSv1]"


def _posture_cases(patched: bool) -> list[CaseRecord]:
    e, p = Security.EXPOSURE, Security.PROTECTION

    def case(name: str, **obs: Any) -> CaseRecord:
        return CaseRecord(name, Outcome.PASSED, observations=tuple(Observation(k, v, t) for k, (v, t) in obs.items()))

    return [
        case(TLS1, accepted=(patched, e)),
        case("tls/test_tls.py::test_protocol_version[TLSv1.1]", accepted=(False, e)),
        case("tls/test_tls.py::test_plain_tcp", admitted=(not patched, e)),
        case("tls/test_tls.py::test_cipher_suites", forbidden=([HOSTILE] if patched else [], e)),
        case(
            "surface/test_surface.py::test_inventory",
            listening=(["tcp/104 any (dev)", "tcp/8042 any (dev)" if patched else "tcp/80 any (dev)"], e),
        ),
        case("audit/test_audit.py::test_events[store]", events=([] if patched else ["DICOM Instances Transferred"], p)),
        case("access/test_access.py::test_unknown_calling_ae[find]", admitted=(False, e)),
    ]


@pytest.fixture
def posture_report(tmp_path: Path) -> tuple[Comparison, Path]:
    baselines = [_run("baseline", i, _posture_cases(False)) for i in (1, 2)]
    candidate = _run("candidate", 1, _posture_cases(True))
    policy = Policy(
        (
            ExpectedChange("tls/test_tls.py::test_plain_tcp", "*", "TLS now required", ticket="SEC-12"),
            ExpectedChange("tls/*", "accepted", "TLS rework", where="devices/dev/policy.toml:3"),
        )
    )
    comparison = compare(baselines, candidate, policy, created="2026-11-28T10:05:00+00:00")
    runs = [r.manifest for r in (*baselines, candidate)]
    return comparison, write_reports(comparison, tmp_path / "out", runs)["html"]


class _Devtools:
    """Headless Chromium driven over --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-framed JSON): no extra package."""

    def __init__(self, process: subprocess.Popen[bytes], commands: int, events: int) -> None:
        self.process, self._commands, self._events = process, commands, events
        self._buffer = b""
        self._next = 0
        self.session = ""

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if self.session:
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._next:
                    assert "error" not in reply, f"{method}: {reply['error']}"
                    result: dict[str, Any] = reply["result"]
                    return result
            left = deadline - time.monotonic()
            assert left > 0, f"{method}: no answer from Chromium in {timeout} s"
            ready, _, _ = select.select([self._events], [], [], left)
            if ready:
                chunk = os.read(self._events, 1 << 20)
                assert chunk, f"{method}: Chromium closed the pipe (exit code {self.process.poll()})"
                self._buffer += chunk

    def close(self) -> None:
        os.close(self._commands)  # Chromium exits when its command pipe closes
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
        os.close(self._events)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def open(self, url: str, timeout: float = 30.0) -> None:
        target = self.call("Target.createTarget", {"url": url}, timeout=60.0)["targetId"]  # a renderer starts
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        deadline = time.monotonic() + timeout
        while self.evaluate("location.href + ' ' + document.readyState") != f"{url} complete":
            assert time.monotonic() < deadline, f"{url} did not load in {timeout} s"
            time.sleep(0.05)


@contextmanager
def _devtools(tmp_path: Path, width: int = 1280, height: int = 900) -> Iterator[_Devtools]:
    binary = require_tool("chromium", "apt-get install -y chromium")
    tools = _start(binary, tmp_path, width, height)
    try:
        tools.call("Browser.getVersion")
    except AssertionError:  # once in CI a Chromium never answered its first command (30 s): a second one, once
        tools.close()
        (tmp_path / "again").mkdir()
        tools = _start(binary, tmp_path / "again", width, height)  # its own profile: the first may hold its lock
    try:
        yield tools
    finally:
        tools.close()


def _start(binary: str, tmp_path: Path, width: int, height: int) -> _Devtools:
    to_chromium, commands = os.pipe()
    events, from_chromium = os.pipe()

    def fds_3_and_4() -> None:  # Chromium reads commands on fd 3 and answers on fd 4
        os.dup2(to_chromium, 3)
        os.dup2(from_chromium, 4)

    process = subprocess.Popen(
        [binary, *_flags(tmp_path), "--remote-debugging-pipe", f"--window-size={width},{height}", "about:blank"],
        pass_fds=(3, 4),
        preexec_fn=fds_3_and_4,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(to_chromium)
    os.close(from_chromium)
    return _Devtools(process, commands, events)


def test_rendered_dom_shows_the_security_posture(tmp_path: Path, posture_report: tuple[Comparison, Path]) -> None:
    comparison, html_path = posture_report
    dom = _chromium(tmp_path, "--dump-dom", html_path.as_uri()).stdout
    page = _Page()
    page.feed(dom)
    text = "".join(page.text)
    start, end = text.index("Security posture"), text.index("Differences by case")
    section = text[start:end]
    loosened = [c for c in comparison.security if c.direction is Direction.LOOSENED]
    tightened = [c for c in comparison.security if c.direction is Direction.TIGHTENED]
    assert (len(loosened), len(tightened)) == (4, 2)
    assert f"Loosened: {len(loosened)}" in section and f"Tightened: {len(tightened)}" in section
    assert "Stayed the same: 2 security observation(s)" in section
    for c in comparison.security:
        assert c.case in section
    assert "false→true" in section  # the TLSv1 row: before, arrow, after
    assert "+ tcp/8042 any (dev)" in section and "\N{MINUS SIGN} tcp/80 any (dev)" in section
    assert "\N{MINUS SIGN} DICOM Instances Transferred" in section
    assert "policy entry at devices/dev/policy.toml:3 matches but does not allow loosening" in section
    assert "TLS now required (SEC-12)" in section
    line = (
        f"{TLS1}: security loosened: accepted false → true "
        "(policy entry at devices/dev/policy.toml:3 matches but does not allow loosening)"
    )
    assert line in comparison.reasons and line in text[:start]  # in the verdict's reasons at the top
    assert "+ " + HOSTILE in section  # the hostile cipher name is text ...
    assert "script" not in page.tags and "img" not in page.tags  # ... and never markup


def test_security_posture_is_visible_in_colour_with_what_stayed_collapsed(
    tmp_path: Path, posture_report: tuple[Comparison, Path]
) -> None:
    _, html_path = posture_report
    with _devtools(tmp_path) as chrome:
        chrome.open(html_path.as_uri())
        chrome.evaluate("document.getElementById('security').scrollIntoView()")
        layout = chrome.evaluate(
            """JSON.stringify({
              groups: [...document.querySelectorAll('#security .posture')].map(g => ({
                cls: g.className, height: g.getBoundingClientRect().height, right: g.getBoundingClientRect().right,
                border: getComputedStyle(g).borderLeftColor, title: (g.querySelector('h3, summary') || {}).innerText,
                heading: g.querySelector('h3') ? getComputedStyle(g.querySelector('h3')).color : '',
                rows: [...g.querySelectorAll('tbody tr')].map(r => r.checkVisibility() ? r.offsetHeight : 0),
                open: g.querySelector('details') ? g.querySelector('details').open : null })),
              width: innerWidth, scrollWidth: document.documentElement.scrollWidth,
              top: document.getElementById('security').getBoundingClientRect().top })"""
        )
        rect = chrome.evaluate(
            "JSON.stringify((r => ({x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}))"
            "(document.getElementById('security').getBoundingClientRect()))"
        )
        clip = {k: round(v) for k, v in json.loads(rect).items()}
        shot = chrome.call(
            "Page.captureScreenshot", {"format": "png", "clip": {**clip, "scale": 1}, "captureBeyondViewport": True}
        )
    info = json.loads(layout)
    groups = {g["cls"].split()[-1]: g for g in info["groups"]}
    assert list(groups) == ["p-loosened", "p-tightened", "p-unchanged"]
    assert abs(info["top"]) < 2  # scrolled to: the section is laid out, not hidden
    assert info["scrollWidth"] <= info["width"]  # nothing runs off the page sideways
    loosened, tightened, stayed = groups["p-loosened"], groups["p-tightened"], groups["p-unchanged"]
    assert (loosened["border"], loosened["heading"]) == ("rgb(162, 35, 29)", "rgb(162, 35, 29)")  # red
    assert (tightened["border"], tightened["heading"]) == ("rgb(47, 111, 115)", "rgb(47, 111, 115)")  # teal, not green
    assert loosened["title"] == "Loosened: 4" and tightened["title"] == "Tightened: 2"
    assert len(loosened["rows"]) == 4 and all(h > 10 for h in loosened["rows"])
    assert len(tightened["rows"]) == 2 and all(h > 10 for h in tightened["rows"])
    assert all(g["right"] <= info["width"] for g in info["groups"])
    # What stayed is listed but collapsed: its rows exist and take no room until opened.
    assert stayed["open"] is False and len(stayed["rows"]) == 2 and all(h == 0 for h in stayed["rows"])
    assert stayed["title"].startswith("Stayed the same: 2") and stayed["height"] < 40  # one summary line
    png = base64.b64decode(shot["data"])
    (tmp_path / "security.png").write_bytes(png)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    size = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert size == (clip["width"], clip["height"]) and clip["height"] > 400


# --- The software changes section ----------------------------------------------------------------


def _inventory_cases(patched: bool) -> list[CaseRecord]:
    ssl = "3.0.22-1~deb12u2" if patched else "3.0.20-1~deb12u2"
    # The patch removes zlib1g and installs a package with a hostile name.
    other = {HOSTILE: "1.0-1"} if patched else {"zlib1g": "1:1.2.13.dfsg-1"}
    packages = Observation("packages", {"libssl3": ssl, "openssl": ssl, **other}, tags=(Observation.INVENTORY,))
    return [CaseRecord("surface/test_surface.py::test_inventory", Outcome.PASSED, observations=(packages,))]


def _on_disk(run: RunRecord, folder: Path) -> RunRecord:
    """The run written as a run directory and read back, as `patchgate compare` reads it (tags included)."""
    directory = RunDir(folder)
    directory.prepare()
    directory.write_manifest(run.manifest)
    writer = directory.case_writer()
    for case in run.cases:
        writer.write(case)
    writer.close()
    return read_run(folder)


def test_software_changes_table_shows_each_package_with_both_versions(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    baselines = [_on_disk(_run("baseline", i, _inventory_cases(False)), runs / f"baseline-{i}") for i in (1, 2)]
    candidate = _on_disk(_run("candidate", 1, _inventory_cases(True)), runs / "candidate-1")
    policy = Policy((ExpectedChange("surface/*", "packages.*ssl*", "OpenSSL security update", ticket="SEC-50"),))
    comparison = compare(baselines, candidate, policy, created="2026-11-28T10:05:00+00:00")
    html_path = write_reports(comparison, tmp_path / "out", [r.manifest for r in (*baselines, candidate)])["html"]
    with _devtools(tmp_path) as chrome:
        chrome.open(html_path.as_uri())
        shown = json.loads(
            chrome.evaluate(
                """JSON.stringify({
                  heading: document.querySelector('#software h2').innerText,
                  previous: document.getElementById('software').previousElementSibling.id,
                  sentence: document.querySelector('#software p').innerText,
                  rows: [...document.querySelectorAll('#software tbody tr')].map(r =>
                    r.checkVisibility() ? [...r.cells].map(c => c.innerText.trim()) : null),
                  scripts: document.querySelectorAll('script, img').length, title: document.title })"""
            )
        )
    assert shown["heading"] == "Software changes" and shown["previous"] == "security"
    assert shown["sentence"] == "4 packages changed: 2 changed version, 1 added, 1 removed."
    assert shown["rows"] == [
        [HOSTILE, "not installed", "1.0-1", "regressed not declared in the policy"],
        ["libssl3", "3.0.20-1~deb12u2", "3.0.22-1~deb12u2", "expected OpenSSL security update (SEC-50)"],
        ["openssl", "3.0.20-1~deb12u2", "3.0.22-1~deb12u2", "expected OpenSSL security update (SEC-50)"],
        ["zlib1g", "1:1.2.13.dfsg-1", "not installed", "regressed not declared in the policy"],
    ]
    assert shown["scripts"] == 0 and shown["title"] == "patchgate: reference — REGRESSED"  # the name never ran


# --- The performance section ----------------------------------------------------------------------


def _perf_rounds(scale: float, seed: int) -> dict[int, list[float]]:
    rng = np.random.default_rng(seed)
    return {k: [float(v) for v in 0.05 * scale * rng.lognormal(0.0, 0.05, 6)] for k in range(1, 13)}


def test_performance_section_lays_out_its_charts(tmp_path: Path, report: tuple[Comparison, Path]) -> None:
    baselines = {"baseline-1": _perf_rounds(1.0, 1), "baseline-2": _perf_rounds(1.0, 2)}
    metrics = (
        compare_metric("store.study", baselines, _perf_rounds(1.3, 3), resamples=400),
        compare_metric("find.study", baselines, _perf_rounds(1.0, 4), resamples=400),
    )
    comparison = dataclasses.replace(report[0], performance=metrics)
    html_path = write_reports(comparison, tmp_path / "perf", [])["html"]
    with _devtools(tmp_path) as chrome:
        chrome.open(html_path.as_uri())
        shown = json.loads(
            chrome.evaluate(
                """JSON.stringify({
                  charts: [...document.querySelectorAll('#performance svg')].map(s => (r => [r.width, r.height,
                    s.querySelectorAll('.pg-lane').length])(s.getBoundingClientRect())),
                  dots: getComputedStyle(document.querySelector('#performance .pg-c .pg-dot')).fill,
                  badges: [...document.querySelectorAll('#performance .badge')].map(b => b.innerText),
                  width: innerWidth, scrollWidth: document.documentElement.scrollWidth })"""
            )
        )
    assert shown["badges"] == ["regressed", "unchanged"]
    assert len(shown["charts"]) == 4 and all(w > 300 and h > 40 for w, h, _ in shown["charts"])
    assert [lanes for *_, lanes in shown["charts"]] == [3, 0, 3, 0]  # distributions, then the ratio, per metric
    assert shown["dots"] == "rgb(194, 106, 0)"  # the candidate's colour, from the section's stylesheet
    assert shown["scrollWidth"] <= shown["width"]  # nothing runs off the page sideways


# --- The robustness section -----------------------------------------------------------------------


def test_robustness_section_lays_out_its_table_with_coloured_changes(tmp_path: Path) -> None:
    comparison, runs = robustness_comparison()
    html_path = write_reports(comparison, tmp_path / "out", runs)["html"]
    with _devtools(tmp_path) as chrome:
        chrome.open(html_path.as_uri())
        shown = json.loads(
            chrome.evaluate(
                """JSON.stringify({
                  previous: document.getElementById('robustness').previousElementSibling.id,
                  inputs: [...document.querySelectorAll('#robustness tbody tr')].map(r =>
                    r.checkVisibility() && r.offsetHeight > 10 ? r.cells[0].querySelector('code').innerText : null),
                  changes: [...document.querySelectorAll('#robustness tbody td:nth-child(5) .badge')].map(b =>
                    [b.innerText, getComputedStyle(b).backgroundColor]),
                  revivals: [...document.querySelectorAll('#robustness ul.revivals li')].map(li => li.innerText),
                  scripts: document.querySelectorAll('script, img').length,
                  width: innerWidth, scrollWidth: document.documentElement.scrollWidth })"""
            )
        )
    assert shown["previous"] == "runs"  # after the counts and the runs, before the security posture
    assert len(shown["inputs"]) == len(ROBUSTNESS_CORPUS) and shown["inputs"][0] == "pdu.pdata.over-max"
    assert ROBUSTNESS_HOSTILE in shown["inputs"] and shown["scripts"] == 0  # the hostile id is text, never markup
    assert shown["changes"][:4] == [
        ["loosened", "rgb(162, 35, 29)"],  # red, as loosened in the security posture
        ["tightened", "rgb(47, 111, 115)"],  # teal: a change, not praise
        ["changed", "rgb(138, 90, 0)"],
        ["noisy", "rgb(119, 119, 119)"],
    ]
    assert shown["revivals"][-1] == "candidate 1: revived after pdu.pdata.over-max (exited: exit code 70)"
    assert shown["scrollWidth"] <= shown["width"]  # nothing runs off the page sideways
