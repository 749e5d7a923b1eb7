"""Validation orchestrated: baseline replicas and the candidate run side by side, then compare, report, decide."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from harness.compare import compare
from harness.compare.engine import collector_paused
from harness.compare.normalise import read_normalised, shared_window
from harness.compare.performance import PerfSettings, StoppingRule
from harness.compare.policy import ExpectedChange, Policy, load_policy
from harness.evidence import Signer, load_signer, run_inputs, write_evidence
from harness.model import Comparison, Manifest, RunRecord
from harness.profile import ExpectedSlowdown, PerformanceSpec, Profile
from harness.report import write_reports
from harness.rundir import OutDir, RunDir

if (
    TYPE_CHECKING
):  # imported where used: `patchgate compare` runs nothing, and the runner pulls in pydicom and the simulators
    from harness.perf.conductor import Conductor, SoloConductor
    from harness.runner import RunRequest

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
    """Run records, *normalised* as they are read (harness.compare.normalise.read_normalised), the later runs
    sharing the first's equal values: what compare needs, in about a third of the memory of the raw records.

    Read with the garbage collector paused: acyclic trees it would rescan for nothing (reading 3 x 10,000
    cases took 4.1 s with it and 0.8 s without, docs/benchmarks.md), and left in the oldest generation, which
    the next young collection does not walk (it took 0.26 s at 10,000 cases to free nothing).
    """
    runs: list[RunRecord] = []
    folders = [RunDir(Path(d)) for d in directories]
    manifests = [folder.read_manifest() for folder in folders]
    window = shared_window(manifests)  # one for all: a time every run has is a token in all or in none
    with collector_paused(lasting=True):
        for folder, manifest in zip(folders, manifests, strict=True):
            like = runs[0] if runs else None
            runs.append(read_normalised(str(folder.path), manifest, folder.iter_cases(), like, window))
    return runs


def compare_runs(
    baselines: Sequence[RunRecord],
    candidate: RunRecord,
    policy: Policy,
    out: Path,
    *,
    report_templates: Path | None = None,
    allow_mixed: bool = False,
    signing_key: Path | Signer | None = None,
    ticket_url: str = "",
) -> Validation:
    """Compare run records, write every report under `out`, then the evidence pack signed with `signing_key`
    (a PEM file, a loaded key, or None: a key generated for this comparison); `allow_mixed`: see harness.compare.compare;
    `ticket_url`: the profile's `[report] ticket_url`."""
    signer = signing_key if isinstance(signing_key, Signer) else load_signer(signing_key)  # a bad key fails first
    comparison = compare(baselines, candidate, policy, allow_mixed=allow_mixed)
    runs = tuple(r.manifest for r in (*baselines, candidate))
    out.mkdir(parents=True, exist_ok=True)
    reports = write_reports(
        comparison, out, runs, templates=report_templates, fingerprint=signer.fingerprint, ticket_url=ticket_url
    )
    reports["evidence"] = write_evidence(out, signer, run_inputs([*baselines, candidate], policy, out))
    return Validation(comparison, reports, runs)


def run_validation(
    profile: Profile,
    out: Path,
    *,
    replicas: int = 2,
    concurrent: bool = True,
    policy_files: Sequence[Path] = (),
    progress: ProgressLine | None = None,
    report_templates: Path | None = None,
    replace_previous: bool = False,
    signing_key: Path | None = None,
) -> Validation:
    """Run `replicas` baselines and one candidate (concurrently unless told not to, or external: one after the
    other with its reset and apply hooks), compare, report, sign.

    `replace_previous`: remove a previous validation's outputs in `out` first (OutDir.clear), under the lock.
    """
    from harness.runner import RunRequest, cancel_token, check_variant, run_variant

    policy = policy_for(profile, policy_files)  # fail on a bad policy before spending minutes on runs
    signer = load_signer(signing_key)  # and on an unusable signing key
    for variant in ("baseline", "candidate"):  # and on a bad template of either variant
        check_variant(profile, variant)
    where = OutDir(out)
    date = time.strftime("%Y%m%d", time.gmtime())  # one worklist date for every run (RunRequest.worklist_date)
    requests = [
        RunRequest(profile, "baseline", "baseline", i, where.run(f"baseline-{i}").path, date)
        for i in range(1, replicas + 1)
    ]
    requests.append(RunRequest(profile, "candidate", "candidate", 1, where.run("candidate-1").path, date))
    if profile.external:
        # One box before and after the patch: its runs cannot overlap. Reset, baseline, reset, baseline, ..., then
        # apply (the patch) and the candidate. Reset before the first baseline too: a box left patched by an earlier
        # validation made baseline-1 a candidate, and the two baselines' spread hid the patch's change as noise.
        # Each hook runs inside the run it prepares: a failing one makes that run a harness failure (INCONCLUSIVE)
        # with the hook's output, never a difference.
        concurrent = False
        requests = [replace(r, hooks=("apply",) if r.role == "candidate" else ("reset",)) for r in requests]
    conductors = _conductors(profile, policy, requests, concurrent)
    requests = [replace(r, conductor=c) for r, c in zip(requests, conductors, strict=True)]
    token = cancel_token()  # a signal during any of these runs stops all of them, however late one starts
    try:
        with where.lock():  # a second validation into the same --out is refused at once, before it starts anything
            if replace_previous:
                where.clear()
            if concurrent:
                with ThreadPoolExecutor(max_workers=len(requests)) as pool:
                    list(pool.map(lambda r: run_variant(r, progress, token), requests))
            else:
                for request in requests:
                    run_variant(request, progress, token)
    finally:
        for conductor in dict.fromkeys(c for c in conductors if c is not None):
            conductor.close()  # any request still waiting gets its stop
    if progress:
        progress.done()
    records = read_runs([r.out for r in requests])
    return compare_runs(
        records[:-1], records[-1], policy, out, report_templates=report_templates, signing_key=signer,
        ticket_url=profile.ticket_url,
    )  # fmt: skip


def _conductors(
    profile: Profile, policy: Policy, requests: Sequence[RunRequest], concurrent: bool
) -> list[Conductor | None]:
    """The performance phase's turns per run: one validation-wide Conductor when the runs are concurrent (they take
    turns, round after round, and stop each metric by the statistics compare will use); else one SoloConductor per
    run with its share of the budget; None for every run when the phase is off."""
    from harness.perf.conductor import Conductor, weights_for
    from harness.runner import SLOT_TIMEOUT, perf_metrics

    metrics = perf_metrics(profile)
    if not metrics:
        return [None] * len(requests)
    spec = profile.performance
    weights = weights_for(metrics)
    if not concurrent:
        share = spec.budget / len(requests)
        return [_solo(r.label, spec, share, weights) for r in requests]
    decide = StoppingRule(PerfSettings.of(spec), policy, seed=profile.corpus_seed)
    conductor = Conductor(
        [r.label for r in requests], decide, budget=spec.budget, weights=weights,
        barrier_timeout=spec.barrier_timeout, slot_timeout=SLOT_TIMEOUT, min_rounds=spec.min_rounds,
        max_rounds=spec.max_rounds, warmup_rounds=spec.warmup_rounds,
    )  # fmt: skip
    return [conductor] * len(requests)


def _solo(label: str, spec: PerformanceSpec, budget: float, weights: Mapping[str, float]) -> SoloConductor:
    from harness.perf.conductor import SoloConductor
    from harness.runner import SLOT_TIMEOUT

    return SoloConductor(
        label, min_rounds=spec.min_rounds, max_rounds=spec.max_rounds, warmup_rounds=spec.warmup_rounds,
        budget=budget, weights=weights, slot_timeout=SLOT_TIMEOUT,
    )  # fmt: skip
