"""`patchgate verify` and `pack` on a real validation's output: intact, tampered, wrong key, archived."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import run_cli


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evidence") / "demo"
    result = run_cli("validate", "--demo", "--out", str(out))
    assert result.code == 0, result.stdout + result.stderr
    return out


def _copy(demo: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(demo, tmp_path / "copy", symlinks=True))


def _key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return key


def _public(key: Ed25519PrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return path


def test_an_untouched_output_verifies_and_packs_member_for_member(demo: Path, tmp_path: Path) -> None:
    result = run_cli("verify", str(demo))
    assert result.code == 0, result.stdout + result.stderr
    assert "signature verified with evidence.pub beside the pack" in result.stdout
    document = json.loads((demo / "evidence.json").read_text(encoding="utf-8"))
    listed = {f["path"]: f["sha256"] for f in document["files"]}
    assert "runs/candidate-1/observations.jsonl" in listed and "report.html" in listed
    assert document["key"]["fingerprint"] in (demo / "report.html").read_text(encoding="utf-8")

    archive = tmp_path / "demo.tar.gz"
    packed = run_cli("pack", str(demo), "-o", str(archive))
    assert packed.code == 0, packed.stdout + packed.stderr
    with tarfile.open(archive, "r:gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == sorted(f"demo/{name}" for name in [*listed, "evidence.json"])
        for member in members:
            name = member.name.removeprefix("demo/")
            data = tar.extractfile(member)
            assert data is not None
            expected = listed.get(name, hashlib.sha256((demo / name).read_bytes()).hexdigest())
            assert hashlib.sha256(data.read()).hexdigest() == expected, name
    again = tmp_path / "again" / "demo.tar.gz"
    again.parent.mkdir()
    assert run_cli("pack", str(demo), "-o", str(again)).code == 0
    assert again.read_bytes() == archive.read_bytes(), "the same directory must pack to the same bytes"


def test_each_tampered_file_is_named_and_not_packed(demo: Path, tmp_path: Path) -> None:
    out = _copy(demo, tmp_path)
    observations = out / "runs" / "candidate-1" / "observations.jsonl"
    data = bytearray(observations.read_bytes())
    data[100] ^= 0x01
    observations.write_bytes(bytes(data))
    result = run_cli("verify", str(out))
    assert result.code == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == "runs/candidate-1/observations.jsonl: altered (SHA-256 differs, same size)"
    assert "FAILED: 1 problem(s); signature verified with evidence.pub beside the pack" in result.stderr

    (out / "runs" / "baseline-1" / "junit.xml").unlink()
    (out / "notes.txt").write_text("added after the validation", encoding="utf-8")
    result = run_cli("verify", str(out))
    assert result.code == 1
    assert sorted(result.stdout.splitlines()[:3]) == [
        "notes.txt: added",
        "runs/baseline-1/junit.xml: missing",
        "runs/candidate-1/observations.jsonl: altered (SHA-256 differs, same size)",
    ]
    refused = run_cli("pack", str(out), "-o", str(tmp_path / "refused.tar.gz"))
    assert refused.code == 1 and "does not verify" in refused.stderr, refused.stdout + refused.stderr
    assert not list(tmp_path.glob("refused.tar.gz*"))


def test_only_the_trusted_key_that_signed_verifies(demo: Path, tmp_path: Path) -> None:
    other = _public(_key(tmp_path / "other.pem"), tmp_path / "other.pub")
    result = run_cli("verify", str(demo), "--key", str(other))
    assert result.code == 1
    assert f"evidence.json: the signature does not verify with the trusted key {other}" in result.stdout
    assert run_cli("verify", str(demo), "--key", str(demo / "evidence.pub")).code == 0
    missing = run_cli("verify", str(tmp_path))
    assert missing.code == 2 and "no evidence.json here" in missing.stderr and "hint:" in missing.stderr


def test_compare_signs_with_a_key_from_a_file(demo: Path, tmp_path: Path) -> None:
    key = _key(tmp_path / "qa.pem")
    bad = run_cli("validate", "--demo", "--out", str(tmp_path / "never"), "--signing-key", str(tmp_path / "absent.pem"))
    assert bad.code == 2 and "absent.pem: cannot read" in bad.stderr, bad.stderr
    assert not (tmp_path / "never" / "runs").exists(), "an unusable key must fail before any run"

    runs = demo / "runs"
    out = tmp_path / "compared"
    result = run_cli(
        "compare", "--baseline", str(runs / "baseline-1"), "--baseline", str(runs / "baseline-2"),
        "--candidate", str(runs / "candidate-1"), "--out", str(out), "--signing-key", str(tmp_path / "qa.pem"),
    )  # fmt: skip
    assert result.code == 0, result.stdout + result.stderr
    document = json.loads((out / "evidence.json").read_text(encoding="utf-8"))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert document["key"]["fingerprint"] == hashlib.sha256(raw).hexdigest() and document["key"]["source"] == "file"
    assert [r["directory"] for r in document["inputs"]["runs"]] == [
        str((runs / name).resolve()) for name in ("baseline-1", "baseline-2", "candidate-1")
    ]
    assert document["inputs"]["runs"][2]["corpus"]["seed"] > 0
    trusted = run_cli("verify", str(out), "--key", str(_public(key, tmp_path / "qa.pub")))
    assert trusted.code == 0 and "the trusted key" in trusted.stdout, trusted.stdout + trusted.stderr
