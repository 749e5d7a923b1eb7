"""The embedded default: the reference device's profile, shipped as package data, with any of its variants as the patch."""

from __future__ import annotations

import re
from importlib import resources

from harness.errors import ProfileError
from harness.profile import Profile, parse_profile

__all__ = [
    "REFERENCE_PROFILE",
    "REGRESSION_ALIAS",
    "demo_profile",
    "demo_text",
    "known_variants",
    "reference_text",
    "table_span",
    "without_expect",
]

# A performance variant's demo samples longer than the profile's defaults (200 rounds within 150 s): a 20 %
# slow-down is shown beyond a 10 % threshold at 95 % on a loaded 2-core machine too; a clear one still stops early.
DEMO_MAX_ROUNDS = 200
DEMO_BUDGET = 300
# `--demo regression` picks the variant that changes several behaviours at once.
REGRESSION_ALIAS = "regression"

# The one copy of the reference profile: package data, so an installed wheel has it too
# (devices/reference/profile.toml is a link to it, for people reading the checkout).
REFERENCE_PROFILE = "data/reference.toml"
# The [expect] table and the keys under it, up to the next table or the end.
_EXPECT = re.compile(r"^\[expect\]\n(?:[^\[\n].*\n|\n)*", re.MULTILINE)


def without_expect(text: str) -> str:
    """Profile `text` without its [expect] table: a patch other than the shipped one is not held to its verdict."""
    return _EXPECT.sub("", text)


def table_span(text: str, name: str) -> tuple[int, int] | None:
    """Where the body of profile `text`'s `[NAME]` table starts (after its header line) and ends; None without one."""
    header = re.search(rf"^\[{re.escape(name)}\][ \t]*\n", text, re.MULTILINE)
    if header is None:
        return None
    following = re.search(r"^\[", text[header.end() :], re.MULTILINE)
    return header.end(), header.end() + following.start() if following else len(text)


def reference_text() -> str:
    """The reference profile's TOML as shipped: baseline `clean`, candidate `clean-rebuild`."""
    return (resources.files("harness") / REFERENCE_PROFILE).read_text(encoding="utf-8")


def known_variants() -> dict[str, str]:
    """The reference device's variants and what each changes."""
    from simulators.reference import DESCRIPTIONS

    return dict(DESCRIPTIONS)


def demo_text(candidate: str = "clean-rebuild", baseline: str = "clean") -> str:
    """The reference profile's TOML with `baseline` as shipped and `candidate` as the patch.

    Each variant table names its reference variant once (`"--variant", "NAME"`) and says whether
    it requires TLS (`tls = ...`, the variant's posture); only those two values are rewritten.
    """
    from simulators.reference import POSTURES, Posture

    text = reference_text()
    if (baseline, candidate) != ("clean", "clean-rebuild"):
        # The shipped file's [expect] is the verdict of clean -> clean-rebuild; another patch is not held to it.
        text = without_expect(text)
    for role, variant in (("baseline", baseline), ("candidate", candidate)):
        text = _set_variant(text, role, variant, POSTURES.get(variant, Posture()).tls)
    return text + _phases(baseline, candidate)


def _phases(*variants: str) -> str:
    """The tables that switch on the phase showing what a variant changes: [performance] on its metrics,
    [robustness] on its corpus inputs."""
    from simulators.reference import PERFORMANCE_METRICS, ROBUSTNESS_INPUTS

    text = ""
    for table, by_variant, what, extra in (
        # a performance variant's metrics are sampled longer, so a clear change shows on a loaded machine too
        ("performance", PERFORMANCE_METRICS, "metrics", f"max_rounds = {DEMO_MAX_ROUNDS}\nbudget = {DEMO_BUDGET}\n"),
        ("robustness", ROBUSTNESS_INPUTS, "inputs", ""),
    ):
        globs = [g for v in variants for g in by_variant.get(v, ())]
        if globs:
            listed = ", ".join(f'"{g}"' for g in dict.fromkeys(globs))
            text += (
                f"\n# --demo: the variant's change shows in the {table} phase, on these {what}\n"
                f"[{table}]\nenabled = true\n{what} = [{listed}]\n{extra}"
            )
    return text


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


def _set_variant(text: str, role: str, variant: str, tls: bool) -> str:
    """`text` with the `[variants.ROLE]` table running reference variant `variant`, requiring TLS or not."""
    span = table_span(text, f"variants.{role}")
    if span is None:
        raise ProfileError(f"{REFERENCE_PROFILE}: no [variants.{role}] table", hint="reinstall patchgate")
    start, end = span
    table = text[start:end]
    table, named = re.subn(r'("--variant",\s*)"[^"]*"', lambda m: f'{m[1]}"{variant}"', table)
    table, flagged = re.subn(r"^tls = (true|false)$", lambda _: f"tls = {str(tls).lower()}", table, flags=re.MULTILINE)
    if (named, flagged) != (1, 1):
        raise ProfileError(
            f"{REFERENCE_PROFILE}: [variants.{role}] must hold one --variant argument and one tls line",
            hint="reinstall patchgate",
        )
    return text[:start] + table + text[end:]
