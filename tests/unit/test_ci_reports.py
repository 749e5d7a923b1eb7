"""junit.xml and allure-results as CI servers read them: real times, one-line failures, severity, links, categories."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pynetdicom.status
import pytest

from harness.compare.engine import compare
from harness.compare.policy import ExpectedChange, Policy
from harness.errors import ProfileError
from harness.model import JSON, CaseRecord, CaseStatus, Comparison, Manifest, Observation, Outcome, RunRecord, Security
from harness.profile import parse_profile
from harness.report._status import SERVICE_TABLES, status_words, table
from harness.report.allure import CATEGORIES, AllureReporter, severity
from harness.report.junit import JUnitReporter
from tests.factories import make_reference_run

TICKETS = "https://tracker.example/browse/{ticket}"
STORE = "storage/test_store.py::test_store_then_retrieve[MR-explicit]"
AUDIT = "audit/test_audit.py::test_events[store]"
TLS = "tls/test_tls.py::test_plain"
ECHO = "verification/test_echo.py::test_echo"


def _case(
    case: str, duration: float, service: str, observed: dict[str, JSON], security: Security = Security.NONE
) -> CaseRecord:
    observations = tuple(Observation(k, v, security) for k, v in observed.items())
    return CaseRecord(case, Outcome.PASSED, duration, observations=observations, service=service)


def _runs() -> tuple[list[RunRecord], RunRecord]:
    """Two baselines and a candidate: a store warning, a lost audit event (loosened), an expected TLS change."""

    def cases(after: bool, scale: float) -> list[CaseRecord]:
        return [
            _case(
                STORE, 0.25 * scale, "store", {"store.status": "0xB000" if after else "0x0000", "n": 2 if after else 1}
            ),
            _case(AUDIT, 0.5 * scale, "store", {"events": [] if after else ["store"]}, Security.PROTECTION),
            _case(TLS, 0.125 * scale, "echo", {"accepted": not after}),
            _case(ECHO, 0.0625 * scale, "echo", {"status": "0x0000"}),
        ]

    started = {"started": "2026-11-28T10:00:00+00:00", "finished": "2026-11-28T10:02:05+00:00"}
    baselines = [make_reference_run(cases(False, s), "baseline", i, **started) for i, s in ((1, 1.0), (2, 1.5))]
    candidate = make_reference_run(cases(True, 2.0), "candidate", 1, timings={"suites": 42.5}, **started)
    return baselines, candidate


@pytest.fixture
def comparison() -> tuple[Comparison, list[Manifest]]:
    baselines, candidate = _runs()
    policy = Policy((ExpectedChange("tls/*", "accepted", "TLS now required", ticket="SEC-12"),))
    compared = compare(baselines, candidate, policy, created="2026-11-28T10:05:00+00:00")
    return compared, [r.manifest for r in (*baselines, candidate)]


def test_the_comparison_carries_each_runs_duration_and_the_service(
    comparison: tuple[Comparison, list[Manifest]],
) -> None:
    compared, _ = comparison
    store = next(c for c in compared.cases if c.case == STORE)
    assert (store.durations_before, store.duration_after, store.service) == ((0.25, 0.375), 0.5, "store")
    again = Comparison.from_json(json.loads(json.dumps(compared.to_json())))
    assert again == compared
    # A comparison.json written before durations were carried reads with none (and reports say 0).
    old = compared.to_json()
    for case in old["cases"]:
        case.pop("durations"), case.pop("service")
    assert {(c.durations_before, c.duration_after, c.service) for c in Comparison.from_json(old).cases} == {
        ((), None, "")
    }


def test_junit_times_are_the_candidates(tmp_path: Path, comparison: tuple[Comparison, list[Manifest]]) -> None:
    compared, runs = comparison
    root = ET.parse(JUnitReporter().write(compared, tmp_path, runs)).getroot()
    suite = root.find("testsuite")
    assert suite is not None and suite.get("time") == "42.500"
    times = {c.get("name"): c.get("time") for c in suite.iter("testcase")}
    assert times == {
        "test_store_then_retrieve[MR-explicit]": "0.500",
        "test_events[store]": "1.000",
        "test_plain": "0.250",
        "test_echo": "0.125",
    }


def test_junit_failure_is_one_line_with_the_status_meaning(
    tmp_path: Path, comparison: tuple[Comparison, list[Manifest]]
) -> None:
    compared, runs = comparison
    root = ET.parse(JUnitReporter().write(compared, tmp_path, runs)).getroot()
    failures = {c.get("name"): c.find("failure") for c in root.iter("testcase") if c.find("failure") is not None}
    store = failures["test_store_then_retrieve[MR-explicit]"]
    assert store is not None
    assert (
        store.get("message")
        == "C-STORE MR-explicit: status 0x0000 → 0xB000 (Warning: coercion of data elements) (+1 more)"
    )
    assert (store.text or "").splitlines() == [
        'store.status [status_changed]: "0x0000" → "0xB000"',
        "n [value_changed]: 1 → 2",
    ]
    assert set(failures) == {"test_store_then_retrieve[MR-explicit]", "test_events[store]"}


def test_a_comparison_without_durations_still_writes_time_zero(
    tmp_path: Path, comparison: tuple[Comparison, list[Manifest]]
) -> None:
    compared, runs = comparison
    old = compared.to_json()
    for case in old["cases"]:
        case.pop("durations")
    root = ET.parse(JUnitReporter().write(Comparison.from_json(old), tmp_path, runs)).getroot()
    assert {c.get("time") for c in root.iter("testcase")} == {"0"}


def _results(folder: Path) -> dict[str, dict[str, Any]]:
    found = [json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*-result.json")]
    return {r["fullName"]: r for r in found}


def _labels(result: dict[str, Any]) -> dict[str, str]:
    return {label["name"]: label["value"] for label in result["labels"]}


def test_allure_durations_severity_labels_and_parameters(
    tmp_path: Path, comparison: tuple[Comparison, list[Manifest]]
) -> None:
    compared, runs = comparison
    results = _results(AllureReporter().write(compared, tmp_path, runs))
    store, audit, tls, echo = (results[c] for c in (STORE, AUDIT, TLS, ECHO))
    assert store["stop"] - store["start"] == 500  # the candidate's 0.5 s
    assert audit["stop"] - audit["start"] == 1000
    assert [_labels(r)["severity"] for r in (store, audit, tls, echo)] == ["major", "critical", "minor", "normal"]
    assert (
        _labels(store).items()
        >= {
            "epic": "patchgate",
            "feature": "storage",
            "story": "C-STORE",
            "suite": "storage.test_store",
        }.items()
    )
    assert store["parameters"] == [
        {"name": "parametrisation", "value": "MR-explicit"},
        {"name": "baseline durations", "value": "0.250 s, 0.375 s", "excluded": True},
    ]
    assert [p["name"] for p in echo["parameters"]] == ["baseline durations"]
    assert str(store["statusDetails"]["message"]).startswith("regressed: C-STORE MR-explicit: status")


def test_allure_links_each_ticket_only_with_a_url_template(
    tmp_path: Path, comparison: tuple[Comparison, list[Manifest]]
) -> None:
    compared, runs = comparison
    linked = _results(AllureReporter(TICKETS).write(compared, tmp_path / "a", runs))
    assert linked[TLS]["links"] == [{"name": "SEC-12", "url": "https://tracker.example/browse/SEC-12", "type": "issue"}]
    assert all(r["links"] == [] for name, r in linked.items() if name != TLS)
    assert all(r["links"] == [] for r in _results(AllureReporter().write(compared, tmp_path / "b", runs)).values())


def test_allure_environment_and_categories(tmp_path: Path, comparison: tuple[Comparison, list[Manifest]]) -> None:
    compared, runs = comparison
    folder = AllureReporter().write(compared, tmp_path, runs)
    lines = (folder / "environment.properties").read_text(encoding="utf-8").splitlines()
    assert lines[:4] == [
        f"device={compared.device}",
        "baseline.variant=1.0",
        "candidate.variant=1.0.1-sec",
        "verdict=REGRESSED",
    ]
    assert lines[-1].startswith("patchgate.version=")
    categories = json.loads((folder / "categories.json").read_text(encoding="utf-8"))
    assert [c["name"].split(" ")[0] for c in categories] == ["Regressed", "Expected", "Noise", "Inconclusive"]
    assert categories == CATEGORIES
    import re

    messages = {name: str(r["statusDetails"]["message"]) for name, r in _results(folder).items()}
    matched = {
        name: [c["name"] for c in categories if re.fullmatch(c["messageRegex"], m)] for name, m in messages.items()
    }
    assert matched[STORE] == ["Regressed"] and matched[TLS] == ["Expected changes"] and matched[ECHO] == []


def test_severity_of_a_case_without_a_security_change_is_never_critical(
    comparison: tuple[Comparison, list[Manifest]],
) -> None:
    compared, _ = comparison
    audit = next(c for c in compared.cases if c.case == AUDIT)
    assert audit.status is CaseStatus.REGRESSED
    assert severity(audit) == "major"  # without the comparison's security changes: a plain regression
    assert severity(audit, frozenset({(AUDIT, "events")})) == "critical"
    assert severity(audit, frozenset({(STORE, "events")})) == "major"  # another case's loosening


@pytest.mark.parametrize("service", sorted(SERVICE_TABLES))
def test_the_status_table_is_pynetdicoms(service: str) -> None:
    assert table(service) == getattr(pynetdicom.status, SERVICE_TABLES[service])


def test_status_words() -> None:
    assert status_words("0xB000", "store") == "0xB000 (Warning: coercion of data elements)"
    assert status_words(0xB000, "get") == "0xB000 (Warning: sub-operations complete, one or more failures or warnings)"
    assert status_words("0xA700", "") == "0xA700"  # no table without a service: shown bare
    assert status_words("0x0122", "") == "0x0122 (Failure: refused: SOP class not supported)"
    assert status_words("0xC123", "find") == "0xC123 (Failure: unable to process)"
    assert status_words("passed", "store") == "passed"
    assert status_words(True, "store") == "True"


def test_the_profiles_ticket_url() -> None:
    base = '[device]\nname = "d"\nae_title = "D"\n[variants.baseline]\ncommand = ["x"]\n[variants.candidate]\ncommand = ["x"]\n'
    assert parse_profile(base, "p.toml").ticket_url == ""
    assert parse_profile(base + f'[report]\nticket_url = "{TICKETS}"\n', "p.toml").ticket_url == TICKETS
    with pytest.raises(ProfileError, match=r"report\.ticket_url.*\{ticket\}"):
        parse_profile(base + '[report]\nticket_url = "https://tracker.example/browse/"\n', "p.toml")


def test_a_case_records_service_only_when_marked() -> None:
    marked = CaseRecord(STORE, Outcome.PASSED, 0.5, service="store")
    assert marked.to_json()["service"] == "store"
    assert CaseRecord.from_json(marked.to_json()) == marked
    unmarked = CaseRecord(ECHO, Outcome.PASSED, 0.5)
    assert "service" not in unmarked.to_json()  # a line written before the key existed reads the same
    assert CaseRecord.from_json(unmarked.to_json()).service == ""
