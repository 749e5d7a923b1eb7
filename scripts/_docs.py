"""Rewrite one benchmark's section of docs/benchmarks.md between its markers, leaving the rest alone."""

from __future__ import annotations

from pathlib import Path

__all__ = ["rewrite_section"]


def rewrite_section(path: Path, begin: str, end: str, section: str, intro: str = "# Benchmarks\n\n") -> None:
    """Replace the text between `begin` and `end` in `path` (created with `intro`, or appended, if missing)."""
    block = f"{begin}\n{section}{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else intro
    start, stop = text.find(begin), text.find(end)
    if start >= 0 and stop > start:
        text = text[:start] + block + text[stop + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
