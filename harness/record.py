"""Run directories on disk: append-only observations.jsonl, manifest.json, and reading them back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO

from harness.errors import RunDirError
from harness.model import CaseRecord, Manifest, RunRecord, to_json

__all__ = [
    "MANIFEST",
    "OBSERVATIONS",
    "CaseWriter",
    "read_cases",
    "read_manifest",
    "read_run",
    "write_manifest",
]

MANIFEST = "manifest.json"
OBSERVATIONS = "observations.jsonl"


class CaseWriter:
    """Appends one JSON line per finished case and flushes it, so a killed run keeps every finished case."""

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


def write_manifest(directory: Path, manifest: Manifest) -> Path:
    """Write manifest.json atomically (a reader never sees half a manifest)."""
    path = directory / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(to_json(manifest), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST
    if not directory.is_dir():
        raise RunDirError(f"{directory}: run directory not found", hint="pass a directory written by `patchgate run`")
    try:
        return Manifest.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing", hint="the run did not finish; rerun it with `patchgate run`") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{path}: not a valid manifest: {exc}", hint="rerun the run; do not edit manifests") from None


def read_cases(path: Path) -> tuple[CaseRecord, ...]:
    """Every case line in order; a corrupted line is an error naming the file and line number."""
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


def read_run(directory: str | Path) -> RunRecord:
    """A run directory as a RunRecord (manifest plus cases)."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    return RunRecord(str(directory), manifest, read_cases(directory / OBSERVATIONS))
