"""The CLI end to end on the reference device: verdicts, exit codes, reports, and clear errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import __version__
from harness.rundir import RunDir
from tests.conftest import ROOT, CliResult, require_tool, run_cli


def _assert_one_line_error(result: CliResult, *fragments: str) -> None:
    assert result.code == 2, (result.code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("patchgate: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[CliResult, Path]:
    cwd = tmp_path_factory.mktemp("demo")
    # Relative, as the README writes it.
    return run_cli("validate", "--demo", "--out", "out/demo", cwd=cwd), cwd / "out" / "demo"


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> tuple[CliResult, Path]:
    out = tmp_path_factory.mktemp("regression")
    return run_cli("validate", "--demo", "regression", "--out", str(out)), out


def test_demo_clean_patch_is_unchanged(demo: tuple[CliResult, Path]) -> None:
    result, out = demo
    assert result.code == 0, result.stdout + result.stderr
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["verdict"] == "UNCHANGED"
    assert "VERDICT: UNCHANGED" in result.stdout
    for name in ("report.html", "junit.xml"):
        assert (out / name).stat().st_size > 0
    for run in ("baseline-1", "baseline-2", "candidate-1"):
        manifest = json.loads((out / "runs" / run / "manifest.json").read_text())
        assert manifest["status"] == "completed"
        assert manifest["corpus"]["items"] > 20
        assert (out / "runs" / run / "junit.xml").exists()
        assert list((out / "runs" / run / "allure-results").glob("*-result.json"))
        # Peak memory of the device process and the PACS simulator, measured as they stopped.
        peaks = manifest["extra"]["memory_peak_bytes"]
        assert set(peaks) == {"device", "pacs"} and all(10_000_000 < v < 2_000_000_000 for v in peaks.values()), peaks
    ran = [c for c in comparison["cases"] if c["before"] == "passed"]
    assert len(ran) > 50, "the suites ran too few cases"


def test_demo_regression_names_each_changed_behaviour(regression: tuple[CliResult, Path]) -> None:
    result, out = regression
    assert result.code == 1, result.stdout + result.stderr
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["verdict"] == "REGRESSED"
    regressed = {c["case"] for c in comparison["cases"] if c["status"] == "regressed"}
    # The regression variant changes several behaviours; each shows up as its own case.
    assert any(c.startswith("storage/") for c in regressed), regressed
    assert any(c.startswith("query/") for c in regressed), regressed
    assert any(c.startswith("retrieve/") for c in regressed), regressed
    # The summary groups the regressed cases by test and stays short (issue 13: <= 40 lines for this demo)
    for test in {c.partition("[")[0] for c in regressed}:
        assert f"  {test}" in result.stdout, test
    assert len(result.stdout.splitlines()) <= 40, result.stdout
    suite = ET.parse(out / "junit.xml").getroot()
    failures = sum(int(s.get("failures", 0)) for s in suite.iter("testsuite"))
    assert failures == len(regressed)
    assert "REGRESSED" in (out / "report.html").read_text()


def test_compare_recomputes_the_verdict_from_run_directories(
    regression: tuple[CliResult, Path], tmp_path: Path
) -> None:
    _, out = regression
    runs = out / "runs"
    result = run_cli(
        "compare",
        "--baseline", str(runs / "baseline-1"),
        "--baseline", str(runs / "baseline-2"),
        "--candidate", str(runs / "candidate-1"),
        "--out", str(tmp_path),
    )  # fmt: skip
    assert result.code == 1
    again = json.loads((tmp_path / "comparison.json").read_text())
    before = json.loads((out / "comparison.json").read_text())
    assert again["verdict"] == before["verdict"]
    assert [c["status"] for c in again["cases"]] == [c["status"] for c in before["cases"]]


def test_compare_quiet_says_only_the_verdict_and_json_only_a_document(regression: tuple[CliResult, Path]) -> None:
    _, out = regression
    runs = out / "runs"
    given = ("--baseline", str(runs / "baseline-1"), "--baseline", str(runs / "baseline-2"))
    given += ("--candidate", str(runs / "candidate-1"))
    quiet = run_cli("compare", *given, "--out", str(out / "quiet"), "--quiet")
    assert (quiet.code, quiet.stdout) == (1, "VERDICT: REGRESSED (exit 1)\n"), quiet.stderr
    said = run_cli("compare", *given, "--out", str(out / "json"), "--json")
    assert said.code == 1, said.stderr
    document = json.loads(said.stdout)  # the whole of stdout is the one document
    comparison = json.loads((out / "json" / "comparison.json").read_text())
    assert document["verdict"] == "REGRESSED" and document["exit_code"] == 1
    assert document["regressed"] == [c["case"] for c in comparison["cases"] if c["status"] == "regressed"]
    assert (
        document["cases"]["total"]
        == len(comparison["cases"])
        == sum(n for status, n in document["cases"].items() if status != "total")
    )
    assert document["reports"]["html"] == str(out / "json" / "report.html")


def test_force_replaces_a_previous_validation_and_nothing_else(demo: tuple[CliResult, Path], tmp_path: Path) -> None:
    _, first = demo
    out = tmp_path / "out"
    shutil.copytree(first, out)
    before = json.loads((out / "runs" / "candidate-1" / "manifest.json").read_text())["run_id"]
    refused = run_cli("validate", "--demo", "--out", str(out))
    _assert_one_line_error(refused, "already holds a validation", "--force replaces it")
    (out / "notes.txt").write_text("someone's work\n")
    foreign = run_cli("validate", "--demo", "--force", "--out", str(out))
    _assert_one_line_error(foreign, "holds more than a validation's outputs (notes.txt)", "nothing was removed")
    assert (out / "notes.txt").exists() and (out / "runs" / "candidate-1" / "manifest.json").exists()
    (out / "notes.txt").unlink()
    replaced = run_cli("validate", "--demo", "--force", "--quiet", "--out", str(out))
    assert (replaced.code, replaced.stdout) == (0, "VERDICT: UNCHANGED (exit 0)\n"), replaced.stderr
    assert "running:" not in replaced.stderr  # --quiet: no progress either
    after = json.loads((out / "runs" / "candidate-1" / "manifest.json").read_text())["run_id"]
    assert after != before


def _pdf_pages(report: Path, tmp_path: Path) -> int:
    """report.html printed by headless Chromium (A4 or Letter, its default), counted in pages."""
    chromium = require_tool("chromium", "apt-get install -y chromium")
    pdf = tmp_path / f"{report.parent.name}.pdf"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    flags += ["--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}"]
    done = subprocess.run(
        [chromium, *flags, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", report.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and pdf.is_file(), done.stderr[-2000:]
    return len(re.findall(rb"/Type\s*/Page(?![a-z])", pdf.read_bytes()))


def test_the_demo_reports_print_short(
    demo: tuple[CliResult, Path], regression: tuple[CliResult, Path], tmp_path: Path
) -> None:
    """Issue 13: the clean demo prints in at most 4 pages, the regression demo in at most 10 (it was 34)."""
    assert _pdf_pages(demo[1] / "report.html", tmp_path) <= 4
    assert _pdf_pages(regression[1] / "report.html", tmp_path) <= 10


def test_python_dash_m_harness_is_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, f"patchgate {__version__}")


def test_corrupted_observation_line(demo: tuple[CliResult, Path], tmp_path: Path) -> None:
    _, out = demo
    runs = tmp_path / "runs"
    shutil.copytree(out / "runs", runs)
    path = RunDir(runs / "candidate-1").observations
    lines = path.read_text().splitlines()
    lines[3] = lines[3][:40]
    path.write_text("\n".join(lines) + "\n")
    result = run_cli(
        "compare", "--baseline", str(runs / "baseline-1"), "--candidate", str(runs / "candidate-1"),
        "--out", str(tmp_path / "cmp"),
    )  # fmt: skip
    _assert_one_line_error(result, "observations.jsonl:4: corrupted observation line")


def test_missing_run_directory(tmp_path: Path) -> None:
    result = run_cli(
        "compare", "--baseline", str(tmp_path / "nope"), "--candidate", str(tmp_path / "nope2"),
        "--out", str(tmp_path / "cmp"),
    )  # fmt: skip
    _assert_one_line_error(result, "nope: run directory not found")


@pytest.mark.parametrize(
    ("replace", "below", "fragment"),
    [
        (("start_timeout = 20", "start_timeout = 20\nretries = 3"), 1, "device.retries: unknown key"),
        (("start_timeout = 20", 'start_timeout = "soon"'), 0, "device.start_timeout: expected int or float"),
    ],
)
def test_bad_profile(tmp_path: Path, replace: tuple[str, str], below: int, fragment: str) -> None:
    """The error names the file and the line of the bad key: `below` lines under the replaced one."""
    text = (ROOT / "devices" / "reference" / "profile.toml").read_text()
    line = text.splitlines().index(replace[0]) + 1 + below
    profile = tmp_path / "profile.toml"
    profile.write_text(text.replace(*replace))
    result = run_cli("validate", "--profile", str(profile), "--out", str(tmp_path / "out"))
    _assert_one_line_error(result, f"{profile}:{line}: {fragment}")


def test_device_that_never_answers(tmp_path: Path) -> None:
    profile = tmp_path / "silent.toml"
    profile.write_text(
        textwrap.dedent(
            """\
            [device]
            name = "silent"
            ae_title = "SILENT"
            start_timeout = 2

            [variants.baseline]
            command = ["{python}", "-c", "import time; print('booting', flush=True); time.sleep(30)"]

            [variants.candidate]
            command = ["{python}", "-c", "import time; time.sleep(30)"]
            """
        )
    )
    result = run_cli("validate", "--profile", str(profile), "--out", str(tmp_path / "out"), timeout=60)
    _assert_one_line_error(result, "INCONCLUSIVE", "did not answer C-ECHO", "within 2 s")
    comparison = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert comparison["verdict"] == "INCONCLUSIVE"
    log = (tmp_path / "out" / "runs" / "baseline-1" / "logs" / "device.log").read_text()
    assert "booting" in log


def test_device_that_exits_at_start(tmp_path: Path) -> None:
    profile = tmp_path / "crash.toml"
    profile.write_text(
        textwrap.dedent(
            """\
            [device]
            name = "crash"
            ae_title = "CRASH"

            [variants.baseline]
            command = ["{python}", "-c", "import sys; print('licence expired', file=sys.stderr); sys.exit(3)"]

            [variants.candidate]
            command = ["{python}", "-c", "import sys; sys.exit(3)"]
            """
        )
    )
    result = run_cli("run", "--profile", str(profile), "--variant", "baseline", "--out", str(tmp_path / "run"))
    _assert_one_line_error(result, "exited with code 3 before answering C-ECHO")
