"""``python -m drumgen loadtest``: drive the app on loopback with concurrent gradio_client users.

Starts ``app.py`` in a child process on 127.0.0.1 (a free port, its own temp folder),
warms it with 10 requests, then runs ``users`` concurrent clients until ``requests``
are done or ``duration`` seconds pass, whichever comes first. Reports requests per
second, median and 95th-percentile latency, errors, the largest queue seen against
the app's bound, the app's memory after 10 requests and at the end, and its temp
folder's size. Traffic goes to loopback only, and the run is bounded in count and time.

``--sessions N`` (:func:`run_sessions`) instead makes N one-shot sessions and reports the app's
memory before, right after and once they have expired.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from drumgen.resources import REPO_ROOT
from drumgen.styles import list_styles

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
    return folder_stats(path)[0]


def folder_stats(path: Path) -> tuple[float, int, int]:
    """``(MB in files, number of files, number of folders)`` under ``path``."""
    total = files_n = dirs_n = 0
    for root, dirs, files in os.walk(path):
        dirs_n += len(dirs)
        for name in files:
            try:
                total += (Path(root) / name).stat().st_size
                files_n += 1
            except OSError:
                pass
    return total / 2**20, files_n, dirs_n


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
                self.__exit__()
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
                self.proc.wait(timeout=20)
        try:  # the log is kept in memory; the folder (with whatever the app left) is removed
            self.log_text = self.log_path.read_text(errors="replace")
        except (AttributeError, OSError):
            self.log_text = ""
        shutil.rmtree(self.temp, ignore_errors=True)

    def queue_size(self) -> int | None:
        try:
            with urllib.request.urlopen(self.url + "gradio_api/queue/status", timeout=2) as r:
                return int(json.loads(r.read()).get("queue_size") or 0)
        except (OSError, ValueError):
            return None


def _fetch(client: Any, downloads: Path, **params: Any) -> None:
    """One /generate call as a user makes it: the files are downloaded, checked (a result without its
    MIDI counts as an error) and deleted, so the load test's own disk use stays flat."""
    audio, midi, _ = client.predict(**params, api_name="/generate")
    try:
        if not midi or Path(midi).stat().st_size == 0:
            raise RuntimeError(f"no MIDI file in the result: {midi!r}")
    finally:
        for path in (audio, midi):
            if path and Path(path).resolve().is_relative_to(downloads):
                Path(path).unlink(missing_ok=True)


def run_loadtest(users: int = 16, requests: int = 1000, duration: float = 600.0, bars: int = 4,
                 seed: int = 0, queue_bound: int | None = None, settle_s: float = 0.0,
                 env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the load test and return its figures (defaults: 16 users, 1000 requests, 600 s cap, 4 bars).

    ``settle_s`` > 0 waits that long after the last request and measures the app's temp folder again
    (to see its sweep at work); ``env`` adds variables to the app's environment.
    """
    from gradio_client import Client

    styles = [s.id for s in list_styles()]
    rng = random.Random(seed)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    done = 0
    queue_max = 0
    temp_max = 0.0
    rss_max = 0.0
    stop = threading.Event()
    downloads = Path(tempfile.mkdtemp(prefix="drumgen-load-clients-")).resolve()

    with AppProcess(env=env) as app:
        pid = app.proc.pid  # type: ignore[union-attr]
        warm = Client(app.url, verbose=False, download_files=str(downloads))
        for i in range(WARM_REQUESTS):
            _fetch(warm, downloads, style=styles[i % len(styles)], bars=bars, seed=i, random_seed=False)
        rss_10 = rss_mb(pid)
        temp_10 = folder_stats(app.temp)

        trend: dict[int, tuple[float, float]] = {}  # requests done (every 10 %) -> (app RSS MB, temp MB)
        step = max(1, requests // 10)

        def monitor() -> None:
            nonlocal queue_max, temp_max, rss_max
            while not stop.is_set():
                q = app.queue_size()
                if q is not None:
                    queue_max = max(queue_max, q)
                temp = folder_mb(app.temp)
                rss = rss_mb(pid)
                temp_max, rss_max = max(temp_max, temp), max(rss_max, rss)
                mark = (len(latencies) + len(errors)) // step * step
                if mark and mark not in trend:
                    trend[mark] = (round(rss, 1), round(temp, 1))
                stop.wait(0.25)

        def user(k: int) -> None:
            nonlocal done
            client = Client(app.url, verbose=False, download_files=str(downloads))
            local = random.Random(rng.random() + k)
            while not stop.is_set():
                with lock:
                    if done >= requests:
                        return
                    done += 1
                t0 = time.perf_counter()
                try:
                    _fetch(client, downloads, style=local.choice(styles), bars=bars, seed=local.randrange(2**31),
                           random_seed=False)
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
        temp_end = folder_stats(app.temp)
        if settle_s > 0:
            time.sleep(settle_s)
        temp_settled = folder_stats(app.temp)
        startup = app.startup_s
    shutil.rmtree(downloads, ignore_errors=True)

    lat = sorted(latencies)
    return {
        "users": users, "bars": bars, "requests": len(lat) + len(errors), "ok": len(lat), "errors": len(errors),
        "error_examples": errors[:5], "seconds": round(wall, 1),
        "requests_per_s": round(len(lat) / wall, 2) if wall else 0.0,
        "latency_s": {"median": round(statistics.median(lat), 3) if lat else None,
                      "p95": round(lat[int(0.95 * (len(lat) - 1))], 3) if lat else None,
                      "max": round(lat[-1], 3) if lat else None},
        "queue": {"max_seen": queue_max, "bound": queue_bound},
        "app_rss_mb": {"after_10": round(rss_10, 1), "max": round(max(rss_max, rss_end), 1),
                       "at_end": round(rss_end, 1), "growth_percent": round(100 * (rss_end - rss_10) / rss_10, 1)},
        "temp_mb": {"after_10": round(temp_10[0], 2), "max": round(temp_max, 2), "at_end": round(temp_end[0], 2),
                    **({"after_settle": round(temp_settled[0], 2)} if settle_s > 0 else {})},
        "trend": {"requests": list(trend), "app_rss_mb": [v[0] for v in trend.values()],
                  "temp_mb": [v[1] for v in trend.values()]},
        "temp_files": {"after_10": temp_10[1], "at_end": temp_end[1],
                       **({"after_settle": temp_settled[1]} if settle_s > 0 else {})},
        "temp_folders": {"after_10": temp_10[2], "at_end": temp_end[2],
                         **({"after_settle": temp_settled[2]} if settle_s > 0 else {})},
        "app_startup_s": round(startup, 1),
    }


def _one_shot_session(url: str, k: int, styles_index: int) -> None:
    """One session that is never seen again: ``/gradio_api/call/styles`` (a fresh session of its own)
    or, every other time, ``queue/join`` with a fresh ``session_hash`` and its result stream; both
    read their result (gradio keeps the session's state either way)."""
    import httpx

    if k % 2:
        event_id = httpx.post(url + "gradio_api/call/styles", json={"data": []}, timeout=60).raise_for_status().json()
        stream = httpx.get(url + f"gradio_api/call/styles/{event_id['event_id']}", timeout=60)
        if "event: complete" not in stream.text:
            raise RuntimeError(f"no styles in {stream.text[:200]!r}")
        return
    session = f"oneshot{k:06d}"
    httpx.post(url + "gradio_api/queue/join", json={"data": [], "fn_index": styles_index, "session_hash": session},
               timeout=60).raise_for_status()
    stream = httpx.get(url + f"gradio_api/queue/data?session_hash={session}", timeout=60)
    if "process_completed" not in stream.text:
        raise RuntimeError(f"no styles in {stream.text[:200]!r}")


def run_sessions(sessions: int = 3000, workers: int = 8, files_max_age_s: int = 10, warm: int = 200,
                 env: dict[str, str] | None = None) -> dict[str, Any]:
    """``sessions`` one-shot sessions against ``python app.py`` (``/styles``, each with a session_hash of
    its own, ``workers`` at a time), and the app's RSS before, at its peak, right after, and once the
    sessions have expired (the app forgets a session idle for as long as its files live: here
    ``files_max_age_s``). ``warm`` sessions run and expire before "before" is measured, so that the
    figure compares like with like (imports, the allocator's own caches)."""
    import httpx

    sweep_s = max(1, min(60, files_max_age_s // 4))
    expiry_s = files_max_age_s + 3 * sweep_s + 2
    errors: list[str] = []
    with AppProcess(env={"DRUMGEN_FILES_MAX_AGE_S": str(files_max_age_s), **(env or {})}) as app:
        pid = app.proc.pid  # type: ignore[union-attr]
        config = httpx.get(app.url + "config", timeout=30).json()
        styles_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "styles")

        def batch(first: int, n: int) -> tuple[float, float]:
            peak = 0.0
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for k, done in enumerate(pool.map(lambda i: _safe(_one_shot_session, app.url, i, styles_index),
                                                  range(first, first + n))):
                    if done:
                        errors.append(done)
                    if k % 100 == 0:
                        peak = max(peak, rss_mb(pid))
            return peak, time.perf_counter()

        batch(0, warm)
        time.sleep(expiry_s)
        before = rss_mb(pid)
        t0 = time.perf_counter()
        peak, t1 = batch(warm, sessions)
        right_after = rss_mb(pid)
        time.sleep(expiry_s)
        after = rss_mb(pid)
    return {
        "sessions": sessions, "errors": len(errors), "error_examples": errors[:5],
        "sessions_per_s": round(sessions / (t1 - t0), 1),
        "app_rss_mb": {"before": round(before, 1), "peak": round(max(peak, right_after), 1),
                       "right_after": round(right_after, 1), "after_expiry": round(after, 1),
                       "growth_percent": round(100 * (after - before) / before, 1)},
        "expiry_s": expiry_s,
    }


def _safe(fn: Any, *args: Any) -> str | None:
    try:
        fn(*args)
        return None
    except Exception as exc:  # every failure is a figure of the test
        return f"{type(exc).__name__}: {exc}"[:300]
