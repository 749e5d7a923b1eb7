"""Benchmark of one run's suites against bare pynetdicom doing the same DIMSE operations, in interleaved rounds.

Each round: `patchgate run --profile devices/reference/profile.toml --variant baseline` (the
reference device `validate --demo` runs; one run) with PATCHGATE_TRACE=FILE, so the suites write
one line per DIMSE operation (simulators/modality.py `traced`); the suites' time is the run
manifest's `timings.suites`. Then `scripts/bare_dimse.py` replays that trace with one bare
pynetdicom AE against a fresh reference device (same variant, with a PACS simulator as the C-MOVE
destination and an audit repository, as in a run): its process from start to exit, as the manifest
times pytest's, and its DIMSE operations alone by its own clock. The headline is the ratio of the
medians. The trace also says where the suites' time goes: the
DIMSE operations per suite (the pytest case of each line) against the suite's junit time.

    python scripts/bench_suites.py [--rounds 3] [--markdown docs/benchmarks.md]

Exits 1 if the ratio misses its target, so a rerun can be scripted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pynetdicom
from _docs import rewrite_section  # scripts/ is on sys.path when a script runs
from _procs import serving

from simulators._net import LOOPBACK, free_port
from simulators._trace import TRACE_VAR

__all__ = ["BEGIN_MARKER", "END_MARKER", "Round", "main", "render_markdown"]

BEGIN_MARKER = "<!-- bench_suites:begin -->"
END_MARKER = "<!-- bench_suites:end -->"
TARGET = 1.3  # the issue: one run's suites within 1.3x a bare script doing the same DIMSE operations
ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "devices" / "reference" / "profile.toml"
_RUN_TIMEOUT = 600.0  # one run of the suites takes 10-30 s on a loaded 2-core machine
_REPLAY_TIMEOUT = 300.0
_STARTUP = 30.0


@dataclass
class Round:
    """One round: the run's suite time, the bare replay's, and what the trace and junit said."""

    suites: float
    bare: float  # the bare script's process, start to exit (as the suites' time is pytest's process)
    bare_dimse: float  # the replay's own clock: its DIMSE operations only
    lines: int
    replayed: int
    mismatches: int
    skipped: dict[str, int]
    skipped_seconds: float  # the traced time of operations the replay skipped (unmapped peers)
    traced: dict[str, float]  # op -> seconds inside the suites' traced operations
    bare_ops: dict[str, float]  # op -> seconds in the replay
    by_suite: dict[str, tuple[float, float, int]]  # suite -> (junit seconds, traced DIMSE seconds, operations)
    corpus_seconds: float
    session: float  # junit: pytest's session, from its start (after the process's imports) to its end
    cases: float  # junit: the sum of the cases' times (setup, call and teardown)
    slowest: list[tuple[str, float, float]]  # case, junit seconds, traced DIMSE seconds
    load: float = field(default_factory=lambda: os.getloadavg()[0])


# -- devices for the bare replay ------------------------------------------------------------


@contextlib.contextmanager
def fresh_device(
    scratch: Path, device_ae: str, variant: str, pacs_ae: str, modality_ae: str
) -> Iterator[tuple[int, int]]:
    """A reference device (and its PACS destination and audit repository), as a run starts them; yields its port
    and the port it sends storage commitment reports to on a new association (the replay listens there)."""
    python = sys.executable
    port, pacs, udp, reports = free_port(), free_port(), free_port(kind=socket.SOCK_DGRAM), free_port()
    commands = {
        "arr": [python, "-m", "simulators.audit.repository", "--udp-port", str(udp), "--out", str(scratch / "a.jsonl")],
        "pacs": [
            *(python, "-m", "simulators.pacs", "--ae-title", pacs_ae, "--host", LOOPBACK, "--port", str(pacs)),
            *("--storage", str(scratch / "pacs")),
        ],
        "device": [
            *(python, "-m", "simulators.reference", "--variant", variant, "--ae-title", device_ae),
            *("--host", LOOPBACK, "--port", str(port), "--storage", str(scratch / "device")),
            *("--destination", f"{pacs_ae}={LOOPBACK}:{pacs}", "--audit", f"udp://{LOOPBACK}:{udp}"),
            # Storage commitment reports to the modality: the replay's listener.
            *("--destination", f"{modality_ae}={LOOPBACK}:{reports}"),
            *("--known-peer", modality_ae, "--known-peer", pacs_ae, "--identity-secret", "patchgate-reference"),
        ],
    }
    with serving(commands, scratch, ROOT):
        for name, p in (("pacs", pacs), ("device", port)):
            _wait_listening(name, p, scratch)
        yield port, reports


def _wait_listening(name: str, port: int, scratch: Path) -> None:
    deadline = time.monotonic() + _STARTUP
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=1):
            return
        time.sleep(0.1)
    raise SystemExit(f"the {name} did not listen on port {port} within {_STARTUP:.0f} s; see {scratch / name}.log")


# -- one round ------------------------------------------------------------------------------


def _suite_of(case: str | None) -> str:
    """'suites/audit/test_events.py::test_x (call)' -> 'audit'; outside a case: '(none)'."""
    if not case:
        return "(none)"
    parts = case.split("::")[0].split("/")
    return parts[-2] if len(parts) > 1 else parts[0]


def _junit(junit: Path) -> tuple[float, dict[str, float], dict[str, float]]:
    """pytest's session seconds, and the seconds per suite and per case (module::name)."""
    root = ET.parse(junit).getroot()
    session = sum(float(s.get("time") or 0) for s in root.iter("testsuite"))
    by_suite: dict[str, float] = defaultdict(float)
    by_case: dict[str, float] = {}
    for case in root.iter("testcase"):
        classname, seconds = case.get("classname") or "?", float(case.get("time") or 0)
        by_suite[classname.split(".")[0]] += seconds
        by_case[f"{classname.split('.')[-1]}::{case.get('name')}"] = seconds
    return session, by_suite, by_case


def _case_key(case: str | None) -> str:
    """'audit/test_audit.py::test_events[store] (call)' -> 'test_audit::test_events[store]' (as junit names it)."""
    if not case:
        return "(none)"
    path, _, name = case.split(" ")[0].partition("::")
    return f"{Path(path).stem}::{name}"


def one_round(scratch: Path, n: int, profile: Path, variant: str, device_variant: str) -> Round:
    """The suites once (traced), then the bare replay of their trace against a fresh device."""
    run, trace = scratch / f"run-{n}", scratch / f"trace-{n}.jsonl"
    argv = [str(Path(sys.executable).parent / "patchgate"), "run", "--profile", str(profile), "--variant", variant]
    done = subprocess.run(
        [*argv, "--out", str(run)],
        env={**os.environ, TRACE_VAR: str(trace)},  # the process launcher passes its environment on to the suites
        capture_output=True,
        text=True,
        timeout=_RUN_TIMEOUT,
        check=False,
    )
    manifest_path = run / "manifest.json"
    if done.returncode != 0 or not manifest_path.is_file():
        raise SystemExit(f"patchgate run failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if not trace.is_file():
        raise SystemExit(f"{trace}: the suites wrote no trace; does {TRACE_VAR} reach the suites process?")
    endpoint, corpus = manifest["device_endpoint"], manifest["corpus"]
    lines = [json.loads(t) for t in trace.read_text(encoding="utf-8").splitlines()]
    suites_pid = Counter(line["pid"] for line in lines).most_common(1)[0][0]
    ours = [line for line in lines if line["pid"] == suites_pid]
    device_dir = scratch / f"bare-{n}"
    device_dir.mkdir()
    with fresh_device(device_dir, endpoint["ae_title"], device_variant, "PGPACS", "PGMODALITY") as (port, reports):
        t0 = time.perf_counter()
        replay = subprocess.run(
            [
                *(sys.executable, str(ROOT / "scripts" / "bare_dimse.py"), str(trace), "--json"),
                *("--peer", f"{endpoint['port']}={LOOPBACK}:{port}", "--pid", str(suites_pid)),
                *("--seed", str(corpus["seed"]), "--corpus-size", str(corpus["size"]), "--report-port", str(reports)),
            ],
            capture_output=True,
            text=True,
            timeout=_REPLAY_TIMEOUT,
            check=False,
            cwd=ROOT,
        )
        bare_wall = time.perf_counter() - t0
    if replay.returncode != 0:
        raise SystemExit(f"bare_dimse.py failed (exit {replay.returncode}):\n{replay.stderr[-3000:]}")
    bare = json.loads(replay.stdout)
    traced: dict[str, float] = defaultdict(float)
    dimse: dict[str, float] = defaultdict(float)
    count: Counter[str] = Counter()
    per_case: dict[str, float] = defaultdict(float)
    for line in ours:
        traced[line["op"]] += line.get("dur", 0.0)
        dimse[_suite_of(line.get("case"))] += line.get("dur", 0.0)
        count[_suite_of(line.get("case"))] += 1
        per_case[_case_key(line.get("case"))] += line.get("dur", 0.0)
    session, junit, by_case = _junit(run / "junit.xml")
    slowest = sorted(by_case.items(), key=lambda kv: -kv[1])[:10]
    skipped_ops = [x for x in ours if x["peer"]["port"] != endpoint["port"]]
    return Round(
        suites=float(manifest["timings"]["suites"]),
        bare=bare_wall,
        bare_dimse=float(bare["seconds"]),
        lines=len(ours),
        replayed=int(bare["replayed"]),
        mismatches=int(bare["mismatches"]),
        skipped=dict(bare["skipped"]),
        skipped_seconds=sum(x.get("dur", 0.0) for x in skipped_ops),
        traced=dict(traced),
        bare_ops=dict(bare["op_seconds"]),
        by_suite={s: (junit.get(s, 0.0), dimse.get(s, 0.0), count.get(s, 0)) for s in sorted(set(junit) | set(dimse))},
        corpus_seconds=float(bare["corpus_seconds"]),
        session=session,
        cases=sum(by_case.values()),
        slowest=[(case, seconds, per_case.get(case, 0.0)) for case, seconds in slowest],
    )


# -- report ---------------------------------------------------------------------------------


def render_markdown(rounds: list[Round], load: tuple[str, str]) -> str:
    """The section for docs/benchmarks.md: the ratio, the rounds, and where the suites' time goes."""
    suites = statistics.median(r.suites for r in rounds)
    bare = statistics.median(r.bare for r in rounds)
    ratio = suites / bare
    net = statistics.median(r.suites - r.skipped_seconds for r in rounds) / bare
    dimse = statistics.median(r.bare_dimse for r in rounds)
    audit = [r.by_suite.get("audit", (0.0, 0.0, 0)) for r in rounds]
    quiet = statistics.median(r.suites - r.skipped_seconds - (a[0] - a[1]) for r, a in zip(rounds, audit, strict=True))
    quiet /= bare
    met = "yes" if ratio <= TARGET else "no"
    last = rounds[-1]
    lines = [
        "## One run's suites against bare pynetdicom (`scripts/bench_suites.py`)",
        "",
        f"- **suites {suites:.2f} s, bare script {bare:.2f} s: {ratio:.2f}x** (medians, each a process from start "
        f"to exit; target {TARGET:.1f}x: {met})",
        f"- against the bare script's DIMSE operations alone ({dimse:.2f} s, without its start, imports and "
        f"making the corpus): {suites / dimse:.2f}x",
        f"- without the traced time of the operations the replay skips (other peers): {net:.2f}x; "
        f"without that and the audit suite's time outside DIMSE operations (its windows): {quiet:.2f}x",
        f"- status mismatches between the suites and the replay: {sum(r.mismatches for r in rounds)} "
        f"(of {sum(r.replayed for r in rounds)} replayed operations)",
        "",
        "| round | suites s | bare s | ratio | bare DIMSE s | traced ops | replayed | skipped | load (1 min) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for n, r in enumerate(rounds, start=1):
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(r.skipped.items())) or "-"
        lines.append(
            f"| {n} | {r.suites:.2f} | {r.bare:.2f} | {r.suites / r.bare:.2f} | {r.bare_dimse:.2f} | {r.lines} "
            f"| {r.replayed} "
            f"| {skipped} | {r.load:.2f} |"
        )
    lines += ["", "Per operation, last round: seconds inside the suites' traced calls against the replay's.", ""]
    lines += ["| operation | suites (traced) s | bare s |", "| --- | ---: | ---: |"]
    for op in sorted(set(last.traced) | set(last.bare_ops), key=lambda o: -last.traced.get(o, 0.0)):
        lines.append(f"| {op} | {last.traced.get(op, 0.0):.3f} | {last.bare_ops.get(op, 0.0):.3f} |")
    total_traced = sum(last.traced.values())
    lines += [
        f"| all | {total_traced:.3f} | {sum(last.bare_ops.values()):.3f} |",
        "",
        f"Where the suites' {last.suites:.2f} s went, last round: {last.suites - last.session:.2f} s before pytest's "
        f"session began (the process's start and imports) and after it ended; {last.session - last.cases:.2f} s "
        f"in the session outside any case (collection, session fixtures); {last.cases:.2f} s in the cases, of "
        f"which {total_traced:.2f} s inside traced DIMSE operations. The rest of a case: audit windows, "
        "negotiation, TLS and raw-socket associations (not traced: simulators/negotiation.py, the TLS probe and "
        "the robustness corpus make their own), making data sets, and recording observations. The corpus "
        f"itself takes {last.corpus_seconds:.2f} s to make (the replay's process).",
        "",
        "| suite | junit s | traced DIMSE s | traced ops | rest s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for suite, (junit, dimse, ops) in sorted(last.by_suite.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"| {suite} | {junit:.2f} | {dimse:.2f} | {ops} | {junit - dimse:.2f} |")
    lines += ["", "| slowest cases | junit s | traced DIMSE s |", "| --- | ---: | ---: |"]
    lines += [f"| {case} | {seconds:.2f} | {dimse:.2f} |" for case, seconds, dimse in last.slowest]
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines += [
        "",
        f"{len(rounds)} rounds, each `patchgate run --profile devices/reference/profile.toml --variant baseline` with "
        f"`{TRACE_VAR}=FILE` (the suites' time from the run manifest's `timings.suites`), then `scripts/bare_dimse.py` "
        "replaying that trace (one AE, TCP_NODELAY, the same associations, operations and order, the data sets made "
        "from the corpus before its DIMSE clock starts; the bare time is its process, start to exit) against a fresh `simulators.reference --variant clean` with a PACS "
        "simulator as C-MOVE destination and an audit repository. Storage commitment is replayed too (the same "
        "N-ACTION, the association kept open as traced, reports on a new association taken by a listener on the "
        "port the device sends them to); operations to other ports are not.",
        "",
        f"- machine: {os.cpu_count()} CPUs, {platform.system()} {platform.release()} {platform.machine()}, "
        f"Python {platform.python_version()}, pynetdicom {pynetdicom.__version__}",
        f"- load average (1 min) before / after: {load[0]} / {load[1]}",
        f"- date: {when}",
        "- command: `python scripts/bench_suites.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]) + "`",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path, default=PROFILE, help="the device profile to run")
    parser.add_argument("--variant", default="baseline", help="the profile's variant to run")
    parser.add_argument("--device-variant", default="clean", help="the reference variant the bare replay meets")
    parser.add_argument("--markdown", type=Path, help="rewrite this benchmark's section of this file")
    parser.add_argument("--keep", type=Path, help="keep the run directories and traces here")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not args.profile.is_file():
        parser.error(f"{args.profile}: no such profile")
    before = f"{os.getloadavg()[0]:.2f}"
    with contextlib.ExitStack() as stack:
        scratch = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-suites-")))
        scratch.mkdir(parents=True, exist_ok=True)
        rounds = []
        for n in range(1, args.rounds + 1):
            rounds.append(one_round(scratch, n, args.profile, args.variant, args.device_variant))
            r = rounds[-1]
            print(f"round {n}: suites {r.suites:.2f} s, bare {r.bare:.3f} s, load {r.load:.2f}", file=sys.stderr)
    section = render_markdown(rounds, (before, f"{os.getloadavg()[0]:.2f}"))
    print(section)
    if args.markdown:
        rewrite_section(args.markdown, BEGIN_MARKER, END_MARKER, section)
    ratio = statistics.median(r.suites for r in rounds) / statistics.median(r.bare for r in rounds)
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
