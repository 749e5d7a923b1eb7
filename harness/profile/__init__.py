"""Device profiles: the TOML file that says what the device is, which services it declares, and how to start each variant."""

from harness.profile._load import load_profile, parse_profile, profile_json_schema
from harness.profile._specs import (
    IDENTITY_KINDS,
    SERVICES,
    DeviceSpec,
    ExpectedChange,
    Profile,
    SimulatorSpec,
    VariantSpec,
)

__all__ = [
    "IDENTITY_KINDS",
    "SERVICES",
    "DeviceSpec",
    "ExpectedChange",
    "Profile",
    "SimulatorSpec",
    "VariantSpec",
    "load_profile",
    "parse_profile",
    "profile_json_schema",
]
