"""The robustness corpus (design 8): seeded, versioned inputs of malformed PDUs, data sets and loads, as bytes.

`inputs(seed)` lists every input in a fixed order; each builds what it sends (`Send`) for one device
from a `Negotiated` and `random.Random(f"{seed}:{id}")`, so the same seed gives the same bytes.
`corpus_sha256(seed)` hashes them all against a fixed `Negotiated`; a changed hash with the same
`CORPUS_VERSION` is a bug. Sending is `simulators.attack.run.run_input`; `python -m simulators.attack`
runs the corpus against a loopback device.
"""

from __future__ import annotations

import hashlib
import random
import struct
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from pydicom.dataset import Dataset

from simulators.attack import dataset as D
from simulators.attack import pdu as P
from simulators.attack.wire import AttackError, Negotiated, encode_command

__all__ = [
    "CORPUS_VERSION",
    "HASH_NEGOTIATED",
    "AttackError",
    "Context",
    "Frames",
    "Input",
    "Load",
    "Message",
    "Negotiated",
    "NotApplicable",
    "Send",
    "corpus_sha256",
    "inputs",
    "send_bytes",
]

CORPUS_VERSION = "1"  # bump whenever an input's bytes or meaning change; the manifest records it
# What corpus_sha256 builds against: a device announcing 16 KiB and accepting context 1.
HASH_NEGOTIATED = Negotiated()

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
MAX_SENT = 16 * 1024 * 1024  # design 8.3: no input sends more
Context = tuple[str, tuple[str, ...]]  # abstract syntax, transfer syntaxes: proposed with ids 1, 3, 5 ...


@dataclass(frozen=True)
class Frames:
    """Bytes sent in order on the connection; `half_close` sends a FIN after them."""

    parts: tuple[bytes, ...]
    half_close: bool = False


@dataclass(frozen=True, eq=False)
class Message:
    """One DIMSE request: the command set (pydicom encodes it), the data set as raw bytes, in PDVs of `fragment`."""

    command: Dataset
    data: bytes
    pcid: int
    fragment: int


@dataclass(frozen=True)
class Load:
    """A load script for `simulators.attack.load`: `kind` names the function, the rest are its bounds."""

    kind: str  # "flood" | "idle-connections" | "slowloris" | "slow-reader"
    rq: bytes = b""
    connections: int = 1
    hold: float = 0.0
    gap: float = 0.5
    message: Message | None = None


@dataclass(frozen=True)
class NotApplicable:
    """The input cannot be built for this device (e.g. it announced no maximum length to exceed)."""

    reason: str


Send = Frames | Message | Load | NotApplicable


@dataclass(frozen=True)
class Input:
    """One robustness input (design 8.1). `phase` "idle": sent on a fresh connection; "associated": after an AC
    for `contexts`. `refusal_expected`: a standard clause requires a refusal, so an acceptance is a finding."""

    id: str
    layer: str  # "pdu" | "dimse" | "load"
    phase: str  # "idle" | "associated"
    description: str
    service: str  # the profile SERVICES entry it needs
    refusal_expected: bool
    build: Callable[[Negotiated, random.Random], Send] = field(repr=False)
    deadline: float | None = None  # None: the run's (RobustnessSpec.deadline)
    contexts: tuple[Context, ...] = ((P.VERIFICATION, (P.IMPLICIT_VR_LE,)),)
    seed: int = 0

    def send(self, negotiated: Negotiated) -> Send:
        """What this input sends to a device that negotiated `negotiated`; same seed, same bytes."""
        return self.build(negotiated, random.Random(f"{self.seed}:{self.id}"))

    def association(self, negotiated: Negotiated) -> bytes:
        """The valid A-ASSOCIATE-RQ an associated input opens with: exactly its contexts, ids 1, 3, 5 ..."""
        contexts = b"".join(
            P.presentation_context_rq(2 * i + 1, abstract, syntaxes)
            for i, (abstract, syntaxes) in enumerate(self.contexts)
        )
        return P.associate_rq(negotiated.called, negotiated.calling, contexts=contexts)


# ---------------------------------------------------------------- helpers


def _uid(rng: random.Random) -> str:
    return f"2.25.{rng.getrandbits(128)}"  # PS3.5 B.2: a UUID-derived UID


def _quiet(build: Callable[[], Dataset]) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the hostile UIDs these commands carry on purpose
        return build()


def _command(field_: int, sop_class: str, *, instance: str | None = None, data: bool = True) -> Dataset:
    """A request command set (PS3.7 9.3): C-ECHO-RQ 0x0030, C-STORE-RQ 0x0001, C-FIND-RQ 0x0020."""

    def build() -> Dataset:
        cmd = Dataset()
        cmd.AffectedSOPClassUID = sop_class
        cmd.CommandField = field_
        cmd.MessageID = 1
        if field_ != 0x0030:
            cmd.Priority = 0
        cmd.CommandDataSetType = 0x0000 if data else 0x0101  # PS3.7 E.1-1: 0x0101 means no data set
        if instance is not None:
            cmd.AffectedSOPInstanceUID = instance
        return cmd

    return _quiet(build)


def _echo_command() -> bytes:
    return encode_command(_command(0x0030, P.VERIFICATION, data=False))


def _pcid(n: Negotiated) -> int | NotApplicable:
    return n.accepted[0] if n.accepted else NotApplicable("the device accepted none of the proposed contexts")


def _fragment(n: Negotiated) -> int:
    # A PDV of `fragment` bytes sits in a P-DATA-TF body of fragment + 6 (item length, id, header).
    return max(n.max_length - 6, 1) if n.max_length else 1 << 20


def _us(value: int) -> bytes:
    return struct.pack("<H", value)


def _store_elements(rng: random.Random, *, explicit_vr: bool = False, instance: str | None = None) -> dict[int, bytes]:
    """A minimal Secondary Capture (no pixels) by tag: the valid part every store input starts from."""

    def e(tag: int, vr: str, value: str) -> bytes:
        return D.element(tag, vr, value, explicit_vr=explicit_vr)

    return {
        0x00080016: e(0x00080016, "UI", SECONDARY_CAPTURE),
        0x00080018: e(0x00080018, "UI", instance or _uid(rng)),
        0x00080060: e(0x00080060, "CS", "OT"),
        0x00080064: e(0x00080064, "CS", "WSD"),
        0x00100010: e(0x00100010, "PN", "ATTACK^CORPUS"),
        0x00100020: e(0x00100020, "LO", "PGATTACK"),
        0x0020000D: e(0x0020000D, "UI", _uid(rng)),
        0x0020000E: e(0x0020000E, "UI", _uid(rng)),
        0x00200013: e(0x00200013, "IS", "1"),
    }


def _find_elements() -> dict[int, bytes]:
    """A universal Study Root query at STUDY level (PS3.4 C.6.2): the valid part of every find input."""
    return {
        0x00080020: D.implicit(0x00080020, b""),
        0x00080052: D.element(0x00080052, "CS", "STUDY"),
        0x00100010: D.implicit(0x00100010, b""),
        0x00100020: D.implicit(0x00100020, b""),
        0x0020000D: D.implicit(0x0020000D, b""),
    }


def _join(elements: Mapping[int, bytes], *, stop_after: int | None = None) -> bytes:
    """The elements in ascending tag order (PS3.5 7.1), none after `stop_after`."""
    return b"".join(v for t, v in sorted(elements.items()) if stop_after is None or t <= stop_after)


_UNTERMINATED = D.sequence(
    0x0040A730, [D.sequence_item(D.element(0x0040A040, "CS", "TEXT"), terminated=False)], terminated=False
)
_OVERRUN = D.implicit(0x00100010, b"XX", length=0x7FFFFFF0)
_NESTED = D.nested(0x0040A730, 5000)
_DOTDOT = "../../etc/passwd"
_SLASH = "1.2/3.4"
_STORE = ((SECONDARY_CAPTURE, (P.IMPLICIT_VR_LE,)),)
_STORE_EXPLICIT = ((SECONDARY_CAPTURE, (P.EXPLICIT_VR_LE,)),)
_FIND = ((STUDY_ROOT_FIND, (P.IMPLICIT_VR_LE,)),)


def _store(
    n: Negotiated,
    rng: random.Random,
    change: Callable[[dict[int, bytes]], bytes | None] | None = None,
    *,
    explicit_vr: bool = False,
    instance: str | None = None,
    command_instance: str | None = None,
) -> Send:
    """A C-STORE-RQ of the Secondary Capture, its data set changed by `change` (returns the bytes, or None to join)."""
    pcid = _pcid(n)
    if isinstance(pcid, NotApplicable):
        return pcid
    uid = instance or _uid(rng)
    elements = _store_elements(rng, explicit_vr=explicit_vr, instance=uid)
    data = (change(elements) if change else None) or _join(elements)
    command = _command(0x0001, SECONDARY_CAPTURE, instance=command_instance or uid)
    return Message(command, data, pcid, _fragment(n))


def _find(n: Negotiated, change: Callable[[dict[int, bytes]], bytes | None] | None = None) -> Send:
    """A C-FIND-RQ (Study Root) with the universal STUDY identifier changed by `change`."""
    pcid = _pcid(n)
    if isinstance(pcid, NotApplicable):
        return pcid
    elements = _find_elements()
    data = (change(elements) if change else None) or _join(elements)
    return Message(_command(0x0020, STUDY_ROOT_FIND), data, pcid, _fragment(n))


def _put(tag: int, value: bytes) -> Callable[[dict[int, bytes]], None]:
    def change(elements: dict[int, bytes]) -> None:
        elements[tag] = value

    return change


def _overrun(elements: dict[int, bytes]) -> bytes:
    elements[0x00100010] = _OVERRUN
    return _join(elements, stop_after=0x00100010)


def _pixel_lie(elements: dict[int, bytes]) -> None:
    for tag, value in (
        (0x00280002, _us(1)),
        (0x00280004, D.padded("MONOCHROME2")),
        (0x00280010, _us(512)),
        (0x00280011, _us(512)),
        (0x00280100, _us(16)),
        (0x00280101, _us(16)),
        (0x00280102, _us(15)),
        (0x00280103, _us(0)),
        (0x7FE00010, bytes(16)),  # 16 bytes where 512 x 512 x 2 are declared
    ):
        elements[tag] = D.implicit(tag, value)


def _value_huge(rng: random.Random) -> Callable[[dict[int, bytes]], None]:
    def change(elements: dict[int, bytes]) -> None:
        elements[0x00090010] = D.element(0x00090010, "LO", "PGATTACK")  # private creator (PS3.5 7.8.1)
        elements[0x00091000] = D.implicit(0x00091000, rng.randbytes(MAX_SENT - 64 * 1024))

    return change


def _oversized(n: Negotiated, rng: random.Random) -> Send:
    """128 Verification contexts, each padded with transfer syntax sub-items to 32 KiB: a 4 MiB well-formed RQ.

    Padded with transfer syntaxes, not user information sub-items: the user information item's
    2-byte length caps it at 64 KiB (PS3.8 9.3.2.3), a context item is capped the same way, so
    the size has to come from many items.
    """
    contexts = []
    for i in range(128):
        sub = [P.abstract_syntax(P.VERIFICATION), P.transfer_syntax(P.IMPLICIT_VR_LE)]
        size = sum(map(len, sub)) + 8
        while size < 32 * 1024:
            sub.append(P.transfer_syntax(_uid(rng)))
            size += len(sub[-1])
        contexts.append(P.presentation_context_rq(2 * i + 1, sub_items=b"".join(sub)))
    return Frames((P.associate_rq(n.called, n.calling, contexts=b"".join(contexts)),))


def _over_max(n: Negotiated, rng: random.Random) -> Send:
    if not n.max_length:
        return NotApplicable("the device announced no maximum length (0: unlimited)")
    if 4 * n.max_length > MAX_SENT:
        return NotApplicable(f"4 x the announced maximum length {n.max_length} is over 16 MiB")
    pcid = _pcid(n)
    if isinstance(pcid, NotApplicable):
        return pcid
    # One PDV filling a P-DATA-TF body of 4 x the maximum: a command fragment, not the last (control 0x01).
    return Frames((P.p_data(P.pdv(pcid, rng.randbytes(4 * n.max_length - 6), last=False)),))


def _associated(build: Callable[[int], bytes]) -> Callable[[Negotiated, random.Random], Send]:
    """An associated PDU input built from the accepted context id."""

    def send(n: Negotiated, rng: random.Random) -> Send:
        pcid = _pcid(n)
        return pcid if isinstance(pcid, NotApplicable) else Frames((build(pcid),))

    return send


def _rq(n: Negotiated, **overrides: object) -> bytes:
    return P.associate_rq(**{"called": n.called, "calling": n.calling, **overrides})  # type: ignore[arg-type]


def _frames(
    build: Callable[[Negotiated], bytes], *, half_close: bool = False
) -> Callable[[Negotiated, random.Random], Send]:
    return lambda n, rng: Frames((build(n),), half_close=half_close)


# ---------------------------------------------------------------- the corpus, version 1


def _table() -> Iterator[Input]:
    pdu, ds = "pdu", "dimse"
    idle, assoc = "idle", "associated"

    def idle_pdu(
        id_: str, description: str, build: Callable[[Negotiated, random.Random], Send], refusal: bool = False
    ) -> Input:
        return Input(id_, pdu, idle, description, "echo", refusal, build)

    yield idle_pdu(
        "pdu.rq.truncated-wait",
        "the first 40 bytes of a valid A-ASSOCIATE-RQ, then nothing (ARTIM)",
        _frames(lambda n: _rq(n)[:40]),
    )
    yield idle_pdu(
        "pdu.rq.truncated-fin",
        "the first 40 bytes of a valid A-ASSOCIATE-RQ, then a FIN (half close)",
        _frames(lambda n: _rq(n)[:40], half_close=True),
    )
    yield idle_pdu(
        "pdu.rq.length-huge",
        "an A-ASSOCIATE-RQ whose header declares 0xFFFFFFF0 bytes, then a valid body",
        _frames(lambda n: _rq(n, length=0xFFFFFFF0)),
    )
    yield idle_pdu("pdu.rq.oversized", "a well-formed A-ASSOCIATE-RQ of 4 MiB: 128 contexts of 32 KiB each", _oversized)
    yield idle_pdu(
        "pdu.rq.item-length-overrun",
        "a presentation context item whose length (0xFFF0) runs past the PDU",
        _frames(lambda n: _rq(n, contexts=P.presentation_context_rq(length=0xFFF0))),
    )
    yield idle_pdu(
        "pdu.rq.item-unknown",
        "an item of unknown type 0x99 among the variable items",
        lambda n, rng: Frames((_rq(n, contexts=P.presentation_context_rq() + P.item(0x99, rng.randbytes(8))),)),
    )
    yield idle_pdu(
        "pdu.rq.version-0",
        "an A-ASSOCIATE-RQ with protocol version 0 (PS3.8 9.3.2: bit 0 must be set)",
        _frames(lambda n: _rq(n, version=0)),
        refusal=True,
    )
    yield idle_pdu(
        "pdu.rq.no-context",
        "an A-ASSOCIATE-RQ with no presentation context item",
        _frames(lambda n: _rq(n, contexts=b"")),
    )
    yield idle_pdu(
        "pdu.rq.context-id-even",
        "presentation context id 2 (PS3.8 9.3.2.2: odd integers 1-255)",
        _frames(lambda n: _rq(n, contexts=P.presentation_context_rq(2))),
    )
    yield idle_pdu(
        "pdu.rq.ae-blank",
        "called and calling AE titles of 16 spaces",
        _frames(lambda n: _rq(n, called=" " * 16, calling=" " * 16)),
    )
    yield idle_pdu("pdu.type-unknown", "PDU type 0x09, length 4", _frames(lambda n: P.pdu(0x09, bytes(4))))
    yield idle_pdu(
        "pdu.pdata-idle",
        "a P-DATA-TF (a C-ECHO-RQ) before any association",
        _frames(lambda n: P.p_data(P.pdv(1, _echo_command()))),
    )
    yield idle_pdu("pdu.release-idle", "an A-RELEASE-RQ before any association", _frames(lambda n: P.release_rq()))
    yield idle_pdu(
        "pdu.ac-to-acceptor",
        "an A-ASSOCIATE-AC sent to the acceptor",
        _frames(lambda n: P.associate_ac(n.called, n.calling)),
    )

    def assoc_pdu(id_: str, description: str, build: Callable[[Negotiated, random.Random], Send]) -> Input:
        return Input(id_, pdu, assoc, description, "echo", False, build)

    yield assoc_pdu(
        "pdu.pdata.context-unknown",
        "a PDV (a C-ECHO-RQ) for presentation context 255, never negotiated",
        lambda n, rng: Frames((P.p_data(P.pdv(255, _echo_command())),)),
    )
    yield assoc_pdu(
        "pdu.pdata.over-max",
        "one P-DATA-TF of 4 x the maximum length the device announced (not the last "
        "fragment); not applicable when it announced 0 (unlimited)",
        _over_max,
    )
    yield assoc_pdu(
        "pdu.pdata.pdv-overrun",
        "a PDV item length (5000) past its PDU (10 bytes)",
        _associated(lambda pcid: P.p_data(P.pdv(pcid, bytes(4), length=5000))),
    )
    yield assoc_pdu(
        "pdu.pdata.data-first",
        "a data set fragment before any command",
        _associated(lambda pcid: P.p_data(P.pdv(pcid, D.element(0x00100010, "PN", "ATTACK"), command=False))),
    )
    yield assoc_pdu("pdu.rq.twice", "a second A-ASSOCIATE-RQ on the association", lambda n, rng: Frames((_rq(n),)))
    yield assoc_pdu(
        "pdu.release-twice",
        "an A-RELEASE-RQ, then another before the RP is read",
        lambda n, rng: Frames((P.release_rq() + P.release_rq(),)),
    )
    yield assoc_pdu(
        "pdu.release-rp-unasked", "an A-RELEASE-RP nobody asked for", lambda n, rng: Frames((P.release_rp(),))
    )

    def store(
        id_: str,
        description: str,
        build: Callable[[Negotiated, random.Random], Send],
        refusal: bool = False,
        contexts: tuple[Context, ...] = _STORE,
    ) -> Input:
        return Input(id_, ds, assoc, description, "store", refusal, build, contexts=contexts)

    def find(id_: str, description: str, build: Callable[[Negotiated, random.Random], Send]) -> Input:
        return Input(id_, ds, assoc, description, "find", False, build, contexts=_FIND)

    def appended(value: bytes) -> Callable[[dict[int, bytes]], None]:
        return _put(0x0040A730, value)

    yield store(
        "ds.store.sq-unterminated",
        "C-STORE (Secondary Capture): an undefined-length sequence whose item never ends",
        lambda n, rng: _store(n, rng, appended(_UNTERMINATED)),
    )
    yield find(
        "ds.find.sq-unterminated",
        "C-FIND (Study Root, STUDY): an undefined-length sequence whose item never ends",
        lambda n, rng: _find(n, appended(_UNTERMINATED)),
    )
    yield store(
        "ds.store.length-overrun",
        "C-STORE: Patient's Name with length 0x7FFFFFF0 and 2 bytes of value",
        lambda n, rng: _store(n, rng, _overrun),
    )
    yield find(
        "ds.find.length-overrun",
        "C-FIND: Patient's Name with length 0x7FFFFFF0 and 2 bytes of value",
        lambda n, rng: _find(n, _overrun),
    )
    yield store(
        "ds.store.length-odd",
        "C-STORE: Patient ID with an odd value length (PS3.5 7.1.1: even)",
        lambda n, rng: _store(n, rng, _put(0x00100020, D.implicit(0x00100020, b"PGATTACK1"))),
        refusal=True,
    )
    yield store(
        "ds.store.vr-unknown",
        "C-STORE in explicit VR LE: Patient ID with VR bytes ZZ",
        lambda n, rng: _store(
            n, rng, _put(0x00100020, D.explicit(0x00100020, "ZZ", D.padded("PGATTACK"))), explicit_vr=True
        ),
        contexts=_STORE_EXPLICIT,
    )
    yield store(
        "ds.store.vr-mismatch",
        "C-STORE in explicit VR LE: Patient's Name encoded with VR US",
        lambda n, rng: _store(
            n, rng, _put(0x00100010, D.explicit(0x00100010, "US", D.padded("ATTACK^CORPUS"))), explicit_vr=True
        ),
        contexts=_STORE_EXPLICIT,
    )
    yield store(
        "ds.store.nesting-5000",
        "C-STORE: 5,000 nested undefined-length sequences",
        lambda n, rng: _store(n, rng, appended(_NESTED)),
    )
    yield find(
        "ds.find.nesting-5000",
        "C-FIND: 5,000 nested undefined-length sequences",
        lambda n, rng: _find(n, appended(_NESTED)),
    )
    yield store(
        "ds.store.value-huge",
        "C-STORE: a private OB element of 16 MiB less 64 KiB (all sent stays within 16 MiB)",
        lambda n, rng: _store(n, rng, _value_huge(rng)),
    )
    yield find(
        "ds.find.value-huge",
        "C-FIND: a 1 MiB Patient's Name",
        lambda n, rng: _find(n, _put(0x00100010, D.implicit(0x00100010, b"A" * (1 << 20)))),
    )
    yield store(
        "ds.store.uid-dotdot",
        "C-STORE: SOP Instance UID ../../etc/passwd (command and data set)",
        lambda n, rng: _store(n, rng, instance=_DOTDOT),
        refusal=True,
    )
    yield store(
        "ds.store.uid-slash",
        "C-STORE: SOP Instance UID 1.2/3.4 (PS3.5 9.1: digits and dots)",
        lambda n, rng: _store(n, rng, instance=_SLASH),
        refusal=True,
    )
    yield find(
        "ds.find.uid-slash",
        "C-FIND: Study Instance UID key 1.2/3.4",
        lambda n, rng: _find(n, _put(0x0020000D, D.element(0x0020000D, "UI", _SLASH))),
    )
    yield store(
        "ds.store.uid-long",
        "C-STORE: a 200-character SOP Instance UID (PS3.5 9.1: at most 64)",
        lambda n, rng: _store(n, rng, instance="2.25." + str(rng.randrange(10**194, 10**195))),
        refusal=True,
    )
    yield find(
        "ds.find.uid-dotdot",
        "C-FIND: Study Instance UID key ../../etc/passwd",
        lambda n, rng: _find(n, _put(0x0020000D, D.element(0x0020000D, "UI", _DOTDOT))),
    )
    yield store(
        "ds.store.pixel-lie",
        "C-STORE: Rows x Columns x Bits Allocated (512 x 512 x 16) over Pixel Data's 16 bytes",
        lambda n, rng: _store(n, rng, _pixel_lie),
    )
    yield store(
        "ds.store.uid-mismatch",
        "C-STORE: the command's Affected SOP Instance UID differs from the data set's",
        lambda n, rng: _store(n, rng, command_instance=_uid(rng)),
    )
    yield store(
        "ds.store.charset-unknown",
        "C-STORE: Specific Character Set ISO_IR 999",
        lambda n, rng: _store(n, rng, _put(0x00080005, D.element(0x00080005, "CS", "ISO_IR 999"))),
    )

    yield Input(
        "load.flood",
        "load",
        idle,
        "32 A-ASSOCIATE-RQs at once, held 2 s; a C-ECHO during the hold",
        "echo",
        False,
        lambda n, rng: Load("flood", rq=_rq(n), connections=32, hold=2.0),
    )
    yield Input(
        "load.idle-connections",
        "load",
        idle,
        "64 TCP connections that send nothing, held 6 s; a C-ECHO during the hold",
        "echo",
        False,
        lambda n, rng: Load("idle-connections", connections=64, hold=6.0),
    )
    yield Input(
        "load.slowloris",
        "load",
        idle,
        "a valid A-ASSOCIATE-RQ dripped one byte every 0.5 s until the deadline",
        "echo",
        False,
        lambda n, rng: Load("slowloris", rq=_rq(n), gap=0.5),
    )
    yield Input(
        "load.slow-reader",
        "load",
        assoc,
        "a universal C-FIND (Study Root, STUDY) with a 4 KiB receive "
        "buffer, not read for 5 s; a C-ECHO on another association meanwhile",
        "find",
        False,
        _slow_reader,
        contexts=_FIND,
    )


def _slow_reader(n: Negotiated, rng: random.Random) -> Send:
    message = _find(n)
    return message if not isinstance(message, Message) else Load("slow-reader", hold=5.0, message=message)


def inputs(seed: int) -> tuple[Input, ...]:
    """Every input of the corpus at CORPUS_VERSION, in a fixed order, drawing on `seed`."""
    out = tuple(replace(i, seed=seed) for i in _table())
    ids = [i.id for i in out]
    if len(set(ids)) != len(ids):
        raise AttackError(f"duplicate input ids in the corpus: {sorted(x for x in ids if ids.count(x) > 1)}")
    return out


def send_bytes(send: Send) -> bytes:
    """A canonical byte form of what an input sends, for hashing (load parameters included)."""
    if isinstance(send, Frames):
        return b"frames" + bytes([send.half_close]) + b"".join(struct.pack(">I", len(p)) + p for p in send.parts)
    if isinstance(send, Message):
        command = encode_command(send.command)
        head = struct.pack(">IIII", send.pcid, send.fragment, len(command), len(send.data))
        return b"message" + head + command + send.data
    if isinstance(send, Load):
        params = f"{send.kind} {send.connections} {send.hold!r} {send.gap!r}".encode()
        inner = send_bytes(send.message) if send.message else b""
        return b"load" + struct.pack(">I", len(params)) + params + send.rq + inner
    return b"n/a " + send.reason.encode()


def corpus_sha256(seed: int) -> str:
    """sha256 over the version and every input's id and bytes, built against HASH_NEGOTIATED."""
    digest = hashlib.sha256(f"patchgate attack corpus {CORPUS_VERSION}\0".encode())
    for i in inputs(seed):
        body = send_bytes(i.send(HASH_NEGOTIATED))
        digest.update(i.id.encode() + b"\0" + struct.pack(">Q", len(body)))
        digest.update(body)
    return digest.hexdigest()
