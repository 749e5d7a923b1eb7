"""harness.launch.engine.owner_gone: which labelled owners the sweep may count as gone, and which never."""

from __future__ import annotations

import os
import subprocess
import sys

from harness.launch.engine import owner_gone
from harness.launch.labels import (
    LABEL_OWNER,
    LABEL_OWNER_SPACE,
    LABEL_OWNER_START,
    owner_labels,
    process_space,
    process_start,
)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(timeout=30)
    return process.pid


def test_this_process_is_alive_and_labels_itself() -> None:
    mine = owner_labels()
    assert mine[LABEL_OWNER] == str(os.getpid())
    assert mine[LABEL_OWNER_SPACE] == process_space() and "pid:[" in process_space()
    assert mine[LABEL_OWNER_START].isdigit()
    assert not owner_gone(mine)


def test_a_dead_owner_is_gone_in_this_space_and_unknown_in_another() -> None:
    dead = str(_dead_pid())
    assert owner_gone({LABEL_OWNER: dead})  # labels of older runs: the pid alone
    assert owner_gone({LABEL_OWNER: dead, LABEL_OWNER_SPACE: process_space()})
    # A CI job in a container on a shared engine: its pids are not ours to look up.
    assert not owner_gone({LABEL_OWNER: dead, LABEL_OWNER_SPACE: "another-boot/pid:[1]"})


def test_a_pid_handed_out_again_is_not_the_owner() -> None:
    pid = os.getpid()
    assert process_start(pid) != ""
    reused = {LABEL_OWNER: str(pid), LABEL_OWNER_SPACE: process_space(), LABEL_OWNER_START: "1"}
    assert owner_gone(reused)


def test_labels_that_name_no_pid_are_never_swept() -> None:
    assert not owner_gone({})
    assert not owner_gone({LABEL_OWNER: "not-a-pid"})
