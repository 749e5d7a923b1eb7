"""report.html's tables read back as cell texts, for tests that check what a reader sees in a table."""

from __future__ import annotations

from html.parser import HTMLParser

__all__ = ["table_rows"]


class _Table(HTMLParser):
    """Every row of the first table with class `css`, as cell texts (whitespace collapsed, <br> and <div> a space)."""

    def __init__(self, css: str) -> None:
        super().__init__()
        self.css = css
        self.rows: list[list[str]] = []
        self._in, self._done, self._cell = False, False, ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and not self._done and self.css in (dict(attrs).get("class") or "").split():
            self._in = True
        elif self._in and tag == "tr":
            self.rows.append([])
        elif self._in and tag in ("br", "div"):
            self._cell += " "

    def handle_endtag(self, tag: str) -> None:
        if self._in and tag == "table":
            self._in, self._done = False, True
        elif self._in and tag in ("td", "th"):
            self.rows[-1].append(" ".join(self._cell.split()))
            self._cell = ""

    def handle_data(self, data: str) -> None:
        if self._in:
            self._cell += data


def table_rows(page: str, css: str) -> list[list[str]]:
    """The body rows of report.html's first table of class `css` (the head row left out); [] when there is none."""
    table = _Table(css)
    table.feed(page)
    return table.rows[1:]
