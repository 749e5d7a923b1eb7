"""Writes files (stdin: records of name length, data length, name, data) into the folder in argv[1].

Run as a script with `python -I -S`: the standard library only, nothing of patchgate's imported. With
`--atomic` each file is written as `NAME.tmp` and renamed. The first failure is one line on stderr,
`errno<TAB>name<TAB>reason`, and exit 1; a clean end of input is exit 0.
"""

from __future__ import annotations

import os
import struct
import sys

HEAD = struct.Struct("<II")  # a record's name and data lengths; harness.batch packs with it
ATOMIC = "--atomic"
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


def main(folder: str, atomic: bool = False) -> int:
    stream = sys.stdin.buffer
    suffix = ".tmp" if atomic else ""
    while header := stream.read(HEAD.size):
        if len(header) < HEAD.size:
            return _fail(0, "", "the batch ends inside a record")
        size, length = HEAD.unpack(header)
        name, data = stream.read(size).decode("utf-8"), stream.read(length)
        if len(data) < length or not name or "/" in name or name in (".", ".."):
            return _fail(0, name, "a truncated record or a name that is not a plain file name")
        path = os.path.join(folder, name)
        try:
            fd = os.open(path + suffix, _FLAGS, 0o666)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            if atomic:
                os.replace(path + suffix, path)
        except OSError as exc:
            return _fail(exc.errno or 0, name, exc.strerror or str(exc))
    return 0


def _fail(number: int, name: str, reason: str) -> int:
    sys.stderr.write(f"{number}\t{name}\t{reason}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], ATOMIC in sys.argv[2:]))
