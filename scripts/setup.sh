#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine with Python 3.11: system packages
# (libfluidsynth, the FluidR3 GM SoundFont, and for tests Chromium) via apt-get when
# missing, then a virtual environment in .venv with the pinned Python packages.
# Usage: scripts/setup.sh [--dev]   (--dev adds test tools and Chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0; [ "${1:-}" = "--dev" ] && dev=1

have_lib() {  # a shared library the dynamic linker knows (no grep -q: with pipefail it fails on SIGPIPE)
  ldconfig -p 2>/dev/null | grep "$1" >/dev/null
}
need=()
have_lib 'libfluidsynth\.so' || need+=(libfluidsynth3)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need+=(fluid-soundfont-gm)
have_lib 'libsndfile\.so' || need+=(libsndfile1)
if [ "$dev" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${need[*]}"
  sudo_cmd=""; [ "$(id -u)" != 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

py=${PYTHON:-python3.11}
command -v "$py" >/dev/null 2>&1 || py=python3
req=requirements.txt; [ "$dev" = 1 ] && req=requirements-dev.txt
stamp=.venv/.installed-$(cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)-$dev
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first, pinned: the CPU build (an unpinned torch pulls several GB of CUDA packages).
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -r "$req"
  rm -f .venv/.installed-*; touch "$stamp"
fi
