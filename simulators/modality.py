"""The modality simulator: a pynetdicom SCU whose every operation returns a frozen, comparable result.

Each method opens one association to the peer, does one thing (C-ECHO, C-STORE of
items, C-FIND, C-MOVE, C-GET) and returns a result whose `summary()` is the JSON a suite
records as an observation. Failures are results with an `error`, never exceptions or logs.

Bit-identity: `dataset_sha256(ds, syntax)` hashes the canonical encoding of a dataset we
send, `ReceivedInstance.sha256` hashes the bytes a C-GET delivered, both with any
deflate undone (deflate is a transport encoding that two correct encoders may do
differently); equal hashes prove the peer returned the very bytes it was given.

    python -m simulators.modality --host 127.0.0.1 --port 11112 --peer-ae PACS echo
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, _config, evt
from pynetdicom.dsutils import encode, split_dataset
from pynetdicom.presentation import build_context, build_role

from simulators._contexts import CheapContexts
from simulators._net import (
    LOOPBACK,
    NO_CONNECTION,
    VERIFICATION,
    carries,
    on_connection_open,
    qr_sop_class,
    queued_answer,
    status_hex,
)
from simulators._trace import commit_fields, get_fields, n_fields, query_fields, store_fields, traced
from simulators.commitment import PUSH_MODEL
from simulators.commitment_scu import CommitmentListener, CommitResult, ReportCatcher
from simulators.endpoint import JSON, Endpoint
from simulators.workflow_scu import MPPS, MWL_FIND, NResult, n_result

__all__ = [
    "NO_CONNECTION",
    "ContextResult",
    "EchoResult",
    "FindResult",
    "GetResult",
    "Modality",
    "MoveResult",
    "ReceivedInstance",
    "StoreOutcome",
    "StoreResult",
    "dataset_sha256",
    "encoded_sha256",
    "file_sha256",
    "main",
]

# Files are sent as the bytes they hold instead of being decoded and re-encoded first.
_config.STORE_SEND_CHUNKED_DATASET = True

Model = Literal["patient", "study"]
_MAX_CONTEXTS = 128
_PENDING = (0xFF00, 0xFF01)
_NO_RESPONSE = "no response from the peer (DIMSE timeout or association aborted)"


def encoded_sha256(data: bytes, transfer_syntax_uid: str) -> str:
    """sha256 (hex) of an encoded dataset (no file meta), inflated first if the syntax is deflated."""
    if UID(transfer_syntax_uid).is_deflated:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        data = inflater.decompress(data) + inflater.flush()
    return hashlib.sha256(data).hexdigest()


def dataset_sha256(ds: Dataset, transfer_syntax_uid: str) -> str:
    """sha256 (hex) of `ds` encoded in `transfer_syntax_uid` as pynetdicom sends it (deflate undone)."""
    syntax = UID(transfer_syntax_uid)
    data = encode(ds, syntax.is_implicit_VR, syntax.is_little_endian, False)
    if data is None:
        raise ValueError(f"cannot encode the dataset in transfer syntax {transfer_syntax_uid}")
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a Part 10 file's dataset bytes as sent (deflate undone), file meta excluded."""
    meta, offset = split_dataset(Path(path))
    return encoded_sha256(Path(path).read_bytes()[offset:], str(meta.TransferSyntaxUID))


@dataclass(frozen=True)
class EchoResult:
    """A C-ECHO: did the association come up, and what status the peer answered.

    `user_identity_response` is the server response of the User Identity item in the peer's
    A-ASSOCIATE-AC (PS3.7 D.3.3.7.2; b"" when the item had none), None without that item. It
    is not in the summary: simulators.identity.negotiation records it for the identity suite.
    """

    accepted: bool
    status: int | None
    error: str = ""
    user_identity_response: bytes | None = None

    def summary(self) -> dict[str, JSON]:
        return {"accepted": self.accepted, "status": status_hex(self.status), "error": self.error}


@dataclass(frozen=True)
class ContextResult:
    """One proposed presentation context and the peer's answer (result 0 accepted, 1-4 rejected why)."""

    abstract_syntax: str
    transfer_syntax: str
    accepted: bool
    result_reason: int | None  # None: no answer, the association never came up

    def summary(self) -> dict[str, JSON]:
        return {
            "abstract_syntax": self.abstract_syntax,
            "transfer_syntax": self.transfer_syntax,
            "accepted": self.accepted,
            "result_reason": self.result_reason,
        }


@dataclass(frozen=True)
class StoreOutcome:
    """One item of a C-STORE: its status, or None with an error when it was not (fully) sent."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    status: int | None
    error: str = ""

    def summary(self) -> dict[str, JSON]:
        return {
            "sop_class_uid": self.sop_class_uid,
            "sop_instance_uid": self.sop_instance_uid,
            "transfer_syntax_uid": self.transfer_syntax_uid,
            "status": status_hex(self.status),
            "error": self.error,
        }


@dataclass(frozen=True)
class StoreResult:
    """A C-STORE association: every context proposed and every item's outcome, in the order given."""

    accepted: bool
    contexts: tuple[ContextResult, ...]
    instances: tuple[StoreOutcome, ...]
    error: str = ""

    def summary(self) -> dict[str, JSON]:
        return {
            "accepted": self.accepted,
            "contexts": [c.summary() for c in self.contexts],
            "instances": [i.summary() for i in self.instances],
            "error": self.error,
        }


@dataclass(frozen=True)
class FindResult:
    """A C-FIND: final status and the pending responses' identifiers in the order received."""

    accepted: bool
    status: int | None
    matches: tuple[Dataset, ...] = field(default=(), compare=False)
    error: str = ""

    def summary(self) -> dict[str, JSON]:
        return {
            "accepted": self.accepted,
            "status": status_hex(self.status),
            "count": len(self.matches),
            "matches": [m.to_json_dict() for m in self.matches],
            "error": self.error,
        }


@dataclass(frozen=True)
class MoveResult:
    """A C-MOVE: final status, sub-operation counts, failed UIDs and how many pending responses came."""

    accepted: bool
    status: int | None
    completed: int = 0
    failed: int = 0
    warning: int = 0
    remaining: int | None = None  # the last value seen; finals usually omit it
    failed_uids: tuple[str, ...] = ()
    pending_responses: int = 0
    error: str = ""

    def summary(self) -> dict[str, JSON]:
        return {
            **_suboperations(self),
            "remaining": self.remaining,
            "failed_uids": sorted(self.failed_uids),
            "pending_responses": self.pending_responses,
            "error": self.error,
        }


@dataclass(frozen=True)
class ReceivedInstance:
    """One object a C-GET delivered: who it is, its syntax, and the sha256 of its bytes as received."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    sha256: str
    dataset: Dataset = field(compare=False, repr=False)
    # The dataset bytes as received (deflated if the syntax is), for checks that need the encoding.
    encoded: bytes = field(default=b"", compare=False, repr=False)
    # Which association it came on, numbered from 1: always the C-GET's own (PS3.4 C.4.3.1.3).
    association: int = 1

    def summary(self) -> dict[str, JSON]:
        return {
            "sop_class_uid": self.sop_class_uid,
            "sop_instance_uid": self.sop_instance_uid,
            "transfer_syntax_uid": self.transfer_syntax_uid,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class GetResult:
    """A C-GET: final status, sub-operation counts, and the objects received in arrival order."""

    accepted: bool
    status: int | None
    completed: int = 0
    failed: int = 0
    warning: int = 0
    received: tuple[ReceivedInstance, ...] = ()
    error: str = ""

    def summary(self) -> dict[str, JSON]:
        return {
            **_suboperations(self),
            # Sub-operation order is not specified by PS3.4 (Orthanc varies it): summarise as a set.
            "received": sorted((r.summary() for r in self.received), key=lambda r: str(r["sop_instance_uid"])),
            "error": self.error,
        }


def _suboperations(result: MoveResult | GetResult) -> dict[str, JSON]:
    """The keys a C-MOVE and a C-GET summary both start with, in their order."""
    return {
        "accepted": result.accepted,
        "status": status_hex(result.status),
        "completed": result.completed,
        "failed": result.failed,
        "warning": result.warning,
    }


@dataclass(frozen=True)
class _Item:
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    payload: Dataset | Path | None  # None: the item could not be read
    error: str = ""


def _item(source: Dataset | Path | str) -> _Item:
    if isinstance(source, Dataset):
        meta = getattr(source, "file_meta", None)
        syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
        item = _Item(str(source.get("SOPClassUID", "")), str(source.get("SOPInstanceUID", "")), syntax, source)
        if not (item.sop_class_uid and item.sop_instance_uid and syntax):
            return _Item(*_ids(item), None, "dataset lacks SOPClassUID, SOPInstanceUID or TransferSyntaxUID")
        return item
    path = Path(source)
    try:
        meta, _ = split_dataset(path)
    except (OSError, ValueError, EOFError, InvalidDicomError) as exc:
        return _Item("", "", "", None, f"cannot read {path.name}: {exc.__class__.__name__}")
    ids = (
        str(meta.get("MediaStorageSOPClassUID", "")),
        str(meta.get("MediaStorageSOPInstanceUID", "")),
        str(meta.get("TransferSyntaxUID", "")),
    )
    if not all(ids):
        return _Item(*ids, None, f"{path.name} has no complete file meta information")
    return _Item(*ids, path)


def _ids(item: _Item) -> tuple[str, str, str]:
    return item.sop_class_uid, item.sop_instance_uid, item.transfer_syntax_uid


def _int(ds: Dataset | None, keyword: str) -> int | None:
    value = ds.get(keyword) if ds is not None else None
    return int(value) if value is not None and value != "" else None


class Modality:
    """A modality SCU; one association per call, results instead of exceptions."""

    def __init__(
        self,
        ae_title: str = "PGMODALITY",
        *,
        acse_timeout: float = 5,
        dimse_timeout: float = 10,
        network_timeout: float = 10,
        ssl_context: Any = None,  # an ssl.SSLContext for peers with tls=True
        identity: Any = None,  # a pynetdicom UserIdentityNegotiation sent with every association request
    ) -> None:
        self.ae_title = ae_title
        self.acse_timeout = acse_timeout
        self.dimse_timeout = dimse_timeout
        self.network_timeout = network_timeout
        self.ssl_context = ssl_context
        self.identity = identity

    def _associate(
        self,
        peer: Endpoint,
        contexts: list[Any],
        *,
        ext_neg: list[Any] | None = None,
        handlers: list[Any] | None = None,
    ) -> tuple[Any, str]:
        """(association, error); the error is deterministic text without addresses or ports."""
        ae = AE(ae_title=self.ae_title)
        ae.acse_timeout = self.acse_timeout
        ae.dimse_timeout = self.dimse_timeout
        ae.network_timeout = self.network_timeout
        ae.connection_timeout = (
            self.network_timeout
        )  # pynetdicom's default None: an unbounded TCP connect/TLS handshake
        seen: list[str] = []  # what happened on the wire, for a precise error

        def on_open(event: Any) -> None:
            seen.append("open")
            on_connection_open(event)

        def on_acse(event: Any) -> None:
            p = getattr(event, "primitive", None)
            seen.append("acse")
            if p is not None and getattr(p, "result", None) in (1, 2):
                seen.append(
                    f"association rejected (result {p.result}, source {p.result_source}, reason {p.diagnostic})"
                )

        if not contexts:
            return None, "no presentation context to propose"
        tls_args = None
        if peer.tls:
            if self.ssl_context is None:
                return None, "peer requires TLS but the modality has no ssl_context"
            tls_args = (self.ssl_context, peer.host)
        try:
            assoc = ae.associate(
                peer.host,
                peer.port,
                contexts=CheapContexts(contexts),  # AE.associate deep-copies them: 14 ms for 120 contexts
                ae_title=peer.ae_title,
                ext_neg=[*(ext_neg or []), *([self.identity] if self.identity is not None else [])] or None,
                tls_args=tls_args,
                evt_handlers=[(evt.EVT_CONN_OPEN, on_open), (evt.EVT_ACSE_RECV, on_acse), *(handlers or [])],
            )
        except (ValueError, RuntimeError, OSError) as exc:  # bad AE title, too many contexts ...
            return None, f"association not requested: {exc}"
        if assoc.is_established:
            return assoc, ""
        rejected = [x for x in seen if x.startswith("association rejected")] or _unread_rejection(assoc)
        if rejected:
            return assoc, rejected[0]
        if "open" not in seen:
            return assoc, NO_CONNECTION
        if "acse" not in seen:
            return assoc, "no answer to the association request (ACSE timeout)"
        if assoc.rejected_contexts and not assoc.accepted_contexts:
            return assoc, "no presentation context accepted"
        return assoc, "association aborted by the peer"

    @traced("echo")
    def echo(self, peer: Endpoint) -> EchoResult:
        """C-ECHO the peer."""
        assoc, error = self._associate(peer, [build_context(VERIFICATION)])
        if error:
            return EchoResult(False, None, error)
        item = assoc.acceptor.user_identity  # from the A-ASSOCIATE-AC
        response = None if item is None else (item.server_response or b"")
        try:
            rsp = assoc.send_c_echo()
            status = int(rsp.Status) if "Status" in rsp else None
            return EchoResult(True, status, "" if status is not None else _NO_RESPONSE, response)
        finally:
            _close(assoc)

    @traced("store", store_fields)
    def store(self, peer: Endpoint, items: Iterable[Dataset | Path | str]) -> StoreResult:
        """C-STORE each item on one association, proposing exactly the items' (SOP class, syntax) pairs."""
        parsed = [_item(i) for i in items]
        pairs = list(dict.fromkeys((i.sop_class_uid, i.transfer_syntax_uid) for i in parsed if i.payload))
        proposed = pairs[:_MAX_CONTEXTS]
        assoc, error = self._associate(peer, [build_context(a, [t]) for a, t in proposed])
        answers: dict[tuple[str, str], ContextResult] = {}
        if assoc is not None:
            # pynetdicom numbers proposed contexts 1, 3, 5, ... in proposal order.
            by_id = {cx.context_id: cx for cx in [*assoc.accepted_contexts, *assoc.rejected_contexts]}
            for n, (abstract, syntax) in enumerate(proposed):
                cx = by_id.get(2 * n + 1)
                result = int(cx.result) if cx is not None and cx.result is not None else None
                answers[(abstract, syntax)] = ContextResult(abstract, syntax, result == 0, result)
        contexts = tuple(answers.get(p, ContextResult(p[0], p[1], False, None)) for p in proposed)
        outcomes: list[StoreOutcome] = []
        try:
            for item in parsed:
                outcomes.append(self._store_one(assoc, error, item, answers, proposed))
        finally:
            if not error:
                _close(assoc)
        return StoreResult(not error, contexts, tuple(outcomes), error)

    def _store_one(
        self,
        assoc: Any,
        error: str,
        item: _Item,
        answers: dict[tuple[str, str], ContextResult],
        proposed: list[tuple[str, str]],
    ) -> StoreOutcome:
        pair = (item.sop_class_uid, item.transfer_syntax_uid)
        if item.payload is None:
            return StoreOutcome(*_ids(item), None, item.error)
        if pair not in proposed:
            return StoreOutcome(*_ids(item), None, f"not proposed: more than {_MAX_CONTEXTS} contexts")
        answer = answers.get(pair)
        if answer is None or not answer.accepted:
            reason = answer.result_reason if answer is not None else None
            why = f"presentation context rejected (reason {reason})" if reason is not None else error
            return StoreOutcome(*_ids(item), None, why or "presentation context rejected")
        if not carries(assoc):
            return StoreOutcome(*_ids(item), None, "association closed before the item was sent")
        try:
            rsp = assoc.send_c_store(item.payload)
        except (ValueError, AttributeError, OSError, RuntimeError) as exc:  # RuntimeError: it ended just now
            return StoreOutcome(*_ids(item), None, f"not sent: {exc}")
        if "Status" not in rsp:
            return StoreOutcome(*_ids(item), None, _NO_RESPONSE)
        return StoreOutcome(*_ids(item), int(rsp.Status))

    @traced("find", query_fields(["model"]))
    def find(self, peer: Endpoint, query: Dataset, model: Model) -> FindResult:
        """C-FIND with `query` in the patient- or study-root model."""
        return self._find(peer, query, qr_sop_class(model, "find"))

    def _find(self, peer: Endpoint, query: Dataset, sop_class: str, cancel_after: int | None = None) -> FindResult:
        """C-FIND in `sop_class`; with `cancel_after`, a C-CANCEL once that many matches came (the rest still read)."""
        assoc, error = self._associate(peer, [build_context(sop_class)])
        if error:
            return FindResult(False, None, (), error)
        matches: list[Dataset] = []
        status: int | None = None
        try:
            for rsp, identifier in assoc.send_c_find(query, sop_class):
                if "Status" not in rsp:
                    return FindResult(True, None, tuple(matches), _NO_RESPONSE)
                status = int(rsp.Status)
                if status in _PENDING and identifier is not None:
                    matches.append(identifier)
                    if len(matches) == cancel_after:
                        assoc.send_c_cancel(1, query_model=sop_class)  # send_c_find's message ID is 1
        finally:
            _close(assoc)
        return FindResult(True, status, tuple(matches))

    # -- workflow: Modality Worklist and MPPS (UIDs, datasets and NResult in simulators.workflow_scu) --

    @traced("worklist", query_fields(["cancel_after"]))
    def worklist(self, peer: Endpoint, query: Dataset, *, cancel_after: int | None = None) -> FindResult:
        """C-FIND `query` in the Modality Worklist information model (PS3.4 K.6, IHE RAD-5)."""
        return self._find(peer, query, MWL_FIND, cancel_after)

    @traced("mpps_create", n_fields("attrs"))
    def mpps_create(self, peer: Endpoint, uid: str | None, attrs: Dataset) -> NResult:
        """N-CREATE a Performed Procedure Step (PS3.4 F.7.2.1, IHE RAD-6); `uid` None lets the SCP make one."""
        return self._mpps(peer, uid, lambda assoc: assoc.send_n_create(attrs, MPPS, uid))

    @traced("mpps_set", n_fields("changes"))
    def mpps_set(self, peer: Endpoint, uid: str, changes: Dataset) -> NResult:
        """N-SET a Performed Procedure Step (PS3.4 F.7.2.2, IHE RAD-7)."""
        return self._mpps(peer, uid, lambda assoc: assoc.send_n_set(changes, MPPS, uid))

    def _mpps(self, peer: Endpoint, uid: str | None, send: Callable[[Any], tuple[Dataset, Dataset | None]]) -> NResult:
        made: list[str] = []  # the Affected SOP Instance UID of the response: the SCP's own when we sent none

        def on_recv(event: Any) -> None:
            made.append(str(event.message.command_set.get("AffectedSOPInstanceUID", "") or ""))

        assoc, error = self._associate(peer, [build_context(MPPS)], handlers=[(evt.EVT_DIMSE_RECV, on_recv)])
        if error:
            return NResult(False, None, uid or "", error=error)
        try:
            status, attributes = send(assoc)
        except (ValueError, AttributeError, OSError) as exc:  # e.g. an attribute list that cannot be encoded
            return NResult(True, None, uid or "", error=f"not sent: {exc}")
        finally:
            _close(assoc)
        return n_result(status, attributes, uid or next((u for u in made if u), ""))

    @traced("move", query_fields(["destination", "model"]))
    def move(self, peer: Endpoint, query: Dataset, destination: str, model: Model) -> MoveResult:
        """C-MOVE what `query` names to the AE `destination` (the peer must know where it is)."""
        sop_class = qr_sop_class(model, "move")
        assoc, error = self._associate(peer, [build_context(sop_class)])
        if error:
            return MoveResult(False, None, error=error)
        counts = _Counts.read(assoc, lambda: assoc.send_c_move(query, destination, sop_class))
        return MoveResult(
            True,
            counts.status,
            counts.completed,
            counts.failed,
            counts.warning,
            counts.remaining,
            counts.failed_uids,
            counts.pending,
            counts.error,
        )

    @traced("get", get_fields)
    def get(
        self,
        peer: Endpoint,
        query: Dataset,
        model: Model,
        *,
        sop_classes: Iterable[tuple[str, str]],
    ) -> GetResult:
        """C-GET what `query` names, accepting objects of the (SOP class, transfer syntax) pairs given."""
        sop_class = qr_sop_class(model, "get")
        pairs = list(dict.fromkeys((str(a), str(t)) for a, t in sop_classes))[: _MAX_CONTEXTS - 1]
        contexts = [build_context(sop_class)] + [build_context(a, [t]) for a, t in pairs]
        roles = [build_role(a, scp_role=True) for a in dict.fromkeys(a for a, _ in pairs)]
        received: list[ReceivedInstance] = []

        def on_store(event: Any) -> int:
            data = event.encoded_dataset(include_meta=False)
            syntax = str(event.context.transfer_syntax)
            ds = event.dataset
            if getattr(ds, "file_meta", None) is None:
                ds.file_meta = FileMetaDataset()
            if "TransferSyntaxUID" not in ds.file_meta:  # pynetdicom may leave it out; pixel decoders need it
                ds.file_meta.TransferSyntaxUID = syntax
            received.append(
                ReceivedInstance(
                    str(event.request.AffectedSOPClassUID),
                    str(event.request.AffectedSOPInstanceUID),
                    syntax,
                    encoded_sha256(data, syntax),
                    ds,
                    data,
                )
            )
            return 0x0000

        assoc, error = self._associate(peer, contexts, ext_neg=roles, handlers=[(evt.EVT_C_STORE, on_store)])
        if error:
            return GetResult(False, None, error=error)
        counts = _Counts.read(assoc, lambda: assoc.send_c_get(query, sop_class))
        return GetResult(
            True,
            counts.status,
            counts.completed,
            counts.failed,
            counts.warning,
            tuple(received),
            counts.error,
        )

    # -- storage commitment (simulators.commitment_scu holds the requester's side) -------

    @traced("commit", commit_fields)
    def commit(
        self,
        peer: Endpoint,
        transaction_uid: str,
        refs: Sequence[tuple[str, str]],
        *,
        keep_open: float = 5.0,
        wait_report: float = 10.0,
        listener: CommitmentListener | None = None,
    ) -> CommitResult:
        """Request storage commitment of (SOP class, SOP instance) pairs (PS3.4 J.3.2), and take the report.

        The association stays open up to `keep_open` s for a report on it (0: released right after
        the N-ACTION-RSP, which asks an `auto` SCP for a new association); else `listener` takes it
        on a new association, until `wait_report` s after the N-ACTION-RSP.
        """
        catcher = ReportCatcher()
        assoc, error = self._associate(peer, [build_context(PUSH_MODEL)], handlers=catcher.handlers())
        if error:
            return CommitResult(False, None, error=error)
        return catcher.request(
            assoc, transaction_uid, refs, keep_open=keep_open, wait_report=wait_report, listener=listener
        )


class _Counts:
    """Sub-operation counters as C-MOVE / C-GET responses report them."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.completed = self.failed = self.warning = 0
        self.remaining: int | None = None
        self.failed_uids: tuple[str, ...] = ()
        self.pending = 0
        self.error = ""

    @classmethod
    def read(cls, assoc: Any, send: Callable[[], Iterable[tuple[Dataset, Dataset | None]]]) -> _Counts:
        """Count the responses of `send()` up to the final one, then release the association."""
        counts = cls()
        try:
            for rsp, identifier in send():
                if not counts.update(rsp, identifier):
                    break
        finally:
            _close(assoc)
        return counts

    def update(self, rsp: Dataset, identifier: Dataset | None) -> bool:
        """Take one response; False once there is nothing more to read."""
        if "Status" not in rsp:
            self.error = _NO_RESPONSE
            return False
        self.status = int(rsp.Status)
        if self.status in _PENDING:
            self.pending += 1
        for attr, keyword in (
            ("completed", "NumberOfCompletedSuboperations"),
            ("failed", "NumberOfFailedSuboperations"),
            ("warning", "NumberOfWarningSuboperations"),
        ):
            value = _int(rsp, keyword)
            if value is not None:
                setattr(self, attr, value)
        remaining = _int(rsp, "NumberOfRemainingSuboperations")
        if remaining is not None:
            self.remaining = remaining
        if self.status not in _PENDING and identifier is not None:
            value = identifier.get("FailedSOPInstanceUIDList")
            uids = [] if value in (None, "") else [value] if isinstance(value, str) else list(value)
            self.failed_uids = tuple(str(u) for u in uids if str(u))
        return True


def _unread_rejection(assoc: Any) -> list[str]:
    """The A-ASSOCIATE-RJ pynetdicom received but never read (simulators._net.queued_answer), worded as above."""
    primitive = queued_answer(assoc)
    if primitive is None or primitive.result not in (0x01, 0x02):
        return []
    reason = f"result {primitive.result}, source {primitive.result_source}, reason {primitive.diagnostic}"
    return [f"association rejected ({reason})"]


def _close(assoc: Any) -> None:
    if assoc is not None and assoc.is_established:
        assoc.release()


# -- command line -------------------------------------------------------------------------


def _query(level: str, keys: Sequence[str]) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for text in keys:
        keyword, _, value = text.partition("=")
        setattr(ds, keyword.strip(), value)
    return ds


def _corpus_items(seed: int) -> list[Dataset]:
    from simulators.corpus import generate  # only the CLI needs the corpus

    return [item.dataset for item in generate(seed)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulators.modality", description=__doc__.splitlines()[0])
    parser.add_argument("--ae-title", default="PGMODALITY", help="our (calling) AE title")
    parser.add_argument("--peer-ae", default="ANY-SCP", help="the peer's (called) AE title")
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=10, help="DIMSE and network timeout, seconds")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("echo", help="C-ECHO")
    store = sub.add_parser("store", help="C-STORE files, folders (*.dcm) or the synthetic corpus")
    store.add_argument("paths", nargs="*", type=Path)
    store.add_argument("--corpus", type=int, metavar="SEED", help="send the corpus generated from SEED")
    for name in ("find", "move", "get"):
        p = sub.add_parser(name, help=f"C-{name.upper()}")
        p.add_argument("--model", choices=("patient", "study"), default="study")
        p.add_argument("--level", default="STUDY", help="QueryRetrieveLevel")
        p.add_argument("-k", "--key", action="append", default=[], metavar="KEYWORD=VALUE")
        if name == "move":
            p.add_argument("--destination", required=True, help="move destination AE title")
        if name == "get":
            p.add_argument(
                "--accept",
                action="append",
                default=[],
                metavar="SOPCLASS[:SYNTAX]",
                help="storage pair to accept (default: the corpus' pairs, or explicit+implicit VR LE)",
            )
            p.add_argument("--corpus", type=int, metavar="SEED", help="accept the corpus' pairs")
    return parser


def _get_pairs(accept: Sequence[str], seed: int | None) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for text in accept:
        sop_class, _, syntax = text.partition(":")
        if syntax:
            pairs.append((sop_class, syntax))
        else:
            pairs += [(sop_class, ExplicitVRLittleEndian), (sop_class, ImplicitVRLittleEndian)]
    if seed is not None or not pairs:
        from simulators.corpus import generate

        pairs += [(i.sop_class_uid, i.transfer_syntax_uid) for i in generate(seed if seed is not None else 1422)]
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    modality = Modality(
        args.ae_title, dimse_timeout=args.timeout, network_timeout=args.timeout, acse_timeout=args.timeout
    )
    peer = Endpoint(args.peer_ae, args.host, args.port)
    result: EchoResult | StoreResult | FindResult | MoveResult | GetResult
    if args.command == "echo":
        result = modality.echo(peer)
    elif args.command == "store":
        items: list[Dataset | Path] = []
        for path in args.paths:
            items += sorted(path.rglob("*.dcm")) if path.is_dir() else [path]
        if args.corpus is not None:
            items += _corpus_items(args.corpus)
        result = modality.store(peer, items)
    elif args.command == "find":
        result = modality.find(peer, _query(args.level, args.key), args.model)
    elif args.command == "move":
        result = modality.move(peer, _query(args.level, args.key), args.destination, args.model)
    else:
        pairs = _get_pairs(args.accept, args.corpus)
        result = modality.get(peer, _query(args.level, args.key), args.model, sop_classes=pairs)
    print(json.dumps(result.summary(), indent=2, ensure_ascii=False))
    return 0 if result.accepted else 1


if __name__ == "__main__":
    sys.exit(main())
