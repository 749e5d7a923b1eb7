"""TLS (DICOM PS3.15 Annex B): the protocol versions, cipher suites and client certificates the device accepts.

The cases record and never assert: a device that speaks no TLS at all is a valid baseline
(every case passes and records accepted=False ...), so the candidate that requires TLS
shows exactly what changed. Observations marked `exposure` read as a loosening when they
grow. The cases need the run's test PKI (`SuiteContext.pki_dir`) and are not applicable
without one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from harness.context import SuiteContext
from harness.model import Endpoint, Security
from harness.plugin import Observe
from simulators.pki import Pki, load_pki
from simulators.tls.handshake import VERSIONS
from simulators.tls.probe import (
    CLIENT_CREDENTIALS,
    CipherReport,
    presented_certificate,
    probe_ciphers,
    probe_client_certificate,
    probe_plain,
)

TIMEOUT = 3.0  # seconds per connection attempt
# Versions RFC 8996 deprecated: a device accepting them is looser.
DEPRECATED = ("TLSv1", "TLSv1.1")


@pytest.fixture(scope="module")
def pki(patchgate_context: SuiteContext) -> Pki:
    if not patchgate_context.pki_dir:
        pytest.skip("not applicable: the run has no test PKI (SuiteContext.pki_dir is empty)")
    return load_pki(Path(patchgate_context.pki_dir))


@pytest.fixture(scope="module")
def client_certificates(device: Endpoint, pki: Pki, patchgate_context: SuiteContext) -> Mapping[str, Mapping[str, str]]:
    # The run's modality AE title, so that only the TLS credential differs from what the device knows.
    return probe_client_certificate(
        device.host, device.port, pki, patchgate_context.modality_ae_title, device.ae_title, TIMEOUT
    )


@pytest.fixture(scope="module")
def ciphers(device: Endpoint, pki: Pki) -> CipherReport:
    """One probe for the version and cipher cases: every probe connection holds a device slot a while."""
    return probe_ciphers(device.host, device.port, pki, TIMEOUT)


# Association-level cases first, while the device has every association slot free.
def test_plain_tcp(device: Endpoint, pki: Pki, patchgate_context: SuiteContext, observe: Observe) -> None:
    admitted = probe_plain(device.host, device.port, patchgate_context.modality_ae_title, device.ae_title, TIMEOUT)
    observe("admitted", admitted == "admitted", security=Security.EXPOSURE)


@pytest.mark.parametrize("credential", CLIENT_CREDENTIALS)
def test_client_certificate(
    credential: str, client_certificates: Mapping[str, Mapping[str, str]], observe: Observe
) -> None:
    outcome = client_certificates[credential]
    observe("association", outcome["association"])
    observe("reason", outcome["reason"])
    if credential != "client":  # letting in an unknown or missing certificate is a loosening
        observe("admitted", outcome["association"] == "admitted", security=Security.EXPOSURE)


def test_certificate(device: Endpoint, pki: Pki, observe: Observe) -> None:
    observe("certificate", presented_certificate(device.host, device.port, pki, TIMEOUT))


@pytest.mark.parametrize("version", list(VERSIONS))
def test_protocol_version(version: str, ciphers: CipherReport, observe: Observe) -> None:
    # None: the local OpenSSL cannot speak this version, so it was not tested.
    security = Security.EXPOSURE if version in DEPRECATED else Security.NONE
    observe("accepted", ciphers.versions[version], security=security)


def test_cipher_suites(ciphers: CipherReport, observe: Observe) -> None:
    observe("accepted", list(ciphers.accepted))
    observe("forbidden", list(ciphers.forbidden), security=Security.EXPOSURE)
    observe("profiles", dict(ciphers.profiles))
