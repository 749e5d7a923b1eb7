"""The PACS simulator's load and attack quirks (simulators._pressure) in real processes over loopback."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom.dsutils import decode, encode

from harness.launch.resources import ProcProbe
from simulators._net import parse_listening
from simulators.endpoint import Endpoint
from simulators.modality import Modality
from tests.integration.test_pacs import secondary_capture

MIB = 1 << 20
VERIFICATION = "1.2.840.10008.1.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
IMPLICIT = "1.2.840.10008.1.2"
# Started with `python -c`: the quirks as JSON, so no variant has to exist for them (simulators.reference).
_CHILD = """
import json, sys
from pathlib import Path
from simulators.pacs import PacsConfig, Quirks, serve
quirks = Quirks(**json.loads(sys.argv[1]))
sys.exit(serve(PacsConfig(ae_title="PRESSURE", port=0, storage=Path(sys.argv[2]), quirks=quirks, acse_timeout=3)))
"""
_SLEPT = re.compile(
    r"(\w+) slow-down: slept ([0-9.]+) s, asked ([0-9.]+) s = ([0-9.]+) x period ([0-9.]+) s "
    r"\+ carried (-?[0-9.]+) s \(request (\d+)\)"
)


@dataclass(frozen=True)
class Slept:
    """One slow-down line of a device's log (simulators._pressure.Pressure._slow)."""

    kind: str
    slept: float
    asked: float
    fraction: float
    period: float
    carried: float
    request: int

    @classmethod
    def parse(cls, m: re.Match[str]) -> Slept:
        slept, asked, fraction, period, carried = (float(m[i]) for i in range(2, 7))
        return cls(m[1], slept, asked, fraction, period, carried, int(m[7]))


@dataclass(eq=False)
class Device:
    """A PACS simulator process with some quirks; its stderr goes to a file the test can read while it runs."""

    proc: subprocess.Popen[str]
    endpoint: Endpoint
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, text: str, deadline: float = 10.0) -> None:
        end = time.monotonic() + deadline
        while text not in self.stderr():
            assert time.monotonic() < end, f"{text!r} not in the device log within {deadline} s:\n{self.stderr()}"
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after 15 s; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    """start(quirks, ...) -> devices: all launched first, then each waited for, so they start side by side."""
    started: list[Device] = []

    def start_all(*quirks_sets: Mapping[str, object]) -> list[Device]:
        launched: list[tuple[subprocess.Popen[str], Path]] = []
        for quirks in quirks_sets:
            folder = tmp_path / f"device-{len(started) + len(launched)}"
            folder.mkdir()
            log = folder / "stderr.log"
            with open(log, "w") as err:
                proc = subprocess.Popen(
                    [sys.executable, "-c", _CHILD, json.dumps(quirks), str(folder / "storage")],
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    env=os.environ.copy(),
                    start_new_session=True,  # its own process group, for ProcProbe
                )
            launched.append((proc, log))
        devices = []
        for proc, log in launched:
            assert proc.stdout is not None
            ready = select.select([proc.stdout], [], [], 30)[0]
            assert ready, f"no 'listening' line within 30 s:\n{log.read_text()}"
            host, port = parse_listening(proc.stdout.readline())["dicom"]
            devices.append(Device(proc, Endpoint("PRESSURE", host, port), log))
        started.extend(devices)
        return devices

    yield start_all
    for device in started:
        device.stop()


def modality() -> Modality:
    return Modality("PGPRESSURE", acse_timeout=2, dimse_timeout=5, network_timeout=2)


# --- a minimal DUL client on a raw socket (PS3.8 9.3), built by hand: pynetdicom encodes no bad input ---


def _item(kind: int, value: bytes) -> bytes:
    return struct.pack(">BBH", kind, 0, len(value)) + value


def associate_rq(called: str, contexts: list[tuple[int, str]]) -> bytes:
    """A-ASSOCIATE-RQ (9.3.2): each (context id, abstract syntax) with Implicit VR LE; max length 16384."""
    body = struct.pack(">HH", 1, 0) + called.ljust(16).encode() + b"PGRAW".ljust(16) + b"\0" * 32
    body += _item(0x10, b"1.2.840.10008.3.1.1.1")
    for pcid, abstract in contexts:
        body += _item(0x20, bytes([pcid, 0, 0, 0]) + _item(0x30, abstract.encode()) + _item(0x40, IMPLICIT.encode()))
    body += _item(0x50, _item(0x51, struct.pack(">I", 16384)) + _item(0x52, b"1.2.826.0.1.3680043.9.3811.0"))
    return struct.pack(">BBI", 1, 0, len(body)) + body


def p_data(pcid: int, control: int, payload: bytes) -> bytes:
    """One P-DATA-TF (9.3.5) of one PDV: control 0x01 command, 0x02 last fragment."""
    pdv = struct.pack(">IBB", len(payload) + 2, pcid, control) + payload
    return struct.pack(">BBI", 4, 0, len(pdv)) + pdv


def read_pdu(sock: socket.socket, deadline: float) -> tuple[int, bytes] | None:
    """(type, body) of the next PDU, or None on EOF or at the deadline (seconds from now)."""
    end = time.monotonic() + deadline

    def exactly(n: int) -> bytes | None:
        got = b""
        while len(got) < n:
            left = end - time.monotonic()
            if left <= 0:
                return None
            sock.settimeout(left)
            try:
                chunk = sock.recv(n - len(got))
            except (TimeoutError, ConnectionError):
                return None
            if not chunk:
                return None
            got += chunk
        return got

    head = exactly(6)
    if head is None:
        return None
    kind, _, length = struct.unpack(">BBI", head)
    body = exactly(length)
    return None if body is None else (kind, body)


@contextlib.contextmanager
def raw_association(device: Device, contexts: list[tuple[int, str]]) -> Iterator[tuple[socket.socket, int]]:
    """A connected socket whose A-ASSOCIATE-AC arrived, and the Maximum Length the AC announced."""
    sock = socket.create_connection((device.endpoint.host, device.endpoint.port), timeout=5)
    try:
        sock.sendall(associate_rq(device.endpoint.ae_title, contexts))
        pdu = read_pdu(sock, 5)
        assert pdu is not None and pdu[0] == 0x02, f"no A-ASSOCIATE-AC: {pdu!r}"
        body, pos, maximum = pdu[1], 68, -1
        while pos + 4 <= len(body):
            kind, _, length = struct.unpack_from(">BBH", body, pos)
            if kind == 0x50:  # user information: its 0x51 sub-item holds the maximum length (D.3.3.1)
                sub = body[pos + 4 : pos + 4 + length]
                at = sub.find(b"\x51\x00\x00\x04")
                maximum = struct.unpack_from(">I", sub, at + 4)[0]
            pos += 4 + length
        yield sock, maximum
    finally:
        sock.close()


def command(field: int, sop_class: str, instance: str = "") -> bytes:
    """A DIMSE request command set, implicit VR LE with its group length (PS3.7 6.3.1, 9.3)."""
    ds = Dataset()
    ds.AffectedSOPClassUID = sop_class
    ds.CommandField = field
    ds.MessageID = 1
    ds.Priority = 0
    ds.CommandDataSetType = 0x0000  # a data set follows
    if instance:
        ds.AffectedSOPInstanceUID = instance
    ds.CommandGroupLength = len(encode(ds, True, True) or b"")
    return encode(ds, True, True) or b""


def element(tag: int, value: bytes = b"", length: int | None = None) -> bytes:
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value) if length is None else length) + value


# (0040,A730) Content Sequence of undefined length, one item that never ends, and no (FFFE,E0DD).
UNTERMINATED = element(0x0040A730, length=0xFFFFFFFF) + element(0xFFFEE000, length=0xFFFFFFFF)
UNTERMINATED += element(0x0040A040, b"TEXT")


def bad_request(kind: str) -> tuple[int, bytes, bytes]:
    """(context id, command, data set) of a C-STORE or C-FIND whose data set ends inside an open sequence."""
    if kind == "store":
        uid = generate_uid()
        data = element(0x00080016, SECONDARY_CAPTURE.encode() + b"\0") + element(0x00080018, uid.encode() + b"\0")
        return 3, command(0x0001, SECONDARY_CAPTURE, uid), data + element(0x00100020, b"PRESSURE") + UNTERMINATED
    data = element(0x00080052, b"STUDY ") + element(0x0020000D)
    return 5, command(0x0020, STUDY_ROOT_FIND), data + UNTERMINATED


def send_request(sock: socket.socket, pcid: int, cmd: bytes, data: bytes) -> None:
    sock.sendall(p_data(pcid, 0x03, cmd) + p_data(pcid, 0x02, data))


def response_status(sock: socket.socket, deadline: float = 10.0) -> int | None:
    """The status of the next DIMSE response command (one PDV of one PDU, as the simulator sends), None if none."""
    pdu = read_pdu(sock, deadline)
    if pdu is None or pdu[0] != 0x04:
        return None
    ds = decode(io.BytesIO(pdu[1][6:]), True, True)
    return int(ds.Status)


CONTEXTS = [(1, VERIFICATION), (3, SECONDARY_CAPTURE), (5, STUDY_ROOT_FIND)]


# --- 1. slow-downs ---


def test_a_slowed_device_sleeps_f_times_its_period(start: Any) -> None:
    """The same C-STORE loop, interleaved: the slowed device logs each sleep, f x P; the clean one none."""
    slow, clean = start({"store_slowdown": 0.2, "find_slowdown": 0.1}, {})
    scu, per_round, rounds = modality(), 15, 4
    seconds: dict[str, list[float]] = {"slow": [], "clean": []}
    for i in range(rounds):
        order = [("slow", slow), ("clean", clean)]
        for name, device in order if i % 2 == 0 else order[::-1]:
            began = time.perf_counter()
            result = scu.store(device.endpoint, [secondary_capture(generate_uid()) for _ in range(per_round)])
            seconds[name].append(time.perf_counter() - began)
            assert [o.status for o in result.instances] == [0x0000] * per_round, result.summary()
    with raw_association(slow, CONTEXTS) as (sock, _):  # C-FINDs on one association: a period to measure
        identifier = element(0x00080052, b"STUDY ") + element(0x0020000D, b"1.2.3.4.5\0")
        for _ in range(3):
            send_request(sock, 5, command(0x0020, STUDY_ROOT_FIND), identifier)
            assert response_status(sock) == 0x0000  # no match: the final response alone
    ratio = sum(seconds["slow"]) / sum(seconds["clean"])
    print(f"client-visible store ratio, slowed/clean over {rounds} rounds of {per_round}: {ratio:.3f}")
    assert slow.stop() == 0 and clean.stop() == 0
    lines = [Slept.parse(m) for m in _SLEPT.finditer(slow.stderr())]
    stores, finds = [x for x in lines if x.kind == "store"], [x for x in lines if x.kind == "find"]
    # Every request but the process's very first (no period known yet) owed a sleep: associations
    # after the first start from the last period. C-FIND likewise, on its own pace.
    assert len(stores) == rounds * per_round - 1 and len(finds) == 2
    for group, x in ((stores, 0.2), (finds, 0.1)):
        f = x / (1 + x)
        for line, following in zip(group, [*group[1:], None], strict=True):
            assert line.fraction == pytest.approx(f, abs=1e-4)
            assert line.asked == pytest.approx(max(0.0, f * line.period + line.carried), abs=3e-6)
            assert line.slept >= line.asked - 1e-6 and (line.asked > 0 or line.slept == 0)
            if following is not None and following.request == line.request + 1:  # what it carried on
                assert following.carried == pytest.approx(f * line.period + line.carried - line.slept, abs=3e-6)
            elif following is not None:
                assert following.request == 1 and following.carried == 0.0  # a new association owes nothing
    assert sum(line.slept for line in stores) > 0
    assert "slow-down" not in clean.stderr()


# --- 2. the leak ---


def test_a_leaking_device_keeps_its_bytes_per_association(start: Any) -> None:
    leaking, clean = start({"leak_per_association": 4 * MIB}, {})
    scu, associations = modality(), 20
    probes = {d: ProcProbe(d.proc.pid, d.proc.poll) for d in (leaking, clean)}
    for device in (leaking, clean):
        assert scu.echo(device.endpoint).status == 0x0000  # warm: threads, imports, first association
    before = {d: p.read() for d, p in probes.items()}
    for _ in range(associations):
        for device in (leaking, clean):
            assert scu.echo(device.endpoint).status == 0x0000
    after = {d: p.read() for d, p in probes.items()}
    growth = {}
    for device in (leaking, clean):
        first, last = before[device], after[device]
        assert first is not None and last is not None
        growth[device] = last.rss - first.rss
    print(
        f"anonymous memory growth over {associations} associations: "
        + ", ".join(f"{g / MIB:.1f} MiB" for g in growth.values())
    )
    assert growth[leaking] >= 0.8 * associations * 4 * MIB, growth
    assert growth[clean] < 0.2 * associations * 4 * MIB, growth
    assert "leak: 4194304 bytes kept" in leaking.stderr() and "leak:" not in clean.stderr()


# --- 3. the crash on an oversized P-DATA-TF ---


def test_an_oversized_pdata_crashes_only_the_crashing_device(start: Any) -> None:
    crashing, limited, clean = start(
        {"maximum_pdu_size": 16382, "crash_on_oversized_pdu": True}, {"maximum_pdu_size": 16382}, {}
    )
    # Traffic that keeps to the maximum, fragments filled to it exactly, does not trip it.
    large = secondary_capture(generate_uid())
    large.add_new(0x00290010, "LO", "PGPRESSURE")
    large.add_new(0x00291000, "OB", bytes(100_000))
    stored = modality().store(crashing.endpoint, [large])
    assert [o.status for o in stored.instances] == [0x0000] and crashing.proc.poll() is None, stored.summary()
    for device in (crashing, limited, clean):
        with raw_association(device, CONTEXTS) as (sock, maximum):
            assert maximum == (0 if device is clean else 16382)
            # pdu.pdata.over-max: 4 x the announced maximum (the clean one announced none: 4 x 16382 anyway).
            sock.sendall(p_data(1, 0x01, os.urandom(4 * 16382 - 6)))
            if device is crashing:
                assert device.proc.wait(15) == 70
                assert "crash_on_oversized_pdu: a P-DATA-TF of 65528 bytes" in device.stderr()
    for device in (limited, clean):
        assert device.proc.poll() is None
        assert modality().echo(device.endpoint).status == 0x0000
        assert "crash_on_oversized_pdu" not in device.stderr()


# --- 4. the hang on an unterminated sequence ---


@pytest.mark.parametrize("kind", ["find", "store"])
def test_an_unterminated_sequence_hangs_the_device_not_the_clean_one(start: Any, kind: str) -> None:
    hanging, clean = start({"hang_on_unterminated_sequence": True}, {})
    pcid, cmd, data = bad_request(kind)
    with raw_association(clean, CONTEXTS) as (sock, _):
        send_request(sock, pcid, cmd, data)
        # C-FIND: the identifier does not decode (0xC311); C-STORE: filed as sent, undecoded.
        assert response_status(sock) == (0xC311 if kind == "find" else 0x0000)
    with raw_association(hanging, CONTEXTS) as (sock, _):
        send_request(sock, pcid, cmd, data)
        hanging.wait_for_log("hang_on_unterminated_sequence")
    echo = modality().echo(hanging.endpoint)
    # Unanswered: the modality's ACSE timeout, or the device's ARTIM watchdog hanging up (a loaded machine).
    assert not echo.accepted and echo.error in (
        "no answer to the association request (ACSE timeout)",
        "association aborted by the peer",
    ), echo
    assert hanging.proc.poll() is None  # a hang, not a crash
    assert modality().echo(clean.endpoint).status == 0x0000
    assert hanging.stop() == 0  # stopped, it lets go and ends as usual
