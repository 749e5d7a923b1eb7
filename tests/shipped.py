"""The shipped device files (devices/**/*.toml) and the verdict each states in its [expect] table."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.compare.policy import load_policy
from harness.demo import known_variants
from harness.model import Verdict
from harness.profile import Profile, load_profile
from tests.conftest import ROOT

__all__ = ["DEVICES", "Shipped", "expected_verdict", "read_shipped", "shipped"]

DEVICES = ROOT / "devices"


@dataclass(frozen=True)
class Shipped:
    """One shipped file: a profile (validated alone) or a policy (validated with its profile or demo variant)."""

    path: Path
    verdict: Verdict
    profile: Path | None = None  # the profile validated: the file itself, or a policy's `profile`
    demo: str = ""  # a policy's reference variant (`patchgate validate --demo VARIANT --policy FILE`)

    @property
    def is_policy(self) -> bool:
        return self.profile != self.path

    @property
    def name(self) -> str:
        return self.path.relative_to(DEVICES).as_posix()

    def load_profile(self) -> Profile:
        assert self.profile is not None, f"{self.name} applies to --demo {self.demo}, not to a profile"
        return load_profile(self.profile)

    @property
    def in_containers(self) -> bool:
        """Its validation runs the device in containers (an `image =` variant), so only tests/docker can run it."""
        return self.profile is not None and any(v.image for v in self.load_profile().variants.values())


def _is_policy(path: Path) -> bool:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return "device" not in data and "variants" not in data


def read_shipped(path: Path) -> Shipped:
    """The file at `path` with its stated verdict; an AssertionError names a file that states none."""
    if _is_policy(path):
        expect = load_policy(path).expect
        assert expect is not None, f"{path}: a shipped policy file must state its verdict: add [expect] verdict = ..."
        if expect.demo:
            assert expect.demo in known_variants(), f"{path}: expect.demo {expect.demo!r} is no reference variant"
        return Shipped(path, expect.verdict, Path(expect.profile) if expect.profile else None, expect.demo)
    verdict = load_profile(path).expect_verdict
    assert verdict is not None, f"{path}: a shipped profile must state its verdict: add [expect] verdict = ..."
    return Shipped(path, verdict, path)


def shipped() -> list[Shipped]:
    """Every *.toml under devices/ (profiles and policies), each with its stated verdict; an AssertionError names
    a file that states none."""
    return [read_shipped(p) for p in sorted(DEVICES.glob("**/*.toml"))]


def expected_verdict(path: Path) -> Verdict:
    """The verdict shipped file `path` states (a profile: validated alone; a policy: with what it names)."""
    return read_shipped(path).verdict
