#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine with Python 3.11: system packages
# (libfluidsynth, the FluidR3 GM SoundFont, and for tests Chromium) via apt-get when
# missing, then a virtual environment in .venv with the locked Python packages:
# requirements.lock (requirements-dev.lock with --dev), then torch's CPU build, by
# scripts/install_deps.sh, the same step as the Dockerfile's. Regenerate the locks with scripts/lock.sh.
# Usage: scripts/setup.sh [--dev]   (--dev adds test tools and Chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0; [ "${1:-}" = "--dev" ] && dev=1
fail() { echo "setup: FAILED: $*" >&2; exit 1; }

py=${PYTHON:-python3.11}
command -v "$py" >/dev/null 2>&1 || py=python3
command -v "$py" >/dev/null 2>&1 || fail "no python3.11 or python3 on PATH"
"$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || echo "setup: warning: $py is not Python 3.11; the locks were resolved for 3.11" >&2

have_lib() {  # a shared library the dynamic linker knows (no grep -q: with pipefail it fails on SIGPIPE)
  ldconfig -p 2>/dev/null | grep "$1" >/dev/null
}
need=()
have_lib 'libfluidsynth\.so' || need+=(libfluidsynth3)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need+=(fluid-soundfont-gm)
have_lib 'libsndfile\.so' || need+=(libsndfile1)
# Debian's Python has no venv/ensurepip without python3-venv
[ -x .venv/bin/python ] || "$py" -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ "$dev" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${need[*]}"
  sudo_cmd=""; [ "$(id -u)" != 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq || fail "apt-get update"
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || fail "apt-get install ${need[*]}"
fi

lock=requirements.lock; [ "$dev" = 1 ] && lock=requirements-dev.lock
key=$(cat requirements.txt requirements.lock requirements-dev.lock scripts/install_deps.sh | sha1sum | cut -c1-12)
stamp=.venv/.installed-$key-$dev
# the dev set contains the runtime set, so a dev install also satisfies a plain one
if [ ! -f "$stamp" ] && ! { [ "$dev" = 0 ] && [ -f ".venv/.installed-$key-1" ]; }; then
  [ -x .venv/bin/python ] || "$py" -m venv .venv || fail "$py -m venv .venv"
  # pip pinned too, so a fresh clone resolves and installs the lock the same way every time
  .venv/bin/python -m pip install -q pip==26.3 || fail "pip install pip==26.3"
  bash scripts/install_deps.sh .venv/bin/python "$lock"
  rm -f .venv/.installed-*; touch "$stamp"
fi
# the `drumgen` command (.venv/bin/drumgen): this checkout installed in editable mode, so it runs
# the code and data folders in place
if [ ! -x .venv/bin/drumgen ]; then
  log=$(.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e . 2>&1) \
    || { echo "$log" >&2; fail "pip install -e . (the drumgen command)"; }
fi
