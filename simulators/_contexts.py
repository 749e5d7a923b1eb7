"""Presentation context lists that pynetdicom copies cheaply, for the accepting and requesting side."""

from __future__ import annotations

import copy
from typing import Any

from pynetdicom.presentation import PresentationContext

__all__ = ["CheapContexts"]


class CheapContexts(list[PresentationContext]):
    """Contexts copied per association in about 1 ms rather than 130 (177 contexts).

    pynetdicom deep-copies the acceptor's supported contexts for every connection it accepts,
    before any byte is read (with the PACS's 177 contexts that took 130 ms of the GIL, so a burst
    of 16 connections stalled everyone for seconds), and `AE.associate` deep-copies the requested
    ones (pynetdicom 3.0.4 ae.py). Negotiation only reads the acceptor's contexts
    (presentation.negotiate_as_acceptor) and sets `context_id` on the requestor's copies, so a
    shallow copy of each context is enough.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> list[PresentationContext]:
        return [copy.copy(cx) for cx in self]
