"""Benchmark of the performance phase's operations (simulators.loadgen) against bare pynetdicom loops doing the same.

Each metric of docs/design/load-and-attack.md 5.1 is measured twice per round against the same
PACS simulator processes on 127.0.0.1: once through `loadgen` (the path the performance suite
takes: Session, Modality._associate, CheapContexts, result records) and once by a bare
pynetdicom loop (one AE, TCP_NODELAY and the shallow context copy, as the bench_store baseline
sets TCP_NODELAY: without them it would measure pynetdicom's defaults rather than the harness).
Rounds interleave the two (the order alternating, the metrics rotated each round); the headline
per metric is the rate ratio median(bare seconds) / median(loadgen seconds): 1.0 means the
harness adds nothing, the target is >= 0.9.

    python scripts/bench_perf_suite.py [--rounds 8] [--markdown docs/benchmarks.md]

Exits 1 if a metric misses its target, so a rerun can be scripted.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pynetdicom
from _docs import rewrite_section  # scripts/ is on sys.path when a script runs
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.presentation import PresentationContext, build_context

from simulators._arrivals import c_stores, read_arrivals
from simulators._contexts import CheapContexts
from simulators._net import QR_MODELS, VERIFICATION, no_delay, parse_listening, qr_sop_class
from simulators.corpus import DEFAULT_SEED, CorpusItem, generate
from simulators.endpoint import Endpoint
from simulators.loadgen import (
    Block,
    association_block,
    echo_op,
    find_op,
    fresh_study,
    latency_block,
    retrieve_block,
    store_contexts,
    study_block,
)
from simulators.modality import Modality
from simulators.pacs import STORAGE_SOP_CLASSES
from simulators.session import Session, echo_contexts, get_contexts

__all__ = ["BEGIN_MARKER", "END_MARKER", "METRICS", "Row", "build_parser", "main", "render_markdown"]

BEGIN_MARKER = "<!-- bench_perf_suite:begin -->"
END_MARKER = "<!-- bench_perf_suite:end -->"
TARGET = 0.9  # the bar: the harness's path at least 0.9x the bare loop's rate
_AE = "PGBENCH"
_TIMEOUT = 10.0  # ACSE, DIMSE and network timeouts of every AE here, seconds
_STARTUP = 30.0  # a PACS process must print its listening line within this, seconds
_PARALLEL = 4
_N_ASSOC, _N_ECHO, _N_FIND = 10, 20, 10  # operations per block (design 5.1)
METRICS = (
    "association.setup",
    "echo.latency",
    "store.study",
    "store.study.parallel",
    "find.patient",
    "find.study",
    "find.series",
    "find.image",
    "move.first",
    "move.last",
    "get.first",
    "get.last",
)
# pynetdicom 3.0.4's requestor reactor can take a response off the queue meant for the send_*() call
# ("Received unexpected C-STORE service message"; docs/benchmarks.md, C-STORE notes), which then waits out
# the DIMSE timeout and aborts. The simulators guard against it (simulators._net.ReactorCheckpoint), a bare
# loop does not: such a bare try is discarded and redone, and the count reported.
_RETRIES = 3


class _Lost(RuntimeError):
    """A bare operation got no response or lost its association: pynetdicom's race (see _RETRIES)."""


_LATENCY_UNITS = frozenset(
    {"association.setup", "echo.latency", "find.patient", "find.study", "find.series", "find.image"}
)
# What one round runs: a unit gives one metric, or two (first and last) for a retrieve.
_UNITS = ("association.setup", "echo.latency", "store.study", "store.study.parallel", "find.patient",
          "find.study", "find.series", "find.image", "move", "get")  # fmt: skip


@dataclass(frozen=True)
class Setup:
    """What every measurement works on: the PACS (SRC, holding the corpus), DEST's arrival log, the study."""

    src: Endpoint
    dest_ae: str
    dest_arrivals: Path
    study: tuple[Dataset, ...]
    item: CorpusItem  # one object of the study: its keys drive the finds
    proposal: tuple[PresentationContext, ...]  # the suites' full proposal for association.setup


@dataclass(frozen=True)
class Row:
    """One metric over all rounds."""

    metric: str
    loadgen: float  # median seconds
    bare: float
    samples: int  # per variant
    failed: int  # failed operations, both variants

    @property
    def ratio(self) -> float:
        return self.bare / self.loadgen

    @property
    def met(self) -> bool:
        return self.ratio >= TARGET


# -- the peers ---------------------------------------------------------------------------------


@contextmanager
def _pacs(tmp: Path, ae_title: str, *extra: str) -> Iterator[tuple[Endpoint, Path]]:
    """A PACS simulator process with an arrival log; yields where it listens and the log's path."""
    arrivals = tmp / f"{ae_title}.arrivals.jsonl"
    cmd = [sys.executable, "-m", "simulators.pacs", "--ae-title", ae_title, "--port", "0"]
    cmd += ["--storage", str(tmp / ae_title), "--arrivals", str(arrivals), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        if not select.select([proc.stdout], [], [], _STARTUP)[0]:
            raise RuntimeError(f"{ae_title}: no 'listening' line within {_STARTUP:.0f} s")
        host, port = parse_listening(proc.stdout.readline())["dicom"]
        yield Endpoint(ae_title, host, port), arrivals
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _proposal() -> tuple[PresentationContext, ...]:
    """Verification, the six Q/R contexts and storage contexts up to 128, pynetdicom's default syntaxes."""
    uids = [VERIFICATION, *QR_MODELS.values(), *STORAGE_SOP_CLASSES]
    return tuple(build_context(uid) for uid in uids[:128])


# -- bare pynetdicom ---------------------------------------------------------------------------


def _bare_ae() -> Any:
    ae = AE(ae_title=_AE)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = _TIMEOUT
    return ae


def _bare_assoc(ae: Any, peer: Endpoint, contexts: Sequence[PresentationContext], **kw: Any) -> Any:
    handlers = [(evt.EVT_CONN_OPEN, no_delay), *kw.pop("evt_handlers", [])]
    assoc = ae.associate(
        peer.host, peer.port, contexts=CheapContexts(contexts), ae_title=peer.ae_title, evt_handlers=handlers, **kw
    )
    if not assoc.is_established:
        raise _Lost(f"bare: no association with {peer.ae_title}")
    return assoc


def _bare_latency(peer: Endpoint, contexts: Sequence[PresentationContext], op: Callable[[Any], bool], n: int) -> Block:
    assoc = _bare_assoc(_bare_ae(), peer, contexts)
    values: list[float] = []
    failed = 0
    try:
        op(assoc)
        for _ in range(n):
            start = time.perf_counter_ns()
            ok = op(assoc)
            values.append((time.perf_counter_ns() - start) / 1e9)
            failed += not ok
    finally:
        if assoc.is_established:
            assoc.release()
    return Block("", tuple(values), n, failed)


def _status(rsp: Dataset) -> int:
    if "Status" not in rsp:
        raise _Lost("no response")
    return int(rsp.Status)


def _bare_echo(assoc: Any) -> bool:
    return _status(assoc.send_c_echo()) == 0


def _bare_find(query: Dataset, model: str) -> Callable[[Any], bool]:
    def op(assoc: Any) -> bool:
        status = None
        for rsp, _ in assoc.send_c_find(query, qr_sop_class(model, "find")):
            status = _status(rsp)
        return status == 0

    return op


def _bare_association(peer: Endpoint, contexts: Sequence[PresentationContext], n: int) -> Block:
    ae = _bare_ae()
    values: list[float] = []
    for _ in range(n):
        start = time.perf_counter_ns()
        assoc = _bare_assoc(ae, peer, contexts)
        values.append((time.perf_counter_ns() - start) / 1e9)
        assoc.release()
    return Block("", tuple(values), n, 0, associations=n)


def _bare_study(peer: Endpoint, datasets: Sequence[Dataset], parallel: int) -> Block:
    contexts = store_contexts(datasets)
    shares = [list(datasets[i::parallel]) for i in range(parallel)]
    ends: list[int] = []
    bad: list[int] = []
    barrier = threading.Barrier(parallel + 1, timeout=_TIMEOUT)

    def work(share: list[Dataset]) -> None:
        barrier.wait()
        try:
            assoc = _bare_assoc(_bare_ae(), peer, contexts)
        except _Lost:
            return  # counted below as an association that did not finish
        try:
            for ds in share:
                rsp = assoc.send_c_store(ds)
                bad.extend([1] if _status(rsp) != 0 else [])
            ends.append(time.perf_counter_ns())
        except (_Lost, RuntimeError):  # aborted after a lost response: pynetdicom's race
            return
        finally:
            if assoc.is_established:
                assoc.release()

    threads = [threading.Thread(target=work, args=(s,), daemon=True) for s in shares]
    for t in threads:
        t.start()
    t0 = time.perf_counter_ns()
    barrier.wait()
    for t in threads:
        t.join(timeout=4 * _TIMEOUT + _TIMEOUT * len(datasets))
    if len(ends) != parallel:
        raise _Lost(f"bare study store: {parallel - len(ends)} of {parallel} associations did not finish")
    return Block("", ((max(ends) - t0) / 1e9,), 1, len(bad), associations=parallel)


def _bare_get(peer: Endpoint, query: Dataset, pairs: Sequence[tuple[str, str]]) -> tuple[Block, Block]:
    contexts, roles = get_contexts("study", pairs)
    times: list[int] = []

    def on_store(event: Any) -> int:
        times.append(time.perf_counter_ns())
        return 0x0000

    assoc = _bare_assoc(_bare_ae(), peer, contexts, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        t0 = time.perf_counter_ns()
        status = [_status(rsp) for rsp, _ in assoc.send_c_get(query, qr_sop_class("study", "get"))][-1]
    finally:
        if assoc.is_established:
            assoc.release()
    return _pair(status, [(t - t0) / 1e9 for t in times])


def _bare_move(peer: Endpoint, query: Dataset, destination: str, arrivals: Path, expected: int) -> tuple[Block, Block]:
    assoc = _bare_assoc(_bare_ae(), peer, [build_context(qr_sop_class("study", "move"))])
    offset = arrivals.stat().st_size if arrivals.exists() else 0
    try:
        t0 = time.time_ns()
        status = [_status(rsp) for rsp, _ in assoc.send_c_move(query, destination, qr_sop_class("study", "move"))][-1]
    finally:
        if assoc.is_established:
            assoc.release()
    deadline = time.monotonic() + _TIMEOUT
    found: list[int] = []
    while len(found) < expected and time.monotonic() < deadline:
        lines, offset = read_arrivals(arrivals, offset)
        found += [a.t_ns for a in c_stores(lines)]
        time.sleep(0.01)
    return _pair(status, [(t - t0) / 1e9 for t in found])


def _pair(status: int, seconds: list[float]) -> tuple[Block, Block]:
    failed = int(status != 0 or not seconds)
    return Block("", (min(seconds),), 1, failed), Block("", (max(seconds),), 1, failed)


# -- one unit, both ways ------------------------------------------------------------------------


def _run(unit: str, variant: str, setup: Setup, round_: int, modality: Modality) -> dict[str, Block]:
    """Measure `unit` once through loadgen or the bare loop; blocks by metric."""
    src, item = setup.src, setup.item
    loadgen = variant == "loadgen"
    if unit == "association.setup":
        block = (
            association_block(src, setup.proposal, _N_ASSOC, modality=modality)
            if loadgen
            else _bare_association(src, setup.proposal, _N_ASSOC)
        )
        return {unit: block}
    if unit == "echo.latency":
        if loadgen:
            return {
                unit: latency_block(unit, lambda: Session(src, echo_contexts(), modality=modality), echo_op(), _N_ECHO)
            }
        return {unit: _bare_latency(src, echo_contexts(), _bare_echo, _N_ECHO)}
    if unit.startswith("find."):
        level = unit.split(".")[1].upper()
        model = "patient" if level == "PATIENT" else "study"
        query = _find_query(level, item)
        contexts = [build_context(qr_sop_class(model, "find"))]
        if loadgen:
            factory = lambda: Session(src, contexts, modality=modality)  # noqa: E731
            return {unit: latency_block(unit, factory, find_op(query, model), _N_FIND)}
        return {unit: _bare_latency(src, contexts, _bare_find(query, model), _N_FIND)}
    if unit.startswith("store."):
        parallel = _PARALLEL if unit.endswith("parallel") else 1
        if loadgen:
            return {
                unit: study_block(
                    src, setup.study, parallel, seed=DEFAULT_SEED, round=round_, metric=unit, modality=modality
                )
            }
        datasets = fresh_study(setup.study, seed=DEFAULT_SEED, salt=f"bare/{unit}/{round_}")
        return {unit: _bare_study(src, datasets, parallel)}
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = item.study_instance_uid
    if unit == "get":
        pairs = [(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in setup.study]
        first, last = (
            retrieve_block(src, query, "get", sop_classes=pairs, modality=modality)
            if loadgen
            else _bare_get(src, query, pairs)
        )
    else:
        first, last = (
            retrieve_block(
                src, query, "move", destination=setup.dest_ae, arrivals=setup.dest_arrivals, modality=modality
            )
            if loadgen
            else _bare_move(src, query, setup.dest_ae, setup.dest_arrivals, len(setup.study))
        )
    return {f"{unit}.first": first, f"{unit}.last": last}


def _find_query(level: str, item: CorpusItem) -> Dataset:
    """The design's keys per level: PatientID / StudyInstanceUID / + SeriesInstanceUID / + SOPInstanceUID."""
    query = Dataset()
    query.QueryRetrieveLevel = level
    if level == "PATIENT":
        query.PatientID = item.patient_id
        return query
    query.StudyInstanceUID = item.study_instance_uid
    if level in ("SERIES", "IMAGE"):
        query.SeriesInstanceUID = item.series_instance_uid
    if level == "IMAGE":
        query.SOPInstanceUID = item.sop_instance_uid
    return query


def _measure(unit: str, variant: str, setup: Setup, key: int, modality: Modality) -> tuple[dict[str, Block], int]:
    """`_run`, a bare try lost to pynetdicom's race redone (at most _RETRIES times); the blocks and the tries lost."""
    for lost in range(_RETRIES + 1):
        try:
            # a fresh round number per try: a redone study store must not resend UIDs the PACS already holds
            return _run(unit, variant, setup, key + lost, modality), lost
        except _Lost as exc:
            print(f"  {unit} ({variant}): {exc}; redoing it", file=sys.stderr, flush=True)
    raise RuntimeError(f"{unit} ({variant}): {_RETRIES + 1} tries lost to pynetdicom's response race")


# -- results -----------------------------------------------------------------------------------


def summarise(blocks: dict[tuple[str, str], list[Block]]) -> list[Row]:
    rows = []
    for metric in METRICS:
        got = {v: [x for b in blocks.get((metric, v), []) for x in b.values] for v in ("loadgen", "bare")}
        failed = sum(b.failed for v in ("loadgen", "bare") for b in blocks.get((metric, v), []))
        rows.append(
            Row(metric, statistics.median(got["loadgen"]), statistics.median(got["bare"]), len(got["loadgen"]), failed)
        )
    return rows


def _machine() -> str:
    return (
        f"{os.cpu_count()} CPUs (nproc), {platform.system()} {platform.release()} {platform.machine()}, "
        f"Python {platform.python_version()}, pydicom {pydicom.__version__}, pynetdicom {pynetdicom.__version__}"
    )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def render_markdown(
    rows: Sequence[Row], *, rounds: int, repeat: int, images: int, retried: int, command: str, when: str, load: str
) -> str:
    """The section: the headline, the table, how it was measured and on what."""
    worst = min(rows, key=lambda r: r.ratio)
    verdict = "met" if all(r.met for r in rows) else "**NOT met**"
    lines = [
        "## Performance operations: loadgen against bare pynetdicom (`scripts/bench_perf_suite.py`)",
        "",
        f"- **lowest rate ratio {worst.ratio:.2f}x** ({worst.metric}); "
        f"target >= {TARGET:.2f}x for every metric: {verdict}",
        "",
        "| metric | loadgen median ms | bare median ms | rate ratio | samples per variant | failed ops | met |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        met = "yes" if r.met else "**no**"
        lines.append(
            f"| {r.metric} | {r.loadgen * 1e3:.2f} | {r.bare * 1e3:.2f} | {r.ratio:.2f} | {r.samples} "
            f"| {r.failed} | {met} |"
        )
    lines += [
        "",
        f"{rounds} rounds; in each, every metric once through `simulators.loadgen` and once by a bare pynetdicom "
        "loop, the two in alternating order and the metrics rotated from round to round, against the same PACS "
        "simulator processes on 127.0.0.1 (SRC holding the corpus; DEST, its C-MOVE destination, with `--arrivals`). "
        f"Blocks as in the design: {_N_ASSOC} associations with the suites' full proposal (128 contexts), a warm-up "
        f"then {_N_ECHO} C-ECHOs or {_N_FIND} C-FINDs on one association, one study ({images} objects, the corpus's "
        f"largest, new UIDs each time) on one association and over {_PARALLEL}, one C-MOVE and one C-GET of it "
        f"({repeat} such blocks per round each way, alternating, since each gives one value; first and last "
        "object: C-GET in this process, C-MOVE at DEST's arrival log, `time.time_ns()` in both). "
        "The bare loop: one pynetdicom AE, TCP_NODELAY and the shallow context copy (as the simulators do), the "
        "pynetdicom call timed with `time.perf_counter_ns()`. Rate ratio = bare median / loadgen median: above 1 "
        "the harness's path is faster. Bare tries lost to pynetdicom's response race (the simulators guard "
        f"against it) and redone: {retried}.",
        "",
        f"- load average (1, 5, 15 min) at start and end: {load}",
        f"- machine: {_machine()}",
        f"- date: {when}",
        f"- command: `{command}`",
    ]
    return "\n".join(lines) + "\n"


# -- command line ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python scripts/bench_perf_suite.py", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="rounds of every metric, both ways (default 8)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="blocks per round of the one-value metrics (stores, retrieves), each way (default 3)",
    )
    parser.add_argument("--markdown", type=Path, help="rewrite the bench_perf_suite section of this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 200 or not 1 <= args.repeat <= 20:
        parser.error("--rounds must be within 1..200 and --repeat within 1..20")
    command = ("python scripts/bench_perf_suite.py " + " ".join(sys.argv[1:] if argv is None else argv)).strip()
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_start = _load()
    corpus = generate(DEFAULT_SEED)
    item = corpus[0]
    study = tuple(i.dataset for i in corpus if i.study_instance_uid == item.study_instance_uid)
    modality = Modality(_AE, acse_timeout=_TIMEOUT, dimse_timeout=_TIMEOUT, network_timeout=_TIMEOUT)
    blocks: dict[tuple[str, str], list[Block]] = {}
    retried = 0
    with tempfile.TemporaryDirectory(prefix="bench_perf_suite-") as scratch:
        tmp = Path(scratch)
        with (
            _pacs(tmp, "DEST") as (dest, dest_arrivals),
            _pacs(tmp, "SRC", "--destination", f"DEST={dest.host}:{dest.port}") as (src, _),
        ):
            stored = modality.store(src, [i.dataset for i in corpus])
            if any(o.status != 0 for o in stored.instances):
                raise RuntimeError(f"could not store the corpus in SRC: {stored.summary()}")
            setup = Setup(src, "DEST", dest_arrivals, study, item, _proposal())
            for round_ in range(args.rounds):
                shift = round_ % len(_UNITS)
                variants = ("loadgen", "bare") if round_ % 2 == 0 else ("bare", "loadgen")
                for unit in _UNITS[shift:] + _UNITS[:shift]:
                    # A store or retrieve gives one value per block: several blocks per round, each pair in turn.
                    for again in range(1 if unit in _LATENCY_UNITS else args.repeat):
                        for variant in variants if again % 2 == 0 else variants[::-1]:
                            key = round_ * 100 + again * 10  # distinct per block: new UIDs for every study store
                            measured, lost = _measure(unit, variant, setup, key, modality)
                            retried += lost
                            for metric, block in measured.items():
                                blocks.setdefault((metric, variant), []).append(block)
                print(f"round {round_ + 1}/{args.rounds} done (load {_load()})", flush=True)
    rows = summarise(blocks)
    load = f"{load_start} / {_load()}"
    print(f"\n{'metric':<22} {'loadgen ms':>11} {'bare ms':>9} {'ratio':>6} met")
    for r in rows:
        print(
            f"{r.metric:<22} {r.loadgen * 1e3:>11.2f} {r.bare * 1e3:>9.2f} {r.ratio:>6.2f} {'yes' if r.met else 'NO'}"
        )
    print(f"\nbare tries redone: {retried}\nload average {load}\n{_machine()}\n{when}\n{command}")
    if args.markdown is not None:
        section = render_markdown(
            rows,
            rounds=args.rounds,
            repeat=args.repeat,
            images=len(study),
            retried=retried,
            command=command,
            when=when,
            load=load,
        )
        rewrite_section(args.markdown, BEGIN_MARKER, END_MARKER, section)
        print(f"wrote {args.markdown}")
    return 0 if all(r.met for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
