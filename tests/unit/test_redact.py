"""Redaction: a profile's secrets never reach a manifest, a comparison or a report as they are."""

from __future__ import annotations

import json
from pathlib import Path

from harness.demo import demo_profile
from harness.model import Manifest, RunSetup, RunStatus, to_json
from harness.redact import MASK, redact, redact_file
from tests.factories import make_manifest

SECRET = "hunter2"


def test_each_occurrence_in_text_is_masked() -> None:
    assert redact(f"dev --password {SECRET} --again={SECRET}", [SECRET]) == "dev --password *** --again=***"


def test_a_secret_that_holds_another_is_masked_whole() -> None:
    assert redact("key=abcdef", ["abc", "abcdef"]) == f"key={MASK}"
    assert redact("key=abcdef", ["abcdef", "abc"]) == f"key={MASK}"


def test_nothing_to_mask_returns_the_value_itself() -> None:
    value = {"a": ["b"]}
    assert redact(value, []) is value
    assert redact(value, [""]) is value  # an empty secret would match everywhere
    assert redact("plain", [SECRET]) == "plain"


def test_json_values_keep_their_shape_and_types() -> None:
    value = {
        "argv": ["dev", f"--pw={SECRET}"],
        "pair": ("x", SECRET),
        SECRET: 1,
        "n": 3,
        "ok": True,
        "none": None,
        "nested": {"deep": [SECRET]},
    }
    assert redact(value, [SECRET]) == {
        "argv": ["dev", "--pw=***"],
        "pair": ("x", MASK),
        MASK: 1,
        "n": 3,
        "ok": True,
        "none": None,
        "nested": {"deep": [MASK]},
    }


def test_json_text_is_masked_where_json_escapes_the_secret() -> None:
    secret = 'p"a\\ss\u00e9\n'  # a quote, a backslash, a non-ASCII letter and a newline: JSON escapes each
    for ensure_ascii in (True, False):
        text = json.dumps({"command": ["dev", secret]}, ensure_ascii=ensure_ascii)
        assert json.loads(redact(text, [secret])) == {"command": ["dev", MASK]}


def test_a_run_setup_keeps_its_type_with_the_command_masked() -> None:
    setup = RunSetup(description="patched", backend="local", command=("dev", "--identity-secret", SECRET))
    redacted = redact(setup, [SECRET])
    assert isinstance(redacted, RunSetup)
    assert redacted.command == ("dev", "--identity-secret", MASK)
    assert redacted.description == "patched" and redacted.backend == "local"


def test_nothing_of_a_secret_is_left_in_a_manifest_as_json() -> None:
    profile = demo_profile()
    secrets = profile.device.secret_values
    command = ("python", "-m", "device", "--passcode", profile.device.identity["passcode"])
    manifest = make_manifest(
        "candidate",
        1,
        status=RunStatus.DEVICE_FAILED,
        status_detail=f"device said: bad token {profile.device.identity['jwt']}",
        extra=RunSetup(backend="local", command=command),
    )
    redacted = redact(manifest, secrets)
    assert isinstance(redacted, Manifest) and redacted.status is RunStatus.DEVICE_FAILED
    text = json.dumps(to_json(redacted))
    for secret in secrets:
        assert secret not in text
    assert Manifest.from_json(json.loads(text)) == redacted  # still a manifest a comparison can read
    assert redacted.status_detail == f"device said: bad token {MASK}"


def test_a_file_is_masked_in_place_keeping_its_other_bytes_and_mode(tmp_path: Path) -> None:
    log = tmp_path / "device.log"
    log.write_bytes(b"start \xff\xfe\n" + f"login {SECRET} ok\n".encode() + b'{"pw": "hunter2"}\n')
    log.chmod(0o640)
    assert redact_file(log, [SECRET]) is True
    assert log.read_bytes() == b'start \xff\xfe\nlogin *** ok\n{"pw": "***"}\n'
    assert log.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["device.log"]  # no temporary file left behind


def test_a_file_without_secrets_is_left_untouched(tmp_path: Path) -> None:
    log = tmp_path / "pacs.log"
    log.write_text("nothing to hide\n", encoding="utf-8")
    before = log.stat().st_mtime_ns
    assert redact_file(log, [SECRET]) is False
    assert redact_file(log, []) is False
    assert redact_file(tmp_path / "missing.log", [SECRET]) is False
    assert log.stat().st_mtime_ns == before and log.read_text(encoding="utf-8") == "nothing to hide\n"
