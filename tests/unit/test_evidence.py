"""The evidence pack's manifest, signature and checks on real files: what is signed, what each tampering is called."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from harness.errors import EvidenceError
from harness.evidence import EVIDENCE, PUBLIC_KEY, check, load_signer, write_evidence


def _outputs(root: Path) -> Path:
    (root / "runs" / "candidate-1").mkdir(parents=True)
    (root / "report.html").write_text("<p>report</p>", encoding="utf-8")
    (root / "runs" / "candidate-1" / "observations.jsonl").write_bytes(b'{"case": "a"}\n' * 1000)
    (root / ".lock").write_text("pid 1\n", encoding="utf-8")  # a writer lock: rewritten by the next writer
    return root


def _pem(key: Ed25519PrivateKey | rsa.RSAPrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def test_the_documented_bytes_are_signed_and_every_file_listed(tmp_path: Path) -> None:
    out = _outputs(tmp_path / "out")
    key = Ed25519PrivateKey.generate()
    signer = load_signer(_pem(key, tmp_path / "key.pem"))
    write_evidence(out, signer, {"policy": {"sha256": "0" * 64}})

    document = json.loads((out / EVIDENCE).read_text(encoding="utf-8"))
    assert [f["path"] for f in document["files"]] == [PUBLIC_KEY, "report.html", "runs/candidate-1/observations.jsonl"]
    assert document["files"][2]["size"] == 14_000
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert document["key"] == {
        "fingerprint": hashlib.sha256(raw).hexdigest(),
        "source": "file",
        "public_key": PUBLIC_KEY,
    }
    # What docs/evidence.md tells a verifier to do, with nothing of patchgate's.
    signature = bytes.fromhex(document.pop("signature"))
    signed = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    public = serialization.load_pem_public_key((out / PUBLIC_KEY).read_bytes())
    assert isinstance(public, Ed25519PublicKey)
    public.verify(signature, signed)  # raises InvalidSignature otherwise
    assert check(out).ok

    # Layout is not signed, content is: re-indented it still verifies; one changed input does not.
    reindented = json.loads((out / EVIDENCE).read_text(encoding="utf-8"))
    (out / EVIDENCE).write_text(json.dumps(reindented, indent=4), encoding="utf-8")
    assert check(out).ok
    reindented["inputs"]["policy"]["sha256"] = "1" * 64
    (out / EVIDENCE).write_text(json.dumps(reindented), encoding="utf-8")
    assert check(out).problems == (f"{EVIDENCE}: the signature does not verify with {check(out).key_used}",)


def test_each_altered_missing_and_added_file_is_named(tmp_path: Path) -> None:
    out = _outputs(tmp_path)
    write_evidence(out, load_signer(None), {})
    (out / ".lock").write_text("pid 2\n", encoding="utf-8")  # not a record: no problem
    assert check(out).ok

    observations = out / "runs" / "candidate-1" / "observations.jsonl"
    with observations.open("r+b") as handle:
        handle.seek(5)
        handle.write(b"X")
    (out / "report.html").write_text("<p>report, edited</p>", encoding="utf-8")
    (out / PUBLIC_KEY).unlink()
    (out / "runs" / "extra.txt").write_text("added later", encoding="utf-8")
    os.symlink("report.html", out / "link.html")

    assert check(out).problems == (
        f"{PUBLIC_KEY}: unreadable (No such file or directory); the signature cannot be checked",
        f"{PUBLIC_KEY}: missing",
        "link.html: added",
        "report.html: altered (size 13 -> 21 bytes)",
        "runs/candidate-1/observations.jsonl: altered (SHA-256 differs, same size)",
        "runs/extra.txt: added",
    )


def test_an_unusable_signing_key_is_named_with_a_hint(tmp_path: Path) -> None:
    rsa_key = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048), tmp_path / "rsa.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key", encoding="utf-8")
    for path, words in (
        (tmp_path / "absent.pem", "cannot read"),
        (garbage, "not a usable PEM"),
        (rsa_key, "not Ed25519"),
    ):
        with pytest.raises(EvidenceError) as caught:
            load_signer(path)
        assert str(path) in caught.value.message and words in caught.value.message, caught.value.message
        assert "openssl genpkey -algorithm ed25519" in caught.value.hint


def test_a_failed_pack_keeps_the_outputs_and_says_so(tmp_path: Path) -> None:
    out = _outputs(tmp_path)
    os.mkfifo(out / "pipe")  # not a file whose bytes can be listed
    with pytest.raises(EvidenceError) as caught:
        write_evidence(out, load_signer(None), {})
    assert "the evidence pack was not written" in caught.value.message and "pipe" in caught.value.message
    assert "kept" in caught.value.hint
    assert (out / "report.html").read_text(encoding="utf-8") == "<p>report</p>"
    assert not (out / EVIDENCE).exists()


def test_a_file_swapped_for_a_pipe_or_link_is_named_not_read(tmp_path: Path) -> None:
    out = _outputs(tmp_path)
    write_evidence(out, load_signer(None), {})
    (out / "report.html").unlink()
    os.mkfifo(out / "report.html")  # read as a file, a pipe with no writer would block the check for ever
    observations = out / "runs" / "candidate-1" / "observations.jsonl"
    observations.rename(out / "elsewhere.jsonl")
    os.symlink(out / "elsewhere.jsonl", observations)  # the same bytes, through a link
    os.symlink(out / "runs", out / "folder-link")
    assert check(out).problems == (
        "elsewhere.jsonl: added",
        "folder-link: added",
        "report.html: altered (no longer a regular file)",
        "runs/candidate-1/observations.jsonl: altered (no longer a regular file)",
    )
    with pytest.raises(EvidenceError) as caught:
        write_evidence(out, load_signer(None), {})
    assert "not a regular file" in caught.value.message
