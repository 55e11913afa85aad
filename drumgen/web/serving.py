"""Serving grooves from the web app: the engine (retried while it cannot load), its temp area, how
long files stay downloadable, gradio's cache and session sweep, the warm-up before the first
request, and each request as a job that stops once its client is gone.

Nothing here runs at import: the app's ``main()`` builds these once.

Temp space stays bounded under load: every request leaves a .mid and a small .mp3 preview per
groove (a .wav or .zip only when asked for) in the app's own folder. That folder is inside gradio's
cache, so gradio serves those files where they are instead of copying each (it copies only files
from elsewhere); it deletes them once older than ``files_max_age()`` seconds. An upload lands in
that cache too.

Every server function of the app runs as a :class:`Job` (:func:`run_as_job`, applied by
``app.launch``). A job that uses the engine or writes files first waits (at most
:data:`LISTEN_GRACE_S` from its submission) for its client to read its result, then takes one of
the :data:`compute slots <set_compute_slots>`; at each safe point (the engine fetched, before
sampling, rendering or a preview, before a file is written) it stops if the client disconnected, the
call was cancelled or nobody reads its result, and removes the files it wrote.
"""

from __future__ import annotations

import atexit
import contextvars
import ctypes
import ctypes.util
import datetime
import functools
import gc
import inspect
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from drumgen.engine import Engine, Groove
from drumgen.model_loader import CheckpointError
from drumgen.preview import PREVIEW_FORMAT
from drumgen.request import GenerateRequest
from drumgen.web.guard import QuietLog, guard_of

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


def use_private_gradio_folder() -> Path:
    """Give this process its own gradio cache and upload folder (``$GRADIO_TEMP_DIR``, unless already
    set), removed at exit: by default every gradio app on the machine shares ``<temp>/gradio``."""
    if not os.environ.get("GRADIO_TEMP_DIR"):
        folder = tempfile.mkdtemp(prefix="drumgen-gradio-")
        os.environ["GRADIO_TEMP_DIR"] = folder
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return Path(os.environ["GRADIO_TEMP_DIR"])


def gradio_upload_folder() -> Path:
    """Gradio's cache and upload folder (``$GRADIO_TEMP_DIR``, else ``<temp>/gradio``): files under it are
    served in place, files elsewhere are copied into it first."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder())


class TempArea:
    """The app's own folder of per-request subfolders, inside gradio's cache folder (so gradio hands
    out these files without a copy); a subfolder older than ``max_age_s`` is removed when the next
    request makes its own (gradio's sweep removes the files it handed out). The whole folder goes
    when the process exits."""

    def __init__(self, max_age_s: float, parent: str | Path | None = None) -> None:
        parent = Path(parent) if parent is not None else gradio_upload_folder()
        parent.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="drumgen-app-", dir=parent))
        self.max_age_s = max_age_s
        atexit.register(shutil.rmtree, self.root, ignore_errors=True)

    def request_dir(self) -> Path:
        """A fresh folder for one request's files (stale ones are removed first). A safe point of the
        current job: it stops there if its client is gone, and its folders go with it."""
        job = Job.current()
        if job is not None:
            job.enter()
        cutoff = time.time() - self.max_age_s
        for old in self.root.iterdir():
            try:
                if old.stat().st_mtime < cutoff:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass
        path = self.root / uuid.uuid4().hex
        path.mkdir()
        if job is not None:
            job.folders.append(path)
        return path

    def save(self, groove: Groove, preview: bytes | None = None) -> tuple[str | None, str, list[str]]:
        """Write the groove's ``.mid`` and, when given, its browser ``preview`` (the MP3 of
        :meth:`drumgen.engine.Engine.preview`) into a fresh request folder: ``(preview path or None,
        MIDI path, notices)``. A failed preview write becomes a notice; a failed MIDI write raises
        :class:`SaveError`. A safe point of the current job (see :meth:`request_dir`)."""
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
        ``OSError`` when the temp space is full or read-only. A safe point (see :meth:`request_dir`)."""
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


def expire_sessions(blocks: Any, idle_s: float) -> int:
    """Forget the sessions unused for ``idle_s`` seconds that have no open connection and no call
    waiting: gradio's per-session state (a copy of every component's config, about 250 KB, made for
    every session_hash it sees, even a one-shot API call's) and the queue's per-session records; the
    freed memory goes back to the OS. Returns how many sessions were forgotten.

    Gradio keeps up to ``state_session_capacity`` sessions (the app sets a small bound) and forgets
    one only when that is full (see :func:`install_session_eviction`).
    """
    holder, queue, guard = blocks.state_holder, blocks._queue, guard_of(blocks)
    cutoff = datetime.datetime.now() - datetime.timedelta(seconds=idle_s)
    busy = {event.session_hash for event in list(queue.event_ids_to_events.values())}

    def idle(session: str) -> bool:
        return session not in busy and not (guard is not None and guard.present(session))

    gone = 0
    for session in list(holder.session_data):
        used = holder.time_last_used.get(session)
        if (used is None or used < cutoff) and idle(session):
            holder.session_data.pop(session, None)
            holder.time_last_used.pop(session, None)
            queue.pending_event_ids_session.pop(session, None)
            queue.pending_messages_per_session.pop(session, None)
            gone += 1
    # Results nobody came for, of sessions gradio keeps no state for (evicted, or never made): they have no
    # time of last use, so they go once seen stateless and idle at sweeps ``idle_s`` apart.
    now = time.monotonic()
    seen: dict[str, float] = blocks.__dict__.setdefault("drumgen_stateless_since", {})
    for session in list(queue.pending_event_ids_session):
        if session in holder.session_data or not idle(session):
            seen.pop(session, None)
        elif now - seen.setdefault(session, now) >= idle_s:
            queue.pending_event_ids_session.pop(session, None)
            queue.pending_messages_per_session.pop(session, None)
            seen.pop(session, None)
    for session in [s for s in seen if s not in queue.pending_event_ids_session]:
        seen.pop(session, None)
    if gone:
        gc.collect()
        release_free_memory()
    return gone


def sweep(blocks: Any, age: float | None) -> None:
    """Gradio's periodic clean-up (every ``delete_cache[0]`` seconds, and at shutdown with ``age=None``):
    the cache files older than ``age`` (:func:`sweep_gradio_cache`) and the sessions idle that long
    (:func:`expire_sessions`)."""
    sweep_gradio_cache(blocks, age)
    if age is not None:
        try:
            expire_sessions(blocks, age)
        except Exception as exc:  # never kill gradio's sweeper task
            log.warning("could not expire idle sessions: %s", exc)


def install_cache_sweeper() -> None:
    """Make gradio's periodic cache clean-up use :func:`sweep` (it looks the name up at each run)."""
    import gradio.route_utils

    if hasattr(gradio.route_utils, "delete_files_created_by_app"):
        gradio.route_utils.delete_files_created_by_app = sweep


def _evict_unconnected(holder: Any, session_id: str) -> None:
    """``StateHolder.update`` with the sessions that have an open connection (a page, a client's
    stream) kept: past the capacity the oldest session without one goes (gradio's own drops the
    oldest of all, so a flood of one-shot calls would push out a page's state, its grooves with it)."""
    guard = guard_of(getattr(holder, "blocks", None))
    with holder.lock:
        if session_id in holder.session_data:
            holder.session_data.move_to_end(session_id)
        while len(holder.session_data) > holder.capacity:
            victim = next((s for s in holder.session_data
                           if s != session_id and not (guard is not None and guard.present(s))), None)
            if victim is None:  # every session is connected: keep them all
                break
            holder.session_data.pop(victim, None)
            holder.time_last_used.pop(victim, None)


def install_session_eviction() -> None:
    """Make gradio's session store, once full, forget the oldest session that has no open connection."""
    from gradio.state_holder import StateHolder

    StateHolder.update = _evict_unconnected


def drop_queue_analytics(blocks: Any) -> None:
    """Keep no per-event records for gradio's monitoring dashboard (the app has it off): gradio keeps
    10,000 of them and rebuilds a pandas table of them all after every event."""
    queue = blocks._queue
    queue.ANALYTICS_MAX_EVENTS = 1
    queue.ANAYLTICS_CACHE_FREQUENCY = 2**62  # (gradio's spelling) never rebuild the summary
    queue.event_analytics.clear()


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
        """The engine, or :class:`ModelUnavailableError` with the reason. Inside a :class:`Job`, a safe
        point: the job waits for its client and a compute slot, and gets the engine with its client
        checked before each costly stage (:class:`JobEngine`)."""
        job = Job.current()
        if job is not None:
            job.enter()
        engine = self._load()
        return JobEngine.of(engine) if job is not None and isinstance(engine, Engine) else engine

    def _load(self) -> Engine:
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
            engine = self._load()
            grooves = engine.generate(GenerateRequest(style=style, bars=1, seed=0))
            if grooves:
                engine.preview(grooves[0])  # the MP3 encoder and loudness filters load on first use
        except Exception as exc:  # the UI still starts; each request then reports the problem
            log.error("warm-up failed: %s", exc)
            return str(exc)
        log.info("model loaded and warmed up in %.1f s", time.perf_counter() - start)
        return None


# --------------------------------------------------------------------------- jobs
LISTEN_GRACE_S = 5.0  # a call whose result nobody reads this long after its submission is dropped
POLL_S = 0.05
T = TypeVar("T")


class ClientGone(BaseException):
    """The current job's client is gone (disconnected, cancelled, never read its result): the job stops.

    A ``BaseException``, like ``asyncio.CancelledError``, so that a handler's ``except Exception``
    (which turns a bug into a message and a logged traceback) lets it through to :func:`run_as_job`.
    """


class _Slots:
    """The compute slots every job shares: at most ``n`` jobs use the engine or write files at once,
    whatever the route, the event or its concurrency limit (gradio's limit is per event, and a
    cancelled call frees gradio's worker while its thread still runs)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.semaphore = threading.BoundedSemaphore(n)


_SLOTS = _Slots(2)
_JOB: contextvars.ContextVar[Job | None] = contextvars.ContextVar("drumgen_job", default=None)
_QUIET = QuietLog(logger=log)


def set_compute_slots(n: int) -> None:
    """How many jobs may compute at once (the app sets its queue's worker count)."""
    global _SLOTS
    if n != _SLOTS.n:
        _SLOTS = _Slots(n)


class Job:
    """One call of a server function as gradio's queue runs it (its event, found through gradio's
    context), with the checks made at the safe points."""

    def __init__(self, blocks: Any, event: Any) -> None:
        self.blocks = blocks
        self.event = event
        self.entered = False
        self.slots: _Slots | None = None
        self.folders: list[Path] = []

    @staticmethod
    def current() -> Job | None:
        """The job this thread is serving, or None outside one."""
        return _JOB.get()

    @staticmethod
    def of_context() -> Job | None:
        """A job for the queued event gradio's context names, or None (not a queued call)."""
        from gradio.context import LocalContext

        blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
        queue = getattr(blocks, "_queue", None)
        event = queue.event_ids_to_events.get(event_id) if queue is not None and event_id else None
        return Job(blocks, event) if event is not None else None

    def gone(self) -> str | None:
        """Why this job's result can no longer reach anyone, or None while it can."""
        event = self.event
        if not event.alive:
            return "its client disconnected"
        if self.blocks._queue.event_ids_to_events.get(event._id) is not event:
            return "it was cancelled"
        guard = guard_of(self.blocks)
        if (guard is not None and not guard.listening(event.session_hash)
                and time.monotonic() - event.enqueue_time > LISTEN_GRACE_S):
            return f"nobody read its result (a client must read it within {LISTEN_GRACE_S:g} s of the call)"
        return None

    def check(self) -> None:
        """Stop (:class:`ClientGone`) if the client is gone."""
        why = self.gone()
        if why is not None:
            raise ClientGone(why)

    def enter(self) -> None:
        """The first safe point: wait for the client to listen (up to the grace) and for a compute slot,
        checking the client all along; later ones only check."""
        if not self.entered:
            guard = guard_of(self.blocks)
            while guard is not None and not guard.listening(self.event.session_hash):
                self.check()
                time.sleep(POLL_S)
            slots = _SLOTS
            while not slots.semaphore.acquire(timeout=POLL_S * 4):
                self.check()
            self.slots, self.entered = slots, True
        self.check()

    def close(self, stopped: bool) -> None:
        """Free the compute slot; a stopped job's files go too."""
        if self.slots is not None:
            self.slots.semaphore.release()
            self.slots = None
        if stopped:
            for folder in self.folders:
                shutil.rmtree(folder, ignore_errors=True)


class JobEngine(Engine):
    """The app's engine as a job sees it: the same object (one shared ``__dict__``: model, tokenizer,
    caches), with the job's client checked before each costly stage: sampling, rendering, the preview.

    Every stage that :meth:`Engine.generate` and the upload modes call on their engine goes through
    these, so a job stops between them without the engine knowing about jobs.
    """

    def __init__(self) -> None:  # made by of(), never built
        raise TypeError("use JobEngine.of(engine)")

    @classmethod
    def of(cls, engine: Engine) -> JobEngine:
        view = object.__new__(cls)
        view.__dict__ = engine.__dict__
        return view

    @staticmethod
    def _check() -> None:
        job = Job.current()
        if job is not None:
            job.check()

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().sample(*args, **kwargs)

    def render(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().render(*args, **kwargs)

    def preview(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().preview(*args, **kwargs)


def run_as_job(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` (a server function of the app) run as a :class:`Job` when gradio's queue calls it: a job
    whose client is gone ends with one short message (nobody reads it) and one short log line, and
    leaves no files. Coroutine and generator functions are returned as they are."""
    if getattr(fn, "drumgen_job", False) or inspect.iscoroutinefunction(fn) or inspect.isgeneratorfunction(fn) \
            or inspect.isasyncgenfunction(fn):
        return fn

    @functools.wraps(fn)
    def job_call(*args: Any, **kwargs: Any) -> T:
        job = Job.of_context()
        if job is None:
            return fn(*args, **kwargs)
        token = _JOB.set(job)
        stopped = False
        try:
            return fn(*args, **kwargs)
        except ClientGone as exc:
            import gradio as gr

            stopped = True
            _QUIET.line("job", f"stopped {getattr(fn, '__name__', 'a call')} ({job.event._id[:8]}): {exc}")
            raise gr.Error(f"the request was stopped: {exc}", print_exception=False) from None
        finally:
            _JOB.reset(token)
            job.close(stopped)

    job_call.drumgen_job = True  # type: ignore[attr-defined]
    return job_call
