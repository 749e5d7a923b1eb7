"""simulators.audit: building and safely parsing DICOM audit messages, their conformance checks, syslog framing."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from simulators.audit.build import build_message
from simulators.audit.message import (
    APPLICATION_START,
    APPLICATION_STOP,
    EVENT_NAMES,
    ID_URI,
    LOGIN,
    LOGOUT,
    NODE_AUTHENTICATION,
    ROLE_APPLICATION,
    ROLE_DESTINATION,
    ROLE_SOURCE,
    ActiveParticipant,
    AuditMessageError,
    Code,
    ParticipantObject,
    event_code,
    patient,
    security_subject,
    sop_queried,
    study,
)
from simulators.audit.parse import parse_message
from simulators.audit.syslog import OctetCountingDecoder, octet_frame, parse_syslog, syslog_frame

STUDY_UID = "1.2.826.0.1.3680043.8.498.1"
FIND = "1.2.840.10008.5.1.4.1.2.2.1"
SOURCE = ActiveParticipant("MODALITY", True, (ROLE_SOURCE,), "127.0.0.1")
DESTINATION = ActiveParticipant("DEVICE", False, (ROLE_DESTINATION,), "localhost")
TRANSFER: dict[str, Any] = {"participants": [SOURCE, DESTINATION], "objects": [study(STUDY_UID), patient("PAT-1")]}
APP = [ActiveParticipant("DEVICE", False, (ROLE_APPLICATION,))]
# Each DCM event with the content PS3.15 A.5.3 makes mandatory for it.
EVENTS: dict[str, dict[str, Any]] = {
    "Application Activity": {"participants": APP, "event_types": [APPLICATION_START]},
    "Audit Log Used": {
        "action": "R",
        "participants": [SOURCE],
        "objects": [ParticipantObject("file:///var/log/audit", 2, 13, ID_URI)],
    },
    "Begin Transferring DICOM Instances": TRANSFER,
    "DICOM Instances Accessed": {"action": "R", **TRANSFER},
    "DICOM Instances Transferred": {"action": "C", **TRANSFER},
    "DICOM Study Deleted": {"action": "D", **TRANSFER},
    "Export": {"action": "R", **TRANSFER},
    "Import": {"action": "C", **TRANSFER},
    "Network Entry": {"participants": APP, "event_types": [Code("110124", "DCM", "Attach")]},
    "Order Record": {"action": "C", "participants": [SOURCE], "objects": [patient("PAT-1")]},
    "Patient Record": {"action": "U", "participants": [SOURCE], "objects": [patient("PAT-1", "Doe^Jane")]},
    "Procedure Record": {"action": "R", "participants": [SOURCE], "objects": [patient("PAT-1")]},
    "Query": {"participants": [SOURCE, DESTINATION], "objects": [sop_queried(FIND, b"\x08\x00\x52\x00")]},
    "Security Alert": {
        "outcome": 4,
        "participants": [DESTINATION],
        "objects": [security_subject("127.0.0.1")],
        "event_types": [NODE_AUTHENTICATION],
        "outcome_description": "TLS client certificate not trusted",
    },
    "User Authentication": {"participants": [SOURCE], "event_types": [LOGIN]},
}


def _build(event: str, **changes: Any) -> bytes:
    return build_message(event, source_id="DEVICE", **{**EVENTS[event], **changes})


def test_every_event_is_covered() -> None:
    assert sorted(EVENT_NAMES.values()) == sorted(EVENTS)


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_built_event_parses_without_problems(event: str) -> None:
    message = parse_message(_build(event))
    assert message.problems() == ()
    assert message.event_name == event
    assert message.event_id == Code(event_code(event), "DCM", event)
    assert message.audit_source_id == "DEVICE"
    spec = EVENTS[event]
    assert message.event_action_code == spec.get("action", "E")
    assert message.event_outcome_indicator == spec.get("outcome", 0)
    assert message.active_participants == tuple(spec["participants"])
    assert message.participant_objects == tuple(spec.get("objects", ()))
    assert message.event_type_codes == tuple(spec.get("event_types", ()))
    assert message.outcome_description == spec.get("outcome_description", "")


@pytest.mark.parametrize(
    ("event", "types"),
    [("Application Activity", [APPLICATION_STOP]), ("User Authentication", [LOGOUT])],
)
def test_stop_and_logout_variants(event: str, types: list[Code]) -> None:
    assert parse_message(_build(event, event_types=types)).problems() == ()


def test_event_by_code_or_name_and_time() -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=timezone(timedelta(hours=2)))
    by_code = parse_message(build_message("110112", source_id="D", when=when, **EVENTS["Query"]))
    by_name = parse_message(build_message("query", source_id="D", when=when, **EVENTS["Query"]))
    assert by_code == by_name
    assert by_code.event_datetime == "2024-05-06T07:08:09.123+02:00"
    utc = parse_message(_build("Query", when=datetime(2024, 1, 1, tzinfo=UTC)))
    assert utc.event_datetime == "2024-01-01T00:00:00.000Z"


def test_build_refuses_unknown_event_and_naive_time() -> None:
    with pytest.raises(ValueError, match=r"unknown audit event 'Backup'.*110100 Application Activity"):
        build_message("Backup", source_id="D", participants=APP)
    with pytest.raises(ValueError, match="no time zone"):
        _build("Query", when=datetime(2024, 1, 1))


def test_unknown_event_code_gets_general_checks_only() -> None:
    xml = _build("Query").replace(b'csd-code="110112"', b'csd-code="999999"', 1)
    message = parse_message(xml)
    assert message.event_name == "Query"  # the message's own meaning text
    assert message.problems() == ()


# -- mandatory fields ------------------------------------------------------------------------

Mutation = Callable[[ET.Element], None]


def _drop_attr(path: str, attr: str) -> Mutation:
    def mutate(root: ET.Element) -> None:
        element = root.find(path)
        assert element is not None, path
        del element.attrib[attr]

    return mutate


def _set_attr(path: str, attr: str, value: str) -> Mutation:
    def mutate(root: ET.Element) -> None:
        element = root.find(path)
        assert element is not None, path
        element.set(attr, value)

    return mutate


def _drop(parent: str, child: str) -> Mutation:
    def mutate(root: ET.Element) -> None:
        holder = root if parent == "." else root.find(parent)
        assert holder is not None, parent
        found = holder.findall(child)
        assert found, child
        for element in found:
            holder.remove(element)

    return mutate


def _mutated(event: str, mutate: Mutation, **changes: Any) -> bytes:
    root = ET.fromstring(_build(event, **changes))
    mutate(root)
    return bytes(ET.tostring(root, encoding="utf-8"))


EI = "EventIdentification"
STUDY_OBJ = "ParticipantObjectIdentification[1]"


@pytest.mark.parametrize(
    ("event", "mutate", "expected"),
    [
        ("Query", _drop_attr(EI, "EventActionCode"), "EventActionCode missing"),
        ("Query", _set_attr(EI, "EventActionCode", "X"), "EventActionCode 'X' is not one of C, R, U, D, E"),
        ("Query", _drop_attr(EI, "EventDateTime"), "EventDateTime missing"),
        ("Query", _set_attr(EI, "EventDateTime", "yesterday"), "EventDateTime 'yesterday' is not an xs:dateTime"),
        ("Query", _set_attr(EI, "EventDateTime", "2024-01-01T10:00:00"), "has no time zone (PS3.15 A.5.2.5)"),
        ("Query", _drop_attr(EI, "EventOutcomeIndicator"), "EventOutcomeIndicator missing or not an integer"),
        ("Query", _set_attr(EI, "EventOutcomeIndicator", "5"), "EventOutcomeIndicator 5 is not one of 0, 4, 8, 12"),
        ("Query", _drop_attr(f"{EI}/EventID", "codeSystemName"), "EventID has no codeSystemName"),
        ("User Authentication", _drop(".", "ActiveParticipant"), "no ActiveParticipant"),
        ("Query", _drop_attr("ActiveParticipant[2]", "UserID"), "ActiveParticipant 2: UserID missing"),
        ("Query", _drop_attr("ActiveParticipant", "UserIsRequestor"), "ActiveParticipant 1: UserIsRequestor missing"),
        ("Query", _set_attr("ActiveParticipant", "UserIsRequestor", "yes"), "UserIsRequestor missing or not a boolean"),
        ("Query", _drop_attr("AuditSourceIdentification", "AuditSourceID"), "AuditSourceID missing"),
        ("Query", _drop(".", "AuditSourceIdentification"), "AuditSourceIdentification/AuditSourceID missing"),
        (
            "Import",
            _drop_attr(STUDY_OBJ, "ParticipantObjectID"),
            "ParticipantObjectIdentification 1: ParticipantObjectID",
        ),
        ("Import", _drop(STUDY_OBJ, "ParticipantObjectIDTypeCode"), "1: ParticipantObjectIDTypeCode missing"),
        # Per event (PS3.15 A.5.3)
        ("Application Activity", _drop(EI, "EventTypeCode"), 'EventTypeCode (110120, DCM, "Application Start") or'),
        ("Application Activity", _drop("ActiveParticipant", "RoleIDCode"), "RoleIDCode (110150, DCM"),
        ("User Authentication", _drop(EI, "EventTypeCode"), "User Authentication: EventTypeCode (110122"),
        ("Security Alert", _drop(EI, "EventTypeCode"), "Security Alert: EventTypeCode missing"),
        ("Network Entry", _drop(EI, "EventTypeCode"), "Network Entry: EventTypeCode (110124"),
        ("Begin Transferring DICOM Instances", _drop(".", STUDY_OBJ), "no participant object for the study"),
        ("DICOM Instances Transferred", _drop(".", STUDY_OBJ), "no participant object for the study"),
        ("DICOM Instances Transferred", _drop(".", "ParticipantObjectIdentification[2]"), "for the patient"),
        (
            "DICOM Instances Transferred",
            _drop("ActiveParticipant[1]", "RoleIDCode"),
            'RoleIDCode (110153, DCM, "Source',
        ),
        ("DICOM Instances Transferred", _drop("ActiveParticipant[2]", "RoleIDCode"), "RoleIDCode (110152"),
        (
            "DICOM Instances Transferred",
            _set_attr(EI, "EventActionCode", "E"),
            "EventActionCode 'E' is not C or R or U",
        ),
        ("DICOM Instances Transferred", _set_attr(STUDY_OBJ, "ParticipantObjectTypeCode", "1"), "TypeCode is 1, not 2"),
        ("DICOM Instances Transferred", _set_attr(STUDY_OBJ, "ParticipantObjectTypeCodeRole", "x"), "is None, not 3"),
        ("DICOM Study Deleted", _set_attr(EI, "EventActionCode", "R"), "EventActionCode 'R' is not D"),
        ("Query", _drop(STUDY_OBJ, "ParticipantObjectQuery"), "Query: SOP class queried has no ParticipantObjectQuery"),
        ("Query", _drop(".", STUDY_OBJ), "Query: no participant object for the SOP class queried"),
        ("Audit Log Used", _drop(".", STUDY_OBJ), "no participant object for the audit log"),
        ("Patient Record", _drop(".", STUDY_OBJ), "Patient Record: no participant object for the patient"),
    ],
)
def test_each_missing_mandatory_field_is_reported(event: str, mutate: Mutation, expected: str) -> None:
    assert parse_message(_build(event)).problems() == ()  # the mutation alone makes the difference
    problems = parse_message(_mutated(event, mutate)).problems()
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (_drop(".", EI), "missing EventIdentification"),
        (_drop(EI, "EventID"), "missing EventIdentification/EventID"),
        (_drop_attr(f"{EI}/EventID", "csd-code"), "missing EventIdentification/EventID/@csd-code"),
    ],
)
def test_message_without_event_id_is_unreadable(mutate: Mutation, reason: str) -> None:
    with pytest.raises(AuditMessageError) as caught:
        parse_message(_mutated("Query", mutate))
    assert caught.value.reason == reason


def test_rfc3881_spelling_and_namespaces_are_read() -> None:
    xml = (
        '<a:AuditMessage xmlns:a="urn:x"><a:EventIdentification EventActionCode="E" '
        'EventDateTime="2024-01-01T00:00:00Z" EventOutcomeIndicator="0">'
        '<a:EventID code="110114" codeSystemName="DCM" displayName="User Authentication"/>'
        '<a:EventTypeCode code="110122" codeSystemName="DCM" displayName="Login"/></a:EventIdentification>'
        '<a:ActiveParticipant UserID="u" UserIsRequestor="1"/><a:AuditSourceIdentification AuditSourceID="s"/>'
        "</a:AuditMessage>"
    )
    message = parse_message(xml.encode())
    assert message.event_name == "User Authentication"
    assert message.event_type_codes == (Code("110122", "DCM", "Login"),)
    assert message.active_participants == (ActiveParticipant("u", True),)
    assert message.problems() == ()


# -- untrusted bytes -------------------------------------------------------------------------

BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10))
    + b"]><AuditMessage>&lol9;</AuditMessage>"
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE AuditMessage [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b'<AuditMessage><EventIdentification><EventID csd-code="&xxe;"/></EventIdentification></AuditMessage>'
)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"x" * 70000, "oversized (70000 > 65536 bytes)"),
        (b"<AuditMessage>\xff</AuditMessage>", "not UTF-8 at byte 14"),
        (b"\xef\xbb\xbf<a>\xc3</a>", "not UTF-8 at byte 6"),
        (b"", "empty message"),
        (b"   \n", "empty message"),
        (b"hello, audit", "not XML: syntax error: line 1, column 0"),
        (b"<AuditMessage><EventIdentification", "not XML: unclosed token: line 1, column 14"),
        (b"<AuditMessage>&foo;</AuditMessage>", "not XML: undefined entity: line 1, column 14"),
        (b"<Other/>", "root element is <Other>, not <AuditMessage>"),
        (BOMB, "forbidden XML construct: entity declaration"),
        (XXE, "forbidden XML construct: external entity declaration"),
        (b'<!DOCTYPE AuditMessage SYSTEM "http://127.0.0.1:9/x.dtd"><AuditMessage/>', "DTD with an external reference"),
        (b"<!DOCTYPE AuditMessage><AuditMessage/>", "forbidden XML construct: DTD"),
    ],
)
def test_unusable_bytes_raise_with_a_stable_reason(data: bytes, reason: str) -> None:
    with pytest.raises(AuditMessageError) as caught:
        parse_message(data)
    assert reason in caught.value.reason
    assert str(caught.value) == caught.value.reason


def test_size_is_checked_before_decoding_and_limit_is_inclusive() -> None:
    xml = _build("Query")
    assert parse_message(xml, max_bytes=len(xml)).problems() == ()
    with pytest.raises(AuditMessageError, match=rf"oversized \({len(xml)} > {len(xml) - 1} bytes\)"):
        parse_message(xml, max_bytes=len(xml) - 1)
    with pytest.raises(AuditMessageError, match="oversized"):
        parse_message(b"\xff" * 11, max_bytes=10)  # not "not UTF-8": size first


def test_truncated_message_is_not_xml() -> None:
    xml = _build("Query")
    with pytest.raises(AuditMessageError, match=r"^not XML: "):
        parse_message(xml[: len(xml) // 2])


def test_utf8_bom_and_non_ascii_content() -> None:
    xml = build_message("Patient Record", source_id="Gerät-7", **EVENTS["Patient Record"])
    message = parse_message(b"\xef\xbb\xbf" + xml)
    assert message.audit_source_id == "Gerät-7"
    assert message.participant_objects[0].name == "Doe^Jane"


# -- syslog ------------------------------------------------------------------------------------


def test_syslog_frame_round_trip() -> None:
    xml = _build("Security Alert")
    when = datetime(2024, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    frame = syslog_frame(xml, app_name="refdev", hostname="bench-1", procid="42", when=when)
    assert frame.startswith(b"<85>1 2024-03-04T05:06:07.890123Z bench-1 refdev 42 DICOM+RFC3881 - \xef\xbb\xbf<?xml")
    header, msg = parse_syslog(frame)
    assert (header.facility, header.severity, header.version) == (10, 5, 1)
    assert (header.timestamp, header.hostname, header.app_name) == ("2024-03-04T05:06:07.890123Z", "bench-1", "refdev")
    assert (header.procid, header.msgid, header.structured_data) == ("42", "DICOM+RFC3881", "-")
    assert msg == xml
    assert parse_message(msg).event_name == "Security Alert"


def test_syslog_priority_and_defaults() -> None:
    header, _ = parse_syslog(syslog_frame(b"<x/>", facility=13, severity=6))
    assert (header.facility, header.severity, header.app_name, header.hostname) == (13, 6, "patchgate", "localhost")
    assert re.fullmatch(r"\d+", header.procid)


@pytest.mark.parametrize(
    ("data", "sd", "msg"),
    [
        (b'<14>1 - - - - - [id@1 a="x\\]y" b="\\"q\\""][id2] hello', '[id@1 a="x\\]y" b="\\"q\\""][id2]', b"hello"),
        (b"<0>1 2024-01-01T00:00:00+01:00 h a p m -", "-", b""),
        (b"<191>1 - h a p m - \xef\xbb\xbf", "-", b""),
    ],
)
def test_syslog_structured_data_and_empty_msg(data: bytes, sd: str, msg: bytes) -> None:
    header, body = parse_syslog(data)
    assert header.structured_data == sd
    assert body == msg


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", "does not start with <PRI>VERSION"),
        (b"Jan  1 00:00:00 host app: <AuditMessage/>", "does not start with <PRI>VERSION"),  # RFC 3164
        (b"<192>1 - h a p m - x", "PRI 192 out of range"),
        (b"<85>2 - h a p m - x", "VERSION 2 is not 1"),
        (b"<85>1 yesterday h a p m - x", "TIMESTAMP 'yesterday' is not RFC 3339"),
        (b"<85>1 - h a p", "PROCID missing"),
        (b"<85>1 - h " + b"a" * 49 + b" p m - x", "APP-NAME missing, over 48 characters"),
        (b"<85>1 - h\xc3\xa9 a p m - x", "HOSTNAME missing"),
        (b"<85>1 - h a p m x", "STRUCTURED-DATA missing"),
        (b'<85>1 - h a p m [id a="]', "unterminated STRUCTURED-DATA"),
        (b"<85>1 - h a p m -x", "no space between STRUCTURED-DATA and MSG"),
    ],
)
def test_malformed_syslog_header(data: bytes, detail: str) -> None:
    with pytest.raises(AuditMessageError) as caught:
        parse_syslog(data)
    assert caught.value.reason.startswith("malformed syslog header: ")
    assert detail in caught.value.reason


@pytest.mark.parametrize(
    "kwargs",
    [{"facility": 24}, {"severity": 8}, {"app_name": "has space"}, {"msgid": "m" * 33}, {"hostname": ""}],
)
def test_syslog_frame_refuses_bad_fields(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="syslog"):
        syslog_frame(b"<x/>", **kwargs)


# -- octet counting (RFC 5425) -------------------------------------------------------------------


def test_octet_counting_whole_split_and_joined() -> None:
    messages = [b"first message", b"x", b"third \n with 12 spaces" * 50]
    stream = b"".join(octet_frame(m) for m in messages)
    assert octet_frame(b"abc") == b"3 abc"
    assert OctetCountingDecoder().feed(stream) == messages  # joined in one chunk
    decoder = OctetCountingDecoder()
    out: list[bytes] = []
    for i in range(len(stream)):  # one byte at a time: prefix and body both split
        out += decoder.feed(stream[i : i + 1])
    assert out == messages
    assert decoder.pending == 0
    decoder.eof()  # clean end
    decoder = OctetCountingDecoder()
    assert decoder.feed(stream[:7]) == []
    assert decoder.feed(stream[7:17]) == [messages[0]]  # ends inside the next prefix
    assert decoder.feed(stream[17:]) == messages[1:]


def test_octet_counting_limit_is_inclusive() -> None:
    decoder = OctetCountingDecoder(limit=10)
    assert decoder.feed(b"10 0123456789") == [b"0123456789"]
    with pytest.raises(AuditMessageError, match=r"^oversized frame \(11 > 10 bytes\)$"):
        OctetCountingDecoder(limit=10).feed(b"11 ")


@pytest.mark.parametrize(
    ("chunks", "reason"),
    [
        ([b"hello world"], "bad octet-counting length prefix b'hello world'"),
        ([b" 12 x"], "bad octet-counting length prefix"),
        ([b"012 x"], "bad octet-counting length prefix"),
        ([b"0 "], "bad octet-counting length prefix"),
        ([b"-1 x"], "bad octet-counting length prefix"),
        ([b"1", b"2x"], "bad octet-counting length prefix b'12x'"),
        ([b"<85>1 - h a p m - x"], "bad octet-counting length prefix"),  # non-transparent framing
        ([b"70000 "], "oversized frame (70000 > 65536 bytes)"),
        ([b"999999"], "oversized frame (length prefix 999999... > 65536 bytes)"),
        ([b"99999999999999999999999999 "], "oversized frame (length prefix"),
        ([b"3 abc", b"4 abcd", b"x"], "bad octet-counting length prefix b'x'"),
    ],
)
def test_octet_counting_bad_prefix(chunks: list[bytes], reason: str) -> None:
    decoder = OctetCountingDecoder()
    with pytest.raises(AuditMessageError) as caught:
        for chunk in chunks:
            decoder.feed(chunk)
    assert reason in caught.value.reason
    with pytest.raises(AuditMessageError, match=re.escape(caught.value.reason)):
        decoder.feed(b"3 abc")  # lost framing stays lost


def test_octet_counting_buffer_is_bounded() -> None:
    decoder = OctetCountingDecoder(limit=100)
    decoder.feed(b"100 " + b"a" * 99)
    assert decoder.pending == 99
    assert decoder.feed(b"a" + b"5 ") == [b"a" * 100]
    assert decoder.pending == 0  # the next prefix is parsed, its body not yet here


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"10 abc", "truncated frame (connection closed after 3 of 10 bytes)"),
        (b"12", "truncated frame (connection closed inside the length prefix b'12')"),
    ],
)
def test_octet_counting_eof_inside_a_frame(data: bytes, reason: str) -> None:
    decoder = OctetCountingDecoder()
    assert decoder.feed(data) == []
    with pytest.raises(AuditMessageError) as caught:
        decoder.eof()
    assert caught.value.reason == reason
