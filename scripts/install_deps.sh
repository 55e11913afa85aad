#!/usr/bin/env bash
# Install the locked Python dependencies for PYTHON (a venv's, or the image's system Python); shared by
# scripts/setup.sh and the Dockerfile so both get the same versions.
#  1. LOCKFILE (requirements.lock or requirements-dev.lock), hash-checked: every dependency but torch.
#  2. torch, pinned in requirements.txt beside LOCKFILE: the CPU build from PyTorch's CPU index when it
#     answers within a few seconds, else the plain pin (PyPI's default build: on Linux x86_64 that pulls
#     several GB of CUDA packages, unless pip is configured with a local CPU wheel).
#  3. pip check: torch's own requirements are met by the locked versions.
# Usage: scripts/install_deps.sh PYTHON LOCKFILE    (TORCH_CPU_INDEX overrides the CPU index URL)
set -euo pipefail
py=$1 lock=$2
fail() { echo "install_deps: FAILED: $*" >&2; exit 1; }
req="$(dirname "$lock")/requirements.txt"
torch_pin=$(grep -E '^torch==' "$req") || fail "no torch== pin in $req"
cpu_index=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

echo "install_deps: $lock (hash-checked)"
"$py" -m pip install -q --require-hashes -r "$lock" || fail "pip install --require-hashes -r $lock"

# A probe with a short timeout first: pip's own retries against an unreachable index take minutes.
if "$py" - "$cpu_index/torch/" <<'PY' 2>/dev/null
import sys
import urllib.request

urllib.request.urlopen(sys.argv[1], timeout=10).close()
PY
then
  echo "install_deps: $torch_pin, the CPU build from $cpu_index"
  if ! "$py" -m pip install -q --timeout 60 --retries 2 --index-url "$cpu_index" "$torch_pin"; then
    echo "install_deps: the CPU index failed; falling back to the plain pin $torch_pin" >&2
    "$py" -m pip install -q "$torch_pin" || fail "pip install $torch_pin"
  fi
else
  echo "install_deps: $cpu_index unreachable; installing the plain pin $torch_pin"
  "$py" -m pip install -q "$torch_pin" || fail "pip install $torch_pin"
fi
"$py" -m pip check || fail "pip check (the installed packages' requirements are not all met)"
"$py" -c "import torch; print('install_deps: torch', torch.__version__)" || fail "import torch"
