"""Benchmark of `patchgate validate` wall time against real containerised devices, concurrent vs serial.

For each device (Orthanc 1.10, DCMTK dcmqrscp 3.6.7) one validation (2 baseline replicas and
1 candidate) runs with the runs concurrently and one with them one after the other (`--serial`),
interleaved in rounds with the order rotated each round. Measured: the wall time of the whole
validation, and the time from `validate` start to the first case recorded by any run (the first
progress report with a case done). The headline is the ratio of medians, concurrent / serial,
because absolute times on these machines swing from run to run. Each validation runs in a fresh
process, bounded by a timeout (then killed with all it started); after it the script checks the verdict is UNCHANGED (exit 0)
and that no container it started is left behind.

    python scripts/bench_validate.py [--rounds 3] [--devices orthanc,dcmtk] [--markdown docs/benchmarks.md]

Exits 1 if a validation failed a check or a device misses the target, so a rerun can be scripted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import multiprocessing
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from _docs import rewrite_section  # scripts/ is on sys.path when a script runs

from harness.images import build_all
from harness.launch.labels import LABEL_OWNER, LABEL_RUN
from harness.model import Verdict
from harness.profile import load_profile
from harness.validation import ProgressLine, run_validation

__all__ = [
    "BEGIN_MARKER",
    "DEVICES",
    "END_MARKER",
    "Measurement",
    "Row",
    "RunTiming",
    "build_parser",
    "main",
    "measure",
    "render_markdown",
    "summarise",
    "update_markdown",
]

BEGIN_MARKER = "<!-- bench_validate:begin -->"
END_MARKER = "<!-- bench_validate:end -->"
TARGET = 0.65  # the bar: concurrent wall time at most 0.65x serial
MODES = ("concurrent", "serial")
DEVICES: dict[str, str] = {
    "orthanc": "devices/orthanc/profile.toml",
    "dcmtk": "devices/dcmtk/profile.toml",
    "dcmtk-host": "devices/dcmtk/host.toml",  # the same device on host networking: what the per-run network costs
}
_REPLICAS = 2
_MAX_ROUNDS = 10
_DOCKER_TIMEOUT = 30.0  # one docker CLI call, seconds
_INTRO = "# Benchmarks\n\n"


@dataclass(frozen=True)
class RunTiming:
    """One run's manifest timings, seconds."""

    label: str
    device_start: float
    suites: float
    total: float


@dataclass(frozen=True)
class _ChildResult:
    """What the validation process sends back."""

    wall: float
    first_case: float | None  # seconds from validate start to the first case done; None: none recorded
    verdict: str
    exit_code: int
    runs: tuple[RunTiming, ...]
    cpu_children: float  # user + system seconds of the pytest and simulator processes (not the container)
    error: str = ""


@dataclass(frozen=True)
class Measurement:
    """One validation of one device in one mode in one round."""

    device: str
    mode: str
    round: int
    wall: float
    first_case: float | None
    verdict: str
    exit_code: int
    runs: tuple[RunTiming, ...]
    cpu_children: float
    span: float  # seconds from starting the validation process to its result, over which busy and steal count
    busy: float  # core-seconds the whole machine spent busy (user, system, irq) over `span`
    steal: float  # core-seconds the hypervisor took during the validation
    load_end: float  # 1-minute load average when it ended
    leftover: tuple[str, ...]  # this validation's containers still present afterwards
    foreign: int  # other processes' patchgate containers present afterwards: someone else's runs, i.e. load
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.verdict == Verdict.UNCHANGED.value and self.exit_code == 0 and not self.leftover

    @property
    def utilisation(self) -> float:
        """Share of all cores busy during the validation."""
        return self.busy / ((os.cpu_count() or 1) * self.span)


@dataclass(frozen=True)
class Row:
    """A device and mode's summary over all rounds (the valid measurements only)."""

    device: str
    mode: str
    wall: float  # median
    wall_low: float
    wall_high: float
    first_case: float | None  # median
    utilisation: float  # median
    cpu_floor: float  # median busy core-seconds / cores: the wall time if the work spread perfectly
    ratio: float  # median wall / the device's serial median wall
    count: int

    @property
    def met(self) -> bool | None:
        return None if self.mode == "serial" else self.ratio <= TARGET


# -- one validation, in its own process ---------------------------------------------------


class _FirstCase(ProgressLine):
    """A silent progress sink that records when the first case is done in any run."""

    def __init__(self, start: float) -> None:
        super().__init__()
        self.start = start
        self.first: float | None = None

    def __call__(self, label: str, done: int, total: int) -> None:
        with self.lock:
            if self.first is None and done >= 1:
                self.first = time.monotonic() - self.start

    def done(self) -> None:
        pass


def _child(profile_path: str, out: str, concurrent: bool, conn: Connection) -> None:
    """Validation process: runs one validation and sends a _ChildResult back."""
    try:
        profile = load_profile(Path(profile_path))
        start = time.monotonic()
        sink = _FirstCase(start)
        result = run_validation(profile, Path(out), replicas=_REPLICAS, concurrent=concurrent, progress=sink)
        wall = time.monotonic() - start
        import resource

        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        runs = tuple(
            RunTiming(
                f"{m.role}-{m.replica}",
                float(m.timings.get("device_start", 0.0)),
                float(m.timings.get("suites", 0.0)),
                float(m.timings.get("total", 0.0)),
            )
            for m in result.runs
        )
        verdict = result.comparison.verdict
        sent = _ChildResult(wall, sink.first, verdict.value, verdict.exit_code, runs, usage.ru_utime + usage.ru_stime)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which records the failure
        sent = _ChildResult(0.0, None, "", -1, (), 0.0, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    conn.send(sent)
    conn.close()


def _cpu_times() -> tuple[float, float]:
    """(busy, steal) core-seconds since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq) / tick, steal / tick


def _containers() -> list[tuple[str, str]]:
    """(name, owner pid) of every container carrying patchgate's run label."""
    fmt = '{{.Names}}\t{{.Label "' + LABEL_OWNER + '"}}'
    argv = ["docker", "ps", "-a", "--filter", f"label={LABEL_RUN}", "--format", fmt]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=_DOCKER_TIMEOUT).stdout
    pairs = [line.partition("\t") for line in out.splitlines() if line.strip()]
    return [(name, owner) for name, _, owner in pairs]


def _descendants(pid: int) -> list[int]:
    """Every live process below `pid` (from /proc), deepest last: the simulators run in their own sessions."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _kill_tree(pid: int) -> None:
    """SIGKILL a timed-out validation process and everything it started, by pid."""
    for p in [pid, *_descendants(pid)]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)


def _remove(names: Sequence[str]) -> None:
    if names:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True, check=False, timeout=_DOCKER_TIMEOUT)


def measure(device: str, mode: str, round_: int, scratch: Path, timeout: float) -> Measurement:
    """Run one validation in a child process group, bounded by `timeout`; check verdict and containers."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    out = Path(tempfile.mkdtemp(prefix=f"{device}-{mode}-r{round_}-", dir=scratch))
    process = ctx.Process(target=_child, args=(DEVICES[device], str(out), mode == "concurrent", child), daemon=False)
    busy0, steal0 = _cpu_times()
    start = time.monotonic()
    process.start()
    child.close()
    result: _ChildResult | None = None
    if parent.poll(timeout):
        with contextlib.suppress(EOFError):
            result = parent.recv()
    wall = time.monotonic() - start
    busy1, steal1 = _cpu_times()
    pid = process.pid or 0
    if result is None and pid:
        _kill_tree(pid)
    process.join(timeout=15)
    containers = _containers()
    mine = [name for name, owner in containers if owner == str(pid)]
    if result is None:
        _remove(mine)  # only what this validation's process started
        result = _ChildResult(wall, None, "", -1, (), 0.0, f"no result within {timeout:.0f} s (killed)")
    return Measurement(
        device,
        mode,
        round_,
        result.wall,
        result.first_case,
        result.verdict,
        result.exit_code,
        result.runs,
        result.cpu_children,
        wall,
        busy1 - busy0,
        steal1 - steal0,
        os.getloadavg()[0],
        tuple(mine),
        len(containers) - len(mine),
        result.error,
    )


# -- results ------------------------------------------------------------------------------


def summarise(devices: Sequence[str], measurements: Sequence[Measurement]) -> list[Row]:
    """Per device and mode: median wall time and more over the valid measurements; ratio to serial."""
    cores = os.cpu_count() or 1
    rows: list[Row] = []
    for device in devices:
        serial: float | None = None
        for mode in ("serial", "concurrent"):
            ms = [m for m in measurements if m.device == device and m.mode == mode and m.ok]
            if not ms:
                continue
            walls = [m.wall for m in ms]
            firsts = [m.first_case for m in ms if m.first_case is not None]
            median = statistics.median(walls)
            serial = median if mode == "serial" else serial
            rows.append(
                Row(
                    device,
                    mode,
                    median,
                    min(walls),
                    max(walls),
                    statistics.median(firsts) if firsts else None,
                    statistics.median(m.utilisation for m in ms),
                    statistics.median(m.busy for m in ms) / cores,
                    median / serial if serial else float("nan"),
                    len(ms),
                )
            )
    order = {m: n for n, m in enumerate(MODES)}
    return sorted(rows, key=lambda r: (devices.index(r.device), order[r.mode]))


def _docker_version() -> str:
    try:
        argv = ["docker", "version", "--format", "{{.Server.Version}}"]
        return subprocess.run(argv, capture_output=True, text=True, timeout=_DOCKER_TIMEOUT).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def _machine() -> str:
    return (
        f"{os.cpu_count()} CPUs (nproc), {platform.system()} {platform.release()} {platform.machine()}, "
        f"Python {platform.python_version()}, Docker engine {_docker_version()}"
    )


def _median_run(ms: Sequence[Measurement], field: str) -> float:
    values = [float(getattr(t, field)) for m in ms for t in m.runs]
    return statistics.median(values) if values else float("nan")


def _reading(rows: Sequence[Row], measurements: Sequence[Measurement]) -> list[str]:
    """What bounds the ratio, derived from this run's numbers: per-run slowdown and CPU."""
    out = ["What bounds it (derived from the numbers above and below):", ""]
    for device in dict.fromkeys(r.device for r in rows):
        by_mode = {r.mode: r for r in rows if r.device == device}
        if set(by_mode) != set(MODES):
            continue
        conc, ser = by_mode["concurrent"], by_mode["serial"]
        ok = {mode: [m for m in measurements if m.device == device and m.mode == mode and m.ok] for mode in MODES}
        s_suites, c_suites = _median_run(ok["serial"], "suites"), _median_run(ok["concurrent"], "suites")
        s_total = _median_run(ok["serial"], "total")
        ideal = s_total / ser.wall  # every run as fast as alone, all three side by side
        out.append(
            f"- {device}: alone, a run's suites take {s_suites:.1f} s (median; run total {s_total:.1f} s); with "
            f"three side by side {c_suites:.1f} s, {c_suites / s_suites:.2f}x slower. Without that slowdown "
            f"concurrent would be about {ideal:.2f}x serial; the target needs the slowdown to stay under about "
            f"{TARGET / ideal:.2f}x. The machine was {conc.utilisation:.0%} busy during concurrent validations "
            f"({ser.utilisation:.0%} serial); serial's busy core-seconds spread over "
            f"{os.cpu_count()} cores would take {ser.cpu_floor:.1f} s = {ser.cpu_floor / ser.wall:.2f}x serial, "
            "the floor for this machine at that load (neighbours' work included)."
        )
    return out if len(out) > 2 else []


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render_markdown(
    rows: Sequence[Row], measurements: Sequence[Measurement], *, rounds: int, command: str, when: str, load: str
) -> str:
    """The section: headline ratios, the summary table, every validation, checks, how and on what."""
    lines = ["## Validation wall time, concurrent vs serial (`scripts/bench_validate.py`)", ""]
    for r in rows:
        if r.mode == "concurrent":
            verdict = "met" if r.met else "**NOT met**"
            lines.append(
                f"- **{r.device}: concurrent {r.ratio:.2f}x serial** (median {r.wall:.1f} s vs "
                f"{r.wall / r.ratio:.1f} s; target <= {TARGET:.2f}x: {verdict}); first case recorded "
                f"{_s(r.first_case)} s after `validate` started"
            )
    failed = [m for m in measurements if not m.ok]
    leftover = sum(len(m.leftover) for m in measurements)
    lines += [
        f"- checks: {len(measurements) - len(failed)} of {len(measurements)} validations ended UNCHANGED "
        f"(exit 0); containers left behind: {leftover}",
        "",
        "| device | mode | median wall s | min | max | ratio vs serial | first case s | CPU busy | "
        "CPU floor s | target | met |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        target = "baseline" if r.mode == "serial" else f"<= {TARGET:.2f}"
        met = "-" if r.met is None else "yes" if r.met else "**no**"
        lines.append(
            f"| {r.device} | {r.mode} | {r.wall:.1f} | {r.wall_low:.1f} | {r.wall_high:.1f} | {r.ratio:.2f} | "
            f"{_s(r.first_case)} | {r.utilisation:.0%} | {r.cpu_floor:.1f} | {target} | {met} |"
        )
    lines += ["", *_reading(rows, measurements)]
    lines += [
        "",
        f"{_REPLICAS} baseline replicas and 1 candidate per validation (the profile's identical rebuild, so the "
        f"verdict must be UNCHANGED), {rounds} rounds, the validations interleaved in each round with the order "
        "rotated from round to round. Wall time is `run_validation()` from call to return (runs, comparison, reports), "
        "timed inside a fresh process. First case: the first progress report with a case done in any run "
        "(the runner polls observations.jsonl every 0.2 s). CPU busy: the share of all cores busy machine-wide "
        "(/proc/stat: user, system, irq) during the validation, container and neighbours included; CPU floor: "
        "those busy core-seconds / cores, the wall time a perfectly spread run could not beat.",
        "",
        "| round | device | mode | wall s | first case s | runs: device start / suites / total s | "
        "pytest+sims CPU s | CPU busy | steal s | load | others' containers | verdict | left |",
        "| ---: | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for m in measurements:
        runs = "; ".join(f"{t.label} {t.device_start:.1f}/{t.suites:.1f}/{t.total:.1f}" for t in m.runs)
        verdict = f"{m.verdict} ({m.exit_code})" if not m.error else f"**error**: {m.error.splitlines()[0]}"
        lines.append(
            f"| {m.round + 1} | {m.device} | {m.mode} | {m.wall:.1f} | {_s(m.first_case)} | {runs} | "
            f"{m.cpu_children:.1f} | {m.utilisation:.0%} | {m.steal:.1f} | {m.load_end:.1f} | {m.foreign} | {verdict} | "
            f"{len(m.leftover)} |"
        )
    lines += [
        "",
        f"- machine: {_machine()}",
        f"- load average (1, 5, 15 min) at start: {load}",
        f"- date: {when}",
        f"- command: `{command}`",
    ]
    return "\n".join(lines) + "\n"


def update_markdown(path: Path, section: str) -> None:
    """Rewrite this benchmark's section of `path` (created with an intro if missing)."""
    rewrite_section(path, BEGIN_MARKER, END_MARKER, section, _INTRO)


def _table(rows: Sequence[Row]) -> str:
    header = f"{'device':<8} {'mode':<11} {'wall':>7} {'min':>7} {'max':>7} {'ratio':>6} {'1st':>6} {'cpu':>5} met"
    out = [header, "-" * len(header)]
    for r in rows:
        met = "-" if r.met is None else "yes" if r.met else "NO"
        out.append(
            f"{r.device:<8} {r.mode:<11} {r.wall:>7.1f} {r.wall_low:>7.1f} {r.wall_high:>7.1f} {r.ratio:>6.2f} "
            f"{_s(r.first_case):>6} {r.utilisation:>5.0%} {met}"
        )
    return "\n".join(out)


# -- command line -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python scripts/bench_validate.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=3, help=f"rounds of every validation (default 3, at most {_MAX_ROUNDS})"
    )
    parser.add_argument("--devices", default="orthanc,dcmtk", help=f"comma-separated, of {', '.join(DEVICES)}")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one validation may take (default 300)")
    parser.add_argument("--markdown", type=Path, help="rewrite the bench_validate section of this file")
    return parser


def _heartbeat(stop: threading.Event, label: str, start: float) -> None:
    while not stop.wait(15.0):
        print(f"  ... {label}: {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    if not 1 <= args.rounds <= _MAX_ROUNDS or not 10 <= args.timeout <= 3600:
        parser.error(f"--rounds must be within 1..{_MAX_ROUNDS} and --timeout within 10..3600")
    if not devices or any(d not in DEVICES for d in devices):
        parser.error(f"--devices takes a comma-separated list of {', '.join(DEVICES)}")
    # The images hold the code under test: build what is missing or stale first, outside the timings.
    build_all(log=lambda line: print(f"[images] {line}", flush=True))
    command = "python scripts/bench_validate.py " + " ".join(sys.argv[1:] if argv is None else argv)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    variants = [(d, m) for d in devices for m in MODES]
    measurements: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="bench_validate-") as scratch:
        for round_ in range(args.rounds):
            shift = round_ % len(variants)
            for device, mode in variants[shift:] + variants[:shift]:
                label = f"round {round_ + 1}/{args.rounds}  {device:<8} {mode:<11}"
                stop = threading.Event()
                beat = threading.Thread(target=_heartbeat, args=(stop, label, time.monotonic()), daemon=True)
                beat.start()
                try:
                    m = measure(device, mode, round_, Path(scratch), args.timeout)
                finally:
                    stop.set()
                measurements.append(m)
                status = "ok" if m.ok else f"FAILED: {m.error or m.verdict} left={list(m.leftover)}"
                print(
                    f"{label} wall {m.wall:6.1f} s  first case {_s(m.first_case):>5} s  "
                    f"cpu {m.utilisation:4.0%}  load {m.load_end:4.1f}  {status}",
                    flush=True,
                )
                if m.error:
                    print(m.error, file=sys.stderr, flush=True)
    rows = summarise(devices, measurements)
    print()
    print(_table(rows))
    print(f"\n{_machine()}\nload at start: {load}\n{when}\n{command.strip()}")
    if args.markdown is not None:
        section = render_markdown(rows, measurements, rounds=args.rounds, command=command.strip(), when=when, load=load)
        update_markdown(args.markdown, section)
        print(f"wrote {args.markdown}")
    ok = all(m.ok for m in measurements) and all(r.met is not False for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
