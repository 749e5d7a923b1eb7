"""Our own Python processes keep compiled modules in the user's cache, never in the source tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.launch.process import _with_bytecode_cache


def test_our_interpreter_gets_a_cache_outside_the_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    env = _with_bytecode_cache([sys.executable, "-m", "pytest"], {"PYTHONDONTWRITEBYTECODE": "1", "A": "b"})
    assert env == {
        "A": "b",
        "PYTHONDONTWRITEBYTECODE": "",
        "PYTHONPYCACHEPREFIX": str(tmp_path / "cache" / "patchgate" / "pycache"),
    }
    # Really used: a module imported under it is compiled there, and nothing is written next to its source.
    source = tmp_path / "src"
    source.mkdir()
    (source / "cached_module.py").write_text("VALUE = 1\n")
    subprocess.run([sys.executable, "-c", "import cached_module"], env=env, cwd=source, check=True, timeout=60)
    assert list((tmp_path / "cache").rglob("cached_module.*.pyc"))
    assert not (source / "__pycache__").exists()


def test_other_commands_and_a_callers_prefix_are_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    given = {"PYTHONDONTWRITEBYTECODE": "1"}
    assert _with_bytecode_cache(["/usr/bin/dcmqrscp", "-c", "x.cfg"], given) == given
    assert _with_bytecode_cache(["python3", "-m", "x"], given) == given  # not this interpreter: a device's own
    mine = {"PYTHONPYCACHEPREFIX": "/elsewhere", "PYTHONDONTWRITEBYTECODE": "1"}
    assert _with_bytecode_cache([sys.executable], mine) == mine


def test_no_writable_cache_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the cache folder would go: it cannot be made
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    given = {"PYTHONDONTWRITEBYTECODE": "1"}
    assert _with_bytecode_cache([sys.executable], given) == given
