"""DIMSE statuses by their meaning: warnings are served, refusals in any range are refused."""

from __future__ import annotations

import importlib

import pytest

from simulators.status import category, refused


@pytest.mark.parametrize(
    ("status", "meaning", "refuses"),
    [
        (0x0000, "Success", False),
        ("0xB000", "Warning", False),  # coercion of data elements
        ("0xB007", "Warning", False),
        ("0x0107", "Warning", False),  # attribute list error
        ("B006", "Warning", False),
        (0x0122, "Failure", True),  # refused: SOP class not supported
        ("0x0124", "Failure", True),  # refused: not authorised
        ("0xA700", "Failure", True),
        ("0xA801", "Failure", True),
        ("0xC000", "Failure", True),
        ("0xFE00", "Cancel", False),
        ("0xFF00", "Pending", False),
    ],
)
def test_meaning(status: int | str, meaning: str, refuses: bool) -> None:
    assert category(status) == meaning
    assert refused(status) is refuses


@pytest.mark.parametrize(
    ("statuses", "admitted"),
    [
        (["0x0000"], True),
        (["0xB000"], True),  # was "not admitted": a warning read as a refusal
        (["0xB007"], True),
        (["0x0107"], True),
        (["0x0122"], False),  # was "admitted": a refusal below 0xA000
        (["0x0124"], False),
        (["0xA700"], False),
        ([None], True),
    ],
)
def test_access_is_judged_by_meaning(statuses: list[object], admitted: bool) -> None:
    access = importlib.import_module("suites.access.test_access")
    assert access._admitted({"association": True, "statuses": statuses}) is admitted
    assert access._admitted({"association": False, "statuses": statuses}) is False
