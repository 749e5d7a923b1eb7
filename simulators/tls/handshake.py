"""TLS handshakes that measure what a server decides: a client that verifies nothing and allows everything, bounded.

The probing client never verifies the server's certificate and allows every protocol
version and cipher suite the local OpenSSL has: each handshake measures one thing the
SERVER decides, not what our client would refuse.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from simulators.pki import Pki
from simulators.tls._openssl import ALL_CIPHERS, set_versions

__all__ = ["VERSIONS", "Handshake", "client_context", "handshake", "memory_handshake", "offerable"]

VERSIONS: Mapping[str, ssl.TLSVersion] = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}

# How long a TLS 1.3 client waits after its handshake for the server's verdict on its
# certificate: in TLS 1.3 the server checks it after the client's handshake has completed.
_SETTLE = 0.25


@dataclass(frozen=True)
class Handshake:
    """One TLS connection attempt: completed or not, and what was negotiated."""

    ok: bool
    version: str = ""
    cipher: str = ""
    certificate: bytes = b""  # DER of the certificate the server presented
    error: str = ""  # "connect" | "handshake" | "closed" | "timeout"


def client_context(
    pki: Pki | None,
    credential: str = "client",
    *,
    minimum: ssl.TLSVersion = ssl.TLSVersion.MINIMUM_SUPPORTED,
    maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
    ciphers: str = ALL_CIPHERS,
) -> ssl.SSLContext:
    """A probing client context: verifies nothing, offers `credential` from `pki`, allows what it is told."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers(ciphers)  # SECLEVEL=0: at level 2 OpenSSL 3 offers neither TLS 1.0/1.1 nor weak suites
    set_versions(ctx, minimum, maximum)
    if pki is not None and credential != "none":
        ctx.load_cert_chain(pki.cert(credential), pki.key(credential))
    return ctx


def handshake(host: str, port: int, ctx: ssl.SSLContext, timeout: float, *, settle: bool = True) -> Handshake:
    """Connect, handshake, and (`settle`) for TLS 1.3 wait briefly for a late refusal of our certificate."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return Handshake(False, error="connect")
    with contextlib.closing(sock):
        try:
            tls = ctx.wrap_socket(sock, server_hostname=host)
        except TimeoutError:
            return Handshake(False, error="timeout")
        except (ssl.SSLError, OSError):
            return Handshake(False, error="handshake")
        with tls:
            cipher = tls.cipher()
            done = Handshake(
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
                return Handshake(False, error="closed")
            except (ssl.SSLError, OSError):  # an alert: certificate required, unknown CA ...
                return Handshake(False, error="handshake")
            return done if data else Handshake(False, error="closed")


@functools.cache
def offerable(version: ssl.TLSVersion) -> bool:
    """Whether the local OpenSSL can complete a handshake at `version` at all (in memory, with itself)."""
    if version == ssl.TLSVersion.TLSv1_3:
        return ssl.HAS_TLSv1_3  # every OpenSSL with TLS 1.3 offers it at any security level
    # Anonymous ECDH needs no certificate, and exists from TLS 1.0 to 1.2.
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.set_ciphers("aNULL:@SECLEVEL=0")
    set_versions(server, version, version)
    client = client_context(None, minimum=version, maximum=version, ciphers="aNULL:@SECLEVEL=0")
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
