"""The per-run test PKI: files and modes, chains, extensions, contexts that interoperate, clear load errors."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from simulators.pki import CREDENTIALS, FILES, Pki, PkiError, create_pki, load_pki
from simulators.tls.handshake import memory_handshake


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return create_pki(tmp_path_factory.mktemp("pki") / "run")


def _cert(pki: Pki, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pki.cert(name).read_bytes())


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def test_files_exist_with_private_keys_owner_only(pki: Pki) -> None:
    assert sorted(p.name for p in pki.directory.iterdir()) == sorted(FILES)
    for name in (n for n in FILES if n.endswith("-key.pem")):
        mode = stat.S_IMODE((pki.directory / name).stat().st_mode)
        assert mode == 0o600, f"{name}: mode {mode:o}"
    assert pki.ca == pki.directory / "ca.pem"
    assert pki.cert("server") == pki.directory / "server.pem"
    assert pki.key("ca") == pki.directory / "ca-key.pem"
    assert pki.key("untrusted") == pki.directory / "untrusted-key.pem"


def test_unknown_credential_names_the_choices(pki: Pki) -> None:
    with pytest.raises(PkiError, match=r"'bogus'.*server, client, untrusted"):
        pki.cert("bogus")
    with pytest.raises(PkiError, match="'untrusted-ca'"):
        pki.key("untrusted-ca")  # its key is not kept: nobody may sign with it
    with pytest.raises(PkiError, match="'server'"):
        pki.client_context("server")


def test_chains(pki: Pki) -> None:
    ca, untrusted_ca = _cert(pki, "ca"), _cert(pki, "untrusted-ca")
    assert _issued_by(_cert(pki, "server"), ca)
    assert _issued_by(_cert(pki, "client"), ca)
    assert _issued_by(_cert(pki, "untrusted"), untrusted_ca)
    assert not _issued_by(_cert(pki, "untrusted"), ca)
    assert _issued_by(ca, ca) and _issued_by(untrusted_ca, untrusted_ca)  # self-signed roots


def test_extensions(pki: Pki) -> None:
    for name in ("ca", "untrusted-ca"):
        constraints = _cert(pki, name).extensions.get_extension_for_class(x509.BasicConstraints).value
        assert constraints.ca, name
        assert _cert(pki, name).extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    for name in CREDENTIALS:
        cert = _cert(pki, name)
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca, name
        assert cert.public_key().key_size == 2048  # type: ignore[union-attr]
        assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
        validity = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert 2 <= validity.days <= 3, validity
    san = _cert(pki, "server").extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    server_eku = _cert(pki, "server").extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(server_eku) == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]  # a device calls out too
    for name in ("client", "untrusted"):
        eku = _cert(pki, name).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH], name


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str = "localhost") -> str:
    """An in-memory TLS 1.2 handshake (client certificate checked inside it): "" or the first error."""
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    return memory_handshake(server, client, hostname)


def test_contexts_interoperate_and_refuse_what_they_should(pki: Pki) -> None:
    assert _handshake(pki.server_context(), pki.client_context()) == ""
    assert _handshake(pki.server_context(), pki.client_context(), hostname="127.0.0.1") == ""
    assert _handshake(pki.server_context(), pki.client_context("untrusted")).startswith("server:")
    assert _handshake(pki.server_context(), pki.client_context("none")).startswith("server:")
    # Optional client certificates: none is fine, a bad one is still refused.
    assert _handshake(pki.server_context(require_client_cert=False), pki.client_context("none")) == ""
    assert _handshake(pki.server_context(require_client_cert=False), pki.client_context("untrusted")) != ""
    # The client checks the server's name: the certificate is for localhost and 127.0.0.1 only.
    assert "CERTIFICATE_VERIFY_FAILED" in _handshake(pki.server_context(), pki.client_context(), "device.example")


def _public(path: Path) -> bytes:
    return (
        x509.load_pem_x509_certificate(path.read_bytes())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def test_another_pki_is_not_trusted(pki: Pki, tmp_path: Path) -> None:
    """Kept apart by its CA alone: the credentials' keys are this process's (made once), the CA key is its own."""
    other = create_pki(tmp_path / "other")
    assert _public(other.ca) != _public(pki.ca)
    assert _public(other.cert("server")) == _public(pki.cert("server"))  # so what refuses below is the CA
    assert _handshake(other.server_context(), pki.client_context()).startswith("client:")
    # Our server refuses the other run's client certificate (this client trusts any server).
    stranger = other.client_context()
    stranger.check_hostname = False
    stranger.verify_mode = ssl.CERT_NONE
    assert _handshake(pki.server_context(), stranger).startswith("server:")


def test_load_pki(pki: Pki, tmp_path: Path) -> None:
    assert load_pki(pki.directory) == pki
    with pytest.raises(PkiError, match=r"does not exist.*create_pki"):
        load_pki(tmp_path / "nowhere")
    broken = create_pki(tmp_path / "broken")
    (broken.directory / "client-key.pem").unlink()
    with pytest.raises(PkiError, match=rf"{tmp_path / 'broken'} has no client-key\.pem"):
        load_pki(broken.directory)


def test_recreating_overwrites_with_a_new_ca(tmp_path: Path) -> None:
    first = create_pki(tmp_path / "pki").ca.read_bytes()
    second = create_pki(tmp_path / "pki")
    assert second.ca.read_bytes() != first
    assert stat.S_IMODE(second.key("client").stat().st_mode) == 0o600


def test_the_device_view_holds_its_credential_and_the_ca_certificate_only(pki: Pki, tmp_path: Path) -> None:
    view = pki.device_view(tmp_path / "device")
    assert sorted(p.name for p in view.directory.iterdir()) == ["ca.pem", "server-key.pem", "server.pem"]
    assert stat.S_IMODE(view.key("server").stat().st_mode) == 0o600
    assert view.key("server").read_bytes() == pki.key("server").read_bytes()
    # Enough to serve TLS to the run's clients.
    assert _handshake(view.server_context(), pki.client_context()) == ""  # no error
