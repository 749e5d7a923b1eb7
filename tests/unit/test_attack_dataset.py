"""Raw data set encoders and the corpus's data set inputs: lengths, VR forms, delimiters, what pydicom reads back."""

from __future__ import annotations

import struct
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset

from simulators.attack import HASH_NEGOTIATED, MAX_SENT, Message, inputs, send_bytes
from simulators.attack import dataset as D
from simulators.attack.wire import encode_command

# Reading the hostile values back is the point: pydicom's warnings about them are expected.
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI", "ignore:Unknown encoding")
BY_ID = {i.id: i for i in inputs(1422)}
ITEM_END = bytes.fromhex("feff0de0 00000000")  # (FFFE,E00D), length 0, little endian
SEQ_END = bytes.fromhex("feffdde0 00000000")  # (FFFE,E0DD)


def message(input_id: str) -> Message:
    send = BY_ID[input_id].send(HASH_NEGOTIATED)
    assert isinstance(send, Message), send
    return send


def read(data: bytes, *, implicit: bool = True) -> Dataset:
    return read_dataset(BytesIO(data), is_implicit_VR=implicit, is_little_endian=True)


def test_implicit_element_is_tag_length_value_little_endian() -> None:
    assert D.implicit(0x00100010, b"AB") == bytes.fromhex("1000 1000 02000000") + b"AB"
    assert D.implicit(0x00100010, b"AB", length=0x7FFFFFF0)[4:8] == bytes.fromhex("f0ffff7f")


def test_explicit_element_short_and_long_forms() -> None:
    assert D.explicit(0x00100020, "LO", b"ID") == bytes.fromhex("1000 2000") + b"LO" + bytes.fromhex("0200") + b"ID"
    assert (
        D.explicit(0x00091000, "OB", b"\x01\x02")
        == bytes.fromhex("0900 0010") + b"OB\0\0" + bytes.fromhex("02000000") + b"\x01\x02"
    )
    assert D.explicit(0x00100020, "ZZ", b"ID")[4:8] == b"ZZ\x02\x00"  # an unknown VR gets the short form
    assert D.explicit(0x00100020, "ZZ", b"ID", long=True)[4:12] == b"ZZ\0\0\x02\0\0\0"


@pytest.mark.parametrize(("vr", "pad"), [("UI", b"\0"), ("OB", b"\0"), ("PN", b" "), ("CS", b" ")])
def test_padded_to_even_length_with_the_vrs_pad(vr: str, pad: bytes) -> None:
    assert D.padded("1.2.3", vr) == b"1.2.3" + pad
    assert D.padded("1.23", vr) == b"1.23"


def test_sequences_undefined_and_defined_with_their_delimiters() -> None:
    content = D.element(0x0040A040, "CS", "TEXT")
    undefined = D.sequence(0x0040A730, [D.sequence_item(content)])
    assert undefined[4:8] == b"\xff\xff\xff\xff" and undefined.endswith(ITEM_END + SEQ_END)
    assert undefined[8:16] == bytes.fromhex("feff00e0 ffffffff")
    defined = D.sequence(0x0040A730, [D.sequence_item(content, undefined=False)], undefined=False)
    assert struct.unpack("<I", defined[4:8])[0] == len(defined) - 8 and ITEM_END not in defined
    assert read(undefined).ContentSequence[0].ValueType == "TEXT"
    assert read(defined).ContentSequence[0].ValueType == "TEXT"
    unterminated = D.sequence(0x0040A730, [D.sequence_item(content, terminated=False)], terminated=False)
    assert ITEM_END not in unterminated and SEQ_END not in unterminated


def test_nested_sequences_are_balanced_and_read_back_to_their_depth() -> None:
    data = D.nested(0x0040A730, 5000)
    assert data.count(ITEM_END) == 5000 and data.count(SEQ_END) == 5000 and len(data) == 5000 * 32
    ds = read(D.nested(0x0040A730, 3, D.element(0x0040A040, "CS", "LEAF")))
    assert ds.ContentSequence[0].ContentSequence[0].ContentSequence[0].ValueType == "LEAF"


def test_the_valid_store_data_set_reads_back_as_a_secondary_capture() -> None:
    m = message("ds.store.uid-mismatch")  # its data set is the valid one; only the command disagrees
    ds = read(m.data)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and ds.PatientName == "ATTACK^CORPUS"
    assert ds.SOPInstanceUID != m.command.AffectedSOPInstanceUID
    assert len(m.data) % 2 == 0


def test_data_set_inputs_break_exactly_what_their_ids_say() -> None:
    overrun = message("ds.store.length-overrun").data
    assert overrun.endswith(bytes.fromhex("1000 1000 f0ffff7f") + b"XX")
    odd = message("ds.store.length-odd").data
    assert bytes.fromhex("1000 2000 09000000") + b"PGATTACK1" in odd and len(odd) % 2 == 1
    assert bytes.fromhex("1000 2000") + b"ZZ" in message("ds.store.vr-unknown").data
    assert read(message("ds.store.vr-mismatch").data, implicit=False)[0x00100010].VR == "US"
    unterminated = message("ds.store.sq-unterminated").data
    assert unterminated.endswith(D.element(0x0040A040, "CS", "TEXT")) and SEQ_END not in unterminated
    assert message("ds.find.nesting-5000").data.count(SEQ_END) == 5000
    assert read(message("ds.store.charset-unknown").data).SpecificCharacterSet == "ISO_IR 999"
    lie = read(message("ds.store.pixel-lie").data)
    assert (lie.Rows, lie.Columns, lie.BitsAllocated, len(lie.PixelData)) == (512, 512, 16, 16)


def test_hostile_uids_are_in_the_command_and_the_data_set() -> None:
    for input_id, uid in (("ds.store.uid-dotdot", "../../etc/passwd"), ("ds.store.uid-slash", "1.2/3.4")):
        m = message(input_id)
        assert m.command.AffectedSOPInstanceUID == uid and read(m.data).SOPInstanceUID == uid
    long_uid = message("ds.store.uid-long").command.AffectedSOPInstanceUID
    assert len(long_uid) == 200 and set(long_uid) <= set("0123456789.")
    assert read(message("ds.find.uid-dotdot").data).StudyInstanceUID == "../../etc/passwd"


def test_the_find_identifier_is_a_universal_study_query() -> None:
    m = message("ds.find.uid-slash")
    ds = read(m.data)
    assert ds.QueryRetrieveLevel == "STUDY" and ds.StudyInstanceUID == "1.2/3.4" and ds.PatientName == ""
    assert m.command.CommandField == 0x0020 and m.command.AffectedSOPClassUID == "1.2.840.10008.5.1.4.1.2.2.1"


def test_huge_values_stay_within_the_bound() -> None:
    huge = message("ds.store.value-huge")
    assert MAX_SENT - 64 * 1024 < len(huge.data) <= MAX_SENT
    assert len(message("ds.find.value-huge").data) > 1 << 20
    assert all(len(send_bytes(i.send(HASH_NEGOTIATED))) <= MAX_SENT + 1024 for i in BY_ID.values())


def test_the_command_set_has_its_group_length_first() -> None:
    raw = encode_command(message("ds.store.uid-dotdot").command)
    assert raw[:8] == bytes.fromhex("0000 0000 04000000") and struct.unpack("<I", raw[8:12])[0] == len(raw) - 12
    command = read(raw)
    assert command.CommandField == 0x0001 and command.CommandDataSetType == 0x0000 and command.MessageID == 1
