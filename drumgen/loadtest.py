"""``python -m drumgen loadtest``: drive the app on loopback with concurrent gradio_client users.

Starts ``app.py`` in a child process on 127.0.0.1 (a free port, its own temp folder),
warms it with 10 requests, then runs ``users`` concurrent clients until ``requests``
are done or ``duration`` seconds pass, whichever comes first. Reports requests per
second, median and 95th-percentile latency, errors, the largest queue seen against
the app's bound, the app's memory after 10 requests and at the end, and its temp
folder's size. Traffic goes to loopback only, and the run is bounded in count and time.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from drumgen.styles import REPO_ROOT, list_styles

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
READY_TIMEOUT_S = 180
WARM_REQUESTS = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def folder_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += (Path(root) / name).stat().st_size
            except OSError:
                pass
    return total / 2**20


class AppProcess:
    """``python app.py`` on loopback in a child process with its own temp folder."""

    def __init__(self, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://{LOOPBACK}:{self.port}/"
        self.temp = Path(tempfile.mkdtemp(prefix="drumgen-load-"))
        self.env = {**os.environ, "GRADIO_SERVER_NAME": LOOPBACK, "GRADIO_SERVER_PORT": str(self.port),
                    "GRADIO_TEMP_DIR": str(self.temp / "gradio"), "TMPDIR": str(self.temp),
                    "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s = float("nan")

    def __enter__(self) -> AppProcess:
        t0 = time.perf_counter()
        self.log_path = self.temp / "app.log"  # a file, not a pipe: a full pipe would block the app
        with self.log_path.open("wb") as log_file:
            self.proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "app.py")], cwd=REPO_ROOT, env=self.env,
                                         stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + READY_TIMEOUT_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                err = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"app.py exited with {self.proc.returncode}: {err}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if r.status == 200:
                        self.startup_s = time.perf_counter() - t0
                        return self
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"app.py was not ready within {READY_TIMEOUT_S} s")

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def queue_size(self) -> int | None:
        try:
            with urllib.request.urlopen(self.url + "gradio_api/queue/status", timeout=2) as r:
                return int(json.loads(r.read()).get("queue_size") or 0)
        except (OSError, ValueError):
            return None


def run_loadtest(users: int = 16, requests: int = 1000, duration: float = 600.0, bars: int = 4,
                 seed: int = 0, queue_bound: int | None = None) -> dict[str, Any]:
    """Run the load test and return its figures (defaults: 16 users, 1000 requests, 600 s cap, 4 bars)."""
    from gradio_client import Client

    styles = [s.id for s in list_styles()]
    rng = random.Random(seed)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    done = 0
    queue_max = 0
    temp_max = 0.0
    stop = threading.Event()

    with AppProcess() as app:
        pid = app.proc.pid  # type: ignore[union-attr]
        warm = Client(app.url, verbose=False)
        for i in range(WARM_REQUESTS):
            warm.predict(style=styles[i % len(styles)], bars=bars, seed=i, random_seed=False, api_name="/generate")
        rss_10 = rss_mb(pid)
        temp_10 = folder_mb(app.temp)

        def monitor() -> None:
            nonlocal queue_max, temp_max
            while not stop.is_set():
                q = app.queue_size()
                if q is not None:
                    queue_max = max(queue_max, q)
                temp_max = max(temp_max, folder_mb(app.temp))
                stop.wait(0.25)

        def user(k: int) -> None:
            nonlocal done
            client = Client(app.url, verbose=False)
            local = random.Random(rng.random() + k)
            while not stop.is_set():
                with lock:
                    if done >= requests:
                        return
                    done += 1
                t0 = time.perf_counter()
                try:
                    client.predict(style=local.choice(styles), bars=bars, seed=local.randrange(2**31),
                                   random_seed=False, api_name="/generate")
                    with lock:
                        latencies.append(time.perf_counter() - t0)
                except Exception as exc:  # every failure is a figure of the test
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}"[:300])

        watcher = threading.Thread(target=monitor, daemon=True)
        watcher.start()
        t_start = time.perf_counter()
        threads = [threading.Thread(target=user, args=(k,), daemon=True) for k in range(users)]
        for t in threads:
            t.start()
        deadline = time.time() + duration
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.time()))
        stop.set()
        for t in threads:
            t.join(timeout=60)
        wall = time.perf_counter() - t_start
        watcher.join(timeout=5)
        rss_end = rss_mb(pid)
        temp_end = folder_mb(app.temp)
        startup = app.startup_s

    lat = sorted(latencies)
    return {
        "users": users, "bars": bars, "requests": len(lat) + len(errors), "ok": len(lat), "errors": len(errors),
        "error_examples": errors[:5], "seconds": round(wall, 1),
        "requests_per_s": round(len(lat) / wall, 2) if wall else 0.0,
        "latency_s": {"median": round(statistics.median(lat), 3) if lat else None,
                      "p95": round(lat[int(0.95 * (len(lat) - 1))], 3) if lat else None,
                      "max": round(lat[-1], 3) if lat else None},
        "queue": {"max_seen": queue_max, "bound": queue_bound},
        "app_rss_mb": {"after_10": round(rss_10, 1), "at_end": round(rss_end, 1),
                       "growth_percent": round(100 * (rss_end - rss_10) / rss_10, 1)},
        "temp_mb": {"after_10": round(temp_10, 2), "max": round(temp_max, 2), "at_end": round(temp_end, 2)},
        "app_startup_s": round(startup, 1),
    }
