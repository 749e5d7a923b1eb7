"""The audit trail a simulated device keeps: DICOM audit messages (PS3.15 A.5) sent to a repository as it works.

`Auditor.emit` never raises and never blocks a DICOM handler for long: messages go through a
bounded queue to one sender thread (UDP per RFC 5426, or one TLS connection per RFC 5425 that is
reopened after a failure). A message that cannot be sent is logged and dropped, as a device would.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from simulators.audit.build import build_message
from simulators.audit.message import (
    APPLICATION_START,
    APPLICATION_STOP,
    LOGIN,
    NODE_AUTHENTICATION,
    ROLE_APPLICATION,
    ROLE_DESTINATION,
    ROLE_SOURCE,
    ActiveParticipant,
    Code,
    ParticipantObject,
    patient,
    security_subject,
    sop_queried,
    study,
)
from simulators.audit.syslog import TlsSender, send_udp, syslog_frame

__all__ = ["AuditTarget", "Auditor", "parse_target"]

_LOG = logging.getLogger("simulators.audit.sender")
_QUEUE = 1024  # messages waiting to be sent; beyond it they are dropped (and logged)


@dataclass(frozen=True)
class AuditTarget:
    """Where audit messages go: `udp` or `tls`, host and port."""

    transport: str
    host: str
    port: int


def parse_target(text: str) -> AuditTarget:
    """`udp://HOST:PORT` or `tls://HOST:PORT`; ValueError with the expected form otherwise."""
    transport, sep, rest = text.partition("://")
    host, colon, port = rest.rpartition(":")
    if not sep or transport not in ("udp", "tls") or not colon or not host or not port.isdigit():
        raise ValueError(f"audit target {text!r}: expected udp://HOST:PORT or tls://HOST:PORT")
    return AuditTarget(transport, host, int(port))


class Auditor:
    """Sends the audit messages of one application entity (`source_id`) to `target`."""

    def __init__(self, target: AuditTarget, source_id: str, ssl_context: ssl.SSLContext | None = None) -> None:
        if target.transport == "tls" and ssl_context is None:
            raise ValueError("a tls:// audit target needs an ssl_context (the device's client credential)")
        self.target = target
        self.source_id = source_id
        self._context = ssl_context
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUE)
        self._thread = threading.Thread(target=self._send_loop, name=f"auditor-{source_id}", daemon=True)
        self._thread.start()

    # -- events ---------------------------------------------------------------------------

    def application(self, started: bool) -> None:
        me = ActiveParticipant(self.source_id, False, (ROLE_APPLICATION,))
        self._emit("110100", "E", [me], event_types=[APPLICATION_START if started else APPLICATION_STOP])

    def security_alert(self, peer_ae: str, peer_address: str, why: str) -> None:
        """An association refused: who tried, from where, and why (Node Authentication)."""
        requestor = ActiveParticipant(peer_ae, True, (), peer_address)
        me = ActiveParticipant(self.source_id, False)
        subject = security_subject(f"{peer_ae}@{peer_address}")
        self._emit("110113", "E", [requestor, me], [subject], [NODE_AUTHENTICATION], outcome=4, description=why)

    def user_authentication(self, user: str, peer_address: str, accepted: bool) -> None:
        person = ActiveParticipant(user or "unknown", True, (), peer_address)
        me = ActiveParticipant(self.source_id, False)
        self._emit("110114", "E", [person, me], event_types=[LOGIN], outcome=0 if accepted else 4)

    def transferred(
        self, source: str, destination: str, study_uids: Sequence[str], patient_ids: Sequence[str], action: str
    ) -> None:
        """DICOM Instances Transferred (110104): `action` C for objects received, R for objects sent."""
        self._transfer("110104", source, destination, study_uids, patient_ids, action)

    def begin_transferring(
        self, source: str, destination: str, study_uids: Sequence[str], patient_ids: Sequence[str]
    ) -> None:
        self._transfer("110102", source, destination, study_uids, patient_ids, "E")

    def query(self, requestor: str, sop_class_uid: str, query: bytes) -> None:
        participants = [
            ActiveParticipant(requestor, True, (ROLE_SOURCE,)),
            ActiveParticipant(self.source_id, False, (ROLE_DESTINATION,)),
        ]
        self._emit("110112", "E", participants, [sop_queried(sop_class_uid, query)])

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (bounded by `timeout`) and stop the sender."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout=timeout)

    # -- sending --------------------------------------------------------------------------

    def _transfer(
        self,
        code: str,
        source: str,
        destination: str,
        study_uids: Sequence[str],
        patient_ids: Sequence[str],
        action: str,
    ) -> None:
        participants = [
            ActiveParticipant(source, source != self.source_id, (ROLE_SOURCE,)),
            ActiveParticipant(destination, destination != self.source_id, (ROLE_DESTINATION,)),
        ]
        objects = [*(study(uid) for uid in sorted(set(study_uids))), *(patient(p) for p in sorted(set(patient_ids)))]
        self._emit(code, action, participants, objects)

    def _emit(
        self,
        code: str,
        action: str,
        participants: Sequence[ActiveParticipant],
        objects: Sequence[ParticipantObject] = (),
        event_types: Sequence[Code] = (),
        *,
        outcome: int = 0,
        description: str = "",
    ) -> None:
        try:
            xml = build_message(
                code,
                outcome=outcome,
                action=action,
                source_id=self.source_id,
                participants=participants,
                objects=objects,
                event_types=event_types,
                outcome_description=description,
            )
            self._queue.put_nowait(syslog_frame(xml, app_name=self.source_id.replace(" ", "_") or "device"))
        except queue.Full:
            _LOG.warning("audit queue full: message %s dropped", code)
        except Exception as exc:  # noqa: BLE001 - auditing must never break the DICOM service
            _LOG.warning("audit message %s not built: %s", code, exc)

    def _send_loop(self) -> None:
        sender: TlsSender | None = None
        while (payload := self._queue.get()) is not None:
            try:
                if self.target.transport == "udp":
                    send_udp(self.target.host, self.target.port, payload)
                    continue
                if sender is None:
                    assert self._context is not None
                    sender = TlsSender(self.target.host, self.target.port, self._context)
                sender.send(payload)
            except (OSError, ssl.SSLError) as exc:
                _LOG.warning("audit message not sent to %s: %s", self.target, exc)
                if sender is not None:
                    sender.close()
                    sender = None
        if sender is not None:
            sender.close()
