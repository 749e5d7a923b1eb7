"""comparison.json: the comparison and the manifests of its runs, for machines and for later re-reading."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from harness.model import Comparison, Manifest, to_json
from harness.rundir import OutDir

__all__ = ["JsonReporter"]


class JsonReporter:
    """Writes `comparison.json`; `Comparison.from_json` reads it back (the `runs` key is extra)."""

    name = "json"

    def write(self, comparison: Comparison, out: Path, runs: Sequence[Manifest]) -> Path:
        document = to_json(comparison)
        document["runs"] = [to_json(m) for m in runs]
        path = OutDir(out).comparison
        path.write_text(json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path
