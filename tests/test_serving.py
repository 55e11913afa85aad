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
    assert gradio.route_utils.delete_files_created_by_app is sweep_gradio_cache
