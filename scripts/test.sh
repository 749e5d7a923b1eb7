#!/usr/bin/env bash
# The whole test suite on a fresh clone: a venv with tox, then lint, types, unit and integration tests,
# and the container tests (which build the images they need; without a Docker engine they skip, or fail
# when CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q 'tox>=4'
.venv/bin/tox run -e lint,type,py3,faults,docker
