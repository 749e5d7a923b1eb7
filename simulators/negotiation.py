"""Association negotiation as a requestor sees it: the contexts a peer accepts, its A-ASSOCIATE-AC or -RJ."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydicom.uid import UID
from pynetdicom import AE, evt
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    AsynchronousOperationsWindowNegotiation,
    SCP_SCU_RoleSelectionNegotiation,
    SOPClassExtendedNegotiation,
)
from pynetdicom.presentation import build_context

from simulators._net import NO_CONNECTION, on_connection_open, queued_answer
from simulators.endpoint import Endpoint

__all__ = [
    "MAX_CONTEXTS",
    "Acceptance",
    "ContextAnswer",
    "Negotiation",
    "Proposal",
    "Rejection",
    "context_words",
    "negotiate",
    "syntax_words",
]

# PS3.8 9.3.2: presentation context IDs are odd numbers 1-255, so at most 128 per association.
MAX_CONTEXTS = 128

# PS3.8 Table 9-18, the result of one presentation context in an A-ASSOCIATE-AC; short enough for a terminal.
_CONTEXT_RESULTS: Mapping[int, str] = {
    0: "accepted",
    1: "rejected by the user",
    2: "rejected, no reason given",
    3: "rejected: abstract syntax unsupported",
    4: "rejected: transfer syntax unsupported",
}
# PS3.8 Table 9-21: the A-ASSOCIATE-RJ's result, source, and reason by source.
_RJ_RESULTS: Mapping[int, str] = {1: "rejected permanent", 2: "rejected transient"}
_RJ_SOURCES: Mapping[int, str] = {
    1: "service user",
    2: "service provider (ACSE)",
    3: "service provider (presentation)",
}
_RJ_REASONS: Mapping[int, Mapping[int, str]] = {
    1: {
        1: "no reason given",
        2: "application context name not supported",
        3: "calling AE title not recognised",
        7: "called AE title not recognised",
    },
    2: {1: "no reason given", 2: "protocol version not supported"},
    3: {1: "temporary congestion", 2: "local limit exceeded"},
}


@dataclass(frozen=True)
class Proposal:
    """One presentation context to propose: an abstract syntax and its transfer syntaxes, in order."""

    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True)
class ContextAnswer:
    """The peer's answer to one proposed context: PS3.8 Table 9-18 result (None: not answered) and the syntax."""

    proposal: Proposal
    result: int | None
    transfer_syntax: str = ""  # the one accepted; "" when rejected


@dataclass(frozen=True)
class Acceptance:
    """The user information of an A-ASSOCIATE-AC; a reply item the peer left out is None or absent."""

    implementation_class_uid: str
    implementation_version_name: str | None
    maximum_length: int | None  # 0: unlimited
    asynchronous_operations: tuple[int, int] | None  # (invoked, performed); None: no reply item
    roles: Mapping[str, tuple[bool | None, bool | None]] = field(default_factory=dict)  # SOP class -> (SCU, SCP)
    sop_class_extended: Mapping[str, bytes] = field(default_factory=dict)  # SOP class -> application information


@dataclass(frozen=True)
class Rejection:
    """An A-ASSOCIATE-RJ: result, source and reason (diagnostic) as on the wire (PS3.8 Table 9-21)."""

    result: int
    source: int
    reason: int

    def words(self) -> str:
        """`rejected permanent by the service user: called AE title not recognised`."""
        result = _RJ_RESULTS.get(self.result, f"result {self.result}")
        source = _RJ_SOURCES.get(self.source, f"source {self.source}")
        reason = _RJ_REASONS.get(self.source, {}).get(self.reason, f"reason {self.reason}")
        return f"{result} by the {source}: {reason}"


@dataclass(frozen=True)
class Negotiation:
    """What one association request came to: an AC with its contexts, an RJ, or neither (`error` says why)."""

    contexts: tuple[ContextAnswer, ...] = ()
    accepted: Acceptance | None = None
    rejected: Rejection | None = None
    error: str = ""  # no connection, no answer, an abort: deterministic text without addresses

    def words(self) -> str:
        """The association's fate in words: `accepted`, the RJ in words, or the error."""
        if self.accepted is not None:
            return "accepted"
        if self.rejected is not None:
            return self.rejected.words()
        return self.error


def syntax_words(uid: str) -> str:
    """`1.2.840.10008.1.2.4.90 JPEG 2000 Image Compression (Lossless Only)`: the UID, then its name if known."""
    name = UID(uid).name
    return uid if not name or name == uid else f"{uid} {name}"


def context_words(answer: ContextAnswer) -> str:
    """`accepted`, or `rejected: transfer syntax unsupported`; `not answered` if the AC left it out."""
    if answer.result is None:
        return "not answered"
    return _CONTEXT_RESULTS.get(answer.result, f"rejected: result {answer.result}")


def negotiate(
    peer: Endpoint,
    calling_ae_title: str,
    proposals: Sequence[Proposal],
    *,
    roles: Mapping[str, tuple[bool, bool]] | None = None,
    sop_class_extended: Mapping[str, bytes] | None = None,
    asynchronous_operations: tuple[int, int] | None = None,
    extra: Sequence[Any] = (),
    ssl_context: Any = None,
    timeout: float = 10.0,
) -> Negotiation:
    """Request an association proposing `proposals` (one context each, in order), then release it.

    `roles` (SOP class -> (SCU, SCP)), `sop_class_extended` and `asynchronous_operations` are sent
    as extended negotiation items, `extra` as further user information items (e.g. a user identity).
    ValueError for more than MAX_CONTEXTS proposals or one without a transfer syntax.
    """
    if not proposals or len(proposals) > MAX_CONTEXTS:
        raise ValueError(f"between 1 and {MAX_CONTEXTS} presentation contexts per association, got {len(proposals)}")
    if not all(p.transfer_syntaxes for p in proposals):
        raise ValueError("every proposed presentation context needs at least one transfer syntax")
    if peer.tls and ssl_context is None:
        raise ValueError("the peer requires TLS: give an ssl_context")
    ae = AE(ae_title=calling_ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = timeout
    items: list[Any] = []
    for uid, (scu, scp) in (roles or {}).items():
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid, role.scu_role, role.scp_role = uid, scu, scp
        items.append(role)
    for uid, info in (sop_class_extended or {}).items():
        ext = SOPClassExtendedNegotiation()
        ext.sop_class_uid, ext.service_class_application_information = uid, info
        items.append(ext)
    if asynchronous_operations is not None:
        window = AsynchronousOperationsWindowNegotiation()
        window.maximum_number_operations_invoked, window.maximum_number_operations_performed = asynchronous_operations
        items.append(window)
    opened: list[bool] = []

    def on_open(event: Any) -> None:
        opened.append(True)
        on_connection_open(event)

    try:
        assoc = ae.associate(
            peer.host,
            peer.port,
            contexts=[build_context(p.abstract_syntax, list(p.transfer_syntaxes)) for p in proposals],
            ae_title=peer.ae_title,
            ext_neg=[*items, *extra] or None,
            tls_args=(ssl_context, peer.host) if peer.tls else None,
            evt_handlers=[(evt.EVT_CONN_OPEN, on_open)],
        )
    except (ValueError, RuntimeError, OSError) as exc:  # a bad AE title, a TLS context that cannot connect
        return Negotiation(error=f"association not requested: {exc}")
    try:
        return _read(assoc, proposals, bool(opened))
    finally:
        if assoc.is_established:
            assoc.release()


def _read(assoc: Any, proposals: Sequence[Proposal], opened: bool) -> Negotiation:
    primitive = assoc.acceptor.primitive
    if not isinstance(primitive, A_ASSOCIATE):
        primitive = queued_answer(assoc)
    if primitive is None or primitive.result is None:
        if not opened:
            return Negotiation(error=NO_CONNECTION)
        return Negotiation(error="no answer to the association request (aborted or ACSE timeout)")
    if primitive.result != 0:
        return Negotiation(
            rejected=Rejection(int(primitive.result), int(primitive.result_source), int(primitive.diagnostic))
        )
    # pynetdicom numbers the contexts 1, 3, 5, ... in the order proposed.
    answered = {cx.context_id: cx for cx in [*assoc.accepted_contexts, *assoc.rejected_contexts]}
    contexts = []
    for n, proposal in enumerate(proposals):
        cx = answered.get(2 * n + 1)
        result = None if cx is None or cx.result is None else int(cx.result)
        syntax = str(cx.transfer_syntax[0]) if result == 0 and cx is not None and cx.transfer_syntax else ""
        contexts.append(ContextAnswer(proposal, result, syntax))
    acceptor = assoc.acceptor
    window = next(
        (i for i in acceptor.user_information if isinstance(i, AsynchronousOperationsWindowNegotiation)), None
    )
    acceptance = Acceptance(
        implementation_class_uid=str(acceptor.implementation_class_uid or ""),
        implementation_version_name=acceptor.implementation_version_name,
        maximum_length=acceptor.maximum_length,
        asynchronous_operations=None
        if window is None
        else (int(window.maximum_number_operations_invoked), int(window.maximum_number_operations_performed)),
        roles={str(uid): (item.scu_role, item.scp_role) for uid, item in acceptor.role_selection.items()},
        sop_class_extended={str(uid): bytes(info or b"") for uid, info in acceptor.sop_class_extended.items()},
    )
    return Negotiation(tuple(contexts), acceptance)
