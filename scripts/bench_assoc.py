"""Benchmark of association set-up: associate + release against the reference device, the PACS simulator and a bare SCP.

Each acceptor runs in its own process on 127.0.0.1, started as the harness starts it
(`python -m simulators.reference`, `python -m simulators.pacs`, the reference device also with
its audit trail going to `python -m simulators.audit.repository`); the bare SCP is a pynetdicom
AE supporting only the proposed abstract syntaxes, with TCP_NODELAY as the simulators set it.
This process requests: one pynetdicom AE, TCP_NODELAY, the contexts as a `CheapContexts` list
(as `Modality` proposes them). Two proposals: Verification only, and the negotiation suite's
full C-STORE proposal (every corpus SOP class x every transfer syntax it tries, at most 128).
One row also requests with pynetdicom's deep copy of the contexts (a plain list), to show what
the requesting side saves. Variants run interleaved in rounds (the order rotated each round),
each a batch of associations per round; the headline is the ratio of medians to the bare SCP's
with the same proposal (target <= 1.2x).

    python scripts/bench_assoc.py [--rounds 7] [--batch 20] [--markdown docs/benchmarks.md]

Exits 1 if an acceptor misses the target, so a rerun can be scripted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import shlex
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pynetdicom
from _docs import rewrite_section  # scripts/ is on sys.path when a script runs
from _procs import serving
from bench_demo import rotated
from pynetdicom import AE, evt
from pynetdicom.presentation import PresentationContext, build_context

from simulators._contexts import CheapContexts
from simulators._net import LOOPBACK, VERIFICATION, free_port, no_delay
from simulators.corpus import SOP_CLASSES
from suites.negotiation.test_negotiation import SYNTAXES  # the suite's own proposal, not a copy

__all__ = ["BEGIN_MARKER", "END_MARKER", "TARGET", "Variant", "main", "measure", "proposal", "render_markdown"]

BEGIN_MARKER = "<!-- bench_assoc:begin -->"
END_MARKER = "<!-- bench_assoc:end -->"
TARGET = 1.2  # an acceptor's median set-up at most this many times the bare SCP's
_SCP_AE = "BENCHSCP"
_SCU_AE = "BENCHSCU"
_TIMEOUT = 10.0
_STARTUP = 90.0  # a loaded 2-core machine can take tens of seconds to start four Python processes


def proposal(name: str) -> list[PresentationContext]:
    """`verification`: one context; `full`: a context per (storage class, syntax) and one per class with all."""
    if name == "verification":
        return [build_context(VERIFICATION)]
    classes = sorted(set(SOP_CLASSES.values()))
    pairs = [build_context(uid, [syntax]) for uid in classes for syntax in SYNTAXES]
    return (pairs + [build_context(uid, list(SYNTAXES)) for uid in classes])[:128]


@dataclass(frozen=True)
class Variant:
    """One acceptor and proposal; `deep`: request with pynetdicom's own deep copy of the contexts."""

    acceptor: str  # bare | pacs | reference | reference+audit
    proposal: str  # verification | full
    deep: bool = False

    @property
    def name(self) -> str:
        return f"{self.acceptor}, {self.proposal}" + (", requestor deep copy" if self.deep else "")


VARIANTS = tuple(
    [Variant(a, p) for p in ("verification", "full") for a in ("bare", "reference", "reference+audit", "pacs")]
    + [Variant("bare", "full", deep=True)]
)
WHAT = {
    "bare": "pynetdicom AE supporting only the proposed abstract syntaxes (all their transfer syntaxes), TCP_NODELAY",
    "pacs": "`python -m simulators.pacs` (all its storage, Q/R and commitment contexts), log to a file",
    "reference": "`python -m simulators.reference --variant clean` without an audit target",
    "reference+audit": "the same, auditing over UDP to `python -m simulators.audit.repository` (as in a run)",
}


# -- acceptors (child processes) ----------------------------------------------------------


def _bare_scp(port: int) -> int:
    """Serve as the bare SCP until killed (this script run with --bare-scp PORT)."""
    ae = AE(ae_title=_SCP_AE)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = _TIMEOUT
    ae.maximum_pdu_size = 0
    for uid in dict.fromkeys(str(cx.abstract_syntax) for cx in proposal("verification") + proposal("full")):
        ae.add_supported_context(uid, list(SYNTAXES) if uid != VERIFICATION else None)
    ae.start_server((LOOPBACK, port), block=True, evt_handlers=[(evt.EVT_CONN_OPEN, no_delay)])
    return 0


@contextlib.contextmanager
def _acceptors(scratch: Path) -> Iterator[dict[str, int]]:
    """Start every acceptor (a port each), wait until each answers, stop them all at the end."""
    python = sys.executable
    ports = {name: free_port() for name in ("bare", "pacs", "reference", "reference+audit")}
    udp = free_port(kind=socket.SOCK_DGRAM)
    common = ["--ae-title", _SCP_AE, "--host", LOOPBACK]
    reference = [python, "-m", "simulators.reference", "--variant", "clean", *common]
    audit = ["--audit", f"udp://{LOOPBACK}:{udp}"]
    commands = {
        "arr": [python, "-m", "simulators.audit.repository", "--udp-port", str(udp), "--out", str(scratch / "a.jsonl")],
        "bare": [python, str(Path(__file__).resolve()), "--bare-scp", str(ports["bare"])],
        "pacs": [
            python,
            "-m",
            "simulators.pacs",
            *common,
            "--port",
            str(ports["pacs"]),
            "--storage",
            str(scratch / "p"),
        ],
        "reference": [*reference, "--port", str(ports["reference"]), "--storage", str(scratch / "r")],
        "reference+audit": [
            *reference,
            "--port",
            str(ports["reference+audit"]),
            "--storage",
            str(scratch / "ra"),
            *audit,
        ],
    }
    with serving(commands, scratch, scratch):
        for name, port in ports.items():
            _wait_ready(name, port)
        yield ports


def _wait_ready(name: str, port: int) -> None:
    deadline = time.monotonic() + _STARTUP
    while time.monotonic() < deadline:
        with contextlib.suppress(RuntimeError):
            _associate_release(port, proposal("verification"))
            return
        time.sleep(0.2)
    raise RuntimeError(f"the {name} acceptor did not accept an association on port {port} within {_STARTUP:.0f} s")


# -- requesting (this process) ------------------------------------------------------------


def _associate_release(port: int, contexts: list[PresentationContext], *, deep: bool = False) -> float:
    """Seconds from the association request to the end of its release; RuntimeError if it was not accepted."""
    ae = AE(ae_title=_SCU_AE)
    ae.acse_timeout = ae.network_timeout = ae.connection_timeout = _TIMEOUT
    proposed: list[PresentationContext] = list(contexts) if deep else CheapContexts(contexts)
    start = time.perf_counter()
    assoc = ae.associate(
        LOOPBACK, port, contexts=proposed, ae_title=_SCP_AE, evt_handlers=[(evt.EVT_CONN_OPEN, no_delay)]
    )
    if not assoc.is_established:
        raise RuntimeError(f"association to port {port} not established")
    assoc.release()
    return time.perf_counter() - start


def measure(rounds: int, batch: int) -> dict[Variant, list[float]]:
    """Every variant `batch` times per round, the variants interleaved, the order rotated each round."""
    samples: dict[Variant, list[float]] = {v: [] for v in VARIANTS}
    contexts = {name: proposal(name) for name in ("verification", "full")}
    with tempfile.TemporaryDirectory(prefix="bench-assoc-") as scratch, _acceptors(Path(scratch)) as ports:
        for r in range(rounds):
            order = rotated(VARIANTS, r)
            for v in order:
                samples[v] += [
                    _associate_release(ports[v.acceptor], contexts[v.proposal], deep=v.deep) for _ in range(batch)
                ]
            print(
                f"round {r + 1}: "
                + ", ".join(f"{v.name} {statistics.median(samples[v]) * 1e3:.1f} ms" for v in VARIANTS)
            )
    return samples


def _p10(values: Sequence[float]) -> float:
    return sorted(values)[len(values) // 10]


def _ratios(samples: dict[Variant, list[float]], of: Any = statistics.median) -> dict[Variant, float]:
    """Each variant's `of` (median, or p10: the floor, which a loaded machine moves least) over the bare SCP's."""
    bare = {v.proposal: of(s) for v, s in samples.items() if v.acceptor == "bare" and not v.deep}
    return {v: of(s) / bare[v.proposal] for v, s in samples.items()}


def _met(v: Variant, ratio: float) -> str:
    return "-" if v.acceptor == "bare" else "yes" if ratio <= TARGET else "no"


def render_markdown(samples: dict[Variant, list[float]], rounds: int, batch: int, load: tuple[str, str]) -> str:
    """The section for docs/benchmarks.md: headline ratios, a table, and how it was measured."""
    ratios = _ratios(samples)
    lines = ["## Association set-up (`scripts/bench_assoc.py`)", ""]
    for v in VARIANTS:
        if v.acceptor != "bare":
            lines.append(
                f"- **{v.name}: {ratios[v]:.2f}x** the bare SCP's median (target {TARGET:.1f}x: {_met(v, ratios[v])})"
            )
    deep = next(v for v in VARIANTS if v.deep)
    lines += [f"- requesting the full proposal with pynetdicom's deep copy instead: {ratios[deep]:.2f}x", ""]
    floors = _ratios(samples, _p10)
    lines += [
        "| acceptor, proposal | median ms | p10 | p90 | ratio vs bare | p10 ratio | met |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for v in VARIANTS:
        s = sorted(samples[v])
        p90 = s[(9 * len(s)) // 10]
        lines.append(
            f"| {v.name} | {statistics.median(s) * 1e3:.2f} | {_p10(s) * 1e3:.2f} | {p90 * 1e3:.2f} "
            f"| {ratios[v]:.2f} | {floors[v]:.2f} | {_met(v, ratios[v])} |"
        )
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    full = len(proposal("full"))
    lines += [
        "",
        f"One sample is associate + release, timed in the requesting process. {rounds} rounds of {batch} associations "
        "per variant, interleaved, the order rotated each round. Verification: 1 context; full: the negotiation "
        f"suite's C-STORE proposal ({full} contexts). The requestor: pynetdicom AE, TCP_NODELAY, contexts as a "
        "`CheapContexts` list (as `Modality` sends them); the last row passes a plain list, which `AE.associate` "
        "deep-copies. The p10 ratio compares the floors, which load spikes from other work move least.",
        "",
        "| acceptor | what |",
        "| --- | --- |",
        *(f"| {name} | {what} |" for name, what in WHAT.items()),
        "",
        f"- machine: {os.cpu_count()} CPUs, {platform.system()} {platform.release()} {platform.machine()}, "
        f"Python {platform.python_version()}, pynetdicom {pynetdicom.__version__}",
        f"- load average (1 min) before / after: {load[0]} / {load[1]}",
        f"- date: {when}",
        "- command: `python scripts/bench_assoc.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]) + "`",
        "",
    ]
    return "\n".join(lines)


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=20, help="associations per variant per round")
    parser.add_argument("--markdown", type=Path, help="rewrite this benchmark's section of this file")
    parser.add_argument("--bare-scp", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the child acceptor
    args = parser.parse_args(argv)
    if args.bare_scp is not None:
        return _bare_scp(args.bare_scp)
    if args.rounds < 1 or args.batch < 1:
        parser.error("--rounds and --batch must be at least 1")
    before = _load()
    samples = measure(args.rounds, args.batch)
    section = render_markdown(samples, args.rounds, args.batch, (before, _load()))
    print(section)
    if args.markdown:
        rewrite_section(args.markdown, BEGIN_MARKER, END_MARKER, section)
    ratios = _ratios(samples)
    return 0 if all(_met(v, r) != "no" for v, r in ratios.items()) else 1


if __name__ == "__main__":
    sys.exit(main())
