"""Profile loading: good profiles parse; every bad one names the file, the line and the key, all problems at once."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.demo import demo_profile, demo_text, reference_text
from harness.errors import ProfileError
from harness.model import DiffKind, Verdict
from harness.profile import ExpectedChange, load_profile, parse_profile, profile_json_schema
from harness.profile._locate import Locator

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
[device]
name = "dev"
ae_title = "DEV"
services = ["echo", "store"]

[variants.baseline]
command = ["dev", "--port", "{port}"]

[variants.candidate]
command = ["dev-patched", "--port", "{port}"]
"""


def _problems(text: str, source: str = "/tmp/dev.toml") -> str:
    with pytest.raises(ProfileError) as info:
        parse_profile(text, source)
    return info.value.one_line()


def test_good_profile_parses_with_defaults_from_the_dataclasses() -> None:
    profile = parse_profile(GOOD, "/tmp/dev.toml")
    assert profile.device.ae_title == "DEV"
    assert profile.device.services == ("echo", "store")
    assert profile.device.start_timeout == 20.0
    assert profile.variant("candidate").command[0] == "dev-patched"
    assert profile.variant("candidate").name == "candidate"
    assert profile.simulators["pacs"].ae_title == "PGPACS"
    assert (profile.modality_ae_title, profile.corpus_seed, profile.suite_timeout) == ("PGMODALITY", 1422, 600.0)


def test_the_ris_runs_when_declared_or_when_the_device_queries_or_reports_to_one() -> None:
    assert parse_profile(GOOD, "/tmp/dev.toml").ris_simulator is None
    assert list(parse_profile(GOOD, "/tmp/dev.toml").simulators) == ["pacs"]
    declared = parse_profile("[simulators.ris]\nport = 11112\n" + GOOD, "/tmp/dev.toml")
    assert declared.ris_simulator is not None
    assert (declared.ris_simulator.ae_title, declared.ris_simulator.port) == ("PGRIS", 11112)
    assert list(declared.simulators) == ["pacs", "ris"]
    for role in ("mwl", "mpps"):
        initiator = parse_profile(GOOD.replace('name = "dev"', f'name = "dev"\ninitiates = ["{role}"]'), "/tmp/d.toml")
        assert initiator.ris is None and initiator.ris_simulator is not None  # a default RIS: it needs someone to ask
    sender = parse_profile(GOOD.replace('name = "dev"', 'name = "dev"\ninitiates = ["store"]'), "/tmp/d.toml")
    assert sender.ris_simulator is None


def test_the_pacs_commitment_keys_default_to_the_simulators_own() -> None:
    pacs = parse_profile(GOOD, "/tmp/dev.toml").pacs
    assert (pacs.ae_title, pacs.commitment_report, pacs.commitment_delay) == ("PGPACS", "auto", 0.2)
    text = '[simulators.pacs]\ncommitment_report = "new"\ncommitment_delay = 1\n' + GOOD
    pacs = parse_profile(text, "/tmp/dev.toml").pacs
    assert (pacs.commitment_report, pacs.commitment_delay) == ("new", 1.0)


def test_expected_entries_are_typed_records_with_their_line() -> None:
    text = GOOD + '\n[[expected]]\ncase = "a/*"\npath = "x.*"\nreason = " why "\nkind = "status_changed"\n'
    (entry,) = parse_profile(text, "/tmp/dev.toml").expected
    assert entry == ExpectedChange("a/*", "x.*", "why", DiffKind.STATUS_CHANGED)
    assert entry.where == "/tmp/dev.toml:12"


def test_policy_may_be_one_file_or_several(tmp_path: Path) -> None:
    assert parse_profile(GOOD, str(tmp_path / "dev.toml")).policy_files == ()
    text = 'policy = "p.toml"\n' + GOOD
    assert parse_profile(text, str(tmp_path / "dev.toml")).policy_files == (str(tmp_path / "p.toml"),)
    text = 'policy = ["p.toml", "q/r.toml"]\n' + GOOD
    assert parse_profile(text, str(tmp_path / "dev.toml")).policy_files[1] == str(tmp_path / "q" / "r.toml")


def test_reference_profile_is_the_packaged_file() -> None:
    on_disk = ROOT / "devices" / "reference" / "profile.toml"
    assert on_disk.resolve() == (ROOT / "harness" / "data" / "reference.toml").resolve()
    assert demo_text() == reference_text() == on_disk.read_text(encoding="utf-8")
    assert load_profile(on_disk).variants == demo_profile().variants


def test_demo_swaps_only_the_variant_and_its_tls_posture() -> None:
    shipped = demo_profile()
    tls = demo_profile("tls-required")
    assert tls.device == shipped.device
    assert tls.variants["baseline"] == shipped.variants["baseline"]
    candidate = tls.variants["candidate"]
    assert candidate.tls is True
    assert candidate.command[candidate.command.index("--variant") + 1] == "tls-required"
    assert tls.sha256 != shipped.sha256


def test_reference_identity_is_what_the_reference_device_derives() -> None:
    from simulators.identity.credentials import standard_credentials
    from simulators.reference import IDENTITY_SECRET

    profile = demo_profile()
    assert dict(profile.device.identity) == standard_credentials(IDENTITY_SECRET)
    for variant in profile.variants.values():
        assert variant.command[variant.command.index("--identity-secret") + 1] == IDENTITY_SECRET


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (
            lambda t: t.replace('services = ["echo", "store"]', 'services = ["echo", "store"]\ncolour = "red"'),
            ":5: device.colour: unknown key",
        ),
        (lambda t: t.replace('ae_title = "DEV"', "ae_title = 7"), ":3: device.ae_title: expected str"),
        (
            lambda t: t.replace('services = ["echo", "store"]', 'services = ["echo", "teleport"]'),
            ":4: device.services[1]: unknown value 'teleport'",
        ),
        (lambda t: t.replace('ae_title = "DEV"', 'ae_title = "WAY-TOO-LONG-AE-TITLE"'), ":3: device.ae_title"),
        (
            lambda t: t.replace("[variants.candidate]", "[variants.candidate]\nimgae = 3"),
            ":10: variants.candidate.imgae: unknown key (hint: did you mean 'image'?",
        ),
        (
            lambda t: t.replace("[variants.candidate]", "[variants.candidate]\nimage = 3"),
            ":10: variants.candidate.image: expected str",
        ),
        (
            lambda t: t.replace("[variants.candidate]", '[variants.candidate]\nfiles = { "/etc/x.cfg" = "nope.cfg" }'),
            ':10: variants.candidate.files."/etc/x.cfg": file /tmp/nope.cfg not found',
        ),
        (
            lambda t: t.replace('command = ["dev", "--port", "{port}"]', "command = [1, 2]"),
            ":7: variants.baseline.command[0]: expected str",
        ),
        (lambda t: t + "\n[device.extra\n", ":12: not valid TOML"),
        (
            lambda t: t.replace('name = "dev"\n', 'name = "dev"\nhost = "10.0.0.5"\n'),
            ":3: device.host: '10.0.0.5' is not a loopback address",
        ),
        (lambda t: t.split("[variants.candidate]")[0], ":6: variants.candidate: missing table"),
        (lambda t: t.replace('command = ["dev", "--port", "{port}"]', ""), ":6: variants.baseline.command: needs"),
        (lambda t: t.replace('name = "dev"\n', ""), ":1: device.name: missing key"),
        (lambda t: t.replace("[device]", "[devices]"), ": device: missing table"),
        (
            lambda t: "[simulators.arr]\n" + t,
            ":1: simulators.arr: unknown key (hint: allowed here: advertise, listen, pacs, ris)",
        ),
        (lambda t: "[simulators.ris]\ncommitment_report = 'new'\n" + t, ":2: simulators.ris.commitment_report"),
        (lambda t: "[simulators.pacs]\ncommitment_report = 'later'\n" + t, ":2: simulators.pacs.commitment_report"),
        (lambda t: "[simulators.pacs]\ncommitment_delay = -1\n" + t, ":2: simulators.pacs.commitment_delay"),
        (lambda t: "[device.identity]\npassword = 'x'\n" + t.replace("[device]\n", ""), ":2: device.identity.password"),
        (lambda t: t + '\n[[expected]]\ncase = "*"\npath = "*"\nreason = "  "\n', ":15: expected[0].reason: is empty"),
        (lambda t: t + '[[expected]]\ncase = "*"\npath = "*"\nreason = "r"\nkind = "changed"\n', "expected[0].kind"),
    ],
)
def test_bad_profile_names_file_line_and_key(edit: Callable[[str], str], fragment: str) -> None:
    message = _problems(edit(GOOD))
    assert message.startswith("/tmp/dev.toml"), message
    assert fragment in message, message
    assert "hint:" in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("start_timeout", "nan"),
        ("start_timeout", "inf"),
        ("start_timeout", "-inf"),
        ("start_timeout", "0"),
        ("start_timeout", "-5"),
        ("stop_timeout", "nan"),
        ("stop_timeout", "1e9"),
    ],
)
def test_timeouts_must_be_finite_and_positive(key: str, value: str) -> None:
    message = _problems(GOOD.replace('ae_title = "DEV"', f'ae_title = "DEV"\n{key} = {value}'))
    assert f":4: device.{key}: {value if value != 'inf' else 'inf'}" in message or f"device.{key}: " in message
    assert "is out of range: must be a finite number > 0 and ≤" in message, message


def test_suite_timeout_and_ports_have_ranges() -> None:
    text = f"[suites]\ntimeout = {math.inf}\n" + GOOD.replace('name = "dev"', 'name = "dev"\nport = 70000')
    message = _problems(text)
    assert ":2: suites.timeout: inf is out of range: must be a finite number > 0 and ≤ 86400" in message
    assert ":5: device.port: 70000 is out of range: must be an integer ≥ 0 and ≤ 65535" in message


def test_three_mistakes_are_three_errors_in_one_run() -> None:
    text = (
        GOOD.replace('ae_title = "DEV"', 'ae_title = "DEV"\nstart_timeout = nan')
        .replace("[variants.candidate]", "[variants.candidate]\ntsl = true")
        .replace('services = ["echo", "store"]', 'services = ["echo", "stroe"]')
    )
    message = _problems(text)
    lines = message.splitlines()
    assert lines[0] == "/tmp/dev.toml: 3 problems:", message
    assert lines[1].startswith("  /tmp/dev.toml:4: device.start_timeout: nan is out of range"), message
    assert lines[2].startswith("  /tmp/dev.toml:5: device.services[1]: unknown value 'stroe'"), message
    assert "did you mean 'store'?" in lines[2]
    assert lines[3].startswith("  /tmp/dev.toml:11: variants.candidate.tsl: unknown key (hint: did you mean 'tls'?")


def test_missing_profile_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="profile not found"):
        load_profile(tmp_path / "nope.toml")


def test_unknown_variant_lists_known_ones() -> None:
    profile = parse_profile(GOOD, "/tmp/dev.toml")
    with pytest.raises(ProfileError) as info:
        profile.variant("nightly")
    assert "variants in this profile: baseline, candidate" in info.value.one_line()


def test_unknown_demo_variant() -> None:
    with pytest.raises(ProfileError, match="unknown reference variant"):
        demo_profile("no-such-patch")


@pytest.mark.parametrize(
    "profile",
    # Profiles only: a policy file (whatever its name: slow-store-declared.toml is one) has no [device] table.
    sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "devices").glob("*/*.toml")
        if "device" in tomllib.loads(p.read_text(encoding="utf-8"))
    ),
)
def test_shipped_profiles_load(profile: str) -> None:
    load_profile(ROOT / profile)


LOCATED = """\
# a comment with [brackets] and key = "value"
title = "x # not a comment"   # a comment
dotted.key.here = 1

[a]
b = { c = 1, "d.e" = { f = 2 } }
list = [
  "one",  # [not a table]
  '''multi
line ] literal''',
  3.14,
]
after = 1979-05-27T07:32:00Z

[ a . "quoted key" ]
x = 1

[[entry]]
name = "first"

[[entry]]
name = "second"
[entry.sub]
y = 2

[[entry.items]]
z = 3
"""


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("title",), 2),
        (("dotted",), 3),
        (("dotted", "key", "here"), 3),
        (("a",), 5),
        (("a", "b", "c"), 6),
        (("a", "b", "d.e", "f"), 6),
        (("a", "list"), 7),
        (("a", "list", 0), 8),
        (("a", "list", 1), 9),
        (("a", "list", 2), 11),
        (("a", "after"), 13),
        (("a", "quoted key"), 15),
        (("a", "quoted key", "x"), 16),
        (("entry",), 18),
        (("entry", 0), 18),
        (("entry", 0, "name"), 19),
        (("entry", 1), 21),
        (("entry", 1, "name"), 22),
        (("entry", 1, "sub", "y"), 24),
        (("entry", 1, "items", 0, "z"), 27),
        (("a", "missing"), 5),  # a missing key: its table
        (("entry", 1, "nope"), 21),
        (("nowhere",), 0),
    ],
)
def test_locator_finds_the_line_of_each_key(path: tuple[str | int, ...], line: int) -> None:
    assert Locator(LOCATED).line(path) == line


def test_locator_survives_malformed_text() -> None:
    assert Locator('[a\nb = "').line(("a",)) in (0, 1)


def test_json_schema_on_disk_is_current() -> None:
    on_disk = json.loads((ROOT / "docs" / "profile.schema.json").read_text(encoding="utf-8"))
    assert on_disk == profile_json_schema(), "stale: python -m harness.profile --schema > docs/profile.schema.json"


def test_json_schema_states_ranges_defaults_and_choices() -> None:
    schema = profile_json_schema()
    device = schema["$defs"]["DeviceSpec"]["properties"]
    assert device["start_timeout"] == {
        "description": device["start_timeout"]["description"],
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 3600,
        "default": 20.0,
    }
    services = ["echo", "store", "find", "move", "get", "mwl", "mpps", "commitment"]
    assert device["services"]["items"]["enum"] == services
    # Workflow services only when declared: a profile that names none keeps meaning an archive.
    assert device["services"]["default"] == ["echo", "store", "find", "move", "get"]
    assert schema["properties"]["corpus"]["properties"]["seed"]["default"] == 1422
    assert schema["properties"]["variants"]["required"] == ["baseline", "candidate"]
    assert schema["$defs"]["ExpectedChange"]["required"] == ["case", "path", "reason"]


def test_schema_script_mode_prints_the_schema() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness.profile", "--schema"], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert json.loads(result.stdout) == profile_json_schema()


def test_secrets_are_the_declared_values_and_the_identity_credentials_but_the_username() -> None:
    text = GOOD.replace('services = ["echo", "store"]', 'services = ["echo", "store"]\nsecrets = ["hunter2", "k3y"]')
    text += '\n[device.identity]\nusername = "op"\npasscode = "pass-1"\njwt = "ey.jwt"\n'
    device = parse_profile(text, "/tmp/dev.toml").device
    assert device.secrets == ("hunter2", "k3y")
    assert device.secret_values == ("hunter2", "k3y", "ey.jwt", "pass-1")
    assert parse_profile(GOOD, "/tmp/dev.toml").device.secret_values == ()


def test_the_reference_identity_credentials_are_secrets() -> None:
    device = demo_profile().device
    assert "pgoperator" not in device.secret_values  # a username names, it does not open
    assert {device.identity[k] for k in ("passcode", "kerberos", "saml", "jwt")} <= set(device.secret_values)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ('["{port}"]', ":5: device.secrets[0]: '{port}' is not a secret's literal value"),
        ('["  "]', ":5: device.secrets[0]: '  ' is not a secret's literal value"),
        ('"hunter2"', ":5: device.secrets: expected an array"),
        ("[7]", ":5: device.secrets[0]: expected str"),
    ],
)
def test_bad_secrets_name_file_line_and_key(value: str, fragment: str) -> None:
    message = _problems(
        GOOD.replace('services = ["echo", "store"]', f'services = ["echo", "store"]\nsecrets = {value}')
    )
    assert fragment in message, message
    assert "hint:" in message


def test_a_profile_states_its_expected_verdict_as_a_key() -> None:
    assert parse_profile(GOOD, "/tmp/dev.toml").expect_verdict is None
    profile = parse_profile(GOOD + '\n[expect]\nverdict = "CHANGED_AS_EXPECTED"\n', "/tmp/dev.toml")
    assert profile.expect_verdict is Verdict.CHANGED_AS_EXPECTED
    assert demo_profile().expect_verdict is Verdict.UNCHANGED  # the reference profile states its own


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        (
            'verdict = "UNCHANGD"',
            "/tmp/dev.toml:13: expect.verdict: unknown value 'UNCHANGD' (hint: did you mean 'UNCHANGED'? one of: "
            "CHANGED_AS_EXPECTED, INCONCLUSIVE, REGRESSED, UNCHANGED)",
        ),
        ("verdict = 0", "/tmp/dev.toml:13: expect.verdict: expected str, got int 0"),
        # `profile` and `demo` belong to policy files: a profile's verdict is of the profile itself.
        (
            'verdict = "UNCHANGED"\ndemo = "clean"',
            "/tmp/dev.toml:14: expect.demo: unknown key (hint: allowed here: verdict)",
        ),
    ],
)
def test_a_bad_expected_verdict_names_file_line_and_key(table: str, fragment: str) -> None:
    assert fragment in _problems(GOOD + f"\n[expect]\n{table}\n")


def test_only_the_shipped_demo_is_held_to_the_reference_profiles_expectation() -> None:
    assert demo_profile().expect_verdict is Verdict.UNCHANGED
    assert demo_profile("regression").expect_verdict is None  # a patch that changes behaviour is not UNCHANGED
    assert demo_profile("clean-rebuild", baseline="store-warning").expect_verdict is None


def test_performance_table_is_off_by_default_and_selects_declared_services() -> None:
    assert parse_profile(GOOD, "/tmp/dev.toml").performance.enabled is False
    text = GOOD + '\n[performance]\nenabled = true\nmetrics = ["echo.*", "find.*", "memory.steady"]\nbudget = 20\n'
    spec = parse_profile(text, "/tmp/dev.toml").performance
    assert (spec.enabled, spec.budget, spec.min_rounds) == (True, 20.0, 6)
    # find.* drops out: the device declares echo and store only; store.* is not among the globs
    assert spec.selected(("echo", "store")) == ("echo.latency",)
    assert spec.resource_metrics() == ("memory.steady",)
    assert spec.block_for("echo.latency", 20) == 20


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ("budget = 5", "performance.budget: 5 is out of range"),
        ("min_rounds = 2", "performance.min_rounds: 2 is out of range"),
        ('resources = "psutil"', "performance.resources: unknown value 'psutil'"),
        ('thresholds = {"find.*" = 0}', "performance.thresholds"),
        ("budjet = 20", "did you mean 'budget'"),
    ],
)
def test_bad_performance_keys_are_named(table: str, fragment: str) -> None:
    assert fragment in _problems(GOOD + f"\n[performance]\n{table}\n")


def test_robustness_table_is_off_by_default_and_selects_inputs_by_glob() -> None:
    assert parse_profile(GOOD, "/tmp/dev.toml").robustness.enabled is False
    text = GOOD + '\n[robustness]\nenabled = true\ninputs = ["pdu.pdata.*", "ds.*.sq-unterminated"]\nmax_revivals = 1\n'
    spec = parse_profile(text, "/tmp/dev.toml").robustness
    assert (spec.enabled, spec.revive, spec.max_revivals, spec.deadline) == (True, True, 1, 10.0)
    assert spec.covers("pdu.pdata.over-max") and spec.covers("ds.find.sq-unterminated")
    assert not spec.covers("pdu.rq.version-0")


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ("deadline = 0.5", "robustness.deadline: 0.5 is out of range"),
        ("max_revivals = -1", "robustness.max_revivals: -1 is out of range"),
        ("revive = 1", "robustness.revive: expected true/false"),
        ('inputs = [""]', "robustness.inputs[0]: is empty"),
        ("max_revival = 2", "did you mean 'max_revivals'"),
    ],
)
def test_bad_robustness_keys_are_named(table: str, fragment: str) -> None:
    assert fragment in _problems(GOOD + f"\n[robustness]\n{table}\n")
