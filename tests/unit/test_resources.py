"""Resource probes and incarnations: real child process groups through /proc, cgroup v1 on a fake tree, engine stats."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import RunDirError, TargetError
from harness.launch.base import LaunchSpec
from harness.launch.process import Process
from harness.launch.readiness import Immediately
from harness.launch.resources import (
    CLK_TCK,
    CgroupV1Probe,
    EngineStatsProbe,
    Incarnation,
    ProcProbe,
    ResourceSample,
    cgroup_v1_folder,
    change,
    container_incarnation,
    parse_stats,
)

MiB = 1 << 20
WAIT = 10.0  # seconds: the bound on every wait for a child's line or state

Spawn = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start `python -c SCRIPT` (or argv) in its own process group, as the launcher does; killed at teardown."""
    started: list[subprocess.Popen[str]] = []

    def run(script: str = "", argv: list[str] | None = None) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            argv or [sys.executable, "-c", textwrap.dedent(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        started.append(child)
        return child

    yield run
    for child in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=WAIT)


def said(child: subprocess.Popen[str], expected: str) -> str:
    """The child's next line, which must start with `expected` (bounded wait)."""
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], WAIT)
    assert ready, f"the child said nothing within {WAIT} s (waiting for {expected!r})"
    line = child.stdout.readline().strip()
    assert line.startswith(expected), line
    return line


def tell(child: subprocess.Popen[str], line: str = "go") -> None:
    assert child.stdin is not None
    child.stdin.write(line + "\n")
    child.stdin.flush()


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, f"not within {WAIT} s: {what}"
        time.sleep(0.02)


def sample(probe: ProcProbe) -> ResourceSample:
    found = probe.read()
    assert found is not None
    return found


def test_rss_counts_touched_anonymous_memory(spawn: Spawn) -> None:
    child = spawn("""
        import sys
        print("ready", flush=True); sys.stdin.readline()
        block = b"\\x01" * (64 << 20)  # filled: every page touched
        print("touched", flush=True); sys.stdin.readline()
    """)
    probe = ProcProbe(child.pid)
    said(child, "ready")
    before = sample(probe)
    tell(child)
    said(child, "touched")
    after = sample(probe)
    assert after.rss - before.rss >= 48 * MiB
    assert after.cache is None and after.pids == 1 and after.t_ns > before.t_ns


def test_rss_leaves_out_mapped_files(spawn: Spawn, tmp_path: Path) -> None:
    # A device that maps its storage (VmRSS grows) has not leaked: rss is anonymous memory, like total_rss.
    data = tmp_path / "storage.bin"
    data.write_bytes(b"\x02" * (64 * MiB))
    child = spawn(f"""
        import mmap, sys
        print("ready", flush=True); sys.stdin.readline()
        with open({str(data)!r}, "rb") as f:
            view = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            total = sum(view[i] for i in range(0, len(view), 4096))  # every page resident
        print("mapped", total, flush=True); sys.stdin.readline()
    """)
    probe = ProcProbe(child.pid)
    said(child, "ready")
    before = sample(probe)
    tell(child)
    said(child, "mapped")
    vm_rss = next(line for line in Path(f"/proc/{child.pid}/status").read_text().splitlines() if "VmRSS" in line)
    assert int(vm_rss.split()[1]) * 1024 >= 64 * MiB  # the kernel does count the mapped file as resident
    assert sample(probe).rss - before.rss < 8 * MiB


def test_cpu_counts_threads_that_exited(spawn: Spawn) -> None:
    child = spawn("""
        import sys, threading, time
        def burn():
            start = time.thread_time()
            while time.thread_time() - start < 0.3:
                pass
        print("ready", flush=True); sys.stdin.readline()
        threads = [threading.Thread(target=burn) for _ in range(2)]
        for t in threads: t.start()
        for t in threads: t.join()
        print("burnt", flush=True); sys.stdin.readline()
    """)
    probe = ProcProbe(child.pid)
    said(child, "ready")
    before = sample(probe)
    tell(child)
    said(child, "burnt")
    # join() returns as a thread's Python state is released, just before its task ends: wait for that.
    wait_until(lambda: len(os.listdir(f"/proc/{child.pid}/task")) == 1, "both threads gone")
    # Summing the live tasks' schedstat would read about 0 here.
    assert sample(probe).cpu_ns - before.cpu_ns >= 500_000_000


def test_grandchild_counted_in_pids_and_rss(spawn: Spawn) -> None:
    child = spawn("""
        import os, sys, time
        if os.fork() == 0:
            block = b"\\x01" * (32 << 20)
            print("grandchild", os.getpid(), flush=True)
            time.sleep(60)
            os._exit(0)
        sys.stdin.readline()
    """)
    grandchild = int(said(child, "grandchild").split()[1])
    probe = ProcProbe(child.pid)
    found = sample(probe)
    assert found.pids == 2
    leader_only = int(Path(f"/proc/{child.pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    assert found.rss >= 24 * MiB and found.rss - leader_only >= 24 * MiB
    assert grandchild in {pid for pid, _ in probe.incarnation().processes}


def test_cpu_of_a_reaped_child_stays_counted(spawn: Spawn) -> None:
    # A forking server's per-association child: its CPU moves into the parent's cutime when it is reaped.
    child = spawn("""
        import os, sys, time
        print("ready", flush=True); sys.stdin.readline()
        pid = os.fork()
        if pid == 0:
            start = time.process_time()
            while time.process_time() - start < 0.3:
                pass
            os._exit(0)
        os.waitpid(pid, 0)
        print("reaped", flush=True); sys.stdin.readline()
    """)
    probe = ProcProbe(child.pid)
    said(child, "ready")
    before = sample(probe)
    tell(child)
    said(child, "reaped")
    after = sample(probe)
    assert after.pids == 1 and after.cpu_ns - before.cpu_ns >= 250_000_000


def test_incarnation_of_a_killed_process(spawn: Spawn) -> None:
    child = spawn(argv=["sleep", "60"])
    probe = ProcProbe(child.pid, poll=child.poll)
    before = probe.incarnation()
    assert before.running and before.exit_code is None and before.signal is None
    assert before.started == Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    assert before.processes == {(child.pid, int(before.started))}
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=WAIT)
    after = probe.incarnation()
    assert (after.running, after.signal, after.exit_code) == (False, 9, None)
    assert after.started == before.started and after.processes == frozenset()
    assert change(before, after) == "exited"
    assert probe.read() is None


def test_incarnation_of_an_exit_code(spawn: Spawn) -> None:
    child = spawn("import sys; sys.stdin.readline(); sys.exit(70)")
    probe = ProcProbe(child.pid, poll=child.poll)
    before = probe.incarnation()
    tell(child)
    child.wait(timeout=WAIT)
    after = probe.incarnation()
    assert (after.running, after.exit_code, after.signal) == (False, 70, None)
    assert change(before, after) == "exited"


def group(pgid: int) -> dict[int, str]:
    """pid -> command name of the live members of process group `pgid`."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                fields = stat.rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    found[int(entry.name)] = stat.split("(", 1)[1].rsplit(")", 1)[0]
    return found


def test_a_supervisor_restarting_its_server_is_restarted(spawn: Spawn) -> None:
    supervisor = spawn(argv=["sh", "-c", "while :; do sleep 60; done"])
    probe = ProcProbe(supervisor.pid, poll=supervisor.poll)
    wait_until(lambda: "sleep" in group(supervisor.pid).values(), "the supervisor starts its server")
    server = next(pid for pid, name in group(supervisor.pid).items() if name == "sleep")
    time.sleep(0.3)  # the server has settled (settle = 0.2 s below)
    before = probe.incarnation()
    assert change(before, probe.incarnation(), settle=0.2) == "same"
    os.kill(server, signal.SIGKILL)
    wait_until(
        lambda: any(name == "sleep" and pid != server for pid, name in group(supervisor.pid).items()),
        "the supervisor restarts its server",
    )
    after = probe.incarnation()
    assert after.running and after.started == before.started
    assert change(before, after, settle=0.2) == "restarted"


def test_a_young_child_that_ends_is_no_restart(spawn: Spawn) -> None:
    # dcmqrscp forks a child per association: one that ends with its association is not a restart.
    child = spawn("""
        import os, sys
        sys.stdin.readline()
        pid = os.fork()
        if pid == 0:
            print("forked", flush=True)
            sys.stdin.readline()  # the association ends
            os._exit(0)
        os.waitpid(pid, 0)
        print("reaped", flush=True); sys.stdin.readline()
    """)
    probe = ProcProbe(child.pid, poll=child.poll)
    tell(child)
    said(child, "forked")
    before = probe.incarnation()
    assert len(before.processes) == 2
    tell(child)
    said(child, "reaped")
    after = probe.incarnation()
    assert change(before, after) == "same"
    # Without knowing it for a fork of its server, the settle rule is what tells them apart.
    assert change(dataclasses.replace(before, workers=frozenset()), after, settle=0) == "restarted"


def test_a_fork_of_its_server_that_ends_late_is_no_restart(spawn: Spawn) -> None:
    # dcmqrscp's child for a slow input outlives the settle time; it is still a worker, not a server.
    child = spawn("""
        import os, sys
        pid = os.fork()
        if pid == 0:
            print("forked", flush=True)
            sys.stdin.readline()  # the association ends
            os._exit(0)
        os.waitpid(pid, 0)
        print("reaped", flush=True); sys.stdin.readline()
    """)
    probe = ProcProbe(child.pid, poll=child.poll)
    said(child, "forked")
    time.sleep(0.3)  # settled (settle = 0.2 s below)
    before = probe.incarnation()
    worker = next(p for p in before.processes if p[0] != child.pid)
    assert before.workers == {worker}
    tell(child)
    said(child, "reaped")
    after = probe.incarnation()
    assert change(before, after, settle=0.2) == "same"
    assert change(dataclasses.replace(before, workers=frozenset()), after, settle=0.2) == "restarted"


def test_process_resources_follow_the_launched_process(tmp_path: Path) -> None:
    spec = LaunchSpec(
        role="device", label="test device", argv=("sleep", "60"), log=tmp_path / "device.log", ready=Immediately()
    )
    process = Process(spec, {})
    try:
        probe = process.resources()
        assert probe.source == "proc" and process.resources() is probe
        assert sample(probe).pids == 1
        before = probe.incarnation()
        assert before.running
    finally:
        process.stop()
    after = probe.incarnation()
    assert (after.running, after.signal) == (False, signal.SIGTERM)
    assert change(before, after) == "exited"


def test_records_round_trip_through_json() -> None:
    found = ResourceSample(t_ns=1, rss=2, cache=None, cpu_ns=3, pids=4)
    assert ResourceSample.from_json(json.loads(json.dumps(found.to_json()))) == found
    who = Incarnation(
        True, None, None, False, 2, "2026-11-30T11:26:39.07Z", frozenset({(7, 70), (8, 80)}), 99, frozenset({(8, 80)})
    )
    assert Incarnation.from_json(json.loads(json.dumps(who.to_json()))) == who
    with pytest.raises(RunDirError, match=r"perf/resources.jsonl line 3: key 'rss' is '2'"):
        ResourceSample.from_json({**found.to_json(), "rss": "2"}, "perf/resources.jsonl line 3")
    with pytest.raises(RunDirError, match="key 'running' is 1, expected bool"):
        Incarnation.from_json({**who.to_json(), "running": 1})
    with pytest.raises(RunDirError, match="key 'processes' must be a list of"):
        Incarnation.from_json({**who.to_json(), "processes": [[7]]})
    with pytest.raises(RunDirError, match="key 'workers' must be a list of"):
        Incarnation.from_json({**who.to_json(), "workers": [[8, "80"]]})


# --- containers, without an engine: a fake cgroup v1 tree and recorded engine answers ---

CONTAINER = "b26e14d44cdf75feaa6a9c39260117583423a2d7752aa66e4d0ef818f568c5d0"
# Recorded on this machine (kernel 6.18, cgroup v1) from a container holding 64 MiB of transparent huge
# pages: total_rss already includes total_rss_huge, so rss + rss_huge would count them twice.
MEMORY_STAT = """\
cache 0
rss 69902336
rss_huge 67108864
total_cache 4096
total_rss 69902336
total_rss_huge 67108864
total_mapped_file 0
"""
# docker inspect of a running container (abridged), engine 20.10.24.
INSPECT: dict[str, Any] = {
    "State": {
        "Status": "running",
        "Running": True,
        "Restarting": False,
        "OOMKilled": False,
        "Pid": 23502,
        "ExitCode": 0,
        "StartedAt": "2026-11-30T11:26:39.074566698Z",
    },
    "RestartCount": 0,
    "HostConfig": {"CgroupParent": ""},
}


def fake_cgroup(root: Path, folder: str, pids: list[int]) -> None:
    memory, cpuacct = root / "memory" / folder, root / "cpuacct" / folder
    memory.mkdir(parents=True)
    cpuacct.mkdir(parents=True)
    (memory / "memory.stat").write_text(MEMORY_STAT)
    (memory / "cgroup.procs").write_text("".join(f"{pid}\n" for pid in pids))
    (cpuacct / "cpuacct.usage").write_text("96427895\n")


def test_cgroup_v1_probe_on_a_fake_tree(tmp_path: Path) -> None:
    fake_cgroup(tmp_path, f"docker/{CONTAINER}", [os.getpid(), os.getppid()])
    assert cgroup_v1_folder(CONTAINER, INSPECT, tmp_path) == f"docker/{CONTAINER}"
    probe = CgroupV1Probe(CONTAINER, tmp_path, inspect=lambda: INSPECT)
    found = probe.read()
    assert found is not None and probe.source == "cgroup-v1"
    assert (found.rss, found.cache, found.cpu_ns, found.pids) == (69902336, 4096, 96427895, 2)
    who = probe.incarnation()
    mine = int(Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19])
    assert (os.getpid(), mine) in who.processes and len(who.processes) == 2
    assert who.running and who.started == INSPECT["State"]["StartedAt"] and who.restart_count == 0
    (tmp_path / "memory" / "docker" / CONTAINER / "cgroup.procs").unlink()  # the engine removed the folder
    assert probe.read() is None


def test_cgroup_v1_folder_layouts(tmp_path: Path) -> None:
    assert cgroup_v1_folder(CONTAINER, INSPECT, tmp_path) is None  # remote engine, v2, or a job in a container
    fake_cgroup(tmp_path, f"system.slice/docker-{CONTAINER}.scope", [os.getpid()])
    assert cgroup_v1_folder(CONTAINER, INSPECT, tmp_path) == f"system.slice/docker-{CONTAINER}.scope"
    fake_cgroup(tmp_path, f"ci/jobs/{CONTAINER}", [os.getpid()])
    parent = {**INSPECT, "HostConfig": {"CgroupParent": "/ci/jobs"}}
    assert cgroup_v1_folder(CONTAINER, parent, tmp_path) == f"ci/jobs/{CONTAINER}"


def test_cgroup_v1_probe_names_a_broken_file(tmp_path: Path) -> None:
    fake_cgroup(tmp_path, f"docker/{CONTAINER}", [os.getpid()])
    (tmp_path / "memory" / "docker" / CONTAINER / "memory.stat").write_text("cache 0\n")
    with pytest.raises(TargetError, match=f"docker/{CONTAINER}: cannot read .*total_rss"):
        CgroupV1Probe(CONTAINER, tmp_path).read()


# Recorded from this engine (20.10.24, cgroup v1): `container.stats(stream=False, one_shot=True)`, abridged.
STATS_V1 = json.loads("""{
 "read": "2026-11-30T11:28:04.924490387Z", "pids_stats": {"current": 2},
 "cpu_stats": {"cpu_usage": {"total_usage": 30239529, "percpu_usage": [14719199, 15520330],
   "usage_in_kernelmode": 10000000, "usage_in_usermode": 10000000},
  "system_cpu_usage": 63964070000000, "online_cpus": 2},
 "memory_stats": {"usage": 974848, "max_usage": 4079616,
  "stats": {"active_anon": 8192, "cache": 61440, "mapped_file": 61440, "rss": 159744, "rss_huge": 0,
   "total_cache": 61440, "total_mapped_file": 61440, "total_rss": 159744, "total_rss_huge": 0},
  "limit": 25276514304}
}""")
# The cgroup v2 shape, from the Engine API reference (ContainerStatsResponse): no v2 engine on these machines.
STATS_V2 = {
    "pids_stats": {"current": 3},
    "cpu_stats": {"cpu_usage": {"total_usage": 2_000_000_000, "usage_in_kernelmode": 1, "usage_in_usermode": 1}},
    "memory_stats": {"usage": 9_000_000, "stats": {"anon": 5_000_000, "file": 3_000_000}, "limit": 1 << 30},
}
# A stopped container: the engine answers with empty memory stats.
STATS_STOPPED: dict[str, Any] = {"pids_stats": {}, "cpu_stats": {"cpu_usage": {"total_usage": 0}}, "memory_stats": {}}


class RecordedContainer:
    """Only what EngineStatsProbe calls: the engine's answers as recorded, no engine."""

    def __init__(self, stats: dict[str, Any], attrs: dict[str, Any]) -> None:
        self.answer, self.attrs = stats, attrs

    def stats(self, stream: bool, one_shot: bool) -> dict[str, Any]:
        assert (stream, one_shot) == (False, True)  # one answer, without the second's wait for a CPU delta
        return self.answer

    def reload(self) -> None:
        pass


def test_engine_stats_probe_parses_v1_and_v2() -> None:
    probe = EngineStatsProbe(RecordedContainer(STATS_V1, INSPECT))
    found = probe.read()
    assert found is not None and probe.source == "engine"
    assert (found.rss, found.cache, found.cpu_ns, found.pids) == (159744, 61440, 30239529, 2)
    v2 = parse_stats(STATS_V2, 5)
    assert v2 == ResourceSample(t_ns=5, rss=5_000_000, cache=3_000_000, cpu_ns=2_000_000_000, pids=3)
    assert parse_stats(STATS_STOPPED, 5) is None
    who = probe.incarnation()
    assert who.running and who.processes == frozenset() and who.started == INSPECT["State"]["StartedAt"]
    with pytest.raises(TargetError, match=r"no total_rss or cpu_usage\.total_usage"):
        parse_stats({"memory_stats": {"stats": {"total_rss": 1}}}, 5)


def test_container_incarnation_and_change() -> None:
    running = container_incarnation(INSPECT, frozenset(), 0)
    killed = {**INSPECT, "State": {**INSPECT["State"], "Running": False, "Status": "exited", "ExitCode": 137}}
    gone = container_incarnation(killed, frozenset(), 0)
    assert (gone.running, gone.exit_code, gone.signal) == (False, 137, 9)
    assert change(running, gone) == "exited"
    oom = container_incarnation({**killed, "State": {**killed["State"], "OOMKilled": True}}, frozenset(), 0)
    assert oom.oom_killed
    # The policy is between two runs of the process (as engine 20.10 shows it): not gone, a restart, and why.
    state = {**INSPECT["State"], "Status": "restarting", "Restarting": True, "ExitCode": 137}
    backoff = container_incarnation({**INSPECT, "RestartCount": 1, "State": state}, frozenset(), 0)
    assert (backoff.running, backoff.exit_code, backoff.signal) == (True, 137, 9)
    assert change(running, backoff) == "restarted"
    again = {**INSPECT, "RestartCount": 1, "State": {**INSPECT["State"], "StartedAt": "2026-11-30T11:27:00Z"}}
    assert change(running, container_incarnation(again, frozenset(), 0)) == "restarted"
    assert change(running, container_incarnation(INSPECT, frozenset(), 0)) == "same"
    # The same container, but its server (settled: 5 s old) replaced by a supervisor inside.
    ticks = 1000 * CLK_TCK
    before = container_incarnation(INSPECT, frozenset({(1, ticks - 900), (40, ticks - 500)}), ticks)
    after = container_incarnation(INSPECT, frozenset({(1, ticks - 900), (41, ticks + 10)}), ticks + 20)
    assert change(before, after) == "restarted"
    assert container_incarnation({}, frozenset(), 0).running is False  # removed underneath us
