"""The profile schema, read off the spec dataclasses: each key's type, default, range and meaning, stated once."""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import json
import math
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from harness.errors import ProfileError
from harness.profile._locate import Locator, Path

__all__ = ["Key", "Problem", "build", "dotted", "json_schema", "key"]

_META = "patchgate.key"


@dataclass(frozen=True)
class Key:
    """What a dataclass field means in TOML, kept in `field(metadata=key(...))`.

    A field without a Key is no TOML key: `name` takes the table's own name in a table of
    tables, `where` an `[[array]]` entry's FILE:LINE, anything else the caller passes.
    Constraints apply to a scalar, to each item of an array, and to each value of a table of strings.
    """

    doc: str
    toml: str = ""  # the dotted TOML key, relative to the table, when it is not the field's name
    minimum: float | None = None
    above: float | None = None  # exclusive minimum
    maximum: float | None = None
    choices: tuple[str, ...] = ()  # allowed values
    pattern: str = ""  # a regular expression each string must match
    pattern_hint: str = ""  # what the pattern asks for, in words
    nonblank: bool = False  # a string must hold more than whitespace
    strip: bool = False  # surrounding whitespace is dropped
    path: bool = False  # a path relative to the profile's folder, stored resolved
    file: bool = False  # a path (as above) to a file that must exist
    one_or_many: bool = False  # an array that may be written as one string
    keys: tuple[str, ...] = ()  # a table's allowed keys (empty: any)
    key_pattern: str = ""  # a regular expression each of a table's keys must match
    key_hint: str = ""
    required_keys: tuple[str, ...] = ()  # keys a table must have
    json: bool = False  # any JSON value: a TOML table, array, string, number or boolean (no dates)


def key(doc: str, **options: Any) -> dict[str, Key]:
    """Field metadata declaring a TOML key: `field(default=..., metadata=key("what it is", maximum=...))`."""
    return {_META: Key(doc, **options)}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a profile: where, what, and how to fix it."""

    path: Path
    message: str
    hint: str


@dataclass(frozen=True)
class _Leaf:
    field: dataclasses.Field[Any]
    type: Any
    key: Key


# A table's layout: TOML key -> a field, or a sub-table that groups fields (`[corpus] seed` -> corpus_seed).
_Layout = dict[str, "_Leaf | _Layout"]


@functools.cache
def _layout(cls: type) -> _Layout:
    hints = typing.get_type_hints(cls)
    layout: _Layout = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(_META)
        if meta is None:
            continue
        *groups, last = (meta.toml or f.name).split(".")
        table = layout
        for group in groups:
            sub = table.setdefault(group, {})
            assert isinstance(sub, dict)
            table = sub
        table[last] = _Leaf(f, hints[f.name], meta)
    return layout


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _one_of(cls: type) -> tuple[str, ...]:
    """Keys of which a table must give at least one (a spec's `ONE_OF` class variable)."""
    return tuple(getattr(cls, "ONE_OF", ()))


def _by_kind(cls: type) -> Mapping[str, tuple[str, ...]]:
    """A spec's `BY_KIND`: its `kind` value -> the keys only that kind takes, the first of them required."""
    return typing.cast(Mapping[str, tuple[str, ...]], getattr(cls, "BY_KIND", {}))


def _exactly_one_of(cls: type) -> tuple[str, ...]:
    """Keys of which a table must give exactly one (a spec's `EXACTLY_ONE_OF` class variable)."""
    return tuple(getattr(cls, "EXACTLY_ONE_OF", ()))


def _record(tp: Any) -> type | None:
    """`tp` when it is a spec dataclass (a TOML table), else None."""
    return tp if isinstance(tp, type) and dataclasses.is_dataclass(tp) else None


def _origin(tp: Any) -> tuple[Any, tuple[Any, ...]]:
    """(origin, args) of a type, with `X | None` read as X."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        (inner,) = (a for a in args if a is not type(None))
        return _origin(inner)
    return origin or tp, args


def dotted(path: Path) -> str:
    """`variants.candidate.files."/etc/x.cfg"`, `expected[2].kind`: a key path as a person writes it."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part)
            out += f".{name}" if out else name
    return out


def _type_name(tp: Any) -> str:
    origin, _ = _origin(tp)
    if _record(origin) or origin is Mapping:
        return "a table"
    if origin is tuple:
        return "an array"
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        return "str"
    return {bool: "true/false", int: "int", float: "int or float", str: "str"}.get(origin, str(origin))


def _range(meta: Key, integer: bool) -> str:
    parts = []
    if meta.minimum is not None:
        parts.append(f"≥ {meta.minimum:g}")
    if meta.above is not None:
        parts.append(f"> {meta.above:g}")
    if meta.maximum is not None:
        parts.append(f"≤ {meta.maximum:g}")
    what = "an integer" if integer else "a finite number"
    return f"{what} {' and '.join(parts)}" if parts else what


def _suggest(name: str, allowed: typing.Iterable[str], label: str = "allowed here") -> str:
    names = sorted(allowed)
    close = difflib.get_close_matches(name, names, n=1)
    known = f"{label}: {', '.join(names)}"
    return f"did you mean {close[0]!r}? {known}" if close else known


class _Builder:
    """Checks parsed TOML against a spec dataclass's layout, collecting every problem, and builds the instance."""

    def __init__(self, source: str, locator: Locator, base: FsPath) -> None:
        self.source = source
        self.locator = locator
        self.base = base
        self.problems: list[Problem] = []

    def fail(self, path: Path, message: str, hint: str) -> None:
        self.problems.append(Problem(path, message, hint))

    def table(self, cls: type, raw: Mapping[str, Any], path: Path, given: Mapping[str, Any]) -> Any:
        kwargs = dict(given)
        ok = self._group(_layout(cls), raw, path, kwargs)
        alternatives = _one_of(cls)
        if alternatives and not any(raw.get(name) for name in alternatives):
            ok = False
            self.fail(
                (*path, alternatives[0]),
                f"needs {' or '.join(alternatives)}",
                f"give at least one of: {', '.join(alternatives)}",
            )
        ok &= self._kind_keys(cls, raw, path)
        exclusive = _exactly_one_of(cls)
        written = [name for name in raw if name in exclusive]  # as written: the second is the one too many
        if exclusive and len(written) != 1:
            ok = False
            self.fail(
                (*path, written[1] if written else exclusive[0]),
                f"needs exactly one of {' or '.join(exclusive)}"
                + (f", got {' and '.join(written)}" if written else ""),
                f"keep one of: {', '.join(exclusive)}",
            )
        return cls(**kwargs) if ok else None

    def _kind_keys(self, cls: type, raw: Mapping[str, Any], path: Path) -> bool:
        """A table with a `kind` (BY_KIND): it has its kind's first key and none that belongs to another kind."""
        by_kind = _by_kind(cls)
        kind = raw.get("kind")
        if not by_kind or not isinstance(kind, str) or kind not in by_kind:
            return True  # no kinds, or a missing or unknown kind: reported as that key's own problem
        ok = True
        own = by_kind[kind]
        if own and own[0] not in raw:
            ok = False
            self.fail((*path, own[0]), f"missing key: a {kind} needs {own[0]}", f"add {own[0]} = ... ({kind!r})")
        for name in raw:
            owners = [k for k, keys in by_kind.items() if name in keys]
            if owners and kind not in owners:
                ok = False
                self.fail(
                    (*path, name),
                    f"is not a key of a {kind!r} table (only of {', '.join(map(repr, owners))})",
                    f"remove it, or change kind; a {kind!r} takes {', '.join(own) or 'no kind-specific key'}",
                )
        return ok

    def _group(self, layout: _Layout, raw: Mapping[str, Any], path: Path, kwargs: dict[str, Any]) -> bool:
        ok = True
        for name in raw:
            if name not in layout:
                ok = False
                self.fail((*path, name), "unknown key", _suggest(name, layout))
        for name, node in layout.items():
            where = (*path, name)
            if isinstance(node, dict):
                value = raw.get(name, {})
                if not isinstance(value, dict):
                    ok = False
                    self.fail(
                        where, f"expected a table, got {type(value).__name__} {value!r}", f"write [{dotted(where)}]"
                    )
                else:
                    ok &= self._group(node, value, where, kwargs)
                continue
            if name not in raw:
                if _required(node.field):
                    ok = False
                    self._missing(node, where)
                continue
            value = self.value(node.type, node.key, raw[name], where)
            if value is _BAD:
                ok = False
            elif node.field.default_factory is not dataclasses.MISSING and isinstance(value, Mapping):
                kwargs[node.field.name] = {**node.field.default_factory(), **value}  # given entries over the defaults
            else:
                kwargs[node.field.name] = value
        return ok

    def _missing(self, leaf: _Leaf, where: Path) -> None:
        record = _record(_origin(leaf.type)[0])
        if record:
            needed = [n for n, sub in _layout(record).items() if isinstance(sub, _Leaf) and _required(sub.field)]
            self.fail(where, "missing table", f"add a [{dotted(where)}] table with {', '.join(needed)}")
        else:
            parent = where[:-1]
            table = (
                f"that [[{dotted(parent[:-1])}]] entry"
                if parent and isinstance(parent[-1], int)
                else f"[{dotted(parent)}]"
            )
            self.fail(where, "missing key", f"add {where[-1]} = ... under {table} ({leaf.key.doc})")

    def value(self, tp: Any, meta: Key, value: Any, path: Path) -> Any:
        if meta.json:
            return self._json(meta, value, path)
        origin, args = _origin(tp)
        if record := _record(origin):
            if not isinstance(value, dict):
                return self._wrong(tp, value, path)
            return _BAD if (built := self.table(record, value, path, {})) is None else built
        if origin is tuple:
            return self._array(args[0], meta, value, path)
        if origin is Mapping:
            return self._mapping(args[1], meta, value, path)
        if isinstance(origin, type) and issubclass(origin, enum.Enum):
            choices = tuple(str(m.value) for m in origin)
            checked = self._string(dataclasses.replace(meta, choices=choices), value, path, tp)
            return checked if checked is _BAD else origin(checked)
        if origin is str:
            return self._string(meta, value, path, tp)
        if origin is bool:
            return value if isinstance(value, bool) else self._wrong(tp, value, path)
        if origin in (int, float):
            return self._number(origin, meta, value, path)
        raise TypeError(f"no TOML reading for {tp!r}")  # a spec author's mistake, not a user's

    def _json(self, meta: Key, value: Any, path: Path) -> Any:
        """A TOML value as JSON data; a date or time (TOML has them, JSON does not) is refused where it is."""
        if isinstance(value, dict):
            out = {k: self._json(meta, v, (*path, k)) for k, v in value.items()}
            return _BAD if _BAD in out.values() else out
        if isinstance(value, list):
            items = [self._json(meta, v, (*path, i)) for i, v in enumerate(value)]
            return _BAD if any(i is _BAD for i in items) else items
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(path, f"{value!r} is not a JSON number", meta.doc)
            return _BAD
        if isinstance(value, str | int | float | bool):
            return value
        self.fail(path, f"expected a JSON value, got {type(value).__name__} {value!r}", "write dates as strings")
        return _BAD

    def _wrong(self, tp: Any, value: Any, path: Path) -> Any:
        self.fail(path, f"expected {_type_name(tp)}, got {type(value).__name__} {value!r}", "fix the value's type")
        return _BAD

    def _number(self, tp: type, meta: Key, value: Any, path: Path) -> Any:
        integer = tp is int
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            return self._wrong(tp, value, path)
        if (
            not math.isfinite(value)
            or (meta.minimum is not None and value < meta.minimum)
            or (meta.above is not None and value <= meta.above)
            or (meta.maximum is not None and value > meta.maximum)
        ):
            self.fail(path, f"{value!r} is out of range: must be {_range(meta, integer)}", meta.doc)
            return _BAD
        return value if integer else float(value)

    def _string(self, meta: Key, value: Any, path: Path, tp: Any = str) -> Any:
        if not isinstance(value, str):
            return self._wrong(tp, value, path)
        if meta.strip:
            value = value.strip()
        if meta.nonblank and not value.strip():
            self.fail(path, "is empty", meta.doc)
        elif meta.choices and value not in meta.choices:
            self.fail(path, f"unknown value {value!r}", _suggest(value, meta.choices, "one of"))
        elif meta.pattern and not re.fullmatch(meta.pattern, value):
            self.fail(path, f"{value!r} is not {meta.pattern_hint or f'matching {meta.pattern}'}", meta.doc)
        elif meta.path or meta.file:
            resolved = (self.base / value).resolve()
            if meta.file and not resolved.is_file():
                self.fail(path, f"file {resolved} not found", "paths are relative to the profile's folder")
                return _BAD
            return str(resolved)
        else:
            return value
        return _BAD

    def _array(self, item: Any, meta: Key, value: Any, path: Path) -> Any:
        if meta.one_or_many and isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            return self._wrong(tuple, value, path)
        record = _record(_origin(item)[0])
        items = []
        for index, raw in enumerate(value):
            where = (*path, index)
            if record and isinstance(raw, dict):
                built = self.table(record, raw, where, self._given(record, where=self._where(where)))
                items.append(_BAD if built is None else built)
            else:
                items.append(self.value(item, meta, raw, where))
        return _BAD if any(i is _BAD for i in items) else tuple(items)

    def _mapping(self, item: Any, meta: Key, value: Any, path: Path) -> Any:
        if not isinstance(value, dict):
            return self._wrong(Mapping, value, path)
        ok = True
        for name in meta.required_keys:
            if name not in value:
                ok = False
                self.fail((*path, name), "missing table" if item is not str else "missing key", meta.doc)
        out: dict[str, Any] = {}
        record = _record(_origin(item)[0])
        for name, raw in value.items():
            where = (*path, name)
            if meta.keys and name not in meta.keys:
                ok = False
                self.fail(where, "unknown key", _suggest(name, meta.keys))
            elif meta.key_pattern and not re.fullmatch(meta.key_pattern, name):
                ok = False
                self.fail(where, f"{name!r} is not {meta.key_hint or f'matching {meta.key_pattern}'}", meta.doc)
            elif record:
                if not isinstance(raw, dict):
                    ok = False
                    self.fail(where, f"expected a table, got {type(raw).__name__} {raw!r}", f"write [{dotted(where)}]")
                    continue
                built = self.table(record, raw, where, self._given(record, name=name))
                ok &= built is not None
                out[name] = built
            else:
                out[name] = self.value(item, meta, raw, where)
                ok &= out[name] is not _BAD
        return out if ok else _BAD

    def _given(self, cls: type, **candidates: Any) -> dict[str, Any]:
        names = {f.name for f in dataclasses.fields(cls)}
        return {k: v for k, v in candidates.items() if k in names}

    def _where(self, path: Path) -> str:
        line = self.locator.line(path)
        return f"{self.source}:{line}" if line else f"{self.source}, {dotted(path)}"

    def _at(self, path: Path) -> str:
        """FILE:LINE, or FILE when the line is unknown (the key path follows in the message)."""
        line = self.locator.line(path)
        return f"{self.source}:{line}" if line else self.source

    def error(self) -> ProfileError:
        """All problems as one ProfileError, each on a line as `FILE:LINE: key.path: what is wrong`."""
        ordered = sorted(self.problems, key=lambda p: self.locator.line(p.path))  # file order; stable otherwise
        lines = [(f"{self._at(p.path)}: {dotted(p.path)}: {p.message}", p.hint) for p in ordered]
        if len(lines) == 1:
            return ProfileError(lines[0][0], hint=lines[0][1])
        listed = "\n".join(f"  {line} (hint: {hint})" for line, hint in lines)
        return ProfileError(f"{self.source}: {len(lines)} problems:\n{listed}")


_BAD: Any = object()  # a value that failed its check (the problem is recorded)


def build(cls: type, raw: Mapping[str, Any], *, source: str, text: str, base: FsPath, given: Mapping[str, Any]) -> Any:
    """An instance of spec dataclass `cls` from parsed TOML, or a ProfileError naming every problem."""
    builder = _Builder(source, Locator(text), base)
    built = builder.table(cls, raw, (), given)
    if builder.problems:
        raise builder.error()
    return built


def json_schema(cls: type, *, title: str) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) for TOML read as `cls`, from the same field metadata."""
    defs: dict[str, Any] = {}
    root = _object_schema(cls, defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        **root,
        "$defs": dict(sorted(defs.items())),
    }


def _doc(cls: type) -> str:
    return (cls.__doc__ or "").strip().splitlines()[0]


def _object_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    schema = {"description": _doc(cls), **_layout_schema(_layout(cls), defs)}
    alternatives = _one_of(cls)
    if alternatives:
        schema["anyOf"] = [{"required": [name]} for name in alternatives]
    if exclusive := _exactly_one_of(cls):
        schema["oneOf"] = [{"required": [name]} for name in exclusive]
    if by_kind := _by_kind(cls):
        every = sorted({k for keys in by_kind.values() for k in keys})
        schema["allOf"] = [
            {
                "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": {
                    **({"required": [keys[0]]} if keys else {}),
                    **({"not": {"anyOf": [{"required": [k]} for k in others]}} if others else {}),
                },
            }
            for kind, keys in by_kind.items()
            for others in ([k for k in every if k not in keys],)
        ]
    return schema


def _layout_schema(layout: _Layout, defs: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, node in layout.items():
        if isinstance(node, dict):
            properties[name] = _layout_schema(node, defs)
            continue
        properties[name] = _field_schema(node, defs)
        if _required(node.field):
            required.append(name)
    out: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        out["required"] = required
    return out


def _field_schema(leaf: _Leaf, defs: dict[str, Any]) -> dict[str, Any]:
    schema = {"description": leaf.key.doc, **_type_schema(leaf.type, leaf.key, defs)}
    f = leaf.field
    default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
    if default is not dataclasses.MISSING and (plain := _plain(default)) is not None:
        schema["default"] = plain
    return schema


def _plain(value: Any) -> Any:
    """`value` as JSON data, or None (no default stated) for None and spec records."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        items = [_plain(v) for v in value]
        return None if None in items else items
    if isinstance(value, Mapping):
        entries = {k: _plain(v) for k, v in value.items()}
        return None if None in entries.values() else entries
    return None


def _type_schema(tp: Any, meta: Key, defs: dict[str, Any]) -> dict[str, Any]:
    if meta.json:
        return {}  # any JSON value
    origin, args = _origin(tp)
    if record := _record(origin):
        if record.__name__ not in defs:
            defs[record.__name__] = {}  # a placeholder while it is built: a record may refer to itself
            defs[record.__name__] = _object_schema(record, defs)
        return {"$ref": f"#/$defs/{record.__name__}"}
    if origin is tuple:
        array = {"type": "array", "items": _type_schema(args[0], meta, defs)}
        return {"oneOf": [_type_schema(args[0], meta, defs), array]} if meta.one_or_many else array
    if origin is Mapping:
        out: dict[str, Any] = {"type": "object", "additionalProperties": _type_schema(args[1], meta, defs)}
        if meta.keys:
            out["propertyNames"] = {"enum": list(meta.keys)}
        elif meta.key_pattern:
            out["propertyNames"] = {"pattern": f"^(?:{meta.key_pattern})$"}
        if meta.required_keys:
            out["required"] = list(meta.required_keys)
        return out
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        return {"type": "string", "enum": [m.value for m in origin]}
    if origin is bool:
        return {"type": "boolean"}
    if origin in (int, float):
        out = {"type": "integer" if origin is int else "number"}
        for name, bound in (("minimum", meta.minimum), ("exclusiveMinimum", meta.above), ("maximum", meta.maximum)):
            if bound is not None:
                out[name] = int(bound) if float(bound).is_integer() else bound
        return out
    if origin is str:
        out = {"type": "string"}
        if meta.choices:
            out["enum"] = list(meta.choices)
        if meta.pattern:
            out["pattern"] = f"^(?:{meta.pattern})$"  # JSON Schema patterns are not anchored
        if meta.nonblank:
            out["pattern"] = r"\S"
        return out
    raise TypeError(f"no JSON Schema for {tp!r}")
