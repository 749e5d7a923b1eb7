"""Storage commitment: Push Model N-ACTION to the device and its N-EVENT-REPORT, judged from what it really holds.

The suite stores two corpus objects on the device first (objects the storage suite stores anyway),
then asks it to commit what it holds, what it never received, and what it holds under another
class. Reports are taken on the request's association while the suite keeps it open, and by a
CommitmentListener on {modality.port} (the device must know the modality's AE title at that port:
the reference device by --destination, Orthanc by DicomModalities) once the suite released it.
Each transaction UID comes from the corpus seed and the case, so two runs ask the same.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import pytest
from pydicom.uid import generate_uid

from harness.context import SuiteContext
from harness.model import JSON, Endpoint
from harness.plugin import Observe, not_applicable
from simulators.commitment_scu import CommitmentListener, CommitResult, ReceivedReport
from simulators.corpus import UID_ROOT, CorpusItem
from simulators.modality import Modality
from suites._support import SUCCESS_OR_WARNING

pytestmark = pytest.mark.service("commitment")

Ref = tuple[str, str]
# Two objects of two storage classes (a device that commits one class commits these: CT and MR are everywhere).
HELD = ("CT-explicit", "MR-explicit")
_WAIT_REPORT = 10.0  # seconds after the N-ACTION-RSP a report may take, on either association
_KEEP_OPEN = 5.0  # seconds the "same" case keeps its association open for the report


def _uid(context: SuiteContext, what: str) -> str:
    return str(
        generate_uid(prefix=UID_ROOT, entropy_srcs=[f"patchgate-suites/commitment/{context.corpus_seed}/{what}"])
    )


@pytest.fixture(scope="module")
def held(device: Endpoint, modality: Modality, corpus: Mapping[str, CorpusItem]) -> tuple[Ref, ...]:
    """The (SOP class, SOP instance) of the objects the suite stored on the device."""
    items = [corpus[key] for key in HELD]
    result = modality.store(device, [item.dataset for item in items])
    if not result.accepted or any(i.status not in SUCCESS_OR_WARNING for i in result.instances):
        pytest.fail(f"could not store {', '.join(HELD)} on the device to commit them: {result.summary()}")
    return tuple((item.sop_class_uid, item.sop_instance_uid) for item in items)


@pytest.fixture(scope="module")
def listener(patchgate_context: SuiteContext) -> Iterator[CommitmentListener]:
    """The modality's listener for reports on a new association, on the run's reserved {modality.port}."""
    context = patchgate_context
    if not context.modality_port:
        not_applicable("the run reserves no port for reports on a new association ({modality.port})")
    ssl_context = None
    if context.device.tls:  # a device that requires TLS opens its report association with TLS too
        from simulators.pki import load_pki

        ssl_context = load_pki(Path(context.pki_dir)).server_context()
    with CommitmentListener(context.modality_ae_title, port=context.modality_port, ssl_context=ssl_context) as started:
        yield started


class Commit(Protocol):
    """`commit(what, refs, keep_open=0.0)`: ask the device to commit `refs` in a transaction named by `what`."""

    def __call__(self, what: str, refs: Sequence[Ref], *, keep_open: float = 0.0) -> CommitResult: ...


@pytest.fixture
def commit(
    device: Endpoint, modality: Modality, listener: CommitmentListener, patchgate_context: SuiteContext
) -> Commit:
    """Ask, then take the report wherever it comes (the association released at once unless `keep_open` s)."""

    def ask(what: str, refs: Sequence[Ref], *, keep_open: float = 0.0) -> CommitResult:
        uid = _uid(patchgate_context, what)
        result = modality.commit(device, uid, refs, keep_open=keep_open, wait_report=_WAIT_REPORT, listener=listener)
        assert result.accepted, f"the device refused the storage commitment association: {result.error}"
        return result

    return ask


def _report(result: CommitResult) -> dict[str, JSON]:
    """What the device answered and reported, lists sorted (a device may list in any order); not where it came."""
    report = result.report
    return {
        "action_status": f"0x{result.action_status:04X}" if result.action_status is not None else "none",
        "event_type": report.event_type if report else None,
        "committed": sorted([c, i] for c, i in report.committed) if report else [],
        "failed": sorted([c, i, f"0x{r:04X}"] for c, i, r in report.failed) if report else [],
        "retrieve_ae": report.retrieve_ae if report else "",
        "error": result.error,
    }


def _committed(result: CommitResult) -> set[Ref]:
    return set(result.report.committed) if result.report else set()


def _failed(result: CommitResult) -> set[Ref]:
    return {(c, i) for c, i, _ in result.report.failed} if result.report else set()


def test_all_held(held: tuple[Ref, ...], commit: Commit, observe: Observe) -> None:
    """PS3.4 J.3.3: everything referenced is held, so the report is Event Type 1 with every instance committed."""
    result = commit("all-held", held)
    observe("commit.report", _report(result))
    assert result.action_status == 0x0000 and result.report is not None, _report(result)
    assert (result.report.event_type, _committed(result), _failed(result)) == (1, set(held), set()), _report(result)


def test_one_missing(
    held: tuple[Ref, ...],
    commit: Commit,
    patchgate_context: SuiteContext,
    observe: Observe,
) -> None:
    """PS3.4 J.3.3 and PS3.3 C.14.1.1: one held, one never sent: Event Type 2, the one held committed, the other
    in the Failed SOP Sequence (Failure Reason 0x0112 No such object instance, recorded as the device gives it)."""
    never = (held[0][0], _uid(patchgate_context, "never-sent"))
    result = commit("one-missing", [held[0], never])
    observe("commit.report", _report(result))
    assert result.report is not None, _report(result)
    assert (result.report.event_type, _committed(result), _failed(result)) == (2, {held[0]}, {never}), _report(result)


def test_unknown_instance(
    held: tuple[Ref, ...],
    commit: Commit,
    patchgate_context: SuiteContext,
    observe: Observe,
) -> None:
    """PS3.4 J.3.3: a request for an instance the device never received: nothing committed, it fails."""
    never = (held[1][0], _uid(patchgate_context, "unknown"))
    result = commit("unknown-instance", [never])
    observe("commit.report", _report(result))
    assert result.report is not None, _report(result)
    assert (result.report.event_type, _committed(result), _failed(result)) == (2, set(), {never}), _report(result)


def test_class_conflict(held: tuple[Ref, ...], commit: Commit, observe: Observe) -> None:
    """PS3.3 C.14.1.1: an instance held under another SOP class is not committed (0x0119 Class / Instance conflict,
    recorded as the device gives it)."""
    (ct_class, ct_instance), (mr_class, _) = held
    assert ct_class != mr_class
    wrong = (mr_class, ct_instance)
    result = commit("class-conflict", [wrong])
    observe("commit.report", _report(result))
    assert result.report is not None and wrong not in _committed(result), _report(result)


def test_duplicate_transaction(
    held: tuple[Ref, ...],
    commit: Commit,
    listener: CommitmentListener,
    patchgate_context: SuiteContext,
    observe: Observe,
) -> None:
    """PS3.4 J.3.2: a Transaction UID names one request. The second request with the same one is observed: a device
    may commit again or fail it (PS3.3 C.14.1.1: 0x0131 Duplicate transaction UID)."""
    transaction = _uid(patchgate_context, "duplicate")
    first = commit("duplicate", held)
    count = len(listener.received)
    second = commit("duplicate", held)
    if second.how == "new":  # the listener answered with the first report (same UID): wait for the one after it
        later = _arrived_after(listener, count, transaction)
        second = CommitResult(
            True, second.action_status, later.report if later else None, "new", error="" if later else "no report"
        )
    observe("commit.report", {"first": _report(first), "second": _report(second)})
    assert first.report is not None and first.report.event_type == 1, _report(first)
    assert _committed(first) == set(held), _report(first)


def _arrived_after(listener: CommitmentListener, count: int, transaction_uid: str) -> ReceivedReport | None:
    """The first report for `transaction_uid` the listener received after its first `count`, waiting a bounded time."""
    deadline = time.monotonic() + _WAIT_REPORT
    while True:
        for received in listener.received[count:]:
            if received.report is not None and received.report.transaction_uid == transaction_uid:
                return received
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


@pytest.mark.parametrize("association", ["same", "new"])
def test_report_association(association: str, held: tuple[Ref, ...], commit: Commit, observe: Observe) -> None:
    """PS3.4 J.3.3.1.2: the report comes on the request's association while it is open, else on a new one the
    device opens in the SCP role (J.3.3.1.3). `same`: the suite keeps the association open (a device may still
    report on a new one); `new`: it releases at once. Recorded: where the report came, in which role, and the
    order of the messages on the request's association (the report must follow the N-ACTION-RSP)."""
    keep_open = _KEEP_OPEN if association == "same" else 0.0
    result = commit(f"report-{association}", held, keep_open=keep_open)
    observe("commit.how", {"how": result.how, "role": result.role, "order": list(result.order)})
    observe("commit.report", _report(result))
    assert result.report is not None, _report(result)
    assert result.role == "scp", result.summary()
    assert result.order[:1] == ("N-ACTION-RSP",), f"the report came before the N-ACTION-RSP: {result.order}"
    if association == "new":
        assert result.how == "new", result.summary()
