"""docs/profiles.md never rots: its key reference is the schema's, and every TOML example in it loads and checks."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from harness.compare.policy import load_policy
from harness.placeholders import ACTION_VALUES, NAMES
from harness.profile import load_profile, policy_json_schema, profile_json_schema
from harness.profile.__main__ import REFERENCES
from harness.runner import check_variant
from tests.conftest import ROOT

GUIDE = (ROOT / "docs" / "profiles.md").read_text(encoding="utf-8")


def _section(name: str) -> str:
    found = re.search(rf"<!-- {name}:begin -->\n(.*?)<!-- {name}:end -->", GUIDE, flags=re.S)
    assert found, f"docs/profiles.md lacks its <!-- {name}:begin/end --> markers"
    return found[1]


def _schema_keys(schema: Mapping[str, Any]) -> set[str]:
    """Every TOML key the schema knows, dotted; a table of tables by name reads `NAME` (`variants.NAME.command`)."""
    defs = schema["$defs"]

    def walk(node: Mapping[str, Any], path: str) -> Iterator[str]:
        if "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[1]]
        below = node.get("additionalProperties")
        if node.get("type") == "array" and "$ref" in node.get("items", {}):
            yield from walk(node["items"], path)
        elif isinstance(below, Mapping) and "$ref" in below:
            yield from walk(below, f"{path}.NAME" if path else "NAME")
        elif "properties" in node:
            for name, sub in node["properties"].items():
                yield from walk(sub, f"{path}.{name}" if path else name)
        else:
            yield path

    return set(walk(schema, ""))


def _documented_keys(section: str) -> set[str]:
    """The dotted keys the guide's reference tables document: each row's key under its table's header."""
    keys: set[str] = set()
    header = ""
    for line in section.splitlines():
        if table := re.fullmatch(r"#### `(.*)`", line):
            header = "" if table[1].startswith("(top level") else table[1].strip("[]")
        elif row := re.match(r"\| `([^`]+)` \|", line):
            keys.add(f"{header}.{row[1]}" if header else row[1])
    return keys


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_the_key_reference_is_generated_from_the_model(name: str) -> None:
    assert _section(name) == "\n" + REFERENCES[name](), "stale: python scripts/profile_docs.py"


@pytest.mark.parametrize(
    ("name", "schema"), [("profile-keys", profile_json_schema()), ("policy-keys", policy_json_schema())]
)
def test_every_key_the_schema_knows_is_documented_and_no_other(name: str, schema: Mapping[str, Any]) -> None:
    known, documented = _schema_keys(schema), _documented_keys(_section(name))
    assert known - documented == set(), "keys the schema knows that the guide does not document"
    assert documented - known == set(), "keys the guide documents that the schema does not know"
    assert len(known) > 10


def test_the_schema_walk_finds_nested_tables() -> None:
    # The walk above is what the key check stands on: it must reach tables of tables and arrays of tables.
    keys = _schema_keys(profile_json_schema())
    assert {"device.actions.NAME.kind", "variants.NAME.files", "expected.allow_loosening", "corpus.seed"} <= keys
    assert {"policy", "expected_slowdown.up_to", "simulators.ris.ae_title", "expect.verdict"} <= keys


def test_the_placeholder_tables_list_every_placeholder_and_no_other() -> None:
    listed = set(re.findall(r"^\| `\{([a-z_.]+)\}` \|", _section("placeholders"), flags=re.M))
    assert listed == NAMES | ACTION_VALUES


def _examples() -> dict[str, str]:
    """The guide's TOML blocks by the file name each one's first line gives (`# NAME.toml`)."""
    blocks = re.findall(r"```toml\n(.*?)```", GUIDE, flags=re.S)
    named = {}
    for block in blocks:
        first = re.fullmatch(r"# (\S+\.toml)", block.splitlines()[0])
        assert first, f"a TOML example must start with `# NAME.toml`: {block.splitlines()[0]!r}"
        named[first[1]] = block
    assert len(named) == len(blocks), "two TOML examples share a file name"
    return named


def _written(tmp_path: Path) -> dict[str, Path]:
    """Every example written beside the others, with the configuration templates their `files` name."""
    paths = {}
    for name, text in _examples().items():
        paths[name] = tmp_path / name
        paths[name].write_text(text, encoding="utf-8")
        for variant in tomllib.loads(text).get("variants", {}).values():
            for template in variant.get("files", {}).values():
                (tmp_path / template).write_text('{ "DicomAet": "{ae_title}", "DicomPort": {port} }\n')
    return paths


def test_every_example_loads_and_passes_the_checks_a_run_makes_first(tmp_path: Path) -> None:
    paths = _written(tmp_path)
    assert {"minimal.toml", "full.toml", "tickets-policy.toml"} <= set(paths)
    for name, path in paths.items():
        if "[device]" in path.read_text(encoding="utf-8"):
            profile = load_profile(path)
            for variant in ("baseline", "candidate"):
                check_variant(profile, variant)
        else:
            assert load_policy(path).entries or load_policy(path).slowdowns, name


def test_the_minimal_example_is_minimal_and_the_full_one_full(tmp_path: Path) -> None:
    paths = _written(tmp_path)
    minimal = tomllib.loads(paths["minimal.toml"].read_text(encoding="utf-8"))
    assert minimal.keys() == {"device", "variants"} and minimal["device"].keys() == {"name", "ae_title"}
    # The full example and the policy file it names show every table of the format at least once.
    full = tomllib.loads(paths["full.toml"].read_text(encoding="utf-8"))
    policy = tomllib.loads(paths["tickets-policy.toml"].read_text(encoding="utf-8"))
    tables = {k.split(".")[0].replace("NAME", "") for k in _schema_keys(profile_json_schema())}
    assert tables - set(full) - set(policy) == set()
    assert set(full["device"]["actions"]) and load_profile(paths["full.toml"]).policy_files


def test_the_reference_prints_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.profile.__main__ import main

    assert main(["--reference", "policy-keys"]) == 0
    assert capsys.readouterr().out == REFERENCES["policy-keys"]()
    with pytest.raises(SystemExit):
        main(["--schema", "--reference", "profile-keys"])  # one or the other
