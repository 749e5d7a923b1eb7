"""scripts/_timed.py: the benchmarks' timed process counts the CPU of what it waited for, and ends at its timeout."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from _timed import TIMED_OUT, timed  # noqa: E402

# A child that burns 0.3 s of CPU in a grandchild it waits for, then exits 3.
_TREE = (
    "import subprocess, sys;"
    "subprocess.run([sys.executable, '-c', "
    "'import time\\nwhile time.process_time() < 0.3: pass'], check=True);"
    "sys.exit(3)"
)


def test_a_run_counts_the_cpu_of_the_children_it_waited_for(tmp_path: Path) -> None:
    run = timed([sys.executable, "-c", _TREE], tmp_path, timeout=60.0)
    assert run.exit_code == 3
    assert run.cpu >= 0.3  # the grandchild's own process_time, whatever the parent spent besides
    assert run.seconds >= 0.3 and run.peak_mib > 1.0


def test_a_run_past_its_timeout_is_killed_and_said_so(tmp_path: Path) -> None:
    run = timed([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path, timeout=0.5)
    assert run.exit_code == TIMED_OUT and run.seconds < 30.0
