"""Build hook: the wheel carries devices/ (profiles, configurations, Dockerfiles), pyproject.toml and README.md."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))  # harness.shipped needs only the standard library
from harness.shipped import COMMIT_FILE, git_commit  # noqa: E402


class BuildPyWithDevices(build_py):  # type: ignore[misc]
    """build_py, then devices/ and the project files copied into the build as harness/bundled (harness.shipped
    reads them there outside a checkout: the bundled profiles, `patchgate images build`). Links are followed:
    the reference device's profile is a link to harness/data's."""

    def run(self) -> None:
        super().run()
        bundled = Path(self.build_lib) / "harness" / "bundled"
        shutil.rmtree(bundled, ignore_errors=True)
        shutil.copytree(_HERE / "devices", bundled / "devices", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(_HERE / name, bundled / name)
        commit = git_commit(_HERE)
        if commit:  # harness.shipped.source_commit reads it; a build outside git records nothing
            (bundled / COMMIT_FILE).write_text(commit + "\n", encoding="utf-8")


setup(cmdclass={"build_py": BuildPyWithDevices})
