"""A stand-in bench device: the reference device started, stopped and restarted as another variant by hand or by hooks."""

# Usage (python is the interpreter patchgate runs with; {python} in a hook):
#   python bench.py start   --variant clean --port 11112 --pacs PGPACS=127.0.0.1:11113   (by hand: the "console")
#   python bench.py restart --variant store-warning --port 11112 --pacs ... [--keep-storage]   (a reset or apply hook)
#   python bench.py stop    --port 11112
# State (pid file, log, storage) lives in --state, by default $TMPDIR/patchgate-bench-PORT: the hand-started device
# and the hooks that restart it find each other by the port. Without --keep-storage a restart starts from an empty
# storage, as a reverted VM snapshot would; with it the device keeps every object it stored (a real archive does).
# --duplicates keep: a second C-STORE of an object it holds is answered as stored and the first copy kept (Orthanc's
# default); refuse: answered 0x0111; overwrite (the default): replaced.

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_LISTEN_TIMEOUT = 30.0  # seconds the device may take to print its 'listening' line on a loaded machine
_STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL


def _state(args: argparse.Namespace) -> Path:
    state = Path(args.state) if args.state else Path(tempfile.gettempdir()) / f"patchgate-bench-{args.port}"
    state.mkdir(parents=True, exist_ok=True)
    return state


def _running(pid_file: Path) -> int | None:
    """The pid in `pid_file` while that process lives, else None."""
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def stop(args: argparse.Namespace) -> int:
    pid_file = _state(args) / "device.pid"
    pid = _running(pid_file)
    if pid is None:
        return 0
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + _STOP_TIMEOUT
    while _running(pid_file) is not None and time.monotonic() < end:
        time.sleep(0.1)
    if _running(pid_file) is not None:
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    pid_file.unlink(missing_ok=True)
    return 0


def start(args: argparse.Namespace) -> int:
    state = _state(args)
    if _running(state / "device.pid") is not None:
        print(f"bench: a device already runs on port {args.port} (stop it first)", file=sys.stderr)
        return 1
    storage = state / "storage"
    if not args.keep_storage:
        shutil.rmtree(storage, ignore_errors=True)
    log = state / "device.log"
    argv = [sys.executable, "-m", "simulators.reference", "--variant", args.variant, "--ae-title", args.ae_title]
    argv += ["--host", "127.0.0.1", "--port", str(args.port), "--storage", str(storage)]
    argv += [a for pacs in args.pacs for a in ("--destination", pacs)]
    argv += ["--duplicates", args.duplicates]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHGATE_HEARTBEAT")}  # outlives any run
    with log.open("ab") as out:
        start_at = out.tell()
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    (state / "device.pid").write_text(f"{process.pid}\n")
    end = time.monotonic() + _LISTEN_TIMEOUT
    while time.monotonic() < end:
        if b"listening dicom=" in log.read_bytes()[start_at:]:
            print(f"bench: reference device {args.variant!r} on 127.0.0.1:{args.port} (pid {process.pid})")
            return 0
        if process.poll() is not None:
            break
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    print(f"bench: the device did not start; see {log}", file=sys.stderr)
    sys.stderr.write(log.read_bytes()[start_at:].decode(errors="replace")[-2000:])
    return 1


def restart(args: argparse.Namespace) -> int:
    stop(args)
    return start(args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=("start", "restart", "stop"))
    parser.add_argument("--port", type=int, required=True, help="the device's DICOM port on 127.0.0.1")
    parser.add_argument("--variant", default="clean", help="a reference device variant (patchgate variants)")
    parser.add_argument("--ae-title", default="REFDEVICE")
    parser.add_argument("--pacs", action="append", default=[], help="a C-MOVE destination AE=HOST:PORT (repeat)")
    parser.add_argument("--keep-storage", action="store_true", help="keep what the device stored before")
    parser.add_argument("--state", default="", help="the folder of its pid file, log and storage")
    parser.add_argument(
        "--duplicates",
        choices=("overwrite", "keep", "refuse"),
        default="overwrite",
        help="a C-STORE of an object it holds: overwrite it, keep the first (success), or refuse it (0x0111)",
    )
    args = parser.parse_args()
    return {"start": start, "restart": restart, "stop": stop}[args.action](args)


if __name__ == "__main__":
    sys.exit(main())
