"""docs/suites.md's example suite, run for real: its profile validated on the reference device, its cases recorded."""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.model import Outcome, RunStatus, Security
from harness.rundir import read_run
from tests.conftest import ROOT, run_cli

GUIDE = (ROOT / "docs" / "suites.md").read_text(encoding="utf-8")


def _write_examples(folder: Path) -> set[str]:
    """Each TOML and Python block of the guide, at the path its first line names (`# my-suites/conftest.py`)."""
    written = set()
    for body in re.findall(r"```(?:toml|python)\n(.*?)```", GUIDE, flags=re.S):
        first = re.fullmatch(r"# (\S+\.(?:toml|py))", body.splitlines()[0])
        assert first, f"an example must start with `# PATH`: {body.splitlines()[0]!r}"
        path = folder / first[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
        written.add(first[1])
    return written


def test_the_guide_example_suite_runs_and_records_its_observations(tmp_path: Path) -> None:
    assert _write_examples(tmp_path) == {"my-archive.toml", "my-suites/conftest.py", "my-suites/test_archive.py"}
    out = tmp_path / "out"
    result = run_cli(
        "validate", "--profile", str(tmp_path / "my-archive.toml"), "--replicas", "1", "--out", str(out), "--json",
        timeout=240,
    )  # fmt: skip
    assert result.code == 0, result.stderr + result.stdout
    summary = json.loads(result.stdout)
    assert summary["verdict"] == "UNCHANGED" and summary["cases"]["total"] == 4, summary

    for run in ("baseline-1", "candidate-1"):
        cases = read_run(out / "runs" / run).by_case()
        assert set(cases) == {
            f"test_archive.py::test_{n}" for n in ("echo", "store_then_find", "unknown_caller", "worklist")
        }
        echo, stored = cases["test_archive.py::test_echo"], cases["test_archive.py::test_store_then_find"]
        assert echo.outcome is Outcome.PASSED and echo.observed()["echo"] == {
            "accepted": True, "error": "", "status": "0x0000"
        }  # fmt: skip
        observed = stored.observed()
        assert stored.outcome is Outcome.PASSED and set(observed) == {"store", "find"}
        assert [i["status"] for i in observed["store"]["instances"]] == ["0x0000"]
        assert observed["find"]["count"] == 1
        (admitted,) = cases["test_archive.py::test_unknown_caller"].observations
        assert (admitted.name, admitted.value, admitted.security) == (
            "unknown_caller.admitted",
            True,
            Security.EXPOSURE,
        )
        worklist = cases["test_archive.py::test_worklist"]
        assert worklist.outcome is Outcome.NOT_APPLICABLE and "does not declare 'mwl'" in worklist.message


def test_the_example_runs_beside_a_built_in_suite(tmp_path: Path) -> None:
    # The guide's conftest.py imports the built-in fixtures: with the built-in suites' own conftest.py loaded
    # too (a folder of them listed first), both folders' cases run.
    _write_examples(tmp_path)
    profile = tmp_path / "my-archive.toml"
    builtin = ROOT / "suites" / "verification"
    text = profile.read_text(encoding="utf-8").replace('paths = ["my-suites"]', f'paths = ["{builtin}", "my-suites"]')
    assert text != profile.read_text(encoding="utf-8")
    profile.write_text(text, encoding="utf-8")
    out = tmp_path / "run"
    result = run_cli("run", "--profile", str(profile), "--variant", "baseline", "--out", str(out), timeout=240)
    assert result.code == 0, result.stderr + result.stdout
    outcomes = {case: record.outcome for case, record in read_run(out).by_case().items()}
    assert outcomes["test_echo.py::test_echo"] is Outcome.PASSED  # suites/verification's own case
    assert outcomes["test_archive.py::test_echo"] is Outcome.PASSED
    assert len(outcomes) == 5


def test_a_suite_folder_that_breaks_pytest_ends_the_run_as_a_suite_error(tmp_path: Path) -> None:
    # What the guide warns against: `pytest_plugins` naming suites.conftest, which the built-in folder listed
    # first has loaded already. pytest stops with a traceback and exit code 1, as for failed cases: with no
    # case collected that is no run of the suites, and must not read "completed, 0 cases".
    _write_examples(tmp_path)
    (tmp_path / "my-suites" / "conftest.py").write_text('pytest_plugins = ["suites.conftest"]\n', encoding="utf-8")
    profile = tmp_path / "my-archive.toml"
    builtin = ROOT / "suites" / "verification"
    profile.write_text(
        profile.read_text(encoding="utf-8").replace('paths = ["my-suites"]', f'paths = ["{builtin}", "my-suites"]'),
        encoding="utf-8",
    )
    out = tmp_path / "run"
    result = run_cli("run", "--profile", str(profile), "--variant", "baseline", "--out", str(out), timeout=240)
    assert result.code == 2, result.stderr + result.stdout
    assert "run suite_error: pytest exited with code 1" in result.stderr, result.stderr
    assert "Plugin already registered" in result.stderr
    manifest = read_run(out).manifest
    assert manifest.status is RunStatus.SUITE_ERROR and manifest.cases_collected == 0
