"""Association negotiation: which (SOP class, transfer syntax) pairs the device accepts, and what its AC/RJ says.

Each declared service gets one association (at most 128 contexts): one context per
(SOP class, transfer syntax) pair, so each pair is accepted or rejected with its own reason,
plus one context per SOP class proposing every transfer syntax, to see which one the device
chooses. The A-ASSOCIATE-AC's fields are recorded per service; the implementation class UID
and version name once, tagged as software identity, so a policy accepts an upgrade in one entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    RLELossless,
)

from harness.context import SuiteContext
from harness.model import Endpoint, Observation
from harness.plugin import Observe
from simulators._net import VERIFICATION, qr_sop_class
from simulators.corpus import SOP_CLASSES
from simulators.identity.credentials import offer
from simulators.modality import Modality
from simulators.negotiation import Negotiation, Proposal, context_words, negotiate, syntax_words

# The transfer syntaxes proposed, one context each; Explicit VR Big Endian is retired but still offered by some.
SYNTAXES: tuple[str, ...] = (
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    RLELossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEG2000Lossless,
    JPEG2000,
)
# Service -> label -> SOP class: verification, the corpus's storage classes, patient and study root Q/R.
CLASSES: Mapping[str, Mapping[str, str]] = {
    "echo": {"verification": VERIFICATION},
    "store": SOP_CLASSES,
    **{s: {m: qr_sop_class(m, s) for m in ("patient", "study")} for s in ("find", "move", "get")},
}
# A C-GET requestor takes the SCP role for the storage classes it wants sent back (PS3.4 C.4.3).
GET_ROLES: Mapping[str, tuple[bool, bool]] = {uid: (False, True) for uid in SOP_CLASSES.values()}
# Relational queries (FIND) / relational retrieval (MOVE, GET): PS3.4 C.5.1.1, C.5.2.1, C.5.3.1.
RELATIONAL = b"\x01"
# Proposed in every association, so the AC's reply (or its absence) is seen.
ASYNC_WINDOW = (4, 4)

PAIRS = [
    pytest.param(service, label, marks=pytest.mark.service(service), id=f"{service}-{label}")
    for service, classes in CLASSES.items()
    for label in classes
]
SERVICES = [pytest.param(s, marks=pytest.mark.service(s), id=s) for s in CLASSES]

Negotiated = Callable[[str], Negotiation]


def _proposals(service: str) -> list[Proposal]:
    """One context per (SOP class, transfer syntax), then one per SOP class with them all; GET adds storage."""
    classes = CLASSES[service].values()
    single = [Proposal(uid, (ts,)) for uid in classes for ts in SYNTAXES]
    together = [Proposal(uid, SYNTAXES) for uid in classes]
    storage = [Proposal(uid, SYNTAXES) for uid in GET_ROLES] if service == "get" else []
    return [*single, *together, *storage]


@pytest.fixture(scope="module")
def negotiated(device: Endpoint, modality: Modality) -> Negotiated:
    """Service -> what its one association came to; each service is negotiated once per module."""
    done: dict[str, Negotiation] = {}

    def get(service: str) -> Negotiation:
        if service not in done:
            qr = service in ("find", "move", "get")
            done[service] = negotiate(
                device,
                modality.ae_title,
                _proposals(service),
                roles=GET_ROLES if service == "get" else None,
                sop_class_extended={uid: RELATIONAL for uid in CLASSES[service].values()} if qr else None,
                asynchronous_operations=ASYNC_WINDOW,
                ssl_context=modality.ssl_context,
            )
        result = done[service]
        if result.error:  # no AC and no RJ: nothing about negotiation to record
            pytest.fail(f"no association negotiated for {service!r}: {result.error}")
        return result

    return get


@pytest.mark.parametrize(("service", "label"), PAIRS)
def test_transfer_syntaxes(service: str, label: str, negotiated: Negotiated, observe: Observe) -> None:
    result = negotiated(service)
    if result.accepted is None:
        observe("association", result.words())
        return
    uid = CLASSES[service][label]
    mine = [c for c in result.contexts if c.proposal.abstract_syntax == uid]
    single = {syntax_words(c.proposal.transfer_syntaxes[0]): context_words(c) for c in mine[: len(SYNTAXES)]}
    observe("transfer_syntaxes", single)
    together = mine[len(SYNTAXES)]
    observe("chosen", syntax_words(together.transfer_syntax) if together.transfer_syntax else context_words(together))
    assert len(single) == len(SYNTAXES), "one answer per proposed transfer syntax"
    assert all(c.transfer_syntax in ("", *c.proposal.transfer_syntaxes) for c in mine), "accepted a syntax not proposed"


@pytest.mark.parametrize("service", SERVICES)
def test_acceptance(service: str, negotiated: Negotiated, observe: Observe) -> None:
    result = negotiated(service)
    observe("association", result.words())
    ac = result.accepted
    if ac is None:
        assert result.rejected is not None
        return
    observe("maximum_length", "unlimited" if ac.maximum_length == 0 else ac.maximum_length)
    window = ac.asynchronous_operations
    observe("asynchronous_operations", "no reply" if window is None else {"invoked": window[0], "performed": window[1]})
    if service == "get":
        observe(
            "role_selection",
            {syntax_words(uid): "no reply" if uid not in ac.roles else _roles(*ac.roles[uid]) for uid in GET_ROLES},
        )
    if service in ("find", "move", "get"):
        observe(
            "sop_class_extended",
            {
                syntax_words(uid): ac.sop_class_extended[uid].hex() if uid in ac.sop_class_extended else "no reply"
                for uid in CLASSES[service].values()
            },
        )


def test_implementation(services: tuple[str, ...], negotiated: Negotiated, observe: Observe) -> None:
    declared = [s for s in CLASSES if s in services]
    if not declared:
        pytest.skip("not applicable: the device's profile declares no service this suite negotiates")
    result = negotiated(declared[0])
    if result.accepted is None:
        pytest.skip(f"not applicable: the device refused the association ({result.words()}); no AC to read")
    ac = result.accepted
    # {implementation: version}, like a package inventory: an upgrade is one changed value, one policy entry.
    identity = {f"DICOM implementation {ac.implementation_class_uid}": ac.implementation_version_name or "(none)"}
    observe("implementation", identity, tags=(Observation.INVENTORY,))
    assert ac.implementation_class_uid, "an A-ASSOCIATE-AC always carries an Implementation Class UID (PS3.7 D.3.3.2)"


@pytest.mark.service("echo")
def test_refused_association(
    device: Endpoint, modality: Modality, patchgate_context: SuiteContext, observe: Observe
) -> None:
    """A C-ECHO association offering a wrong passcode: a device that checks identities refuses it (RJ words)."""
    identity = offer("username_passcode", "invalid", patchgate_context.identity).negotiation(response_requested=True)
    result = negotiate(
        device,
        modality.ae_title,
        [Proposal(VERIFICATION, (ImplicitVRLittleEndian,))],
        extra=[identity],
        ssl_context=modality.ssl_context,
    )
    if result.error:
        pytest.fail(f"no answer to the association request: {result.error}")
    observe("association", result.words())


def _roles(scu: bool | None, scp: bool | None) -> str:
    """The acceptor's SCP/SCU role selection reply in words."""
    said = {True: "yes", False: "no", None: "not said"}
    return f"SCU {said[scu]}, SCP {said[scp]}"
