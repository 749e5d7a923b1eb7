"""Where each key of a TOML document is written: its line, by key path, from a small tokenizer (tomllib gives none)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = ["Locator", "Path"]

# A key path: table and key names, with an int for an array element or an `[[array]]` table (0-based).
Path = tuple[str | int, ...]

_PUNCTUATION = "[]{}=.,"
_NOT_BARE = frozenset(_PUNCTUATION + "#\"' \t\r\n")


@dataclass(frozen=True)
class _Token:
    kind: str  # one of _PUNCTUATION, "\n", "str" (a quoted string), "bare" (a bare key or any other scalar text)
    text: str  # a string's decoded value; a bare run as written
    line: int


_END = _Token("", "", 0)


def _string_end(text: str, start: int) -> int:
    """The index just past the string (basic or literal, one- or multi-line) that opens at `start`."""
    quote = text[start]
    triple = text.startswith(quote * 3, start)
    i = start + (3 if triple else 1)
    while i < len(text):
        if text[i] == "\\" and quote == '"':
            i += 2
        elif triple and text.startswith(quote * 3, i):
            i += 3
            # `""""` closes with a quote in the content: up to two more quotes belong to the string.
            for _ in range(2):
                if i < len(text) and text[i] == quote:
                    i += 1
            return i
        elif not triple and text[i] == quote:
            return i + 1
        else:
            i += 1
    return len(text)


def _tokens(text: str) -> Iterator[_Token]:
    i, line = 0, 1
    while i < len(text):
        char = text[i]
        if char in " \t\r":
            i += 1
        elif char == "#":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif char == "\n":
            yield _Token("\n", "", line)
            line, i = line + 1, i + 1
        elif char in _PUNCTUATION:
            yield _Token(char, char, line)
            i += 1
        elif char in "\"'":
            end = _string_end(text, i)
            raw = text[i:end]
            # Keys are one-line strings; tomllib decodes their escapes. Multi-line values need no text.
            value = "" if "\n" in raw else str(tomllib.loads(f"k = {raw}").get("k", ""))
            yield _Token("str", value, line)
            line += raw.count("\n")
            i = end
        else:
            start = i
            while i < len(text) and text[i] not in _NOT_BARE:
                i += 1
            yield _Token("bare", text[start:i], line)


class Locator:
    """The line each key, table, `[[array]]` entry and array element of a TOML text is written on.

    Meant for text tomllib has accepted: it follows `[a.b]` and `[[a]]` headers (counting
    array entries), dotted keys, inline tables and multi-line arrays, and skips comments
    and strings, so a `#` or `[` inside a value is never taken for syntax.
    """

    def __init__(self, text: str) -> None:
        self._lines: dict[Path, int] = {}
        self._counts: dict[Path, int] = {}  # `[[array]]` path -> entries so far
        self._tokens: list[_Token] = []
        self._pos = 0
        try:
            self._tokens = list(_tokens(text))
            self._document()
        except (IndexError, tomllib.TOMLDecodeError):  # malformed text: keep what was found
            pass

    def line(self, path: Sequence[str | int]) -> int:
        """The line of `path`, else of its nearest written ancestor (a missing key: its table); 0 if none."""
        key = tuple(path)
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[:-1]
        return 0

    def _peek(self) -> _Token:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else _END

    def _take(self) -> _Token:
        token = self._peek()
        self._pos += 1
        return token

    def _skip_newlines(self) -> None:
        while self._peek().kind == "\n":
            self._pos += 1

    def _document(self) -> None:
        table: Path = ()
        while self._pos < len(self._tokens):
            self._skip_newlines()
            token = self._peek()
            if token is _END:
                return
            if token.kind == "[":
                self._pos += 1
                array = self._peek().kind == "["
                self._pos += array
                table = self._header(self._key(), array, token.line)
                self._pos += 1 + array  # "]" or "]]"
            else:
                self._assignment(table)
            while self._peek().kind not in ("\n", ""):  # a comment or nothing is left on the line
                self._pos += 1

    def _key(self) -> list[str]:
        """A dotted key: names separated by dots, up to `=` or `]`."""
        names = [self._take().text]
        while self._peek().kind == ".":
            self._pos += 1
            names.append(self._take().text)
        return names

    def _mark(self, path: Path, line: int) -> Path:
        self._lines.setdefault(path, line)
        return path

    def _header(self, names: list[str], array: bool, line: int) -> Path:
        path: Path = ()
        for name in names[:-1]:
            path = self._mark((*path, name), line)
            if path in self._counts:  # `[a.b]` after `[[a]]`: inside a's latest entry
                path = (*path, self._counts[path] - 1)
        path = self._mark((*path, names[-1]), line)
        if not array:
            return path
        index = self._counts.get(path, 0)
        self._counts[path] = index + 1
        return self._mark((*path, index), line)

    def _assignment(self, table: Path) -> None:
        line = self._peek().line
        path = table
        for name in self._key():
            path = self._mark((*path, name), line)
        self._pos += 1  # "="
        self._value(path)

    def _value(self, path: Path) -> None:
        token = self._peek()
        if token.kind == "[":
            self._pos += 1
            index = 0
            while True:
                self._skip_newlines()
                if self._peek().kind in ("]", ""):
                    self._pos += 1
                    return
                element = self._mark((*path, index), self._peek().line)
                self._value(element)
                index += 1
                self._skip_newlines()
                if self._peek().kind == ",":
                    self._pos += 1
        elif token.kind == "{":
            self._pos += 1
            while True:
                self._skip_newlines()
                if self._peek().kind in ("}", ""):
                    self._pos += 1
                    return
                self._assignment(path)
                self._skip_newlines()
                if self._peek().kind == ",":
                    self._pos += 1
        else:  # a scalar: its tokens run to the next separator (`3.14` and dates are several tokens)
            while self._peek().kind not in (",", "]", "}", "\n", ""):
                self._pos += 1
