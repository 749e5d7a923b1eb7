"""What a device's DICOM TLS endpoint accepts: protocol versions, cipher suites, client certificates, plain TCP.

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

import contextlib
import functools
import socket
import ssl
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness.model import JSON, Endpoint
from simulators.modality import Modality
from simulators.pki import Pki

__all__ = [
    "CLIENT_CREDENTIALS",
    "PATIENCE",
    "PROFILES",
    "VERSIONS",
    "CipherReport",
    "judge_profiles",
    "memory_handshake",
    "presented_certificate",
    "probe_ciphers",
    "probe_client_certificate",
    "probe_plain",
    "probe_versions",
]

VERSIONS: Mapping[str, ssl.TLSVersion] = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
CLIENT_CREDENTIALS = ("client", "untrusted", "none")

# Everything the local OpenSSL has, NULL encryption and anonymous suites included.
_ALL_CIPHERS = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"
# How long a TLS 1.3 client waits after its handshake for the server's verdict on its
# certificate: in TLS 1.3 the server checks it after the client's handshake has completed.
_SETTLE = 0.25
# The cipher probe's handshake budget (one per accepted TLS <= 1.2 suite, plus one).
_MAX_CIPHER_HANDSHAKES = 40
# How long an association probe retries a transient A-ASSOCIATE-RJ (result 2, e.g. local
# limit exceeded). Probe connections that never send an A-ASSOCIATE-RQ hold one of a
# pynetdicom acceptor's association slots until its ACSE timeout (30 s by default), so a
# burst of handshakes can fill a device's slots for that long.
PATIENCE = 35.0

# IANA code points (RFC 8446, 5288, 5289, 6367, 7251, 7905) by IANA name: the suites the
# rules below name. OpenSSL reports a suite's code point as the low 16 bits of its id.
_IANA = {
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": 0x000A,
    "TLS_RSA_WITH_AES_128_CBC_SHA": 0x002F,
    "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256": 0x009E,
    "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384": 0x009F,
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": 0xC02B,
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": 0xC02C,
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": 0xC02F,
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": 0xC030,
    "TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_GCM_SHA256": 0xC086,
    "TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_GCM_SHA384": 0xC087,
    "TLS_ECDHE_RSA_WITH_CAMELLIA_128_GCM_SHA256": 0xC08A,
    "TLS_ECDHE_RSA_WITH_CAMELLIA_256_GCM_SHA384": 0xC08B,
    "TLS_ECDHE_ECDSA_WITH_AES_128_CCM": 0xC0AC,
    "TLS_ECDHE_ECDSA_WITH_AES_256_CCM": 0xC0AD,
    "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8": 0xC0AE,
    "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8": 0xC0AF,
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": 0xCCA8,
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": 0xCCA9,
    "TLS_AES_128_GCM_SHA256": 0x1301,
    "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
    "TLS_AES_128_CCM_SHA256": 0x1304,
    "TLS_AES_128_CCM_8_SHA256": 0x1305,
}


def _codes(*names: str) -> frozenset[int]:
    return frozenset(_IANA[n] for n in names)


# RFC 9325 section 4.2: the recommended TLS 1.2 suites (ECDHE, AES-GCM).
_BCP195_RECOMMENDED = _codes(
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
)
# TLS 1.3 (RFC 8446 section 9.1): the mandatory AES-128-GCM and the two SHOULDs. All TLS 1.3
# suites are AEAD with forward secrecy; the CCM ones are not in OpenSSL's default set.
_TLS13_RECOMMENDED = _codes("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
# RFC 7525 section 4.2 (BCP 195 of 2015), required by PS3.15 B.9 and B.10.
_RFC7525_RECOMMENDED = _codes(
    "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
)
# B.9's fallbacks to the retired AES and Basic TLS profiles; a non-downgrading profile has none.
_FALLBACK = _codes("TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA")
_EXTENDED = _RFC7525_RECOMMENDED | _codes(
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
)
# B.13: ECDHE with AEAD only. Camellia-GCM became optional (DICOM CP 2311).
_MODIFIED = _BCP195_RECOMMENDED | _codes(
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CCM",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8",
)
_MODIFIED_OPTIONAL = _codes(
    "TLS_ECDHE_RSA_WITH_CAMELLIA_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_CAMELLIA_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_GCM_SHA384",
)

PROFILES: Mapping[str, str] = {
    "BCP195": "PS3.15 B.9 BCP 195 TLS Secure Transport Connection Profile",
    "BCP195-ND": "PS3.15 B.10 Non-Downgrading BCP 195 TLS Secure Transport Connection Profile",
    "BCP195-Extended": "PS3.15 B.11 Extended BCP 195 TLS Profile",
    "BCP195-RFC8996": "PS3.15 B.12 BCP 195 RFC 8996 TLS Profile",
    "BCP195-RFC8996-Modified": "PS3.15 B.13 Modified BCP 195 RFC 8996 TLS Profile",
}


# --- handshakes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Handshake:
    """One TLS connection attempt: completed or not, and what was negotiated."""

    ok: bool
    version: str = ""
    cipher: str = ""
    certificate: bytes = b""  # DER of the certificate the server presented
    error: str = ""  # "connect" | "handshake" | "closed" | "timeout"


def _context(
    pki: Pki | None,
    credential: str = "client",
    *,
    minimum: ssl.TLSVersion = ssl.TLSVersion.MINIMUM_SUPPORTED,
    maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
    ciphers: str = _ALL_CIPHERS,
) -> ssl.SSLContext:
    """A probing client context: verifies nothing, offers `credential` from `pki`, allows what it is told."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers(ciphers)  # SECLEVEL=0: at level 2 OpenSSL 3 offers neither TLS 1.0/1.1 nor weak suites
    _set_versions(ctx, minimum, maximum)
    if pki is not None and credential != "none":
        ctx.load_cert_chain(pki.cert(credential), pki.key(credential))
    return ctx


def _set_versions(ctx: ssl.SSLContext, minimum: ssl.TLSVersion, maximum: ssl.TLSVersion) -> None:
    with warnings.catch_warnings():
        # Python warns that TLS 1.0/1.1 are deprecated: here they are measured, not relied on.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = minimum
        ctx.maximum_version = maximum


def _handshake(host: str, port: int, ctx: ssl.SSLContext, timeout: float, *, settle: bool = True) -> _Handshake:
    """Connect, handshake, and (`settle`) for TLS 1.3 wait briefly for a late refusal of our certificate."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return _Handshake(False, error="connect")
    with contextlib.closing(sock):
        try:
            tls = ctx.wrap_socket(sock, server_hostname=host)
        except TimeoutError:
            return _Handshake(False, error="timeout")
        except (ssl.SSLError, OSError):
            return _Handshake(False, error="handshake")
        with tls:
            cipher = tls.cipher()
            done = _Handshake(
                True,
                version=tls.version() or "",
                cipher=cipher[0] if cipher else "",
                certificate=tls.getpeercert(binary_form=True) or b"",
            )
            if done.version != "TLSv1.3" or not settle:
                return done
            tls.settimeout(_SETTLE)
            try:
                data = tls.recv(1)  # a DICOM acceptor sends nothing first: silence means it kept us
            except TimeoutError:
                return done
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionError):
                return _Handshake(False, error="closed")
            except (ssl.SSLError, OSError):  # an alert: certificate required, unknown CA ...
                return _Handshake(False, error="handshake")
            return done if data else _Handshake(False, error="closed")


@functools.cache
def _offerable(version: ssl.TLSVersion) -> bool:
    """Whether the local OpenSSL can complete a handshake at `version` at all (in memory, with itself)."""
    if version == ssl.TLSVersion.TLSv1_3:
        return ssl.HAS_TLSv1_3  # every OpenSSL with TLS 1.3 offers it at any security level
    # Anonymous ECDH needs no certificate, and exists from TLS 1.0 to 1.2.
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.set_ciphers("aNULL:@SECLEVEL=0")
    _set_versions(server, version, version)
    client = _context(None, minimum=version, maximum=version, ciphers="aNULL:@SECLEVEL=0")
    return memory_handshake(server, client, None, rounds=8) == ""


def memory_handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, hostname: str | None = "localhost", rounds: int = 10
) -> str:
    """A TLS handshake between two contexts in memory (no socket): "" when it completes, else the first error."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(rounds):
        finished = 0
        for side, out, peer_in in ((c, c_out, s_in), (s, s_out, c_in)):
            try:
                side.do_handshake()
                finished += 1
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                return f"{'client' if side is c else 'server'}: {exc.reason}"
            peer_in.write(out.read())
        if finished == 2:
            return ""
    return "no progress"


# --- versions -----------------------------------------------------------------------------


def probe_versions(host: str, port: int, pki: Pki, timeout: float = 3.0) -> dict[str, bool | None]:
    """For TLSv1 ... TLSv1.3: whether a handshake offering only that version completes (trusted client cert).

    None means not testable: the local OpenSSL cannot speak that version at all (e.g. a
    build without TLS 1.0), so neither acceptance nor refusal was measured.
    """
    out: dict[str, bool | None] = {}
    for name, version in VERSIONS.items():
        if not _offerable(version):
            out[name] = None
            continue
        ctx = _context(pki, minimum=version, maximum=version)
        out[name] = _handshake(host, port, ctx, timeout).ok
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
    profiles: Mapping[str, bool] = field(default_factory=dict)  # PROFILES key -> satisfied
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


@functools.cache
def _local_suites() -> Mapping[str, Mapping[str, Any]]:
    """OpenSSL name -> ssl's description of every suite the local OpenSSL can offer."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers(_ALL_CIPHERS)
    return {str(c["name"]): c for c in ctx.get_ciphers()}


@functools.cache
def _not_testable() -> tuple[str, ...]:
    """Forbidden suite families the local OpenSSL has none of (OpenSSL 3 drops RC4, DES, 3DES, export)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    missing = []
    for family, spec in (("RC4", "RC4"), ("DES", "DES"), ("3DES", "3DES"), ("EXPORT", "EXP"), ("NULL", "eNULL")):
        try:
            ctx.set_ciphers(f"{spec}:@SECLEVEL=0")
        except ssl.SSLError:  # "No cipher can be selected"
            missing.append(family)
    return tuple(missing)


def _is_tls13(name: str) -> bool:
    info = _local_suites().get(name)
    return info is not None and info["protocol"] == "TLSv1.3"


def _code(name: str) -> int | None:
    info = _local_suites().get(name)
    return None if info is None else int(info["id"]) & 0xFFFF


def _forbidden(name: str) -> bool:
    """RFC 9325 4.1 MUST NOT (NULL encryption, RC4, < 112-bit, export) plus anonymous and 3DES (Sweet32)."""
    info = _local_suites().get(name)
    if info is None:
        return False
    symmetric = str(info.get("symmetric") or "")
    return (
        not symmetric  # NULL encryption
        or info.get("auth") == "auth-null"  # anonymous: no authentication, trivially intercepted
        or "rc4" in symmetric
        or "des" in symmetric  # DES and 3DES (des-ede3-cbc)
        or int(info.get("strength_bits") or 0) < 112
        or "EXP" in name
    )


def _recommended(name: str) -> bool:
    return _code(name) in (_BCP195_RECOMMENDED | _TLS13_RECOMMENDED)


def _sha1_mac(name: str) -> bool:
    info = _local_suites().get(name)
    return info is not None and info.get("digest") == "sha1"


def judge_profiles(accepted: Iterable[str], versions: Mapping[str, bool | None], key_type: str) -> dict[str, bool]:
    """Which PS3.15 BCP 195 profiles a device satisfies, given what it accepted.

    `accepted`: suite names (OpenSSL) the device accepted; `versions`: as probe_versions;
    `key_type`: the device certificate's key ("RSA", "EC" ...). A profile's required suites
    are checked only for the device's key type: an RSA certificate cannot serve ECDSA suites,
    so those are not testable and not held against it; a profile none of whose required
    suites the certificate can serve (B.9 for an EC key) is not met. An untestable version
    (None) counts as not accepted. Per profile (DCMTK's tlsciphr.cc reads the standard the same way):

    - B.9 BCP195: TLS 1.2; the four RFC 7525 suites (ECDHE/DHE-RSA with AES-GCM); fallback
      to TLS 1.0/1.1 and TLS_RSA_WITH_AES_128_CBC_SHA allowed; nothing RFC 9325 forbids.
    - B.10 BCP195-ND: B.9 without any fallback: no TLS 1.0/1.1, no static-RSA fallback suite.
    - B.11 BCP195-Extended: TLS 1.2 only; exactly the B.9 suites plus ECDHE-ECDSA AES-GCM.
    - B.12 BCP195-RFC8996: TLS 1.2+ only (RFC 8996); the four RFC 9325 suites; no SHA-1 MAC.
    - B.13 BCP195-RFC8996-Modified: TLS 1.2 and 1.3 only; ECDHE with AEAD suites only,
      all of them required (Camellia-GCM optional).
    """
    names = [n for n in accepted if not _is_tls13(n)]
    tls12 = {c for c in map(_code, names) if c is not None}
    if not versions.get("TLSv1.2") or not names:
        return dict.fromkeys(PROFILES, False)
    old = bool(versions.get("TLSv1")) or bool(versions.get("TLSv1.1"))
    tls13 = bool(versions.get("TLSv1.3"))
    clean = not any(_forbidden(n) for n in names)
    auth = "ECDSA" if key_type == "EC" else key_type

    def servable(codes: frozenset[int]) -> frozenset[int]:
        """The codes the device's certificate could serve: RSA suites for RSA, ECDSA for EC."""
        by_code = {_code(n): n for n in _local_suites()}
        out = set()
        for c in codes:
            name = by_code.get(c)
            if name is None:
                continue  # the local OpenSSL cannot offer it: not testable
            info = _local_suites()[name]
            if str(info.get("auth", "")).removeprefix("auth-").upper() == auth:
                out.add(c)
        return frozenset(out)

    def requires(codes: frozenset[int]) -> bool:
        needed = servable(codes)
        return bool(needed) and needed <= tls12

    return {
        "BCP195": clean and requires(_RFC7525_RECOMMENDED),
        "BCP195-ND": clean and not old and requires(_RFC7525_RECOMMENDED) and not (tls12 & _FALLBACK),
        "BCP195-Extended": not old and not tls13 and requires(_EXTENDED) and tls12 <= _EXTENDED,
        "BCP195-RFC8996": clean and not old and requires(_BCP195_RECOMMENDED) and not any(_sha1_mac(n) for n in names),
        "BCP195-RFC8996-Modified": not old
        and tls13
        and requires(_MODIFIED)
        and tls12 <= (_MODIFIED | _MODIFIED_OPTIONAL),
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
        remaining = [n for n, info in _local_suites().items() if info["protocol"] != "TLSv1.3"]
        for _ in range(_MAX_CIPHER_HANDSHAKES):
            ctx = _context(pki, maximum=ssl.TLSVersion.TLSv1_2, ciphers=":".join([*remaining, "@SECLEVEL=0"]))
            done = _handshake(host, port, ctx, timeout)
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
        done = _handshake(host, port, _context(pki, minimum=ssl.TLSVersion.TLSv1_3), timeout)
        if done.ok:
            tls13 = done.cipher
            accepted.append(tls13)
            certificate = certificate or done.certificate
    accepted.sort()
    forbidden = tuple(n for n in accepted if _forbidden(n))
    recommended = tuple(n for n in accepted if _recommended(n))
    key_type = _key(x509.load_der_x509_certificate(certificate))[0] if certificate else ""
    return CipherReport(
        accepted=tuple(accepted),
        recommended=recommended,
        not_recommended=tuple(n for n in accepted if n not in forbidden and n not in recommended),
        forbidden=forbidden,
        profiles=judge_profiles(accepted, versions, key_type),
        versions=versions,
        tls13_negotiated=tls13,
        not_testable=_not_testable(),
        complete=complete,
    )


# --- client certificates and plain TCP ----------------------------------------------------


def _associate(
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
        ctx = _context(pki, credential)
        # A bounded handshake first: it tells apart what pynetdicom reports alike (no TCP, a
        # failed handshake, a late TLS 1.3 refusal), and the Modality's connect and handshake
        # have no timeout of their own (pynetdicom's connection_timeout is None by default).
        done = _handshake(host, port, ctx, timeout)
        if not done.ok:
            reason = {"connect": "unreachable", "timeout": "timeout"}.get(done.error, "handshake")
            out[credential] = {"association": "refused", "reason": reason}
            continue
        association, reason = _associate(endpoint, ctx, ae, timeout, patience)
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
    association, _ = _associate(Endpoint(called_ae, host, port, tls=False), None, ae, timeout, patience)
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
    done = _handshake(host, port, _context(pki), timeout, settle=False)
    if not done.ok or not done.certificate:
        return None
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    return _summarise(x509.load_der_x509_certificate(done.certificate), ca)
