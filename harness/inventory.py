"""What a running device container exposes and contains: its own listening sockets, packages, version probe, image."""

from __future__ import annotations

import ipaddress
import re
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import TargetError
from harness.model import JSON, Security

__all__ = ["NOT_AVAILABLE", "Inventory", "Listener", "collect_inventory"]

NOT_AVAILABLE = "not available"
_PROBE_LINES = 3  # a version banner's first lines; the rest is licence and build detail
_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"  # TCP_CLOSE: bound, not connected (a connected UDP socket is a client's)

# Runs the dump under coreutils' `timeout` when the image has it; `$1` is the budget, `$2` the script.
_BOUNDED = (
    'n=$1; shift; if command -v timeout >/dev/null 2>&1; then exec timeout -s KILL "$n" sh -c "$1"; fi; exec sh -c "$1"'
)

# One pass over the container, only sh builtins plus cat/readlink/sort (coreutils): processes with their
# socket inodes, the socket tables of the container's network namespace, dpkg, and python site dirs.
_DUMP = r"""
export LC_ALL=C
echo '@proc'
for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  IFS= read -r comm < "$d/comm" 2>/dev/null || continue
  uid=; gid=; ppid=
  while read -r key a b c rest; do
    case $key in Uid:) uid="$a $b $c";; Gid:) gid="$a $b $c";; PPid:) ppid=$a;; esac
  done < "$d/status" 2>/dev/null
  printf 'P\t%s\t%s\t%s\t%s\t%s\n' "$pid" "$ppid" "$uid" "$gid" "$comm"
  set -- "$d"/fd/*
  [ -L "$1" ] && readlink -v "$@" 2>&1
done
for t in tcp tcp6 udp udp6; do
  [ -r "/proc/net/$t" ] && { echo "@net $t"; cat "/proc/net/$t"; }
done
echo '@dpkg'
if command -v dpkg-query >/dev/null 2>&1; then
  dpkg-query -W -f '${db:Status-Abbrev}\t${Package}\t${Version}\n' 2>/dev/null
else
  echo '@absent'
fi
echo '@python'
{
  for py in $(command -v python3) $(command -v python) /opt/*/bin/python3 /usr/local/bin/python3 /usr/bin/python3; do
    [ -x "$py" ] && "$py" -I -c 'import site; print("\n".join(site.getsitepackages()))' 2>/dev/null
  done
  for site in /opt/*/lib/python3*/site-packages /usr/local/lib/python3*/*-packages /usr/lib/python3*/*-packages; do
    echo "$site"
  done
} | sort -u | while IFS= read -r site; do
  [ -d "$site" ] || continue
  printf 'S\t%s\n' "$site"
  for meta in "$site"/*.dist-info/METADATA "$site"/*.egg-info/PKG-INFO "$site"/*.egg-info; do
    [ -f "$meta" ] || continue
    name=; version=
    while IFS= read -r line; do
      case $line in '') break;; Name:*) name=${line#Name:};; Version:*) version=${line#Version:};; esac
      [ -n "$name" ] && [ -n "$version" ] && break
    done < "$meta"
    printf 'M\t%s\t%s\n' "$name" "$version"
  done
done
echo '@end'
"""

# Re-reads the fds of processes running as another user: root without CAP_SYS_PTRACE may not (docker's default).
_FDS = r"""
export LC_ALL=C
for pid in "$@"; do
  printf 'P\t%s\n' "$pid"
  readlink -v /proc/"$pid"/fd/* 2>&1
done
"""

_SOCKET = re.compile(r"^socket:\[(\d+)\]$")


@dataclass(frozen=True)
class Listener:
    """A TCP socket in LISTEN state or a bound UDP socket, held by processes of the container."""

    protocol: str  # "tcp" | "udp"
    port: int
    scope: str  # "loopback" | "any" | "address"
    address: str
    processes: tuple[str, ...]  # /proc/<pid>/comm of every holder, sorted

    def describe(self, port_names: Mapping[int, str] | None = None) -> str:
        """`tcp/104 any (dcmqrscp)`; a port named in `port_names` reads as its role: `tcp/{dicom} any (dcmqrscp)`."""
        role = (port_names or {}).get(self.port)
        port = str(self.port) if role is None else (role if role.startswith("{") else f"{{{role}}}")
        return f"{self.protocol}/{port} {self.scope} ({','.join(self.processes)})"


@dataclass(frozen=True)
class Inventory:
    """One container's exposed surface and software, as collected by `collect_inventory`."""

    container: str
    image_id: str
    image_tags: tuple[str, ...]
    image_labels: Mapping[str, str]
    listeners: tuple[Listener, ...]
    # Processes whose sockets could not be read (they run as a user we could not become): listing is incomplete.
    unreadable: tuple[str, ...]
    packages: Mapping[str, str]  # dpkg: name -> version
    python_packages: Mapping[str, Mapping[str, str]]  # site-packages dir -> {normalised name: version}
    package_sources: Mapping[str, str]  # "dpkg"/"python" -> where they were read, or "not available"
    probe: str | None  # the profile's probe command's first lines, "error: ..." when it failed; None: no probe
    port_names: Mapping[int, str] = field(default_factory=dict)

    def listening(self) -> list[str]:
        """Sorted, deduplicated listener descriptions (IPv4 and IPv6 binds of one port read the same)."""
        lines = {listener.describe(self.port_names) for listener in self.listeners}
        lines.update(f"?/? unreadable ({name})" for name in self.unreadable)
        return sorted(lines)

    def all_packages(self) -> dict[str, str]:
        """dpkg packages by name plus python distributions as `pip:<name>` (versions of several envs joined)."""
        merged: dict[str, set[str]] = {}
        for dists in self.python_packages.values():
            for name, version in dists.items():
                merged.setdefault(f"pip:{name}", set()).add(version)
        out = dict(self.packages)
        out.update({name: ", ".join(sorted(versions)) for name, versions in merged.items()})
        return dict(sorted(out.items()))

    def observations(self) -> list[tuple[str, JSON, str]]:
        """(name, value, security) triples as patchgate records them; identical across runs of the same image."""
        observed: list[tuple[str, JSON, str]] = [
            ("listening", self.listening(), Security.EXPOSURE),
            ("packages", self.all_packages(), Security.NONE),
            ("package_sources", dict(sorted(self.package_sources.items())), Security.NONE),
        ]
        if self.probe is not None:
            observed.append(("probe", self.probe, Security.NONE))
        observed.append(("image_labels", dict(sorted(self.image_labels.items())), Security.NONE))
        return observed


def collect_inventory(
    container: Any,
    *,
    probe: Sequence[str] = (),
    timeout: float = 20.0,
    port_names: Mapping[int, str] | None = None,
) -> Inventory:
    """Inventory a running docker SDK container through `exec_run` as root; TargetError when it cannot be read."""
    deadline = time.monotonic() + timeout
    name = _name(container)
    _require_running(container, name)
    code, out, err = _exec(container, ["sh", "-c", _BOUNDED, "sh", _budget(deadline), _DUMP], "root", deadline, name)
    if code != 0 or "@end" not in out:
        raise _exec_failure(name, "the inventory dump", code, out + err, deadline)
    dump = _parse_dump(out)
    # `docker exec` sessions (this one included) have their parent outside the namespace (PPid 0) and may be
    # unreadable even to root; only PID 1's tree (the device) must be fully read.
    fds, unreadable = dump.fds, dict.fromkeys(pid for pid in dump.unreadable if _in_main_tree(dump, pid))
    # Root may not read a process's fds when it runs as another user: read them as that user.
    for user, pids in _by_user(dump, unreadable).items():
        _, more, _ = _exec(container, ["sh", "-c", _FDS, "sh", *pids], user, deadline, name, quiet=True)
        again = _parse_fds(more)
        for pid, inodes in again.fds.items():
            if pid not in again.unreadable:
                fds[pid] = inodes
                unreadable.pop(pid, None)
    holders: dict[str, set[str]] = {}
    for pid, inodes in fds.items():
        for inode in inodes:
            holders.setdefault(inode, set()).add(dump.comm.get(pid, "?"))
    listeners = tuple(
        sorted(
            (
                Listener(protocol, port, _scope(address), address, tuple(sorted(holders[inode])))
                for protocol, port, address, inode in dump.sockets
                if inode in holders
            ),
            key=lambda listener: (listener.protocol, listener.port, listener.address),
        )
    )
    image_id, tags, labels = _image(container)
    return Inventory(
        container=name,
        image_id=image_id,
        image_tags=tags,
        image_labels=labels,
        listeners=listeners,
        unreadable=tuple(sorted({dump.comm.get(pid, "?") for pid in unreadable})),
        packages=dump.dpkg,
        python_packages=dump.python,
        package_sources=dump.sources,
        probe=_probe(container, probe, deadline, name) if probe else None,
        port_names=dict(port_names or {}),
    )


@dataclass
class _Dump:
    comm: dict[str, str] = field(default_factory=dict)
    parent: dict[str, str] = field(default_factory=dict)  # pid -> ppid
    ids: dict[str, tuple[str, str]] = field(default_factory=dict)  # pid -> (uid, gid) when real = effective = saved
    fds: dict[str, set[str]] = field(default_factory=dict)  # pid -> socket inodes
    unreadable: list[str] = field(default_factory=list)
    sockets: list[tuple[str, int, str, str]] = field(default_factory=list)  # protocol, port, address, inode
    dpkg: dict[str, str] = field(default_factory=dict)
    python: dict[str, dict[str, str]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


def _parse_fds(text: str, dump: _Dump | None = None) -> _Dump:
    dump = dump or _Dump()
    pid = ""
    for line in text.splitlines():
        if line.startswith("P\t"):
            pid = line.split("\t")[1]
            dump.fds.setdefault(pid, set())
        elif line.endswith("Permission denied") and pid and pid not in dump.unreadable:
            dump.unreadable.append(pid)
        elif (match := _SOCKET.match(line)) and pid:
            dump.fds[pid].add(match.group(1))
    return dump


def _parse_dump(text: str) -> _Dump:
    dump = _Dump()
    section, table, sites = "", "", []
    proc_lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("@"):
            section, _, table = line[1:].partition(" ")
            if section == "absent":
                dump.sources["dpkg"] = NOT_AVAILABLE
            continue
        if section == "proc":
            proc_lines.append(line)
            if line.startswith("P\t"):
                parts = line.split("\t", 5)
                if len(parts) == 6:
                    dump.comm[parts[1]] = parts[5]
                    dump.parent[parts[1]] = parts[2]
                    uid, gid = parts[3].split(), parts[4].split()
                    if len(uid) == 3 and len(gid) == 3 and len(set(uid)) == 1 and len(set(gid)) == 1:
                        dump.ids[parts[1]] = (uid[0], gid[0])
        elif section == "net":
            if socket := _socket(table, line):
                dump.sockets.append(socket)
        elif section == "dpkg":
            parts = line.split("\t")
            # Status-Abbrev "ii " etc.: the second letter is the current state; "rc" leftovers are not installed.
            if len(parts) == 3 and parts[0][1:2] == "i":
                dump.dpkg[parts[1]] = parts[2]
        elif section == "python":
            if line.startswith("S\t"):
                sites.append(line[2:])
                dump.python.setdefault(sites[-1], {})
            elif line.startswith("M\t") and sites:
                parts = line.split("\t")
                if len(parts) == 3 and parts[1].strip():
                    dump.python[sites[-1]][_normalise(parts[1])] = parts[2].strip()
    _parse_fds("\n".join(proc_lines), dump)
    dump.sources.setdefault("dpkg", "dpkg-query")
    dump.python = {site: dict(sorted(dists.items())) for site, dists in dump.python.items() if dists}
    dump.sources["python"] = ", ".join(sorted(dump.python)) or NOT_AVAILABLE
    return dump


def _normalise(name: str) -> str:
    """PEP 503: `Foo_Bar` and `foo-bar` are one distribution."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def _socket(table: str, line: str) -> tuple[str, int, str, str] | None:
    """(protocol, port, address, inode) of one /proc/net row when it listens (TCP) or is bound unconnected (UDP)."""
    fields = line.split()
    if len(fields) < 10 or ":" not in fields[1] or not fields[0].endswith(":"):
        return None  # the header
    protocol = table.rstrip("6")
    state = fields[3]
    if (protocol == "tcp" and state != _TCP_LISTEN) or (protocol == "udp" and state != _UDP_UNCONNECTED):
        return None
    hex_address, _, hex_port = fields[1].partition(":")
    port = int(hex_port, 16)
    if port == 0 or fields[9] == "0":
        return None
    return protocol, port, _address(hex_address), fields[9]


def _address(hex_address: str) -> str:
    """/proc/net prints each 32-bit word of the address in the kernel's byte order."""
    raw = bytes.fromhex(hex_address)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(raw))


def _scope(address: str) -> str:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        return "any"
    return "loopback" if ip.is_loopback else "address"


def _in_main_tree(dump: _Dump, pid: str) -> bool:
    seen: set[str] = set()
    while pid not in seen and pid != "1":
        seen.add(pid)
        pid = dump.parent.get(pid, "0")
        if pid == "0":
            return False
    return pid == "1"


def _by_user(dump: _Dump, unreadable: Mapping[str, None]) -> dict[str, list[str]]:
    users: dict[str, list[str]] = {}
    for pid in unreadable:
        if pid in dump.ids and dump.ids[pid] != ("0", "0"):
            users.setdefault(":".join(dump.ids[pid]), []).append(pid)
    return users


def _probe(container: Any, command: Sequence[str], deadline: float, name: str) -> str:
    """The probe's first lines, or an `error: ...` text: a missing or hanging probe is an observation, not a crash."""
    budget = _budget(deadline)
    argv = ["timeout", "-s", "KILL", budget, *command]
    code, out, err = _exec(container, argv, "root", deadline, name, quiet=True)
    if code in (126, 127) and 'exec: "timeout"' in out + err:  # an image without coreutils' timeout
        code, out, err = _exec(container, list(command), "root", deadline, name, quiet=True)
    text = "\n".join(line.strip() for line in (out + "\n" + err).splitlines() if line.strip())
    lines = text.splitlines()
    if code in (124, 137) or code < 0:
        return f"error: {command[0]!r} did not finish within {budget} s"
    if code in (126, 127):
        return f"error: cannot run {command[0]!r} in the container (exit {code}): {' '.join(lines[:1])}"
    if code != 0:
        return f"error: {command[0]!r} exited with {code}: " + " | ".join(lines[:_PROBE_LINES])
    return "\n".join(lines[:_PROBE_LINES])


def _budget(deadline: float) -> str:
    # The in-container bound fires a little before the host-side guard, so a slow command gets a clean exit code.
    return str(max(1, int(deadline - time.monotonic() - 1)))


def _exec(
    container: Any, argv: Sequence[str], user: str, deadline: float, name: str, *, quiet: bool = False
) -> tuple[int, str, str]:
    """exec_run guarded by a thread: the SDK call has no timeout of its own. quiet: exec errors become exit 126."""
    import docker.errors

    result: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(container.exec_run(list(argv), user=user, demux=True))
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            failure.append(exc)

    worker = threading.Thread(target=run, name=f"inventory-{name}", daemon=True)
    worker.start()
    worker.join(max(0.5, deadline - time.monotonic()))
    if worker.is_alive():
        raise TargetError(
            f"{name}: `{' '.join(argv[:2])} ...` did not return within the inventory timeout",
            hint="the engine or the container is stuck; check `docker ps` and raise the inventory timeout if it is slow",
        )
    if failure:
        exc = failure[0]
        if isinstance(exc, docker.errors.NotFound):
            raise TargetError(
                f"{name}: the container is gone (removed before its inventory was taken)",
                hint="collect the inventory while the device runs, before the target stops it",
            ) from None
        if isinstance(exc, docker.errors.APIError) and exc.status_code == 409:
            raise _not_running(name, container)
        if quiet and isinstance(exc, docker.errors.APIError):
            return 126, "", str(exc.explanation or exc)
        raise TargetError(
            f"{name}: exec of {argv[0]!r} failed: {exc}",
            hint="check that the engine is reachable and the container is running",
        ) from None
    code, (out, err) = result[0].exit_code, result[0].output
    return (code if code is not None else -1), _decode(out), _decode(err)


def _decode(raw: bytes | None) -> str:
    return raw.decode("utf-8", "replace") if raw else ""


def _require_running(container: Any, name: str) -> None:
    import docker.errors

    try:
        container.reload()
    except docker.errors.NotFound:
        raise TargetError(
            f"{name}: the container is gone (removed before its inventory was taken)",
            hint="collect the inventory while the device runs, before the target stops it",
        ) from None
    except Exception as exc:  # noqa: BLE001 - requests/engine errors of several types
        raise TargetError(f"{name}: cannot inspect the container: {exc}", hint="is the Docker engine up?") from None
    if container.status != "running":
        raise _not_running(name, container)


def _not_running(name: str, container: Any) -> TargetError:
    state = container.attrs.get("State", {}) if isinstance(container.attrs, dict) else {}
    return TargetError(
        f"{name}: the container is not running (status {state.get('Status', container.status)!r}, "
        f"exit code {state.get('ExitCode', '?')}), so its inventory cannot be taken",
        hint="the device exited or was stopped first; see its log and take the inventory while it runs",
    )


def _exec_failure(name: str, what: str, code: int, output: str, deadline: float) -> TargetError:
    tail = " | ".join(output.strip().splitlines()[-3:])
    if code in (124, 137) or time.monotonic() >= deadline - 1:
        return TargetError(
            f"{name}: {what} did not finish in time (exit {code})",
            hint="the container is overloaded or /proc is huge; raise the inventory timeout",
        )
    if code in (126, 127):
        return TargetError(
            f"{name}: {what} could not run /bin/sh in the container (exit {code}): {tail}",
            hint="the inventory needs sh, cat and readlink in the image (a distroless image has none)",
        )
    return TargetError(
        f"{name}: {what} failed (exit {code}): {tail}",
        hint="run `docker exec <container> sh` by hand to see what the image lacks",
        detail=output,
    )


def _image(container: Any) -> tuple[str, tuple[str, ...], dict[str, str]]:
    import docker.errors

    try:
        image = container.image
        return str(image.id), tuple(sorted(image.tags)), dict(sorted((image.labels or {}).items()))
    except docker.errors.ImageNotFound:
        # The image was removed or retagged while the container ran: keep its id, nothing else is known.
        return str(container.attrs.get("Image", "")), (), {}


def _name(container: Any) -> str:
    try:
        return str(container.name)
    except Exception:  # noqa: BLE001 - the SDK object may be half-initialised
        return str(getattr(container, "id", "container"))[:12]
