"""Audit trail (PS3.15 A.5): which audit messages each operation makes the device send to the audit repository.

The run's audit record repository simulator (syslog over UDP and TLS) writes every message it
receives to `SuiteContext.audit_log`. Each case performs one operation and records the events
that arrived meanwhile: an event no longer sent reads as a loosening (`protection`), a message
newly malformed or missing mandatory fields as one too (`exposure`). A device that sends no
audit messages at all is a valid baseline: every case passes and records empty lists.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from harness.context import SuiteContext
from harness.model import Endpoint
from harness.plugin import Observe
from simulators.arr import AuditRecord, read_records
from simulators.corpus import CorpusItem
from simulators.modality import Modality
from suites._support import SERVICES, ask

INTRUDER = "PGINTRUDER"
SETTLE = 0.4  # seconds without a new message before an operation's messages are taken as complete
QUIET = 0.5  # how long to wait for a device that has sent nothing yet in this run
PATIENCE = 2.0  # how long to wait for a device that audits: messages are sent asynchronously


def _records(path: Path) -> list[AuditRecord]:
    return read_records(path) if path.exists() else []


def _during(path: Path, action: Callable[[], Any]) -> tuple[Any, list[AuditRecord]]:
    """Run `action`, then collect the audit records that arrive until they settle (bounded)."""
    before = len(_records(path))
    result = action()
    deadline = time.monotonic() + (PATIENCE if before else QUIET)
    count, changed = before, time.monotonic()
    while time.monotonic() < deadline:
        now = len(_records(path))
        if now != count:
            count, changed = now, time.monotonic()
        elif count > before and time.monotonic() - changed >= SETTLE:
            break
        time.sleep(0.05)
    return result, _records(path)[before:]


def _observe(observe: Observe, records: list[AuditRecord]) -> None:
    valid = [r for r in records if r.valid]
    observe("events", sorted({r.event_name or r.event_code for r in valid}), security="protection")
    observe("invalid", sorted({r.reason for r in records if not r.valid}), security="exposure")
    observe("problems", sorted({p for r in valid for p in r.problems}), security="exposure")
    observe("outcomes", sorted({f"{r.event_name}: {r.outcome}" for r in valid}))


@pytest.fixture(scope="module")
def audit_log(patchgate_context: SuiteContext) -> Path:
    if not patchgate_context.audit_log:
        pytest.skip("not applicable: the run has no audit record repository")
    return Path(patchgate_context.audit_log)


@pytest.mark.parametrize("service", SERVICES)
def test_events(
    service: str,
    device: Endpoint,
    pacs: Endpoint,
    modality: Modality,
    corpus: Mapping[str, CorpusItem],
    audit_log: Path,
    observe: Observe,
) -> None:
    result, records = _during(audit_log, lambda: ask(service, modality, device, corpus["CT-explicit"], pacs))
    observe("operation", {"accepted": bool(result.accepted)})
    _observe(observe, records)


@pytest.mark.service("echo")
def test_refused_association(
    device: Endpoint, make_modality: Callable[[str], Modality], audit_log: Path, observe: Observe
) -> None:
    """An association the device should not admit: does it raise a Security Alert (110113)?"""
    result, records = _during(audit_log, lambda: make_modality(INTRUDER).echo(device))
    observe("admitted", bool(result.accepted), security="exposure")
    _observe(observe, records)
    alert = any(r.valid and r.event_code == "110113" for r in records)
    observe("security_alert", alert if not result.accepted else None, security="protection")


def test_application_activity(audit_log: Path, observe: Observe) -> None:
    """Application Activity (110100): the device announced its start to the audit repository."""
    records = [r for r in _records(audit_log) if r.valid and r.event_code == "110100"]
    observe("sent", bool(records), security="protection")
    observe("problems", sorted({p for r in records for p in r.problems}), security="exposure")


def test_transport(audit_log: Path, observe: Observe) -> None:
    """How the device's audit messages travel (UDP, RFC 5426, or TLS, RFC 5425), over everything received so far."""
    records = _records(audit_log)
    observe("transports", sorted({r.transport for r in records if r.valid}))
    observe("refused_tls_peers", sorted({r.reason for r in records if r.transport == "tls" and not r.valid}))
