"""The robustness corpus against a real PACS simulator process and DCMTK storescp over loopback: reactions, health."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from harness.model import Endpoint
from harness.ports import reserve_port
from simulators._net import free_port
from simulators.attack import Input, inputs
from simulators.attack.health import echo_health, harness_fault
from simulators.attack.run import Outcome, probe, run_input
from simulators.attack.wire import Negotiated, Wire
from tests.conftest import require_tool, wait_for_device
from tests.procs import start_simulator, stop

BY_ID = {i.id: i for i in inputs(1422)}
DEADLINE = 3.0  # a silent reaction costs this much; every wire reaction here comes within 2.2 s
ARTIM = 2  # the PACS simulator's --acse-timeout: its ARTIM closes a half-open connection after it
HEALTH_TIMEOUT = 3.0
# Inputs a device needs longer for: storescp spends 3.5 s of CPU on 5,000 nested sequences (16 s of wall time
# at load average 20 on 2 cores), holding its one association meanwhile; a short deadline would see it silent
# and then unresponsive, which depends on the machine's load, not on storescp.
SLOW = {("storescp", "ds.store.nesting-5000"): 60.0}

# What each device does with each input (docs/attack-corpus.md has the same table): the kind, and
# the detail where it is exact. None: not applicable to that device. Sets: the kernel decides (a
# socket closed with unread data sends a reset instead of a FIN).
Expected = tuple[str | frozenset[str], str] | None
PACS: dict[str, Expected] = {
    "pdu.rq.truncated-wait": ("closed", "EOF"),
    "pdu.rq.truncated-fin": ("closed", "EOF"),
    "pdu.rq.length-huge": ("closed", "EOF"),
    "pdu.rq.oversized": (frozenset({"closed", "reset"}), ""),  # refused unread while 4 MiB may still be in flight
    "pdu.rq.item-length-overrun": ("aborted", "A-ABORT source 0 reason 0"),
    "pdu.rq.item-unknown": ("aborted", "A-ABORT source 0 reason 0"),
    "pdu.rq.version-0": ("rejected", "A-ASSOCIATE-RJ result 1 source 2 reason 2"),
    "pdu.rq.no-context": ("answered", "A-ASSOCIATE-AC"),
    "pdu.rq.context-id-even": ("closed", "EOF"),
    "pdu.rq.ae-blank": ("aborted", "A-ABORT source 0 reason 0"),
    "pdu.type-unknown": ("closed", "EOF"),
    "pdu.pdata-idle": ("aborted", "A-ABORT source 0 reason 0"),
    "pdu.release-idle": ("aborted", "A-ABORT source 0 reason 0"),
    "pdu.ac-to-acceptor": ("aborted", "A-ABORT source 0 reason 0"),
    "pdu.pdata.context-unknown": ("aborted", "A-ABORT source 0 reason 0"),
    "pdu.pdata.over-max": None,  # it announces 0 (unlimited)
    "pdu.pdata.pdv-overrun": ("aborted", "A-ABORT source 2 reason 0"),
    "pdu.pdata.data-first": ("aborted", "A-ABORT source 2 reason 0"),
    "pdu.rq.twice": ("aborted", "A-ABORT source 2 reason 0"),
    "pdu.release-twice": ("aborted", "A-ABORT source 2 reason 0"),
    "pdu.release-rp-unasked": ("aborted", "A-ABORT source 2 reason 0"),
    "ds.store.sq-unterminated": ("answered", "status 0x0000 (success)"),
    "ds.find.sq-unterminated": ("answered", "status 0xC311 (failure)"),
    "ds.store.length-overrun": ("answered", "status 0x0000 (success)"),
    "ds.find.length-overrun": ("answered", "status 0x0000 (success)"),
    "ds.store.length-odd": ("accepted", "status 0x0000 (success)"),
    "ds.store.vr-unknown": ("answered", "status 0x0000 (success)"),
    "ds.store.vr-mismatch": ("answered", "status 0x0000 (success)"),
    "ds.store.nesting-5000": ("answered", "status 0x0000 (success)"),
    "ds.find.nesting-5000": ("answered", "status 0xC311 (failure)"),
    "ds.store.value-huge": ("answered", "status 0x0000 (success)"),
    "ds.find.value-huge": ("answered", "status 0x0000 (success)"),
    "ds.store.uid-dotdot": ("accepted", "status 0x0000 (success)"),
    "ds.store.uid-slash": ("accepted", "status 0x0000 (success)"),
    "ds.find.uid-slash": ("answered", "status 0x0000 (success)"),
    "ds.store.uid-long": ("aborted", "A-ABORT source 2 reason 0"),
    "ds.find.uid-dotdot": ("answered", "status 0x0000 (success)"),
    "ds.store.pixel-lie": ("answered", "status 0x0000 (success)"),
    "ds.store.uid-mismatch": ("answered", "status 0x0000 (success)"),
    "ds.store.charset-unknown": ("answered", "status 0x0000 (success)"),
    "load.flood": ("answered", "32 A-ASSOCIATE-RQs: accepted all"),
    "load.idle-connections": ("closed", "64 idle connections: closed all"),
    "load.slowloris": ("closed", "EOF"),
    "load.slow-reader": ("answered", "status 0x0000 (success)"),
}
STORESCP: dict[str, Expected] = {
    "pdu.rq.truncated-wait": ("silent", ""),
    "pdu.rq.truncated-fin": ("closed", "EOF"),
    "pdu.rq.length-huge": ("reset", "connection reset"),
    "pdu.rq.oversized": (frozenset({"closed", "reset"}), ""),
    "pdu.rq.item-length-overrun": ("silent", ""),
    "pdu.rq.item-unknown": ("answered", "A-ASSOCIATE-AC"),
    "pdu.rq.version-0": ("rejected", "A-ASSOCIATE-RJ result 1 source 2 reason 2"),
    "pdu.rq.no-context": ("silent", ""),
    "pdu.rq.context-id-even": ("answered", "A-ASSOCIATE-AC"),
    "pdu.rq.ae-blank": ("silent", ""),
    "pdu.type-unknown": ("reset", "connection reset"),
    "pdu.pdata-idle": ("aborted", "A-ABORT source 0 reason 0"),
    "pdu.release-idle": ("aborted", "A-ABORT source 0 reason 0"),
    "pdu.ac-to-acceptor": ("aborted", "A-ABORT source 0 reason 0"),
    "pdu.pdata.context-unknown": ("aborted", "A-ABORT source 0 reason 0"),
    "pdu.pdata.over-max": ("aborted", "A-ABORT source 0 reason 0"),
    "pdu.pdata.pdv-overrun": ("aborted", "A-ABORT source 0 reason 0"),
    "pdu.pdata.data-first": ("aborted", "A-ABORT source 0 reason 0"),
    "pdu.rq.twice": ("aborted", "A-ABORT source 2 reason 2"),
    "pdu.release-twice": ("released", "A-RELEASE-RP"),
    "pdu.release-rp-unasked": ("aborted", "A-ABORT source 2 reason 2"),
    "ds.store.sq-unterminated": ("aborted", "A-ABORT source 0 reason 0"),
    "ds.find.sq-unterminated": None,  # a storage SCP: no C-FIND
    "ds.store.length-overrun": ("aborted", "A-ABORT source 0 reason 0"),
    "ds.find.length-overrun": None,
    "ds.store.length-odd": ("aborted", "A-ABORT source 0 reason 0"),
    "ds.store.vr-unknown": ("aborted", "A-ABORT source 0 reason 0"),
    "ds.store.vr-mismatch": ("answered", "status 0x0000 (success)"),
    "ds.store.nesting-5000": ("answered", "status 0x0000 (success)"),
    "ds.find.nesting-5000": None,
    "ds.store.value-huge": ("answered", "status 0x0000 (success)"),
    "ds.find.value-huge": None,
    "ds.store.uid-dotdot": ("accepted", "status 0x0000 (success)"),
    "ds.store.uid-slash": ("accepted", "status 0x0000 (success)"),
    "ds.find.uid-slash": None,
    "ds.store.uid-long": ("aborted", "A-ABORT source 0 reason 0"),
    "ds.find.uid-dotdot": None,
    "ds.store.pixel-lie": ("answered", "status 0x0000 (success)"),
    "ds.store.uid-mismatch": ("answered", "status 0xA900 (failure)"),
    "ds.store.charset-unknown": ("answered", "status 0x0000 (success)"),
    "load.flood": ("silent", "32 A-ASSOCIATE-RQs: accepted some, silent some"),  # it serves one association at a time
    "load.idle-connections": ("silent", ""),
    "load.slowloris": ("silent", ""),
    "load.slow-reader": None,
}
# Inputs whose PDU length is over the PACS simulator's MAX_REQUEST_LENGTH before association.
OVER_LIMIT = {"pdu.rq.length-huge", "pdu.rq.oversized"}
# A C-ECHO while the load holds the device: the PACS serves it, storescp (one association at a time) cannot.
DURING = {"pacs": True, "storescp": False}


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    """The PACS simulator as a process (pynetdicom behind its guarded server), ARTIM shortened to 2 s."""
    root = tmp_path_factory.mktemp("attack-pacs")
    args = ["-m", "simulators.pacs", "--ae-title", "PACS", "--port", "0", "--storage", str(root / "s")]
    proc, host, port = start_simulator([*args, "--acse-timeout", str(ARTIM)], log=root / "pacs.log")
    try:
        endpoint = Endpoint("PACS", host, port)
        wait_for_device(endpoint, proc)
        yield endpoint
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def storescp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    """DCMTK storescp with its defaults: one association at a time, maximum length 16 KiB, ACSE timeout 30 s."""
    tool = require_tool("storescp", "apt-get install dcmtk")
    root = tmp_path_factory.mktemp("attack-storescp")
    (root / "in").mkdir()
    reservation = reserve_port()  # a reserved port: no other test's server can take it meanwhile
    port = reservation.port
    log = (root / "storescp.log").open("w")
    proc = subprocess.Popen([tool, "-od", str(root / "in"), str(port)], stdout=log, stderr=subprocess.STDOUT, text=True)
    endpoint = Endpoint("STORESCP", "127.0.0.1", port)
    wait_for_device(endpoint, proc)
    negotiated = probe(endpoint)
    if not (isinstance(negotiated, Negotiated) and negotiated.max_length == 16384):
        listeners = _listeners(port)
        stop(proc)
        log.close()
        reservation.release()
        pytest.fail(f"{tool} is not DCMTK's storescp (DCMTK announces 16384): {negotiated!r}; listeners {listeners}")
    try:
        yield endpoint
    finally:
        stop(proc)
        log.close()
        reservation.release()


def _listeners(port: int) -> str:
    """Who listens on the port (ss), for the failure message."""
    try:
        got = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"ss failed: {exc}"
    return got.stdout.strip()


def _check(name: str, endpoint: Endpoint, item: Input, expected: Expected) -> Outcome:
    negotiated = probe(endpoint)
    assert isinstance(negotiated, Negotiated), negotiated
    deadline = SLOW.get((name, item.id), DEADLINE)
    outcome = run_input(item, endpoint, negotiated=negotiated, deadline=deadline, health_timeout=HEALTH_TIMEOUT)
    line = outcome.line()
    if expected is None:
        assert outcome.reaction is None and outcome.skipped, line
        return outcome
    kind, detail = expected
    assert outcome.reaction is not None, line
    assert outcome.reaction.kind in (kind if isinstance(kind, frozenset) else {kind}), line
    if detail:
        assert outcome.reaction.detail == detail, line
    if outcome.reaction.kind == "silent":
        assert outcome.reaction.seconds >= DEADLINE - 0.5 or item.layer == "load", line  # it waited its deadline
    assert outcome.health is not None and outcome.health.ok, line
    if item.layer == "load":
        assert outcome.during is not None and outcome.during.ok is DURING[name], line
    return outcome


@pytest.mark.parametrize("input_id", list(PACS))
def test_pacs_simulator_reacts_as_recorded(pacs: Endpoint, input_id: str) -> None:
    outcome = _check("pacs", pacs, BY_ID[input_id], PACS[input_id])
    if input_id in OVER_LIMIT:  # refused at the header, not decoded until ARTIM or an answer came first
        assert outcome.reaction is not None and outcome.reaction.seconds < ARTIM / 2, outcome.line()


@pytest.mark.parametrize("input_id", list(STORESCP))
def test_storescp_reacts_as_recorded(storescp: Endpoint, input_id: str) -> None:
    _check("storescp", storescp, BY_ID[input_id], STORESCP[input_id])


def test_the_tables_cover_the_whole_corpus() -> None:
    assert list(PACS) == list(BY_ID) and list(STORESCP) == list(BY_ID)


def test_the_attack_socket_is_closed_before_the_health_check(storescp: Endpoint) -> None:
    # storescp serves one association at a time: while an attack connection holds it, nobody gets a C-ECHO ...
    item = BY_ID["ds.store.uid-dotdot"]
    with Wire(storescp.host, storescp.port, deadline=DEADLINE) as wire:
        assert isinstance(wire.associate(item.association(Negotiated(called=storescp.ae_title))), Negotiated)
        held = echo_health(storescp, 1.5, tries=1)
    assert not held.ok, held
    assert echo_health(storescp, HEALTH_TIMEOUT, tries=1).ok  # ... and once it is closed, C-ECHO works again
    # run_input leaves the association open on the device's side (its C-STORE was answered), so its health
    # check answers at the first try only because it closed the socket first.
    outcome = run_input(item, storescp, deadline=DEADLINE, health_timeout=HEALTH_TIMEOUT)
    assert outcome.reaction is not None and outcome.reaction.kind == "accepted", outcome.line()
    assert outcome.health is not None and outcome.health.ok and outcome.health.tries == 1, outcome.line()


def test_a_device_that_is_gone_is_an_error_not_a_reaction() -> None:
    from simulators.attack.wire import AttackError

    nobody = Endpoint("NOBODY", "127.0.0.1", free_port())
    with pytest.raises(AttackError, match="cannot connect"):
        run_input(BY_ID["pdu.rq.version-0"], nobody, deadline=1.0, health_timeout=1.0)
    health = echo_health(nobody, 1.0, tries=2, pause=0.1)
    assert not health.ok and health.tries == 2 and "no association" in health.detail


def test_a_failed_health_check_is_the_harnesss_only_when_its_own_simulator_is_silent_too(pacs: Endpoint) -> None:
    nobody = Endpoint("NOBODY", "127.0.0.1", free_port())
    gone = echo_health(nobody, 1.0, tries=1)
    assert not gone.ok
    # The run's own simulator answers: the device's silence is the device's (a crash, a hang), said as it is.
    assert harness_fault(gone, pacs, 2.0) == ""
    # Nothing answers, not even the harness's own peer: the harness is at fault, never the device.
    silent = Endpoint("PGPACS", "127.0.0.1", free_port())
    fault = harness_fault(gone, silent, 1.0)
    assert fault.startswith("the device failed its health check (no association") and "PGPACS at 127.0.0.1" in fault
    assert harness_fault(echo_health(pacs, 2.0), silent, 1.0) == ""  # a passed check needs no control


def test_the_command_prints_one_line_per_input(pacs: Endpoint) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "simulators.attack", "--port", str(pacs.port), "--ae-title", pacs.ae_title,
         "--only", "pdu.rq.version-0", "--only", "pdu.release-*", "--deadline", str(DEADLINE)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"# PACS@127.0.0.1:{pacs.port}: maximum length 0"), lines
    assert [line.split()[:2] for line in lines[1:]] == [
        ["pdu.rq.version-0", "rejected"],
        ["pdu.release-idle", "aborted"],
        ["pdu.release-twice", "aborted"],
        ["pdu.release-rp-unasked", "aborted"],
    ]
    assert all("health ok: C-ECHO 0x0000" in line for line in lines[1:])
    remote = subprocess.run(
        [sys.executable, "-m", "simulators.attack", "--host", "10.0.0.1", "--port", "104"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert remote.returncode == 2 and "only 127.0.0.0/8 or ::1" in remote.stderr


def test_a_busy_device_is_asked_again_within_the_timeout_and_not_called_unresponsive() -> None:
    """A device at its association limit rejects as transient (PS3.8 result 2): up, saying "not now".

    pynetdicom's server with maximum_associations = 1 does what dcmqrscp does at MaxAssociations while
    another association holds it: A-ASSOCIATE-RJ result 2 source 3 reason 2.
    """
    import threading

    from pynetdicom import AE, evt

    from simulators._net import VERIFICATION

    port = free_port()
    scp = AE(ae_title="BUSY")
    scp.add_supported_context(VERIFICATION)
    scp.maximum_associations = 1
    scp.require_called_aet = True  # a wrong called AE title is refused for good (result 1)
    server = scp.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_ECHO, lambda event: 0x0000)])
    assert server is not None
    try:
        busy = Endpoint("BUSY", "127.0.0.1", port)
        peer = AE(ae_title="HOLDER")
        peer.add_requested_context(VERIFICATION)
        holder = peer.associate("127.0.0.1", port, ae_title="BUSY")
        assert holder.is_established
        # As the check sees it now: rejected as transient, and with busy=False that is the answer.
        now = echo_health(busy, 2.0, tries=1, busy=False)
        assert (now.ok, now.tries) == (False, 1) and "rejected, transient" in now.detail, now
        release = threading.Timer(2.0, holder.release)  # after 3 tries 0.5 s apart: only asking on reaches it
        release.start()
        try:
            later = echo_health(busy, 6.0)
        finally:
            release.join()
        assert later.ok and later.tries > 1, later
        # A permanent refusal (a wrong called AE title) is not asked again past `tries`.
        wrong = echo_health(Endpoint("NOT-BUSY", "127.0.0.1", port), 6.0, tries=2, pause=0.1)
        assert (wrong.ok, wrong.tries) == (False, 2), wrong
    finally:
        server.shutdown()
