"""Reports of a comparison: comparison.json, junit.xml, report.html and allure-results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from harness.compare.engine import collector_paused
from harness.model import Comparison, Manifest
from harness.report.allure import AllureReporter
from harness.report.html import HtmlReporter
from harness.report.json_report import JsonReporter
from harness.report.junit import JUnitReporter
from harness.report.terminal import summary_table

__all__ = [
    "AllureReporter",
    "HtmlReporter",
    "JUnitReporter",
    "JsonReporter",
    "Reporter",
    "reporters",
    "summary_table",
    "write_reports",
]


class Reporter(Protocol):
    """One report format: writes its file (or folder) under `out` and returns its path."""

    name: str

    def write(self, comparison: Comparison, out: Path, runs: Sequence[Manifest]) -> Path: ...


def reporters(templates: Path | None = None, fingerprint: str = "", ticket_url: str = "") -> tuple[Reporter, ...]:
    """Every report format; `templates` overrides report.html's packaged templates; `fingerprint`: the evidence
    pack's signing key, shown in report.html; `ticket_url` is the profile's `[report] ticket_url` (Allure links
    policy tickets with it)."""
    return (JsonReporter(), JUnitReporter(), HtmlReporter(templates, fingerprint), AllureReporter(ticket_url))


def write_reports(
    comparison: Comparison,
    out_dir: Path,
    runs: Sequence[Manifest],
    *,
    templates: Path | None = None,
    fingerprint: str = "",
    ticket_url: str = "",
) -> dict[str, Path]:
    """Every report under `out_dir` (created if needed), by reporter name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with collector_paused():  # the comparison is a large acyclic tree: see collector_paused
        every = reporters(templates, fingerprint, ticket_url)
        # Allure's one file per case is handed to a writer process first; the other reports render meanwhile.
        started = {r.name: r.start(comparison, out_dir, runs) for r in every if isinstance(r, AllureReporter)}
        paths: dict[str, Path] = {}
        try:
            for r in every:
                if r.name not in started:
                    paths[r.name] = r.write(comparison, out_dir, runs)
        finally:
            for name, batch in started.items():  # waited for even after a failure: no writer is left behind
                paths[name] = batch.wait()
        return {r.name: paths[r.name] for r in every}
