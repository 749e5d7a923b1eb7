"""Audit trail (PS3.15 A.5): which audit messages each operation makes the device send to the audit repository.

The run's audit record repository simulator (syslog over UDP and TLS) writes every message it
receives to `SuiteContext.audit_log`. Each case performs one operation and records the events
that arrived meanwhile: an event no longer sent reads as a loosening (`protection`), a message
newly malformed or missing mandatory fields as one too (`exposure`). A device that sends no
audit messages at all is a valid baseline: every case passes and records empty lists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from harness.context import SuiteContext
from harness.model import Endpoint
from harness.plugin import Observe
from simulators.audit.record import AuditRecord
from simulators.corpus import CorpusItem
from simulators.modality import Modality
from suites._support import SERVICES, ask
from suites.audit.placing import Measuring, begin
from suites.audit.window import Collected, Window, records

# The actions before the other suites: their messages (the access suite's Security Alerts above all) are
# sent asynchronously and would otherwise have to be waited out before the first window (DRAIN). The cases
# that record what the actions caused come after them: a device's stamps place its messages by then, with
# no wait for the last action's to arrive (`placing.begin`).
pytestmark = pytest.mark.before_traffic

INTRUDER = "PGINTRUDER"
REFUSED = "refused"  # the intruder's association, measured after the services
# C-ECHO last: a device need not audit it, and a window before the run's first measured latency waits
# PATIENCE; after the services that do cause messages, it waits only as long as this device needs.
AUDITED_FIRST = sorted(SERVICES, key=lambda param: param.id == "echo")


def _observe(observe: Observe, received: list[AuditRecord], late: int) -> None:
    # Messages that came after the previous window closed: in no case, so only counted (0 when windows fit).
    observe("late", late)
    valid = [r for r in received if r.valid]
    observe("events", sorted({r.event_name or r.event_code for r in valid}), security="protection")
    observe("invalid", sorted({r.reason for r in received if not r.valid}), security="exposure")
    observe("problems", sorted({p for r in valid for p in r.problems}), security="exposure")
    observe("outcomes", sorted({f"{r.event_name}: {r.outcome}" for r in valid}))


@pytest.fixture(scope="session")
def audit_log(patchgate_context: SuiteContext) -> Path:
    if not patchgate_context.audit_log:
        pytest.skip("not applicable: the run has no audit record repository")
    return Path(patchgate_context.audit_log)


@pytest.fixture(scope="session", autouse=True)
def measuring(
    audit_log: Path,
    patchgate_context: SuiteContext,
    device: Endpoint,
    pacs: Endpoint,
    modality: Modality,
    make_modality: Callable[[str], Modality],
    corpus: Mapping[str, CorpusItem],
) -> Measuring[Any]:
    """Every case's operation, run when the module's first case (before the other suites) starts, and the audit
    messages it caused: placed by the device's stamps when the cases after the other suites ask, or by windows
    that learn its latency and measure again when one came late (`placing.begin`)."""
    offered = [str(param.values[0]) for param in AUDITED_FIRST if param.values[0] in patchgate_context.services]
    actions: list[tuple[str, Callable[[], Any]]] = [
        (service, partial(ask, service, modality, device, corpus["CT-explicit"], pacs)) for service in offered
    ]
    if "echo" in patchgate_context.services:
        actions.append((REFUSED, lambda: make_modality(INTRUDER).echo(device)))
    return begin(Window(audit_log), actions)


@pytest.fixture
def measured(measuring: Measuring[Any]) -> dict[str, Collected[Any]]:
    return measuring.result()


@pytest.mark.after_traffic
@pytest.mark.parametrize("service", AUDITED_FIRST)
def test_events(service: str, measured: dict[str, Collected[Any]], observe: Observe) -> None:
    got = measured[service]
    observe("operation", {"accepted": bool(got.result.accepted)})
    _observe(observe, got.received, got.late)


@pytest.mark.after_traffic
@pytest.mark.service("echo")
def test_refused_association(measured: dict[str, Collected[Any]], observe: Observe) -> None:
    """An association the device should not admit: does it raise a Security Alert (110113)?"""
    got = measured[REFUSED]
    observe("admitted", bool(got.result.accepted), security="exposure")
    _observe(observe, got.received, got.late)
    alert = any(r.valid and r.event_code == "110113" for r in got.received)
    observe("security_alert", alert if not got.result.accepted else None, security="protection")


def test_application_activity(audit_log: Path, observe: Observe) -> None:
    """Application Activity (110100): the device announced its start to the audit repository."""
    started = [r for r in records(audit_log) if r.valid and r.event_code == "110100"]
    observe("sent", bool(started), security="protection")
    observe("problems", sorted({p for r in started for p in r.problems}), security="exposure")


@pytest.mark.after_traffic
def test_transport(audit_log: Path, observe: Observe) -> None:
    """How the device's audit messages travel (UDP, RFC 5426, or TLS, RFC 5425), over everything received so far."""
    received = records(audit_log)
    observe("transports", sorted({r.transport for r in received if r.valid}))
    observe("refused_tls_peers", sorted({r.reason for r in received if r.transport == "tls" and not r.valid}))
