"""PDU builders: valid forms decode with pynetdicom's PDU classes; each malformed input differs only where it says."""

from __future__ import annotations

import difflib
import struct
from io import BytesIO

import pytest
from pydicom.filereader import read_dataset
from pynetdicom.pdu import (
    A_ABORT_RQ,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    P_DATA_TF,
)

from simulators.attack import HASH_NEGOTIATED, Frames, NotApplicable, inputs
from simulators.attack import pdu as P
from simulators.attack.wire import Negotiated

BY_ID = {i.id: i for i in inputs(1422)}
N = HASH_NEGOTIATED
VALID_RQ = P.associate_rq(N.called, N.calling)
# Offsets in VALID_RQ: header 6 + fixed fields 68; the application context item (4 + 21); then context 1.
CONTEXT_AT = 6 + 68 + 4 + len(P.APPLICATION_CONTEXT)


def frames(input_id: str, negotiated: Negotiated = N) -> Frames:
    send = BY_ID[input_id].send(negotiated)
    assert isinstance(send, Frames), send
    return send


def sent(input_id: str, negotiated: Negotiated = N) -> bytes:
    return b"".join(frames(input_id, negotiated).parts)


def changes(a: bytes, b: bytes) -> list[tuple[str, int, int, bytes]]:
    """Each difference from `a` to `b`: (op, start, end in a, the bytes of b there)."""
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return [(op, i1, i2, b[j1:j2]) for op, i1, i2, j1, j2 in matcher.get_opcodes() if op != "equal"]


@pytest.mark.parametrize(
    ("cls", "data"),
    [
        (A_ASSOCIATE_RQ, P.associate_rq()),
        (A_ASSOCIATE_AC, P.associate_ac()),
        (A_ASSOCIATE_RJ, P.associate_rj(1, 2, 2)),
        (P_DATA_TF, P.p_data(P.pdv(1, b"abcd"), P.pdv(3, b"ef", command=False, last=False))),
        (A_RELEASE_RQ, P.release_rq()),
        (A_RELEASE_RP, P.release_rp()),
        (A_ABORT_RQ, P.abort(2, 1)),
    ],
)
def test_every_valid_default_decodes_with_pynetdicom_and_encodes_back_identically(cls: type, data: bytes) -> None:
    decoded = cls()
    decoded.decode(data)
    assert decoded.encode() == data


def test_the_valid_rq_carries_what_pynetdicom_reads() -> None:
    rq = A_ASSOCIATE_RQ()
    rq.decode(VALID_RQ)
    assert (rq.called_ae_title, rq.calling_ae_title, rq.protocol_version) == ("ANY-SCP", "PGATTACK", 1)
    assert rq.application_context_name == P.APPLICATION_CONTEXT
    [context] = rq.presentation_context
    assert (context.context_id, context.abstract_syntax, context.transfer_syntax) == (
        1,
        P.VERIFICATION,
        [P.IMPLICIT_VR_LE],
    )
    assert rq.user_information is not None and rq.user_information.maximum_length == 16384
    assert rq.user_information.implementation_class_uid == P.IMPLEMENTATION_CLASS_UID


def test_pdv_control_header_and_the_readers() -> None:
    body = P.p_data(P.pdv(1, b"cmd"), P.pdv(1, b"data", command=False, last=False))[6:]
    assert list(P.pdvs(body)) == [(1, 0x03, b"cmd"), (1, 0x00, b"data")]
    ac = P.associate_ac(contexts=P.presentation_context_ac(1) + P.presentation_context_ac(3, result=3))
    ac = ac[: 6 + 68] + ac[6 + 68 :].replace(P.maximum_length(), P.maximum_length(32768))
    assert P.accepted_contexts(ac[6:]) == {1: P.IMPLICIT_VR_LE}
    assert P.maximum_length_of(ac[6:]) == 32768


def test_truncated_rqs_are_the_valid_rqs_first_40_bytes() -> None:
    assert frames("pdu.rq.truncated-wait") == Frames((VALID_RQ[:40],))
    assert frames("pdu.rq.truncated-fin") == Frames((VALID_RQ[:40],), half_close=True)


def test_length_huge_differs_only_in_the_pdu_length() -> None:
    assert changes(VALID_RQ, sent("pdu.rq.length-huge")) == [("replace", 2, 6, b"\xff\xff\xff\xf0")]


def test_item_length_overrun_differs_only_in_the_context_items_length() -> None:
    assert changes(VALID_RQ, sent("pdu.rq.item-length-overrun")) == [
        ("replace", CONTEXT_AT + 2, CONTEXT_AT + 4, b"\xff\xf0")
    ]


def test_item_unknown_inserts_one_item_of_type_0x99_after_the_context() -> None:
    data = sent("pdu.rq.item-unknown")
    context_end = CONTEXT_AT + len(P.presentation_context_rq())
    assert data[:2] + data[6:context_end] + data[context_end + 12 :] == VALID_RQ[:2] + VALID_RQ[6:]
    assert data[context_end : context_end + 4] == b"\x99\x00\x00\x08"
    assert struct.unpack(">I", data[2:6])[0] == len(VALID_RQ) - 6 + 12


def test_version_0_differs_only_in_the_protocol_version() -> None:
    assert changes(VALID_RQ, sent("pdu.rq.version-0")) == [("replace", 7, 8, b"\x00")]


def test_no_context_is_the_valid_rq_without_its_context_item() -> None:
    data = sent("pdu.rq.no-context")
    item = P.presentation_context_rq()
    assert data[6:] == VALID_RQ[6:CONTEXT_AT] + VALID_RQ[CONTEXT_AT + len(item) :]
    assert struct.unpack(">I", data[2:6])[0] == len(data) - 6


def test_context_id_even_differs_only_in_the_context_id() -> None:
    assert changes(VALID_RQ, sent("pdu.rq.context-id-even")) == [("replace", CONTEXT_AT + 4, CONTEXT_AT + 5, b"\x02")]


def test_ae_blank_differs_only_in_the_ae_title_fields() -> None:
    data = sent("pdu.rq.ae-blank")
    assert len(data) == len(VALID_RQ) and data[10:42] == b" " * 32
    assert data[:10] + data[42:] == VALID_RQ[:10] + VALID_RQ[42:]


def test_oversized_is_a_well_formed_4_mib_rq_of_128_contexts() -> None:
    data = sent("pdu.rq.oversized")
    assert 4 * 1024 * 1024 <= len(data) <= 4 * 1024 * 1024 + 64 * 1024
    rq = A_ASSOCIATE_RQ()
    rq.decode(data)
    assert [c.context_id for c in rq.presentation_context] == list(range(1, 256, 2))
    assert all(c.abstract_syntax == P.VERIFICATION for c in rq.presentation_context)
    assert rq.user_information is not None and rq.user_information.maximum_length == 16384


def test_idle_pdus_are_what_their_ids_say() -> None:
    assert sent("pdu.type-unknown") == bytes([0x09, 0, 0, 0, 0, 4, 0, 0, 0, 0])
    assert sent("pdu.release-idle") == P.release_rq()
    ac = A_ASSOCIATE_AC()
    ac.decode(sent("pdu.ac-to-acceptor"))
    assert ac.encode() == sent("pdu.ac-to-acceptor")
    pdata = P_DATA_TF()
    pdata.decode(sent("pdu.pdata-idle"))
    [value] = pdata.presentation_data_value_items
    data = value.presentation_data_value
    assert data is not None and value.presentation_context_id == 1 and data[0] == 0x03  # command, last
    command = read_dataset(BytesIO(data[1:]), is_implicit_VR=True, is_little_endian=True)
    assert command.CommandField == 0x0030 and command.CommandDataSetType == 0x0101
    assert command.CommandGroupLength == len(data) - 1 - 12  # PS3.7 6.3.1


def test_context_unknown_differs_from_a_valid_echo_only_in_the_context_id() -> None:
    assert changes(sent("pdu.pdata-idle"), sent("pdu.pdata.context-unknown")) == [("replace", 10, 11, b"\xff")]


def test_pdv_overrun_declares_5000_in_a_pdu_of_10() -> None:
    assert sent("pdu.pdata.pdv-overrun") == bytes.fromhex("04 00 0000000a 00001388 01 03 00000000")


def test_data_first_is_a_data_fragment() -> None:
    pdata = P_DATA_TF()
    pdata.decode(sent("pdu.pdata.data-first"))
    data = pdata.presentation_data_value_items[0].presentation_data_value
    assert data is not None and data[0] == 0x02  # data, last


def test_over_max_is_four_times_the_announced_maximum_and_not_applicable_when_unlimited() -> None:
    data = sent("pdu.pdata.over-max")
    assert len(data) == 6 + 4 * 16384
    assert struct.unpack(">IBB", data[6:12]) == (4 * 16384 - 4, 1, 0x01)  # a command fragment, not the last
    small = sent("pdu.pdata.over-max", Negotiated(max_length=1000, accepted=(3,)))
    assert len(small) == 4006 and small[10] == 3
    assert isinstance(BY_ID["pdu.pdata.over-max"].send(Negotiated(max_length=0)), NotApplicable)


def test_associated_pdus_are_what_their_ids_say() -> None:
    assert sent("pdu.rq.twice") == VALID_RQ
    assert sent("pdu.release-twice") == P.release_rq() * 2
    assert sent("pdu.release-rp-unasked") == P.release_rp()


def test_every_pdu_input_with_an_ok_header_declares_its_own_length() -> None:
    # Only the inputs whose point is the length may lie about it.
    liars = {"pdu.rq.length-huge", "pdu.rq.truncated-wait", "pdu.rq.truncated-fin"}
    for item in BY_ID.values():
        if item.layer != "pdu" or item.id in liars:
            continue
        for part in frames(item.id).parts:
            at = 0
            while at < len(part):
                length = struct.unpack(">I", part[at + 2 : at + 6])[0]
                at += 6 + length
            assert at == len(part), item.id
