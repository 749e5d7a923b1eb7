"""DICOM over TLS on 127.0.0.1: the PACS simulator serving TLS, the TLS probes against it, and the TLS suite run for real."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pynetdicom import AE

from harness.context import SuiteContext
from harness.launch.readiness import wait_for_echo
from harness.model import Endpoint, Outcome, Security
from harness.rundir import RunDir
from simulators._net import VERIFICATION, free_port
from simulators.corpus import generate
from simulators.modality import Modality
from simulators.pacs import PacsConfig, PacsSimulator
from simulators.pki import Pki, create_pki
from simulators.tls.bcp195 import judge_profiles
from simulators.tls.handshake import VERSIONS, offerable
from simulators.tls.probe import (
    presented_certificate,
    probe_ciphers,
    probe_client_certificate,
    probe_plain,
    probe_versions,
)

ROOT = Path(__file__).resolve().parents[2]
CALLING = "PGTEST"
TIMEOUT = 3.0
StartPacs = Callable[..., PacsSimulator]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return create_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def start_pacs(tmp_path: Path) -> Iterator[StartPacs]:
    started: list[PacsSimulator] = []

    def start(ssl_context: ssl.SSLContext | None, ae_title: str = "PACS") -> PacsSimulator:
        config = PacsConfig(
            ae_title=ae_title,
            port=0,
            storage=tmp_path / f"{ae_title}-{len(started)}",
            ssl_context=ssl_context,
            # Short: every probe connection without an A-ASSOCIATE-RQ holds a slot this long.
            acse_timeout=2,
            dimse_timeout=5,
            network_timeout=5,
        )
        sim = PacsSimulator(config).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def _server(
    pki: Pki, *, ciphers: str = "", minimum: ssl.TLSVersion | None = None, maximum: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    ctx = pki.server_context()
    if ciphers:
        ctx.set_ciphers(ciphers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0 on purpose
        if minimum is not None:
            ctx.minimum_version = minimum
        if maximum is not None:
            ctx.maximum_version = maximum
    return ctx


def _modality(ssl_context: ssl.SSLContext | None = None) -> Modality:
    return Modality(CALLING, acse_timeout=TIMEOUT, dimse_timeout=5, network_timeout=5, ssl_context=ssl_context)


# --- the PACS simulator over TLS ----------------------------------------------------------


def test_echo_and_store_over_tls(pki: Pki, start_pacs: StartPacs) -> None:
    pacs = start_pacs(pki.server_context())
    peer = Endpoint("PACS", "127.0.0.1", pacs.port, tls=True)
    modality = _modality(pki.client_context())
    echo = modality.echo(peer)
    assert echo.accepted and echo.status == 0x0000, echo
    item = generate(7)[0]
    stored = modality.store(peer, [item.dataset])
    assert stored.accepted, stored.error
    assert [i.status for i in stored.instances] == [0x0000]
    assert (pacs.config.storage / f"{item.sop_instance_uid}.dcm").is_file()


@pytest.mark.parametrize("maximum", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["TLSv1.2", "TLSv1.3"])
def test_plain_untrusted_and_missing_certificates_are_refused(
    pki: Pki, start_pacs: StartPacs, maximum: ssl.TLSVersion
) -> None:
    # TLS 1.2 refuses a client certificate inside the handshake, TLS 1.3 only after it.
    pacs = start_pacs(_server(pki, maximum=maximum))
    tls_peer = Endpoint("PACS", "127.0.0.1", pacs.port, tls=True)
    assert _modality(pki.client_context()).echo(tls_peer).accepted
    assert not _modality(pki.client_context("untrusted")).echo(tls_peer).accepted
    assert not _modality(pki.client_context("none")).echo(tls_peer).accepted
    assert not _modality().echo(Endpoint("PACS", "127.0.0.1", pacs.port, tls=False)).accepted

    outcomes = probe_client_certificate("127.0.0.1", pacs.port, pki, CALLING, "PACS", TIMEOUT)
    assert outcomes == {
        "client": {"association": "admitted", "reason": ""},
        "untrusted": {"association": "refused", "reason": "handshake"},
        "none": {"association": "refused", "reason": "handshake"},
    }
    assert probe_plain("127.0.0.1", pacs.port, CALLING, "PACS", TIMEOUT) == "refused"


def test_optional_client_certificate_admits_none_but_not_untrusted(pki: Pki, start_pacs: StartPacs) -> None:
    pacs = start_pacs(pki.server_context(require_client_cert=False))
    outcomes = probe_client_certificate("127.0.0.1", pacs.port, pki, CALLING, "PACS", TIMEOUT)
    assert {k: v["association"] for k, v in outcomes.items()} == {
        "client": "admitted",
        "untrusted": "refused",
        "none": "admitted",
    }


def test_probes_against_a_stock_pynetdicom_tls_server(pki: Pki) -> None:
    """pynetdicom's own server (handshake in its accept loop), strict about the called AE title."""
    ae = AE(ae_title="STRICT")
    ae.require_called_aet = True
    ae.acse_timeout = 2
    ae.add_supported_context(VERIFICATION)
    server = ae.start_server(("127.0.0.1", 0), block=False, ssl_context=pki.server_context())
    assert server is not None
    port = int(server.server_address[1])
    try:
        peer = Endpoint("STRICT", "127.0.0.1", port, tls=True)
        assert _modality(pki.client_context()).echo(peer).accepted
        outcomes = probe_client_certificate("127.0.0.1", port, pki, CALLING, "STRICT", TIMEOUT)
        assert {k: v["association"] for k, v in outcomes.items()} == {
            "client": "admitted",
            "untrusted": "refused",
            "none": "refused",
        }
        # A wrong called AE title: TLS lets the client in, the association is rejected (permanent: not retried).
        wrong = probe_client_certificate("127.0.0.1", port, pki, CALLING, "NOTSTRICT", TIMEOUT, patience=0)
        assert wrong["client"] == {"association": "refused", "reason": "rejected"}
        assert probe_versions("127.0.0.1", port, pki, TIMEOUT)["TLSv1.2"] is True
    finally:
        ae.shutdown()
    outcomes = probe_client_certificate("127.0.0.1", port, pki, CALLING, "STRICT", TIMEOUT)
    assert {v["reason"] for v in outcomes.values()} == {"unreachable"}


def test_a_silent_client_does_not_stall_the_tls_pacs(pki: Pki, start_pacs: StartPacs) -> None:
    pacs = start_pacs(pki.server_context())
    with socket.create_connection(("127.0.0.1", pacs.port), timeout=TIMEOUT):
        time.sleep(0.2)
        # A bounded handshake first (a Modality's has no timeout), then a whole association.
        assert presented_certificate("127.0.0.1", pacs.port, pki, 1.0) is not None
        assert _modality(pki.client_context()).echo(Endpoint("PACS", "127.0.0.1", pacs.port, tls=True)).accepted


def test_probes_are_bounded_when_the_handshake_stalls(pki: Pki) -> None:
    """pynetdicom's stock server handshakes in its accept loop: a silent client stalls it for everyone."""
    ae = AE(ae_title="STALLED")
    ae.add_supported_context(VERIFICATION)
    server = ae.start_server(("127.0.0.1", 0), block=False, ssl_context=pki.server_context())
    assert server is not None
    port = int(server.server_address[1])
    silent = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        time.sleep(0.2)  # the server is now waiting for the silent client's ClientHello
        started = time.monotonic()
        outcomes = probe_client_certificate("127.0.0.1", port, pki, CALLING, "STALLED", 0.5)
        assert {v["reason"] for v in outcomes.values()} == {"timeout"}
        assert presented_certificate("127.0.0.1", port, pki, 0.5) is None
        assert time.monotonic() - started < 5
    finally:
        silent.close()
        ae.shutdown()


def test_tls_pacs_from_the_command_line(pki: Pki, tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "simulators.pacs", "--ae-title", "PACS", "--port", str(port)]
    argv += ["--storage", str(tmp_path / "store"), "--tls-dir", str(pki.directory)]
    peer = Endpoint("PACS", "127.0.0.1", port, tls=True)

    def echo_without_certificate(endpoint: Endpoint, calling_ae: str, timeout: float) -> str:
        return _modality(pki.client_context("none")).echo(endpoint).error

    with subprocess.Popen(
        [*argv, "--tls-client-cert", "optional"], cwd=ROOT, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            probe = wait_for_echo(peer, CALLING, 15, alive=lambda: proc.poll() is None, echo=echo_without_certificate)
            assert probe.answered, (probe.last_error, proc.poll() is None or proc.communicate()[1])
            assert not _modality().echo(Endpoint("PACS", "127.0.0.1", port)).accepted
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    broken = subprocess.run(
        [*argv[:-1], str(tmp_path / "missing")], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert broken.returncode == 2
    assert "--tls-dir" in broken.stderr and "does not exist" in broken.stderr, broken.stderr


# --- versions -----------------------------------------------------------------------------


def test_versions_of_a_tls12_minimum_server(pki: Pki, start_pacs: StartPacs) -> None:
    pacs = start_pacs(_server(pki, minimum=ssl.TLSVersion.TLSv1_2))
    versions = probe_versions("127.0.0.1", pacs.port, pki, TIMEOUT)
    expected_old = {v: (False if offerable(VERSIONS[v]) else None) for v in ("TLSv1", "TLSv1.1")}
    assert versions == {**expected_old, "TLSv1.2": True, "TLSv1.3": True}


def test_versions_of_a_server_allowing_tls1(pki: Pki, start_pacs: StartPacs) -> None:
    if not offerable(ssl.TLSVersion.TLSv1):
        pytest.skip("this OpenSSL cannot speak TLS 1.0 even at SECLEVEL=0: probe_versions reports it as None")
    # The server needs SECLEVEL=0 too: OpenSSL 3 refuses TLS 1.0/1.1 at its default level.
    pacs = start_pacs(
        _server(pki, ciphers="ALL:@SECLEVEL=0", minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_2)
    )
    versions = probe_versions("127.0.0.1", pacs.port, pki, TIMEOUT)
    assert versions == {"TLSv1": True, "TLSv1.1": True, "TLSv1.2": True, "TLSv1.3": False}


# --- cipher suites ------------------------------------------------------------------------


def test_static_rsa_only_is_not_recommended_and_meets_no_profile(pki: Pki, start_pacs: StartPacs) -> None:
    pacs = start_pacs(_server(pki, ciphers="AES256-SHA", maximum=ssl.TLSVersion.TLSv1_2))
    report = probe_ciphers("127.0.0.1", pacs.port, pki, TIMEOUT)
    assert report.accepted == ("AES256-SHA",)
    assert report.not_recommended == ("AES256-SHA",)
    assert report.recommended == () and report.forbidden == ()
    assert not any(report.profiles.values()), report.profiles
    assert report.complete and report.tls13_negotiated == ""
    json.dumps(report.summary())  # observations must be JSON


def test_ecdhe_gcm_is_recommended(pki: Pki, start_pacs: StartPacs) -> None:
    pacs = start_pacs(_server(pki, ciphers="ECDHE-RSA-AES128-GCM-SHA256", maximum=ssl.TLSVersion.TLSv1_2))
    report = probe_ciphers("127.0.0.1", pacs.port, pki, TIMEOUT)
    assert report.accepted == report.recommended == ("ECDHE-RSA-AES128-GCM-SHA256",)
    # RFC 8996 profile needs both RFC 9325 RSA suites (AES-128 and AES-256 GCM).
    assert not report.profiles["BCP195-RFC8996"]


def test_rfc9325_pair_with_tls13_meets_the_rfc8996_profile(pki: Pki, start_pacs: StartPacs) -> None:
    ciphers = "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"
    pacs = start_pacs(_server(pki, ciphers=ciphers, minimum=ssl.TLSVersion.TLSv1_2))
    report = probe_ciphers("127.0.0.1", pacs.port, pki, TIMEOUT)
    assert report.versions["TLSv1.3"] is True and report.tls13_negotiated.startswith("TLS_")
    assert set(report.accepted) == {*ciphers.split(":"), report.tls13_negotiated}
    assert report.forbidden == () and report.not_recommended == ()
    assert report.profiles == {
        "BCP195": False,  # needs the DHE-RSA suites too (a Python server without DH parameters has none)
        "BCP195-ND": False,
        "BCP195-Extended": False,  # TLS 1.3 accepted
        "BCP195-RFC8996": True,
        "BCP195-RFC8996-Modified": False,  # needs ECDHE-RSA-CHACHA20-POLY1305 too
    }


def test_null_encryption_is_forbidden(pki: Pki, start_pacs: StartPacs) -> None:
    pacs = start_pacs(_server(pki, ciphers="NULL-SHA256:@SECLEVEL=0", maximum=ssl.TLSVersion.TLSv1_2))
    report = probe_ciphers("127.0.0.1", pacs.port, pki, TIMEOUT)
    assert report.accepted == report.forbidden == ("NULL-SHA256",)
    assert not any(report.profiles.values())


def test_judge_profiles_by_the_rules() -> None:
    rfc7525 = ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384"]
    rfc7525 += ["DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384"]
    modern = {"TLSv1": False, "TLSv1.1": False, "TLSv1.2": True, "TLSv1.3": False}
    old = {**modern, "TLSv1": True}
    assert judge_profiles(rfc7525, modern, "RSA") == {
        "BCP195": True,
        "BCP195-ND": True,
        "BCP195-Extended": True,  # its ECDSA suites cannot be served with an RSA certificate
        "BCP195-RFC8996": True,
        "BCP195-RFC8996-Modified": False,  # DHE is not allowed, TLS 1.3 and CHACHA20 missing
    }
    fallback = judge_profiles([*rfc7525, "AES128-SHA"], old, "RSA")
    assert fallback["BCP195"] and not fallback["BCP195-ND"] and not fallback["BCP195-RFC8996"]
    assert not judge_profiles(rfc7525[1:], modern, "RSA")["BCP195"]  # a required suite missing
    assert not any(judge_profiles([*rfc7525, "NULL-SHA256"], modern, "RSA").values())
    # An ECDSA device is held to the ECDSA suites instead.
    assert judge_profiles(["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"], modern, "EC") == {
        "BCP195": False,  # its required suites are all RSA: an EC certificate can serve none
        "BCP195-ND": False,
        "BCP195-Extended": True,
        "BCP195-RFC8996": True,
        "BCP195-RFC8996-Modified": False,
    }
    modified = ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"]
    assert judge_profiles([*modified, "TLS_AES_256_GCM_SHA384"], {**modern, "TLSv1.3": True}, "RSA") == {
        "BCP195": False,
        "BCP195-ND": False,
        "BCP195-Extended": False,
        "BCP195-RFC8996": True,
        "BCP195-RFC8996-Modified": True,
    }
    assert not any(judge_profiles([], {}, "RSA").values())


# --- a device without TLS, and the presented certificate ----------------------------------


def test_a_plain_device_measures_as_no_tls(pki: Pki, start_pacs: StartPacs) -> None:
    pacs = start_pacs(None)
    assert probe_versions("127.0.0.1", pacs.port, pki, TIMEOUT) == {
        v: (False if offerable(version) else None) for v, version in VERSIONS.items()
    }
    report = probe_ciphers("127.0.0.1", pacs.port, pki, TIMEOUT)
    assert report.accepted == () and not any(report.profiles.values())
    assert presented_certificate("127.0.0.1", pacs.port, pki, TIMEOUT) is None
    outcomes = probe_client_certificate("127.0.0.1", pacs.port, pki, CALLING, "PACS", TIMEOUT)
    assert {v["association"] for v in outcomes.values()} == {"refused"}
    assert probe_plain("127.0.0.1", pacs.port, CALLING, "PACS", TIMEOUT) == "admitted"


def test_presented_certificate_is_run_independent(pki: Pki, start_pacs: StartPacs, tmp_path: Path) -> None:
    other = create_pki(tmp_path / "other")
    first = start_pacs(pki.server_context())
    second = start_pacs(other.server_context())
    mine = presented_certificate("127.0.0.1", first.port, pki, TIMEOUT)
    theirs = presented_certificate("127.0.0.1", second.port, other, TIMEOUT)
    assert mine == theirs
    assert mine == {
        "subject_cn": "patchgate test server",
        "issuer_cn": "patchgate test CA",
        "chains_to_run_ca": True,
        "self_signed": False,
        "key_type": "RSA",
        "key_size": 2048,
        "signature_hash": "sha256",
        "san": ["DNS:localhost", "IP:127.0.0.1"],
        "extended_key_usage": ["clientAuth", "serverAuth"],
        "validity_days": 2,
    }
    # Judged against another run's CA, the same certificate does not chain.
    crossed = presented_certificate("127.0.0.1", second.port, pki, TIMEOUT)
    assert crossed is not None and crossed["chains_to_run_ca"] is False


# --- the suite, run as patchgate runs it ---------------------------------------------------


Observed = dict[str, tuple[Outcome, str, dict[str, tuple[Any, Security]]]]


def _run_suite(run_dir: Path, device: Endpoint, pki_dir: str) -> Observed:
    """pytest on suites/tls with --patchgate-run, as harness.runner invokes it; case -> (outcome, message, observations)."""
    run_dir.mkdir(parents=True)
    RunDir(run_dir).write_context(
        SuiteContext(
            run_dir=str(run_dir),
            device=device,
            pacs=Endpoint("PGPACS", "127.0.0.1", 9),
            pacs_storage=str(run_dir / "pacs"),
            modality_ae_title=CALLING,
            services=("echo",),
            corpus_seed=7,
            pki_dir=pki_dir,
        )
    )
    ini = run_dir / "pytest.ini"
    ini.write_text("[pytest]\naddopts = -p no:cacheprovider\n", encoding="utf-8")
    suites = ROOT / "suites"
    argv = [sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", str(suites), "--import-mode=importlib"]
    argv += ["--patchgate-run", str(run_dir), "-q", "-p", "no:allure_pytest", str(suites / "tls")]
    done = subprocess.run(argv, cwd=run_dir, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode in (0, 5), done.stdout[-3000:] + done.stderr[-3000:]
    cases = RunDir(run_dir).read_cases()
    return {c.case: (c.outcome, c.message, {o.name: (o.value, o.security) for o in c.observations}) for c in cases}


CASES = {
    "tls/test_tls.py::test_plain_tcp",
    "tls/test_tls.py::test_client_certificate[client]",
    "tls/test_tls.py::test_client_certificate[untrusted]",
    "tls/test_tls.py::test_client_certificate[none]",
    "tls/test_tls.py::test_certificate",
    "tls/test_tls.py::test_protocol_version[TLSv1]",
    "tls/test_tls.py::test_protocol_version[TLSv1.1]",
    "tls/test_tls.py::test_protocol_version[TLSv1.2]",
    "tls/test_tls.py::test_protocol_version[TLSv1.3]",
    "tls/test_tls.py::test_cipher_suites",
}


def test_suite_against_tls_and_plain_devices(pki: Pki, start_pacs: StartPacs, tmp_path: Path) -> None:
    tls_pacs = start_pacs(_server(pki, minimum=ssl.TLSVersion.TLSv1_2))
    tls = _run_suite(tmp_path / "tls", Endpoint("PACS", "127.0.0.1", tls_pacs.port, tls=True), str(pki.directory))
    assert set(tls) == CASES
    assert {outcome for outcome, _, _ in tls.values()} == {Outcome.PASSED}, tls
    assert tls["tls/test_tls.py::test_plain_tcp"][2] == {"admitted": (False, Security.EXPOSURE)}
    assert tls["tls/test_tls.py::test_client_certificate[client]"][2]["association"] == ("admitted", Security.NONE)
    untrusted = tls["tls/test_tls.py::test_client_certificate[untrusted]"][2]
    assert untrusted["association"] == ("refused", Security.NONE)
    assert untrusted["admitted"] == (False, Security.EXPOSURE)
    assert tls["tls/test_tls.py::test_protocol_version[TLSv1.2]"][2] == {"accepted": (True, Security.NONE)}
    old = tls["tls/test_tls.py::test_protocol_version[TLSv1]"][2]["accepted"]
    assert old[1] is Security.EXPOSURE and old[0] is not True
    ciphers = tls["tls/test_tls.py::test_cipher_suites"][2]
    assert "ECDHE-RSA-AES128-GCM-SHA256" in ciphers["accepted"][0]
    assert ciphers["forbidden"] == ([], Security.EXPOSURE)
    certificate = tls["tls/test_tls.py::test_certificate"][2]["certificate"][0]
    assert certificate["chains_to_run_ca"] is True

    # A device without TLS: the same cases pass and record that nothing of TLS is there.
    plain_pacs = start_pacs(None)
    plain = _run_suite(tmp_path / "plain", Endpoint("PACS", "127.0.0.1", plain_pacs.port), str(pki.directory))
    assert {outcome for outcome, _, _ in plain.values()} == {Outcome.PASSED}, plain
    assert plain["tls/test_tls.py::test_plain_tcp"][2] == {"admitted": (True, Security.EXPOSURE)}
    assert plain["tls/test_tls.py::test_protocol_version[TLSv1.3]"][2] == {"accepted": (False, Security.NONE)}
    assert plain["tls/test_tls.py::test_certificate"][2] == {"certificate": (None, Security.NONE)}

    # No PKI in the run: every case is not applicable, and says why.
    none = _run_suite(tmp_path / "none", Endpoint("PACS", "127.0.0.1", plain_pacs.port), "")
    assert set(none) == CASES
    for outcome, message, observed in none.values():
        assert outcome is Outcome.NOT_APPLICABLE and message.startswith("not applicable: ") and not observed
