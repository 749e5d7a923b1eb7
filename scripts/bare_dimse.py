"""Replay a PATCHGATE_TRACE file's DIMSE operations with bare pynetdicom, for scripts/bench_suites.py.

The suites write one JSON line per operation when PATCHGATE_TRACE=FILE is set (simulators/modality.py
`traced`, simulators/session.py). This replays them in the same order with one AE, TCP_NODELAY, and
the same associations: an operation of `Modality` on its own association proposing the contexts
`Modality` would, a `Session`'s operations on one association opened with the traced contexts and
roles; the called AE title as traced, the address mapped by `--peer` from the traced port. Data sets come from the
corpus (`--seed`, `--corpus-size`: the run manifest's `corpus`) by SOP Instance UID. Storage commitment is replayed
when `--report-port` says where the device sends reports on a new association: the same N-ACTION, the association
kept open as long as traced, the report taken on it or on a listener there. Pynetdicom has no requester's side of
its own (released before its N-EVENT-REPORT-RSP has left, the reporter waits in vain), so the replay uses the
suites' (simulators.commitment_scu). Not replayed, and counted under `skipped`: storage commitment without
`--report-port`, TLS peers, ports not given with `--peer`, and instances the corpus does not hold. The data sets
are made before the clock starts. Its pynetdicom keeps its own reactor loops (PATCHGATE_REACTOR=0), unlike the
simulators and suites (simulators._reactor).

    python scripts/bare_dimse.py trace.jsonl --peer 28438=127.0.0.1:11112 --seed 1422 --report-port 28440 --json
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.pdu_primitives import UserIdentityNegotiation
from pynetdicom.presentation import PresentationContext, build_context, build_role
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ModalityPerformedProcedureStep,
    ModalityWorklistInformationFind,
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

__all__ = ["Replay", "load_trace", "main", "replay"]

# Bare means pynetdicom's own reactor loops: the simulators modules imported later would otherwise
# install patchgate's (simulators._reactor), and the suites would be measured against it, not against bare.
os.environ.setdefault("PATCHGATE_REACTOR", "0")

_QR = {
    ("patient", "find"): PatientRootQueryRetrieveInformationModelFind,
    ("study", "find"): StudyRootQueryRetrieveInformationModelFind,
    ("patient", "move"): PatientRootQueryRetrieveInformationModelMove,
    ("study", "move"): StudyRootQueryRetrieveInformationModelMove,
    ("patient", "get"): PatientRootQueryRetrieveInformationModelGet,
    ("study", "get"): StudyRootQueryRetrieveInformationModelGet,
}
_MAX_CONTEXTS = 128  # PS3.8 9.3.2.2
_PENDING = (0xFF00, 0xFF01)
_OPS = {"echo", "store", "find", "worklist", "move", "get", "mpps_create", "mpps_set", "commit", "associate", "release"}


@dataclass
class Replay:
    """What a replay did: per traced operation its status, and how long the DIMSE part took."""

    lines: int = 0
    replayed: int = 0
    associations: int = 0
    seconds: float = 0.0
    corpus_seconds: float = 0.0
    skipped: Counter[str] = field(default_factory=Counter)
    op_seconds: dict[str, float] = field(default_factory=dict)  # per traced op, associations included
    results: list[dict[str, Any]] = field(default_factory=list)  # op, traced status, replayed status

    @property
    def mismatches(self) -> int:
        return sum(1 for r in self.results if r["traced"] != r["replayed"])

    def summary(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "replayed": self.replayed,
            "associations": self.associations,
            "seconds": round(self.seconds, 4),
            "corpus_seconds": round(self.corpus_seconds, 4),
            "skipped": dict(sorted(self.skipped.items())),
            "op_seconds": {op: round(s, 4) for op, s in sorted(self.op_seconds.items())},
            "mismatches": self.mismatches,
            "results": self.results,
        }


def load_trace(path: Path, pid: int | None = None) -> list[dict[str, Any]]:
    """The trace's lines of process `pid` (default: the process with the most lines), in order.

    Other processes (a simulator that uses `Modality` too) may append to the same file.
    """
    lines: list[dict[str, Any]] = []
    for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            line = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"{path}:{n}: not a JSON line ({exc}); is it a PATCHGATE_TRACE file?") from None
        if not isinstance(line, dict) or line.get("op") not in _OPS or "peer" not in line:
            raise SystemExit(f"{path}:{n}: not a trace line (needs 'op' one of {sorted(_OPS)} and 'peer')")
        lines.append(line)
    if pid is None and lines:
        pid = Counter(line.get("pid") for line in lines).most_common(1)[0][0]
    return [line for line in lines if line.get("pid") == pid]


def _no_delay(event: Any) -> None:
    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _on_store(event: Any) -> int:
    return 0x0000  # C-GET sub-operations: take the object, keep nothing


def _identity(traced: dict[str, Any] | None) -> UserIdentityNegotiation | None:
    """The user identity item the suites sent (PS3.7 D.3.3.7.1), from its traced fields."""
    if not traced:
        return None
    # The suites' constructor: pynetdicom cannot encode an empty passcode, which a case sends on purpose.
    from simulators.identity.negotiation import IdentityKind, negotiation

    return negotiation(
        IdentityKind.from_code(traced["type"]),
        base64.b64decode(traced["primary"]),
        base64.b64decode(traced["secondary"]),
        response_requested=traced["response"],
    )


def _hex(status: int | None) -> str | None:
    return None if status is None else f"0x{status:04X}"


def _status(rsp: Dataset) -> int | None:
    return int(rsp.Status) if "Status" in rsp else None


def _query(line: dict[str, Any]) -> Dataset:
    return Dataset.from_json(line["query"] or {})


class _Replayer:
    """One AE; the association of each traced session; the corpus by SOP Instance UID."""

    def __init__(
        self, peers: dict[int, tuple[str, int]], datasets: dict[str, Dataset], out: Replay, listener: Any = None
    ) -> None:
        self.ae = AE()
        self.ae.acse_timeout = self.ae.dimse_timeout = self.ae.network_timeout = self.ae.connection_timeout = 30
        self.peers = peers
        self.datasets = datasets
        self.out = out
        self.sessions: dict[int, Any] = {}
        self.listener = listener  # simulators.commitment_scu.CommitmentListener: reports on a new association

    def associate(
        self,
        line: dict[str, Any],
        contexts: list[PresentationContext],
        roles: Sequence[Any] = (),
        handlers: Sequence[tuple[Any, Any]] = (),
    ) -> Any:
        host, port = self.peers[line["peer"]["port"]]
        self.ae.ae_title = line.get("calling") or "PGMODALITY"
        self.out.associations += 1
        identity = _identity(line.get("identity"))
        return self.ae.associate(
            host,
            port,
            contexts=contexts[:_MAX_CONTEXTS],
            ae_title=line["peer"]["ae"],
            ext_neg=[*roles, *([identity] if identity is not None else [])] or None,
            evt_handlers=[(evt.EVT_CONN_OPEN, _no_delay), (evt.EVT_C_STORE, _on_store), *handlers],
        )

    def skip_reason(self, line: dict[str, Any]) -> str:
        peer = line["peer"]
        if line["op"] == "commit" and self.listener is None:
            return "commit"
        if peer.get("tls"):
            return "tls"
        if peer["port"] not in self.peers:
            return "peer not mapped"
        if line.get("session") and line["op"] != "associate" and line["session"] not in self.sessions:
            return "session not opened"
        return ""

    def run(self, line: dict[str, Any]) -> None:
        if why := self.skip_reason(line):
            self.out.skipped[why] += 1
            return
        op, session = line["op"], int(line.get("session") or 0)
        if op == "associate":
            contexts = [build_context(a, list(t)) for a, t in line["contexts"]]
            roles = [build_role(uid, scu_role=scu, scp_role=scp) for uid, scu, scp in line["roles"]]
            self.sessions[session] = self.associate(line, contexts, roles)
            replayed = self.sessions[session].is_established
            self._done(line, replayed, line["outcome"]["accepted"])
            return
        if op == "release":
            assoc = self.sessions.pop(session)
            if assoc.is_established:
                assoc.release()
            self.out.replayed += 1
            return
        if session:
            self._op(line, self.sessions[session])
            return
        if op == "commit":
            self._commit(line)
            return
        assoc = self.associate(line, self._contexts(line), self._roles(line))
        try:
            if not assoc.is_established:
                self._done(line, None, line["outcome"].get("status"))
                return
            self._op(line, assoc)
        finally:
            if assoc.is_established:
                assoc.release()

    def _contexts(self, line: dict[str, Any]) -> list[PresentationContext]:
        """The contexts `Modality` proposes for the operation (simulators/modality.py)."""
        op = line["op"]
        if op == "echo":
            return [build_context(Verification)]
        if op == "store":
            pairs = dict.fromkeys((i["sop_class"], i["syntax"]) for i in line["instances"])
            return [build_context(a, [t]) for a, t in pairs]
        if op in ("find", "move", "get"):
            own = [build_context(_QR[(line["model"], op)])]
            pairs = dict.fromkeys(tuple(p) for p in line.get("pairs") or []) if op == "get" else {}
            return own + [build_context(a, [t]) for a, t in list(pairs)[: _MAX_CONTEXTS - 1]]
        if op == "worklist":
            return [build_context(ModalityWorklistInformationFind)]
        return [build_context(ModalityPerformedProcedureStep)]  # mpps_create, mpps_set

    def _roles(self, line: dict[str, Any]) -> list[Any]:
        if line["op"] != "get":
            return []
        classes = dict.fromkeys(a for a, _ in (line.get("pairs") or []))
        return [build_role(a, scp_role=True) for a in classes]

    def _op(self, line: dict[str, Any], assoc: Any) -> None:
        op = line["op"]
        if op == "echo":
            self._done(line, _hex(_status(assoc.send_c_echo())), line["outcome"].get("status"))
        elif op == "store":
            statuses: list[str | None] = []
            for item in line["instances"]:
                ds = self.datasets.get(item["sop_instance"])
                if ds is None:
                    self.out.skipped["instance not in corpus"] += 1
                    statuses.append(None)
                    continue
                statuses.append(_hex(_status(assoc.send_c_store(ds))))
            self._done(line, statuses, line["statuses"])
        elif op in ("find", "worklist"):
            sop_class = ModalityWorklistInformationFind if op == "worklist" else _QR[(line["model"], "find")]
            self._done(line, _hex(self._find(assoc, _query(line), sop_class, line.get("cancel_after"))), line)
        elif op in ("move", "get"):
            query, sop_class = _query(line), _QR[(line["model"], op)]
            if op == "move":
                responses = assoc.send_c_move(query, line["destination"], sop_class)
            else:
                responses = assoc.send_c_get(query, sop_class)
            self._done(line, _hex(_last(responses)), line["outcome"].get("status"))
        elif op == "mpps_create":
            attrs = Dataset.from_json(line["attrs"] or {})
            status, _ = assoc.send_n_create(attrs, ModalityPerformedProcedureStep, line["uid"])
            self._done(line, _hex(_status(status)), line["outcome"].get("status"))
        elif op == "mpps_set":
            changes = Dataset.from_json(line["changes"] or {})
            status, _ = assoc.send_n_set(changes, ModalityPerformedProcedureStep, line["uid"])
            self._done(line, _hex(_status(status)), line["outcome"].get("status"))

    def _commit(self, line: dict[str, Any]) -> None:
        """The N-ACTION on an association of its own, kept open as traced for a report on it, else the listener's."""
        from simulators.commitment import PUSH_MODEL
        from simulators.commitment_scu import ReportCatcher

        catcher = ReportCatcher()
        assoc = self.associate(line, [build_context(PUSH_MODEL)], handlers=catcher.handlers())
        if not assoc.is_established:
            self._done(line, None, line["outcome"].get("status"))
            return
        refs = [(a, b) for a, b in line["refs"]]
        got = catcher.request(
            assoc, line["transaction_uid"], refs, keep_open=line["keep_open"], wait_report=10.0, listener=self.listener
        )
        traced = line["outcome"]
        # The status, and whether a report came (the device's wait is what takes the time).
        self._done(line, [_hex(got.action_status), bool(got.error)], [traced.get("status"), bool(traced.get("error"))])

    def _find(self, assoc: Any, query: Dataset, sop_class: str, cancel_after: int | None) -> int | None:
        status, matches = None, 0
        for rsp, identifier in assoc.send_c_find(query, sop_class):
            status = _status(rsp)
            if status is None:
                break
            if status in _PENDING and identifier is not None:
                matches += 1
                if matches == cancel_after:
                    assoc.send_c_cancel(1, query_model=sop_class)
        return status

    def _done(self, line: dict[str, Any], replayed: Any, traced: Any) -> None:
        if isinstance(traced, dict):
            traced = traced["outcome"].get("status")
        self.out.replayed += 1
        self.out.results.append({"op": line["op"], "traced": traced, "replayed": replayed})


def _last(responses: Iterator[tuple[Dataset, Dataset | None]]) -> int | None:
    status = None
    for rsp, _ in responses:
        status = _status(rsp)
        if status is None or status not in _PENDING:
            break
    return status


def _corpus(seed: int, size: str) -> dict[str, Dataset]:
    from simulators.corpus import generate  # the suites' data sets, made the same way

    return {item.sop_instance_uid: item.dataset for item in generate(seed, corpus_size=size)}


def replay(
    lines: Sequence[dict[str, Any]],
    peers: dict[int, tuple[str, int]],
    *,
    seed: int,
    corpus_size: str = "small",
    report_port: int | None = None,
    calling: str = "PGMODALITY",
) -> Replay:
    """Replay `lines` against `peers` (traced port -> host, port now); the corpus made before the clock starts.

    `report_port`: where the device sends storage commitment reports on a new association (to `calling`).
    """
    out = Replay(lines=len(lines))
    t0 = time.perf_counter()
    datasets = _corpus(seed, corpus_size) if any(line["op"] == "store" for line in lines) else {}
    out.corpus_seconds = time.perf_counter() - t0
    listener = None
    if report_port is not None and any(line["op"] == "commit" for line in lines):
        from simulators.commitment_scu import CommitmentListener

        listener = CommitmentListener(calling, port=report_port).start()
    replayer = _Replayer(peers, datasets, out, listener)
    t0 = time.perf_counter()
    try:
        for line in lines:
            t1 = time.perf_counter()
            replayer.run(line)
            out.op_seconds[line["op"]] = out.op_seconds.get(line["op"], 0.0) + time.perf_counter() - t1
    finally:
        for assoc in replayer.sessions.values():  # sessions the trace never released (a suites process killed)
            if assoc.is_established:
                assoc.release()
        out.seconds = time.perf_counter() - t0
        if listener is not None:
            listener.stop()
    return out


def _peer(text: str) -> tuple[int, tuple[str, int]]:
    traced, _, address = text.partition("=")
    host, _, port = address.rpartition(":")
    if not traced.isdigit() or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected TRACED_PORT=HOST:PORT, got {text!r}")
    return int(traced), (host, int(port))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", type=Path, help="a PATCHGATE_TRACE file")
    parser.add_argument(
        "--peer", type=_peer, action="append", default=[], help="TRACED_PORT=HOST:PORT: where that peer is now (repeat)"
    )
    parser.add_argument("--seed", type=int, default=1422, help="corpus seed (the run manifest's corpus.seed)")
    parser.add_argument("--corpus-size", default="small", help="the run manifest's corpus.size")
    parser.add_argument("--pid", type=int, help="replay this process's lines (default: the one with most)")
    parser.add_argument(
        "--report-port",
        type=int,
        help="where the device sends storage commitment reports on a new association (else commitment is skipped)",
    )
    parser.add_argument("--json", action="store_true", help="print the whole summary as JSON")
    args = parser.parse_args(argv)
    if not args.trace.is_file():
        parser.error(f"{args.trace}: no such trace file (set PATCHGATE_TRACE=FILE for the suites to write one)")
    lines = load_trace(args.trace, args.pid)
    result = replay(lines, dict(args.peer), seed=args.seed, corpus_size=args.corpus_size, report_port=args.report_port)
    summary = result.summary()
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"{result.replayed}/{result.lines} operations on {result.associations} associations in "
            f"{result.seconds:.3f} s; skipped {summary['skipped']}; {result.mismatches} status mismatches"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
