"""What the local OpenSSL can offer a peer: every cipher suite with its description, at any protocol version.

OpenSSL 3 on Debian refuses TLS 1.0/1.1 and weak suites at its default security level 2;
a probing client and the judgement of suites both need everything, so security level 0.
"""

from __future__ import annotations

import functools
import ssl
import warnings
from collections.abc import Mapping
from typing import Any

__all__ = ["ALL_CIPHERS", "missing_families", "set_versions", "suites"]

# Everything the local OpenSSL has, NULL encryption and anonymous suites included.
ALL_CIPHERS = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"


@functools.cache
def suites() -> Mapping[str, Mapping[str, Any]]:
    """OpenSSL name -> ssl's description of every suite the local OpenSSL can offer."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers(ALL_CIPHERS)
    return {str(c["name"]): c for c in ctx.get_ciphers()}


@functools.cache
def missing_families() -> tuple[str, ...]:
    """Forbidden suite families the local OpenSSL has none of (OpenSSL 3 drops RC4, DES, 3DES, export)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    missing = []
    for family, spec in (("RC4", "RC4"), ("DES", "DES"), ("3DES", "3DES"), ("EXPORT", "EXP"), ("NULL", "eNULL")):
        try:
            ctx.set_ciphers(f"{spec}:@SECLEVEL=0")
        except ssl.SSLError:  # "No cipher can be selected"
            missing.append(family)
    return tuple(missing)


def set_versions(ctx: ssl.SSLContext, minimum: ssl.TLSVersion, maximum: ssl.TLSVersion) -> None:
    """Allow exactly `minimum` to `maximum` on `ctx`, TLS 1.0/1.1 included."""
    with warnings.catch_warnings():
        # Python warns that TLS 1.0/1.1 are deprecated: here they are measured, not relied on.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = minimum
        ctx.maximum_version = maximum
