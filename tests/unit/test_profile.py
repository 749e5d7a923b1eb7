"""Profile loading: good profiles parse; every bad one names the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.demo import demo_profile
from harness.errors import ProfileError
from harness.profile import load_profile, parse_profile

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
[device]
name = "dev"
ae_title = "DEV"
services = ["echo", "store"]

[variants.baseline]
command = ["dev", "--port", "{port}"]

[variants.candidate]
command = ["dev-patched", "--port", "{port}"]
"""


def test_good_profile_parses() -> None:
    profile = parse_profile(GOOD, "/tmp/dev.toml")
    assert profile.device.ae_title == "DEV"
    assert profile.device.services == ("echo", "store")
    assert profile.variant("candidate").command[0] == "dev-patched"
    assert profile.simulators["pacs"].ae_title == "PGPACS"


def test_reference_profile_file_matches_the_embedded_demo() -> None:
    on_disk = load_profile(ROOT / "devices" / "reference" / "profile.toml")
    embedded = demo_profile()
    assert on_disk.device == embedded.device
    assert on_disk.variants == embedded.variants
    assert on_disk.simulators == embedded.simulators


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (
            lambda t: t.replace('services = ["echo", "store"]', 'services = ["echo", "store"]\ncolour = "red"'),
            ":5: device.colour: unknown key",
        ),
        (lambda t: t.replace('ae_title = "DEV"', "ae_title = 7"), ":3: device.ae_title: expected str"),
        (
            lambda t: t.replace('services = ["echo", "store"]', 'services = ["echo", "teleport"]'),
            ":4: device.services: unknown service",
        ),
        (lambda t: t.replace('ae_title = "DEV"', 'ae_title = "WAY-TOO-LONG-AE-TITLE"'), ":3: device.ae_title"),
        (
            lambda t: t.replace("[variants.candidate]", "[variants.candidate]\nimgae = 3"),
            ":10: variants.candidate.imgae: unknown key",
        ),
        (
            lambda t: t.replace("[variants.candidate]", "[variants.candidate]\nimage = 3"),
            ":10: variants.candidate.image: expected str",
        ),
        (
            lambda t: t.replace("[variants.candidate]", '[variants.candidate]\nfiles = { "/etc/x.cfg" = "nope.cfg" }'),
            ":10: variants.candidate.files: template",
        ),
        (lambda t: t.replace('command = ["dev", "--port", "{port}"]', "command = [1, 2]"), "variants.baseline.command"),
        (lambda t: t + "\n[device.extra\n", "not valid TOML"),
        (
            lambda t: t.replace('name = "dev"\n', 'name = "dev"\nhost = "10.0.0.5"\n'),
            "device.host: '10.0.0.5' is not a loopback address",
        ),
        (lambda t: t.split("[variants.candidate]")[0], "no [variants.candidate]"),
    ],
)
def test_bad_profile_names_file_line_and_key(edit: object, fragment: str) -> None:
    text = edit(GOOD)  # type: ignore[operator]
    with pytest.raises(ProfileError) as info:
        parse_profile(text, "/tmp/dev.toml")
    message = info.value.one_line()
    assert message.startswith("/tmp/dev.toml"), message
    assert fragment in message, message
    assert "hint:" in message


def test_missing_profile_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="profile not found"):
        load_profile(tmp_path / "nope.toml")


def test_unknown_variant_lists_known_ones() -> None:
    profile = parse_profile(GOOD, "/tmp/dev.toml")
    with pytest.raises(ProfileError) as info:
        profile.variant("nightly")
    assert "variants in this profile: baseline, candidate" in info.value.one_line()


def test_unknown_demo_variant() -> None:
    with pytest.raises(ProfileError, match="unknown reference variant"):
        demo_profile("no-such-patch")
