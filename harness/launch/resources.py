"""A started device's resources and identity: memory, CPU and processes from /proc, cgroup v1 or the engine."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from harness.errors import TargetError
from harness.perf.records import Incarnation, ResourceSample

__all__ = [
    "CLK_TCK",
    "CgroupV1Probe",
    "Change",
    "EngineStatsProbe",
    "Incarnation",
    "ProcProbe",
    "ResourceProbe",
    "ResourceSample",
    "cgroup_v1_folder",
    "change",
    "container_attrs",
    "container_incarnation",
    "engine_restarted",
    "parse_stats",
    "unsettled",
]

CLK_TCK = os.sysconf("SC_CLK_TCK")  # the unit of /proc/PID/stat times (100 on Linux)
_PAGE = os.sysconf("SC_PAGE_SIZE")
SETTLE = 1.0  # seconds: a process younger than this when an incarnation is read may be a per-association child

Change = Literal["exited", "restarted", "same"]
# ResourceSample and Incarnation live in harness.perf.records (re-exported here): compare and report read them
# from run directories and may not import harness.launch.


def engine_restarted(before: Incarnation, after: Incarnation) -> bool:
    """The engine started the container again in between (its restart policy): RestartCount grew or StartedAt moved."""
    return after.restart_count > before.restart_count or after.started != before.started


def change(before: Incarnation, after: Incarnation, settle: float = SETTLE) -> Change:
    """What happened to the device between two incarnations (design 8.6), worst first.

    - `exited`: it no longer runs (`after` says with which code or signal);
    - `restarted`: the engine restarted the container (RestartCount grew, StartedAt changed), or, while the
      container or the group leader lives on, a process that had already run `settle` seconds when `before`
      was read is gone (a supervisor inside replaced it, or has yet to). Younger processes are left out, and
      so are a forking server's workers (`before.workers`): dcmqrscp has a child per association, which ends
      with its association, and one that served a slow input had run longer than `settle` (checked: it read
      `restarted` in one run of three in a container);
    - `same`: neither.
    """
    if not after.running:
        return "exited"
    if engine_restarted(before, after):
        return "restarted"
    settled = {p for p in before.processes - before.workers if before.taken - p[1] >= settle * CLK_TCK}
    return "restarted" if settled - after.processes else "same"


def unsettled(inc: Incarnation, settle: float = SETTLE) -> float:
    """Seconds until every process of `inc` but its workers has run `settle` seconds, so `change` counts it.

    A device started just now (the first attack window of a quick run, or one revived) has only young
    processes: a supervisor replacing one of them would read `same`, not `restarted`.
    """
    starts = [start for _, start in inc.processes - inc.workers]
    if not inc.taken or not starts:
        return 0.0
    return max(0.0, settle - (inc.taken - max(starts)) / CLK_TCK)


class ResourceProbe(Protocol):
    """Reads one started device's resources and identity; cheap enough for 10 Hz except where `source` is engine."""

    source: str  # "proc" | "cgroup-v1" | "engine": said in the report next to the numbers

    def read(self) -> ResourceSample | None:
        """The resources now; None once the device is gone (exited, or its container removed)."""

    def incarnation(self) -> Incarnation:
        """Who the device is now."""


# --- a local process group (/proc) ---


def _now_ticks() -> int:
    """Clock ticks after boot: /proc/PID/stat start times count in this clock (CLOCK_BOOTTIME)."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * CLK_TCK)


@dataclass(frozen=True)
class _Task:
    """One process as /proc/PID/stat shows it (proc(5) field numbers)."""

    pid: int
    state: str  # field 3: Z is a zombie (exited, not yet reaped)
    pgrp: int  # field 5
    ppid: int  # field 4
    comm: bytes  # field 2: the command name (a fork keeps its parent's until it execs)
    cpu_ticks: int  # fields 14-17: utime + stime (all its threads, exited ones too) + cutime + cstime
    start: int  # field 22: clock ticks after boot


def _read(path: str) -> bytes:
    # os.open/os.read on a str: a scan reads every process's stat, and pathlib's overhead doubled its cost.
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def _stat(proc: Path, pid: int) -> _Task | None:
    try:
        raw = _read(f"{proc}/{pid}/stat")
    except OSError:  # gone meanwhile
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ")": split after the last one.
    head, _, tail = raw.rpartition(b")")
    fields = tail.split()
    comm = head.partition(b"(")[2]
    try:
        return _Task(
            pid,
            fields[0].decode(),
            int(fields[2]),
            int(fields[1]),
            comm,
            sum(int(x) for x in fields[11:15]),
            int(fields[19]),
        )
    except (IndexError, ValueError):
        return None


def _workers(tasks: list[_Task]) -> frozenset[tuple[int, int]]:
    """(pid, start) of the tasks forked by a living task of the same name among them: a forking server's workers."""
    names = {task.pid: task.comm for task in tasks}
    return frozenset((t.pid, t.start) for t in tasks if t.ppid in names and names[t.ppid] == t.comm)


def _anon_rss(proc: Path, pid: int) -> int:
    """Anonymous resident bytes: statm resident - shared (= RssAnon: file-backed and shmem pages excluded)."""
    try:
        fields = _read(f"{proc}/{pid}/statm").split()
        return max(0, int(fields[1]) - int(fields[2])) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


class ProcProbe:
    """A local device's process group, from /proc: what `start_new_session=True` made of its pid.

    CPU is utime + stime of /proc/PID/stat (it counts threads that exited, which schedstat does not; a
    thread per association is pynetdicom's way) plus cutime + cstime (children the group reaped: a forking
    server's per-association children). Resolution: one clock tick (10 ms). rss is anonymous memory, the
    same quantity as a container's total_rss, so a device that maps or caches its files does not look as
    if it leaked.
    """

    source = "proc"

    def __init__(self, pgid: int, poll: Callable[[], int | None] | None = None, proc: Path = Path("/proc")) -> None:
        self.pgid = pgid
        self._poll = poll  # Popen.poll of the leader when it is our child: its exit status
        self._proc = proc
        leader = _stat(proc, pgid)
        self._started = str(leader.start) if leader is not None else ""

    def _group(self) -> list[_Task]:
        found: list[_Task] = []
        for name in os.listdir(self._proc):
            if name.isdigit():
                task = _stat(self._proc, int(name))
                if task is not None and task.pgrp == self.pgid:
                    found.append(task)
        return found

    def read(self) -> ResourceSample | None:
        t_ns = time.time_ns()
        group = self._group()
        live = [task for task in group if task.state != "Z"]
        if not live:
            return None
        # Zombies hold their final CPU time until reaped (then it moves into the parent's cutime): count them.
        cpu = sum(task.cpu_ticks for task in group) * 1_000_000_000 // CLK_TCK
        rss = sum(_anon_rss(self._proc, task.pid) for task in live)
        return ResourceSample(t_ns=t_ns, rss=rss, cache=None, cpu_ns=cpu, pids=len(live))

    def incarnation(self) -> Incarnation:
        code = self._poll() if self._poll is not None else None
        taken = _now_ticks()
        group = [task for task in self._group() if task.state != "Z"]
        leader_alive = any(task.pid == self.pgid for task in group)
        running = code is None and leader_alive
        return Incarnation(
            running=running,
            exit_code=code if code is not None and code >= 0 else None,
            signal=-code if code is not None and code < 0 else None,
            oom_killed=False,
            restart_count=0,
            started=self._started,
            processes=frozenset((task.pid, task.start) for task in group),
            taken=taken,
            workers=_workers(group),
        )


# --- a container: cgroup v1 files of the local engine, or the engine's stats API ---


def cgroup_v1_folder(container_id: str, attrs: Mapping[str, Any], root: Path = Path("/sys/fs/cgroup")) -> str | None:
    """The container's folder under `root`/memory, when this machine holds it (a local engine on cgroup v1).

    Docker's cgroupfs driver puts it in docker/ID (or CgroupParent/ID), the systemd driver in
    system.slice/docker-ID.scope; a remote engine, a cgroup v2 host, or a CI job in a container sees none.
    """
    parent = str((attrs.get("HostConfig") or {}).get("CgroupParent") or "").strip("/")
    candidates = [f"{parent}/{container_id}"] if parent else []
    candidates += [f"docker/{container_id}", f"system.slice/docker-{container_id}.scope"]
    for folder in candidates:
        if (root / "memory" / folder / "memory.stat").is_file():
            return folder
    return None


def container_incarnation(attrs: Mapping[str, Any], processes: frozenset[tuple[int, int]], taken: int) -> Incarnation:
    """An incarnation from a container's inspect attributes (`container.attrs` after `reload()`)."""
    state = attrs.get("State") or {}
    # Restarting (the engine says Running too): its policy is bringing it back, so it is not gone; ExitCode is
    # then the exit that made it restart, kept until the process runs again.
    restarting = bool(state.get("Restarting"))
    running = bool(state.get("Running")) or restarting
    code = state.get("ExitCode")
    code = int(code) if isinstance(code, int) and (restarting or not running) else None
    # docker-init (tini), and shells, exit with 128 + the signal that ended their child.
    signal = code - 128 if code is not None and 128 < code < 128 + 65 else None
    return Incarnation(
        running=running,
        exit_code=code,
        signal=signal,
        oom_killed=bool(state.get("OOMKilled")),
        restart_count=int(attrs.get("RestartCount") or 0),  # top level of inspect, not in State
        started=str(state.get("StartedAt") or ""),
        processes=processes,
        taken=taken,
    )


def container_attrs(container: Any) -> Mapping[str, Any]:
    """The container's inspect attributes now; {} once it is gone (removed, or the engine lost it)."""
    try:
        container.reload()
    except Exception:  # noqa: BLE001 - NotFound and connection errors alike: nothing to inspect
        return {}
    return dict(container.attrs)


def _tasks(proc: Path, pids: list[int]) -> list[_Task]:
    return [task for task in (_stat(proc, pid) for pid in pids) if task is not None]


class CgroupV1Probe:
    """A container of the local engine, read from its cgroup v1 files (no API round trip: fine at 10 Hz).

    rss = total_rss of memory.stat (anonymous memory, transparent huge pages included: total_rss_huge is
    a part of it, not an addition); cache = total_cache (recorded, not judged: a device writing its storage
    fills it); cpu = cpuacct.usage (ns, every process of the container, exited ones too).
    """

    source = "cgroup-v1"

    def __init__(
        self,
        container_id: str,
        root: Path = Path("/sys/fs/cgroup"),
        *,
        folder: str | None = None,
        inspect: Callable[[], Mapping[str, Any]] | None = None,
        proc: Path = Path("/proc"),
    ) -> None:
        self.container_id = container_id
        self.root = root
        self.folder = folder or f"docker/{container_id}"
        self._inspect = inspect  # the container's inspect attributes, for its State (incarnation)
        self._proc = proc

    def _pids(self) -> list[int] | None:
        try:
            text = (self.root / "memory" / self.folder / "cgroup.procs").read_text()
        except OSError:
            return None
        return [int(line) for line in text.split() if line.isdigit() and line != "0"]

    def read(self) -> ResourceSample | None:
        t_ns = time.time_ns()
        memory, cpuacct = self.root / "memory" / self.folder, self.root / "cpuacct" / self.folder
        pids = self._pids()
        if not pids:  # the engine removes the folder when the container stops
            return None
        try:
            stat = dict(line.split(maxsplit=1) for line in (memory / "memory.stat").read_text().splitlines() if line)
            cpu = int((cpuacct / "cpuacct.usage").read_text())
            return ResourceSample(
                t_ns=t_ns, rss=int(stat["total_rss"]), cache=int(stat["total_cache"]), cpu_ns=cpu, pids=len(pids)
            )
        except FileNotFoundError:
            return None  # removed between the reads
        except (KeyError, ValueError) as exc:
            raise TargetError(
                f"{memory}: cannot read the container's memory or CPU ({type(exc).__name__}: {exc})",
                hint="a cgroup v1 memory.stat has total_rss and total_cache, cpuacct.usage one number",
            ) from None

    def incarnation(self) -> Incarnation:
        taken = _now_ticks()
        tasks = _tasks(self._proc, self._pids() or [])
        processes = frozenset((task.pid, task.start) for task in tasks)
        if self._inspect is None:
            return Incarnation(bool(processes), None, None, False, 0, "", processes, taken, _workers(tasks))
        return replace(container_incarnation(self._inspect(), processes, taken), workers=_workers(tasks))


class EngineStatsProbe:
    """A container read through the engine's API (a remote engine, cgroup v2): one round trip per read.

    The sampler reads it at block boundaries only. Memory: memory_stats.stats.total_rss (cgroup v1) or
    anon (v2); cache: total_cache or file; cpu: cpu_stats.cpu_usage.total_usage (ns on both).
    Its incarnation has no processes (their host pids and start times are not in the API), so a restart
    by a supervisor inside the container shows only as the container's own exit or restart there.
    """

    source = "engine"

    def __init__(self, container: Any) -> None:
        self.container = container

    def read(self) -> ResourceSample | None:
        t_ns = time.time_ns()
        try:
            stats = self.container.stats(stream=False, one_shot=True)
        except Exception:  # noqa: BLE001 - NotFound and connection errors alike: it is gone for us
            return None
        return parse_stats(stats, t_ns)

    def incarnation(self) -> Incarnation:
        return container_incarnation(container_attrs(self.container), frozenset(), 0)


def parse_stats(stats: Mapping[str, Any], t_ns: int) -> ResourceSample | None:
    """A sample from one engine stats answer (GET /containers/ID/stats?stream=false); None for a stopped one."""
    memory = stats.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    if not detail:  # a stopped container: the engine answers with empty memory stats
        return None
    v1 = "total_rss" in detail
    rss = detail.get("total_rss") if v1 else detail.get("anon")
    cache = detail.get("total_cache") if v1 else detail.get("file")
    cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
    if not isinstance(rss, int) or not isinstance(cpu, int):
        raise TargetError(
            f"container stats: no {'total_rss' if v1 else 'anon'} or cpu_usage.total_usage in {sorted(stats)}",
            hint="an engine too old or too new for this parser: use a local engine on cgroup v1",
        )
    pids = (stats.get("pids_stats") or {}).get("current")
    return ResourceSample(
        t_ns=t_ns,
        rss=rss,
        cache=cache if isinstance(cache, int) else None,
        cpu_ns=cpu,
        pids=pids if isinstance(pids, int) else 0,
    )
