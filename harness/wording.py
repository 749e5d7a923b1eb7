"""Comparison records in words (a difference's sides, a security change), below compare: its verdict uses them too."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from harness.model import JSON, Difference, DiffKind, SecurityChange

__all__ = ["ABSENT_WORDS", "MINUS", "describe", "format_side", "value_words"]

ABSENT_WORDS = "(not observed)"
MINUS = "\u2212"  # MINUS SIGN: marks removed list items; a hyphen reads as a dash in prose
_SHORT = 60  # longest item list quoted by describe(); the report has them all


def format_side(diff: Difference, side: Literal["before", "after"], *, pretty: bool = False) -> str:
    """One side of a difference for people: DICOM statuses as 0x%04X, absence said in words."""
    value = diff.before if side == "before" else diff.after
    absent = DiffKind.EXTRA if side == "before" else DiffKind.MISSING
    if diff.kind is absent:
        return "(absent)"
    if diff.kind is DiffKind.COUNT_CHANGED:
        return f"{value} items"
    if diff.kind is DiffKind.TIMING_CHANGED and isinstance(value, int | float):
        return f"{value:.3f} s"
    if diff.kind is DiffKind.STATUS_CHANGED and isinstance(value, int) and not isinstance(value, bool):
        return f"0x{value:04X}"
    if diff.path == "outcome" and isinstance(value, str):
        return value
    if pretty and isinstance(value, dict | list):
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
    return json.dumps(value, ensure_ascii=False)


def value_words(value: JSON, *, absent: bool = False) -> str:
    """A value in plain words: true/false, numbers, text as it is, list items comma-separated."""
    if absent:
        return ABSENT_WORDS
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value if value else "(empty)"
    if isinstance(value, list):
        return ", ".join(value_words(v) for v in value) if value else "(none)"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def describe(change: SecurityChange) -> str:
    """One line: `accepted false → true`, or for lists `forbidden + RC4-SHA; \u2212 DES-CBC3-SHA`."""
    if change.added or change.removed:
        parts = [f"+ {_items(change.added)}"] if change.added else []
        parts += [f"{MINUS} {_items(change.removed)}"] if change.removed else []
        return f"{change.name} {'; '.join(parts)}"
    before = value_words(change.before, absent=change.absent == "before")
    after = value_words(change.after, absent=change.absent == "after")
    return f"{change.name} {_cut(before)} → {_cut(after)}"


def _items(items: Sequence[JSON]) -> str:
    return _cut(", ".join(value_words(i) for i in items))


def _cut(text: str) -> str:
    return text if len(text) <= _SHORT else text[: _SHORT - 1] + "…"
