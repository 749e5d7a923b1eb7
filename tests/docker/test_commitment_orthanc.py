"""Our storage commitment requester (Modality.commit, CommitmentListener) against Orthanc 1.10's SCP, a real one.

Orthanc runs with the shipped devices/orthanc/orthanc-commitment.json (the config of the commitment profiles), on
host networking with ports of this test; the suites' side is simulators.modality and simulators.commitment_scu.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid

from harness.images import ORTHANC_IMAGE, build_all
from harness.placeholders import render
from simulators._net import LOOPBACK, free_port
from simulators.commitment_scu import CommitmentListener
from simulators.corpus import CorpusItem, generate
from simulators.endpoint import Endpoint
from simulators.modality import Modality
from tests.conftest import ROOT
from tests.docker.conftest import RunContainer

TEMPLATE = ROOT / "devices" / "orthanc" / "orthanc-commitment.json"
MODALITY = "PGMODALITY"
NO_SUCH_OBJECT, CLASS_INSTANCE_CONFLICT = 0x0112, 0x0119  # PS3.3 C.14.1.1 Failure Reason
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
_START = 60.0  # seconds Orthanc may take to answer C-ECHO


@pytest.fixture(scope="module")
def orthanc_image(docker_client: Any) -> str:
    """Only the Orthanc image (seconds when current): these tests need no simulators image."""
    built = build_all(only=("orthanc",), log=lambda line: print(f"[images] {line}", flush=True))
    return str(built[ORTHANC_IMAGE])


@pytest.fixture
def listener() -> Iterator[CommitmentListener]:
    """Where Orthanc's reports arrive: the modality's CommitmentListener, on the port its DicomModalities entry names."""
    with CommitmentListener(MODALITY, port=free_port()) as started:
        yield started


@pytest.fixture
def orthanc(orthanc_image: str, run_container: RunContainer, listener: CommitmentListener, tmp_path: Path) -> Endpoint:
    """Orthanc from the shipped commitment config, rendered as a run would render it, answering C-ECHO."""
    port, workdir = free_port(), tmp_path / "orthanc"
    workdir.mkdir()
    values = {
        "ae_title": "ORTHANC",
        "port": str(port),
        "http_port": str(free_port()),
        "workdir": str(workdir),
        "modality.ae_title": MODALITY,
        "modality.port": str(listener.port),
        "pacs.ae_title": "PGPACS",
        "pacs.host": LOOPBACK,
        "pacs.port": str(free_port()),
    }
    config = tmp_path / "orthanc.json"
    config.write_text(render(TEMPLATE.read_text(encoding="utf-8"), values, str(TEMPLATE)), encoding="utf-8")
    container = run_container(
        orthanc_image,
        ["Orthanc", "/etc/patchgate/orthanc.json"],
        read_only={config: "/etc/patchgate/orthanc.json"},
        read_write=[workdir],
    )
    peer = Endpoint("ORTHANC", LOOPBACK, port)
    _wait_for_echo(peer, container)
    return peer


def _wait_for_echo(peer: Endpoint, container: Any) -> None:
    deadline = time.monotonic() + _START
    while time.monotonic() < deadline:
        if Modality(MODALITY, acse_timeout=2, network_timeout=2).echo(peer).status == 0x0000:
            return
        container.reload()
        assert container.status in ("created", "running"), container.logs(tail=30).decode("utf-8", "replace")
        time.sleep(0.5)
    pytest.fail(f"Orthanc did not answer C-ECHO within {_START:g} s: {container.logs(tail=30)!r}")


@pytest.fixture
def stored(orthanc: Endpoint) -> list[CorpusItem]:
    """Three corpus objects Orthanc now holds (C-STORE from the modality)."""
    items = list(generate(1422)[:3])
    result = Modality(MODALITY).store(orthanc, [item.dataset for item in items])
    assert result.accepted and all(o.status == 0x0000 for o in result.instances), result.summary()
    return items


def _refs(items: list[CorpusItem]) -> list[tuple[str, str]]:
    return [(str(i.dataset.SOPClassUID), str(i.dataset.SOPInstanceUID)) for i in items]


Commit = Callable[..., Any]


@pytest.fixture
def commit(orthanc: Endpoint, listener: CommitmentListener) -> Commit:
    def ask(refs: list[tuple[str, str]], *, calling: str = MODALITY, keep_open: float = 3.0) -> Any:
        requester = Modality(calling)
        return requester.commit(
            orthanc, str(generate_uid()), refs, keep_open=keep_open, wait_report=20, listener=listener
        )

    return ask


def test_all_held_is_reported_on_a_new_association_in_the_scp_role(stored: list[CorpusItem], commit: Commit) -> None:
    """PS3.4 J.3.3.1.2/J.3.3.1.3: Orthanc answers the N-ACTION, then reports on an association it opens to the
    requester, proposing the SCP role; all held: Event Type ID 1 (J.3.3), every instance in Referenced SOP Sequence.

    The requester keeps its association open meanwhile: Orthanc still reports on a new one (its only way)."""
    refs = _refs(stored)
    result = commit(refs, keep_open=3.0)
    assert result.action_status == 0x0000 and result.error == "", result.summary()
    assert (result.how, result.role, result.order) == ("new", "scp", ("N-ACTION-RSP",)), result.summary()
    report = result.report
    assert report is not None and report.event_type == 1, result.summary()
    assert sorted(report.committed) == sorted(refs) and not report.failed, result.summary()


def test_missing_and_conflicting_instances_are_reported_failed(stored: list[CorpusItem], commit: Commit) -> None:
    """PS3.4 J.3.3 with PS3.3 C.14.1.1: Event Type ID 2 when any failed; a never-stored instance fails with
    0x0112 (no such object instance), a held instance asked under another SOP class with 0x0119 (class/instance
    conflict); the held ones are still committed."""
    held = _refs(stored[:2])
    unknown = (str(stored[0].dataset.SOPClassUID), str(generate_uid()))
    conflict = (MR_IMAGE, str(stored[2].dataset.SOPInstanceUID))
    assert str(stored[2].dataset.SOPClassUID) != MR_IMAGE  # else no conflict at all
    result = commit([*held, unknown, conflict], keep_open=0.0)
    assert result.action_status == 0x0000 and result.how == "new", result.summary()
    report = result.report
    assert report is not None and report.event_type == 2, result.summary()
    assert sorted(report.committed) == sorted(held), result.summary()
    assert sorted(report.failed) == sorted([(*unknown, NO_SUCH_OBJECT), (*conflict, CLASS_INSTANCE_CONFLICT)]), (
        result.summary()
    )


def test_a_requester_orthanc_cannot_report_to_is_refused(
    stored: list[CorpusItem], commit: Commit, listener: CommitmentListener
) -> None:
    """Orthanc reports only to a modality its DicomModalities lists (it must know where to open the new association,
    PS3.4 J.3.3.1.2), so it refuses the N-ACTION of any other AE title: no response, no report anywhere."""
    result = commit(_refs(stored), calling="STRANGER", keep_open=1.0)
    assert result.action_status is None and result.report is None, result.summary()
    assert listener.received == []
