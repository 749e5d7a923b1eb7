"""The run directory: the one place that names its files and reads and writes them.

A run directory is self-contained: `manifest.json` (what ran, how it ended), `observations.jsonl`
(one line per finished case, appended and fsynced), `endpoints.json` (where the suites find the
device and simulators), `progress.json` (cases collected), `junit.xml`, `allure-results/`,
`logs/` and the simulators' records. Nothing else in patchgate spells these names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from harness.context import SuiteContext
from harness.errors import RunDirError
from harness.model import CaseRecord, Manifest, RunRecord, to_json

__all__ = ["CaseWriter", "OutDir", "RunDir", "read_run", "write_json_atomic"]

_Record = TypeVar("_Record")


def _load(path: Path, parse: Callable[[Any], _Record], what: str, *, missing: str, invalid: str) -> _Record:
    """A JSON file of the run as a record; RunDirError naming the file when it is missing, unreadable or wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError(f"a JSON object was expected, not {type(data).__name__}")
        return parse(data)
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing", hint=missing) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # a directory, not UTF-8, bad JSON
        raise RunDirError(f"{path}: {what}: {exc}", hint=invalid) from None


def write_json_atomic(path: Path, data: object) -> Path:
    """Write JSON so a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


class CaseWriter:
    """Appends one JSON line per finished case and fsyncs it, so a killed run keeps every finished case."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def write(self, record: CaseRecord) -> None:
        self._file.write(json.dumps(record.to_json(), sort_keys=True, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class RunDir:
    """One variant's run directory."""

    path: Path

    # Files and folders, named here only.
    @property
    def manifest(self) -> Path:
        return self.path / "manifest.json"

    @property
    def observations(self) -> Path:
        return self.path / "observations.jsonl"

    @property
    def endpoints(self) -> Path:
        return self.path / "endpoints.json"

    @property
    def progress(self) -> Path:
        return self.path / "progress.json"

    @property
    def junit(self) -> Path:
        return self.path / "junit.xml"

    @property
    def allure(self) -> Path:
        return self.path / "allure-results"

    @property
    def pytest_ini(self) -> Path:
        return self.path / "pytest.ini"

    @property
    def heartbeat(self) -> Path:
        return self.path / "heartbeat"  # touched while the run lives (simulators._lifeline)

    @property
    def inventory(self) -> Path:
        return self.path / "inventory.json"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def log(self, role: str) -> Path:
        """`logs/ROLE.log`: device, pacs, arr, pytest."""
        return self.logs / f"{role}.log"

    @property
    def error(self) -> Path:
        return self.logs / "error.txt"

    @property
    def swept(self) -> Path:
        return self.logs / "swept.txt"

    @property
    def pki(self) -> Path:
        return self.path / "pki"

    @property
    def device_pki(self) -> Path:
        return self.path / "pki-device"  # what a device container sees of the PKI

    @property
    def device_workdir(self) -> Path:
        return self.path / "device"

    @property
    def pacs_storage(self) -> Path:
        return self.path / "simulators" / "pacs"

    @property
    def audit_records(self) -> Path:
        return self.path / "simulators" / "arr" / "audit.jsonl"

    # Reads and writes.
    def holds_run(self) -> bool:
        return self.manifest.exists() or self.observations.exists()

    def prepare(self) -> None:
        """Make the directory for a new run; RunDirError when it already holds one."""
        if self.holds_run():
            raise RunDirError(f"{self.path}: already holds a run", hint="choose an empty --out directory")
        self.logs.mkdir(parents=True, exist_ok=True)

    def write_manifest(self, manifest: Manifest) -> Path:
        return write_json_atomic(self.manifest, to_json(manifest))

    def read_manifest(self) -> Manifest:
        if not self.path.is_dir():
            raise RunDirError(
                f"{self.path}: run directory not found", hint="pass a directory written by `patchgate run`"
            )
        return _load(
            self.manifest,
            Manifest.from_json,
            "not a valid manifest",
            missing="the run did not finish; rerun it with `patchgate run`",
            invalid="rerun the run; do not edit manifests",
        )

    def case_writer(self) -> CaseWriter:
        return CaseWriter(self.observations)

    def read_cases(self) -> tuple[CaseRecord, ...]:
        """Every case line in order; a corrupted line is an error naming the file and line number."""
        path = self.observations
        if not path.exists():
            return ()
        cases: list[CaseRecord] = []
        with path.open(encoding="utf-8", errors="strict") as handle:
            try:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        cases.append(CaseRecord.from_json(json.loads(line)))
                    except (ValueError, KeyError, TypeError) as exc:
                        raise RunDirError(
                            f"{path}:{number}: corrupted observation line ({type(exc).__name__}: {exc})",
                            hint="the run directory was edited or truncated; rerun that variant",
                        ) from None
            except UnicodeDecodeError as exc:
                raise RunDirError(f"{path}: not UTF-8 ({exc})", hint="rerun that variant") from None
        return tuple(cases)

    def cases_finished(self) -> int:
        """How many case lines are written so far (cheap: counts lines, parses nothing)."""
        try:
            with self.observations.open("rb") as handle:
                return sum(1 for _ in handle)
        except OSError:
            return 0

    def read(self) -> RunRecord:
        """The run as a RunRecord (manifest plus cases)."""
        return RunRecord(str(self.path), self.read_manifest(), self.read_cases())

    def write_context(self, context: SuiteContext) -> Path:
        return write_json_atomic(self.endpoints, to_json(context))

    def read_context(self) -> SuiteContext:
        return _load(
            self.endpoints,
            lambda d: SuiteContext.from_json(d, str(self.path)),
            "invalid endpoints file",
            missing="suites run inside `patchgate run`, which writes the endpoints",
            invalid="rerun with `patchgate run`",
        )

    def write_collected(self, cases: int) -> None:
        """How many cases the suites collected (the plugin writes it; the runner's progress reads it)."""
        write_json_atomic(self.progress, {"collected": cases})

    def collected(self) -> int:
        try:
            return int(json.loads(self.progress.read_text(encoding="utf-8"))["collected"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0


@dataclass(frozen=True)
class OutDir:
    """A validation's output directory: the comparison, its reports, and one run directory per variant run."""

    path: Path

    def run(self, label: str) -> RunDir:
        """`runs/LABEL` (baseline-1, baseline-2, candidate-1)."""
        return RunDir(self.path / "runs" / label)

    @property
    def comparison(self) -> Path:
        return self.path / "comparison.json"

    @property
    def html(self) -> Path:
        return self.path / "report.html"

    @property
    def junit(self) -> Path:
        return self.path / "junit.xml"

    @property
    def allure(self) -> Path:
        return self.path / "allure-results"


def read_run(directory: str | Path) -> RunRecord:
    """A run directory as a RunRecord (manifest plus cases)."""
    return RunDir(Path(directory)).read()
