"""Storage Commitment Push Model (PS3.4 J), the requester's side: ask, then take the report on either association.

`Modality.commit` asks on one association and waits there for the report (`ReportCatcher`);
a `CommitmentListener` is the small SCP a modality runs for reports that come on a new
association, proposed by the commitment SCP in the SCP role (PS3.4 J.3.3.1.3). Kept apart
from simulators.modality so that the modality stays an SCU and the listener an SCP.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.pdu import P_DATA_TF

from simulators._net import LOOPBACK, VERIFICATION, on_connection_open, status_hex
from simulators._server import PYNETDICOM_LIMIT, Serving, serve
from simulators.commitment import PUSH_MODEL, PUSH_MODEL_INSTANCE, REQUEST_STORAGE_COMMITMENT, Report, request_dataset
from simulators.endpoint import JSON

__all__ = ["CommitResult", "CommitmentListener", "ReceivedReport", "ReportCatcher"]

_NO_RESPONSE = "no response from the peer (DIMSE timeout or association aborted)"
# DIMSE message class names (pynetdicom.dimse_messages) as a requester reads them, e.g. N_ACTION_RSP -> N-ACTION-RSP.
_DIMSE_NAME = str.maketrans("_", "-")
_POLL = 0.02


@dataclass(frozen=True)
class ReceivedReport:
    """One N-EVENT-REPORT as received: from whom, in which role the sender was, and what it said."""

    calling_ae: str
    role: str  # the sender's role on that association: "scp" (as PS3.4 J.3.3.1.3 wants) or "scu"
    report: Report | None  # None: malformed (see error)
    error: str = ""


@dataclass(frozen=True)
class CommitResult:
    """A storage commitment request: the N-ACTION status, and the report, how and in which role it came.

    `order` lists the DIMSE messages received on the request's association, so a report that came
    before the N-ACTION-RSP shows as ("N-EVENT-REPORT-RQ", "N-ACTION-RSP").
    """

    accepted: bool
    action_status: int | None
    report: Report | None = None
    how: str = ""  # "same" or "new" association; "" no report
    role: str = ""  # the reporter's role on the report's association: "scp", "scu"
    order: tuple[str, ...] = ()
    error: str = ""

    def summary(self) -> dict[str, JSON]:
        return {
            "accepted": self.accepted,
            "action_status": status_hex(self.action_status),
            "report": self.report.summary() if self.report is not None else None,
            "how": self.how,
            "role": self.role,
            "order": list(self.order),
            "error": self.error,
        }


def _report_of(event: Any) -> tuple[Report | None, str]:
    try:
        return Report.from_dataset(event.event_type, event.event_information), ""
    except ValueError as exc:
        return None, str(exc)


class ReportCatcher:
    """The requester's side of one association: the N-ACTION, then the report if it comes on it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._order: list[str] = []
        self._report: ReceivedReport | None = None
        self._queued = False  # our N-EVENT-REPORT-RSP has been handed to pynetdicom
        self._answered = threading.Event()  # ... and its P-DATA has been sent

    def handlers(self) -> list[tuple[Any, Any]]:
        """For `AE.associate(evt_handlers=...)`: pynetdicom serves a peer's N-EVENT-REPORT on a requester too."""
        return [
            (evt.EVT_DIMSE_RECV, self._on_received),
            (evt.EVT_DIMSE_SENT, self._on_sent),
            (evt.EVT_PDU_SENT, self._on_pdu_sent),
            (evt.EVT_N_EVENT_REPORT, self._on_report),
        ]

    def request(
        self,
        assoc: Any,
        transaction_uid: str,
        refs: Sequence[tuple[str, str]],
        *,
        keep_open: float,
        wait_report: float,
        listener: CommitmentListener | None,
    ) -> CommitResult:
        """Send the N-ACTION; keep the association open up to `keep_open` s for a report on it, then release.

        Without one by then, wait for `listener` to receive it, until `wait_report` s after the
        N-ACTION-RSP in all. Every wait is bounded; no report is a result with an error.
        """
        try:
            try:
                rsp, _ = assoc.send_n_action(
                    request_dataset(transaction_uid, refs), REQUEST_STORAGE_COMMITMENT, PUSH_MODEL, PUSH_MODEL_INSTANCE
                )
            except (RuntimeError, ValueError, AttributeError) as exc:  # ended meanwhile, or not encodable
                return CommitResult(True, None, error=f"not sent: {exc}")
            status = int(rsp.Status) if "Status" in rsp else None
            deadline = time.monotonic() + wait_report
            if status == 0x0000:
                self._wait_here(transaction_uid, min(keep_open, wait_report), listener)
        finally:
            if assoc.is_established:
                assoc.release()
        with self._lock:
            order, same = tuple(self._order), self._report
        if status is None:
            return CommitResult(True, None, order=order, error=_NO_RESPONSE)
        if status != 0x0000:
            return CommitResult(True, status, order=order)
        if same is not None:
            return CommitResult(True, status, same.report, "same", same.role, order, same.error)
        if listener is not None:
            received = listener.wait(transaction_uid, deadline - time.monotonic())
            if received is not None:
                return CommitResult(True, status, received.report, "new", received.role, order, received.error)
        return CommitResult(True, status, order=order, error=f"no report within {wait_report:g} s")

    def _wait_here(self, transaction_uid: str, timeout: float, listener: CommitmentListener | None) -> None:
        """Until our answer to a report on this association went out, or the listener has one, or `timeout` s."""
        deadline = time.monotonic() + timeout
        while not self._answered.wait(min(_POLL, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline or (listener is not None and listener.wait(transaction_uid, 0)):
                return

    def _on_received(self, event: Any) -> None:
        with self._lock:
            self._order.append(type(event.message).__name__.translate(_DIMSE_NAME))

    def _on_sent(self, event: Any) -> None:
        if type(event.message).__name__ == "N_EVENT_REPORT_RSP":
            # Not yet out: pynetdicom fires EVT_DIMSE_SENT before it queues the message's P-DATA (_on_pdu_sent).
            self._queued = True

    def _on_pdu_sent(self, event: Any) -> None:
        """Our N-EVENT-REPORT-RSP has left once a PDV with the command and last-fragment bits went out after it was queued.

        Release only then, or the reporter waits in vain: a release queued before the RSP's P-DATA makes
        pynetdicom send that P-DATA while awaiting A-RELEASE-RP (Evt9 in Sta7), which kills its reactor.
        """
        if self._queued and isinstance(event.pdu, P_DATA_TF):
            for item in event.pdu.presentation_data_value_items:
                if (item.presentation_data_value or b"\x00")[0] & 0x03 == 0x03:
                    self._answered.set()

    def _on_report(self, event: Any) -> tuple[int, None]:
        report, error = _report_of(event)
        calling = str(event.assoc.acceptor.ae_title).strip()
        with self._lock:
            self._report = ReceivedReport(calling, "scp", report, error)  # PS3.7: the acceptor of our N-ACTION is SCP
        return 0x0000, None


class CommitmentListener:
    """A small SCP for reports on a new association: Push Model (and C-ECHO), accepting the sender's SCP role.

    `accept_scp_role=False` plays a requester that refuses it: its context offers no role
    selection, so by default the sender may only be SCU there (PS3.7 D.3.3.4).
    """

    def __init__(
        self,
        ae_title: str = "PGMODALITY",
        *,
        host: str = LOOPBACK,
        port: int = 0,
        accept_scp_role: bool = True,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.ae_title = ae_title
        self._ssl_context = ssl_context  # a TLS device reports over TLS too (server side, e.g. Pki.server_context())
        self.host = host
        self._port = port
        self._accept_scp_role = accept_scp_role
        self._timeout = timeout
        self._received: list[ReceivedReport] = []
        self._changed = threading.Condition()
        self._serving: Serving | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def received(self) -> list[ReceivedReport]:
        """Every report received so far, in arrival order."""
        with self._changed:
            return list(self._received)

    def start(self) -> CommitmentListener:
        ae = AE(ae_title=self.ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self._timeout
        ae.add_supported_context(VERIFICATION)
        if self._accept_scp_role:
            # PS3.4 J.3.3.1.3: the sender proposes the SCP role; we take the SCU role.
            ae.add_supported_context(PUSH_MODEL, scu_role=False, scp_role=True)
        else:
            ae.add_supported_context(PUSH_MODEL)
        # serve(): pynetdicom's own limit of 10 also counts connections that are closing (a burst of short
        # associations after a case's reports was rejected "local limit exceeded" under load), and its serve
        # loop polls every 0.5 s, which is what each stop() waited.
        self._serving = serve(
            ae,
            (self.host, self._port),
            [(evt.EVT_CONN_OPEN, on_connection_open), (evt.EVT_N_EVENT_REPORT, self._on_report)],
            capacity=PYNETDICOM_LIMIT,
            name=f"commitment-listener-{self.ae_title}",
            ssl_context=self._ssl_context,
        )
        self._port = self._serving.port
        return self

    def stop(self) -> None:
        if self._serving is not None:
            self._serving.stop()
            self._serving = None

    def bind(self, event: Any, handler: Any) -> None:
        """One more event handler on the started listener (e.g. a modality's own C-ECHO handler)."""
        if self._serving is None:
            raise RuntimeError("CommitmentListener.bind: start() it first")
        self._serving.server.bind(event, handler)

    def __enter__(self) -> CommitmentListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self, transaction_uid: str, timeout: float) -> ReceivedReport | None:
        """The first report for `transaction_uid`, waiting up to `timeout` s for it; None if none came."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for received in self._received:
                    if received.report is not None and received.report.transaction_uid == transaction_uid:
                        return received
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)

    def _on_report(self, event: Any) -> tuple[int, None]:
        report, error = _report_of(event)
        context = next((cx for cx in event.assoc.accepted_contexts if cx.abstract_syntax == PUSH_MODEL), None)
        # Our context's roles: we are SCU when the sender is SCP.
        role = "scp" if context is not None and context.as_scu else "scu"
        received = ReceivedReport(str(event.assoc.requestor.ae_title).strip(), role, report, error)
        with self._changed:
            self._received.append(received)
            self._changed.notify_all()
        return 0x0000, None
