"""BCP 195 (RFC 9325) and the PS3.15 Annex B TLS profiles: which suites are recommended or forbidden, which profiles hold.

Suites are named as OpenSSL names them and described by the local OpenSSL; the profiles
are read as DCMTK (whose author edits them) implements them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from simulators.tls._openssl import suites

__all__ = ["PROFILES", "is_forbidden", "is_recommended", "judge_profiles"]


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


def _is_tls13(name: str) -> bool:
    info = suites().get(name)
    return info is not None and info["protocol"] == "TLSv1.3"


def _code(name: str) -> int | None:
    info = suites().get(name)
    return None if info is None else int(info["id"]) & 0xFFFF


def is_forbidden(name: str) -> bool:
    """RFC 9325 4.1 MUST NOT (NULL encryption, RC4, < 112-bit, export) plus anonymous and 3DES (Sweet32)."""
    info = suites().get(name)
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


def is_recommended(name: str) -> bool:
    """RFC 9325 section 4.2 recommends it (TLS 1.3: RFC 8446 section 9.1)."""
    return _code(name) in (_BCP195_RECOMMENDED | _TLS13_RECOMMENDED)


def _sha1_mac(name: str) -> bool:
    info = suites().get(name)
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
    clean = not any(is_forbidden(n) for n in names)
    auth = "ECDSA" if key_type == "EC" else key_type

    def servable(codes: frozenset[int]) -> frozenset[int]:
        """The codes the device's certificate could serve: RSA suites for RSA, ECDSA for EC."""
        by_code = {_code(n): n for n in suites()}
        out = set()
        for c in codes:
            name = by_code.get(c)
            if name is None:
                continue  # the local OpenSSL cannot offer it: not testable
            info = suites()[name]
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
