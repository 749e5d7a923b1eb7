"""docs/api.md states the Python API as it is: each signature, every exported name, the error tree."""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import harness.api as api
from harness.errors import HarnessError
from tests.conftest import ROOT

GUIDE = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")


class _Shown:
    """An annotation kept as the text written in the source (`from __future__ import annotations`)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _shown(obj: Any) -> str:
    """`name(params) -> return` as the source writes it; a class's signature without its `-> None`."""
    sig = inspect.signature(obj)
    params = [
        p.replace(annotation=_Shown(p.annotation)) if isinstance(p.annotation, str) else p
        for p in sig.parameters.values()
    ]
    ret = sig.return_annotation
    sig = sig.replace(parameters=params, return_annotation=_Shown(ret) if isinstance(ret, str) else ret)
    text = f"{obj.__name__}{sig}"
    return text.removesuffix(" -> None") if inspect.isclass(obj) else text


def _documented_signatures() -> list[str]:
    blocks = re.findall(r"```text\n(.*?)```", GUIDE, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("harness.")]


def test_every_documented_signature_is_the_code_s() -> None:
    lines = _documented_signatures()
    assert len(lines) == 13
    for line in lines:
        qualified = line.split("(", 1)[0]
        module, name = qualified.rsplit(".", 1)
        obj = getattr(importlib.import_module(module), name)
        assert line == f"{module}.{_shown(obj)}", f"docs/api.md is stale for {qualified}"


def test_every_function_of_the_api_is_documented_and_every_type_named() -> None:
    documented = {line.split("(", 1)[0] for line in _documented_signatures()}
    for name in api.__all__:
        obj = getattr(api, name)
        if inspect.isfunction(obj):
            assert f"harness.api.{name}" in documented, name
        else:
            assert re.search(rf"\b{name}\b", GUIDE), f"docs/api.md never names harness.api.{name}"


def test_the_error_tree_is_every_harness_error_the_api_exports() -> None:
    tree = re.search(r"```text\nHarnessError\n(.*?)```", GUIDE, flags=re.S)
    assert tree
    drawn = set(re.findall(r"── (\w+Error)", tree[1]))
    exported = {
        n for n in api.__all__ if isinstance(getattr(api, n), type) and issubclass(getattr(api, n), HarnessError)
    }
    assert drawn == exported - {"HarnessError"}
    assert drawn == {c.__name__ for c in HarnessError.__subclasses__()}
