"""simulators.attack.health.refusal: a rejection pynetdicom left unread in its queue is still a rejection."""

from __future__ import annotations

from queue import Queue
from types import SimpleNamespace
from typing import Any

import pytest
from pynetdicom.pdu_primitives import A_ASSOCIATE

from simulators.attack.health import refusal


def _association(*, rejected: bool, aborted: bool, result: int | None) -> Any:
    """What pynetdicom leaves of a requested association that was not established (below the network line)."""
    answer = None
    if result is not None:
        answer = A_ASSOCIATE()
        answer.result, answer.result_source, answer.diagnostic = result, 3, 2
    queue: Queue[Any] = Queue()
    if answer is not None and not rejected:
        queue.put(answer)  # never read: pynetdicom saw the closed socket first and marked it aborted
    return SimpleNamespace(
        is_rejected=rejected,
        is_aborted=aborted,
        acceptor=SimpleNamespace(primitive=answer if rejected else None),
        dul=SimpleNamespace(to_user_queue=queue),
    )


@pytest.mark.parametrize(
    ("rejected", "aborted", "result", "expected"),
    [
        (True, False, 2, ("rejected, transient", True)),
        (True, False, 1, ("rejected", False)),
        # The race CI met: a busy device's transient RJ and close, read by pynetdicom as an abort.
        (False, True, 2, ("rejected, transient", True)),
        (False, True, 1, ("rejected", False)),
        (False, True, None, ("aborted", False)),
        (False, False, None, ("no answer", False)),
    ],
)
def test_refusal(rejected: bool, aborted: bool, result: int | None, expected: tuple[str, bool]) -> None:
    assert refusal(_association(rejected=rejected, aborted=aborted, result=result)) == expected
