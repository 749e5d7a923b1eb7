"""How reports name a suite case: its module and the test within it, from the stable case id."""

from __future__ import annotations

__all__ = ["split_case", "split_params", "suite_of"]


def split_case(case: str) -> tuple[str, str]:
    """`(module, test)` from `dir/test_x.py::TestC::test_y[p]`: `("dir.test_x", "TestC::test_y[p]")`."""
    path, sep, rest = case.partition("::")
    if not sep:
        return "", case
    module = path.removesuffix(".py").replace("/", ".").replace("\\", ".")
    return module, rest


def split_params(case: str) -> tuple[str, str]:
    """`(test, params)` from `dir/test_x.py::test_y[p]`: `("dir/test_x.py::test_y", "[p]")`; params "" when none.

    Only the last `::` part ending in `]` has parameters, and they start at its first `[` (a test's name is a
    Python identifier): a `[` elsewhere in a hostile id (an escape sequence) is part of the name.
    """
    head, sep, last = case.rpartition("::")
    if not last.endswith("]") or "[" not in last:
        return case, ""
    at = len(head) + len(sep) + last.index("[")
    return case[:at], case[at:]


def suite_of(case: str) -> str:
    """The suite of a case id: its path's first directory ("storage/test_store.py::t[x]" → "storage"), or for a
    module at the top level the module ("test_echo.py::t" → "test_echo")."""
    path = case.partition("::")[0].replace("\\", "/")
    head, sep, _ = path.partition("/")
    return head if sep else path.removesuffix(".py")
