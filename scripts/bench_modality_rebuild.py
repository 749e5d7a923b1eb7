"""The reference modality's clean rebuild validated N times in a row: every verdict must be UNCHANGED (issue 11).

Each attempt is `patchgate validate --profile devices/reference-modality/profile.toml --out DIR` in a
fresh process (two baseline replicas and the clean-rebuild candidate, no Docker), bounded by a
timeout. Prints a markdown table of the verdicts, exit codes, workflow cases compared and wall
times, then the median and the slowest; exits 1 if any attempt was not UNCHANGED.

    python scripts/bench_modality_rebuild.py [--attempts 10] [--timeout 300] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "devices" / "reference-modality" / "profile.toml"


@dataclass(frozen=True)
class Attempt:
    number: int
    verdict: str  # from comparison.json; "none" when the validation wrote none (timeout, crash)
    exit_code: int | None  # None: killed at the timeout
    workflow: str  # "unchanged/compared" workflow cases, e.g. "7/7"
    seconds: float


def run_once(number: int, out: Path, timeout: float) -> Attempt:
    """One validation in a fresh process; its verdict and wall time."""
    cmd = [sys.executable, "-m", "harness.cli", "validate", "--profile", str(PROFILE), "--out", str(out)]
    started = time.monotonic()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)
        code: int | None = done.returncode
    except subprocess.TimeoutExpired:
        code = None
    seconds = time.monotonic() - started
    verdict, workflow = "none", "0/0"
    comparison = out / "comparison.json"
    if comparison.exists():
        data = json.loads(comparison.read_text(encoding="utf-8"))
        verdict = str(data["verdict"])
        cases = [c for c in data["cases"] if str(c["case"]).startswith("workflow/") and c["status"] != "not_applicable"]
        workflow = f"{sum(1 for c in cases if c['status'] == 'unchanged')}/{len(cases)}"
    return Attempt(number, verdict, code, workflow, seconds)


def render(attempts: Sequence[Attempt]) -> str:
    """The markdown table and its summary lines."""
    lines = [
        f"Reference modality, clean -> clean-rebuild, {len(attempts)} validations in a row "
        f"({datetime.date.today().isoformat()}, {platform.node() or 'host'}, {os.cpu_count()} CPUs, "
        f"`python scripts/bench_modality_rebuild.py --attempts {len(attempts)}`):",
        "",
        "| attempt | verdict | exit | workflow cases unchanged | wall time (s) |",
        "|---:|---|---:|---:|---:|",
    ]
    for a in attempts:
        code = "killed" if a.exit_code is None else str(a.exit_code)
        lines.append(f"| {a.number} | {a.verdict} | {code} | {a.workflow} | {a.seconds:.1f} |")
    times = [a.seconds for a in attempts]
    unchanged = sum(1 for a in attempts if a.verdict == "UNCHANGED" and a.exit_code == 0)
    lines += [
        "",
        f"UNCHANGED {unchanged} of {len(attempts)}; wall time median {statistics.median(times):.1f} s, "
        f"slowest {max(times):.1f} s.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=10, help="validations in a row (default 10)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one validation may take (default 300)")
    parser.add_argument("--keep", type=Path, help="keep each attempt's output folder under DIR (default: discarded)")
    args = parser.parse_args(argv)
    if args.attempts < 1 or args.timeout <= 0:
        parser.error("--attempts must be at least 1 and --timeout positive")
    attempts: list[Attempt] = []
    with tempfile.TemporaryDirectory(prefix="bench-modality-") as scratch:
        base = args.keep or Path(scratch)
        for n in range(1, args.attempts + 1):
            attempt = run_once(n, base / f"attempt-{n}", args.timeout)
            print(f"attempt {n}: {attempt.verdict} in {attempt.seconds:.1f} s", file=sys.stderr, flush=True)
            attempts.append(attempt)
    print(render(attempts))
    return 0 if all(a.verdict == "UNCHANGED" and a.exit_code == 0 for a in attempts) else 1


if __name__ == "__main__":
    sys.exit(main())
