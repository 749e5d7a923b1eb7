"""Validation orchestrated: baseline replicas and the candidate run side by side, then compare, report, decide."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from harness.compare import compare
from harness.compare.engine import collector_paused
from harness.compare.policy import ExpectedChange, Policy, load_policy
from harness.model import Comparison, Manifest, RunRecord
from harness.profile import ExpectedSlowdown, Profile
from harness.report import write_reports
from harness.rundir import OutDir, read_run
from harness.runner import RunRequest, cancel_token, check_variant, run_variant

__all__ = ["ProgressLine", "Validation", "compare_runs", "policy_for", "read_runs", "run_validation"]


@dataclass(frozen=True)
class Validation:
    """What a validation produced: the comparison and the report files."""

    comparison: Comparison
    reports: dict[str, Path]
    runs: tuple[Manifest, ...]


class ProgressLine:
    """Live progress of concurrent runs: one rewritten line on a terminal, a line every few seconds in CI logs."""

    def __init__(self, stream: TextIO = sys.stderr, interval: float = 3.0) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.interval = interval
        self.state: dict[str, tuple[int, int]] = {}
        self.lock = threading.Lock()
        self.last = 0.0

    def __call__(self, label: str, done: int, total: int) -> None:
        with self.lock:
            if self.state.get(label) == (done, total):
                return
            self.state[label] = (done, total)
            now = time.monotonic()
            if not self.tty and now - self.last < self.interval:
                return
            self.last = now
            self._print()

    def _print(self) -> None:
        parts = [f"{label} {done}/{total or '?'}" for label, (done, total) in sorted(self.state.items())]
        line = "  running: " + "   ".join(parts)
        if self.tty:
            self.stream.write("\r" + line.ljust(100))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        with self.lock:
            if self.tty:
                self._print()
                self.stream.write("\n")
                self.stream.flush()


def policy_for(profile: Profile | None, extra: Sequence[Path] = ()) -> Policy:
    """The expected-change policy: the profile's [[expected]] and [[expected_slowdown]] entries, its policy
    files, and any extra files."""
    files = [load_policy(Path(f)) for f in (profile.policy_files if profile is not None else ())]
    files += [load_policy(f) for f in extra]
    entries: list[ExpectedChange] = list(profile.expected) if profile is not None else []
    slowdowns: list[ExpectedSlowdown] = list(profile.slowdowns) if profile is not None else []
    for policy in files:
        entries.extend(policy.entries)
        slowdowns.extend(policy.slowdowns)
    return Policy(tuple(entries), slowdowns=tuple(slowdowns))


def read_runs(directories: Sequence[str | Path]) -> list[RunRecord]:
    """Run records, read with the garbage collector paused: acyclic trees it would rescan for nothing
    (reading 3 x 10,000 cases took 4.1 s with it and 0.8 s without, docs/benchmarks.md)."""
    with collector_paused():
        return [read_run(d) for d in directories]


def compare_runs(
    baselines: Sequence[RunRecord],
    candidate: RunRecord,
    policy: Policy,
    out: Path,
    *,
    report_templates: Path | None = None,
    allow_mixed: bool = False,
) -> Validation:
    """Compare run records and write every report under `out`; `allow_mixed`: see harness.compare.compare."""
    comparison = compare(baselines, candidate, policy, allow_mixed=allow_mixed)
    runs = tuple(r.manifest for r in (*baselines, candidate))
    out.mkdir(parents=True, exist_ok=True)
    return Validation(comparison, write_reports(comparison, out, runs, templates=report_templates), runs)


def run_validation(
    profile: Profile,
    out: Path,
    *,
    replicas: int = 2,
    concurrent: bool = True,
    policy_files: Sequence[Path] = (),
    progress: ProgressLine | None = None,
    report_templates: Path | None = None,
) -> Validation:
    """Run `replicas` baselines and one candidate (concurrently unless told not to), compare, report."""
    policy = policy_for(profile, policy_files)  # fail on a bad policy before spending minutes on runs
    for variant in ("baseline", "candidate"):  # and on a bad template of either variant
        check_variant(profile, variant)
    where = OutDir(out)
    date = time.strftime("%Y%m%d", time.gmtime())  # one worklist date for every run (RunRequest.worklist_date)
    requests = [
        RunRequest(profile, "baseline", "baseline", i, where.run(f"baseline-{i}").path, date)
        for i in range(1, replicas + 1)
    ]
    requests.append(RunRequest(profile, "candidate", "candidate", 1, where.run("candidate-1").path, date))
    token = cancel_token()  # a signal during any of these runs stops all of them, however late one starts
    with where.lock():  # a second validation into the same --out is refused at once, before it starts anything
        if concurrent:
            with ThreadPoolExecutor(max_workers=len(requests)) as pool:
                list(pool.map(lambda r: run_variant(r, progress, token), requests))
        else:
            for request in requests:
                run_variant(request, progress, token)
    if progress:
        progress.done()
    records = read_runs([r.out for r in requests])
    return compare_runs(records[:-1], records[-1], policy, out, report_templates=report_templates)
