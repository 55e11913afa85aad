"""Serving grooves from the web app: the engine (retried while it cannot load), its temp area, how
long files stay downloadable, gradio's cache sweep, and the warm-up before the first request.

Nothing here runs at import: the app's ``main()`` builds these once.

Temp space stays bounded under load: every request leaves a .mid and a small .mp3 preview per
groove (a .wav or .zip only when asked for) in the app's own folder, and gradio copies each into its
cache (what browsers and API clients download); an upload lands in that cache too. Gradio
deletes its copies once older than ``files_max_age()`` seconds; ours are needed only until
gradio has copied them, so they go sooner.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import functools
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from drumgen.engine import Engine, Groove
from drumgen.model_loader import CheckpointError
from drumgen.preview import PREVIEW_FORMAT
from drumgen.request import GenerateRequest

log = logging.getLogger(__name__)

FILES_MAX_AGE_ENV, DEFAULT_FILES_MAX_AGE_S = "DRUMGEN_FILES_MAX_AGE_S", 600


def files_max_age() -> int:
    """How long a groove's files stay downloadable: ``$DRUMGEN_FILES_MAX_AGE_S`` seconds (default 600)."""
    raw = os.environ.get(FILES_MAX_AGE_ENV, "")
    try:
        return max(1, int(raw)) if raw else DEFAULT_FILES_MAX_AGE_S
    except ValueError:
        log.warning("%s=%r is not a whole number of seconds; using %d", FILES_MAX_AGE_ENV, raw,
                    DEFAULT_FILES_MAX_AGE_S)
        return DEFAULT_FILES_MAX_AGE_S


def cache_sweep_setting(max_age_s: int) -> tuple[int, int]:
    """Gradio's ``delete_cache=(every, age)``: sweep every minute at most, files older than ``max_age_s`` go."""
    return max(1, min(60, max_age_s // 4)), max_age_s


class SaveError(OSError):
    """A groove was made but its MIDI file could not be written; the message names the seed to retry."""


class TempArea:
    """The app's own folder of per-request subfolders; a subfolder older than ``max_age_s`` is removed
    when the next request makes its own. The whole folder goes when the process exits."""

    def __init__(self, max_age_s: float) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="drumgen-app-"))
        self.max_age_s = max_age_s
        atexit.register(shutil.rmtree, self.root, ignore_errors=True)

    def request_dir(self) -> Path:
        """A fresh folder for one request's files (stale ones are removed first)."""
        cutoff = time.time() - self.max_age_s
        for old in self.root.iterdir():
            try:
                if old.stat().st_mtime < cutoff:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass
        path = self.root / uuid.uuid4().hex
        path.mkdir()
        return path

    def save(self, groove: Groove, preview: bytes | None = None) -> tuple[str | None, str, list[str]]:
        """Write the groove's ``.mid`` and, when given, its browser ``preview`` (the MP3 of
        :meth:`drumgen.engine.Engine.preview`) into a fresh request folder: ``(preview path or None,
        MIDI path, notices)``. A failed preview write becomes a notice; a failed MIDI write raises
        :class:`SaveError`."""
        try:
            folder = self.request_dir()
            midi = folder / groove.filename
            midi.write_bytes(groove.midi)
        except OSError as exc:  # temp space full or read-only: nothing can be handed out
            log.error("could not write the MIDI file: %s", exc)
            raise SaveError(f"the groove (seed {groove.seed}) was made but its MIDI file could not be saved on the "
                            f"server ({exc.strerror or exc}); try again later with seed {groove.seed}") from None
        notices = list(groove.notices)
        if preview is None:
            return None, str(midi), notices
        audio = folder / f"{midi.stem}.{PREVIEW_FORMAT}"
        try:
            audio.write_bytes(preview)
        except OSError as exc:
            audio.unlink(missing_ok=True)
            notices.append(f"the audio preview could not be saved on the server ({exc.strerror or exc}); the MIDI "
                           "file is fine")
            log.warning("%s", notices[-1])
            return None, str(midi), notices
        return str(audio), str(midi), notices

    def write(self, name: str, data: bytes) -> str:
        """Write one file (a WAV asked for, a zip of variations) into a fresh request folder; its path.
        ``OSError`` when the temp space is full or read-only."""
        path = self.request_dir() / Path(name).name
        path.write_bytes(data)
        return str(path)


@functools.cache
def _libc_malloc_trim() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def release_free_memory() -> None:
    """Hand the heap memory freed by a request back to the OS (glibc's ``malloc_trim``; elsewhere a no-op).

    Each request allocates and frees a few MB (audio, KV cache) on whichever worker thread served it;
    glibc keeps freed memory in per-thread arenas, so without this the app's RSS creeps up under
    concurrent load.
    """
    trim = _libc_malloc_trim()
    if trim is not None:
        trim(0)


def use_one_compute_thread() -> None:
    """Make this (gradio worker) thread compute with one CPU thread; call it before each generation.

    An OpenMP team started from a thread other than the main one is slow here: on this 2-core CPU a
    4-bar pattern took 120 ms with 2 threads on the main thread, 140 ms with 1 thread on any thread,
    but 410-460 ms with 2 threads on a worker thread. One thread per request is also what lets the
    queue's two workers use the two cores without fighting over them.
    """
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def sweep_gradio_cache(blocks: Any, age: float | None) -> None:
    """Delete the files ``blocks`` handed to gradio's cache once older than ``age`` seconds (all when None),
    and the folders they leave empty.

    Replaces ``gradio.route_utils.delete_files_created_by_app`` (gradio 6.31), which iterates sets
    that requests add to at the same time: its "Set changed size during iteration" kills the sweeper
    for good under load, and the cache then grows without limit. It also leaves one empty folder per
    file behind. This iterates copies and never raises.
    """
    keep: set[str] = set()
    for block in list(blocks.blocks.values()):
        keep.update(getattr(block, "keep_in_cache", ()))
    now = time.time()
    for files in list(blocks.temp_file_sets):
        for file in list(files):
            if file in keep:
                continue
            try:
                if age is not None and now - os.lstat(file).st_ctime <= age:
                    continue
                os.remove(file)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not delete %s from gradio's cache: %s", file, exc)
                continue
            files.discard(file)
            try:
                os.rmdir(os.path.dirname(file))  # its per-file folder, if nothing else is in it
            except OSError:
                pass


def install_cache_sweeper() -> None:
    """Make gradio's periodic cache clean-up use :func:`sweep_gradio_cache` (it looks the name up at each run)."""
    import gradio.route_utils

    if hasattr(gradio.route_utils, "delete_files_created_by_app"):
        gradio.route_utils.delete_files_created_by_app = sweep_gradio_cache


class ModelUnavailableError(RuntimeError):
    """The engine cannot be loaded (no or broken checkpoint); the message says how to fix it."""


class EngineSource:
    """The app's engine: loaded once; while loading fails (no or broken checkpoint) every request tries
    again, so putting a checkpoint in place fixes a running app without a restart."""

    def __init__(self, loader: Callable[[], Engine] = Engine.load) -> None:
        self.loader = loader
        self.engine: Engine | None = None
        self.error: str | None = None
        self._lock = threading.Lock()

    def get(self) -> Engine:
        """The engine, or :class:`ModelUnavailableError` with the reason."""
        if self.engine is not None:
            return self.engine
        with self._lock:
            if self.engine is None:
                try:
                    self.engine = self.loader()
                    self.error = None
                except (FileNotFoundError, CheckpointError, ValueError) as exc:
                    self.error = str(exc)
                    raise ModelUnavailableError(self.error) from None
        return self.engine

    def warm_up(self, style: str) -> str | None:
        """Load the engine and make one tiny groove with audio and its preview, so the first request pays
        no start-up cost. Returns the problem, if any (the app still starts and shows it)."""
        start = time.perf_counter()
        try:
            engine = self.get()
            grooves = engine.generate(GenerateRequest(style=style, bars=1, seed=0))
            if grooves:
                engine.preview(grooves[0])  # the MP3 encoder and loudness filters load on first use
        except Exception as exc:  # the UI still starts; each request then reports the problem
            log.error("warm-up failed: %s", exc)
            return str(exc)
        log.info("model loaded and warmed up in %.1f s", time.perf_counter() - start)
        return None
