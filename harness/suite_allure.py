"""The suites' Allure results: allure-pytest's listener, its files handed to a writer process (harness.batch)."""

from __future__ import annotations

import functools
import json
import uuid
from pathlib import Path
from typing import Any

import allure_commons
import pytest
from allure_pytest.listener import AllureListener
from attr import asdict

from harness.batch import Stream
from harness.errors import RunDirError

__all__ = ["start"]


class _StreamLogger:
    """allure-commons' logger hooks, as `AllureFileLogger` writes them (same names, same JSON), through a Stream.

    allure-pytest's own logger creates, writes and renames each of a run's ~670 files on the suites' main
    thread, while the device waits: about 0.5 s of a reference run's suites (docs/benchmarks.md).
    """

    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    def _item(self, item: Any) -> None:
        data = asdict(item, filter=lambda _, v: v or v is False)
        name = item.file_pattern.format(prefix=uuid.uuid4())
        self.stream.put(name, json.dumps(data, ensure_ascii=False).encode("utf-8"))

    @allure_commons.hookimpl
    def report_result(self, result: Any) -> None:
        self._item(result)

    @allure_commons.hookimpl
    def report_container(self, container: Any) -> None:
        self._item(container)

    @allure_commons.hookimpl
    def report_globals(self, globals_item: Any) -> None:
        self._item(globals_item)

    @allure_commons.hookimpl
    def report_attached_file(self, source: str, file_name: str) -> None:
        self.stream.put(file_name, Path(source).read_bytes())

    @allure_commons.hookimpl
    def report_attached_data(self, body: str | bytes, file_name: str) -> None:
        self.stream.put(file_name, body.encode("utf-8") if isinstance(body, str) else body)


class _Closer:
    """Ends the stream when the session ends; a writer that failed makes pytest exit 3 (an internal error) with
    its reason, never 1, which would read as failed cases."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        try:
            self.stream.close()
        except RunDirError as exc:
            pytest.exit(exc.one_line(), returncode=pytest.ExitCode.INTERNAL_ERROR)


def start(config: pytest.Config, folder: Path) -> None:
    """Register allure-pytest's listener with a streaming logger into `folder`, as `--alluredir` would with its own."""
    stream = Stream(folder)
    listener = AllureListener(config)
    logger = _StreamLogger(stream)
    config.pluginmanager.register(listener, "allure_listener")
    config.pluginmanager.register(_Closer(stream), "patchgate-allure-closer")
    for plugin in (listener, logger):
        allure_commons.plugin_manager.register(plugin)
        config.add_cleanup(functools.partial(allure_commons.plugin_manager.unregister, plugin))
