"""The ARR simulator over real UDP and TLS sockets on 127.0.0.1: valid messages, hostile peers, limits, the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators._net import parse_listening
from simulators.audit.build import build_message
from simulators.audit.message import (
    APPLICATION_START,
    APPLICATION_STOP,
    LOGIN,
    NODE_AUTHENTICATION,
    ROLE_APPLICATION,
    ROLE_DESTINATION,
    ROLE_SOURCE,
    ActiveParticipant,
    patient,
    security_subject,
    sop_queried,
    study,
)
from simulators.audit.record import AuditRecord, read_records
from simulators.audit.repository import ArrConfig, AuditRepository
from simulators.audit.syslog import TlsSender, octet_frame, send_udp, syslog_frame
from simulators.pki import Pki, create_pki
from tests.conftest import ROOT

HOST = "127.0.0.1"
MakeArr = Callable[..., AuditRepository]
STUDY_UID = "1.2.826.0.1.3680043.8.498.7"
DEVICE = ActiveParticipant("DEVICE", False, (ROLE_DESTINATION,), HOST)


def _xml(event: str, user: str = "MODALITY", **changes: Any) -> bytes:
    """A conformant message for each event the reference device emits; `user` marks it."""
    requestor = ActiveParticipant(user, True, (ROLE_SOURCE,), HOST)
    transfer = {"participants": [requestor, DEVICE], "objects": [study(STUDY_UID), patient("PAT-7")]}
    spec: dict[str, dict[str, Any]] = {
        "Application Activity": {
            "participants": [ActiveParticipant(user, False, (ROLE_APPLICATION,))],
            "event_types": [APPLICATION_START],
        },
        "Begin Transferring DICOM Instances": transfer,
        "DICOM Instances Transferred": {"action": "C", **transfer},
        "Query": {"participants": [requestor, DEVICE], "objects": [sop_queried("1.2.840.10008.5.1.4.31", b"q")]},
        "Security Alert": {
            "outcome": 8,
            "participants": [requestor],
            "objects": [security_subject(HOST)],
            "event_types": [NODE_AUTHENTICATION],
        },
        "User Authentication": {"participants": [requestor], "event_types": [LOGIN]},
    }
    return build_message(event, source_id="DEVICE", **{**spec[event], **changes})


def _valid(user: str) -> bytes:
    return syslog_frame(_xml("Query", user))


def _is(user: str) -> Callable[[AuditRecord], bool]:
    return lambda r: user in r.user_ids


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return create_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def make_arr(tmp_path: Path, pki: Pki) -> Iterator[MakeArr]:
    started: list[AuditRepository] = []

    def make(*, tls: bool = True, **changes: Any) -> AuditRepository:
        config = ArrConfig(
            out=tmp_path / "audit.jsonl",
            ssl_context=pki.server_context() if tls else None,
            **{"idle_timeout": 5.0, **changes},
        )
        arr = AuditRepository(config).start()
        started.append(arr)
        return arr

    yield make
    for arr in started:
        arr.stop()


def _tls(arr: AuditRepository, pki: Pki, credential: str = "client") -> TlsSender:
    assert arr.tls_port is not None
    return TlsSender(HOST, arr.tls_port, pki.client_context(credential), timeout=5)


def _still_receives(arr: AuditRepository, pki: Pki, marker: str) -> None:
    """A valid message over UDP and over a new TLS connection is still recorded as valid."""
    send_udp(HOST, arr.udp_port, _valid(f"{marker}-udp"))
    assert arr.wait_for(_is(f"{marker}-udp"), 5).valid
    if arr.tls_port is not None:
        with _tls(arr, pki) as sender:
            sender.send(_valid(f"{marker}-tls"))
        record = arr.wait_for(_is(f"{marker}-tls"), 5)
        assert (record.valid, record.transport) == (True, "tls")


# -- valid messages ---------------------------------------------------------------------------

REFERENCE_EVENTS = [
    ("Application Activity", {}),
    ("Application Activity", {"event_types": [APPLICATION_STOP]}),
    ("Begin Transferring DICOM Instances", {}),
    ("DICOM Instances Transferred", {}),
    ("Query", {}),
    ("Security Alert", {}),
    ("User Authentication", {}),
]


def test_udp_receives_each_reference_event(make_arr: MakeArr) -> None:
    arr = make_arr(tls=False)
    assert arr.tls_port is None
    for i, (event, changes) in enumerate(REFERENCE_EVENTS):
        send_udp(HOST, arr.udp_port, syslog_frame(_xml(event, f"u{i}", **changes), app_name="refdev"))
        record = arr.wait_for(_is(f"u{i}"), 5)
        assert (record.valid, record.reason, record.problems) == (True, "", ())
        assert (record.transport, record.event_name, record.app_name) == ("udp", event, "refdev")
        assert record.peer.startswith(f"{HOST}:")
    records = arr.records()
    assert len(records) == len(REFERENCE_EVENTS)
    transferred = next(r for r in records if r.event_name == "DICOM Instances Transferred")
    assert (transferred.event_code, transferred.action, transferred.outcome) == ("110104", "C", 0)
    assert transferred.user_ids == ("u3", "DEVICE")
    assert transferred.object_ids == (STUDY_UID, "PAT-7")
    alert = next(r for r in records if r.event_name == "Security Alert")
    assert (alert.outcome, alert.event_types, alert.audit_source_id) == (8, ("110126",), "DEVICE")
    assert read_records(arr.config.out) == records


def test_tls_receives_on_one_connection_and_several(make_arr: MakeArr, pki: Pki) -> None:
    arr = make_arr()
    with _tls(arr, pki) as first, _tls(arr, pki) as second:
        for i in range(3):
            first.send(_valid(f"first-{i}"))
        second.send(_valid("second"))
    for marker in ("first-0", "first-1", "first-2", "second"):
        record = arr.wait_for(_is(marker), 5)
        assert (record.valid, record.transport, record.event_name) == (True, "tls", "Query")
    records = arr.records()
    assert len(records) == 4
    assert len({r.peer for r in records}) == 2
    assert [r.user_ids[0] for r in records if r.user_ids[0].startswith("first")] == ["first-0", "first-1", "first-2"]


def test_nonconformant_message_is_recorded_with_its_problems(make_arr: MakeArr) -> None:
    arr = make_arr(tls=False)
    send_udp(HOST, arr.udp_port, syslog_frame(_xml("DICOM Instances Transferred", "nostudy", objects=[])))
    record = arr.wait_for(_is("nostudy"), 5)
    assert not record.valid
    assert record.event_name == "DICOM Instances Transferred"
    assert len(record.problems) == 2
    assert "no participant object for the study" in record.problems[0]
    assert record.reason == f"{record.problems[0]} (+1 more problems)"


def test_records_are_appended_as_json_lines(make_arr: MakeArr, tmp_path: Path) -> None:
    arr = make_arr(tls=False)
    send_udp(HOST, arr.udp_port, _valid("one"))
    arr.wait_for(_is("one"), 5)
    arr.stop()
    again = make_arr(tls=False)  # the same file: appended, not truncated
    send_udp(HOST, again.udp_port, b"junk")
    again.wait_for(lambda r: not r.valid, 5)
    lines = (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert [json.loads(line)["valid"] for line in lines] == [True, False]
    with (tmp_path / "audit.jsonl").open("a", encoding="utf-8") as f:
        f.write('{"received": "2024-')  # a writer killed mid-line
    assert [r.valid for r in read_records(tmp_path / "audit.jsonl")] == [True, False]


def test_wait_for_times_out_with_what_was_received(make_arr: MakeArr) -> None:
    arr = make_arr(tls=False)
    send_udp(HOST, arr.udp_port, _valid("other"))
    arr.wait_for(_is("other"), 5)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"no audit record matched within 0\.3 s; 1 received \(last: udp .*Query"):
        arr.wait_for(_is("never"), 0.3)
    assert 0.25 < time.monotonic() - started < 3


# -- hostile input ---------------------------------------------------------------------------------

BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10))
    + b"]><AuditMessage>&lol9;</AuditMessage>"
)


def _xxe(secret: Path) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE AuditMessage [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        '<AuditMessage><EventIdentification EventActionCode="E" EventDateTime="2024-01-01T00:00:00Z" '
        'EventOutcomeIndicator="0"><EventID csd-code="110114" codeSystemName="DCM" originalText="x"/>'
        '</EventIdentification><ActiveParticipant UserID="&xxe;" UserIsRequestor="true"/>'
        '<AuditSourceIdentification AuditSourceID="&xxe;"/></AuditMessage>'
    ).encode()


SECRET = "top-secret-4f1c"
# name -> (syslog message from the secret file's path, the recorded reason or its start)
MALFORMED: dict[str, tuple[Callable[[Path], bytes], str]] = {
    "truncated": (lambda _: _valid("cut")[:-60], "not XML: "),
    "non-utf8": (lambda _: syslog_frame(b"<AuditMessage>\xff\xfe</AuditMessage>"), "not UTF-8 at byte 14"),
    "not-xml": (lambda _: syslog_frame(b"GET / HTTP/1.1"), "not XML: syntax error: line 1, column 0"),
    "billion-laughs": (lambda _: syslog_frame(BOMB), "forbidden XML construct: entity declaration"),
    "xxe": (lambda secret: syslog_frame(_xxe(secret)), "forbidden XML construct: external entity declaration"),
    "no-syslog-header": (lambda _: _xml("Query"), "malformed syslog header: does not start with <PRI>VERSION"),
    "empty": (lambda _: b"", "malformed syslog header: does not start with <PRI>VERSION"),
    "wrong-root": (lambda _: syslog_frame(b"<html/>"), "root element is <html>, not <AuditMessage>"),
}


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET, encoding="utf-8")
    return path


def _assert_secret_kept(arr: AuditRepository) -> None:
    assert SECRET not in arr.config.out.read_text(encoding="utf-8")
    assert not any(SECRET in str(r) for r in arr.records())


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_udp_survives_malformed_message(make_arr: MakeArr, pki: Pki, secret: Path, case: str) -> None:
    payload, reason = MALFORMED[case]
    arr = make_arr()
    started = time.monotonic()
    send_udp(HOST, arr.udp_port, payload(secret))
    record = arr.wait_for(lambda r: not r.valid, 5)
    assert time.monotonic() - started < 2  # a bomb is refused, not expanded
    assert record.reason.startswith(reason), record
    assert (record.transport, record.event_name, record.problems) == ("udp", "", ())
    _still_receives(arr, pki, case)
    assert [r.valid for r in arr.records()] == [False, True, True]
    _assert_secret_kept(arr)


def test_tls_survives_malformed_messages_on_the_same_connection(make_arr: MakeArr, pki: Pki, secret: Path) -> None:
    arr = make_arr()
    cases = sorted(set(MALFORMED) - {"empty"})  # "0 " is itself bad framing (RFC 5425: MSG-LEN > 0)
    with _tls(arr, pki) as sender:
        for case in cases:
            sender.send(MALFORMED[case][0](secret))
        sender.send(_valid("after"))  # framing intact: the connection stays up
        assert arr.wait_for(_is("after"), 5).valid
    records = arr.records()
    assert len(records) == len(cases) + 1
    for case, record in zip(cases, records, strict=False):
        assert (record.valid, record.transport) == (False, "tls")
        assert record.reason.startswith(MALFORMED[case][1]), (case, record)
    assert len({r.peer for r in records}) == 1
    _assert_secret_kept(arr)


def test_udp_oversized_datagram(make_arr: MakeArr, pki: Pki) -> None:
    arr = make_arr(max_message_bytes=4096)
    padded = syslog_frame(_xml("Query", "big", outcome_description="x" * 5000))
    assert len(padded) > 4096
    send_udp(HOST, arr.udp_port, padded)
    record = arr.wait_for(lambda r: not r.valid, 5)
    assert record.reason == "oversized (datagram over 4096 bytes)"
    assert record.size == 4096
    _still_receives(arr, pki, "after-big")


def _tls_socket(arr: AuditRepository, pki: Pki) -> ssl.SSLSocket:
    assert arr.tls_port is not None
    raw = socket.create_connection((HOST, arr.tls_port), timeout=5)
    return pki.client_context().wrap_socket(raw, server_hostname=HOST)


def _closed_by_peer(sock: ssl.SSLSocket) -> bool:
    """True once the server closed the connection (EOF or reset) within the socket's timeout."""
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except OSError:  # reset: the server closed with our unread bytes in its buffer
        return True


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"hello world\n", "bad octet-counting length prefix b'hello world\\n'"),
        (b"<85>1 - h a p m - <AuditMessage/>\n", "bad octet-counting length prefix b'<85>1"),
        (b"0 ", "bad octet-counting length prefix b'0 '"),
        (b"70000 " + b"x" * 1000, "oversized frame (70000 > 65536 bytes)"),
        (b"99999999999 ", "oversized frame (length prefix 999999... > 65536 bytes)"),
        (octet_frame(b"junk") + b"12x", "bad octet-counting length prefix b'12x'"),
    ],
)
def test_tls_bad_framing_closes_only_that_connection(make_arr: MakeArr, pki: Pki, data: bytes, reason: str) -> None:
    arr = make_arr()
    with _tls(arr, pki) as bystander, _tls_socket(arr, pki) as sock:
        sock.sendall(data)
        assert _closed_by_peer(sock)
        record = arr.wait_for(lambda r: r.reason.startswith(("bad", "oversized")), 5)
        assert record.reason.startswith(reason), record
        bystander.send(_valid("bystander"))  # an open connection is unaffected
        assert arr.wait_for(_is("bystander"), 5).valid
    _still_receives(arr, pki, "after-framing")


def test_tls_oversized_message(make_arr: MakeArr, pki: Pki) -> None:
    arr = make_arr(max_message_bytes=4096)
    with contextlib.suppress(OSError), _tls(arr, pki) as sender:  # the server may close while we still send
        sender.send(syslog_frame(_xml("Query", "big", outcome_description="x" * 5000)))
    record = arr.wait_for(lambda r: not r.valid, 5)
    assert record.reason.startswith("oversized frame (") and record.reason.endswith(" > 4096 bytes)")
    _still_receives(arr, pki, "after-big")


def test_tls_connection_closed_inside_a_frame(make_arr: MakeArr, pki: Pki) -> None:
    arr = make_arr()
    with _tls(arr, pki) as sender:
        sender.send_raw(b"100 <AuditMessage")
    record = arr.wait_for(lambda r: not r.valid, 5)
    assert record.reason == "truncated frame (connection closed after 13 of 100 bytes)"
    _still_receives(arr, pki, "after-truncated")


def _plaintext(arr: AuditRepository, pki: Pki) -> None:
    assert arr.tls_port is not None
    with socket.create_connection((HOST, arr.tls_port), timeout=5) as sock:
        sock.sendall(octet_frame(_valid("plain")))
        with contextlib.suppress(OSError):
            sock.recv(100)


def _credential(name: str) -> Callable[[AuditRepository, Pki], None]:
    def connect(arr: AuditRepository, pki: Pki) -> None:
        with contextlib.suppress(OSError), _tls(arr, pki, name) as sender:
            sender.send(_valid(f"sneaky-{name}"))

    return connect


def _distrusting(arr: AuditRepository, pki: Pki) -> None:
    assert arr.tls_port is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # trusts no CA at all
    context.load_cert_chain(pki.cert("client"), pki.key("client"))
    with pytest.raises(ssl.SSLCertVerificationError):
        TlsSender(HOST, arr.tls_port, context, timeout=5)


@pytest.mark.parametrize(
    ("peer", "reason"),
    [
        (_credential("untrusted"), "TLS handshake failed: CERTIFICATE_VERIFY_FAILED: unable to get local issuer"),
        (_credential("none"), "TLS handshake failed: PEER_DID_NOT_RETURN_A_CERTIFICATE"),
        (_plaintext, "TLS handshake failed: "),
        (_distrusting, "TLS handshake failed: TLSV1_ALERT_UNKNOWN_CA"),
    ],
    ids=["untrusted-cert", "no-cert", "plaintext", "client-rejects-server"],
)
def test_tls_handshake_failure_is_recorded(
    make_arr: MakeArr, pki: Pki, peer: Callable[[AuditRepository, Pki], None], reason: str
) -> None:
    arr = make_arr()
    peer(arr, pki)
    record = arr.wait_for(lambda r: not r.valid, 5)
    assert record.reason.startswith(reason), record
    assert (record.transport, record.size, record.event_name) == ("tls", 0, "")
    _still_receives(arr, pki, "after-handshake")
    assert not any("sneaky" in u or "plain" in u for r in arr.records() for u in r.user_ids)


def test_idle_and_handshake_timeouts(make_arr: MakeArr, pki: Pki) -> None:
    arr = make_arr(idle_timeout=0.5)
    assert arr.tls_port is not None
    # A peer that connects and leaves without a byte (a port probe) sent nothing: not recorded.
    socket.create_connection((HOST, arr.tls_port), timeout=5).close()
    with socket.create_connection((HOST, arr.tls_port), timeout=5) as stalled:
        stalled.sendall(b"\x16")  # the first byte of a ClientHello, then nothing
        record = arr.wait_for(lambda r: not r.valid, 5)
        assert record.reason == "TLS handshake timed out after 0.5 s"
    with _tls_socket(arr, pki) as silent:
        started = time.monotonic()
        assert _closed_by_peer(silent)  # dropped after the idle timeout, without a record
        assert 0.4 < time.monotonic() - started < 4
    _still_receives(arr, pki, "after-timeouts")
    assert len(arr.records()) == 3


def test_connection_limit(make_arr: MakeArr, pki: Pki) -> None:
    arr = make_arr(max_tls_connections=2)
    with _tls(arr, pki) as first, _tls(arr, pki) as second:
        with contextlib.suppress(OSError), _tls(arr, pki) as third:
            third.send(_valid("third"))
        record = arr.wait_for(lambda r: not r.valid, 5)
        assert record.reason == "refused: too many TLS connections (limit 2)"
        first.send(_valid("first"))
        second.send(_valid("second"))
        assert arr.wait_for(_is("first"), 5).valid
        assert arr.wait_for(_is("second"), 5).valid
    assert not any("third" in r.user_ids for r in arr.records())


def test_stop_is_prompt_with_an_open_connection(make_arr: MakeArr, pki: Pki) -> None:
    arr = make_arr(idle_timeout=60)
    with _tls_socket(arr, pki) as sock:
        sock.sendall(b"50 partial")
        time.sleep(0.2)
        started = time.monotonic()
        arr.stop()
        assert time.monotonic() - started < 2
        assert _closed_by_peer(sock)


# -- command line -------------------------------------------------------------------------------


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            proc.kill()
            pytest.fail(f"no 'listening' line within {timeout} s; stderr: {proc.communicate()[1]}")
    return proc.stdout.readline()


def test_cli_serves_until_sigterm(tmp_path: Path, pki: Pki) -> None:
    out = tmp_path / "cli.jsonl"
    command = [sys.executable, "-m", "simulators.audit.repository", "--udp-port", "0", "--tls-port", "0"]
    proc = subprocess.Popen(
        [*command, "--tls-dir", str(pki.directory), "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = _first_line(proc, 20)
        listening = parse_listening(line)
        assert set(listening) == {"udp", "tls"}, line
        send_udp(*listening["udp"], _valid("cli-udp"))
        with TlsSender(*listening["tls"], pki.client_context(), timeout=5) as sender:
            sender.send(_valid("cli-tls"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not out.exists() or len(read_records(out)) < 2):
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        stderr = proc.communicate()[1]
    assert code == 0, stderr
    records = read_records(out)
    assert sorted((r.transport, r.user_ids[0], r.valid) for r in records) == [
        ("tls", "cli-tls", True),
        ("udp", "cli-udp", True),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-port", "0"], "--tls-port needs --tls-dir"),
        (["--tls-port", "0", "--tls-dir", "/nonexistent/pki"], "does not exist"),
    ],
)
def test_cli_refuses_bad_tls_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulators.audit.repository",
            "--udp-port",
            "0",
            "--out",
            str(tmp_path / "x.jsonl"),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr


def test_cli_on_port_0_prints_addresses_parse_listening_reads(tmp_path: Path, pki: Pki) -> None:
    out = tmp_path / "cli.jsonl"
    command = [sys.executable, "-m", "simulators.audit.repository", "--udp-port", "0", "--tls-port", "0"]
    command += ["--tls-dir", str(pki.directory), "--out", str(out), "--max-tls-connections", "4"]
    command += ["--handshake-timeout", "2", "--frame-timeout", "2"]
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        line = _first_line(proc, 20)
        assert line.startswith("listening udp="), line  # the harness waits for this prefix
        listening = parse_listening(line)
        assert set(listening) == {"udp", "tls"} and {host for host, _ in listening.values()} == {HOST}, line
        with TlsSender(*listening["tls"], pki.client_context(), timeout=5) as sender:
            sender.send(_valid("port-0"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not out.exists() or not read_records(out)):
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert [r.user_ids[0] for r in read_records(out)] == ["port-0"]
