"""The evidence pack: `evidence.json`, an Ed25519-signed manifest of every file of an output directory and its inputs.

`evidence.json` (format "patchgate-evidence/1") holds `files` (every regular file under the output
directory, runs/ included, as {path (relative, "/"), size, sha256}, sorted by path), `inputs` (per run:
its manifest's profile path and hash, corpus, images; the policy's hash), `patchgate` (version),
`created`, `key` ({fingerprint: SHA-256 of the raw 32-byte public key, hex; source: "file" or
"generated"; public_key: "evidence.pub"}) and `signature` (hex). Two names are never listed: evidence.json
itself and `.lock` (a writer lock holding a pid, rewritten by whoever next takes it).

Signed bytes: the document without its "signature" key, as
`json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")`; the document holds
no floats, so any language's canonical JSON gives the same bytes. `evidence.pub` (PEM SubjectPublicKeyInfo) is
written beside it and listed among the files. See docs/evidence.md for what the pack proves and what it does not.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import json
import os
import stat
import sys
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from harness import __version__
from harness.compare.policy import Policy
from harness.errors import EvidenceError, HarnessError, RunDirError, printable
from harness.model import JSON, Manifest, RunRecord
from harness.rundir import LOCK_NAME, OutDir, RunDir, storage_error, write_json_atomic

__all__ = [
    "EVIDENCE",
    "FORMAT",
    "PUBLIC_KEY",
    "Check",
    "Signer",
    "canonical",
    "check",
    "fingerprint",
    "load_signer",
    "pack_main",
    "run_inputs",
    "verify_main",
    "write_evidence",
    "write_pack",
]

EVIDENCE = OutDir(Path()).evidence.name  # "evidence.json": harness.rundir owns every file name
PUBLIC_KEY = OutDir(Path()).evidence_key.name  # "evidence.pub"
FORMAT = "patchgate-evidence/1"
_UNLISTED = frozenset({EVIDENCE, LOCK_NAME})  # never in the manifest, never "added"
_CHUNK = 1 << 20  # files are hashed in 1 MiB reads: a 10 GB PACS store costs no more memory than a small one
_KEY_HINT = (
    "pass an unencrypted PEM PKCS8 Ed25519 private key, e.g. from `openssl genpkey -algorithm ed25519 -out key.pem`"
)


def canonical(document: Mapping[str, JSON]) -> bytes:
    """The bytes signed: the document without "signature", sorted keys, compact separators, UTF-8."""
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, hex: what report.html shows and evidence.json records."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class Signer:
    """The private key that signs a pack: from a file kept by QA, or generated for one validation."""

    key: Ed25519PrivateKey
    source: str  # "file" or "generated"

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key.public_key())

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def load_signer(path: Path | None) -> Signer:
    """The key of `--signing-key FILE`, or a new one when None; EvidenceError naming the file when it is unusable."""
    if path is None:
        return Signer(Ed25519PrivateKey.generate(), "generated")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise EvidenceError(f"--signing-key {path}: cannot read: {exc.strerror or exc}", hint=_KEY_HINT) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:  # TypeError: encrypted; ValueError: not PEM, or a format it cannot read
        raise EvidenceError(f"--signing-key {path}: not a usable PEM private key ({exc})", hint=_KEY_HINT) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceError(f"--signing-key {path}: a {type(key).__name__.lstrip('_')}, not Ed25519", hint=_KEY_HINT)
    return Signer(key, "file")


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return _read(handle.fileno())[1]


def _read(fd: int) -> tuple[int, str]:
    """(bytes read, their SHA-256) from `fd` to its end, in `_CHUNK` reads."""
    digest, size = hashlib.sha256(), 0
    while chunk := os.read(fd, _CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _contents(path: str) -> tuple[int, str] | None:
    """(size, SHA-256) of a regular file, both from one descriptor's reads; None for anything else.

    A link is not followed (O_NOFOLLOW) and a pipe is not waited on (O_NONBLOCK): the type is checked on the
    open descriptor, so a file swapped after the listing cannot be read as another. Raw descriptors, because
    an output folder holds one file per case: 10,000 opened through Path cost 1.8 s, this 0.3 s.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # a symbolic link, a socket
            return None
        raise
    try:
        return _read(fd) if stat.S_ISREG(os.fstat(fd).st_mode) else None
    finally:
        os.close(fd)


def _walk(root: Path) -> Iterator[tuple[str, str]]:
    """(relative POSIX path, path) of every entry under `root` that is not a directory, unlisted names left out.

    Symbolic links are not followed: a link is an entry of its own (and not a regular file).
    """
    for folder, dirs, files in os.walk(root, followlinks=False):
        names = [*files, *(d for d in dirs if os.path.islink(os.path.join(folder, d)))]
        prefix = os.path.relpath(folder, root).replace(os.sep, "/")
        prefix = "" if prefix == "." else prefix + "/"
        for name in names:
            if name not in _UNLISTED:
                yield prefix + name, os.path.join(folder, name)


def _listing(root: Path) -> list[dict[str, JSON]]:
    """Every file under `root` as {path, size, sha256}, by path; EvidenceError for anything but a regular file."""
    files: list[dict[str, JSON]] = []
    for relative, path in _walk(root):
        try:
            relative.encode("utf-8")
        except UnicodeEncodeError:
            raise EvidenceError(
                f"{printable(path)}: a file name that is not UTF-8", hint="rename or remove it"
            ) from None
        contents = _contents(path)
        if contents is None:
            raise EvidenceError(
                f"{printable(path)}: not a regular file (a link, socket or pipe)",
                hint="an output directory holds files and folders only; remove it",
            )
        files.append({"path": relative, "size": contents[0], "sha256": contents[1]})
    return sorted(files, key=lambda f: str(f["path"]))


def run_inputs(runs: Sequence[RunRecord], policy: Policy, out: Path) -> dict[str, JSON]:
    """What the comparison was made of: each run as its manifest records it, and the policy's hash.

    A run directory outside `out` (`patchgate compare` of runs kept elsewhere) is named by its path and
    the hashes of its manifest and observations, which are what compare read.
    """
    return {"policy": {"sha256": policy.sha256()}, "runs": [_run(r, out) for r in runs]}


def _run(record: RunRecord, out: Path) -> dict[str, JSON]:
    m: Manifest = record.manifest
    directory = RunDir(Path(record.directory))
    try:
        where = directory.path.resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        where = str(directory.path.resolve())
    run: dict[str, JSON] = {
        "run_id": m.run_id,
        "role": m.role,
        "replica": m.replica,
        "variant": m.variant,
        "status": m.status.value,
        "directory": where,
        "profile": {"path": m.profile_path, "sha256": m.profile_sha256},
        "manifest_sha256": _sha256(directory.manifest),
        "observations_sha256": _sha256(directory.observations) if directory.observations.exists() else None,
    }
    if m.corpus is not None:
        run["corpus"] = {
            "seed": m.corpus.seed,
            "sha256": m.corpus.sha256,
            "size": m.corpus.size,
            "items": m.corpus.items,
        }
    for name in ("image", "simulators_image"):
        image = getattr(m.extra, name)
        if image is not None:
            run[name] = {"name": image.name, "id": image.id, "digests": list(image.digests)}
    return run


def write_evidence(out: Path, signer: Signer, inputs: Mapping[str, JSON]) -> Path:
    """Write `evidence.pub` and the signed `evidence.json` for every file under `out`.

    The outputs already written stay whatever happens: a failure is an EvidenceError that says so.
    """
    out = Path(out)
    try:
        (out / EVIDENCE).unlink(missing_ok=True)  # an old pack's manifest must not outlive the files it no longer fits
        _write_atomic(out / PUBLIC_KEY, signer.public_pem())
        document: dict[str, JSON] = {
            "format": FORMAT,
            "patchgate": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "key": {"fingerprint": signer.fingerprint, "source": signer.source, "public_key": PUBLIC_KEY},
            "inputs": dict(inputs),
            "files": list(_listing(out)),
        }
        document["signature"] = signer.key.sign(canonical(document)).hex()
        write_json_atomic(out / EVIDENCE, document)
    except (HarnessError, OSError, ValueError) as exc:
        why = exc.one_line() if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
        raise EvidenceError(
            f"{out}: the evidence pack was not written: {why}",
            hint="the reports and run directories are kept as they are; fix the cause and rerun `patchgate compare`",
        ) from None
    return out / EVIDENCE


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise storage_error(exc, path.parent) from None


@dataclass(frozen=True)
class Check:
    """What `verify` found: one line per problem (path and what happened), and which key it checked with."""

    problems: tuple[str, ...]
    key_used: str
    files: int
    signed: bool = False  # the signature verified with `key_used`

    @property
    def ok(self) -> bool:
        return not self.problems


def _load_document(directory: Path) -> dict[str, JSON]:
    """evidence.json as a dict; RunDirError (a usage error) when there is none."""
    if not directory.is_dir():
        raise RunDirError(f"{directory}: not a directory", hint="pass the output directory of `patchgate validate`")
    path = directory / EVIDENCE
    if not path.is_file():
        raise RunDirError(
            f"{directory}: no {EVIDENCE} here",
            hint="pass the --out directory of `patchgate validate` or `compare` (older versions wrote no pack)",
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _Broken(f"{EVIDENCE}: unreadable or not JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise _Broken(f"{EVIDENCE}: not a {FORMAT} document")
    return document


class _Broken(Exception):
    """evidence.json exists but cannot be checked at all: verification fails (exit 1), it is no usage error."""


def _public_key(directory: Path, trusted: Path | None) -> tuple[Ed25519PublicKey | None, str, str]:
    """(key, how it is named, problem): `trusted` when given (a bad one is a usage error), else evidence.pub."""
    path = trusted if trusted is not None else directory / PUBLIC_KEY
    named = f"the trusted key {trusted}" if trusted is not None else f"{PUBLIC_KEY} beside the pack"
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"a {type(key).__name__.lstrip('_')}, not Ed25519")
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if trusted is not None:
            raise RunDirError(
                f"--key {trusted}: not a usable PEM Ed25519 public key ({why})",
                hint="pass the public half (evidence.pub, or `openssl pkey -pubout` of the signing key)",
            ) from None
        return None, named, f"{PUBLIC_KEY}: unreadable ({why}); the signature cannot be checked"
    return key, f"{named} (fingerprint {fingerprint(key)})", ""


def check(directory: Path, trusted_key: Path | None = None) -> Check:
    """Compare `directory` with its evidence.json and check the signature; RunDirError when there is no pack."""
    directory = Path(directory)
    try:
        document = _load_document(directory)
    except _Broken as exc:
        return Check((str(exc),), "none", 0)
    key, named, key_problem = _public_key(directory, trusted_key)
    problems = [key_problem] if key_problem else []
    signed = False
    if key is not None:
        try:
            key.verify(bytes.fromhex(str(document.get("signature"))), canonical(document))
            signed = True
        except (InvalidSignature, ValueError):
            problems.append(f"{EVIDENCE}: the signature does not verify with {named}")
    problems += _file_problems(directory, document.get("files"))
    files = document.get("files")
    return Check(tuple(problems), named, len(files) if isinstance(files, list) else 0, signed)


def _file_problems(directory: Path, files: JSON) -> list[str]:
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        return [f"{EVIDENCE}: no list of files"]
    listed: dict[str, dict[str, JSON]] = {str(f.get("path")): f for f in files if isinstance(f, dict)}
    present = dict(_walk(directory))
    problems: list[tuple[str, str]] = []
    for relative, entry in listed.items():
        path = present.get(relative)
        if path is None:
            problems.append((relative, "missing"))
            continue
        contents = _contents(path)
        if contents is None:
            problems.append((relative, "altered (no longer a regular file)"))
            continue
        size, sha256 = contents
        if size != entry.get("size"):
            problems.append((relative, f"altered (size {entry.get('size')} -> {size} bytes)"))
        elif sha256 != entry.get("sha256"):
            problems.append((relative, "altered (SHA-256 differs, same size)"))
    problems += [(relative, "added") for relative in present if relative not in listed]
    return [f"{printable(relative)}: {what}" for relative, what in sorted(problems)]


def verify_main(directory: Path, trusted_key: Path | None = None) -> int:
    """`patchgate verify DIR [--key PUB.pem]`: each problem on its own line; 0 intact, 1 not."""
    result = check(directory, trusted_key)
    for problem in result.problems:
        print(problem)
    where = printable(str(directory))
    if result.ok:
        print(
            f"{where}: OK: {result.files} files match {EVIDENCE}; signature verified with {printable(result.key_used)}"
        )
        if trusted_key is None:
            print(
                "  (a key from beside the pack proves the files are unchanged since it was written, not who wrote it)"
            )
        return 0
    signature = f"signature verified with {result.key_used}" if result.signed else "signature not verified"
    print(f"{where}: FAILED: {len(result.problems)} problem(s); {printable(signature)}", file=sys.stderr)
    return 1


def write_pack(directory: Path, output: Path) -> Path:
    """`output`, a .tar.gz of every listed file and evidence.json under one folder named like `directory`.

    Members in path order, owners and the gzip time zeroed: the same directory packs to the same bytes.
    """
    directory = Path(directory)
    document = _load_document(directory)
    files = document.get("files")
    assert isinstance(files, list)
    listed = {str(f["path"]): str(f["sha256"]) for f in files if isinstance(f, dict)}
    names = sorted([EVIDENCE, *listed])
    top = directory.resolve().name or "evidence"
    tmp = output.with_name(output.name + ".tmp")
    try:
        with (
            tmp.open("wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped,
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name in names:
                path = directory / name
                info = tar.gettarinfo(str(path), arcname=f"{top}/{name}")
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with path.open("rb") as handle:
                    reader = _Hashing(handle)
                    tar.addfile(info, reader)
                if name != EVIDENCE and reader.sha.hexdigest() != listed[name]:
                    raise EvidenceError(
                        f"{printable(str(path))}: changed while it was packed",
                        hint="pack it again when nothing writes there",
                    )
        tmp.replace(output)
    except (OSError, EvidenceError) as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, EvidenceError):
            raise
        raise storage_error(exc, output.parent) from None
    return output


class _Hashing:
    """A file being packed, hashed as tarfile reads it: what went into the archive is what was checked."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.sha = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.sha.update(data)
        return data


def pack_main(directory: Path, output: Path | None = None) -> int:
    """`patchgate pack DIR [-o FILE.tar.gz]`: refuses (1) a directory that does not verify; else writes the archive."""
    directory = Path(directory)
    target = output if output is not None else directory.resolve().with_name(directory.resolve().name + ".tar.gz")
    if target.resolve().is_relative_to(directory.resolve()):
        raise RunDirError(f"-o {target}: inside {directory}", hint="write the archive outside the directory it packs")
    if target.exists():
        raise RunDirError(f"{target}: already exists", hint="remove it or choose another -o")
    result = check(directory)
    if not result.ok:
        for problem in result.problems:
            print(problem)
        print(
            f"patchgate: {printable(str(directory))} does not verify ({len(result.problems)} problem(s) above): "
            "not packed",
            file=sys.stderr,
        )
        return 1
    write_pack(directory, target)
    print(f"{printable(str(target))}: {result.files + 1} files (signature verified with {printable(result.key_used)})")
    return 0
