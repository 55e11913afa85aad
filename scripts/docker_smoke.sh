#!/usr/bin/env bash
# Build the project's Docker image with podman and prove that it works: runs as uid 1000, its HEALTHCHECK
# passes, the page loads, /generate through gradio_client returns audio and a drum .mid, `podman stop`
# is quick, and the image holds none of tests/, .git, .venv. Prints the image size, build time,
# start-to-ready time, memory (RSS) and the 4-bar request times; exits non-zero naming the failed check.
# Takes minutes (a full build), so it is not part of .ci/run.
#
# Made for a Debian machine (root or sudo) with no Docker engine and no access to Docker Hub:
#  - installs podman, runc and debootstrap with apt-get when missing;
#  - podman runs with its own config (CONTAINERS_CONF): runc, as crun refuses a host with cgroups in
#    hybrid mode, and container ulimits within what a sandbox allows (podman's defaults fail there with
#    "setrlimit RLIMIT_NOFILE: Operation not permitted");
#  - python:3.11-slim cannot be pulled, so a stand-in is built once and tagged with that name: Debian
#    bookworm (`debootstrap --variant=minbase`) with its Python 3.11, venv and pip, `python`/`pip` on
#    PATH, no EXTERNALLY-MANAGED marker, and pip configured as on this host (`pip config list`);
#    what that configuration points to (local wheels and indexes, constraints, the CA bundle) is
#    mounted read-only into the build;
#  - `podman build --format docker` (the OCI format drops HEALTHCHECK) and `--network host`.
# The Dockerfile is used unchanged. Where PyTorch's CPU index is unreachable (as here) it falls back to
# the plain torch pin, which the mounted pip configuration may serve from a local CPU wheel.
#
# Usage: scripts/docker_smoke.sh
#   SMOKE_CACHE=1       reuse cached layers (default: --no-cache, so the build time is a full build's)
#   SMOKE_REBUILD_BASE=1  rebuild the stand-in base image
#   SMOKE_STATE=DIR     where the podman config, the stand-in's files and the client venv live
#                       (default /var/tmp/drumgen-smoke)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  exec sudo --preserve-env=SMOKE_CACHE,SMOKE_REBUILD_BASE,SMOKE_STATE bash "$0" "$@"
fi

IMAGE=localhost/mididrumigen:smoke
BASE=python:3.11-slim
STATE=${SMOKE_STATE:-/var/tmp/drumgen-smoke}
CONTAINER=drumgen-smoke-$$
mkdir -p "$STATE"
say() { echo "docker_smoke: $*"; }
fail() {
  echo "docker_smoke: FAILED: $*" >&2
  if podman container exists "$CONTAINER" 2>/dev/null; then
    echo "--- last lines of the container's log ---" >&2
    podman logs --tail 40 "$CONTAINER" >&2 || true
  fi
  exit 1
}
now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }
cleanup() { podman rm -f -t 0 "$CONTAINER" >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'fail "line $LINENO: $BASH_COMMAND"' ERR  # set -e would stop without a word

# --- tools -----------------------------------------------------------------------------------------
need=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail "apt-get update"
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || fail "apt-get install ${need[*]}"
fi

export CONTAINERS_CONF="$STATE/containers.conf"
cat > "$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
podman info >/dev/null 2>&1 || fail "podman info (podman does not run here: $(podman info 2>&1 | tail -1))"
say "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
say "$(podman --version), runtime $(podman info --format '{{.Host.OCIRuntime.Name}}'), storage $(podman info --format '{{.Store.GraphDriverName}}')"

# --- the host's pip configuration: pip.conf for the stand-in, and the paths it names ----------------
# The CA bundle goes to a path of its own, so the image's apt never writes over the mounted file.
HOST_CA=/opt/host-pip/ca-certificates.crt
python3 - "$STATE" "$HOST_CA" <<'PY' || fail "reading this host's pip configuration"
import os
import subprocess
import sys
from pathlib import Path

state, host_ca = Path(sys.argv[1]), sys.argv[2]
listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
conf: dict[str, str] = {}
for line in listed.splitlines():
    key, sep, value = line.partition("=")
    scope, _, name = key.partition(".")
    if sep and name:
        if scope == ":env:" or name not in conf:  # the environment overrides the files, as in pip
            conf[name] = value.strip().strip("'\"")
mounts: list[str] = []
for name in ("cert", "constraint", "find-links", "index-url", "extra-index-url"):
    words = conf.get(name, "").split()
    for i, word in enumerate(words):
        path = word.removeprefix("file://")
        if not os.path.exists(path):
            continue
        if name == "cert":
            mounts.append(f"{path}:{host_ca}:ro")
            words[i] = host_ca
            continue
        if word.startswith("file://") and name.endswith("index-url"):
            # a local index's pages link to files beside its root (simple/ -> ../../files/)
            path = os.path.dirname(path.rstrip("/"))
        mounts.append(f"{os.path.realpath(path)}:{path}:ro")
    if words:
        conf[name] = " ".join(words)
(state / "pip.conf").write_text("[global]\n" + "".join(f"{k} = {v}\n" for k, v in sorted(conf.items())))
(state / "mounts").write_text("".join(f"{m}\n" for m in dict.fromkeys(mounts)))
PY
mount_args=()
while read -r m; do [ -n "$m" ] && mount_args+=(-v "$m"); done < "$STATE/mounts"
say "pip configuration for the build: $(tr '\n' ' ' < "$STATE/pip.conf" | sed 's/\[global\] //')"

# --- the stand-in base image -----------------------------------------------------------------------
if [ "${SMOKE_REBUILD_BASE:-0}" = 1 ] || ! podman image exists "$BASE"; then
  say "building the stand-in $BASE: debootstrap --variant=minbase bookworm (once; cached afterwards)"
  rootfs="$STATE/rootfs"
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,passwd,ca-certificates \
    bookworm "$rootfs" http://deb.debian.org/debian >"$STATE/debootstrap.log" 2>&1 \
    || fail "debootstrap (log: $STATE/debootstrap.log)"
  cat > "$rootfs/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
  ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python"
  ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/pip"
  cp "$STATE/pip.conf" "$rootfs/etc/pip.conf"
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  tar -C "$rootfs" --numeric-owner -cf - . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$BASE" >/dev/null || fail "podman import of the stand-in"
  rm -rf "$rootfs"
fi
base_py=$(podman run --rm --network host --no-healthcheck "$BASE" python --version 2>&1) || fail "python in $BASE"
say "base $BASE: $base_py"

# --- build -----------------------------------------------------------------------------------------
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")
dirty=$(git status --porcelain 2>/dev/null | head -5 || true)
say "building $IMAGE from $(pwd) at $commit${dirty:+ (WITH UNCOMMITTED CHANGES)}"
cache_flag=(--no-cache); [ "${SMOKE_CACHE:-0}" = 1 ] && cache_flag=()
previous=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
t0=$(now)
podman build --format docker --network host "${cache_flag[@]}" "${mount_args[@]}" -t "$IMAGE" . \
  > "$STATE/build.log" 2>&1 || { tail -30 "$STATE/build.log" >&2; fail "podman build (log: $STATE/build.log)"; }
build_s=$(secs "$t0" "$(now)")
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$IMAGE")" ]; then
  podman rmi "$previous" >/dev/null 2>&1 || true  # the last run's image, untagged now: 1.7 GB
fi
{ grep -E "^install_deps:" "$STATE/build.log" || echo "install_deps: (a cached layer)"; } | sed 's/^/docker_smoke:   build: /'
size_mb=$(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f", $1 / 1e6}')
say "built in ${build_s} s; image size ${size_mb} MB"

# --- static checks of the image --------------------------------------------------------------------
health=$(podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")
[ "$health" != "null" ] && [ -n "$health" ] || fail "the image has no HEALTHCHECK (built without --format docker?)"
listing=$(podman run --rm --network host --no-healthcheck --entrypoint sh "$IMAGE" -c \
  'stat -c "%u %n" . drumgen; ls -A; find /home/user \( -name .git -o -name .venv -o -name tests \) -print') \
  || fail "listing the image's app folder"
owner=$(echo "$listing" | awk 'NR == 1 {print $1}')
[ "$owner" = 1000 ] || fail "the app folder /home/user/app is owned by uid $owner, not 1000"
[ "$(echo "$listing" | awk 'NR == 2 {print $1}')" = 1000 ] || fail "drumgen/ in the image is not owned by uid 1000"
echo "$listing" | grep -E '(^|/)(\.git|\.venv|tests)$' && fail "the image holds tests/, .git or .venv (above)"
say "app folder (uid 1000): $(echo "$listing" | tail -n +3 | tr '\n' ' ')"

# --- run -------------------------------------------------------------------------------------------
# Not 7860: a free port, which also shows that the HEALTHCHECK follows $GRADIO_SERVER_PORT.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port/"
t0=$(now)
# podman 4.3 also logs that it cannot schedule the periodic health checks without systemd: to podman.log
podman run -d --name "$CONTAINER" --network host -e GRADIO_SERVER_PORT="$port" "$IMAGE" >/dev/null \
  2>>"$STATE/podman.log" || fail "podman run (log: $STATE/podman.log)"
ready=""
for _ in $(seq 1 900); do
  if curl -fsS -o "$STATE/page.html" "$url" 2>/dev/null; then ready=$(now); break; fi
  [ "$(podman inspect --format '{{.State.Running}}' "$CONTAINER")" = true ] || fail "the container exited before serving"
  sleep 0.2
done
[ -n "$ready" ] || fail "the page $url did not load within 180 s"
ready_s=$(secs "$t0" "$ready")
say "serving $url ${ready_s} s after podman run"
grep -qi "gradio" "$STATE/page.html" || fail "the page at $url is not the Gradio app"

uid=$(podman exec "$CONTAINER" id -u) || fail "podman exec id -u"
[ "$uid" = 1000 ] || fail "the app runs as uid $uid, not 1000"
podman healthcheck run "$CONTAINER" >/dev/null 2>&1 \
  || fail "the HEALTHCHECK command fails (GRADIO_SERVER_PORT=$port): $(podman healthcheck run "$CONTAINER" 2>&1)"
say "runs as uid $uid; HEALTHCHECK passes"

# The client: this checkout's .venv when it has gradio_client and mido, else a venv of their pins.
client_py=.venv/bin/python
if ! { [ -x "$client_py" ] && "$client_py" -c "import gradio_client, mido" 2>/dev/null; }; then
  client_py="$STATE/client/bin/python"
  if ! "$client_py" -c "import gradio_client, mido" 2>/dev/null; then
    say "making a client venv with $(grep -E '^(gradio_client|mido)==' requirements.txt | tr '\n' ' ')"
    python3 -m venv "$STATE/client" || fail "python3 -m venv for the client"
    "$client_py" -m pip install -q $(grep -E '^(gradio_client|mido)==' requirements.txt) \
      || fail "pip install of the client"
  fi
fi
"$client_py" - "$url" "$STATE/request" <<'PY' || fail "the /generate request (above)"
import json
import statistics
import sys
import time
from pathlib import Path

import mido
from gradio_client import Client

url, report = sys.argv[1], sys.argv[2]
client = Client(url, verbose=False)
times = []
for i in range(6):
    t = time.perf_counter()
    audio, midi, summary = client.predict(style="funk", bars=4, seed=1 + i, random_seed=False, api_name="/generate")
    times.append(time.perf_counter() - t)
    head = Path(audio).read_bytes()[:4]
    mp3 = head[:3] == b"ID3" or (head[0] == 0xFF and head[1] & 0xE0 == 0xE0)  # a tag or an MPEG frame sync
    assert mp3 or head in (b"OggS", b"RIFF"), f"the audio {audio} is neither MP3, OGG nor WAV (starts {head!r})"
    assert Path(audio).stat().st_size > 10_000, f"the audio {audio} is nearly empty"
    mid = mido.MidiFile(midi)
    drums = [m for t in mid.tracks for m in t if m.type == "note_on" and m.velocity > 0 and m.channel == 9]
    assert len(drums) >= 8, f"{midi}: {len(drums)} drum hits on channel 10"
    if isinstance(summary, str):
        summary = json.loads(summary)
    assert isinstance(summary, dict), f"the summary is {type(summary).__name__}, not a JSON object"
    if i == 0:
        first = {"midi": Path(midi).name, "hits": len(drums), "audio_bytes": Path(audio).stat().st_size,
                 "bars": summary.get("bars"), "seed": summary.get("seed")}
Path(report + ".json").write_text(json.dumps(first))
Path(report + ".times").write_text(f"{times[0]:.2f} {statistics.median(times[1:]):.2f} {max(times[1:]):.2f}\n")
PY
read -r first_s warm_s warm_max < "$STATE/request.times"
say "/generate funk, 4 bars, seed 1: $(cat "$STATE/request.json")"
rss=$(podman exec "$CONTAINER" sh -c 'grep -E "^Vm(RSS|HWM)" /proc/1/status' | awk '{printf "%s %.0f MB; ", $1, $2 / 1024}') \
  || fail "reading the app's memory"
say "memory of the app (PID 1) after 6 requests: $rss"

t0=$(now)
podman stop -t 10 "$CONTAINER" >/dev/null 2>>"$STATE/podman.log" || fail "podman stop exited non-zero"
stop_s=$(secs "$t0" "$(now)")
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$CONTAINER")
say "podman stop: ${stop_s} s, exit code of the app $exit_code"
[ "$exit_code" = 0 ] || fail "the app exited with code $exit_code on SIGTERM, not 0"
python3 -c 'import sys; sys.exit(float(sys.argv[1]) >= 5)' "$stop_s" \
  || fail "podman stop took ${stop_s} s (limit 5 s): the app is slow to exit after SIGTERM"

echo
echo "docker_smoke: PASSED ($IMAGE at $commit)"
echo "  image size       ${size_mb} MB"
echo "  build time       ${build_s} s (${cache_flag[*]:-SMOKE_CACHE=1: unchanged layers reused})"
echo "  start to ready   ${ready_s} s"
echo "  memory           $rss"
echo "  4-bar /generate  first ${first_s} s, then median ${warm_s} s (max ${warm_max} s) over 5"
echo "  podman stop      ${stop_s} s"
echo "  load average     $(cut -d' ' -f1-3 /proc/loadavg) at the end, on $(nproc) CPUs"
