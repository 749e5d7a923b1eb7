"""The embedded default: a profile for the reference device, so `patchgate validate --demo` needs no files."""

from __future__ import annotations

from harness.errors import ProfileError
from harness.profile import Profile, parse_profile

__all__ = ["DEMO_TEMPLATE", "REGRESSION_ALIAS", "demo_profile", "demo_text", "known_variants"]

# `--demo regression` picks the variant that changes several behaviours at once.
REGRESSION_ALIAS = "regression"

DEMO_TEMPLATE = """\
# The reference device: patchgate's embedded PACS, whose variants stand for patches.
[device]
name = "reference"
ae_title = "REFDEVICE"
host = "127.0.0.1"
port = 0
services = ["echo", "store", "find", "move", "get"]
start_timeout = 20

[device.identity]
{identity}

[simulators.pacs]
ae_title = "PGPACS"

[modality]
ae_title = "PGMODALITY"

[corpus]
seed = 1422

[variants.baseline]
description = "as shipped"
tls = {baseline_tls}
command = ["{{python}}", "-m", "simulators.reference", "--variant", "{baseline}", "--ae-title", "{{ae_title}}",
           "--port", "{{port}}", "--storage", "{{workdir}}/storage",
           "--destination", "{{pacs.ae_title}}={{pacs.host}}:{{pacs.port}}", "--tls-dir", "{{tls.dir}}",
           "--audit", "udp://{{arr.host}}:{{arr.udp_port}}", "--audit-tls", "tls://{{arr.host}}:{{arr.tls_port}}",
           "--known-peer", "{{modality.ae_title}}", "--known-peer", "{{pacs.ae_title}}",
           "--identity-secret", "{secret}"]

[variants.candidate]
description = "patched"
tls = {candidate_tls}
command = ["{{python}}", "-m", "simulators.reference", "--variant", "{candidate}", "--ae-title", "{{ae_title}}",
           "--port", "{{port}}", "--storage", "{{workdir}}/storage",
           "--destination", "{{pacs.ae_title}}={{pacs.host}}:{{pacs.port}}", "--tls-dir", "{{tls.dir}}",
           "--audit", "udp://{{arr.host}}:{{arr.udp_port}}", "--audit-tls", "tls://{{arr.host}}:{{arr.tls_port}}",
           "--known-peer", "{{modality.ae_title}}", "--known-peer", "{{pacs.ae_title}}",
           "--identity-secret", "{secret}"]
"""


def known_variants() -> dict[str, str]:
    """The reference device's variants and what each changes."""
    from simulators.reference import DESCRIPTIONS

    return dict(DESCRIPTIONS)


def demo_text(candidate: str = "clean-rebuild", baseline: str = "clean") -> str:
    """The embedded profile's TOML for `baseline` as shipped and `candidate` as the patch."""
    from simulators.identity import standard_credentials
    from simulators.reference import IDENTITY_SECRET, POSTURES, Posture

    identity = "\n".join(f'{k} = "{v}"' for k, v in standard_credentials(IDENTITY_SECRET).items())
    return DEMO_TEMPLATE.format(
        baseline=baseline,
        candidate=candidate,
        baseline_tls=str(POSTURES.get(baseline, Posture()).tls).lower(),
        candidate_tls=str(POSTURES.get(candidate, Posture()).tls).lower(),
        secret=IDENTITY_SECRET,
        identity=identity,
    )


def demo_profile(candidate: str = "clean-rebuild", baseline: str = "clean") -> Profile:
    """The reference device with `baseline` as shipped and `candidate` as the patch."""
    variants = known_variants()
    for name in (baseline, candidate):
        if name not in variants:
            raise ProfileError(
                f"--demo: unknown reference variant {name!r}",
                hint=f"choose one of: {', '.join(sorted(variants))}",
            )
    return parse_profile(demo_text(candidate, baseline), f"<embedded:reference:{candidate}>")
