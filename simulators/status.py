"""What a DIMSE status means: its category (Success, Warning, Failure, Cancel, Pending), as pynetdicom reads PS3.7."""

from __future__ import annotations

from pynetdicom.status import code_to_category

__all__ = ["REFUSING", "category", "refused"]

# Categories that mean the device did not do what was asked; a Warning did it (with a remark).
REFUSING = frozenset({"Failure"})


def _code(status: int | str) -> int:
    """0xB000, "0xB000", "B000" or 45056 as the number; ValueError for anything else."""
    return status if isinstance(status, int) else int(str(status), 16)


def category(status: int | str) -> str:
    """ "Success", "Warning", "Failure", "Cancel", "Pending" (or "Unknown" outside PS3.7's ranges)."""
    return str(code_to_category(_code(status)))


def refused(status: int | str) -> bool:
    """The status refuses the request (a Failure: 0x01xx refusals, 0xA***, 0xC***), not a Warning like 0xB000."""
    return category(status) in REFUSING
