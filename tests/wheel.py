"""The project's wheel built from a copy of the checkout, and a fresh venv with it installed (test_wheel, CI examples)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

__all__ = ["build_wheel", "install", "pip_wheel"]

# What the wheel is built from: the project's build inputs, nothing of the checkout's state (caches, out/, .venv).
_BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "harness", "simulators", "suites", "devices")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")


def _run(argv: list[str], what: str, timeout: float) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{what}: exit {done.returncode}: {done.stderr[-2000:]}"


def build_wheel(tmp: Path) -> Path:
    """patchgate-<version>-py3-none-any.whl, built by pip in `tmp` from a copy of the build inputs, committed to a
    git repository of its own (`tmp/src`) as a release checkout would be: the wheel records that commit."""
    source = tmp / "src"
    source.mkdir()
    for name in _BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=_IGNORE)
        else:
            shutil.copy2(ROOT / name, source / name)
    git = ["git", "-C", str(source), "-c", "user.name=patchgate tests", "-c", "user.email=tests@patchgate.invalid"]
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "--no-gpg-sign", "-m", "wheel source"]):
        _run([*git, *argv], f"git {argv[0]}", 60.0)
    return pip_wheel(source, tmp / "dist")


def pip_wheel(source: Path, into: Path) -> Path:
    """The wheel pip builds from the source tree `source`, into `into`."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "wheel", "--no-deps", "-w", str(into), str(source)], f"pip wheel {source}", 600.0)
    (wheel,) = into.glob("patchgate-*.whl")
    return wheel


def install(venv: Path, requirement: str) -> Path:
    """A fresh venv at `venv` with `requirement` (e.g. the wheel's path, with extras) installed; its bin/."""
    _run([sys.executable, "-m", "venv", str(venv)], "venv", 120.0)
    pip = [str(venv / "bin" / "pip"), "--disable-pip-version-check", "-q", "install", requirement]
    _run(pip, f"pip install {requirement}", 900.0)
    return venv / "bin"
