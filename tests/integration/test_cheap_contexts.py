"""simulators._contexts.CheapContexts on the requesting side: pynetdicom numbers its copies, never the caller's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydicom.uid import CTImageStorage, MRImageStorage
from pynetdicom import AE
from pynetdicom.presentation import PresentationContext, build_context

from simulators._contexts import CheapContexts
from simulators._net import LOOPBACK, VERIFICATION, free_port

SYNTAXES = (VERIFICATION, CTImageStorage, MRImageStorage)


@pytest.fixture
def port() -> Iterator[int]:
    """A bare pynetdicom SCP on loopback accepting the three abstract syntaxes."""
    scp = AE(ae_title="BARE")
    for syntax in SYNTAXES:
        scp.add_supported_context(syntax)
    number = free_port()
    server = scp.start_server((LOOPBACK, number), block=False)
    try:
        yield number
    finally:
        server.shutdown()


def test_associate_numbers_its_copies_and_leaves_the_caller_s_contexts_alone(port: int) -> None:
    mine = CheapContexts(build_context(s) for s in SYNTAXES)
    ae = AE(ae_title="REQUESTOR")
    ae.acse_timeout = ae.network_timeout = ae.connection_timeout = 10
    for _ in range(2):  # the same list proposed twice: each association numbers its own copies
        assoc = ae.associate(LOOPBACK, port, contexts=mine, ae_title="BARE")
        try:
            assert assoc.is_established
            accepted = sorted(assoc.accepted_contexts, key=lambda cx: int(cx.context_id or 0))
            assert [cx.context_id for cx in accepted] == [1, 3, 5]
            assert [cx.abstract_syntax for cx in accepted] == list(SYNTAXES)
            sent: list[PresentationContext] = assoc.requestor.requested_contexts
            assert [cx.context_id for cx in sent] == [1, 3, 5]
            assert not {id(cx) for cx in sent} & {id(cx) for cx in mine}
            # Copied shallow (what makes it cheap): the transfer syntax lists are shared, not copied.
            assert all(s.transfer_syntax is m.transfer_syntax for s, m in zip(sent, mine, strict=True))
        finally:
            assoc.release()
        assert [cx.context_id for cx in mine] == [None, None, None]
