"""The PACS simulator's load and attack quirks (simulators._pressure) in real processes over loopback."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom.presentation import build_context

from harness.launch.resources import ProcProbe
from simulators._net import qr_sop_class
from simulators.attack import Frames, Input, Message, inputs
from simulators.attack.wire import Negotiated, Wire
from simulators.endpoint import Endpoint
from simulators.modality import Modality
from simulators.session import Session
from tests.integration.test_pacs import secondary_capture
from tests.procs import launch, listening, stop

MIB = 1 << 20
# The robustness corpus's inputs (simulators.attack): each quirk meets the very bytes the robustness phase sends.
CORPUS = {i.id: i for i in inputs(1422)}
WIRE_DEADLINE = 10.0  # connect, A-ASSOCIATE-AC and each answer; generous for a loaded machine
# Started with `python -c`: the quirks as JSON, so no variant has to exist for them (simulators.reference).
_CHILD = """
import json, sys
from pathlib import Path
from simulators.pacs import PacsConfig, Quirks, serve
quirks = Quirks(**json.loads(sys.argv[1]))
sys.exit(serve(PacsConfig(ae_title="PRESSURE", port=0, storage=Path(sys.argv[2]), quirks=quirks, acse_timeout=3)))
"""
_SLEPT = re.compile(
    r"([\w.]+) slow-down: slept ([0-9.]+) s, asked ([0-9.]+) s = ([0-9.]+) x period ([0-9.]+) s "
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
        return stop(self.proc, grace=15)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    """start(quirks, ...) -> devices: all launched first, then each waited for, so they start side by side."""
    procs: list[subprocess.Popen[str]] = []

    def start_all(*quirks_sets: Mapping[str, object]) -> list[Device]:
        launched: list[tuple[subprocess.Popen[str], Path]] = []
        for quirks in quirks_sets:
            folder = tmp_path / f"device-{len(procs)}"
            folder.mkdir()
            log = folder / "stderr.log"
            # start_new_session: its own process group, for ProcProbe
            proc = launch(["-c", _CHILD, json.dumps(quirks), str(folder / "storage")], log=log, new_session=True)
            procs.append(proc)
            launched.append((proc, log))
        return [Device(proc, Endpoint("PRESSURE", *listening(proc, log=log)), log) for proc, log in launched]

    yield start_all
    for proc in procs:
        stop(proc, grace=15)


def modality() -> Modality:
    return Modality("PGPRESSURE", acse_timeout=2, dimse_timeout=5, network_timeout=2)


@contextlib.contextmanager
def associated(device: Device, item: Input) -> Iterator[tuple[Wire, Negotiated]]:
    """A raw connection (simulators.attack.wire) on which `item`'s valid A-ASSOCIATE-RQ was accepted."""
    with Wire(device.endpoint.host, device.endpoint.port, deadline=WIRE_DEADLINE) as wire:
        negotiated = wire.associate(item.association(Negotiated(called=device.endpoint.ae_title)))
        assert isinstance(negotiated, Negotiated), f"no A-ASSOCIATE-AC: {negotiated}"
        yield wire, negotiated


def message(item: Input, negotiated: Negotiated) -> Message:
    """The DIMSE request `item` sends to a device that negotiated `negotiated`."""
    sent = item.send(negotiated)
    assert isinstance(sent, Message), sent
    return sent


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
    query = Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", "1.2.3.4.5"
    contexts = [build_context(qr_sop_class("study", "find"))]
    with Session(slow.endpoint, contexts, modality=scu) as session:  # C-FINDs on one association: a period to measure
        for _ in range(3):
            found = session.find(query, "study")
            assert (found.status, found.matches) == (0x0000, ()), found  # no match: the final response alone
    ratio = sum(seconds["slow"]) / sum(seconds["clean"])
    print(f"client-visible store ratio, slowed/clean over {rounds} rounds of {per_round}: {ratio:.3f}")
    assert slow.stop() == 0 and clean.stop() == 0
    lines = [Slept.parse(m) for m in _SLEPT.finditer(slow.stderr())]
    stores, finds = [x for x in lines if x.kind == "store"], [x for x in lines if x.kind == "find.study"]
    # Every request but the process's very first (no period known yet) owed a sleep: associations
    # after the first start from the last period. C-FIND likewise, on its own pace per query level.
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
    over_max = CORPUS["pdu.pdata.over-max"]
    for device in (crashing, limited, clean):
        with associated(device, over_max) as (wire, negotiated):
            assert negotiated.max_length == (0 if device is clean else 16382)
            # One P-DATA-TF of 4 x the announced maximum, a command fragment not the last; the clean device
            # announced none (the corpus skips it there: n/a), so it gets the one built for 16382.
            sent = over_max.send(replace(negotiated, max_length=16382))
            assert isinstance(sent, Frames) and [len(part) for part in sent.parts] == [6 + 4 * 16382], sent
            assert wire.send(b"".join(sent.parts)) is None
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
    # ds.*.sq-unterminated: (0040,A730) of undefined length, one item that never ends, no (FFFE,E0DD) (PS3.5 7.5).
    item = CORPUS[f"ds.{kind}.sq-unterminated"]
    with associated(clean, item) as (wire, negotiated):
        sent = message(item, negotiated)
        reaction = wire.dimse(sent.command, sent.data, sent.pcid, fragment=sent.fragment)
        # C-FIND: the identifier does not decode (0xC311); C-STORE: filed as sent, undecoded.
        status = "status 0xC311 (failure)" if kind == "find" else "status 0x0000 (success)"
        assert (reaction.kind, reaction.detail) == ("answered", status), reaction
    with associated(hanging, item) as (wire, negotiated):
        sent = message(item, negotiated)
        until = time.monotonic() + WIRE_DEADLINE
        assert wire.send_message(sent.command, sent.data, sent.pcid, fragment=sent.fragment, until=until) is None
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
