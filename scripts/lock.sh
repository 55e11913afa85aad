#!/usr/bin/env bash
# Regenerate the locks from the hand-edited pins: requirements.txt -> requirements.lock (runtime: the
# Dockerfile and scripts/setup.sh install it) and requirements-dev.txt -> requirements-dev.lock (runtime
# pins unchanged, plus test tools: scripts/setup.sh --dev). Every transitive dependency is pinned with
# the hashes of all its files on PyPI. Resolved for Linux and Python 3.11, the platform of the image and
# of CI. torch stays out (installed apart, the CPU build), but its own dependencies are locked.
# Pins already in a lock are kept unless a .txt file changes them; pass --upgrade to re-resolve all.
# Usage: scripts/lock.sh [--upgrade]
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3.11}
command -v "$py" >/dev/null 2>&1 || { echo "lock: FAILED: $py not found (the locks are for Python 3.11)" >&2; exit 1; }
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$py" -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install -q pip-tools==7.6.2
compile() {  # output input...
  local out=$1; shift
  CUSTOM_COMPILE_COMMAND="scripts/lock.sh    # torch is not in here: scripts/setup.sh and the Dockerfile install it apart" "$tools/venv/bin/pip-compile" --quiet --generate-hashes --strip-extras --unsafe-package torch \
    --no-emit-index-url --no-emit-find-links \
    "$@" --output-file "$out" || { echo "lock: FAILED: pip-compile of $out" >&2; exit 1; }
}
compile requirements.lock "${@}" requirements.txt
# The runtime lock is an input too, so the dev lock resolves exactly the same runtime versions.
compile requirements-dev.lock "${@}" requirements.lock requirements-dev.txt
echo "lock: wrote requirements.lock and requirements-dev.lock"
