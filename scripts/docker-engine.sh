#!/usr/bin/env bash
# Make a Docker engine answer on this machine: install docker.io if dockerd is missing, start it, wait for it.
# Idempotent: does nothing when `docker info` already answers. Needs root for the install and the daemon.
#   PATCHGATE_DOCKERD_LOG   where dockerd writes (default /tmp/dockerd.log)
#   PATCHGATE_DOCKERD_WAIT  seconds to wait for `docker info` (default 60)
set -euo pipefail

log="${PATCHGATE_DOCKERD_LOG:-/tmp/dockerd.log}"
wait_s="${PATCHGATE_DOCKERD_WAIT:-60}"

say() { echo "docker-engine: $*" >&2; }

engine_answers() { command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; }

if engine_answers; then
    say "engine already answers ($(docker info --format '{{.Driver}}, cgroup v{{.CgroupVersion}}'))"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    say "no engine answers and starting one needs root; run as root or start dockerd yourself"
    exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
    say "dockerd missing: installing docker.io"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi

# debootstrap builds the local base image (no registry here); install it alongside the engine.
if ! command -v debootstrap >/dev/null 2>&1; then
    say "debootstrap missing: installing it"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

# Start the daemon only when none is running: a second dockerd would fight over /var/run/docker.pid.
if ! pgrep -x dockerd >/dev/null 2>&1; then
    say "starting dockerd (log: $log)"
    # setsid: the daemon outlives this script and the CI step's process group.
    setsid dockerd >"$log" 2>&1 </dev/null &
fi

for _ in $(seq 1 "$wait_s"); do
    if engine_answers; then
        say "engine answers ($(docker info --format '{{.Driver}}, cgroup v{{.CgroupVersion}}'))"
        exit 0
    fi
    sleep 1
done

say "no answer from \`docker info\` after ${wait_s} s; last lines of $log:"
tail -n 30 "$log" >&2 2>/dev/null || say "(no log at $log)"
exit 1
