"""Where a command's CPU goes: its process tree sampled from /proc, CPU seconds summed by kind of process.

For the demo's speed (issue 12): a validation on 2 cores is CPU-bound, so the question is which
processes spend it. Every 0.1 s the descendants of the command are read from /proc (user + system
time, command line); a process's last reading is its CPU. Kinds: the suites (pytest), the device,
the simulators, the harness itself; anything else by its command. A process shorter than one
sample is missed, so the total is a lower bound.

    python scripts/cpu_split.py .venv/bin/patchgate validate --demo --out /tmp/cpu-demo
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

__all__ = ["kind", "main"]

POLL = 0.1
_TICK = os.sysconf("SC_CLK_TCK")
# Command-line fragments, first match wins: the suites, the device under test, the simulators, the harness.
_KINDS = (
    ("pytest", "suites (pytest)"),
    ("simulators.reference", "reference device"),
    ("simulators.pacs", "PACS simulator"),
    ("simulators.audit", "audit repository"),
    ("simulators.ris", "RIS simulator"),
    ("patchgate", "harness"),
)


def kind(argv: list[str]) -> str:
    line = " ".join(argv)
    return next((name for fragment, name in _KINDS if fragment in line), line[:60] or "?")


def _read(pid: str) -> tuple[str, str, float, list[str]] | None:
    """(parent pid, start time, CPU seconds, argv) of a live process, or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    return fields[1], fields[19], (int(fields[11]) + int(fields[12])) / _TICK, [a for a in argv if a]


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    started = time.monotonic()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ours = {str(child.pid)}
    seen: dict[tuple[str, str], tuple[str, float]] = {}  # (pid, start) -> kind, CPU so far
    while child.poll() is None:
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            read = _read(pid)
            if read is None:
                continue
            parent, start, cpu, args = read
            if pid not in ours and parent not in ours:
                continue
            ours.add(pid)
            named, _ = seen.get((pid, start), ("", 0.0))
            # A forked child shows its parent's command line until it execs: keep the first real name.
            if not named or (args and named == "harness" and kind(args) != "harness"):
                named = kind(args) if args else named
            seen[(pid, start)] = (named, cpu)
        time.sleep(POLL)
    wall = time.monotonic() - started
    total: dict[str, float] = {}
    count: Counter[str] = Counter()
    for named, cpu in seen.values():
        total[named] = total.get(named, 0.0) + cpu
        count[named] += 1
    print(f"exit {child.returncode}, wall {wall:.1f} s, CPU {sum(total.values()):.1f} s (sampled every {POLL} s)")
    for named, cpu in sorted(total.items(), key=lambda kv: -kv[1]):
        print(f"  {cpu:6.2f} s  {count[named]:3d} process(es)  {named}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
