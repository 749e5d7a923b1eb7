"""The reference modality's console: its worklist, its procedures and what it did for each, over real associations.

One operation at a time, as at a console: query the worklist (RAD-5), start a procedure (MPPS
N-CREATE, RAD-6), acquire and send its images (RAD-8), complete or discontinue it (N-SET, RAD-7),
ask for storage commitment of what it sent (RAD-10). Each returns a JSON answer; a request the
console cannot do now (an unknown SPS ID, complete before start) is a `ConsoleError` with an HTTP
status, and a peer that cannot be reached is an answer with an `error`, never an exception.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from simulators._net import status_hex
from simulators.commitment_scu import CommitmentListener, CommitResult
from simulators.endpoint import JSON, Endpoint
from simulators.modality import Modality, StoreResult
from simulators.reference_modality.behaviour import Behaviour
from simulators.reference_modality.procedure import (
    Clock,
    PerformedStep,
    images,
    mpps_create,
    now,
    sps_id,
    worklist_query,
)
from simulators.workflow_scu import NResult, PerformedSeries, mpps_final

__all__ = ["STATE", "Console", "ConsoleError", "Peers"]

_LOG = logging.getLogger("simulators.reference_modality")
# In the modality's state folder: what it knows, rewritten after every operation (for people and tests).
STATE = "state.json"
# Seconds to wait for a commitment report in all, after the N-ACTION-RSP (on either association).
_REPORT_WAIT = 8.0
_T = TypeVar("_T")


class ConsoleError(Exception):
    """A request the console refuses: the HTTP status to answer and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Peers:
    """Where the modality's peers listen: the RIS (MWL + MPPS SCP) and the PACS (storage + commitment SCP)."""

    ris: Endpoint
    pacs: Endpoint


@dataclass
class _Procedure:
    """One scheduled step as the console knows it: the worklist answer and everything done for it."""

    item: Dataset
    series_uid: str = field(default_factory=lambda: str(generate_uid()))
    step: PerformedStep | None = None
    state: str = "SCHEDULED"  # then IN PROGRESS, COMPLETED, DISCONTINUED (as the modality believes)
    sent: dict[str, tuple[str, Dataset]] = field(default_factory=dict)  # instance UID -> (class UID, dataset)
    mpps: list[dict[str, JSON]] = field(default_factory=list)
    commitments: list[dict[str, JSON]] = field(default_factory=list)
    resends: list[dict[str, JSON]] = field(default_factory=list)

    def refs(self) -> list[tuple[str, str]]:
        return [(sop_class, uid) for uid, (sop_class, _) in self.sent.items()]

    def summary(self) -> dict[str, JSON]:
        return {
            "sps_id": sps_id(self.item),
            "state": self.state,
            "mpps_uid": self.step.sop_instance_uid if self.step else "",
            "pps_id": self.step.pps_id if self.step else "",
            "series_uid": self.series_uid,
            "sent": [[c, i] for c, i in self.refs()],
            "mpps": self.mpps,
            "commitments": self.commitments,
            "resends": self.resends,
        }


class Console:
    """The modality's operations on its peers, with `behaviour` deciding how; thread-safe, one at a time."""

    def __init__(
        self,
        *,
        ae_title: str,
        peers: Peers,
        behaviour: Behaviour,
        listener: CommitmentListener,
        state_dir: Path,
        modality: str = "",
        date: Callable[[], str] = lambda: now().date,
        timeout: float = 10.0,
    ) -> None:
        self.ae_title = ae_title
        self.peers = peers
        self.behaviour = behaviour
        self.listener = listener
        self.modality = modality
        self._date = date
        self._scu = Modality(ae_title, acse_timeout=timeout, dimse_timeout=timeout, network_timeout=timeout)
        self._state_path = Path(state_dir) / STATE
        self._lock = threading.Lock()
        self._answers: dict[str, Dataset] = {}
        self._procedures: dict[str, _Procedure] = {}

    # -- the operations (each under the console's lock) -----------------------------------

    def query(self) -> dict[str, JSON]:
        """RAD-5: the worklist for this station and date; the answers replace what the console knew."""
        return self._locked(self._query)

    def start(self, sps: str) -> dict[str, JSON]:
        """RAD-6: MPPS N-CREATE IN PROGRESS for the step, its attributes copied from the worklist."""
        return self._locked(lambda: self._start(sps))

    def acquire(self, sps: str) -> dict[str, JSON]:
        """RAD-8: make the step's images and C-STORE them to the PACS."""
        return self._locked(lambda: self._acquire(sps))

    def complete(self, sps: str) -> dict[str, JSON]:
        """RAD-7: MPPS N-SET COMPLETED listing what was sent."""
        return self._locked(lambda: self._final(sps, "COMPLETED"))

    def discontinue(self, sps: str) -> dict[str, JSON]:
        """RAD-7: MPPS N-SET DISCONTINUED listing what was sent."""
        return self._locked(lambda: self._final(sps, "DISCONTINUED"))

    def commit(self, sps: str) -> dict[str, JSON]:
        """RAD-10: storage commitment of what was sent for the step; after a failure report, resend and ask once more."""
        return self._locked(lambda: self._commit(sps))

    def scenario(self, sps: str) -> dict[str, JSON]:
        """The whole Scheduled Workflow for one step: worklist, MPPS in progress, images, MPPS completed, commitment."""

        def run() -> dict[str, JSON]:
            out: dict[str, JSON] = {"worklist": self._query()}
            out["start"] = self._start(sps)
            out["acquire"] = self._acquire(sps)
            out["complete"] = self._final(sps, "COMPLETED")
            out["commit"] = self._commit(sps)
            return out

        return self._locked(run)

    def reset(self) -> dict[str, JSON]:
        """Forget the worklist and every procedure (a new day at the console)."""

        def run() -> dict[str, JSON]:
            forgotten = len(self._procedures)
            self._answers.clear()
            self._procedures.clear()
            return {"forgotten": forgotten}

        return self._locked(run)

    def show(self, sps: str) -> dict[str, JSON]:
        """What the console knows of one step: MPPS UID, what it sent, commitment results, resends."""

        def run() -> dict[str, JSON]:
            procedure = self._procedures.get(sps)
            if procedure is None:
                raise ConsoleError(404, f"no procedure {sps!r} started or acquired here")
            return procedure.summary()

        return self._locked(run, save=False)

    def _locked(self, work: Callable[[], _T], *, save: bool = True) -> _T:
        with self._lock:
            try:
                return work()
            finally:
                if save:
                    self._save()

    # -- the work ------------------------------------------------------------------------

    def _query(self) -> dict[str, JSON]:
        query = worklist_query(self.ae_title, self._date(), self.modality, self.behaviour)
        result = self._scu.worklist(self.peers.ris, query)
        _reached(result.accepted, result.error, "the RIS (worklist)")
        if result.error:
            return {"status": status_hex(result.status), "answers": [], "error": result.error}
        self._answers = {sps_id(m): m for m in result.matches if sps_id(m)}
        _LOG.info("worklist: %d answers, status %s", len(self._answers), status_hex(result.status))
        return {"status": status_hex(result.status), "answers": sorted(self._answers), "error": ""}

    def _procedure(self, sps: str) -> _Procedure:
        """The step's procedure; from the worklist (queried first if the console has no answer for it)."""
        if sps in self._procedures:
            return self._procedures[sps]
        if sps not in self._answers:
            self._query()
        if sps not in self._answers:
            known = ", ".join(sorted(self._answers)) or "none"
            raise ConsoleError(404, f"no worklist item with SPS ID {sps!r} (the worklist has: {known})")
        procedure = self._procedures[sps] = _Procedure(self._answers[sps])
        return procedure

    def _start(self, sps: str) -> dict[str, JSON]:
        procedure = self._procedure(sps)
        if procedure.step is not None:
            raise ConsoleError(409, f"procedure {sps} is already {procedure.state}")
        item = procedure.item
        step_item = item.ScheduledProcedureStepSequence[0]
        step = PerformedStep(
            sop_instance_uid=str(generate_uid()),
            pps_id=f"PPS-{sps}"[:16],
            start=now(),
            description=str(step_item.get("ScheduledProcedureStepDescription", "") or ""),
        )
        modality = self.modality or str(step_item.get("Modality", "") or "")
        attrs = mpps_create(
            item,
            station_ae=self.ae_title,
            pps_id=step.pps_id,
            start=step.start,
            modality=modality,
            behaviour=self.behaviour,
        )
        if self.behaviour.start_delay:
            time.sleep(self.behaviour.start_delay)
        result = self._scu.mpps_create(self.peers.ris, step.sop_instance_uid, attrs)
        _reached(result.accepted, result.error, "the RIS (MPPS)")
        answer = _n(result, "N-CREATE")
        procedure.mpps.append(answer)
        if result.status is not None:  # the RIS has seen it: the images reference it whatever it answered
            procedure.step = step
            procedure.state = "IN PROGRESS"
        return {**answer, "mpps_uid": step.sop_instance_uid}

    def _acquire(self, sps: str) -> dict[str, JSON]:
        procedure = self._procedure(sps)
        made = images(
            procedure.item,
            modality=self.modality,
            series_uid=procedure.series_uid,
            series_number=1,
            acquired=now(),
            step=procedure.step,
            behaviour=self.behaviour,
        )
        if self.behaviour.send_delay:
            time.sleep(self.behaviour.send_delay)
        stored = self._scu.store(self.peers.pacs, made)
        _reached(stored.accepted, stored.error, "the PACS (storage)")
        for ds, outcome in zip(made, stored.instances, strict=True):
            if outcome.status is not None and outcome.status < 0xA000:  # success or warning: the PACS has it
                procedure.sent[str(ds.SOPInstanceUID)] = (str(ds.SOPClassUID), ds)
        return _stored(stored)

    def _final(self, sps: str, state: str) -> dict[str, JSON]:
        procedure = self._procedure(sps)
        if procedure.step is None:
            raise ConsoleError(409, f"procedure {sps} was not started: nothing to {state.lower()}")
        if procedure.state != "IN PROGRESS":
            raise ConsoleError(409, f"procedure {sps} is already {procedure.state}")
        end: Clock = now()
        series = [
            PerformedSeries(
                procedure.series_uid,
                tuple(procedure.refs()),
                protocol_name=procedure.step.description,
                retrieve_ae_title=self.peers.pacs.ae_title,
            )
        ]
        changes = mpps_final(
            state, end_date=end.date, end_time=end.time, series=series if self.behaviour.series_in_final else []
        )
        answers = []
        for _ in range(self.behaviour.final_sets):
            result = self._scu.mpps_set(self.peers.ris, procedure.step.sop_instance_uid, changes)
            _reached(result.accepted, result.error, "the RIS (MPPS)")
            answer = _n(result, "N-SET")
            procedure.mpps.append(answer)
            answers.append(answer)
        procedure.state = state
        return {"state": state, "n_set": list(answers)}

    def _commit(self, sps: str) -> dict[str, JSON]:
        procedure = self._procedure(sps)
        if not self.behaviour.commit:
            return {"asked": False}
        refs = procedure.refs()
        if not refs:
            raise ConsoleError(409, f"procedure {sps}: nothing was sent, nothing to commit")
        first = self._request(procedure, refs)
        out: dict[str, JSON] = {"asked": True, "requests": [first]}
        report = first.get("report")
        failed = report.get("failed") if isinstance(report, dict) else None
        if isinstance(failed, list) and failed and self.behaviour.resend_failed:
            # The archive lost them: send them again, then ask once more for those (IHE RAD-10's remedy).
            again = [(str(f[0]), str(f[1])) for f in failed if isinstance(f, list) and str(f[1]) in procedure.sent]
            stored = self._scu.store(self.peers.pacs, [procedure.sent[uid][1] for _, uid in again])
            resend = _stored(stored)
            procedure.resends.append(resend)
            out["resend"] = resend
            if again:
                assert isinstance(out["requests"], list)
                out["requests"].append(self._request(procedure, again))
        return out

    def _request(self, procedure: _Procedure, refs: Sequence[tuple[str, str]]) -> dict[str, JSON]:
        transaction = str(generate_uid())
        result = self._scu.commit(
            self.peers.pacs,
            transaction,
            refs,
            keep_open=self.behaviour.keep_open,
            wait_report=_REPORT_WAIT,
            listener=self.listener,
        )
        _reached(result.accepted, result.error, "the PACS (storage commitment)")
        answer = _committed(transaction, refs, result)
        procedure.commitments.append(answer)
        _LOG.info(
            "commitment %s of %d: N-ACTION %s, report %s %s",
            transaction,
            len(refs),
            answer["action_status"],
            answer["how"] or "none",
            answer["error"],
        )
        return answer

    # -- state folder --------------------------------------------------------------------

    def _save(self) -> None:
        state = {
            "ae_title": self.ae_title,
            "worklist": sorted(self._answers),
            "procedures": {sps: p.summary() for sps, p in sorted(self._procedures.items())},
        }
        temporary = self._state_path.with_suffix(".tmp")
        try:
            temporary.write_text(json.dumps(state, indent=1, ensure_ascii=False), encoding="utf-8")
            os.replace(temporary, self._state_path)
        except OSError as exc:  # the work is done; only its record is lost, and said so
            _LOG.warning("cannot write %s: %s", self._state_path, exc)


def _reached(accepted: bool, error: str, peer: str) -> None:
    """ConsoleError 502 when the association with `peer` did not come up: the console could not do it."""
    if not accepted:
        raise ConsoleError(502, f"no association with {peer}: {error}")


def _n(result: NResult, dimse: str) -> dict[str, JSON]:
    return {"dimse": dimse, **result.summary()}


def _stored(result: StoreResult) -> dict[str, JSON]:
    return {
        "accepted": result.accepted,
        "instances": [[i.sop_class_uid, i.sop_instance_uid, status_hex(i.status)] for i in result.instances],
        "error": result.error or next((i.error for i in result.instances if i.error), ""),
    }


def _committed(transaction: str, refs: Sequence[tuple[str, str]], result: CommitResult) -> dict[str, JSON]:
    return {
        "transaction_uid": transaction,
        "refs": [[c, i] for c, i in refs],
        "action_status": status_hex(result.action_status),
        "how": result.how,
        "role": result.role,
        "report": result.report.summary() if result.report is not None else None,
        "error": result.error,
    }
