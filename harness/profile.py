"""Device profiles: the TOML file that says what the device is, which services it declares, and how to start each variant."""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ProfileError

__all__ = [
    "SERVICES",
    "DeviceSpec",
    "Profile",
    "SimulatorSpec",
    "VariantSpec",
    "load_profile",
    "parse_profile",
]

# The DICOM services a profile may declare; suites for undeclared services are not applicable.
SERVICES = ("echo", "store", "find", "move", "get")


@dataclass(frozen=True)
class DeviceSpec:
    """The device under test as its conformance statement describes it, in miniature."""

    name: str
    ae_title: str
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port is chosen per run
    services: tuple[str, ...] = SERVICES
    start_timeout: float = 20.0
    stop_timeout: float = 5.0
    # Containers only: "bridge" (a network and a shared namespace made per run) or "host" (the host's loopback).
    network: str = "bridge"
    probe: tuple[str, ...] = ()  # containers: a command whose output goes into the inventory (e.g. a version)
    # Valid user identity credentials the device knows, by kind (username, passcode, kerberos, saml, jwt).
    identity: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VariantSpec:
    """How to start one variant of the device (the baseline as shipped, or the patched candidate)."""

    name: str
    command: tuple[str, ...] = ()  # argv template: the process (local) or the container's command (docker)
    env: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    image: str = ""  # set: the docker backend runs this image
    tls: bool = False  # the variant requires DICOM TLS: suites and simulators speak TLS to it
    # Container path -> template file (absolute), rendered per run and mounted read-only.
    files: Mapping[str, str] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        return "docker" if self.image else "local"


@dataclass(frozen=True)
class SimulatorSpec:
    """A simulated peer the device talks to (e.g. the PACS it sends C-MOVE results to)."""

    name: str
    ae_title: str
    port: int = 0


@dataclass(frozen=True)
class Profile:
    """A parsed profile; `source` is the file it came from (or `<embedded:...>`)."""

    source: str
    sha256: str
    device: DeviceSpec
    variants: Mapping[str, VariantSpec]
    simulators: Mapping[str, SimulatorSpec]
    modality_ae_title: str = "PGMODALITY"
    corpus_seed: int = 1422
    suite_paths: tuple[str, ...] = ()  # empty: the built-in suites
    suite_timeout: float = 600.0
    expected: tuple[Mapping[str, Any], ...] = ()  # raw [[expected]] entries, parsed by the policy stage
    policy_files: tuple[str, ...] = ()

    def variant(self, name: str) -> VariantSpec:
        try:
            return self.variants[name]
        except KeyError:
            known = ", ".join(sorted(self.variants)) or "none"
            raise ProfileError(
                f"{self.source}: no variant named {name!r}",
                hint=f"variants in this profile: {known}",
            ) from None


# Allowed keys per table, with their types; anything else is an error that names the line.
_SCHEMA: dict[str, dict[str, tuple[type, ...]]] = {
    "": {
        "device": (dict,),
        "variants": (dict,),
        "simulators": (dict,),
        "modality": (dict,),
        "corpus": (dict,),
        "suites": (dict,),
        "expected": (list,),
        "policy": (list, str),
    },
    "device": {
        "name": (str,),
        "ae_title": (str,),
        "host": (str,),
        "port": (int,),
        "services": (list,),
        "start_timeout": (int, float),
        "stop_timeout": (int, float),
        "network": (str,),
        "probe": (list,),
        "identity": (dict,),
    },
    "variant": {
        "command": (list,),
        "env": (dict,),
        "description": (str,),
        "image": (str,),
        "files": (dict,),
        "tls": (bool,),
    },
    "simulator": {"ae_title": (str,), "port": (int,)},
    "modality": {"ae_title": (str,)},
    "corpus": {"seed": (int,)},
    "suites": {"paths": (list,), "timeout": (int, float)},
}

_LOOPBACK = re.compile(r"^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|::1)$")
_AE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # PS3.5: 16 chars, no backslash or control


def _line_of(text: str, table: str, key: str) -> int:
    """Best-effort line number of `key` inside `[table]` (tomllib reports none for semantic errors)."""
    current = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?", line)
        if header:
            current = header.group(1).replace('"', "").replace(" ", "")
            if key == "" and current == table:
                return number
            continue
        if current == table and re.match(rf'^"?{re.escape(key)}"?\s*=', line):
            return number
        if current == "" and table and re.match(rf"^{re.escape(table.split('.')[0])}\s*[.=]", line):
            return number
    return 0


class _Checker:
    """Validates parsed TOML against _SCHEMA, raising ProfileError with file, line, key and hint."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.text = text

    def fail(self, table: str, key: str, message: str, hint: str) -> ProfileError:
        line = _line_of(self.text, table, key) if self.text else 0
        where = f"{self.source}:{line}" if line else self.source
        dotted = f"{table}.{key}" if table and key else (table or key)
        return ProfileError(f"{where}: {dotted}: {message}", hint=hint)

    def table(self, data: Mapping[str, Any], table: str, schema: str) -> None:
        allowed = _SCHEMA[schema]
        for key, value in data.items():
            if key not in allowed:
                raise self.fail(table, key, "unknown key", f"allowed keys here: {', '.join(sorted(allowed))}")
            types = allowed[key]
            if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
                wanted = " or ".join(
                    "table" if t is dict else "array" if t is list else "true/false" if t is bool else t.__name__
                    for t in types
                )
                raise self.fail(
                    table,
                    key,
                    f"expected {wanted}, got {type(value).__name__} {value!r}",
                    "fix the value's type",
                )

    def strings(self, values: Sequence[Any], table: str, key: str) -> tuple[str, ...]:
        for value in values:
            if not isinstance(value, str):
                raise self.fail(table, key, f"expected an array of strings, found {value!r}", "quote every item")
        return tuple(values)


_IDENTITY_KINDS = ("username", "passcode", "kerberos", "saml", "jwt")


def _identity(check: _Checker, raw: Mapping[str, Any]) -> dict[str, str]:
    for kind, value in raw.items():
        if kind not in _IDENTITY_KINDS:
            raise check.fail("device.identity", kind, "unknown credential kind", f"known: {', '.join(_IDENTITY_KINDS)}")
        if not isinstance(value, str):
            raise check.fail("device.identity", kind, f"expected a string, got {value!r}", "quote the credential")
    return dict(raw)


def parse_profile(text: str, source: str) -> Profile:
    """Parse profile TOML text; `source` names it in errors. Relative paths resolve against its folder."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML: {exc}", hint="check the line named above") from None
    check = _Checker(source, text)
    check.table(data, "", "")
    base = Path(source).parent if not source.startswith("<") else Path.cwd()

    raw_device = data.get("device")
    if raw_device is None:
        raise check.fail("device", "", "missing table", "add a [device] table with name and ae_title")
    check.table(raw_device, "device", "device")
    for key in ("name", "ae_title"):
        if key not in raw_device:
            raise check.fail("device", key, "missing key", f'add {key} = "..." under [device]')
    if not _AE.match(raw_device["ae_title"]):
        raise check.fail(
            "device",
            "ae_title",
            f"{raw_device['ae_title']!r} is not a valid AE title",
            "1-16 printable characters, no backslash",
        )
    host = raw_device.get("host", "127.0.0.1")
    if not _LOOPBACK.match(host):
        raise check.fail(
            "device",
            "host",
            f"{host!r} is not a loopback address",
            "the local backend only serves 127.0.0.0/8",
        )
    services = check.strings(raw_device.get("services", list(SERVICES)), "device", "services")
    for service in services:
        if service not in SERVICES:
            raise check.fail(
                "device", "services", f"unknown service {service!r}", f"known services: {', '.join(SERVICES)}"
            )
    port = raw_device.get("port", 0)
    if not 0 <= port <= 65535:
        raise check.fail("device", "port", f"{port} is not a TCP port", "use 0 (pick a free port) or 1-65535")
    network = raw_device.get("network", "bridge")
    if network not in ("bridge", "host"):
        raise check.fail(
            "device",
            "network",
            f"unknown network {network!r}",
            '"bridge" (default: a network of its own per run) or "host" (the host\'s loopback)',
        )
    device = DeviceSpec(
        name=raw_device["name"],
        ae_title=raw_device["ae_title"],
        host=host,
        port=port,
        services=services,
        start_timeout=float(raw_device.get("start_timeout", 20.0)),
        stop_timeout=float(raw_device.get("stop_timeout", 5.0)),
        network=network,
        probe=check.strings(raw_device.get("probe", []), "device", "probe"),
        identity=_identity(check, raw_device.get("identity", {})),
    )

    variants: dict[str, VariantSpec] = {}
    for name, raw in data.get("variants", {}).items():
        table = f"variants.{name}"
        if not isinstance(raw, dict):
            raise check.fail("variants", name, "expected a table", f"write [variants.{name}] with command = [...]")
        check.table(raw, table, "variant")
        command = check.strings(raw.get("command", []), table, "command")
        image = raw.get("image", "")
        if not command and not image:
            raise check.fail(
                table, "command", "needs command or image", 'command = ["program", "arg", ...] or image = "name:tag"'
            )
        env = raw.get("env", {})
        check.strings(list(env.values()), table, "env")
        files = raw.get("files", {})
        check.strings(list(files.values()), table, "files")
        resolved = {inside: str((base / template).resolve()) for inside, template in files.items()}
        for inside, template in resolved.items():
            if not Path(template).is_file():
                raise check.fail(table, "files", f"template {template} not found", "paths are relative to the profile")
            if not inside.startswith("/"):
                raise check.fail(table, "files", f"{inside!r} is not an absolute container path", "use /etc/...")
        variants[name] = VariantSpec(
            name,
            command,
            dict(env),
            raw.get("description", ""),
            image=image,
            files=resolved,
            tls=bool(raw.get("tls", False)),
        )
    for required in ("baseline", "candidate"):
        if required not in variants:
            raise check.fail(
                "variants",
                "",
                f"no [variants.{required}]",
                "a profile names a baseline and a candidate variant",
            )

    simulators: dict[str, SimulatorSpec] = {}
    for name, raw in data.get("simulators", {}).items():
        table = f"simulators.{name}"
        if name != "pacs":
            raise check.fail("simulators", name, "unknown simulator", "known simulators: pacs")
        if not isinstance(raw, dict):
            raise check.fail("simulators", name, "expected a table", f"write [simulators.{name}]")
        check.table(raw, table, "simulator")
        simulators[name] = SimulatorSpec(name, raw.get("ae_title", "PGPACS"), raw.get("port", 0))
    simulators.setdefault("pacs", SimulatorSpec("pacs", "PGPACS"))

    modality = data.get("modality", {})
    check.table(modality, "modality", "modality")
    corpus = data.get("corpus", {})
    check.table(corpus, "corpus", "corpus")
    suites = data.get("suites", {})
    check.table(suites, "suites", "suites")
    paths = tuple(str((base / p).resolve()) for p in check.strings(suites.get("paths", []), "suites", "paths"))

    expected = data.get("expected", [])
    for index, entry in enumerate(expected, start=1):
        if not isinstance(entry, dict):
            raise check.fail("expected", "", f"entry {index} is not a table", "write [[expected]] tables")
    policy = data.get("policy", [])
    policy_files = (policy,) if isinstance(policy, str) else check.strings(policy, "", "policy")

    return Profile(
        source=source,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        device=device,
        variants=variants,
        simulators=simulators,
        modality_ae_title=modality.get("ae_title", "PGMODALITY"),
        corpus_seed=corpus.get("seed", 1422),
        suite_paths=paths,
        suite_timeout=float(suites.get("timeout", 600.0)),
        expected=tuple(expected),
        policy_files=tuple(str((base / p).resolve()) for p in policy_files),
    )


def load_profile(path: str | Path) -> Profile:
    """Read and parse a profile file; every problem is a ProfileError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(f"{path}: profile not found", hint="pass --profile PATH to a device profile TOML") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc}", hint="is it a UTF-8 text file?") from None
    return parse_profile(text, str(path))
