"""Storage Commitment Push Model (PS3.4 J), the SCP side: judge a request, journal it, send the report.

The PACS simulator binds `CommitmentScp.handlers()`. A valid N-ACTION (Request Storage
Commitment, J.3.2) is answered 0x0000 at once; `judge` decides from the files the PACS really
holds, and the N-EVENT-REPORT (J.3.3) goes out after the N-ACTION-RSP was written to the
socket: on the same association, on a new one to the requester (proposing the SCP role,
J.3.3.1.3), or, in `auto`, on the same one if the requester kept it open. Every request and
every report is one line of `commitment.jsonl` in the storage folder (`read_journal`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import ssl
import struct
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info
from pydicom.sequence import Sequence as DicomSequence
from pynetdicom import AE, evt
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.presentation import build_context, build_role

from simulators._journal import append_json_line
from simulators._net import on_connection_open, status_hex
from simulators.endpoint import JSON
from simulators.stall import STALL_LIMIT, nap

__all__ = [
    "COMMITMENT",
    "FAILURE_REASONS",
    "MODES",
    "PUSH_MODEL",
    "PUSH_MODEL_INSTANCE",
    "REQUEST_STORAGE_COMMITMENT",
    "CommitmentScp",
    "Report",
    "Request",
    "RequestError",
    "judge",
    "parse_request",
    "read_journal",
    "request_dataset",
    "stored_sop_class",
]

_LOG = logging.getLogger("simulators.commitment")

# PS3.4 J.3.5: the SOP class and its one well-known SOP instance (pynetdicom names them at runtime only).
PUSH_MODEL = "1.2.840.10008.1.20.1"
PUSH_MODEL_INSTANCE = "1.2.840.10008.1.20.1.1"
# In the PACS storage folder, next to journal.jsonl: one JSON line per N-ACTION and per report.
COMMITMENT = "commitment.jsonl"
# Where the report goes: the same association, a new one, or as the requester behaves (PacsConfig.commitment_report).
MODES = ("same", "new", "auto")
# PS3.3 C.14.1.1 Failure Reason values.
FAILURE_REASONS: Mapping[int, str] = {
    0x0110: "processing failure",
    0x0112: "no such object instance",
    0x0213: "resource limitation",
    0x0122: "referenced SOP class not supported",
    0x0119: "class / instance conflict",
    0x0131: "duplicate transaction UID",
}
REQUEST_STORAGE_COMMITMENT = 1  # PS3.4 J.3.2: the Action Type ID
_SUCCESSFUL, _FAILURES_EXIST = 1, 2  # PS3.4 J.3.3: Event Type ID
# PS3.7 C.5: N-ACTION failures this SCP answers.
_NO_SUCH_INSTANCE, _INVALID_ARGUMENT, _INVALID_INSTANCE, _NO_SUCH_ACTION = 0x0112, 0x0115, 0x0117, 0x0123
# PS3.5 9.1: components of digits without leading zeros, dot-separated, at most 64 characters.
_VALID_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
_POLL = 0.01
# What decoding a peer's dataset (pydicom, lazily) raises for bytes that are not what they claim.
_DECODING = (AttributeError, EOFError, IndexError, KeyError, OverflowError, TypeError, ValueError, struct.error)

Ref = tuple[str, str]  # (SOP class UID, SOP instance UID)


def _valid_uid(text: str) -> bool:
    return len(text) <= 64 and _VALID_UID.fullmatch(text) is not None


@dataclass(frozen=True)
class Request:
    """A Storage Commitment Request (PS3.4 Table J.3-1): its Transaction UID and the instances referenced."""

    transaction_uid: str
    refs: tuple[Ref, ...]


class RequestError(Exception):
    """An N-ACTION this SCP refuses: the PS3.7 status it answers and an Error Comment saying why."""

    def __init__(self, status: int, comment: str) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment


def request_dataset(transaction_uid: str, refs: Sequence[Ref]) -> Dataset:
    """The Action Information of a Storage Commitment Request (PS3.4 Table J.3-1)."""
    ds = Dataset()
    ds.TransactionUID = transaction_uid
    ds.ReferencedSOPSequence = DicomSequence([_ref_item(c, i) for c, i in refs])
    return ds


def _ref_item(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item


def parse_request(action_type: int | None, requested_instance: str, information: Callable[[], Dataset]) -> Request:
    """The request an N-ACTION carries; RequestError with the PS3.7 status when it is not one.

    `information` decodes the Action Information (pynetdicom decodes lazily, and may raise).
    """
    if action_type != REQUEST_STORAGE_COMMITMENT:
        raise RequestError(_NO_SUCH_ACTION, f"Action Type ID {action_type} is not 1 (Request Storage Commitment)")
    if requested_instance != PUSH_MODEL_INSTANCE:
        if not _valid_uid(requested_instance):  # PS3.7 C.5.12: a UID that breaks the construction rules
            raise RequestError(_INVALID_INSTANCE, "Requested SOP Instance UID is not a UID (PS3.5 9.1)")
        raise RequestError(  # PS3.7 C.5.9: a UID this SCP does not know
            _NO_SUCH_INSTANCE, f"not the well-known Push Model instance {PUSH_MODEL_INSTANCE}"
        )
    try:
        info = information()
        transaction_uid = str(info.get("TransactionUID", "") or "")
        items = list(info.get("ReferencedSOPSequence", None) or [])
        refs = tuple(
            (str(item.get("ReferencedSOPClassUID", "") or ""), str(item.get("ReferencedSOPInstanceUID", "") or ""))
            for item in items
        )
    except _DECODING as exc:  # the peer's bytes: any decoding error is its bad argument
        raise RequestError(_INVALID_ARGUMENT, f"Action Information cannot be decoded: {type(exc).__name__}") from None
    if not 0 < len(transaction_uid) <= 64:  # lenient on form: a device's sloppy UID still names its transaction
        raise RequestError(_INVALID_ARGUMENT, "Transaction UID (0008,1195) missing or over 64 characters")
    if not refs:
        raise RequestError(_INVALID_ARGUMENT, "Referenced SOP Sequence (0008,1199) missing or empty")
    if not all(c and i for c, i in refs):
        raise RequestError(_INVALID_ARGUMENT, "Referenced SOP Sequence item without SOP Class or Instance UID")
    return Request(transaction_uid, refs)


@dataclass(frozen=True)
class Report:
    """A Storage Commitment Result (PS3.4 Table J.3-2): committed instances, failed ones with their reason."""

    transaction_uid: str
    event_type: int  # 1: all committed; 2: failures exist
    committed: tuple[Ref, ...] = ()
    failed: tuple[tuple[str, str, int], ...] = ()
    retrieve_ae: str = ""  # where the committed instances can be retrieved from ("" none said)

    def dataset(self) -> Dataset:
        """The Event Information: Retrieve AE Title outside the sequence, so it holds for every committed item."""
        ds = Dataset()
        ds.TransactionUID = self.transaction_uid
        if self.committed:
            if self.retrieve_ae:
                ds.RetrieveAETitle = self.retrieve_ae
            ds.ReferencedSOPSequence = DicomSequence([_ref_item(c, i) for c, i in self.committed])
        if self.failed:
            items = []
            for c, i, reason in self.failed:
                item = _ref_item(c, i)
                item.FailureReason = reason
                items.append(item)
            ds.FailedSOPSequence = DicomSequence(items)
        return ds

    @classmethod
    def from_dataset(cls, event_type: int | None, ds: Dataset) -> Report:
        """The report an N-EVENT-REPORT carries; ValueError naming what is malformed."""
        try:
            committed = tuple(
                (str(item.ReferencedSOPClassUID), str(item.ReferencedSOPInstanceUID))
                for item in ds.get("ReferencedSOPSequence", None) or []
            )
            failed = tuple(
                (str(item.ReferencedSOPClassUID), str(item.ReferencedSOPInstanceUID), int(item.FailureReason))
                for item in ds.get("FailedSOPSequence", None) or []
            )
            return cls(
                str(ds.TransactionUID),
                int(event_type or 0),
                committed,
                failed,
                str(ds.get("RetrieveAETitle", "") or ""),
            )
        except _DECODING as exc:  # the peer's bytes: any decoding error is a malformed report
            raise ValueError(f"malformed Storage Commitment Result: {type(exc).__name__}: {exc}") from None

    def summary(self) -> dict[str, JSON]:
        return {
            "transaction_uid": self.transaction_uid,
            "event_type": self.event_type,
            "committed": [[c, i] for c, i in self.committed],
            "failed": [[c, i, status_hex(r)] for c, i, r in self.failed],
            "retrieve_ae": self.retrieve_ae,
        }


def judge(
    request: Request,
    held: Callable[[str], str | None],
    *,
    supported: Collection[str],
    retrieve_ae: str = "",
    duplicate: bool = False,
    fail_all: bool = False,
) -> Report:
    """The report for `request` from what is held (`held(instance)`: its stored SOP class, None if absent).

    Per PS3.3 C.14.1.1: a Transaction UID seen before (`duplicate`) fails every instance with
    0x0131; a class not in `supported` 0x0122; an instance not held 0x0112; one held under
    another class 0x0119; `fail_all` (a quirk) fails every instance with 0x0110.
    """
    committed: list[Ref] = []
    failed: list[tuple[str, str, int]] = []
    for sop_class, sop_instance in request.refs:
        stored = None if fail_all or duplicate or sop_class not in supported else held(sop_instance)
        if fail_all:
            reason = 0x0110
        elif duplicate:
            reason = 0x0131
        elif sop_class not in supported:
            reason = 0x0122
        elif stored is None:
            reason = 0x0112
        elif stored != sop_class:
            reason = 0x0119
        else:
            committed.append((sop_class, sop_instance))
            continue
        failed.append((sop_class, sop_instance, reason))
    event_type = _FAILURES_EXIST if failed else _SUCCESSFUL
    return Report(request.transaction_uid, event_type, tuple(committed), tuple(failed), retrieve_ae)


def stored_sop_class(path: Path, sop_instance: str) -> str | None:
    """The SOP class of the Part 10 file at `path` if it holds `sop_instance` (its file meta says), else None."""
    try:
        meta = read_file_meta_info(path)
    except (OSError, InvalidDicomError, ValueError, EOFError):
        return None
    if str(meta.get("MediaStorageSOPInstanceUID", "")) != sop_instance:
        return None
    return str(meta.get("MediaStorageSOPClassUID", "")) or None


def read_journal(path: str | Path) -> list[dict[str, JSON]]:
    """The lines of a commitment journal ([] if there is none); ValueError naming the file and line if one is not JSON."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    lines: list[dict[str, JSON]] = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{path}:{number}: not a JSON line ({exc.msg}); the PACS writes whole lines, was the file edited?"
            ) from None
        if not isinstance(value, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object, got {type(value).__name__}")
        lines.append(value)
    return lines


@dataclass
class _Sent:
    """Whether the N-ACTION-RSP to one request has left: queued (EVT_DIMSE_SENT), then written (EVT_PDU_SENT)."""

    message_id: int
    queued: bool = False
    written: threading.Event = field(default_factory=threading.Event)

    def on_dimse_sent(self, event: Any) -> None:
        command = getattr(event.message, "command_set", None)
        if type(event.message).__name__ == "N_ACTION_RSP" and command is not None:
            self.queued = self.queued or command.get("MessageIDBeingRespondedTo") == self.message_id

    def on_pdu_sent(self, event: Any) -> None:
        # The response is command-only: it has left once a PDV with the command and last-fragment bits went out.
        if self.queued and isinstance(event.pdu, P_DATA_TF):
            for item in event.pdu.presentation_data_value_items:
                value = item.presentation_data_value or b"\x00"
                if value[0] & 0x03 == 0x03:
                    self.written.set()


@dataclass(frozen=True, kw_only=True)
class _Outcome:
    how: str  # "same", "new" or "lost"
    role: str  # the SCP's role on the report's association: "scp", "scu", "" (none agreed)
    status: int | None  # the requester's N-EVENT-REPORT-RSP status
    error: str = ""


class CommitmentScp:
    """The Push Model SCP of a PACS: N-ACTION handler, judging, reporting, journal.

    `held(instance)` is the stored SOP class of an instance (None if not held), `supported` the
    storage classes it accepts, `number(assoc)` the PACS's journal number of an association,
    `destinations` where requester AE titles listen (for reports on a new association).
    """

    def __init__(
        self,
        *,
        ae_title: str,
        journal: Path,
        held: Callable[[str], str | None],
        supported: Collection[str],
        number: Callable[[Any], int],
        destinations: Mapping[str, tuple[str, int]],
        mode: str = "auto",
        delay: float = 0.2,
        report_before_response: bool = False,
        fail_all: bool = False,
        timeout: float = 10.0,
        client_ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"commitment report mode {mode!r}: expected one of {', '.join(MODES)}")
        self._ae_title = ae_title
        self._journal_path = journal
        self._held = held
        self._supported = frozenset(supported)
        self._number = number
        self._destinations = destinations
        self._mode = mode
        self._delay = delay
        self._before = report_before_response
        self._fail_all = fail_all
        self._timeout = timeout
        self._client_ssl_context = client_ssl_context
        self._lock = threading.Lock()
        self._seq = 0
        self._seen: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def handlers(self) -> list[tuple[Any, Callable[..., Any]]]:
        return [(evt.EVT_N_ACTION, self._on_action)]

    def close(self, timeout: float = 5.0) -> None:
        """Stop waiting for requesters and let the report threads end (each bounded by `timeout`)."""
        self._stopping.set()
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout)

    # -- N-ACTION ------------------------------------------------------------------------

    def _on_action(self, event: Any) -> tuple[int | Dataset, Dataset | None]:
        assoc = event.assoc
        line: dict[str, JSON] = {
            "dimse": "N-ACTION",
            "association": self._number(assoc),
            "calling_ae": str(assoc.requestor.ae_title).strip(),
            "action_type": event.action_type,
        }
        try:
            request = parse_request(
                event.action_type,
                str(event.request.RequestedSOPInstanceUID or ""),
                lambda: event.action_information,
            )
        except RequestError as exc:
            _LOG.info("N-ACTION from %s refused: 0x%04X %s", line["calling_ae"], exc.status, exc.comment)
            self._journal(
                {**line, "transaction_uid": "", "referenced": [], "status": status_hex(exc.status)}, exc.comment
            )
            status = Dataset()
            status.Status = exc.status
            status.ErrorComment = exc.comment[:64]
            return status, None
        with self._lock:
            duplicate = request.transaction_uid in self._seen
            self._seen.add(request.transaction_uid)
        report = judge(
            request,
            self._held,
            supported=self._supported,
            retrieve_ae=self._ae_title,
            duplicate=duplicate,
            fail_all=self._fail_all,
        )
        referenced: list[JSON] = [[c, i] for c, i in request.refs]
        self._journal(
            {**line, "transaction_uid": request.transaction_uid, "referenced": referenced, "status": "0x0000"}
        )
        _LOG.info(
            "N-ACTION from %s: %d referenced, %d committed, %s report",
            line["calling_ae"],
            len(request.refs),
            len(report.committed),
            "early" if self._before else self._mode,
        )
        if self._before:  # the quirk: from inside the handler, so it arrives before the N-ACTION-RSP
            self._journal_report(report, "before-response", self._send_same(assoc, report))
            return 0x0000, None
        sent = _Sent(int(event.request.MessageID))
        assoc.bind(evt.EVT_DIMSE_SENT, sent.on_dimse_sent)
        assoc.bind(evt.EVT_PDU_SENT, sent.on_pdu_sent)
        thread = threading.Thread(
            target=self._report, args=(assoc, sent, report), name=f"commitment-{self._ae_title}", daemon=True
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return 0x0000, None

    # -- the report ----------------------------------------------------------------------

    def _report(self, assoc: Any, sent: _Sent, report: Report) -> None:
        """In its own thread: once the N-ACTION-RSP has left, report where the mode says."""
        written = self._wait(sent.written.is_set, self._timeout)
        with contextlib.suppress(KeyError, ValueError):  # unbinding from an association that ended is harmless
            assoc.unbind(evt.EVT_DIMSE_SENT, sent.on_dimse_sent)
            assoc.unbind(evt.EVT_PDU_SENT, sent.on_pdu_sent)
        if self._stopping.is_set():
            return
        requester = str(assoc.requestor.ae_title).strip()
        if self._mode == "auto":
            # The requester asks by its behaviour: released within the delay -> a new association.
            self._wait(lambda: not assoc.is_established, self._delay)
            if self._stopping.is_set():
                return
            if not assoc.is_established:
                self._journal_report(report, "auto", self._send_new(requester, report))
                return
        elif self._delay > 0 and self._stopping.wait(self._delay):
            return
        if self._mode == "new":
            self._journal_report(report, "new", self._send_new(requester, report))
            return
        if not written or not assoc.is_established:
            why = "the requester released the association" if written else "the N-ACTION-RSP never left"
            outcome = _Outcome(how="lost", role="scp", status=None, error=why)
        else:
            outcome = self._send_same(assoc, report)
        self._journal_report(report, self._mode, outcome)
        if outcome.how == "lost" and self._mode == "auto":  # released while we sent: it gets it on a new one
            self._journal_report(report, "auto", self._send_new(requester, report))

    def _wait(self, done: Callable[[], bool], timeout: float) -> bool:
        """Until `done()`, at most `timeout` s of this process's time: a stalled machine stalled the requester too."""
        deadline, lost = time.monotonic() + timeout, 0.0
        while not done():
            if self._stopping.is_set() or time.monotonic() >= deadline + lost:
                return done()
            lost = min(STALL_LIMIT, lost + nap(_POLL))
        return True

    def _send_same(self, assoc: Any, report: Report) -> _Outcome:
        try:
            rsp, _ = assoc.send_n_event_report(report.dataset(), report.event_type, PUSH_MODEL, PUSH_MODEL_INSTANCE)
        except (RuntimeError, ValueError, AttributeError) as exc:  # the association ended under us
            return _Outcome(how="lost", role="scp", status=None, error=f"not sent: {type(exc).__name__}")
        status = int(rsp.Status) if "Status" in rsp else None
        if status is None:
            gone = not assoc.is_established
            why = "the requester released the association" if gone else "no N-EVENT-REPORT-RSP (DIMSE timeout)"
            return _Outcome(how="lost" if gone else "same", role="scp", status=None, error=why)
        return _Outcome(how="same", role="scp", status=status)

    def _send_new(self, requester: str, report: Report) -> _Outcome:
        """On a new association to the requester's AE title, proposing the SCP role (PS3.4 J.3.3.1.3, J.2.1)."""
        address = self._destinations.get(requester)
        if address is None:
            return _Outcome(how="new", role="", status=None, error=f"{requester} is not a known destination")
        ae = AE(ae_title=self._ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = self._timeout
        kwargs: dict[str, Any] = {}
        if self._client_ssl_context is not None:
            kwargs["tls_args"] = (self._client_ssl_context, address[0])
        try:
            assoc = ae.associate(
                address[0],
                address[1],
                contexts=[build_context(PUSH_MODEL)],
                ae_title=requester,
                ext_neg=[build_role(PUSH_MODEL, scp_role=True)],
                evt_handlers=[(evt.EVT_CONN_OPEN, on_connection_open)],
                **kwargs,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            return _Outcome(how="new", role="", status=None, error=f"association not requested: {type(exc).__name__}")
        if not assoc.is_established:
            return _Outcome(how="new", role="", status=None, error=f"no association with {requester}")
        try:
            context = next((cx for cx in assoc.accepted_contexts if cx.abstract_syntax == PUSH_MODEL), None)
            if context is None:
                return _Outcome(how="new", role="", status=None, error=f"{requester} rejected the Push Model context")
            if not context.as_scp:
                # pynetdicom would send anyway; a Push Model SCP reports only in the SCP role it proposed.
                error = f"{requester} did not accept the SCP role: report not sent"
                return _Outcome(how="new", role="scu", status=None, error=error)
            rsp, _ = assoc.send_n_event_report(report.dataset(), report.event_type, PUSH_MODEL, PUSH_MODEL_INSTANCE)
            status = int(rsp.Status) if "Status" in rsp else None
            return _Outcome(how="new", role="scp", status=status, error="" if status is not None else "no response")
        finally:
            if assoc.is_established:
                assoc.release()

    # -- journal -------------------------------------------------------------------------

    def _journal_report(self, report: Report, mode: str, outcome: _Outcome) -> None:
        _LOG.info(
            "N-EVENT-REPORT %s (%s): event type %d, status %s%s",
            outcome.how,
            mode,
            report.event_type,
            status_hex(outcome.status),
            f", {outcome.error}" if outcome.error else "",
        )
        line: dict[str, JSON] = {
            "dimse": "N-EVENT-REPORT",
            "transaction_uid": report.transaction_uid,
            "event_type": report.event_type,
            "mode": mode,
            "how": outcome.how,
            "role": outcome.role,
            "committed": [[c, i] for c, i in report.committed],
            "failed": [[c, i, status_hex(r)] for c, i, r in report.failed],
            "status": status_hex(outcome.status),
        }
        self._journal(line, outcome.error)

    def _journal(self, line: dict[str, JSON], error: str = "") -> None:
        """One line, numbered, in a single O_APPEND write (whole lines, as the PACS's own journal)."""
        with self._lock:
            self._seq += 1
            try:
                append_json_line(self._journal_path, {"seq": self._seq, **line, "error": error})
            except OSError as exc:  # the exchange happened; only its record is lost, and said so
                _LOG.warning("cannot journal to %s: %s", self._journal_path, exc)
