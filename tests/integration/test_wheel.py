"""The wheel on its own: installed into a fresh venv outside the checkout, it runs the demo and carries devices/."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.wheel import build_wheel, install, pip_wheel


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    cwd: Path  # outside the checkout

    def run(self, *argv: str, timeout: float = 240.0) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        return subprocess.run(
            [str(self.venv / "bin" / argv[0]), *argv[1:]],
            capture_output=True, text=True, timeout=timeout, cwd=self.cwd, env=env, check=False,
        )  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(tmp)
    venv = tmp / "venv"
    install(venv, str(wheel))
    cwd = tmp / "elsewhere"
    cwd.mkdir()
    return Installed(wheel, venv, cwd)


def test_the_wheel_carries_devices_and_the_dockerfiles(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for path in (
        "devices/orthanc/Dockerfile",
        "devices/dcmtk/Dockerfile",
        "devices/orthanc/security-update/Dockerfile",
    ):
        assert f"harness/bundled/{path}" in names, path
    assert "harness/bundled/devices/reference/profile.toml" in names  # a link in the checkout, a file in the wheel
    assert {"harness/bundled/pyproject.toml", "harness/bundled/README.md", "simulators/docker/Dockerfile"} <= names


def test_installed_outside_the_checkout_it_runs_the_demo(installed: Installed) -> None:
    done = installed.run("patchgate", "validate", "--demo", "--quiet", "--out", "out")
    assert (done.returncode, done.stdout) == (0, "VERDICT: UNCHANGED (exit 0)\n"), done.stderr[-3000:]
    # Each run records the commit the wheel was built from (its build's HEAD), and report.html says it.
    head = subprocess.run(
        ["git", "-C", str(installed.wheel.parent.parent / "src"), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    manifest = json.loads((installed.cwd / "out" / "runs" / "candidate-1" / "manifest.json").read_text())
    assert manifest["versions"]["patchgate commit"] == head
    assert f"commit {head}" in (installed.cwd / "out" / "report.html").read_text(encoding="utf-8")


def test_it_lists_the_bundled_profiles_and_each_loads(installed: Installed) -> None:
    done = installed.run("patchgate", "devices")
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    site = installed.venv / "lib"
    root = Path(header.split(" in ", 1)[1].split(" (", 1)[0])
    assert root.is_relative_to(site) and root.name == "devices", header
    listed = {row.split()[0] for row in rows}
    shipped = {p.relative_to(ROOT / "devices").as_posix() for p in (ROOT / "devices").rglob("*.toml")}
    assert {"orthanc/profile.toml", "dcmtk/profile.toml", "reference-modality/profile.toml"} <= listed
    assert listed <= shipped and not any(name.endswith("-policy.toml") for name in listed)
    # Each loads from the installed copy: the files it names came along.
    check = "import sys; from harness.profile import load_profile; [load_profile(p) for p in sys.argv[1:]]"
    loaded = installed.run("python", "-c", check, *(str(root / name) for name in sorted(listed)))
    assert loaded.returncode == 0, loaded.stderr[-3000:]


def test_images_build_has_a_source_tree_to_make_the_simulators_wheel_from(installed: Installed) -> None:
    """`patchgate images build` from a wheel install: the project wheel the simulators image installs is built
    from the installed packages and the bundled pyproject.toml (the Docker build itself: tests/docker)."""
    script = (
        "import sys, pathlib; from harness import images; "
        "tree = images._source_tree(images._ROOT, pathlib.Path(sys.argv[1])); "
        "print(images.simulators_image()); print(tree)"
    )
    into = installed.cwd / "tree"
    done = installed.run("python", "-c", script, str(into))
    assert done.returncode == 0, done.stderr[-3000:]
    image, tree = done.stdout.split()
    assert image == "patchgate/simulators:0.1.0" and Path(tree) == into
    assert not (into / "harness" / "bundled").exists()
    again = pip_wheel(into, installed.cwd / "again")
    code = {
        n for n in zipfile.ZipFile(installed.wheel).namelist() if not n.startswith(("harness/bundled/", "patchgate-"))
    }
    assert {n for n in zipfile.ZipFile(again).namelist() if not n.startswith("patchgate-")} == code
