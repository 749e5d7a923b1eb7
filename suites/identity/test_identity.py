"""User identity negotiation (PS3.7 D.3.3.7): a C-ECHO offering each kind of credential, valid, invalid or empty.

Whether a device checks identities at all is its own business (one that ignores them admits
everything, and that is a valid baseline); what matters is that a patch does not change
who gets in silently. So each case records whether it was admitted and whether the device
answered with a server response, and asserts only what must hold of any association.
"""

from __future__ import annotations

import pytest

from harness.context import SuiteContext
from harness.model import Endpoint, Security
from harness.plugin import Observe
from simulators.identity.credentials import Quality, offer
from simulators.identity.negotiation import IdentityEcho, IdentityKind, echo_with_identity
from simulators.modality import Modality

pytestmark = pytest.mark.service("echo")

QUALITIES: tuple[Quality, ...] = ("valid", "invalid", "empty")
CASES = [pytest.param(kind, quality, id=f"{kind}-{quality}") for kind in IdentityKind for quality in QUALITIES]


def _check(result: IdentityEcho) -> None:
    assert result.accepted or result.error, "a refusal must say why"
    assert result.accepted or result.server_response is None, "a refused association carries no server response"


@pytest.mark.parametrize(("kind", "quality"), CASES)
def test_identity(
    kind: IdentityKind,
    quality: Quality,
    device: Endpoint,
    modality: Modality,
    patchgate_context: SuiteContext,
    observe: Observe,
) -> None:
    offered = offer(kind, quality, patchgate_context.identity)
    if quality == "valid":
        observe("credential", offered.source)
    result = echo_with_identity(modality, device, offered.negotiation(response_requested=True))
    # Admitted with a bad or empty credential is looser; with a valid one it says nothing of security.
    observe("admitted", result.accepted, security=Security.NONE if quality == "valid" else Security.EXPOSURE)
    observe("server_response", "none" if result.server_response is None else "present")
    _check(result)


def test_no_identity(device: Endpoint, modality: Modality, observe: Observe) -> None:
    result = echo_with_identity(modality, device, None)
    observe("admitted", result.accepted, security=Security.EXPOSURE)
    _check(result)
