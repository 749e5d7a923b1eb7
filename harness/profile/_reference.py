"""The key reference of docs/profiles.md, read off the spec dataclasses like the JSON Schema: one table per TOML table."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from harness.profile._schema import (
    Key,
    _by_kind,
    _doc,
    _exactly_one_of,
    _Layout,
    _layout,
    _Leaf,
    _one_of,
    _origin,
    _plain,
    _record,
    _required,
)
from harness.profile._specs import PolicyFile, Profile

__all__ = ["Table", "policy_reference", "profile_reference", "tables"]


@dataclass(frozen=True)
class Table:
    """One TOML table of the format: its header as written (`[device.actions.NAME]`), what it is, its keys."""

    header: str
    description: str
    rows: tuple[tuple[str, str, str, str], ...]  # key, type, default, meaning
    notes: tuple[str, ...] = ()


def tables(cls: type, top: str = "(top level, before any table)") -> list[Table]:
    """Every table of the TOML read as `cls`, in the order the dataclasses declare them."""
    return list(_tables(cls, (), _doc(cls), top))


def _tables(cls: type, path: tuple[str, ...], description: str, top: str, array: bool = False) -> Iterator[Table]:
    header = f"[[{'.'.join(path)}]]" if array else f"[{'.'.join(path)}]" if path else top
    yield from _group(_layout(cls), path, header, description, _notes(cls), top)


def _group(
    layout: _Layout, path: tuple[str, ...], header: str, description: str, notes: tuple[str, ...], top: str
) -> Iterator[Table]:
    rows: list[tuple[str, str, str, str]] = []
    below: list[Iterator[Table]] = []
    for name, node in layout.items():
        where = (*path, name)
        if isinstance(node, dict):  # a sub-table that groups fields (`[corpus] seed`)
            below.append(_group(node, where, f"[{'.'.join(where)}]", "", (), top))
            continue
        origin, args = _origin(node.type)
        if record := _record(origin):
            below.append(_tables(record, where, node.key.doc, top))
        elif origin is Mapping and (record := _record(_origin(args[1])[0])):  # a table of tables, by name
            below.append(_tables(record, (*where, "NAME"), node.key.doc, top))
        elif origin is tuple and (record := _record(_origin(args[0])[0])):  # an array of tables
            below.append(_tables(record, where, node.key.doc, top, array=True))
        else:
            rows.append((name, _type(node), _default(node), node.key.doc))
    if rows or notes:
        yield Table(header, description, tuple(rows), notes)
    for tables_below in below:
        yield from tables_below


def _notes(cls: type) -> tuple[str, ...]:
    notes = []
    if alternatives := _one_of(cls):
        notes.append(f"Needs at least one of {_names(alternatives)}.")
    if exclusive := _exactly_one_of(cls):
        notes.append(f"Needs exactly one of {_names(exclusive)}.")
    for kind, keys in _by_kind(cls).items():
        if keys:
            rest = f", and may take {_names(keys[1:])}" if keys[1:] else ""
            notes.append(f'`kind = "{kind}"` needs `{keys[0]}`{rest}; no other kind takes them.')
    return tuple(notes)


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _type(leaf: _Leaf) -> str:
    meta = leaf.key
    if meta.json:
        return "any TOML value but a date"
    origin, args = _origin(leaf.type)
    if origin is tuple:
        item = _scalar(args[0], meta)
        return f"{item} or array of them" if meta.one_or_many else f"array of {item}"
    if origin is Mapping:
        keys = f" (keys: {_names(meta.keys)})" if meta.keys else f" (keys: {meta.key_hint})" if meta.key_hint else ""
        return f"table of {_scalar(args[1], meta)}{keys}"
    return _scalar(leaf.type, meta)


def _scalar(tp: Any, meta: Key) -> str:
    origin, _ = _origin(tp)
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        return "one of " + ", ".join(f'"{m.value}"' for m in origin)
    if origin is bool:
        return "true/false"
    if origin in (int, float):
        what = "integer" if origin is int else "number"
        bounds = [
            f"{sign} {int(bound) if float(bound).is_integer() else bound}"
            for sign, bound in (("≥", meta.minimum), (">", meta.above), ("≤", meta.maximum))
            if bound is not None
        ]
        return f"{what} {', '.join(bounds)}" if bounds else what
    if meta.choices:
        return "one of " + ", ".join(f'"{c}"' for c in meta.choices)
    if meta.file:
        return "path to a file"
    if meta.path:
        return "path"
    if meta.pattern_hint:
        return f"string: {meta.pattern_hint}"
    return "non-blank string" if meta.nonblank else "string"


def _default(leaf: _Leaf) -> str:
    f = leaf.field
    if _required(f):
        return "required"
    default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
    if default is None:
        return "absent"
    plain = _plain(default)
    if plain == {}:
        return "`{}`"
    return f"`{json.dumps(plain, ensure_ascii=False)}`" if plain is not None else "absent"


def _markdown(found: list[Table]) -> str:
    out: list[str] = []
    for table in found:
        out.append(f"#### `{table.header}`\n")
        if table.description:
            out.append(f"{table.description[0].upper()}{table.description[1:].rstrip('.')}.\n")
        out += [f"{note}\n" for note in table.notes]
        if table.rows:
            out.append("| key | type | default | meaning |\n|---|---|---|---|")
            out += [f"| `{k}` | {_cell(t)} | {_cell(d)} | {_cell(m)} |" for k, t, d, m in table.rows]
            out.append("")
    return "\n".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def profile_reference() -> str:
    """Every key of a device profile, as Markdown tables (docs/profiles.md, between its markers)."""
    return _markdown(tables(Profile))


def policy_reference() -> str:
    """Every key of a policy file, as Markdown tables (docs/profiles.md, between its markers)."""
    return _markdown(tables(PolicyFile))
