"""The README never lies: CI runs the test command the README gives, and the README's commands exist."""

from __future__ import annotations

import re

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def _shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README, flags=re.S)


def test_readme_has_exactly_the_two_setup_commands() -> None:
    blocks = [b.strip() for b in _shell_blocks()]
    assert len(blocks) == 2, blocks
    assert "patchgate validate --demo" in blocks[0]
    assert blocks[1] == "bash scripts/test.sh"


def test_ci_runs_the_readme_test_command() -> None:
    test_command = _shell_blocks()[1].strip()
    ci_lines = [line.strip() for line in CI.splitlines() if not line.strip().startswith("#")]
    assert test_command in ci_lines


def test_the_test_command_runs_every_tox_env() -> None:
    script = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    tox = (ROOT / "tox.ini").read_text(encoding="utf-8")
    envs = re.findall(r"^\[testenv:(\w+)\]", tox, flags=re.M)
    ran = re.search(r"tox run -e ([\w,]+)", script)
    assert ran is not None
    assert sorted(ran.group(1).split(",")) == sorted(envs)
