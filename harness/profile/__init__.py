"""Device profiles: the TOML file that says what the device is, which services it declares, and how to start each variant."""

from harness.profile._load import (
    build_policy_file,
    load_profile,
    parse_policy_file,
    parse_profile,
    policy_json_schema,
    profile_json_schema,
)
from harness.profile._specs import (
    ACTION_KINDS,
    ACTION_NAMES,
    IDENTITY_KINDS,
    INITIATES,
    SERVICES,
    ActionSpec,
    DeviceSpec,
    Expectation,
    ExpectedChange,
    PolicyFile,
    Profile,
    SimulatorSpec,
    VariantSpec,
)

__all__ = [
    "ACTION_KINDS",
    "ACTION_NAMES",
    "IDENTITY_KINDS",
    "INITIATES",
    "SERVICES",
    "ActionSpec",
    "DeviceSpec",
    "Expectation",
    "ExpectedChange",
    "PolicyFile",
    "Profile",
    "SimulatorSpec",
    "VariantSpec",
    "build_policy_file",
    "load_profile",
    "parse_policy_file",
    "parse_profile",
    "policy_json_schema",
    "profile_json_schema",
]
