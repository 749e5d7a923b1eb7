"""The RIS simulator: a pynetdicom SCP for Modality Worklist C-FIND and MPPS N-CREATE / N-SET, journalling every request.

It supports Verification, Modality Worklist Information Model - FIND and Modality Performed
Procedure Step only: anything else (MPPS Retrieve / Notification, Q/R) is rejected at negotiation.
Connections are guarded as the PACS's are (simulators.pacs: ARTIM deadline, capacity slow peers
cannot exhaust).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt

from simulators._arrivals import ArrivalLog
from simulators._net import LOOPBACK, VERIFICATION, on_connection_open, status_hex
from simulators._server import ACSE_TIMEOUT, MAX_ASSOCIATIONS, AssociationNumbers, Serving, serve
from simulators.corpus import DEFAULT_SEED, UID_ROOT
from simulators.matching import QueryError
from simulators.ris.journal import Journal, dataset_json
from simulators.ris.mpps import PROCESSING_FAILURE, MppsStore, Reply
from simulators.ris.mwl import UNABLE_TO_PROCESS, answer, parse_mwl_query, select
from simulators.ris.worklist import ScheduledItem, scheduled_items
from simulators.workflow_scu import MPPS, MWL_FIND

__all__ = ["RisConfig", "RisQuirks", "RisSimulator"]

_LOG = logging.getLogger("simulators.ris")
_PENDING = 0xFF00
_CANCEL = 0xFE00
# Before answer n (from 1, the second) of a C-FIND, with a callable saying whether a C-CANCEL arrived.
Pace = Callable[[int, Callable[[], bool]], None]


@dataclass(frozen=True)
class RisQuirks:
    """Deviations from standard behaviour; the defaults are a well-behaved RIS (the reference RIS device's variants)."""

    mpps_reopen: bool = False  # accepts an N-SET after COMPLETED / DISCONTINUED (violates PS3.4 F.7.2.2.3)
    ignore_station_ae: bool = False  # MWL matching ignores the Scheduled Station AE Title key
    pn_case_insensitive: bool = True  # PN matching ignores case


@dataclass(frozen=True, kw_only=True)
class RisConfig:
    """Where the RIS listens, where it journals, and what it schedules: items for `station_ae` on `date`."""

    ae_title: str = "PGRIS"
    host: str = LOOPBACK
    port: int  # 0: any free port, see RisSimulator.port
    out: Path  # folder of the request journal (simulators.ris.journal.REQUESTS)
    date: str  # YYYYMMDD: the worklist date
    station_ae: str = "PGMODALITY"  # the device's AE title: where its items are scheduled
    seed: int = DEFAULT_SEED
    quirks: RisQuirks = RisQuirks()
    acse_timeout: float = ACSE_TIMEOUT
    dimse_timeout: float = 10.0
    network_timeout: float = 10.0
    maximum_associations: int = MAX_ASSOCIATIONS
    items: tuple[ScheduledItem, ...] = field(default=(), compare=False)  # () : scheduled_items(seed, date, station_ae)
    # MWL datasets served instead of the items' own (worklist.read_wl_folder: the RIS as a seeded MWL device).
    worklist: tuple[Dataset, ...] = field(default=(), compare=False)
    # Arrival log (simulators._arrivals): one time-stamped line per request received, its MPPS status with
    # it; the performance phase's workflow.start_procedure / workflow.complete. None: none (the journal is apart).
    arrivals: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        if self.arrivals is not None:
            object.__setattr__(self, "arrivals", Path(self.arrivals))
        if not self.items:  # also checks date and station_ae (ValueError naming the value)
            object.__setattr__(self, "items", scheduled_items(self.seed, self.date, self.station_ae))
        if self.maximum_associations < 1 or self.acse_timeout <= 0:
            raise ValueError(
                "RisConfig: maximum_associations and acse_timeout must be positive, got "
                f"{self.maximum_associations}, {self.acse_timeout}"
            )


class RisSimulator:
    """An MWL + MPPS SCP; `start()` returns once it listens, `stop()` shuts it down.

    `pace` is for tests that need a C-CANCEL to land between two answers: it is called before
    each answer after the first and may wait (bounded) until the cancel arrived.
    """

    def __init__(self, config: RisConfig, *, pace: Pace | None = None) -> None:
        self._config = config
        self._pace = pace
        self._datasets = list(config.worklist) or [item.dataset() for item in config.items]
        seed = config.seed
        self.mpps = MppsStore(
            lambda n: str(generate_uid(prefix=UID_ROOT, entropy_srcs=[f"patchgate-ris/{seed}/mpps/{n}"])),
            reopen=config.quirks.mpps_reopen,
        )
        self._journal = Journal(config.out)
        self._numbers = AssociationNumbers()
        self._arrivals = ArrivalLog(config.arrivals) if config.arrivals is not None else None
        self._serving: Serving | None = None
        self._port = config.port

    @property
    def config(self) -> RisConfig:
        return self._config

    @property
    def port(self) -> int:
        """The port it listens on (the one the OS chose if the config said 0)."""
        return self._port

    @property
    def journal_path(self) -> Path:
        return self._journal.path

    def start(self) -> RisSimulator:
        """Bind the port and serve in background threads; returns once listening."""
        cfg = self._config
        cfg.out.mkdir(parents=True, exist_ok=True)
        ae = AE(ae_title=cfg.ae_title)
        ae.acse_timeout = cfg.acse_timeout
        ae.dimse_timeout = cfg.dimse_timeout
        ae.network_timeout = cfg.network_timeout
        for uid in (VERIFICATION, MWL_FIND, MPPS):
            ae.add_supported_context(uid)
        handlers: list[Any] = [
            (evt.EVT_CONN_OPEN, on_connection_open),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_N_CREATE, self._on_create),
            (evt.EVT_N_SET, self._on_set),
            *(self._arrivals.handlers() if self._arrivals is not None else []),
        ]
        self._serving = serve(
            ae, (cfg.host, cfg.port), handlers, capacity=cfg.maximum_associations, name=f"ris-{cfg.ae_title}"
        )
        self._port = self._serving.port
        _LOG.info(
            "listening as %s on %s:%d, %d items for %s on %s, journal %s",
            cfg.ae_title,
            cfg.host,
            self._port,
            len(self._datasets),
            cfg.station_ae,
            cfg.date,
            self._journal.path,
        )
        return self

    def stop(self) -> None:
        """Abort open associations and close the port."""
        if self._serving is None:
            return
        self._serving.stop()
        self._serving = None
        _LOG.info("stopped")

    def __enter__(self) -> RisSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- handlers; pynetdicom runs each association in its own thread ---------------------

    def _line(self, event: Any, dimse: str, **fields: Any) -> None:
        assoc = event.assoc
        self._journal.write(
            association=self._numbers.number(assoc),
            calling_ae=str(assoc.requestor.ae_title).strip(),
            called_ae=str(assoc.acceptor.ae_title).strip(),
            dimse=dimse,
            **fields,
        )

    def _on_echo(self, event: Any) -> int:
        self._line(event, "C-ECHO", sop_class=VERIFICATION, sop_instance="", status="0x0000", dataset=None)
        return 0x0000

    def _on_find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        try:
            identifier = event.identifier
        except Exception as exc:  # noqa: BLE001 - an identifier pydicom cannot decode
            self._find_line(event, None, UNABLE_TO_PROCESS, f"identifier not decodable: {exc.__class__.__name__}", [])
            yield UNABLE_TO_PROCESS, None
            return
        try:
            query = parse_mwl_query(identifier)
        except QueryError as exc:  # journalled with the identifier: what the device asked is the observation
            _LOG.info("MWL C-FIND refused: 0x%04X %s", exc.status, exc.message)
            self._find_line(event, identifier, exc.status, exc.message, [])
            yield exc.status, None
            return
        quirks = self._config.quirks
        found = select(
            query,
            self._datasets,
            pn_case_insensitive=quirks.pn_case_insensitive,
            ignore_station_ae=quirks.ignore_station_ae,
        )
        _LOG.info("MWL C-FIND from %s: %d matches", event.assoc.requestor.ae_title, len(found))
        answered: list[str] = []
        seen: list[bool] = []

        def cancelled() -> bool:
            # pynetdicom forgets a C-CANCEL once asked about it (service_class.is_cancelled): remember it here.
            if not seen and event.is_cancelled:
                seen.append(True)
            return bool(seen)

        for n, item in enumerate(found):
            if n and self._pace is not None:
                self._pace(n, cancelled)
            if cancelled():
                _LOG.info("MWL C-FIND cancelled after %d answers", n)
                self._line(event, "C-CANCEL", sop_class=MWL_FIND, sop_instance="", status=None, dataset=None)
                self._find_line(event, identifier, _CANCEL, "", answered)
                yield _CANCEL, None
                return
            answered.append(str(item.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID))
            yield _PENDING, answer(query, item)
        self._find_line(event, identifier, 0x0000, "", answered)

    def _find_line(
        self, event: Any, identifier: Dataset | None, status: int, comment: str, answered: list[str]
    ) -> None:
        self._line(
            event,
            "C-FIND",
            sop_class=str(event.request.AffectedSOPClassUID),
            sop_instance="",
            status=status_hex(status),
            dataset=dataset_json(identifier),
            error_comment=comment,
            answers=answered,
        )

    def _on_create(self, event: Any) -> tuple[Dataset | int, Dataset | None]:
        uid = event.request.AffectedSOPInstanceUID
        try:
            attributes = event.attribute_list
        except Exception as exc:  # noqa: BLE001 - an attribute list pydicom cannot decode
            reply = Reply(PROCESSING_FAILURE, str(uid or ""), f"attribute list not decodable: {exc.__class__.__name__}")
            self._n_line(event, "N-CREATE", reply, None)
            return reply.status_dataset(), None
        reply = self.mpps.create(str(uid) if uid else None, attributes)
        self._n_line(event, "N-CREATE", reply, attributes)
        _LOG.info("MPPS N-CREATE %s: 0x%04X %s", reply.sop_instance_uid, reply.status, reply.error_comment)
        if reply.status != 0x0000 or reply.attributes is None:
            return reply.status_dataset(), None
        out = reply.attributes
        if not uid:  # pynetdicom moves it into the response's Affected SOP Instance UID
            out.AffectedSOPInstanceUID = reply.sop_instance_uid
        return reply.status_dataset(), out

    def _on_set(self, event: Any) -> tuple[Dataset | int, Dataset | None]:
        uid = str(event.request.RequestedSOPInstanceUID or "")
        try:
            modification = event.modification_list
        except Exception as exc:  # noqa: BLE001 - a modification list pydicom cannot decode
            reply = Reply(PROCESSING_FAILURE, uid, f"modification list not decodable: {exc.__class__.__name__}")
            self._n_line(event, "N-SET", reply, None)
            return reply.status_dataset(), None
        reply = self.mpps.set(uid, modification)
        self._n_line(event, "N-SET", reply, modification)
        _LOG.info("MPPS N-SET %s: 0x%04X %s", uid, reply.status, reply.error_comment)
        return reply.status_dataset(), reply.attributes if reply.status == 0x0000 else None

    def _n_line(self, event: Any, dimse: str, reply: Reply, ds: Dataset | None) -> None:
        self._line(
            event,
            dimse,
            sop_class=MPPS,
            sop_instance=reply.sop_instance_uid,
            status=status_hex(reply.status),
            dataset=dataset_json(ds),
            error_comment=reply.error_comment,
        )
