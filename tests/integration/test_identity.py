"""User identity negotiation over 127.0.0.1: a pynetdicom Verification SCP enforcing a policy, the modality offering.

Also runs the identity suite itself (as `patchgate run` does) against such an SCP and
against one that ignores identities, and reads back what it recorded.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pynetdicom import AE, evt
from pynetdicom.events import EventHandlerType

from harness.context import SuiteContext
from harness.model import Endpoint, Outcome, Security
from harness.rundir import RunDir
from harness.runner import suites_root
from simulators._net import LOOPBACK, VERIFICATION, free_port
from simulators.identity.credentials import Quality, offer, policy_from_credentials, standard_credentials
from simulators.identity.negotiation import IdentityKind, echo_with_identity, negotiation
from simulators.identity.policy import IdentityPolicy, identity_handlers
from simulators.identity.tokens import jwt_token
from simulators.modality import Modality

SECRET = "integration-secret"
CREDENTIALS = standard_credentials(SECRET)
REJECTED = "association rejected (result 2, source 2, reason 1)"  # transient, ACSE, no reason given
KINDS = [pytest.param(kind, id=str(kind)) for kind in IdentityKind]
# Generous timeouts: a refusal is asserted by its A-ASSOCIATE-RJ reason, never by timing, and a
# loaded CI machine must not turn a slow answer into a different error.
TIMEOUTS = {"acse_timeout": 15.0, "dimse_timeout": 15.0, "network_timeout": 15.0}
MODALITY = Modality("PGMODALITY", **TIMEOUTS)


@dataclass
class Scp:
    """A Verification SCP on a free loopback port, and the identities its EVT_USER_ID handler was shown."""

    endpoint: Endpoint
    seen: list[tuple[int, bytes, bytes, bool]] = field(default_factory=list)


def _recording(handlers: list[EventHandlerType], scp: Scp) -> list[EventHandlerType]:
    """`handlers` with the EVT_USER_ID one wrapped to record what it was given."""

    def wrap(inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def handle(event: Any) -> Any:
            requested = event.assoc.requestor.user_identity.positive_response_requested
            scp.seen.append((event.user_id_type, event.primary_field, event.secondary_field or b"", requested))
            return inner(event)

        return handle

    return [(h[0], wrap(h[1])) if h[0] is evt.EVT_USER_ID else h for h in handlers]


@contextlib.contextmanager
def _serve(policy: IdentityPolicy | None) -> Iterator[Scp]:
    port = free_port()
    scp = Scp(Endpoint("IDSCP", LOOPBACK, port))
    ae = AE("IDSCP")
    ae.add_supported_context(VERIFICATION)
    ae.acse_timeout = ae.network_timeout = 15
    handlers = _recording(identity_handlers(policy), scp) if policy is not None else []
    server = ae.start_server((LOOPBACK, port), block=False, evt_handlers=handlers)
    assert server is not None
    try:
        yield scp
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def strict_scp() -> Iterator[Scp]:
    """Admits exactly CREDENTIALS and refuses requests without an identity."""
    with _serve(policy_from_credentials(CREDENTIALS, required=True)) as scp:
        yield scp


@pytest.fixture(scope="module")
def lenient_scp() -> Iterator[Scp]:
    """Checks an identity when one is offered; admits requests without one."""
    with _serve(policy_from_credentials(CREDENTIALS, required=False)) as scp:
        yield scp


@pytest.fixture(scope="module")
def open_scp() -> Iterator[Scp]:
    """Binds no identity handler: pynetdicom then ignores identities and admits everyone."""
    with _serve(None) as scp:
        yield scp


@pytest.fixture
def strict(strict_scp: Scp) -> Scp:
    strict_scp.seen.clear()
    return strict_scp


@pytest.mark.parametrize("kind", KINDS)
def test_valid_identity_is_admitted_with_a_server_response_for_types_3_to_5(kind: IdentityKind, strict: Scp) -> None:
    offered = offer(kind, "valid", CREDENTIALS)
    result = Modality("PGMODALITY", **TIMEOUTS, identity=offered.negotiation()).echo(strict.endpoint)
    assert (result.accepted, result.status, result.error) == (True, 0x0000, "")
    assert strict.seen == [(kind.code, offered.primary, offered.secondary, True)]

    echoed = echo_with_identity(MODALITY, strict.endpoint, offered.negotiation(response_requested=True))
    assert (echoed.accepted, echoed.status) == (True, 0x0000), echoed.error
    if kind.code < 3:
        # pynetdicom sends a positive response only for types 3-5 (PS3.7 allows an empty one for 1-2).
        assert echoed.server_response is None
        return
    response = echoed.server_response
    assert response, "a positive response was requested and the identity verified"
    looks_right = {
        IdentityKind.KERBEROS: response.startswith(b"PGKRB5\x02"),  # the stand-in's reply
        IdentityKind.SAML: b"urn:oasis:names:tc:SAML:2.0:status:Success" in response,
        IdentityKind.JWT: response.count(b".") == 2 and response.startswith(b"eyJ"),
    }
    assert looks_right[kind], response[:80]


def test_no_server_response_unless_requested(strict: Scp) -> None:
    item = negotiation(IdentityKind.JWT, CREDENTIALS["jwt"].encode(), response_requested=False)
    result = echo_with_identity(MODALITY, strict.endpoint, item)
    assert (result.accepted, result.server_response) == (True, None), result.error
    assert strict.seen[-1][3] is False


@pytest.mark.parametrize("quality", ["invalid", "empty"])
@pytest.mark.parametrize("kind", KINDS)
def test_invalid_or_empty_identity_is_refused(kind: IdentityKind, quality: Quality, strict: Scp) -> None:
    offered = offer(kind, quality, CREDENTIALS)
    result = echo_with_identity(MODALITY, strict.endpoint, offered.negotiation())
    assert (result.accepted, result.status, result.error, result.server_response) == (False, None, REJECTED, None)
    # The acceptor was shown the identity as offered (type 2 with an empty passcode included).
    [(code, primary, secondary, _)] = strict.seen
    assert (code, secondary) == (kind.code, offered.secondary)
    if offered.primary:
        assert primary == offered.primary
    else:
        # pynetdicom 3.0.4 decodes an empty primary field as the rest of the item (here the
        # secondary field's 2-byte length); any policy refuses it all the same.
        assert primary == b"\x00\x00"


def test_expired_jwt_is_refused_over_the_wire() -> None:
    policy = IdentityPolicy(jwt_secret=SECRET)
    with _serve(policy) as scp:
        fresh = echo_with_identity(MODALITY, scp.endpoint, negotiation("jwt", jwt_token(SECRET, "a").encode()))
        assert fresh.accepted, fresh.error
        stale = negotiation("jwt", jwt_token(SECRET, "a", expired=True).encode())
        assert echo_with_identity(MODALITY, scp.endpoint, stale).error == REJECTED


def test_no_identity_is_refused_when_required(strict: Scp) -> None:
    result = echo_with_identity(MODALITY, strict.endpoint, None)
    assert (result.accepted, result.error) == (False, REJECTED)
    assert strict.seen == []
    # The SCP is still serving after rejecting from EVT_REQUESTED.
    admitted = Modality("PGMODALITY", **TIMEOUTS, identity=offer("username", "valid", CREDENTIALS).negotiation())
    assert admitted.echo(strict.endpoint).accepted


def test_no_identity_is_admitted_when_not_required_but_a_bad_one_still_refused(lenient_scp: Scp) -> None:
    result = MODALITY.echo(lenient_scp.endpoint)
    assert (result.accepted, result.status) == (True, 0x0000), result.error
    bad = offer("jwt", "invalid", CREDENTIALS).negotiation()
    assert echo_with_identity(MODALITY, lenient_scp.endpoint, bad).error == REJECTED


def test_an_scp_without_identity_handlers_admits_everyone(open_scp: Scp) -> None:
    for item in [None, offer("username_passcode", "empty", CREDENTIALS).negotiation()]:
        result = echo_with_identity(MODALITY, open_scp.endpoint, item)
        assert (result.accepted, result.server_response) == (True, None), result.error


# -- the suite, run as `patchgate run` runs it ----------------------------------------------


def _run_suite(tmp_path: Path, device: Endpoint, identity: dict[str, str], services: tuple[str, ...]) -> dict[str, Any]:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    RunDir(run_dir).write_context(
        SuiteContext(
            run_dir=str(run_dir),
            device=device,
            pacs=Endpoint("PACS", LOOPBACK, free_port()),
            pacs_storage=str(tmp_path / "pacs"),
            modality_ae_title="PGMODALITY",
            services=services,
            corpus_seed=1,
            identity=identity,
        )
    )
    ini = run_dir / "pytest.ini"
    ini.write_text("[pytest]\naddopts = -p no:cacheprovider\n", encoding="utf-8")
    root = suites_root()
    argv = [sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", str(root), "--import-mode=importlib"]
    argv += ["--patchgate-run", str(run_dir), "-q", str(root / "identity")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=run_dir, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    cases = {c.case.partition("::")[2]: c for c in RunDir(run_dir).read_cases()}
    assert len(cases) == 16, sorted(cases)
    return cases


def test_suite_records_a_strict_device(tmp_path: Path, strict_scp: Scp) -> None:
    cases = _run_suite(tmp_path, strict_scp.endpoint, CREDENTIALS, ("echo",))
    assert {c.outcome for c in cases.values()} == {Outcome.PASSED}
    for kind in IdentityKind:
        valid = cases[f"test_identity[{kind}-valid]"]
        response = "present" if kind.code >= 3 else "none"
        assert valid.observed() == {"credential": "profile", "admitted": True, "server_response": response}
        for quality in ("invalid", "empty"):
            case = cases[f"test_identity[{kind}-{quality}]"]
            assert case.observed() == {"admitted": False, "server_response": "none"}, case.case
            assert {o.name: o.security for o in case.observations}["admitted"] is Security.EXPOSURE
    assert cases["test_no_identity"].observed() == {"admitted": False}


def test_suite_records_a_device_that_ignores_identity(tmp_path: Path, open_scp: Scp) -> None:
    cases = _run_suite(tmp_path, open_scp.endpoint, {}, ("echo",))
    assert {c.outcome for c in cases.values()} == {Outcome.PASSED}
    assert {tuple(sorted(c.observed().items())) for n, c in cases.items() if n.endswith("-valid]")} == {
        (("admitted", True), ("credential", "generated"), ("server_response", "none"))
    }
    assert all(c.observed()["admitted"] is True for c in cases.values())


def test_suite_is_not_applicable_without_echo(tmp_path: Path, open_scp: Scp) -> None:
    cases = _run_suite(tmp_path, open_scp.endpoint, {}, ("store",))
    assert {c.outcome for c in cases.values()} == {Outcome.NOT_APPLICABLE}
