"""require_tool finds the system's tool, never a console script of the same name in the test environment."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import require_tool


def _tool(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_the_environments_own_script_does_not_shadow_the_system_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pynetdicom installs `storescp` into the environment's bin, which tox puts first on PATH
    env_bin, system_bin = tmp_path / "env" / "bin", tmp_path / "usr" / "bin"
    _tool(env_bin, "pgtool")
    system = _tool(system_bin, "pgtool")
    monkeypatch.setattr(sys, "executable", str(env_bin / "python"))
    monkeypatch.setenv("PATH", f"{env_bin}:{system_bin}")
    assert require_tool("pgtool", "apt-get install pgtool") == str(system)


def test_a_tool_only_the_environment_has_is_missing_and_fails_in_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_bin = tmp_path / "env" / "bin"
    _tool(env_bin, "pgtool")
    monkeypatch.setattr(sys, "executable", str(env_bin / "python"))
    monkeypatch.setenv("PATH", str(env_bin))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="pgtool not found: apt-get install pgtool"):
        require_tool("pgtool", "apt-get install pgtool")
