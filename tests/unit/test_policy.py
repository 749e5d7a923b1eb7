"""Expected-change policy: literal globs where only `*` is special, and errors that say where."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.compare.policy import Expectation, ExpectedChange, Policy, load_policy, parse_policy
from harness.errors import HarnessError, PolicyError
from harness.model import Difference, DiffKind, Verdict
from harness.profile import load_profile


def _diff(case: str, path: str, kind: DiffKind = DiffKind.VALUE_CHANGED) -> Difference:
    return Difference(case, path, kind, 0, 1)


def _matches(case: str, path: str, diff: Difference, kind: DiffKind | None = None) -> bool:
    return ExpectedChange(case, path, "why", kind).matches(diff)


def test_star_matches_any_run_including_separators() -> None:
    d = _diff("store/test_store.py::test_roundtrip[ct]", "retrieve.datasets[0].00100010.Value[0]")
    assert _matches("*", "*", d)
    assert _matches("store/*", "retrieve.*", d)
    assert _matches("*::test_roundtrip[ct]", "retrieve.datasets[0].*.Value[0]", d)
    assert _matches("store/test_store.py::test_*", "*00100010*", d)
    assert not _matches("store/*", "retrieve", d)  # globs match the whole path
    assert not _matches("tls/*", "*", d)


def test_brackets_and_other_glob_characters_are_literal() -> None:
    d = _diff("a.py::t[1]", "x[0].y")
    assert _matches("a.py::t[1]", "x[0].y", d)
    assert not _matches("a.py::t[12]", "x[0].y", d)
    assert not _matches("a.py::t[1]", "x[01].y", d)  # fnmatch would read [01] as a set
    assert not _matches("a.py::t?1?", "*", d)  # ? is literal too
    assert not _matches("a.py::t[1]", "x.0..y", _diff("a.py::t[1]", "x[0].y"))
    assert _matches("a.py::t[1]", "x.*", _diff("a.py::t[1]", "x.a+b(c)"))


def test_kind_restricts_the_match_and_the_first_entry_wins() -> None:
    d = _diff("c", "assoc.status", DiffKind.STATUS_CHANGED)
    assert _matches("c", "*", d, DiffKind.STATUS_CHANGED)
    assert not _matches("c", "*", d, DiffKind.VALUE_CHANGED)
    policy = Policy(
        (
            ExpectedChange("c", "*", "values", DiffKind.VALUE_CHANGED),
            ExpectedChange("c", "assoc.*", "TLS required", ticket="SEC-12"),
            ExpectedChange("*", "*", "anything"),
        )
    )
    entry = policy.match(d)
    assert entry is not None and entry.reason == "TLS required" and entry.ticket == "SEC-12"
    assert Policy().match(d) is None


def test_parse_policy_reads_entries() -> None:
    policy = parse_policy(
        [
            {
                "case": "tls/*",
                "path": "*",
                "reason": " TLS now required ",
                "kind": "status_changed",
                "ticket": "SEC-12",
            },
            {"case": "*", "path": "x", "reason": "r"},
        ],
        "profile.toml",
    )
    assert policy.entries == (
        ExpectedChange("tls/*", "*", "TLS now required", DiffKind.STATUS_CHANGED, "SEC-12"),
        ExpectedChange("*", "x", "r"),
    )


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"case": "*", "path": "*", "reason": "r", "pth": "x"}, ["pth: unknown key", "did you mean 'path'"]),
        ({"case": "*", "path": "*", "reason": 3}, ["reason: expected str, got int 3"]),
        ({"case": "*", "path": "*"}, ["reason: missing key", "why", "[[expected]] entry"]),
        ({"case": "*", "path": "*", "reason": "  "}, ["reason: is empty"]),
        ({"case": "*", "reason": "r"}, ["path: missing key", '"*"']),
        ({"path": "*", "reason": "r"}, ["case: missing key"]),
        (
            {"case": "*", "path": "*", "reason": "r", "kind": "changed"},
            ["kind: unknown value 'changed'", "value_changed"],
        ),
    ],
)
def test_errors_name_the_source_entry_and_key_with_a_hint(entry: dict[str, object], words: list[str]) -> None:
    good = {"case": "*", "path": "*", "reason": "fine"}
    with pytest.raises(PolicyError) as caught:
        parse_policy([good, entry], "devices/x/profile.toml")
    text = caught.value.one_line()
    assert text.startswith("devices/x/profile.toml: expected[1].")  # no such file: the entry by key path
    assert caught.value.hint
    for w in words:
        assert w in text
    assert isinstance(caught.value, HarnessError)


def test_load_policy_reads_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        '[[expected]]\ncase = "tls/*"\npath = "assoc.*"\nreason = "TLS now required"\nticket = "SEC-12"\n\n'
        '[[expected]]\ncase = "*"\npath = "timing.*"\nkind = "timing_changed"\nreason = "slower handshake"\n'
    )
    policy = load_policy(path)
    assert [e.reason for e in policy.entries] == ["TLS now required", "slower handshake"]
    assert policy.entries[1].kind is DiffKind.TIMING_CHANGED
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert load_policy(empty) == Policy()


def test_load_policy_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[[expected]]\ncase = "*"\npath = \nreason = "r"\n')
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.message.startswith(f"{path}:3: not valid TOML")


def test_load_policy_entry_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[[expected]]\ncase = "*"\npath = "*"\nreason = "r"\nkindd = "extra"\n')
    with pytest.raises(PolicyError, match=r"policy.toml:5: expected\[0\].kindd: unknown key"):
        load_policy(path)
    path.write_text('expected = "x"\n')
    with pytest.raises(PolicyError, match=r"policy.toml:1: expected: expected an array, got str"):
        load_policy(path)
    path.write_text('[[expectd]]\ncase = "*"\n')
    with pytest.raises(PolicyError, match=r"policy.toml:1: expectd: unknown key") as caught:
        load_policy(path)
    assert "did you mean 'expected'?" in caught.value.hint
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "absent.toml")


def test_allow_loosening_is_an_optional_boolean() -> None:
    policy = parse_policy(
        [
            {
                "case": "tls/*",
                "path": "accepted",
                "reason": "TLS 1.0 kept for legacy modalities",
                "allow_loosening": True,
            },
            {"case": "*", "path": "*", "reason": "r", "allow_loosening": False},
            {"case": "*", "path": "*", "reason": "r"},
        ],
        "<embedded:test>",
    )
    assert [e.allow_loosening for e in policy.entries] == [True, False, False]
    assert policy.entries[0].where == "<embedded:test>, expected[0]"


def test_a_loosening_is_covered_only_by_an_entry_that_allows_it() -> None:
    d = _diff("tls/test_tls.py::test_protocol_version[TLSv1]", "accepted")
    broad = ExpectedChange("tls/*", "*", "TLS rework")
    allowing = ExpectedChange("tls/*", "accepted", "legacy modalities", allow_loosening=True)
    assert Policy((broad,)).match(d) is broad
    assert Policy((broad,)).match(d, loosening=True) is None
    # A broad entry first does not shadow a later one written for the loosening.
    assert Policy((broad, allowing)).match(d, loosening=True) is allowing
    assert Policy((broad, allowing)).match(d) is broad


def test_entries_know_their_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        '# hardening\n\n[[expected]]\ncase = "tls/*"\npath = "*"\nreason = "TLS rework"\n\n'
        '[[expected]]\ncase = "*"\npath = "x"\nreason = "r"\nallow_loosening = true\n'
    )
    first, second = load_policy(path).entries
    assert (first.where, first.allow_loosening) == (f"{path}:3", False)
    assert (second.where, second.allow_loosening) == (f"{path}:8", True)
    # Entries read from a profile are placed in it too when the source names the file.
    profile = tmp_path / "profile.toml"
    profile.write_text('[device]\nname = "x"\n\n[[expected]]\ncase = "*"\npath = "*"\nreason = "r"\n')
    (entry,) = parse_policy([{"case": "*", "path": "*", "reason": "r"}], str(profile)).entries
    assert entry.where == f"{profile}:4"
    # ... and by number when the headers cannot be paired with the entries.
    (entry,) = parse_policy([{"case": "*", "path": "*", "reason": "r"}], str(profile), text="").entries
    assert entry.where == f"{profile}, expected[0]"


def test_allow_loosening_must_be_a_boolean_and_the_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        '[[expected]]\ncase = "*"\npath = "*"\nreason = "r"\n\n'
        '[[expected]]\ncase = "tls/*"\npath = "*"\nreason = "r"\nallow_loosening = "yes"\n'
    )
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.message == f"{path}:10: expected[1].allow_loosening: expected true/false, got str 'yes'"
    assert caught.value.hint == "fix the value's type"
    with pytest.raises(PolicyError, match=r"allow_loosening: expected true/false, got int 1"):
        parse_policy([{"case": "*", "path": "*", "reason": "r", "allow_loosening": 1}], "p.toml")
    # A missing key points at the entry's header.
    path.write_text('[[expected]]\ncase = "*"\npath = "*"\n')
    with pytest.raises(PolicyError, match=r"policy.toml:1: expected\[0\].reason: missing key"):
        load_policy(path)


def test_every_problem_of_a_policy_file_is_named_at_once(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        '[[expected]]\ncase = "*"\npath = "*"\nreason = " "\n\n'
        '[[expected]]\ncase = "*"\npath = "*"\nreason = "r"\nkind = "changed"\n'
    )
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.message.splitlines() == [
        f"{path}: 2 problems:",
        f"  {path}:4: expected[0].reason: is empty (hint: why the change is expected (what the patch does, the ticket))",
        f"  {path}:10: expected[1].kind: unknown value 'changed' (hint: did you mean 'value_changed'? one of: "
        "count_changed, extra, missing, order_changed, status_changed, timing_changed, value_changed)",
    ]


def test_a_policy_file_states_its_verdict_and_what_it_applies_to(tmp_path: Path) -> None:
    (tmp_path / "hardened.toml").write_text("")
    path = tmp_path / "policy.toml"
    path.write_text('[expect]\nverdict = "CHANGED_AS_EXPECTED"\nprofile = "hardened.toml"\n')
    assert load_policy(path).expect == Expectation(
        Verdict.CHANGED_AS_EXPECTED, profile=str((tmp_path / "hardened.toml").resolve())
    )
    path.write_text(
        '[expect]\nverdict = "REGRESSED"\ndemo = "known-peers"\n\n[[expected]]\ncase = "*"\npath = "*"\nreason = "r"\n'
    )
    policy = load_policy(path)
    assert policy.expect == Expectation(Verdict.REGRESSED, demo="known-peers")
    assert [e.where for e in policy.entries] == [f"{path}:5"]
    assert load_policy(path).entries == parse_policy([{"case": "*", "path": "*", "reason": "r"}], "x").entries


@pytest.mark.parametrize(
    ("expect", "words"),
    [
        (
            'verdict = "PASSED"\ndemo = "x"',
            [
                ":2: expect.verdict: unknown value 'PASSED'",
                "one of: CHANGED_AS_EXPECTED, INCONCLUSIVE, REGRESSED, UNCHANGED",
            ],
        ),
        ('verdict = "REGRESSED"', [":1: expect.profile: needs exactly one of profile or demo"]),
        (
            'verdict = "REGRESSED"\ndemo = "x"\nprofile = "policy.toml"',
            [":4: expect.profile: needs exactly one of profile or demo, got demo and profile"],
        ),
        ('verdict = "REGRESSED"\nprofile = "absent.toml"', [":3: expect.profile: file", "absent.toml not found"]),
        ('verdict = "REGRESSED"\ndemo = "x"\nwhy = "r"', [":4: expect.why: unknown key"]),
        ('demo = "x"', [":1: expect.verdict: missing key"]),
    ],
)
def test_a_bad_expectation_names_file_line_and_key(tmp_path: Path, expect: str, words: list[str]) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(f"[expect]\n{expect}\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    text = caught.value.one_line()
    assert text.startswith(str(path))
    for w in words:
        assert w in text


def test_declared_slowdowns_are_read_with_file_and_line_and_the_first_match_wins(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        '[[expected]]\ncase = "*"\npath = "x"\nreason = "r"\n\n'
        '[[expected_slowdown]]\nmetric = "store.*"\nup_to = 0.15\nreason = " on-access scanning "\nticket = "SEC-31"\n\n'
        '[[expected_slowdown]]\nmetric = "*"\nup_to = 1\nreason = "everything is slower"\n\n'
        '[[expected_slowdown]]\nmetric = "memory.growth"\nup_to = 0.5\nreason = "a cache per peer"\n'
    )
    policy = load_policy(path)
    store, anything, growth = policy.slowdowns
    assert (store.metric, store.up_to, store.reason, store.ticket, store.where) == (
        "store.*", 0.15, "on-access scanning", "SEC-31", f"{path}:6",
    )  # fmt: skip
    assert (anything.up_to, anything.where, growth.where) == (1.0, f"{path}:12", f"{path}:17")
    assert policy.slowdown_for("store.study.parallel") is store
    assert policy.slowdown_for("find.study") is anything
    # A leak is no slow-down: only an entry that names memory.growth itself covers it, not "*".
    assert policy.slowdown_for("memory.growth") is growth
    assert Policy(slowdowns=(anything,)).slowdown_for("memory.growth") is None
    assert Policy().slowdown_for("store.study") is None and len(policy.entries) == 1


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (
            'metric = "store.*"\nup_to = 0\nreason = "r"\n',
            "7: expected_slowdown[0].up_to: 0 is out of range: must be a finite number > 0 and ≤ 10",
        ),
        ('metric = "store.*"\nup_to = 10.5\nreason = "r"\n', "7: expected_slowdown[0].up_to: 10.5 is out of range"),
        ('metric = "store.*"\nup_to = 0.1\nreason = "  "\n', "8: expected_slowdown[0].reason: is empty"),
        ('metric = "store.*"\nreason = "r"\n', "5: expected_slowdown[0].up_to: missing key"),
        ('metric = "store.*"\nup_to = "10%"\nreason = "r"\n', "7: expected_slowdown[0].up_to: expected int or float"),
        ('metric = "store.*"\nup_to = 0.1\nreason = "r"\nupto = 1\n', "9: expected_slowdown[0].upto: unknown key"),
    ],
)
def test_a_bad_declared_slowdown_names_file_line_and_key_with_a_hint(tmp_path: Path, entry: str, words: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(f"# performance\n\n\n\n[[expected_slowdown]]\n{entry}")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.message.startswith(f"{path}:{words}")
    assert caught.value.hint


def test_a_profile_declares_slowdowns_too(tmp_path: Path) -> None:
    profile = tmp_path / "profile.toml"
    profile.write_text(
        '[device]\nname = "x"\nae_title = "X"\n\n[variants.baseline]\ncommand = ["x"]\n\n'
        '[variants.candidate]\ncommand = ["y"]\n\n[[expected_slowdown]]\nmetric = "find.*"\nup_to = 0.2\nreason = "r"\n'
    )
    (entry,) = load_profile(profile).slowdowns
    assert (entry.metric, entry.up_to, entry.where) == ("find.*", 0.2, f"{profile}:11")


def test_policy_for_gathers_slowdowns_from_the_profile_its_policy_files_and_extra_files(tmp_path: Path) -> None:
    from harness.validation import policy_for

    slowdown = '[[expected_slowdown]]\nmetric = "{m}"\nup_to = 0.2\nreason = "r"\n'
    (tmp_path / "listed.toml").write_text(slowdown.format(m="find.*"))
    (tmp_path / "extra.toml").write_text(slowdown.format(m="move.*"))
    profile = tmp_path / "profile.toml"
    profile.write_text(
        'policy = "listed.toml"\n\n[device]\nname = "x"\nae_title = "X"\n\n[variants.baseline]\ncommand = ["x"]\n\n'
        '[variants.candidate]\ncommand = ["y"]\n\n' + slowdown.format(m="store.*")
    )
    policy = policy_for(load_profile(profile), [tmp_path / "extra.toml"])
    assert [s.metric for s in policy.slowdowns] == ["store.*", "find.*", "move.*"]
    assert policy.slowdown_for("move.last") is policy.slowdowns[2]
