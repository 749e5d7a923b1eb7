"""In-memory records for the compare, verdict, noise, normalise and report tests: manifests, runs and cases."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from harness.model import JSON, CaseRecord, CorpusInfo, Manifest, Observation, Outcome, RunRecord, RunStatus

__all__ = ["make_case", "make_corpus", "make_manifest", "make_reference_run", "make_run"]


def make_corpus(seed: int = 7, sha256: str | None = None) -> CorpusInfo:
    """A corpus record; its hash follows the seed (as a generated corpus's does) unless given."""
    return CorpusInfo(seed, sha256 or f"{seed:02x}" * 32, uid_root="1.2.826.0.1.3680043.10.1422.", items=24)


def make_manifest(role: str = "baseline", replica: int = 1, **fields: Any) -> Manifest:
    """A completed run of device "dev", variant "before" (baseline) or "after"; `fields` override any field."""
    manifest = Manifest(
        run_id=f"{role}-{replica}",
        role=role,
        replica=replica,
        device="dev",
        variant="before" if role == "baseline" else "after",
        profile_path="p.toml",
        profile_sha256="0" * 64,
        versions={},
        corpus=None,
        started="2026-11-28T10:00:00Z",
        finished="2026-11-28T10:10:00Z",
        timings={},
        status=RunStatus.COMPLETED,
    )
    return dataclasses.replace(manifest, **fields)


def make_run(cases: Iterable[CaseRecord], role: str = "baseline", replica: int = 1, **fields: Any) -> RunRecord:
    """A run read back from `runs/<run_id>`; `fields` go to make_manifest."""
    manifest = make_manifest(role, replica, **fields)
    return RunRecord(f"runs/{manifest.run_id}", manifest, tuple(cases))


def make_reference_run(
    cases: Iterable[CaseRecord], role: str = "baseline", replica: int = 1, **fields: Any
) -> RunRecord:
    """A run as the reports show one: the reference device's variants and profile, and its case count."""
    cases = tuple(cases)
    defaults: dict[str, Any] = {
        "device": "reference",
        "variant": "1.0" if role == "baseline" else "1.0.1-sec",
        "profile_path": "devices/reference/profile.toml",
        "started": "2026-11-28T10:00:00+00:00",
        "cases_collected": len(cases),
    }
    return make_run(cases, role, replica, **(defaults | fields))


def make_case(
    name: str, outcome: Outcome = Outcome.PASSED, duration: float = 0.0, /, **observations: JSON
) -> CaseRecord:
    """A case with one observation per keyword, in keyword order."""
    return CaseRecord(
        name, outcome, duration=duration, observations=tuple(Observation(k, v) for k, v in observations.items())
    )
