"""`--patchgate-allure`: the files allure-pytest's `--alluredir` writes, written by a helper; a failed writer exits 3."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SUITE = """
import logging
import pytest


@pytest.fixture(scope="module")
def shared():
    yield 1


@pytest.mark.parametrize("n", [1, 2, 3])
def test_passes(shared, n):
    logging.getLogger("suite").warning("case %s", n)
    print("out", n)


def test_fails(shared):
    assert 1 == 2, "one is not two"


def test_skips():
    pytest.skip("not here")
"""

KILL = """
def kill(config):
    process = config.pluginmanager.get_plugin("patchgate-allure-closer").stream._process
    process.kill()
    process.wait(timeout=10)
"""
DURING_A_CASE = (
    KILL
    + """

def test_the_writer_dies(request):
    kill(request.config)


def test_after():
    pass
"""
)
AFTER_THE_LAST_CASE = (
    KILL
    + """

def pytest_sessionfinish(session):  # before the stream is closed: every file was handed over already
    kill(session.config)
"""
)

_VOLATILE = {"uuid", "start", "stop", "historyId", "testCaseId", "children", "befores", "afters", "attachments"}


def _pytest(suite: Path, *options: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir", str(suite.parent)]
    return subprocess.run([*argv, *options, str(suite)], capture_output=True, text=True, timeout=120, check=False)


def _shape(folder: Path) -> list[Any]:
    """Every file's kind and content, without what differs from one writing to the next (ids, times)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in sorted(value.items()) if k not in _VOLATILE}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    shapes = []
    for path in folder.iterdir():
        kind = path.name.split("-", 5)[-1]
        body = json.loads(path.read_bytes()) if path.suffix == ".json" else path.read_text(encoding="utf-8")
        said = json.dumps(strip(body), sort_keys=True)
        shapes.append((kind, re.sub(r'"\d+-MainThread"', '"PID-MainThread"', said)))  # the thread label names the pid
    return sorted(shapes)


def test_the_streamed_results_are_what_alluredir_writes(tmp_path: Path) -> None:
    suite = tmp_path / "suite" / "test_sample.py"
    suite.parent.mkdir()
    suite.write_text(SUITE, encoding="utf-8")
    theirs = _pytest(suite, "--alluredir", str(tmp_path / "theirs"))
    ours = _pytest(suite, "--patchgate-allure", str(tmp_path / "ours"))
    assert theirs.returncode == ours.returncode == 1, ours.stdout + ours.stderr
    expected = _shape(tmp_path / "theirs")
    assert len(expected) >= 10 and any(kind.endswith("attachment.txt") for kind, _ in expected)
    assert _shape(tmp_path / "ours") == expected
    assert not list((tmp_path / "ours").glob("*.tmp"))


@pytest.mark.parametrize("where", ["during a case", "after the last case"])
def test_a_writer_that_dies_is_an_internal_error_naming_the_folder(tmp_path: Path, where: str) -> None:
    suite = tmp_path / "suite" / "test_killer.py"
    suite.parent.mkdir()
    if where == "during a case":
        suite.write_text(DURING_A_CASE, encoding="utf-8")
    else:
        (suite.parent / "conftest.py").write_text(AFTER_THE_LAST_CASE, encoding="utf-8")
        suite.write_text("def test_passes():\n    pass\n", encoding="utf-8")
    folder = tmp_path / "results"
    done = _pytest(suite, "--patchgate-allure", str(folder))
    said = done.stdout + done.stderr
    assert done.returncode == 3, said  # pytest's internal error: never 1, which reads as failed cases
    assert f"{folder}: the files were not written (exit -9)" in said, said


def test_alluredir_beside_it_is_refused_before_any_case_runs(tmp_path: Path) -> None:
    suite = tmp_path / "suite" / "test_sample.py"
    suite.parent.mkdir()
    suite.write_text("def test_passes():\n    pass\n", encoding="utf-8")
    done = _pytest(suite, "--patchgate-allure", str(tmp_path / "ours"), "--alluredir", str(tmp_path / "theirs"))
    said = done.stdout + done.stderr
    assert done.returncode == 4, said  # pytest's usage error
    assert "--patchgate-allure and --alluredir: give one" in said, said
    assert not (tmp_path / "ours").exists() or not any((tmp_path / "ours").iterdir())
