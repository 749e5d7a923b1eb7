"""examples/ci run for real: the GitHub Actions workflow's `run:` steps and the GitLab job's script, in order, here.

Each runs in a folder of its own (the user's repository) with patchgate installed from its wheel in a fresh venv,
on this machine's Docker engine, with PROFILE set to the reference device's profile; what the upload steps and
artifacts name must exist afterwards. A step the runner cannot do here (a GitHub action) is named, never run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.images import source_digest
from tests.conftest import ROOT
from tests.wheel import build_wheel, install

EXAMPLES = ROOT / "examples" / "ci"
# The GitHub actions the workflow may use: the runner's own plumbing (checkout, Python, cache, artifacts).
ACTIONS = ("actions/checkout", "actions/setup-python", "actions/cache", "actions/upload-artifact")
STEP_TIMEOUT = 900.0


@dataclass(frozen=True)
class Step:
    name: str
    script: str
    always: bool  # runs after a failed step too (GitHub `if: always()`, GitLab after_script)


@dataclass
class Ran:
    codes: dict[str, int]
    log: str


@pytest.fixture(scope="module")
def patchgate_bin(tmp_path_factory: pytest.TempPathFactory, images: dict[str, str]) -> Path:
    """A venv with the wheel installed; the images the checkout built are current for it (the same sources)."""
    tmp = tmp_path_factory.mktemp("ci-wheel")
    wheel = build_wheel(tmp)
    bin_dir = install(tmp / "venv", f"{wheel}[docker]")
    script = (
        "import pathlib, tempfile; from harness import images; d = pathlib.Path(tempfile.mkdtemp()) / 't'; "
        "print(images.source_digest(images._source_tree(images._ROOT, d)))"
    )
    theirs = subprocess.run([str(bin_dir / "python"), "-c", script], capture_output=True, text=True, timeout=120)
    # Else `patchgate images build` in the steps would rebuild the simulators image from other sources.
    assert theirs.stdout.strip() == source_digest(), theirs.stderr
    return bin_dir


def _env(bin_dir: Path, variables: dict[str, Any], workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update({k: str(v) for k, v in variables.items()})
    env["PATH"] = f"{bin_dir}:{env.get('PATH', '')}"
    env["PROFILE"] = str(ROOT / "devices" / "reference" / "profile.toml")  # embedded: the steps, not a device
    env["PATCHGATE"] = f"{next(bin_dir.parent.parent.glob('dist/*.whl'))}[docker]"
    env["HOME"] = str(workdir)
    return env


def _run(steps: list[Step], env: dict[str, str], workdir: Path) -> Ran:
    codes: dict[str, int] = {}
    log: list[str] = []
    failed = False
    for step in steps:
        if failed and not step.always:
            continue
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step.script],
            cwd=workdir, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False,
        )  # fmt: skip
        codes[step.name] = done.returncode
        log.append(f"--- {step.name}: exit {done.returncode}\n{done.stdout[-1500:]}{done.stderr[-3000:]}")
        failed = failed or done.returncode != 0
    return Ran(codes, "\n".join(log))


def _check_outputs(workdir: Path, out: str) -> None:
    assert json.loads((workdir / out / "comparison.json").read_text())["verdict"] == "UNCHANGED"
    with tarfile.open(workdir / "patchgate-evidence.tar.gz") as pack:
        assert any(name.endswith("evidence.json") for name in pack.getnames())


def test_github_actions_workflow_steps_pass_here(patchgate_bin: Path, tmp_path: Path) -> None:
    workflow = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())
    (job,) = workflow["jobs"].values()
    steps: list[Step] = []
    uploads: list[str] = []
    for n, step in enumerate(job["steps"], start=1):
        if "uses" in step:
            action = step["uses"].split("@")[0]
            assert action in ACTIONS, f"step {n}: {action} is not one this test knows what to do without"
            if action == "actions/upload-artifact":
                uploads += [p.strip() for p in step["with"]["path"].splitlines() if p.strip()]
            continue
        always = str(step.get("if", "")).strip() == "always()"
        steps.append(Step(step.get("name", f"step {n}"), step["run"], always))
    env = _env(patchgate_bin, workflow["env"], tmp_path)
    ran = _run(steps, env, tmp_path)
    assert set(ran.codes.values()) == {0} and len(ran.codes) == len(steps), ran.log
    out = env["OUT"]
    for path in uploads:
        resolved = re.sub(r"\$\{\{\s*env\.(\w+)\s*\}\}", lambda m: env[m.group(1)], path)
        assert (tmp_path / resolved).exists(), f"upload-artifact names {path}, which the steps did not make"
    _check_outputs(tmp_path, out)


def test_gitlab_ci_job_script_passes_here(patchgate_bin: Path, tmp_path: Path) -> None:
    config = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())
    job = config["patchgate"]
    # GitLab runs the script in one shell (the first failing line ends it), after_script in another, always.
    steps = [
        Step("script", "\n".join(job["script"]), False),
        Step("after_script", "\n".join(job["after_script"]), True),
    ]
    env = _env(patchgate_bin, config["variables"], tmp_path)
    ran = _run(steps, env, tmp_path)
    assert ran.codes == {"script": 0, "after_script": 0}, ran.log
    artifacts = [*job["artifacts"]["paths"], job["artifacts"]["reports"]["junit"]]
    for path in artifacts:
        resolved = path.replace("$OUT", env["OUT"])
        assert (tmp_path / resolved).exists(), f"artifacts name {path}, which the job did not make"
    _check_outputs(tmp_path, env["OUT"])
