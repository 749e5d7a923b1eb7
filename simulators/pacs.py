"""The PACS simulator: a pynetdicom SCP for C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET and storage commitment over a folder.

Objects are stored as Part 10 files written from the bytes the peer sent (never decoded
and re-encoded), indexed in SQLite off the receive path, and served back by Q/R; storage
commitment (simulators.commitment) commits what those files hold. `Quirks`
switch on deviations from standard behaviour, so the reference device can play a patch
that changed something.

Run it standalone:
    python -m simulators.pacs --ae-title PACS --port 11112 --storage /tmp/pacs \\
        [--destination AE=host:port ...] [--tls-dir PKI_DIR [--tls-client-cert optional]] \\
        [--commitment-report same|new|auto]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import logging
import math
import os
import re
import ssl
import struct
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION, evt
from pynetdicom.presentation import AllStoragePresentationContexts, PresentationContext, build_context

from simulators._arrivals import ArrivalLog
from simulators._journal import append_json_line
from simulators._lifeline import stop_signals, wait_until_stopped
from simulators._net import (
    LOOPBACK,
    QR_MODELS,
    VERIFICATION,
    format_address,
    on_connection_open,
    parse_destination,
)
from simulators._pressure import Pressure
from simulators._server import ACSE_TIMEOUT, MAX_ASSOCIATIONS, AssociationNumbers, Serving
from simulators._server import serve as serve_dicom
from simulators.audit.sender import Auditor
from simulators.commitment import COMMITMENT, MODES, PUSH_MODEL, CommitmentScp, stored_sop_class
from simulators.identity.policy import IdentityPolicy, identity_handlers
from simulators.index import Index, IndexedInstance
from simulators.matching import Query, QueryError, evaluate, parse_query, response
from simulators.pki import PkiError, load_pki

__all__ = [
    "ACSE_TIMEOUT",
    "DUPLICATES",
    "JOURNAL",
    "MAX_ASSOCIATIONS",
    "STORAGE_SOP_CLASSES",
    "STORAGE_TRANSFER_SYNTAXES",
    "PacsConfig",
    "PacsSimulator",
    "Quirks",
    "build_parser",
    "main",
    "parse_destinations",
    "part10_header",
    "serve",
    "ssl_context_from_args",
    "storage_name",
]

_LOG = logging.getLogger("simulators.pacs")

# Every storage SOP class pynetdicom knows; a PACS that refuses one is a quirk, not a default.
STORAGE_SOP_CLASSES: tuple[str, ...] = tuple(str(cx.abstract_syntax) for cx in AllStoragePresentationContexts)
# Transfer syntaxes accepted for storage: uncompressed, deflated, and the common compressed
# ones. Not all 39: pynetdicom's acceptor negotiation time grows with every supported pair.
STORAGE_TRANSFER_SYNTAXES: tuple[str, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    RLELossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    HTJ2KLossless,
)
# Q/R abstract syntax -> information model.
_MODELS: Mapping[str, str] = {uid: model for (model, _), uid in QR_MODELS.items()}
# In the storage folder: one JSON line per object received (simulators.pacs.PacsSimulator._journal).
JOURNAL = "journal.jsonl"
_PLAIN_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_PENDING = 0xFF00
_CANCEL = 0xFE00
_OUT_OF_RESOURCES = 0xA700
_DUPLICATE = 0x0111  # Duplicate SOP Instance (PS3.7 C.4.1)
DUPLICATES = ("overwrite", "keep", "refuse")
_MAX_CONTEXTS = 128
_SUB_HANDLERS: list[Any] = [(evt.EVT_CONN_OPEN, on_connection_open)]


@dataclass(frozen=True)
class Quirks:
    """Deviations from standard behaviour; the defaults are a well-behaved PACS."""

    # Presentation contexts for these abstract syntaxes are rejected at negotiation.
    rejected_sop_classes: frozenset[str] = frozenset()
    # Status answered to a C-STORE that stored the object (e.g. 0xB000 warning).
    store_status: int = 0x0000
    # PN matching in C-FIND ignores case; False makes it case-sensitive.
    pn_case_insensitive: bool = True
    # Tags removed from objects sent by C-MOVE and C-GET.
    drop_on_retrieve: frozenset[int] = frozenset()
    # Tags removed from objects as they are stored (an ingest filter): every later answer and retrieval lacks them.
    drop_on_store: frozenset[int] = frozenset()
    # Each C-MOVE reports its first sub-operation as failed without sending it.
    fail_first_move_suboperation: bool = False
    # C-MOVE sends every object in this transfer syntax (decompressed, inflated) instead of as stored.
    move_transfer_syntax: str = ""
    # IS elements C-MOVE sends as "N.0": the same number, an invalid value for the VR.
    decimal_is_on_move: frozenset[int] = frozenset()
    # Each C-GET counts its first N delivered sub-operations as warnings: final 0xB000, every object sent.
    get_warning_suboperations: int = 0
    # The process dies (exit code 70) on its first C-FIND: a patch that crashes the device.
    crash_on_find: bool = False
    # InstanceAvailability (0008,0056) C-FIND answers when asked (PS3.4 C.4.1.1.3.2: ONLINE, NEARLINE, ...).
    instance_availability: str = "ONLINE"
    # C-FIND answers are transcoded to this SpecificCharacterSet ("?" for what it cannot hold); "": each object's own.
    answer_charset: str = ""
    # Implementation Version Name it announces in the A-ASSOCIATE-AC; "" keeps pynetdicom's (an upgrade changes it).
    implementation_version_name: str = ""
    # Storage transfer syntaxes it no longer accepts at negotiation (e.g. JPEG 2000 dropped with a codec).
    rejected_transfer_syntaxes: frozenset[str] = frozenset()
    # Storage commitment (simulators.commitment; PUSH_MODEL in rejected_sop_classes: none at all).
    # The N-EVENT-REPORT is sent from inside the N-ACTION handler, so it arrives before the N-ACTION-RSP.
    report_before_response: bool = False
    # "same" or "new": where every report goes, whatever PacsConfig.commitment_report says ("": as configured).
    commitment_report: str = ""
    # Every instance fails with 0x0110 processing failure, held or not.
    commit_nothing: bool = False
    # Load and attack behaviours (issue 12; simulators._pressure). A steady-state slow-down of this
    # fraction on the operation, as its requester sees it (0.20: 1.2x as slow).
    store_slowdown: float = 0.0
    find_slowdown: float = 0.0
    # Bytes kept (touched, never freed) for every association established: a leak.
    leak_per_association: int = 0
    # The Maximum Length it announces in the A-ASSOCIATE-AC (PS3.7 D.3.3.1); 0: unlimited, as most PACS.
    maximum_pdu_size: int = 0
    # Exits (code 70) when a P-DATA-TF is longer than maximum_pdu_size, which must then be set.
    crash_on_oversized_pdu: bool = False
    # A data set with an unterminated undefined-length sequence stops it serving anyone (a hang, not a crash).
    hang_on_unterminated_sequence: bool = False

    def __post_init__(self) -> None:
        slowdowns = (self.store_slowdown, self.find_slowdown)
        if not all(math.isfinite(x) and 0 <= x <= 10 for x in slowdowns):
            raise ValueError(f"Quirks: store_slowdown and find_slowdown must be within 0..10, got {slowdowns}")
        if self.leak_per_association < 0 or self.maximum_pdu_size < 0:
            raise ValueError(
                "Quirks: leak_per_association and maximum_pdu_size must not be negative, got "
                f"{self.leak_per_association}, {self.maximum_pdu_size}"
            )
        if self.crash_on_oversized_pdu and not self.maximum_pdu_size:
            raise ValueError(
                "Quirks: crash_on_oversized_pdu needs a maximum_pdu_size to exceed (0 announces no limit); "
                "hint: maximum_pdu_size=16382, pynetdicom's default"
            )


@dataclass(frozen=True, kw_only=True)
class PacsConfig:
    """Where the PACS listens, where it stores, whom it may C-MOVE to, and how it misbehaves."""

    ae_title: str
    host: str = LOOPBACK
    port: int  # 0: any free port, see PacsSimulator.port
    storage: Path
    # C-MOVE destination AE title -> (host, port).
    destinations: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    quirks: Quirks = Quirks()
    acse_timeout: float = ACSE_TIMEOUT
    dimse_timeout: float = 10.0
    network_timeout: float = 10.0
    maximum_associations: int = MAX_ASSOCIATIONS
    # TLS (DICOM PS3.15 B.9+): every association is wrapped with it; None serves plain TCP.
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False)
    # For the associations it opens (C-MOVE sub-operations): TLS with this client context.
    client_ssl_context: ssl.SSLContext | None = field(default=None, compare=False)
    # Access control: only these calling AE titles may associate (empty: anyone), and the
    # called AE title must be its own when `check_called_ae`.
    known_peers: frozenset[str] = frozenset()
    check_called_ae: bool = False
    # User identity negotiation (PS3.7 D.3.3.7), checked by simulators.identity.policy; None: ignored.
    identity: IdentityPolicy | None = field(default=None, compare=False)
    # Where its audit messages go (PS3.15 A.5); None: it keeps no audit trail.
    auditor: Auditor | None = field(default=None, compare=False)
    # Storage commitment reports (simulators.commitment.MODES): "same" association, a "new" one to the
    # requester (found in `destinations`), or "auto": same if the requester kept it open `commitment_delay` s.
    commitment_report: str = "auto"
    # A C-STORE of a SOP Instance UID it already holds (DUPLICATES): "overwrite" replaces it; "keep" keeps the first
    # and answers as if stored (Orthanc's default, OverwriteInstances false); "refuse" keeps it and answers 0x0111.
    duplicates: str = "overwrite"
    commitment_delay: float = 0.2  # seconds between the N-ACTION-RSP and the N-EVENT-REPORT
    # Arrival log (simulators._arrivals): one line per DIMSE request received and per C-STORE sub-operation
    # sent, with time.time_ns(), for the performance phase's C-MOVE timings; None: not kept.
    arrivals: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "storage", Path(self.storage))
        object.__setattr__(self, "destinations", types.MappingProxyType(dict(self.destinations)))
        if self.maximum_associations < 1 or self.acse_timeout <= 0:
            raise ValueError(
                "PacsConfig: maximum_associations and acse_timeout must be positive, got "
                f"{self.maximum_associations}, {self.acse_timeout}"
            )
        if self.commitment_report not in MODES or self.quirks.commitment_report not in ("", "same", "new"):
            raise ValueError(
                f"PacsConfig: commitment_report must be one of {', '.join(MODES)} (quirk: same, new or empty), "
                f"got {self.commitment_report!r} (quirk {self.quirks.commitment_report!r})"
            )
        if self.commitment_delay < 0:
            raise ValueError(f"PacsConfig: commitment_delay must not be negative, got {self.commitment_delay}")


def storage_name(sop_instance_uid: str) -> str:
    """The file name for an object: the UID if it is a plain UID, else a sha256 of it.

    Any UID that is not digits and single dots (`..`, `a/b`, empty, NUL, too long) gets
    a hashed name, so a hostile peer can neither leave the folder nor hit another file.
    """
    if len(sop_instance_uid) <= 64 and _PLAIN_UID.fullmatch(sop_instance_uid):
        return sop_instance_uid + ".dcm"
    digest = hashlib.sha256(sop_instance_uid.encode("utf-8", "surrogatepass")).hexdigest()
    return f"x-{digest}.dcm"


def _element(group_element: int, vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian element with a 2-byte length (UL, UI, SH)."""
    return struct.pack("<HH", group_element >> 16, group_element & 0xFFFF) + vr + struct.pack("<H", len(value)) + value


def _ui(text: str) -> bytes:
    raw = text.encode("latin-1", "replace")
    return raw + b"\0" if len(raw) % 2 else raw


def part10_header(sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str) -> bytes:
    """Preamble, `DICM` and the file meta group, as pynetdicom's `event.encoded_dataset()` writes them.

    Encoded by hand: pydicom's writer took as long as writing the file, on every C-STORE.
    """
    version = PYNETDICOM_IMPLEMENTATION_VERSION.encode("ascii")
    body = b"".join(
        (
            b"\x02\x00\x01\x00OB\x00\x00\x02\x00\x00\x00\x00\x01",  # (0002,0001) version 00 01
            _element(0x00020002, b"UI", _ui(sop_class_uid)),
            _element(0x00020003, b"UI", _ui(sop_instance_uid)),
            _element(0x00020010, b"UI", _ui(transfer_syntax_uid)),
            _element(0x00020012, b"UI", _ui(PYNETDICOM_IMPLEMENTATION_UID)),
            _element(0x00020013, b"SH", version + b" " if len(version) % 2 else version),
        )
    )
    return b"\0" * 128 + b"DICM" + _element(0x00020000, b"UL", struct.pack("<I", len(body))) + body


class PacsSimulator:
    """A PACS SCP on pynetdicom; `start()` returns once it listens, `stop()` shuts it down."""

    def __init__(self, config: PacsConfig) -> None:
        self._config = config
        self._index = Index(config.storage)
        # Journal numbers of the associations that stored or asked for commitment.
        self._numbers = AssociationNumbers()
        self._commitment: CommitmentScp | None = None
        self._serving: Serving | None = None
        self._port = config.port
        self._arrivals = ArrivalLog(config.arrivals) if config.arrivals is not None else None
        quirks = config.quirks
        self._pressure = Pressure(
            slowdowns={"store": quirks.store_slowdown, "find": quirks.find_slowdown},
            leak=quirks.leak_per_association,
            crash_over=quirks.maximum_pdu_size if quirks.crash_on_oversized_pdu else 0,
            hang=quirks.hang_on_unterminated_sequence,
        )

    @property
    def config(self) -> PacsConfig:
        return self._config

    @property
    def port(self) -> int:
        """The port it listens on (the one the OS chose if the config said 0)."""
        return self._port

    def start(self) -> PacsSimulator:
        """Open the index, bind the port and serve in background threads; returns once listening."""
        cfg = self._config
        cfg.storage.mkdir(parents=True, exist_ok=True)
        self._index.start()
        ae = AE(ae_title=cfg.ae_title)
        ae.acse_timeout = cfg.acse_timeout
        ae.dimse_timeout = cfg.dimse_timeout
        ae.network_timeout = cfg.network_timeout
        ae.maximum_pdu_size = cfg.quirks.maximum_pdu_size  # 0: unlimited, as most PACS: fewer, larger P-DATA PDUs
        ae.add_supported_context(VERIFICATION)
        if cfg.quirks.implementation_version_name:
            ae.implementation_version_name = cfg.quirks.implementation_version_name
        rejected = cfg.quirks.rejected_sop_classes
        syntaxes = [ts for ts in STORAGE_TRANSFER_SYNTAXES if ts not in cfg.quirks.rejected_transfer_syntaxes]
        for uid in STORAGE_SOP_CLASSES:
            if uid not in rejected:
                # Both roles, so a C-GET requestor may take the SCP role for storage.
                ae.add_supported_context(uid, syntaxes, scu_role=True, scp_role=True)
        for uid in _MODELS:
            ae.add_supported_context(uid)
        if PUSH_MODEL not in rejected:
            ae.add_supported_context(PUSH_MODEL)
            self._commitment = self._commitment_scp(frozenset(STORAGE_SOP_CLASSES) - rejected)
        if cfg.known_peers:
            ae.require_calling_aet = sorted(cfg.known_peers)
        ae.require_called_aet = cfg.check_called_ae
        handlers: list[Any] = [
            (evt.EVT_CONN_OPEN, on_connection_open),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_RELEASED, self._on_closed, ["released"]),
            (evt.EVT_ABORTED, self._on_closed, ["aborted"]),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._pressure.wrap("store", self._on_store)),
            (evt.EVT_C_FIND, self._pressure.wrap("find", self._on_find)),
            (evt.EVT_C_MOVE, self._on_move),
            (evt.EVT_C_GET, self._on_get),
            (evt.EVT_REJECTED, self._on_rejected),
            *(identity_handlers(cfg.identity) if cfg.identity is not None else []),
            *(self._commitment.handlers() if self._commitment is not None else []),
            *(self._arrivals.handlers() if self._arrivals is not None else []),
            *self._pressure.handlers(),
        ]
        try:
            self._serving = serve_dicom(
                ae,
                (cfg.host, cfg.port),
                handlers,
                capacity=cfg.maximum_associations,
                name=f"pacs-{cfg.ae_title}",
                ssl_context=cfg.ssl_context,
            )
        except Exception:
            self._index.close()
            raise
        self._port = self._serving.port
        if cfg.auditor is not None:
            cfg.auditor.application(started=True)
        _LOG.info(
            "listening as %s on %s:%d%s, storage %s",
            cfg.ae_title,
            cfg.host,
            self._port,
            " (TLS)" if cfg.ssl_context is not None else "",
            cfg.storage,
        )
        return self

    def stop(self) -> None:
        """Abort open associations, close the port, and finish indexing."""
        if self._commitment is not None:
            self._commitment.close()  # no new reports; those under way end first
        self._pressure.release()  # a hung device (hang_on_unterminated_sequence) still stops
        if self._serving is not None:
            self._serving.stop()
            self._serving = None
            _LOG.info("stopped")
            if self._config.auditor is not None:
                self._config.auditor.application(started=False)
                self._config.auditor.close()
        self._index.close()

    def __enter__(self) -> PacsSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def flush(self) -> None:
        """Index every object received so far (queries do this themselves)."""
        self._index.flush()

    def stored(self) -> list[IndexedInstance]:
        """Every object held, in patient/study/series/instance order."""
        self._index.flush()
        return self._index.select()

    # -- handlers; pynetdicom runs each association in its own thread ---------------------

    def _on_accepted(self, event: Any) -> None:
        assoc = event.assoc
        rejected = sorted({str(cx.abstract_syntax) for cx in assoc.rejected_contexts})
        _LOG.info(
            "association from %s (%s:%s): %d contexts accepted, %d rejected%s",
            assoc.requestor.ae_title,
            assoc.requestor.address,
            assoc.requestor.port,
            len(assoc.accepted_contexts),
            len(assoc.rejected_contexts),
            f" ({', '.join(rejected)})" if rejected else "",
        )

    def _on_rejected(self, event: Any) -> None:
        requestor = event.assoc.requestor
        _LOG.info("association from %s (%s) rejected", requestor.ae_title, requestor.address)
        if self._config.auditor is not None:
            why = f"association from {requestor.ae_title!r} rejected: unknown calling or wrong called AE title"
            self._config.auditor.security_alert(str(requestor.ae_title), str(requestor.address), why)

    def _on_closed(self, event: Any, how: str) -> None:
        _LOG.info("association from %s %s", event.assoc.requestor.ae_title, how)

    def _on_echo(self, event: Any) -> int:
        _LOG.info("C-ECHO from %s", event.assoc.requestor.ae_title)
        return 0x0000

    def _on_store(self, event: Any) -> int:
        uid = str(event.request.AffectedSOPInstanceUID or "")
        name = storage_name(uid)
        folder = self._config.storage
        if self._config.duplicates != "overwrite" and (folder / name).exists():
            status = _DUPLICATE if self._config.duplicates == "refuse" else self._config.quirks.store_status
            _LOG.info("C-STORE %r: a duplicate, the first kept: 0x%04X", uid, status)
            return status
        try:
            header = part10_header(
                str(event.request.AffectedSOPClassUID or ""), uid, str(event.context.transfer_syntax)
            )
            # Written in place, not via a temporary file and rename: that doubled the cost of a
            # store on this file system, and only a re-store of the same UID could be torn.
            with open(folder / name, "wb") as f:
                f.write(header)
                f.write(event.request.DataSet.getvalue())
            if self._config.quirks.drop_on_store:
                self._drop_stored(folder / name)
        except OSError as exc:
            _LOG.warning("C-STORE %r: cannot write %s: %s", uid, name, exc)
            return _OUT_OF_RESOURCES
        self._journal(event, uid, name)
        self._index.submit(name)
        if self._config.auditor is not None:
            ds = event.dataset  # decoded only for the audit message, and only a device that audits
            self._config.auditor.transferred(
                str(event.assoc.requestor.ae_title),
                self._config.ae_title,
                [str(ds.get("StudyInstanceUID", ""))],
                [str(ds.get("PatientID", ""))],
                "C",
            )
        status = self._config.quirks.store_status
        shown = repr(uid) if name == f"{uid}.dcm" else f"{uid!r} as {name}"
        _LOG.info("C-STORE %s %s: 0x%04X", event.request.AffectedSOPClassUID, shown, status)
        return status

    def _drop_stored(self, path: Path) -> None:
        ds = dcmread(path)
        for tag in sorted(self._config.quirks.drop_on_store):
            if tag in ds:
                del ds[tag]
        ds.save_as(path, enforce_file_format=True)

    def _journal(self, event: Any, uid: str, name: str) -> None:
        """One JOURNAL line per object received: on which association (numbered), from whom, in which syntax.

        A single O_APPEND write per line, so concurrent associations never tear one; the number
        is a sequence, not a port or a time, so that two runs journal alike.
        """
        line = {
            "association": self._number(event.assoc),
            "calling_ae": str(event.assoc.requestor.ae_title).strip(),
            "sop_instance_uid": uid,
            "transfer_syntax_uid": str(event.context.transfer_syntax),
            "file": name,
        }
        try:
            append_json_line(self._config.storage / JOURNAL, line)
        except OSError as exc:  # the object is stored; only its wire record is lost, and said so
            _LOG.warning("C-STORE %r: cannot journal to %s: %s", uid, JOURNAL, exc)

    def _number(self, assoc: Any) -> int:
        """The journals' number of an association: a sequence in order of first use, not a port or a time."""
        return self._numbers.number(assoc)

    def _commitment_scp(self, supported: frozenset[str]) -> CommitmentScp:
        """The storage commitment SCP over this PACS's files (simulators.commitment), its journal beside JOURNAL."""
        cfg, quirks = self._config, self._config.quirks
        return CommitmentScp(
            ae_title=cfg.ae_title,
            journal=cfg.storage / COMMITMENT,
            held=lambda uid: stored_sop_class(cfg.storage / storage_name(uid), uid),
            supported=supported,
            number=self._number,
            destinations=cfg.destinations,
            mode=quirks.commitment_report or cfg.commitment_report,
            delay=cfg.commitment_delay,
            report_before_response=quirks.report_before_response,
            fail_all=quirks.commit_nothing,
            timeout=cfg.dimse_timeout,
            client_ssl_context=cfg.client_ssl_context,
        )

    def _on_find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        if self._config.quirks.crash_on_find:
            _LOG.error("crash_on_find: exiting as a crashed device would")
            os._exit(70)  # no cleanup, no release: what a segfaulting device looks like
        model = _MODELS.get(str(event.request.AffectedSOPClassUID), "")
        identifier = event.identifier
        try:
            query = parse_query(identifier, model)
        except QueryError as exc:
            _LOG.info("C-FIND %s refused: 0x%04X %s", model, exc.status, exc.message)
            yield exc.status, None
            return
        groups = self._select(query, identifier)
        _LOG.info("C-FIND %s %s: %d matches", model, query.level, len(groups))
        if self._config.auditor is not None:
            sop_class = str(event.request.AffectedSOPClassUID)
            self._config.auditor.query(
                str(event.assoc.requestor.ae_title), sop_class, event.request.Identifier.getvalue()
            )
        for group in groups:
            if event.is_cancelled:
                yield _CANCEL, None
                return
            quirks = self._config.quirks
            answer = response(
                identifier,
                query,
                group,
                self._config.ae_title,
                availability=quirks.instance_availability,
                answer_charset=quirks.answer_charset,
                pn_case_insensitive=quirks.pn_case_insensitive,
            )
            yield _PENDING, answer

    def _on_move(self, event: Any) -> Iterator[Any]:
        model = _MODELS.get(str(event.request.AffectedSOPClassUID), "")
        destination = str(event.move_destination or "").strip()
        address = self._config.destinations.get(destination)
        if address is None:
            _LOG.info("C-MOVE %s to unknown destination %r: 0xA801", model, destination)
            yield None, None  # pynetdicom answers 0xA801 Move Destination Unknown
            return
        # A bad identifier raises here; pynetdicom then answers 0xC514 (unable to process).
        instances = self._retrieve(parse_query(event.identifier, model, retrieve=True), event.identifier)
        _LOG.info("C-MOVE %s to %s: %d instances", model, destination, len(instances))
        kwargs: dict[str, Any] = {
            "ae_title": destination,
            "contexts": _contexts(instances, self._config.quirks.move_transfer_syntax),
            "evt_handlers": _SUB_HANDLERS + ([] if self._arrivals is None else self._arrivals.handlers()),
        }
        if self._config.client_ssl_context is not None:
            kwargs["tls_args"] = (self._config.client_ssl_context, address[0])
        yield address[0], address[1], kwargs
        yield len(instances)
        self._audit_transfer(destination, instances, begin=True)
        for i, inst in enumerate(instances):
            if event.is_cancelled:
                yield _CANCEL, None
                return
            if i == 0 and self._config.quirks.fail_first_move_suboperation:
                yield _PENDING, _unsendable(inst)
                continue
            yield _PENDING, self._load(inst, move=True)
        self._audit_transfer(destination, instances, begin=False)

    def _on_get(self, event: Any) -> Iterator[Any]:
        model = _MODELS.get(str(event.request.AffectedSOPClassUID), "")
        # A bad identifier raises here; pynetdicom then answers 0xC413 (unable to process).
        instances = self._retrieve(parse_query(event.identifier, model, retrieve=True), event.identifier)
        _LOG.info("C-GET %s: %d instances", model, len(instances))
        yield len(instances)
        requestor = str(event.assoc.requestor.ae_title)
        self._audit_transfer(requestor, instances, begin=True)
        undo = _answers_as_warnings(event.assoc, self._config.quirks.get_warning_suboperations)
        try:
            for inst in instances:
                if event.is_cancelled:
                    yield _CANCEL, None
                    return
                yield _PENDING, self._load(inst)
        finally:
            undo()
        self._audit_transfer(requestor, instances, begin=False)

    # -- helpers -----------------------------------------------------------------------

    def _audit_transfer(self, destination: str, instances: Sequence[IndexedInstance], *, begin: bool) -> None:
        auditor = self._config.auditor
        if auditor is None or not instances:
            return
        studies = [i.study_instance_uid for i in instances]
        patients = [i.patient_id for i in instances]
        if begin:
            auditor.begin_transferring(self._config.ae_title, destination, studies, patients)
        else:
            auditor.transferred(self._config.ae_title, destination, studies, patients, "R")

    def _select(self, query: Query, identifier: Dataset) -> list[Any]:
        self._index.flush()
        scope = {column: list(uids) for column, uids in query.scope.items()}
        rows = self._index.select(**scope)
        return evaluate(query, rows, identifier, pn_case_insensitive=self._config.quirks.pn_case_insensitive)

    def _retrieve(self, query: Query, identifier: Dataset) -> list[IndexedInstance]:
        return [inst for group in self._select(query, identifier) for inst in group.instances]

    def _load(self, inst: IndexedInstance, *, move: bool = False) -> Dataset:
        """The stored object to send; for a C-MOVE (`move`) with the move quirks applied."""
        # Unread elements stay raw, so pynetdicom re-encodes them byte for byte.
        ds = dcmread(self._config.storage / inst.filename)
        quirks = self._config.quirks
        for tag in sorted(quirks.drop_on_retrieve):
            if tag in ds:
                del ds[tag]
        if not move:
            return ds
        for tag in sorted(quirks.decimal_is_on_move):
            if tag in ds and ds[tag].VR == "IS" and ds[tag].VM == 1 and ds[tag].value is not None:
                text = f"{int(ds[tag].value)}.0"
                raw = (text + " " * (len(text) % 2)).encode("ascii")  # padded to even length, as DICOM wants
                # Raw, so that no IS validation rewrites it: the bytes are what the patch would send.
                ds[tag] = RawDataElement(Tag(tag), "IS", len(raw), raw, 0, False, True)
        syntax = quirks.move_transfer_syntax
        if syntax and syntax != ds.file_meta.TransferSyntaxUID:
            if ds.file_meta.TransferSyntaxUID.is_compressed:
                ds.decompress(as_rgb=False, generate_instance_uid=False)
            ds.file_meta.TransferSyntaxUID = UID(syntax)
        return ds


def _contexts(instances: Sequence[IndexedInstance], transfer_syntax: str = "") -> list[PresentationContext]:
    """One context per (SOP class, transfer syntax) of the objects, so each is sent as stored (or in `transfer_syntax`)."""
    pairs = sorted({(i.sop_class_uid, transfer_syntax or i.transfer_syntax_uid) for i in instances})
    return [build_context(sop_class, [syntax]) for sop_class, syntax in pairs[:_MAX_CONTEXTS]]


def _answers_as_warnings(assoc: Any, count: int) -> Callable[[], None]:
    """Read the association's next `count` successful C-STORE answers as 0xB000 (coercion); returns the undo.

    pynetdicom's C-GET SCP counts each sub-operation from the answer `send_c_store` returns (a
    Warning category adds to NumberOfWarningSuboperations, then the final status is 0xB000), so
    the device's own counting goes through it: the counts stay consistent and nothing is failed.
    """
    if count < 1:
        return lambda: None
    send = assoc.send_c_store
    left = [count]

    def send_c_store(*args: Any, **kwargs: Any) -> Dataset:
        status = cast(Dataset, send(*args, **kwargs))
        if left[0] > 0 and int(status.get("Status", -1)) == 0x0000:
            left[0] -= 1
            status = copy.deepcopy(status)
            status.Status = 0xB000
        return status

    assoc.send_c_store = send_c_store  # an instance attribute over the class's method, for this C-GET only
    return lambda: vars(assoc).pop("send_c_store", None)


def _unsendable(inst: IndexedInstance) -> Dataset:
    """A stand-in pynetdicom cannot send (no transfer syntax), so it counts a failed sub-operation."""
    ds = Dataset()
    ds.SOPClassUID = inst.sop_class_uid
    ds.SOPInstanceUID = inst.sop_instance_uid
    return ds


def build_parser(prog: str, description: str, *, tls: bool = False) -> argparse.ArgumentParser:
    """The command line shared by the PACS and the reference device; `tls` adds --tls-dir and --tls-client-cert.

    TLS options are opt-in so that a program that does not pass them on (see
    `ssl_context_from_args`) never accepts --tls-dir only to serve plain TCP.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--ae-title", required=True, help="AE title to answer as")
    parser.add_argument("--host", default=LOOPBACK, help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to listen on (0: any free port)")
    parser.add_argument("--storage", type=Path, required=True, help="folder for received objects")
    parser.add_argument(
        "--destination",
        action="append",
        default=[],
        metavar="AE=HOST:PORT",
        help="a C-MOVE destination (repeatable)",
    )
    if tls:
        parser.add_argument(
            "--tls-dir",
            type=Path,
            default=None,
            metavar="DIR",
            help="serve TLS with the server credential of this simulators.pki directory (default: plain TCP)",
        )
        parser.add_argument(
            "--tls-client-cert",
            choices=("required", "optional"),
            default="required",
            help="whether a client certificate signed by the PKI's CA is required (default: required)",
        )
    return parser


def ssl_context_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> ssl.SSLContext | None:
    """The server SSL context --tls-dir/--tls-client-cert ask for (None: plain); exits 2 through the parser if unusable."""
    if getattr(args, "tls_dir", None) is None:
        return None
    try:
        pki = load_pki(args.tls_dir)
        return pki.server_context(require_client_cert=args.tls_client_cert == "required")
    except (PkiError, OSError, ssl.SSLError) as exc:
        parser.error(f"--tls-dir {args.tls_dir}: {exc}")


def serve(config: PacsConfig, *, banner: str = "") -> int:
    """Run a PACS until SIGTERM or SIGINT, logging to stderr; 0 on a clean stop."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    stop = stop_signals()
    if banner:
        _LOG.info("%s", banner)
    pacs = PacsSimulator(config).start()
    # For whoever started it with --port 0: parse_listening() reads this line.
    print(f"listening dicom={format_address(config.host, pacs.port)}", flush=True)
    try:
        wait_until_stopped(stop, _LOG)
    finally:
        pacs.stop()
    return 0


def parse_destinations(parser: argparse.ArgumentParser, values: Sequence[str]) -> dict[str, tuple[str, int]]:
    """--destination values as a mapping; exits 2 through the parser on a malformed one."""
    out: dict[str, tuple[str, int]] = {}
    for text in values:
        try:
            ae_title, address = parse_destination(text)
        except ValueError as exc:
            parser.error(str(exc))
        out[ae_title] = address
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser("python -m simulators.pacs", "Run the PACS simulator until SIGTERM/SIGINT.", tls=True)
    parser.add_argument(
        "--max-associations",
        type=int,
        default=MAX_ASSOCIATIONS,
        help=f"concurrent associations served; idle connections make room (default {MAX_ASSOCIATIONS})",
    )
    parser.add_argument(
        "--acse-timeout",
        type=float,
        default=ACSE_TIMEOUT,
        help=f"seconds for a TLS handshake and A-ASSOCIATE-RQ, and ACSE waits (default {ACSE_TIMEOUT:g})",
    )
    parser.add_argument(
        "--commitment-report",
        choices=MODES,
        default="auto",
        help="storage commitment reports: on the same association, a new one to the requester's --destination, "
        "or auto: same if the requester keeps it open (default auto)",
    )
    parser.add_argument(
        "--commitment-delay",
        type=float,
        default=0.2,
        help="seconds between the N-ACTION-RSP and the N-EVENT-REPORT (default 0.2)",
    )
    parser.add_argument(
        "--arrivals",
        type=Path,
        default=None,
        metavar="PATH",
        help="append one JSON line per DIMSE request received and C-STORE sub-operation sent, with its "
        "time.time_ns() (simulators._arrivals; default: none)",
    )
    args = parser.parse_args(argv)
    try:
        config = PacsConfig(
            ae_title=args.ae_title,
            host=args.host,
            port=args.port,
            storage=args.storage,
            destinations=parse_destinations(parser, args.destination),
            ssl_context=ssl_context_from_args(parser, args),
            maximum_associations=args.max_associations,
            acse_timeout=args.acse_timeout,
            commitment_report=args.commitment_report,
            commitment_delay=args.commitment_delay,
            arrivals=args.arrivals,
        )
    except ValueError as exc:
        parser.error(str(exc))
    return serve(config)


if __name__ == "__main__":
    sys.exit(main())
