"""docs/api.md's example, run as written: the reference device validated UNCHANGED, a regressing patch run and compared."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

GUIDE = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")


def test_the_guide_example_runs_and_prints_what_its_comments_say(tmp_path: Path) -> None:
    (example,) = re.findall(r"```python\n(# example\.py\n.*?)```", GUIDE, flags=re.S)
    script = tmp_path / "example.py"
    script.write_text(example, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[:3] == ["UNCHANGED 0", "['allure', 'evidence', 'html', 'json', 'junit']", "REGRESSED"], done.stdout
    *cases, error = lines[3:]
    assert 1 <= len(cases) <= 3, done.stdout
    for line in cases:  # a case id, a difference path, its kind, regressed
        case, path, kind, classification = line.rsplit(" ", 3)
        assert "::" in case and path and (kind.endswith("_changed") or kind in ("missing", "extra")), line
        assert classification == "regressed", line
    assert error.endswith("/missing.toml: profile not found (hint: pass --profile PATH to a device profile TOML)"), (
        error
    )
