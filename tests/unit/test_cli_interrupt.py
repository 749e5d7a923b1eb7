"""A signal that another exception swallowed still ends the command as interrupted (130, one line), not as an error."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness import cli


@pytest.fixture
def handlers() -> Iterator[None]:
    """main() installs its own signal handlers: give pytest's back afterwards."""
    saved = {signum: signal.getsignal(signum) for signum in cli._SIGNALS}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def _cut_short_import(args: Any, started: float) -> int:
    """What a SIGTERM during `import unicodedata` (compiling a \\N{...} escape) looks like to main()."""
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises in this thread long before
    except KeyboardInterrupt as exc:
        raise SyntaxError("(unicode error) \\N escapes not supported (can't load unicodedata module)") from exc
    return 0


def test_a_signal_that_became_a_syntax_error_is_an_interruption(
    handlers: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_dispatch", _cut_short_import)
    monkeypatch.setattr(cli, "cancel_runs", lambda: None)
    assert cli.main(["variants"]) == 130
    assert capsys.readouterr().err == "patchgate: interrupted; the runs' containers and processes were stopped\n"


def test_the_same_error_without_a_signal_is_an_internal_error(
    handlers: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: Any, started: float) -> int:
        raise SyntaxError("a real one")

    monkeypatch.setattr(cli, "_dispatch", broken)
    assert cli.main(["variants"]) == 2
    assert capsys.readouterr().err.startswith("patchgate: internal error: SyntaxError: a real one")
