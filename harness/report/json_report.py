"""comparison.json: the comparison and the manifests of its runs, for machines and for later re-reading."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from harness.model import JSON, Comparison, Manifest, to_json
from harness.rundir import OutDir

__all__ = ["JsonReporter"]


class JsonReporter:
    """Writes `comparison.json`; `Comparison.from_json` reads it back (the `runs` key is extra)."""

    name = "json"

    def write(self, comparison: Comparison, out: Path, runs: Sequence[Manifest]) -> Path:
        document = to_json(comparison)
        document["runs"] = [to_json(m) for m in runs]
        path = OutDir(out).comparison
        path.write_text(_text(document), encoding="utf-8")
        return path


def _text(document: dict[str, JSON]) -> str:
    """Sorted keys, one per line; a list (cases, security, runs) one compact item per line, the rest indented.

    Readable and greppable (a case is one line), and written by json's C encoder: with `indent`,
    json falls back to its Python encoder, which took seconds for a comparison of 10,000 cases.
    """
    lines = []
    for key in sorted(document):
        value = document[key]
        if isinstance(value, list) and value:
            items = ",\n".join(
                f"    {json.dumps(v, sort_keys=True, ensure_ascii=False, separators=(',', ':'))}" for v in value
            )
            text = f"[\n{items}\n  ]"
        else:  # JSON text holds no raw newline inside a string, so every newline here is indentation
            text = json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        lines.append(f"  {json.dumps(key, ensure_ascii=False)}: {text}")
    return "{\n" + ",\n".join(lines) + "\n}\n"
