"""Session: one kept association to a peer, for many operations (echo, find, store, move, get) in a row.

`Modality` opens an association per call, which is right for a suite case that observes the
association. Timed loops (simulators.loadgen) and cases that share an association keep one
open instead: a C-FIND on an open association costs a fraction of one on a new association.
The association is made by `Modality._associate` (its AE title, timeouts, TLS, user identity,
TCP_NODELAY and the race-free reactor checkpoint), with the proposed contexts in a
`CheapContexts` list so pynetdicom's deep copy of them is shallow. Results are the modality's
frozen result types; failures are results with an `error`, never exceptions. A session opened
with PATCHGATE_TRACE set writes its association and operations there (simulators._trace).

    with Session(peer, [build_context(VERIFICATION)]) as session:
        session.echo()
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.presentation import PresentationContext, build_context, build_role

from simulators._contexts import CheapContexts
from simulators._net import VERIFICATION, carries, qr_sop_class
from simulators._trace import TRACE_VAR, query_fields, store_fields, trace_caller, trace_line, trace_peer, traced
from simulators.endpoint import JSON, Endpoint
from simulators.modality import (
    _NO_RESPONSE,
    _PENDING,
    EchoResult,
    FindResult,
    Modality,
    Model,
    StoreOutcome,
    _Counts,
)

__all__ = ["Received", "RetrieveResult", "Session", "echo_contexts", "get_contexts"]

_MAX_CONTEXTS = 128  # PS3.8 9.3.2.2: presentation context ids are odd numbers 1..255
_TRACE_IDS = itertools.count(1)  # sessions numbered per process in PATCHGATE_TRACE lines


@dataclass(frozen=True)
class Received:
    """One C-STORE a C-GET delivered on the session, as its handler saw it."""

    perf_ns: int  # time.perf_counter_ns() when the handler was called (the object whole)
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    bytes: int


@dataclass(frozen=True)
class RetrieveResult:
    """A C-MOVE or C-GET on the session: final status and sub-operation counts (PS3.4 C.4.2.1.6, C.4.3.1.6)."""

    status: int | None
    completed: int = 0
    failed: int = 0
    warning: int = 0
    received: tuple[Received, ...] = ()  # C-GET: the objects, in arrival order; C-MOVE: none (they go elsewhere)
    error: str = ""


def get_contexts(model: Model, pairs: Iterable[tuple[str, str]]) -> tuple[list[PresentationContext], list[Any]]:
    """Contexts and SCP/SCU role items for a C-GET session accepting objects of the (SOP class, syntax) pairs."""
    unique = list(dict.fromkeys((str(a), str(t)) for a, t in pairs))[: _MAX_CONTEXTS - 1]
    contexts = [build_context(qr_sop_class(model, "get"))] + [build_context(a, [t]) for a, t in unique]
    roles = [build_role(a, scp_role=True) for a in dict.fromkeys(a for a, _ in unique)]
    return contexts, roles


class Session:
    """One association, opened on construction and kept until `close()` (or the end of a `with` block).

    `roles` are SCP/SCU role selection items (a C-GET session: `get_contexts`); `handlers` extra
    pynetdicom event handlers. A C-STORE arriving on the session (C-GET sub-operations) is
    answered 0x0000 and recorded in `received`. `sent_bytes` counts the data set bytes of the
    C-STORE-RQs sent.
    """

    def __init__(
        self,
        peer: Endpoint,
        contexts: Sequence[PresentationContext],
        *,
        modality: Modality | None = None,
        roles: Sequence[Any] = (),
        handlers: Sequence[Any] = (),
    ) -> None:
        self.peer = peer
        self.modality = modality or Modality()
        self.received: list[Received] = []
        self.sent_bytes = 0
        self.trace_id = 0  # > 0 once traced: the `session` of its lines in PATCHGATE_TRACE
        self.trace_path = os.environ.get(TRACE_VAR, "")  # looked up once: the operations read this
        if len(contexts) > _MAX_CONTEXTS:
            self.assoc: Any = None
            self.error = f"{len(contexts)} presentation contexts proposed, at most {_MAX_CONTEXTS} fit (PS3.8 9.3.2.2)"
            return
        own = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_DIMSE_SENT, self._on_sent)]
        self.assoc, self.error = self.modality._associate(
            peer, CheapContexts(contexts), ext_neg=list(roles) or None, handlers=[*own, *handlers]
        )
        if self.trace_path:
            self._trace_open(self.trace_path, contexts, roles)

    def _trace_open(self, path: str, contexts: Sequence[PresentationContext], roles: Sequence[Any]) -> None:
        self.trace_id = next(_TRACE_IDS)
        line: dict[str, JSON] = {
            "op": "associate",
            "session": self.trace_id,
            **trace_caller(self.modality),
            "peer": trace_peer(self.peer),
            "contexts": [[str(cx.abstract_syntax), [str(t) for t in cx.transfer_syntax]] for cx in contexts],
            "roles": [[str(r.sop_class_uid), bool(r.scu_role), bool(r.scp_role)] for r in roles],
            "outcome": {"accepted": self.established, "error": self.error},
            "t": round(time.time(), 6),
        }
        trace_line(path, line)

    @property
    def established(self) -> bool:
        return carries(self.assoc)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @traced("release", session=True)
    def close(self) -> None:
        """Release the association (pynetdicom aborts it if the release is not answered within the ACSE timeout)."""
        assoc, self.assoc = self.assoc, None
        if assoc is None:
            return
        if assoc.is_established:
            assoc.release()  # bounded by the AE's acse_timeout: pynetdicom aborts when it runs out

    def _unusable(self) -> str:
        if self.error:
            return self.error
        return "" if self.established else "the association is closed (released or aborted)"

    # -- operations ------------------------------------------------------------------------

    @traced("echo", session=True)
    def echo(self) -> EchoResult:
        """C-ECHO on the session (PS3.7 9.1.5)."""
        if error := self._unusable():
            return EchoResult(False, None, error)
        try:
            rsp = self.assoc.send_c_echo()
        except (ValueError, RuntimeError) as exc:  # no Verification context, closed meanwhile
            return EchoResult(True, None, f"not sent: {exc}")
        status = int(rsp.Status) if "Status" in rsp else None
        return EchoResult(True, status, "" if status is not None else _NO_RESPONSE)

    @traced("find", query_fields(["model"]), session=True)
    def find(self, query: Dataset, model: Model) -> FindResult:
        """C-FIND `query` in the patient- or study-root model, every response read (PS3.4 C.4.1)."""
        if error := self._unusable():
            return FindResult(False, None, (), error)
        matches: list[Dataset] = []
        status: int | None = None
        try:
            for rsp, identifier in self.assoc.send_c_find(query, qr_sop_class(model, "find")):
                if "Status" not in rsp:
                    return FindResult(True, None, tuple(matches), _NO_RESPONSE)
                status = int(rsp.Status)
                if status in _PENDING and identifier is not None:
                    matches.append(identifier)
        except (ValueError, RuntimeError) as exc:  # no context for the model, an identifier that cannot be encoded
            return FindResult(True, None, tuple(matches), f"not sent: {exc}")
        return FindResult(True, status, tuple(matches))

    @traced("store", store_fields, session=True)
    def store(self, datasets: Iterable[Dataset]) -> tuple[StoreOutcome, ...]:
        """C-STORE each dataset in turn (PS3.4 B.2); one outcome per dataset, in order."""
        outcomes: list[StoreOutcome] = []
        for ds in datasets:
            ids = (str(ds.get("SOPClassUID", "")), str(ds.get("SOPInstanceUID", "")), _syntax(ds))
            if error := self._unusable():
                outcomes.append(StoreOutcome(*ids, None, error))
                continue
            try:
                rsp = self.assoc.send_c_store(ds)
            except (ValueError, AttributeError, RuntimeError, OSError) as exc:  # no context, no file meta ...
                outcomes.append(StoreOutcome(*ids, None, f"not sent: {exc}"))
                continue
            status = int(rsp.Status) if "Status" in rsp else None
            outcomes.append(StoreOutcome(*ids, status, "" if status is not None else _NO_RESPONSE))
        return tuple(outcomes)

    @traced("move", query_fields(["destination", "model"]), session=True)
    def move(self, query: Dataset, destination: str, model: Model, *, msg_id: int = 1) -> RetrieveResult:
        """C-MOVE what `query` names to the AE `destination` (PS3.4 C.4.2), every response read."""
        if error := self._unusable():
            return RetrieveResult(None, error=error)
        return self._retrieve(lambda: self.assoc.send_c_move(query, destination, qr_sop_class(model, "move"), msg_id))

    @traced("get", query_fields(["model"]), session=True)
    def get(self, query: Dataset, model: Model, *, msg_id: int = 1) -> RetrieveResult:
        """C-GET what `query` names (PS3.4 C.4.3); the objects come on this association, into `received`."""
        if error := self._unusable():
            return RetrieveResult(None, error=error)
        start = len(self.received)
        result = self._retrieve(lambda: self.assoc.send_c_get(query, qr_sop_class(model, "get"), msg_id))
        return RetrieveResult(
            result.status,
            result.completed,
            result.failed,
            result.warning,
            tuple(self.received[start:]),
            result.error,
        )

    def _retrieve(self, send: Any) -> RetrieveResult:
        counts = _Counts()
        try:
            for rsp, identifier in send():
                if not counts.update(rsp, identifier):
                    break
        except (ValueError, RuntimeError) as exc:
            return RetrieveResult(None, error=f"not sent: {exc}")
        return RetrieveResult(counts.status, counts.completed, counts.failed, counts.warning, (), counts.error)

    # -- handlers (pynetdicom's threads) ----------------------------------------------------

    def _on_store(self, event: Any) -> int:
        perf_ns = time.perf_counter_ns()  # first: the object is whole now; what follows is bookkeeping
        request = event.request
        self.received.append(
            Received(
                perf_ns,
                str(request.AffectedSOPClassUID),
                str(request.AffectedSOPInstanceUID),
                str(event.context.transfer_syntax),
                int(request.DataSet.getbuffer().nbytes),
            )
        )
        return 0x0000

    def _on_sent(self, event: Any) -> None:
        data = getattr(event.message, "data_set", None)
        if type(event.message).__name__ == "C_STORE_RQ" and data is not None:
            self.sent_bytes += int(data.getbuffer().nbytes)


def echo_contexts() -> list[PresentationContext]:
    """The Verification context alone."""
    return [build_context(VERIFICATION)]


def _syntax(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
