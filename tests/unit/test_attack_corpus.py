"""The robustness corpus: stable ids and hash, seeded bytes, loopback-only wire, and the reaction classifier."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import pytest

from simulators.attack import CORPUS_VERSION, HASH_NEGOTIATED, Message, corpus_sha256, inputs, send_bytes
from simulators.attack import pdu as P
from simulators.attack.react import KINDS, SEVERITY, Ended, Reaction, read_reaction
from simulators.attack.wire import AttackError, Wire, encode_command, loopback

GOLDEN_1422 = "65930234532a2f737cf24be15a1d69c5bae23fd5870dcdd7c40ecbb67d2da00e"
IDS = [
    "pdu.rq.truncated-wait", "pdu.rq.truncated-fin", "pdu.rq.length-huge", "pdu.rq.oversized",
    "pdu.rq.item-length-overrun", "pdu.rq.item-unknown", "pdu.rq.version-0", "pdu.rq.no-context",
    "pdu.rq.context-id-even", "pdu.rq.ae-blank", "pdu.type-unknown", "pdu.pdata-idle", "pdu.release-idle",
    "pdu.ac-to-acceptor", "pdu.pdata.context-unknown", "pdu.pdata.over-max", "pdu.pdata.pdv-overrun",
    "pdu.pdata.data-first", "pdu.rq.twice", "pdu.release-twice", "pdu.release-rp-unasked",
    "ds.store.sq-unterminated", "ds.find.sq-unterminated", "ds.store.length-overrun", "ds.find.length-overrun",
    "ds.store.length-odd", "ds.store.vr-unknown", "ds.store.vr-mismatch", "ds.store.nesting-5000",
    "ds.find.nesting-5000", "ds.store.value-huge", "ds.find.value-huge", "ds.store.uid-dotdot",
    "ds.store.uid-slash", "ds.find.uid-slash", "ds.store.uid-long", "ds.find.uid-dotdot", "ds.store.pixel-lie",
    "ds.store.uid-mismatch", "ds.store.charset-unknown", "load.flood", "load.idle-connections", "load.slowloris",
    "load.slow-reader",
]  # fmt: skip


def test_ids_are_unique_stable_and_in_a_fixed_order() -> None:
    assert CORPUS_VERSION == "1"
    assert [i.id for i in inputs(1422)] == IDS
    assert [i.id for i in inputs(7)] == IDS


def test_every_input_says_what_it_is() -> None:
    for i in inputs(1422):
        assert i.layer == i.id.split(".")[0].replace("ds", "dimse"), i.id
        assert i.phase in ("idle", "associated") and i.service in ("echo", "store", "find"), i.id
        assert i.description and i.deadline is None and i.seed == 1422, i.id
        assert i.contexts and all(syntaxes for _, syntaxes in i.contexts), i.id
    refusing = sorted(i.id for i in inputs(1422) if i.refusal_expected)
    assert refusing == [
        "ds.store.length-odd",
        "ds.store.uid-dotdot",
        "ds.store.uid-long",
        "ds.store.uid-slash",
        "pdu.rq.version-0",
    ]


def test_corpus_sha256_is_golden_and_follows_the_seed() -> None:
    assert corpus_sha256(1422) == GOLDEN_1422
    assert corpus_sha256(1423) != GOLDEN_1422


def test_same_seed_same_bytes_other_seed_other_uids() -> None:
    a = {i.id: send_bytes(i.send(HASH_NEGOTIATED)) for i in inputs(1422)}
    b = {i.id: send_bytes(i.send(HASH_NEGOTIATED)) for i in inputs(1422)}
    c = {i.id: send_bytes(i.send(HASH_NEGOTIATED)) for i in inputs(1423)}
    assert a == b
    assert a["pdu.rq.version-0"] == c["pdu.rq.version-0"]  # no randomness in it
    assert a["ds.store.pixel-lie"] != c["ds.store.pixel-lie"]  # UIDs from the seed
    assert a["pdu.rq.oversized"] != c["pdu.rq.oversized"]  # padding syntaxes from the seed


def test_associated_inputs_propose_exactly_their_contexts() -> None:
    by_id = {i.id: i for i in inputs(1422)}
    for input_id, abstract in (
        ("ds.store.uid-dotdot", "1.2.840.10008.5.1.4.1.1.7"),
        ("ds.find.uid-dotdot", "1.2.840.10008.5.1.4.1.2.2.1"),
        ("pdu.rq.twice", P.VERIFICATION),
    ):
        rq = by_id[input_id].association(HASH_NEGOTIATED)
        assert rq == P.associate_rq(contexts=P.presentation_context_rq(1, abstract, (P.IMPLICIT_VR_LE,)))
    explicit = by_id["ds.store.vr-unknown"].association(HASH_NEGOTIATED)
    assert P.transfer_syntax(P.EXPLICIT_VR_LE) in explicit and P.transfer_syntax(P.IMPLICIT_VR_LE) not in explicit


def test_a_dataset_input_uses_the_context_the_device_accepted() -> None:
    from simulators.attack import Negotiated, NotApplicable

    send = inputs(1422)[IDS.index("ds.store.pixel-lie")].send(Negotiated(max_length=1000, accepted=(5,)))
    assert isinstance(send, Message) and send.pcid == 5 and send.fragment == 994
    none = inputs(1422)[IDS.index("ds.store.pixel-lie")].send(Negotiated(accepted=()))
    assert isinstance(none, NotApplicable) and "none of the proposed contexts" in none.reason


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    made: list[object] = []

    def refuse(*args: object, **kwargs: object) -> socket.socket:
        made.append(args)
        raise AssertionError("a socket was created")

    monkeypatch.setattr(socket, "socket", refuse)
    yield made


@pytest.mark.parametrize("host", ["10.0.0.1", "192.168.1.1", "8.8.8.8", "localhost", "::2", "fe80::1"])
def test_wire_refuses_anything_but_loopback_before_a_socket_exists(host: str, no_sockets: list[object]) -> None:
    with pytest.raises(AttackError, match=re.escape("127.0.0.0/8 or ::1")):
        Wire(host, 104, deadline=1.0)
    assert no_sockets == []


def test_loopback_addresses() -> None:
    assert loopback("127.0.0.1") and loopback("127.9.8.7") and loopback("::1")
    assert not loopback("10.0.0.1") and not loopback("localhost") and not loopback("")


class Script:
    """A reader that returns prepared PDUs or ends (below the network line: the classifier alone)."""

    def __init__(self, *items: P.Pdu | Ended) -> None:
        self.items = list(items)

    def read_pdu(self, until: float) -> P.Pdu | Ended:
        return self.items.pop(0) if self.items else Ended("timeout")


def pdu_of(data: bytes) -> P.Pdu:
    return P.Pdu(data[0], len(data) - 6, data[6:])


def response(status: int, *, field: int = 0x8001) -> P.Pdu:
    from pydicom.dataset import Dataset

    cmd = Dataset()
    cmd.CommandField = field
    cmd.MessageIDBeingRespondedTo = 1
    cmd.CommandDataSetType = 0x0101
    cmd.Status = status
    return pdu_of(P.p_data(P.pdv(1, encode_command(cmd))))


@pytest.mark.parametrize(
    ("items", "refusal", "kind", "detail"),
    [
        ([pdu_of(P.associate_rj(1, 2, 2))], False, "rejected", "A-ASSOCIATE-RJ result 1 source 2 reason 2"),
        ([pdu_of(P.abort(2, 0))], False, "aborted", "A-ABORT source 2 reason 0"),
        ([pdu_of(P.release_rp())], False, "released", "A-RELEASE-RP"),
        ([pdu_of(P.associate_ac())], False, "answered", "A-ASSOCIATE-AC"),
        ([pdu_of(P.associate_ac())], True, "accepted", "A-ASSOCIATE-AC"),
        ([Ended("eof")], False, "closed", "EOF"),
        ([Ended("reset", "connection reset")], False, "reset", "connection reset"),
        ([], False, "silent", "no answer before the deadline"),
        ([response(0xC311)], True, "answered", "status 0xC311 (failure)"),
        ([response(0x0000)], True, "accepted", "status 0x0000 (success)"),
        ([response(0xB000)], True, "accepted", "status 0xB000 (warning)"),
        ([response(0x0000)], False, "answered", "status 0x0000 (success)"),
        ([response(0xFF00), response(0xFF00), response(0x0000)], False, "answered", "status 0x0000 (success)"),
        ([response(0xFF00)], False, "answered", "status 0xFF00 (pending), no final status before the deadline"),
        ([P.Pdu(0x04, 0xFFFFFFF0, b"")], False, "answered", "P-DATA-TF declaring 4294967280 bytes (not read)"),
        ([pdu_of(P.pdu(0x09, bytes(4)))], False, "answered", "PDU type 0x09 declaring 4 bytes"),
    ],
)
def test_read_reaction_classifies(items: list[P.Pdu | Ended], refusal: bool, kind: str, detail: str) -> None:
    reaction = read_reaction(Script(*items), 0.05, refusal_expected=refusal)
    assert (reaction.kind, reaction.detail) == (kind, detail)
    assert reaction.severity == SEVERITY[kind]


def test_a_command_split_over_pdvs_is_read_whole() -> None:
    whole = response(0xA700).body[6:]  # the command set, past the PDV header
    first = pdu_of(P.p_data(P.pdv(1, whole[:10], last=False)))
    second = pdu_of(P.p_data(P.pdv(1, b"\0\0", command=False, last=False), P.pdv(1, whole[10:])))
    assert read_reaction(Script(first, second), 0.05).detail == "status 0xA700 (failure)"


def test_reaction_kinds_when_and_severity_order() -> None:
    assert KINDS[:6] == ("answered", "rejected", "aborted", "released", "closed", "reset")
    with pytest.raises(ValueError, match="unknown reaction kind 'hung'"):
        Reaction("hung", "", 0.0)
    assert Reaction("closed", "EOF", 0.99).when == "immediate" and Reaction("closed", "EOF", 1.0).when == "delayed"
    aborted, silent, exited = Reaction("aborted", "", 0), Reaction("silent", "", 8), Reaction("exited", "", 1)
    assert aborted.worst(silent) is silent and silent.worst(aborted) is silent and silent.worst(exited) is exited
    assert aborted.worst(Reaction("closed", "", 0)) is aborted
    assert silent.to_json() == {"kind": "silent", "when": "delayed", "detail": "", "seconds": 8}


def test_silence_waits_its_deadline_and_no_more() -> None:
    started = time.monotonic()
    reaction = read_reaction(Script(), 0.2, started=started - 1.5)
    assert reaction.kind == "silent" and reaction.seconds >= 1.5  # measured from when the input went out
