"""What patchgate ships besides code: devices/ and the project files, in a checkout or as a wheel carries them."""

from __future__ import annotations

import functools
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

__all__ = [
    "BUNDLED",
    "COMMIT_FILE",
    "ShippedProfile",
    "devices_root",
    "git_commit",
    "in_checkout",
    "project_file",
    "shipped_profiles",
    "source_commit",
]

_HARNESS = Path(__file__).resolve().parent
_TOP = _HARNESS.parent  # a checkout's root; site-packages in a wheel install
# Where setup.py's build hook puts devices/, pyproject.toml and README.md in a wheel.
BUNDLED = _HARNESS / "bundled"
COMMIT_FILE = "COMMIT"  # in BUNDLED: the commit the wheel was built from (setup.py), absent when not built from git
_GIT_TIMEOUT = 10.0  # s: a git that hangs (a network filesystem) must not hold a run


def in_checkout() -> bool:
    """Running from a source checkout (an editable install or tox), not from an installed wheel."""
    return (_TOP / "pyproject.toml").is_file() and (_TOP / "devices").is_dir()


def devices_root() -> Path:
    """devices/: the checkout's, else the copy the wheel carries."""
    root = _TOP / "devices" if in_checkout() else BUNDLED / "devices"
    if not root.is_dir():
        raise HarnessError(
            f"no device profiles at {root}: this installation of patchgate carries none",
            hint="reinstall patchgate from its wheel or a checkout (pip install patchgate)",
        )
    return root


@functools.lru_cache(maxsize=1)
def source_commit() -> str:
    """The commit patchgate runs from, for the record: a checkout's (see git_commit), else the one the wheel's
    build recorded, else "unknown"."""
    if in_checkout():
        return git_commit(_TOP) or "unknown"
    recorded = BUNDLED / COMMIT_FILE
    return recorded.read_text(encoding="utf-8").strip() if recorded.is_file() else "unknown"


def git_commit(root: Path) -> str:
    """`root`'s HEAD, with " + local changes" when tracked files differ from it; "" when it is not a git checkout.
    setup.py calls it too, to record the wheel's commit."""
    git = ["git", "-C", str(root)]
    try:
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=_GIT_TIMEOUT)
        if head.returncode:
            return ""
        changed = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return head.stdout.strip() + (" + local changes" if changed.stdout.strip() else "")


def project_file(name: str) -> Path:
    """pyproject.toml or README.md: the checkout's, else the wheel's copy."""
    return _TOP / name if in_checkout() else BUNDLED / name


@dataclass(frozen=True)
class ShippedProfile:
    """A device profile under devices/: its path, the device it names and what its candidate is."""

    path: Path
    name: str  # relative to devices/, e.g. "orthanc/profile.toml"
    device: str
    candidate: str


def shipped_profiles() -> list[ShippedProfile]:
    """Every profile under devices/ (a TOML file with a [device] table; policies have none), by name."""
    root = devices_root()
    found: list[ShippedProfile] = []
    for path in sorted(root.rglob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise HarnessError(f"{path}: not a readable TOML file: {exc}", hint="reinstall patchgate") from None
        device = data.get("device")
        if not isinstance(device, dict):
            continue
        variants = data.get("variants", {})
        candidate = variants.get("candidate", {}) if isinstance(variants, dict) else {}
        described = candidate.get("description", "") if isinstance(candidate, dict) else ""
        found.append(
            ShippedProfile(path, path.relative_to(root).as_posix(), str(device.get("name", "")), str(described))
        )
    return found
