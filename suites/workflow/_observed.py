"""What the workflow cases observe: the MPPS a device reported, the images it sent, its commitment, the IHE checks."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection, Sequence

import pytest
from pydicom.uid import UID

from harness.model import JSON
from harness.plugin import Observe
from simulators.iod import IodError, IodReport, validate
from suites._support import Arrival, dataset_json
from suites.workflow._procedure import Procedure, by_role, final_state, stable
from suites.workflow.integrity import CHECKS, Evidence, checks

__all__ = [
    "IMAGE_CHECKS",
    "MPPS_CHECKS",
    "conformance",
    "observe_checks",
    "observe_commitment",
    "observe_images",
    "observe_mpps",
]

# The checks each case has the data for (workflow.md 8.3): a case without images or commitment leaves those out.
MPPS_CHECKS = tuple(c for c in CHECKS if c != "commit_covers_sent")
IMAGE_CHECKS = tuple(
    c for c in MPPS_CHECKS if c not in ("station", "create_status", "final_status", "series_listed", "images_listed")
)

_IOD: dict[str, IodReport] = {}  # one dciodvfy run per distinct bytes


def observe_checks(observe: Observe, evidence: Evidence, names: Collection[str]) -> dict[str, str]:
    """One observation `ihe.<check>` per integrity check, so a REGRESSED diff names the broken copy."""
    verdicts = checks(evidence, names)
    for name, verdict in verdicts.items():
        observe(f"ihe.{name}", verdict)
    return verdicts


def observe_mpps(observe: Observe, proc: Procedure) -> str:
    """The N-CREATE and N-SETs the RIS received for the item (DICOM JSON, dates and times as markers); the final state."""
    create, sets, roles = proc.create(), proc.sets(), proc.roles()
    observe("mpps.create", by_role(stable(create.dataset), roles) if create is not None else None)
    observe("mpps.create.status", create.status if create is not None else "none")
    observe("mpps.sets", [by_role(stable(line.dataset), roles) for line in sets])
    observe("mpps.set.statuses", [line.status for line in sets])
    state = final_state(create, sets)
    observe("mpps.final_state", state)
    return state


def conformance(arrival: Arrival) -> dict[str, JSON]:
    """dciodvfy's errors and warnings for what arrived, each with how often; a check that cannot judge ends the run."""
    digest = hashlib.sha256(arrival.transfer_syntax_uid.encode() + b"\0" + arrival.encoded).hexdigest()
    if digest not in _IOD:
        sop_class = str(arrival.dataset.get("SOPClassUID", ""))
        try:
            _IOD[digest] = validate(arrival.encoded, arrival.transfer_syntax_uid, sop_class, arrival.sop_instance_uid)
        except IodError as exc:
            # A harness fault: ending the run makes it INCONCLUSIVE, where a failed case in both runs would hide regressions.
            pytest.exit(f"harness fault, IOD check: {exc}", returncode=pytest.ExitCode.INTERNAL_ERROR)
    report = _IOD[digest]
    return {"errors": dict(Counter(report.errors)), "warnings": dict(Counter(report.warnings))}


def observe_images(observe: Observe, proc: Procedure, arrivals: Sequence[Arrival]) -> list[Arrival]:
    """Per object, in arrival order: class and syntax by name, association, calling AE, its attributes; dciodvfy's findings."""
    first: dict[str, Arrival] = {}
    for arrival in arrivals:
        first.setdefault(arrival.sop_instance_uid, arrival)
    images: dict[str, JSON] = {}
    iod: dict[str, JSON] = {}
    roles = proc.roles()
    for n, arrival in enumerate(first.values(), start=1):
        ds = arrival.dataset
        images[str(n)] = {
            "sop_class": UID(str(ds.get("SOPClassUID", ""))).name,
            "transfer_syntax": UID(arrival.transfer_syntax_uid).name,
            "association": arrival.association,
            "calling_ae": arrival.calling_ae,
            "attributes": by_role(stable(dataset_json(ds)), roles),
        }
        iod[str(n)] = conformance(arrival)
    observe("images", images)
    observe("images.iod", iod)
    observe("images.resent", len(arrivals) - len(first))
    return list(first.values())


def observe_commitment(observe: Observe, proc: Procedure, received: Sequence[tuple[str, str]]) -> dict[str, JSON]:
    """What the device asked to commit against what the PACS received, and how the report went (the PACS's journal).

    `commit.how` is the association the report went on (same / new / lost: PS3.4 J.3.3.1.2),
    `commit.role` the role the PACS had on it (J.3.3.1.3: SCP on a new one), `commit.report_status`
    the device's N-EVENT-REPORT-RSP.
    """
    asked = proc.actions()
    refs = proc.first_refs()
    if refs is None:
        requested: JSON = "none"
    else:
        wanted, sent = set(refs), set(received)
        requested = {
            "requests": len(asked),
            "status": asked[0].get("status"),
            "referenced": len(refs),
            "duplicates": len(refs) - len(wanted),
            "not_received": len(wanted - sent),
            "not_referenced": len(sent - wanted),
        }
    observe("commit.requested", requested)
    first_uid = asked[0].get("transaction_uid") if asked else None
    report = next((r for r in proc.reports() if r.get("transaction_uid") == first_uid), None)
    shown: dict[str, JSON] = {
        "how": report.get("how") if report else "none",
        "role": report.get("role") if report else "none",
        "report_status": report.get("status") if report else "none",
    }
    observe("commit.how", shown["how"])
    observe("commit.role", shown["role"])
    observe("commit.report_status", shown["report_status"])
    if report is not None:
        failed = report.get("failed")
        reasons = Counter(str(f[2]) for f in failed if isinstance(f, list)) if isinstance(failed, list) else Counter()
        committed = report.get("committed")
        observe(
            "commit.report",
            {
                "event_type": report.get("event_type"),
                "committed": len(committed) if isinstance(committed, list) else 0,
                "failed": dict(sorted(reasons.items())),
            },
        )
    return {**shown, "report": report}
