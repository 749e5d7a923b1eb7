"""Headless Chromium screenshots of report.html, and a PNG's size and top rows read back, for the docs and tests."""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

__all__ = ["FLAGS", "SIZE", "ChromiumError", "find_chromium", "png_rows", "png_size", "screenshot"]

# As tests/integration/test_cli.py prints report.html: no sandbox (root in CI), no GPU, nothing fetched.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
SIZE = (1280, 900)  # px: a laptop's first screen
_NAMES = ("chromium", "chromium-browser", "google-chrome")
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ChromiumError(RuntimeError):
    """Chromium is missing, failed, or wrote no screenshot."""


def find_chromium() -> str:
    """The Chromium binary: $CHROMIUM, else the first of chromium, chromium-browser, google-chrome on PATH."""
    named = os.environ.get("CHROMIUM")
    found = shutil.which(named) if named else next(filter(None, map(shutil.which, _NAMES)), None)
    if found:
        return found
    where = f"CHROMIUM={named} is not an executable" if named else f"none of {', '.join(_NAMES)} is on PATH"
    raise ChromiumError(f"Chromium not found: {where}; hint: apt-get install -y chromium, or set CHROMIUM=/path/to/it")


def screenshot(
    page: Path, png: Path, *, size: tuple[int, int] = SIZE, chromium: str | None = None, timeout: float = 120.0
) -> Path:
    """The first screen of `page` (an HTML file) at `size` CSS px, scale 1, written to `png`.

    Chromium runs in a session of its own with a throwaway profile; past `timeout` seconds its whole process
    group is killed and ChromiumError says so.
    """
    binary = chromium or find_chromium()
    if not page.is_file():
        raise ChromiumError(f"{page}: no such page to screenshot")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)  # so a stale file never passes for this run's
    with tempfile.TemporaryDirectory(prefix="patchgate-chromium-") as profile:
        args = [
            binary,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}",
            "--force-device-scale-factor=1",
            "--hide-scrollbars",
            f"--screenshot={png.resolve()}",
            page.resolve().as_uri(),
        ]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its renderer and GPU processes too: the group is ours alone
            proc.communicate()
            raise ChromiumError(f"{binary}: no screenshot of {page} within {timeout:.0f} s") from None
    if proc.returncode != 0 or not png.is_file():
        tail = err.decode(errors="replace")[-2000:]
        raise ChromiumError(f"{binary} exited {proc.returncode} without writing {png}: {tail}")
    return png


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR; ValueError when `data` is no PNG."""
    if not data.startswith(_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG (no signature or no IHDR first)")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def png_rows(data: bytes, rows: int) -> list[list[tuple[int, int, int]]]:
    """The top `rows` rows of an 8-bit RGB or RGBA, non-interlaced PNG (Chromium's) as RGB pixels.

    Only as much of the image data as those rows need is inflated and unfiltered, so a test reads a banner
    without decoding a whole screen in Python.
    """
    width, height = png_size(data)
    depth, colour, _, _, interlace = data[24:29]
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"PNG of bit depth {depth}, colour type {colour}, interlace {interlace}: not read here")
    channels = 3 if colour == 2 else 4
    stride = width * channels
    rows = min(rows, height)
    wanted = (stride + 1) * rows
    inflate = zlib.decompressobj()
    raw = bytearray()
    at = 8
    while at < len(data) and len(raw) < wanted:
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        if kind == b"IDAT":
            raw += inflate.decompress(data[at + 8 : at + 8 + length])
        at += 12 + length
    if len(raw) < wanted:
        raise ValueError(f"PNG image data ends before row {rows}")
    previous = bytearray(stride)
    out: list[list[tuple[int, int, int]]] = []
    for r in range(rows):
        start = r * (stride + 1)
        line = _unfilter(raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, channels)
        out.append([(line[i], line[i + 1], line[i + 2]) for i in range(0, stride, channels)])
        previous = line
    return out


def _unfilter(kind: int, line: bytearray, above: bytearray, bpp: int) -> bytearray:
    """One scanline's filter undone (PNG spec, 9.2: None, Sub, Up, Average, Paeth)."""
    if kind == 0:
        return line
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b = above[i]
        c = above[i - bpp] if i >= bpp else 0
        if kind == 1:
            x = a
        elif kind == 2:
            x = b
        elif kind == 3:
            x = (a + b) // 2
        elif kind == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            x = a if pa <= pb and pa <= pc else b if pb <= pc else c
        else:
            raise ValueError(f"PNG filter type {kind} unknown")
        line[i] = (line[i] + x) & 0xFF
    return line
