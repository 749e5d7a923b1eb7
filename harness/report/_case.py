"""How reports name a suite case: its module and the test within it, from the stable case id."""

from __future__ import annotations

__all__ = ["split_case"]


def split_case(case: str) -> tuple[str, str]:
    """`(module, test)` from `dir/test_x.py::TestC::test_y[p]`: `("dir.test_x", "TestC::test_y[p]")`."""
    path, sep, rest = case.partition("::")
    if not sep:
        return "", case
    module = path.removesuffix(".py").replace("/", ".").replace("\\", ".")
    return module, rest
