"""A throwaway test PKI per run: a CA, a server and a client credential it signs, and an untrusted one it does not.

Files (PEM, keys unencrypted and mode 0600) in one directory:

    ca.pem ca-key.pem                        the run's CA, trusted by both sides
    server.pem server-key.pem                SAN DNS:localhost, IP:127.0.0.1; serverAuth
    client.pem client-key.pem                clientAuth, signed by the run CA
    untrusted-ca.pem untrusted.pem untrusted-key.pem
                                             clientAuth, signed by a second CA nobody trusts

RSA 2048 and SHA-256 throughout: what every DICOM toolkit (DCMTK, Orthanc, dcm4che) accepts. Each PKI has a
CA key of its own; the credentials' keys (and the untrusted CA's) are made once per process (`_kept_key`).

    python -m simulators.pki DIR
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import shutil
import ssl
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CREDENTIALS", "FILES", "Pki", "PkiError", "create_pki", "load_pki", "main"]

CREDENTIALS = ("server", "client", "untrusted")
FILES = (
    "ca.pem",
    "ca-key.pem",
    "server.pem",
    "server-key.pem",
    "client.pem",
    "client-key.pem",
    "untrusted-ca.pem",
    "untrusted.pem",
    "untrusted-key.pem",
)
SERVER_NAME = "localhost"
_VALID_DAYS = 2
_BACKDATE = datetime.timedelta(hours=1)  # tolerate a peer's clock a little behind ours


class PkiError(ValueError):
    """A PKI directory is missing a file, or a credential name is unknown."""


@dataclass(frozen=True)
class Pki:
    """A PKI directory made by `create_pki`: paths to its files and ready-made SSL contexts."""

    directory: Path

    def cert(self, name: str) -> Path:
        """The certificate of `name` (one of CREDENTIALS, "ca" or "untrusted-ca")."""
        return self.directory / f"{_check_name(name, allow_ca=True)}.pem"

    def key(self, name: str) -> Path:
        """The private key of `name` (one of CREDENTIALS or "ca")."""
        if name == "ca":
            return self.directory / "ca-key.pem"
        return self.directory / f"{_check_name(name, allow_ca=False)}-key.pem"

    @property
    def ca(self) -> Path:
        """The run CA's certificate: the one trust anchor of both sides."""
        return self.directory / "ca.pem"

    def device_view(self, directory: Path) -> Pki:
        """A copy in `directory` of what a device under test needs: the CA certificate and its own credential.

        Mounted in place of the whole PKI, so a device never holds the CA's or the clients' keys.
        """
        directory.mkdir(parents=True, exist_ok=True)
        for source in (self.ca, self.cert("server"), self.key("server")):
            shutil.copy2(source, directory / source.name)  # the key keeps its 0600
        return Pki(directory)

    def server_context(self, *, require_client_cert: bool = True) -> ssl.SSLContext:
        """A server context: presents the server credential, trusts the run CA, asks for (and by default requires) a client certificate."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert("server"), self.key("server"))
        ctx.load_verify_locations(cafile=self.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
        return ctx

    def client_context(self, credential: str = "client") -> ssl.SSLContext:
        """A client context that trusts the run CA, checks the server name, and presents `credential` ("none": nothing)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED by default
        ctx.load_verify_locations(cafile=self.ca)
        if credential != "none":
            if credential not in ("client", "untrusted"):
                raise PkiError(f"unknown client credential {credential!r}; expected 'client', 'untrusted' or 'none'")
            ctx.load_cert_chain(self.cert(credential), self.key(credential))
        return ctx


def _check_name(name: str, *, allow_ca: bool) -> str:
    known = (*CREDENTIALS, "ca", "untrusted-ca") if allow_ca else CREDENTIALS
    if name not in known:
        raise PkiError(f"unknown PKI credential {name!r}; expected one of {', '.join(known)}")
    return name


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# The keys of the credentials and of the untrusted CA, made once per process. A PKI is kept apart from another by
# its CA: its own key signs every certificate its sides trust, so a certificate from another PKI fails however its
# key was made. RSA-2048 takes about 64 ms a key and holds the GIL, and a validation's three concurrent runs made
# fifteen one after another before any device could start; now three CA keys and four kept ones.
_KEPT: dict[str, rsa.RSAPrivateKey] = {}
_KEPT_LOCK = threading.Lock()


def _kept_key(name: str) -> rsa.RSAPrivateKey:
    with _KEPT_LOCK:  # a second run waits for the first's key, as it would for the GIL
        if name not in _KEPT:
            _KEPT[name] = _key()
        return _KEPT[name]


def _sign(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey,
    *,
    now: datetime.datetime,
    usage: str,  # "ca" | "server" | "client"
) -> x509.Certificate:
    """A certificate for `key`, signed by `issuer_key` (self-signed when `issuer` is None)."""
    is_ca = usage == "ca"
    issuer_name = _name(subject) if issuer is None else issuer.subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=0 if is_ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not is_ca,
                content_commitment=False,
                key_encipherment=usage == "server",  # RSA key exchange (TLS 1.2 non-ECDHE suites)
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    if usage == "server":
        builder = builder.add_extension(
            # Client too: a device presents one certificate both as a server and when it calls out
            # (Orthanc's DicomTlsCertificate for C-MOVE sub-associations, syslog over TLS).
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        ).add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(SERVER_NAME), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
    elif usage == "client":
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Created 0600 from the start: never world-readable, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to an existing file


def create_pki(directory: Path, *, common_name: str = "patchgate test") -> Pki:
    """Create (or overwrite) a fresh test PKI in `directory` and return it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    ca_key, untrusted_ca_key = _key(), _kept_key("untrusted-ca")
    ca = _sign(f"{common_name} CA", ca_key, None, ca_key, now=now, usage="ca")
    untrusted_ca = _sign(f"{common_name} untrusted CA", untrusted_ca_key, None, untrusted_ca_key, now=now, usage="ca")
    _write_cert(directory / "ca.pem", ca)
    _write_key(directory / "ca-key.pem", ca_key)
    _write_cert(directory / "untrusted-ca.pem", untrusted_ca)
    for name, issuer, issuer_key, usage in (
        ("server", ca, ca_key, "server"),
        ("client", ca, ca_key, "client"),
        ("untrusted", untrusted_ca, untrusted_ca_key, "client"),
    ):
        key = _kept_key(name)
        _write_cert(
            directory / f"{name}.pem", _sign(f"{common_name} {name}", key, issuer, issuer_key, now=now, usage=usage)
        )
        _write_key(directory / f"{name}-key.pem", key)
    return Pki(directory)


def load_pki(directory: Path) -> Pki:
    """The PKI in an existing `directory`; PkiError naming the first missing file."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PkiError(f"PKI directory {directory} does not exist; hint: create it with simulators.pki.create_pki")
    for name in FILES:
        if not (directory / name).is_file():
            raise PkiError(f"PKI directory {directory} has no {name}; hint: recreate it with simulators.pki.create_pki")
    return Pki(directory)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: create a test PKI in a directory."""
    parser = argparse.ArgumentParser(prog="python -m simulators.pki", description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="where to write the PEM files (created if missing)")
    parser.add_argument("--common-name", default="patchgate test", help="prefix of every certificate's CN")
    args = parser.parse_args(argv)
    pki = create_pki(args.directory, common_name=args.common_name)
    print(pki.directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
