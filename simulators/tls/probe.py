"""Probes of what a device's DICOM TLS endpoint accepts and presents: versions, cipher suites, client certificates, plain TCP.

Every function connects only to the (host, port) it is given, each connection bounded
by `timeout`, and returns plain JSON values (dict, list, str, bool, None) a suite can
record as observations. The probing client never verifies the device's certificate
(except where it says so): each probe measures one thing the DEVICE decides, not what
our client would refuse. For the same reason the client allows every protocol version
and cipher suite the local OpenSSL has, at security level 0: OpenSSL 3 on Debian
refuses TLS 1.0/1.1 and weak suites at its default level 2.

Cipher suites are judged by BCP 195 (RFC 9325, 2022) and the DICOM PS3.15 Annex B
profiles built on it, as DCMTK (whose author edits those profiles) implements them.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from simulators.endpoint import JSON, Endpoint
from simulators.modality import Modality
from simulators.pki import Pki
from simulators.tls._openssl import missing_families, suites
from simulators.tls.bcp195 import is_forbidden, is_recommended, judge_profiles
from simulators.tls.handshake import VERSIONS, client_context, handshake, offerable

__all__ = [
    "CLIENT_CREDENTIALS",
    "PATIENCE",
    "CipherReport",
    "presented_certificate",
    "probe_ciphers",
    "probe_client_certificate",
    "probe_plain",
    "probe_versions",
]

CLIENT_CREDENTIALS = ("client", "untrusted", "none")
# The cipher probe's handshake budget (one per accepted TLS <= 1.2 suite, plus one).
_MAX_CIPHER_HANDSHAKES = 40
# How long an association probe retries a transient A-ASSOCIATE-RJ (result 2, e.g. local
# limit exceeded). Probe connections that never send an A-ASSOCIATE-RQ hold one of a
# pynetdicom acceptor's association slots until its ACSE timeout (30 s by default), so a
# burst of handshakes can fill a device's slots for that long.
PATIENCE = 35.0


# --- versions -----------------------------------------------------------------------------


def probe_versions(host: str, port: int, pki: Pki, timeout: float = 3.0) -> dict[str, bool | None]:
    """For TLSv1 ... TLSv1.3: whether a handshake offering only that version completes (trusted client cert).

    None means not testable: the local OpenSSL cannot speak that version at all (e.g. a
    build without TLS 1.0), so neither acceptance nor refusal was measured.
    """
    out: dict[str, bool | None] = {}
    for name, version in VERSIONS.items():
        if not offerable(version):
            out[name] = None
            continue
        ctx = client_context(pki, minimum=version, maximum=version)
        out[name] = handshake(host, port, ctx, timeout).ok
    return out


# --- cipher suites ------------------------------------------------------------------------


@dataclass(frozen=True)
class CipherReport:
    """The cipher suites a device accepted, judged by BCP 195 (RFC 9325) and the DICOM profiles built on it.

    Suites are named as OpenSSL names them (TLS 1.3 ones by their IANA names, which OpenSSL
    uses too). TLS <= 1.2 suites are found exhaustively over what the local OpenSSL can offer;
    for TLS 1.3 only the suite the device chose is known: Python's ssl module cannot
    restrict the TLS 1.3 suites a client offers (no set_ciphersuites).
    """

    accepted: tuple[str, ...]
    recommended: tuple[str, ...]  # accepted and RFC 9325 section 4.2 (TLS 1.3: RFC 8446 9.1) recommended
    not_recommended: tuple[str, ...]  # accepted, neither recommended nor forbidden
    forbidden: tuple[str, ...]  # accepted although RFC 9325 section 4.1 says MUST NOT
    profiles: Mapping[str, bool] = field(default_factory=dict)  # bcp195.PROFILES key -> satisfied
    versions: Mapping[str, bool | None] = field(default_factory=dict)  # as probe_versions
    tls13_negotiated: str = ""  # "" when TLS 1.3 is not accepted
    # Suite families RFC 9325 forbids that the local OpenSSL cannot offer: never tested here.
    not_testable: tuple[str, ...] = ()
    complete: bool = True  # False: the handshake budget ran out before the list did

    def summary(self) -> dict[str, JSON]:
        return {
            "accepted": list(self.accepted),
            "recommended": list(self.recommended),
            "not_recommended": list(self.not_recommended),
            "forbidden": list(self.forbidden),
            "profiles": dict(self.profiles),
            "versions": dict(self.versions),
            "tls13_negotiated": self.tls13_negotiated,
            "not_testable": list(self.not_testable),
            "complete": self.complete,
        }


def probe_ciphers(host: str, port: int, pki: Pki, timeout: float = 3.0) -> CipherReport:
    """The cipher suites the device accepts, judged by BCP 195; at most ~45 short handshakes.

    TLS <= 1.2: offer every suite the local OpenSSL has, note the one the device picks,
    offer the rest again, until the device picks none (sslscan's method): one handshake
    per accepted suite plus one, whatever the device's preference order, instead of one
    per candidate suite. TLS 1.3: one handshake, and the suite the device chose.
    """
    versions = probe_versions(host, port, pki, timeout)
    accepted: list[str] = []
    certificate = b""
    complete = True
    if any(versions.get(v) for v in ("TLSv1", "TLSv1.1", "TLSv1.2")):
        remaining = [n for n, info in suites().items() if info["protocol"] != "TLSv1.3"]
        for _ in range(_MAX_CIPHER_HANDSHAKES):
            ctx = client_context(pki, maximum=ssl.TLSVersion.TLSv1_2, ciphers=":".join([*remaining, "@SECLEVEL=0"]))
            done = handshake(host, port, ctx, timeout)
            if not done.ok or done.cipher not in remaining:
                break
            accepted.append(done.cipher)
            certificate = certificate or done.certificate
            remaining.remove(done.cipher)
            if not remaining:
                break
        else:
            complete = False
    tls13 = ""
    if versions.get("TLSv1.3"):
        done = handshake(host, port, client_context(pki, minimum=ssl.TLSVersion.TLSv1_3), timeout)
        if done.ok:
            tls13 = done.cipher
            accepted.append(tls13)
            certificate = certificate or done.certificate
    accepted.sort()
    forbidden = tuple(n for n in accepted if is_forbidden(n))
    recommended = tuple(n for n in accepted if is_recommended(n))
    key_type = _key(x509.load_der_x509_certificate(certificate))[0] if certificate else ""
    return CipherReport(
        accepted=tuple(accepted),
        recommended=recommended,
        not_recommended=tuple(n for n in accepted if n not in forbidden and n not in recommended),
        forbidden=forbidden,
        profiles=judge_profiles(accepted, versions, key_type),
        versions=versions,
        tls13_negotiated=tls13,
        not_testable=missing_families(),
        complete=complete,
    )


# --- client certificates and plain TCP ----------------------------------------------------


def _association(
    endpoint: Endpoint, ctx: ssl.SSLContext | None, ae: str, timeout: float, patience: float
) -> tuple[str, str]:
    """("admitted" | "refused", why): a C-ECHO association, the why a stable short word.

    A transient rejection (PS3.8: result 2, "try again later") is retried for `patience` seconds.
    """
    modality = Modality(ae, acse_timeout=timeout, dimse_timeout=timeout, network_timeout=timeout, ssl_context=ctx)
    deadline = time.monotonic() + patience
    result = modality.echo(endpoint)
    while result.error.startswith("association rejected (result 2") and time.monotonic() < deadline:
        time.sleep(0.5)
        result = modality.echo(endpoint)
    if result.accepted:
        return "admitted", ""
    error = result.error
    if error == "no presentation context accepted":
        return "admitted", "no-context"  # the association itself was let in
    if error.startswith("association rejected"):
        return "refused", "rejected"  # A-ASSOCIATE-RJ
    if error.startswith("no answer"):
        return "refused", "timeout"
    if error.startswith("no connection"):
        return "refused", "connection"  # TCP refused, or (TLS) the handshake failed
    return "refused", "aborted"  # connection closed or A-ABORT after the request


def probe_client_certificate(
    host: str, port: int, pki: Pki, ae: str, called_ae: str, timeout: float = 3.0, *, patience: float = PATIENCE
) -> dict[str, dict[str, str]]:
    """For credentials client, untrusted, none: {"association": admitted|refused, "reason": word}.

    Reasons: "" (admitted), "handshake" (TLS handshake failed, or in TLS 1.3 the device
    refused our certificate right after it), "unreachable" (no TCP connection), "rejected"
    (A-ASSOCIATE-RJ), "aborted" (closed after the request), "timeout", "no-context".
    The client does not verify the device's certificate here: that is presented_certificate's
    job, and a device certificate we dislike must not read as a refused client.
    """
    endpoint = Endpoint(called_ae, host, port, tls=True)
    out: dict[str, dict[str, str]] = {}
    for credential in CLIENT_CREDENTIALS:
        ctx = client_context(pki, credential)
        # A bounded handshake first: it tells apart what pynetdicom reports alike (no TCP, a
        # failed handshake, a late TLS 1.3 refusal), and the Modality's connect and handshake
        # have no timeout of their own (pynetdicom's connection_timeout is None by default).
        done = handshake(host, port, ctx, timeout)
        if not done.ok:
            reason = {"connect": "unreachable", "timeout": "timeout"}.get(done.error, "handshake")
            out[credential] = {"association": "refused", "reason": reason}
            continue
        association, reason = _association(endpoint, ctx, ae, timeout, patience)
        out[credential] = {"association": association, "reason": "handshake" if reason == "connection" else reason}
    return out


def probe_plain(
    host: str, port: int, ae: str, called_ae: str, timeout: float = 3.0, *, patience: float = PATIENCE
) -> str:
    """Whether a plain-TCP (no TLS) DICOM association to the port is "admitted" or "refused"."""
    try:  # bounded: the Modality's own connect has no timeout
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return "refused"
    association, _ = _association(Endpoint(called_ae, host, port, tls=False), None, ae, timeout, patience)
    return association


# --- the presented certificate ------------------------------------------------------------


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def _key(cert: x509.Certificate) -> tuple[str, int | None]:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    return type(key).__name__, None


def _chains_to(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


_EKU_NAMES = {ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth", ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth"}


def _summarise(cert: x509.Certificate, ca: x509.Certificate | None) -> dict[str, JSON]:
    """The run-independent facts of a certificate: no serial, fingerprint or date."""
    key_type, key_size = _key(cert)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = sorted(
            [f"DNS:{v}" for v in san.get_values_for_type(x509.DNSName)]
            + [f"IP:{v}" for v in san.get_values_for_type(x509.IPAddress)]
        )
    except x509.ExtensionNotFound:
        sans = []
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        usages = sorted(_EKU_NAMES.get(oid, oid.dotted_string) for oid in eku)
    except x509.ExtensionNotFound:
        usages = []
    digest = cert.signature_hash_algorithm
    return {
        "subject_cn": _cn(cert.subject),
        "issuer_cn": _cn(cert.issuer),
        "chains_to_run_ca": ca is not None and _chains_to(cert, ca),
        "self_signed": cert.issuer == cert.subject,
        "key_type": key_type,
        "key_size": key_size,
        "signature_hash": digest.name if digest is not None else None,
        "san": list(sans),
        "extended_key_usage": list(usages),
        "validity_days": (cert.not_valid_after_utc - cert.not_valid_before_utc).days,
    }


def presented_certificate(host: str, port: int, pki: Pki, timeout: float = 3.0) -> dict[str, JSON] | None:
    """The certificate the device presents, summarised run-independently; None if no TLS handshake completes."""
    # No settling: a device presents its certificate before it judges ours (in TLS 1.3 it
    # judges ours after the handshake; in TLS 1.2 a refusal of ours hides its certificate).
    done = handshake(host, port, client_context(pki), timeout, settle=False)
    if not done.ok or not done.certificate:
        return None
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    return _summarise(x509.load_der_x509_certificate(done.certificate), ca)
