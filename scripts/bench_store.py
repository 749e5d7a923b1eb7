"""Benchmark of the simulators' C-STORE throughput against bare pynetdicom, measured side by side.

Receive: a bare pynetdicom SCU loop (one association) sends N objects to the PACS
simulator and to a bare pynetdicom SCP whose C-STORE handler only answers 0x0000.
Send: `Modality.store` and a bare SCU loop send the same N objects to that bare SCP.
Variants run interleaved in rounds (order rotated each round), each receiver in its own
process on 127.0.0.1 so sender and receiver do not share a GIL; the headline is the
ratio of medians, because absolute rates on these machines swing from run to run.

    python scripts/bench_store.py [--rounds 5] [--stores 500] [--markdown docs/benchmarks.md]

Exits 1 if a variant misses its target, so a rerun can be scripted.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pydicom
import pynetdicom
from _docs import rewrite_section  # scripts/ is on sys.path when a script runs
from pydicom.dataset import Dataset
from pydicom.uid import AllTransferSyntaxes, generate_uid
from pynetdicom import AE, evt
from pynetdicom.presentation import build_context

from harness.model import Endpoint
from simulators._net import LOOPBACK, VERIFICATION, no_delay
from simulators.corpus import DEFAULT_SEED, UID_ROOT, generate
from simulators.modality import Modality
from simulators.pacs import STORAGE_SOP_CLASSES, PacsConfig, PacsSimulator

__all__ = [
    "BEGIN_MARKER",
    "END_MARKER",
    "Measurement",
    "Row",
    "Variant",
    "build_parser",
    "main",
    "make_datasets",
    "render_markdown",
    "summarise",
    "update_markdown",
]

BEGIN_MARKER = "<!-- bench_store:begin -->"
END_MARKER = "<!-- bench_store:end -->"
TARGET = 0.9  # the bar: at least 0.9x the bare loop
_TIMEOUT = 10.0  # ACSE and network timeout of every AE here, seconds
_DIMSE_TIMEOUT = 3.0  # a store answers in milliseconds; short, so a lost response costs little
_STARTUP = 60.0  # a receiver process must listen within this, seconds
_LIFETIME = 600.0  # a receiver process stops by itself after this, whatever the parent does
_DEADLINE = 120.0  # one measurement (one association) may take at most this, seconds
# pynetdicom 3.0.4's requestor reactor can take a C-STORE-RSP off the queue meant for
# send_c_store ("Received unexpected C-STORE service message"), which then waits out the
# DIMSE timeout and aborts: about one association of 500 stores in five here. Such a try is
# discarded and redone, and the count reported.
_RETRIES = 3
_SCU_AE = "BENCHSCU"
_SCP_AE = "BENCHSCP"
_INTRO = """# Benchmarks

Throughput of patchgate's simulators against bare pynetdicom on this project's machines
(2 cores, noisy neighbours). Absolute rates swing from run to run, so each benchmark runs
its variants side by side in one run, interleaved in rounds, and the headline is the ratio
of medians. Rerun a section with the command it shows; it rewrites only its own section.

"""


class _LostResponse(RuntimeError):
    """A C-STORE got no response (DIMSE timeout or abort): pynetdicom's race, or a dead receiver."""


@dataclass(frozen=True)
class Variant:
    """One thing measured: who receives (a child process), who sends (this process), and its bar."""

    name: str
    group: str  # "receive" or "send": rows of a group are compared with the group's baseline
    receiver: str  # "bare", "bare-nodelay" or "pacs"
    sender: str  # "bare", "bare-nodelay" or "modality"
    baseline: bool = False
    target: float | None = None  # minimum ratio vs the group's baseline; None: shown for context only
    max_stores: int | None = None  # send at most this many (a slow context row need not send them all)
    note: str = ""


# The bare loops set TCP_NODELAY as both simulators do: with pynetdicom's defaults a sender
# waits for the receiver's delayed ACK on every object (about 18 stores/s here, whoever
# receives), which would hide what the receiver costs and flatter Modality.store 5x.
VARIANTS: tuple[Variant, ...] = (
    Variant(
        "receive: bare SCP",
        "receive",
        "bare",
        "bare-nodelay",
        baseline=True,
        note="pynetdicom AE, the PACS's storage contexts, C-STORE handler returns 0x0000; sent by the bare SCU loop",
    ),
    Variant(
        "receive: PacsSimulator",
        "receive",
        "pacs",
        "bare-nodelay",
        target=TARGET,
        note="writes each object to its folder, queues it for the SQLite index; sent by the bare SCU loop",
    ),
    Variant(
        "send: bare SCU loop",
        "send",
        "bare",
        "bare-nodelay",
        baseline=True,
        note="pynetdicom AE + TCP_NODELAY, one association, send_c_store per dataset, release; to the bare SCP",
    ),
    Variant(
        "send: Modality.store",
        "send",
        "bare",
        "modality",
        target=TARGET,
        note="one Modality.store(peer, datasets) call (one association); to the bare SCP",
    ),
    Variant(
        "send: bare SCU loop, pynetdicom defaults",
        "send",
        "bare",
        "bare",
        max_stores=100,
        note="the bare loop without TCP_NODELAY (Nagle on), first 100 objects only: why the baseline sets it",
    ),
)


@dataclass(frozen=True)
class Measurement:
    """One association's worth of C-STOREs for one variant in one round."""

    variant: str
    round: int
    stores: int
    seconds: float
    retries: int = 0  # tries lost to pynetdicom's response race before this one

    @property
    def rate(self) -> float:
        return self.stores / self.seconds


@dataclass(frozen=True)
class Row:
    """A variant's summary over all rounds."""

    variant: Variant
    median: float
    low: float
    high: float
    ratio: float  # median / the group baseline's median

    @property
    def met(self) -> bool | None:
        return None if self.variant.target is None else self.ratio >= self.variant.target


# -- the corpus ---------------------------------------------------------------------------


def make_datasets(count: int, seed: int = DEFAULT_SEED) -> list[Dataset]:
    """The corpus repeated to `count` objects, each with its own SOP Instance UID (file meta kept in step)."""
    items = generate(seed)
    out: list[Dataset] = []
    for n in range(count):
        item = items[n % len(items)]
        ds = copy.deepcopy(item.dataset)
        # Deterministic, so every run sends the same bytes; distinct, so the PACS keeps each one.
        uid = generate_uid(prefix=UID_ROOT + "9.", entropy_srcs=[item.sop_instance_uid, str(n)])
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        out.append(ds)
    return out


def _pairs(datasets: Sequence[Dataset]) -> list[tuple[str, str]]:
    """The (SOP class, transfer syntax) pairs of the datasets, in first-seen order: what Modality proposes."""
    return list(dict.fromkeys((str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in datasets))


# -- receivers (child processes) ----------------------------------------------------------


def _bare_scp(nodelay: bool) -> Any:
    """A bare SCP: the PACS's storage contexts and transfer syntaxes, a handler that only answers."""

    def on_store(event: Any) -> int:
        return 0x0000

    ae = AE(ae_title=_SCP_AE)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = _TIMEOUT
    ae.add_supported_context(VERIFICATION)
    for uid in STORAGE_SOP_CLASSES:
        ae.add_supported_context(uid, AllTransferSyntaxes, scu_role=True, scp_role=True)
    handlers: list[Any] = [(evt.EVT_C_STORE, on_store)]
    if nodelay:
        ae.maximum_pdu_size = 0
        handlers.append((evt.EVT_CONN_OPEN, no_delay))
    return ae.start_server((LOOPBACK, 0), block=False, evt_handlers=handlers)


def _serve(kind: str, storage: str, conn: Connection) -> None:
    """Child process: listen, send the port, serve until told to stop (or the parent goes away)."""
    if kind == "pacs":
        pacs = PacsSimulator(PacsConfig(ae_title=_SCP_AE, port=0, storage=Path(storage))).start()
        conn.send(pacs.port)
        conn.poll(_LIFETIME)
        pacs.stop()
    else:
        server = _bare_scp(nodelay=kind == "bare-nodelay")
        conn.send(int(server.server_address[1]))
        conn.poll(_LIFETIME)
        server.shutdown()
    conn.close()


class _Receiver:
    """A receiver in its own process for one measurement; a context manager yielding its port."""

    def __init__(self, kind: str, storage: Path) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(kind, str(storage), child), daemon=True)
        self._child = child
        self.kind = kind

    def __enter__(self) -> int:
        self._process.start()
        self._child.close()
        if not self._conn.poll(_STARTUP):
            self._kill()
            raise RuntimeError(f"the {self.kind} receiver did not listen within {_STARTUP:.0f} s")
        return int(self._conn.recv())

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):  # the child may be gone already
            self._conn.send("stop")
        self._process.join(timeout=15)
        self._kill()
        self._conn.close()

    def _kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)


# -- senders (this process) ---------------------------------------------------------------


def _bare_send(port: int, datasets: Sequence[Dataset], *, nodelay: bool) -> None:
    """One association, send_c_store each dataset, release; raises unless every status is 0x0000."""
    ae = AE(ae_title=_SCU_AE)
    ae.acse_timeout = ae.network_timeout = _TIMEOUT
    ae.dimse_timeout = _DIMSE_TIMEOUT
    contexts = [build_context(sop_class, [syntax]) for sop_class, syntax in _pairs(datasets)]
    handlers: list[Any] = [(evt.EVT_CONN_OPEN, no_delay)] if nodelay else []
    assoc = ae.associate(LOOPBACK, port, contexts=contexts, ae_title=_SCP_AE, evt_handlers=handlers)
    if not assoc.is_established:
        raise RuntimeError(f"no association with the receiver on port {port}")
    deadline = time.monotonic() + _DEADLINE
    try:
        for n, ds in enumerate(datasets):
            rsp = assoc.send_c_store(ds)
            status = int(rsp.Status) if "Status" in rsp else None
            if status is None:
                raise _LostResponse(f"no response to store {n}")
            if status != 0x0000:
                raise RuntimeError(f"store {n} ({ds.SOPInstanceUID}) answered {status!r}, expected 0x0000")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gave up after {_DEADLINE:.0f} s at store {n}")
    finally:
        if assoc.is_established:
            assoc.release()
        else:
            assoc.abort()


def _modality_send(port: int, datasets: Sequence[Dataset]) -> None:
    """`Modality.store` of every dataset; raises unless every status is 0x0000."""
    modality = Modality(_SCU_AE, acse_timeout=_TIMEOUT, dimse_timeout=_DIMSE_TIMEOUT, network_timeout=_TIMEOUT)
    result = modality.store(Endpoint(_SCP_AE, LOOPBACK, port), datasets)
    lost = [n for n, o in enumerate(result.instances) if o.status is None and "no response" in o.error]
    if lost:
        raise _LostResponse(f"no response to store {lost[0]}")
    bad = [o for o in result.instances if o.status != 0x0000]
    if result.error or bad or len(result.instances) != len(datasets):
        first = bad[0].summary() if bad else None
        raise RuntimeError(f"Modality.store: error {result.error!r}, {len(bad)} bad outcomes, first {first}")


def _sender(kind: str) -> Callable[[int, Sequence[Dataset]], None]:
    if kind == "modality":
        return _modality_send
    nodelay = kind == "bare-nodelay"
    return lambda port, datasets: _bare_send(port, datasets, nodelay=nodelay)


def _measure_once(variant: Variant, datasets: Sequence[Dataset], storage: Path) -> float:
    """Start the variant's receiver, time one association of stores from this process, stop it; seconds."""
    send = _sender(variant.sender)
    with _Receiver(variant.receiver, storage) as port:
        start = time.perf_counter()
        send(port, datasets)
        seconds = time.perf_counter() - start
    if variant.receiver == "pacs":
        # The PACS really stored every object (one file per distinct SOP Instance UID).
        files = len(list(storage.glob("*.dcm")))
        if files != len(datasets):
            raise RuntimeError(f"the PACS holds {files} files after {len(datasets)} stores")
    return seconds


def measure(variant: Variant, datasets: Sequence[Dataset], round_: int, scratch: Path) -> Measurement:
    """One measurement, retried on a lost response (see _RETRIES), each try with a fresh receiver."""
    failures: list[str] = []
    datasets = datasets[: variant.max_stores]
    while True:
        storage = Path(tempfile.mkdtemp(prefix=f"r{round_}-", dir=scratch))
        try:
            seconds = _measure_once(variant, datasets, storage)
        except _LostResponse as exc:
            failures.append(str(exc))
            print(f"  {variant.name}: {exc}; retrying with a fresh receiver", file=sys.stderr, flush=True)
            if len(failures) > _RETRIES:
                raise RuntimeError(f"{variant.name}: {len(failures)} tries failed: {failures}") from exc
            continue
        return Measurement(variant.name, round_, len(datasets), seconds, len(failures))


# -- results ------------------------------------------------------------------------------


def summarise(variants: Sequence[Variant], measurements: Sequence[Measurement]) -> list[Row]:
    """Median, min and max rate per variant, and the ratio of its median to its group baseline's."""
    medians: dict[str, float] = {}
    rows: list[Row] = []
    for v in variants:
        rates = [m.rate for m in measurements if m.variant == v.name]
        medians[v.name] = statistics.median(rates)
        rows.append(Row(v, medians[v.name], min(rates), max(rates), 0.0))
    base = {v.group: medians[v.name] for v in variants if v.baseline}
    return [Row(r.variant, r.median, r.low, r.high, r.median / base[r.variant.group]) for r in rows]


def _machine() -> str:
    return (
        f"{os.cpu_count()} CPUs (nproc), {platform.system()} {platform.release()} {platform.machine()}, "
        f"Python {platform.python_version()}, pydicom {pydicom.__version__}, pynetdicom {pynetdicom.__version__}"
    )


def render_markdown(
    rows: Sequence[Row], measurements: Sequence[Measurement], *, stores: int, rounds: int, command: str, when: str
) -> str:
    """The section: headline ratios, the table, each variant's rates by round, how and on what."""
    lines = ["## C-STORE throughput (`scripts/bench_store.py`)", ""]
    for r in rows:
        if r.variant.target is not None:
            verdict = "met" if r.met else "**NOT met**"
            lines.append(
                f"- **{r.variant.name}: {r.ratio:.2f}x** the bare loop's median "
                f"(target {r.variant.target:.2f}x: {verdict})"
            )
    lines += [
        "",
        "| variant | median stores/s | min | max | ratio vs bare | target | met |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        target = "baseline" if r.variant.baseline else f">= {r.variant.target:.2f}" if r.variant.target else "-"
        met = "-" if r.met is None else "yes" if r.met else "**no**"
        lines.append(
            f"| {r.variant.name} | {r.median:.0f} | {r.low:.0f} | {r.high:.0f} | {r.ratio:.2f} | {target} | {met} |"
        )
    retried = sum(m.retries for m in measurements)
    lines += [
        "",
        f"{stores} C-STOREs per association (the {len(generate())}-object corpus repeated, each copy with its own "
        f"SOP Instance UID), {rounds} rounds, the variants interleaved in each round with the order rotated "
        "from round to round. A rate is stores / wall time from association request to release, timed in the "
        "sending process; each receiver is a fresh process on 127.0.0.1. Receive rows compare receivers fed by "
        "the same bare SCU loop; send rows compare senders feeding the same bare SCP. The bare loop sets "
        "TCP_NODELAY, as the simulators do: with pynetdicom's defaults every object waits for a delayed ACK "
        "(the last row), which caps any receiver at that rate and would hide what the receiver costs. "
        f"Tries lost to pynetdicom's response race and redone: {retried}.",
        "",
        "| variant | what | stores/s by round |",
        "| --- | --- | --- |",
    ]
    for r in rows:
        rates = ", ".join(f"{m.rate:.0f}" for m in measurements if m.variant == r.variant.name)
        lines.append(f"| {r.variant.name} | {r.variant.note} | {rates} |")
    lines += [
        "",
        f"- machine: {_machine()}",
        f"- date: {when}",
        f"- command: `{command}`",
    ]
    return "\n".join(lines) + "\n"


def update_markdown(path: Path, section: str) -> None:
    """Rewrite this benchmark's section of `path` (created with an intro if missing)."""
    rewrite_section(path, BEGIN_MARKER, END_MARKER, section, _INTRO)


def _table(rows: Sequence[Row]) -> str:
    header = f"{'variant':<44} {'median/s':>9} {'min':>7} {'max':>7} {'ratio':>6} {'target':>7} met"
    out = [header, "-" * len(header)]
    for r in rows:
        target = "base" if r.variant.baseline else f"{r.variant.target:.2f}" if r.variant.target else "-"
        met = "-" if r.met is None else "yes" if r.met else "NO"
        out.append(
            f"{r.variant.name:<44} {r.median:>9.0f} {r.low:>7.0f} {r.high:>7.0f} {r.ratio:>6.2f} {target:>7} {met}"
        )
    return "\n".join(out)


# -- command line -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python scripts/bench_store.py", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every variant (default 5)")
    parser.add_argument("--stores", type=int, default=500, help="C-STOREs per association (default 500)")
    parser.add_argument("--markdown", type=Path, help="rewrite the bench_store section of this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 50 or not 1 <= args.stores <= 20000:
        parser.error("--rounds must be within 1..50 and --stores within 1..20000")
    command = "python scripts/bench_store.py " + " ".join(sys.argv[1:] if argv is None else argv)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    datasets = make_datasets(args.stores)
    measurements: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="bench_store-") as scratch:
        for round_ in range(args.rounds):
            shift = round_ % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                m = measure(variant, datasets, round_, Path(scratch))
                measurements.append(m)
                print(f"round {round_ + 1}/{args.rounds}  {variant.name:<44} {m.rate:8.0f} stores/s", flush=True)
    rows = summarise(VARIANTS, measurements)
    print()
    print(_table(rows))
    print(f"\n{_machine()}\n{when}\n{command.strip()}")
    if args.markdown is not None:
        section = render_markdown(
            rows, measurements, stores=args.stores, rounds=args.rounds, command=command.strip(), when=when
        )
        update_markdown(args.markdown, section)
        print(f"wrote {args.markdown}")
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
