"""The app's serving helpers on their own (no server): the engine source that retries loading, core
sharing between concurrent requests, the temp area, gradio's cache sweep, and how the handlers turn
failures into one line for the user."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import numpy as np
import pytest
import torch

from drumgen.engine import Groove
from drumgen.midi_io import midi_to_pattern, pattern_to_midi_bytes
from drumgen.model_loader import CheckpointError
from drumgen.pattern import Note, Pattern
from drumgen.request import GenerateRequest
from drumgen.web.handlers import AppHandlers
from drumgen.web.serving import (
    EngineSource,
    ModelUnavailableError,
    SaveError,
    TempArea,
    cache_sweep_setting,
    files_max_age,
    install_cache_sweeper,
    sweep,
    sweep_gradio_cache,
    use_one_compute_thread,
)


class FakeEngine:
    """Stands in for :class:`drumgen.engine.Engine`: records requests, raises ``error`` when set."""

    def __init__(self, error: Exception | None = None) -> None:
        self.requests: list[GenerateRequest] = []
        self.error = error

    def generate(self, request: GenerateRequest) -> list[Any]:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return []


# --- the engine source ---------------------------------------------------------------------------------
def test_the_engine_is_loaded_again_on_each_request_until_it_loads_then_kept() -> None:
    problems: list[Exception] = [FileNotFoundError("no model: drumgen.pt does not exist"),
                                 CheckpointError("model checkpoint drumgen.pt is corrupt")]
    engine = FakeEngine()
    calls = 0

    def loader() -> FakeEngine:
        nonlocal calls
        calls += 1
        if problems:
            raise problems.pop(0)
        return engine

    source = EngineSource(loader)
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        source.get()
    assert source.error == "no model: drumgen.pt does not exist"
    with pytest.raises(ModelUnavailableError, match="corrupt"):
        source.get()
    assert source.get() is engine and source.error is None  # the checkpoint is there now
    assert source.get() is engine and calls == 3  # loaded once, then kept


def test_concurrent_first_requests_load_the_engine_once() -> None:
    calls = 0

    def slow_loader() -> FakeEngine:
        nonlocal calls
        calls += 1
        time.sleep(0.2)
        return FakeEngine()

    source = EngineSource(slow_loader)
    got: list[Any] = []
    threads = [threading.Thread(target=lambda: got.append(source.get())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert calls == 1 and len(got) == 4 and all(e is got[0] for e in got)


def test_warm_up_makes_one_tiny_groove_and_reports_a_problem_instead_of_raising() -> None:
    engine = FakeEngine()
    assert EngineSource(lambda: engine).warm_up("funk") is None
    assert [(r.style, r.bars) for r in engine.requests] == [("funk", 1)]

    def no_model() -> FakeEngine:
        raise FileNotFoundError("no model: /x/drumgen.pt does not exist; train one with: python -m drumgen train")

    assert "does not exist" in EngineSource(no_model).warm_up("funk")
    assert EngineSource(lambda: FakeEngine(RuntimeError("boom"))).warm_up("funk") == "boom"


# --- the handlers' errors ------------------------------------------------------------------------------
@pytest.mark.parametrize(("error", "expected"), [
    (ValueError("tempo must be a number from 40 to 300 BPM, got 999"),
     "tempo must be a number from 40 to 300 BPM, got 999"),
    (KeyError("velocity"), "generation failed unexpectedly (KeyError: 'velocity'); please try other settings or "
                           "report it"),
], ids=["bad-input", "bug"])
def test_a_failed_generation_is_one_line_for_the_user(error: Exception, expected: str) -> None:
    handlers = AppHandlers(EngineSource(lambda: FakeEngine(error)), TempArea(max_age_s=60))
    with pytest.raises(gr.Error) as info:
        handlers.run(GenerateRequest(style="funk"))
    assert info.value.message == expected


def test_without_a_model_every_request_says_why() -> None:
    def no_model() -> FakeEngine:
        raise FileNotFoundError("no model: /x/drumgen.pt does not exist")

    handlers = AppHandlers(EngineSource(no_model), TempArea(max_age_s=60))
    for _ in range(2):
        with pytest.raises(gr.Error) as info:
            handlers.run(GenerateRequest(style="funk"))
        assert info.value.message == "the model is not available: no model: /x/drumgen.pt does not exist"


# --- threads -------------------------------------------------------------------------------------------
def test_a_worker_thread_computes_with_one_thread_and_leaves_others_alone() -> None:
    seen: dict[str, int] = {}

    def worker() -> None:
        use_one_compute_thread()
        seen["worker"] = torch.get_num_threads()

    before = torch.get_num_threads()
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(20)
    assert seen == {"worker": 1}
    assert torch.get_num_threads() == before  # the calling thread keeps its own setting


# --- the temp area -------------------------------------------------------------------------------------
def groove(seed: int = 9, audio: bool = True) -> Groove:
    pattern = Pattern(notes=[Note(0, 36, 100), Note(480, 38, 110)], tempo=100, bars=1)
    return Groove(pattern, pattern, pattern_to_midi_bytes(pattern), f"funk_100bpm_1bars_seed{seed}.mid", seed, {},
                  audio=np.zeros((4410, 2), dtype=np.float32) if audio else None, sample_rate=44100)


def test_stale_request_folders_are_removed_and_fresh_ones_kept() -> None:
    area = TempArea(max_age_s=60)
    old, recent = area.request_dir(), area.request_dir()
    (old / "groove.mid").write_bytes(b"MThd")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    new = area.request_dir()
    assert not old.exists() and recent.is_dir() and new.is_dir() and new.parent == area.root


def test_a_saved_groove_is_its_mp3_preview_and_a_mid_in_its_own_folder() -> None:
    area = TempArea(max_age_s=60)
    preview = b"ID3\x04" + bytes(100)
    audio_path, midi_path, notices = area.save(groove(), preview)
    assert notices == [] and Path(audio_path).parent == Path(midi_path).parent
    assert Path(midi_path).parent.parent == area.root
    assert [Path(p).name for p in (midi_path, audio_path)] == ["funk_100bpm_1bars_seed9.mid",
                                                               "funk_100bpm_1bars_seed9.mp3"]
    assert Path(audio_path).read_bytes() == preview
    assert midi_to_pattern(midi_path).notes == groove().pattern.notes
    assert area.save(groove(audio=False))[0] is None  # no preview: no audio file, never a WAV
    assert not list(area.root.glob("*/*.wav"))
    wav = area.write("funk_100bpm_1bars_seed9.wav", b"RIFF")  # a file asked for, in its own folder
    assert Path(wav).read_bytes() == b"RIFF" and Path(wav).parent.parent == area.root


def test_a_groove_that_cannot_be_saved_names_its_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    area = TempArea(max_age_s=60)

    def full() -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(area, "request_dir", full)
    with pytest.raises(SaveError) as info:
        area.save(groove(seed=41))
    assert str(info.value) == ("the groove (seed 41) was made but its MIDI file could not be saved on the server "
                               "(No space left on device); try again later with seed 41")


def test_file_lifetime_comes_from_the_environment_with_a_safe_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRUMGEN_FILES_MAX_AGE_S", "90")
    assert files_max_age() == 90
    monkeypatch.setenv("DRUMGEN_FILES_MAX_AGE_S", "ten minutes")
    assert files_max_age() == 600
    monkeypatch.delenv("DRUMGEN_FILES_MAX_AGE_S")
    assert files_max_age() == 600


# --- gradio's cache ------------------------------------------------------------------------------------
def test_the_cache_is_swept_at_most_every_minute() -> None:
    assert cache_sweep_setting(600) == (60, 600)
    assert cache_sweep_setting(120) == (30, 120)
    assert cache_sweep_setting(5) == (1, 5)


def cached_files(root: Path, n: int) -> list[str]:
    """``n`` files, each in its own folder, as gradio's cache holds them."""
    files = []
    for i in range(n):
        folder = root / f"hash{i}"
        folder.mkdir()
        (folder / "groove.wav").write_bytes(b"RIFF")
        files.append(str(folder / "groove.wav"))
    return files


def test_the_sweep_deletes_old_files_and_their_folders_but_keeps_fresh_and_kept_ones(tmp_path: Path) -> None:
    files = cached_files(tmp_path, 4)
    kept = SimpleNamespace(keep_in_cache={files[0]})
    blocks = SimpleNamespace(blocks={1: kept, 2: SimpleNamespace()}, temp_file_sets=[set(files[:2]), set(files[2:])])
    sweep_gradio_cache(blocks, age=3600)  # all younger than an hour
    assert all(Path(f).is_file() for f in files)
    Path(files[3]).unlink()  # already gone: no error
    sweep_gradio_cache(blocks, age=None)
    assert Path(files[0]).is_file() and not any(Path(f).exists() for f in files[1:])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hash0"]  # no empty folder left behind
    assert blocks.temp_file_sets == [{files[0]}, set()]


def test_the_sweep_survives_requests_adding_files_while_it_runs(tmp_path: Path) -> None:
    files: set[str] = set()
    blocks = SimpleNamespace(blocks={}, temp_file_sets=[files])

    def requests() -> None:
        for i in range(20_000):
            files.add(str(tmp_path / f"gone-{i}.wav"))

    adder = threading.Thread(target=requests)
    adder.start()
    sweeps = 0
    while adder.is_alive():  # gradio's own sweep raises "Set changed size during iteration" here
        sweep_gradio_cache(blocks, age=None)
        sweeps += 1
    adder.join()
    sweep_gradio_cache(blocks, age=None)
    assert sweeps >= 1 and files == set()


def test_installing_the_sweeper_replaces_gradios_clean_up(monkeypatch: pytest.MonkeyPatch) -> None:
    import gradio.route_utils

    own = gradio.route_utils.delete_files_created_by_app
    monkeypatch.setattr(gradio.route_utils, "delete_files_created_by_app", own)  # put back afterwards
    install_cache_sweeper()
    assert gradio.route_utils.delete_files_created_by_app is sweep


# --- jobs ----------------------------------------------------------------------------------------------
def fake_app(alive: bool = True, listening: bool = True, age_s: float = 0.0) -> tuple[Any, Any]:
    """A queued event as gradio's queue holds it, and the blocks (queue, guard) around it."""
    from drumgen.web.guard import Guard

    event = SimpleNamespace(_id="e" * 32, alive=alive, session_hash="s1", enqueue_time=time.monotonic() - age_s)
    queue = SimpleNamespace(event_ids_to_events={event._id: event}, pending_event_ids_session={},
                            pending_messages_per_session={})
    blocks = SimpleNamespace(_queue=queue)
    guard = Guard(blocks)
    if listening:
        guard.streams["s1"] = 1
    return blocks, event


def run_in_job(blocks: Any, event: Any, fn: Any) -> Any:
    """``fn`` wrapped by run_as_job and called as gradio's worker calls it (its context names the event)."""
    from gradio.context import LocalContext

    from drumgen.web.serving import run_as_job

    def worker() -> Any:
        LocalContext.blocks.set(blocks)
        LocalContext.event_id.set(event._id)
        return run_as_job(fn)()

    import contextvars
    return contextvars.copy_context().run(worker)


def test_a_job_knows_when_its_client_is_gone() -> None:
    from drumgen.web.serving import LISTEN_GRACE_S, Job

    assert Job(*fake_app()).gone() is None
    assert Job(*fake_app(alive=False)).gone() == "its client disconnected"
    blocks, event = fake_app()
    blocks._queue.event_ids_to_events.clear()  # /cancel: gradio's queue lets go of the event
    assert Job(blocks, event).gone() == "it was cancelled"
    assert Job(*fake_app(listening=False, age_s=1)).gone() is None  # its client may still open the stream
    assert "nobody read its result" in Job(*fake_app(listening=False, age_s=LISTEN_GRACE_S + 1)).gone()


def test_a_stopped_job_answers_one_line_and_leaves_no_files() -> None:
    blocks, event = fake_app()
    area = TempArea(max_age_s=60)

    def handler() -> str:
        first = area.write("a.mid", b"MThd")  # a safe point the job passes
        event.alive = False  # the client drops its stream
        area.write("b.mid", b"MThd")  # the next safe point stops it
        return first

    with pytest.raises(gr.Error) as info:
        run_in_job(blocks, event, handler)
    assert info.value.message == "the request was stopped: its client disconnected"
    assert list(area.root.iterdir()) == []  # the file written before the stop is gone too


def test_a_bug_inside_a_handler_still_stops_a_gone_job() -> None:
    """A handler's ``except Exception`` (bug -> message) does not swallow the stop."""
    blocks, event = fake_app(alive=False)
    source = EngineSource(lambda: FakeEngine())

    def handler() -> None:
        try:
            source.get()
        except Exception:  # noqa: BLE001 (what a handler does with a bug)
            pytest.fail("the stop was caught as a bug")

    with pytest.raises(gr.Error, match="its client disconnected"):
        run_in_job(blocks, event, handler)


def test_at_most_the_slots_compute_at_once_whatever_the_event() -> None:
    from drumgen.web.serving import set_compute_slots

    set_compute_slots(2)
    source = EngineSource(lambda: FakeEngine())
    running, most, lock = 0, 0, threading.Lock()

    def handler() -> None:
        nonlocal running, most
        source.get()  # takes a slot, held until the job ends
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.2)
        with lock:
            running -= 1

    apps = [fake_app() for _ in range(5)]
    threads = [threading.Thread(target=run_in_job, args=(*app, handler)) for app in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert most == 2 and running == 0


def test_a_job_engine_is_the_engine_with_checks_before_its_costly_stages() -> None:
    from drumgen.engine import Engine
    from drumgen.web.serving import JobEngine

    engine = object.__new__(Engine)
    engine.__dict__.update(marker=1)
    view = JobEngine.of(engine)
    assert isinstance(view, Engine) and view.marker == 1
    view.marker = 2
    assert engine.marker == 2  # one state, not a copy
    assert {"sample", "render", "preview"} <= set(vars(JobEngine))


def test_idle_sessions_are_forgotten_but_busy_or_connected_ones_kept() -> None:
    import datetime

    from drumgen.web.guard import Guard
    from drumgen.web.serving import expire_sessions

    old = datetime.datetime.now() - datetime.timedelta(hours=1)
    holder = SimpleNamespace(session_data={s: object() for s in "abcd"}, time_last_used=dict.fromkeys("abcd", old))
    holder.time_last_used["d"] = datetime.datetime.now()
    busy = SimpleNamespace(session_hash="b")
    queue = SimpleNamespace(event_ids_to_events={"e": busy}, pending_event_ids_session={"a": {"x"}, "z": set()},
                            pending_messages_per_session={"a": object(), "z": object()})
    blocks = SimpleNamespace(state_holder=holder, _queue=queue)
    Guard(blocks).heartbeats["c"] = 1  # an open page
    assert expire_sessions(blocks, idle_s=60) == 1
    assert sorted(holder.session_data) == ["b", "c", "d"] and sorted(holder.time_last_used) == ["b", "c", "d"]
    # "z" has no state (gradio evicted it): its unread result waits one lifetime from when it is first seen so
    assert queue.pending_event_ids_session == {"z": set()} and list(queue.pending_messages_per_session) == ["z"]
    expire_sessions(blocks, idle_s=0)
    assert queue.pending_event_ids_session == {} and queue.pending_messages_per_session == {}


def test_the_temp_area_lies_in_gradios_folder_so_gradio_serves_it_without_a_copy(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch
                                                                                 ) -> None:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    area = TempArea(max_age_s=60)
    assert area.root.parent == tmp_path / "gradio"
    from gradio.blocks import Block

    block = Block()
    midi = area.write("x.mid", b"MThd")
    assert block.move_resource_to_block_cache(midi) == midi  # handed out where it is
    assert list((tmp_path / "gradio").iterdir()) == [area.root]


def test_a_full_session_store_forgets_the_oldest_unconnected_session_first() -> None:
    from collections import OrderedDict

    from gradio.state_holder import StateHolder

    from drumgen.web.guard import Guard
    from drumgen.web.serving import install_session_eviction

    own = StateHolder.update
    try:
        install_session_eviction()
        blocks = SimpleNamespace()
        Guard(blocks).heartbeats["a"] = 1  # the oldest session is an open page
        holder = StateHolder()
        holder.blocks, holder.capacity = blocks, 2
        holder.session_data = OrderedDict((s, object()) for s in "abc")
        holder.time_last_used = dict.fromkeys("abc")
        holder.update("c")
        assert list(holder.session_data) == ["a", "c"] and sorted(holder.time_last_used) == ["a", "c"]
    finally:
        StateHolder.update = own
