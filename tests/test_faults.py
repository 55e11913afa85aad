"""Faults: what a user gets when a part of the machine is missing or broken.

- checkpoint missing or corrupt at start-up: ``app.py`` (a real subprocess) still starts, its page
  shows one line naming the problem and the fix (``python -m drumgen train ...``), every request
  gets that line as its error, and the log has it once, with no traceback and no secret from the
  environment;
- SoundFont missing (``DRUMGEN_SOUNDFONT=/nonexistent``) or libfluidsynth missing: the MIDI still
  arrives, with a notice saying why there is no audio (API and CLI);
- temp space full or read-only: the MIDI still arrives when only the audio cannot be saved; when
  even the MIDI cannot be saved the error says so and gives the seed; the app keeps serving;
- a GPU out-of-memory while generating or loading falls back to the CPU with a logged warning;
- a checkpoint put in place while the app runs is picked up by the next request (no restart).
"""

from __future__ import annotations

import errno
import json
import logging
import pathlib
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import torch
from app_fixtures import REQUEST_TIMEOUT_S, Served, serve, served  # noqa: F401 (the module-scoped app fixture)
from conftest import use_checkpoint

from drumgen import audio, engine, model_loader
from drumgen.audio import INSTALL_HINT, AudioUnavailableError
from drumgen.engine import Engine
from drumgen.midi_io import midi_to_pattern
from drumgen.request import GenerateRequest
from drumgen.tools.loadtest import AppProcess

SECRET = "hf_sentinel_do_not_log_0123456789"
TRAIN_FIX = "python -m drumgen train"


@pytest.fixture(scope="module", autouse=True)
def checkpoint(request: pytest.FixtureRequest) -> None:
    """A working checkpoint for the in-process tests (the start-up test passes its own broken one)."""
    with pytest.MonkeyPatch.context() as mp:
        use_checkpoint(request, mp)
        yield


def generate(client: Any, **params: Any) -> tuple[str | None, str, dict[str, Any]]:
    job = client.submit(**{"style": "funk", "bars": 1, "seed": 3, "random_seed": False, **params},
                        api_name="/generate")
    return job.result(timeout=REQUEST_TIMEOUT_S)


# --- start-up without a usable model ------------------------------------------------------------------
@pytest.fixture(params=["missing", "corrupt"])
def broken_checkpoint(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """``(checkpoint path, a phrase the error must hold)``: no file, or a file of garbage beside a tokenizer."""
    path = tmp_path / "ckpt" / "drumgen.pt"
    if request.param == "corrupt":
        path.parent.mkdir()
        path.write_bytes(b"PK\x03\x04 this is not a torch checkpoint" * 10)
        (path.parent / "tokenizer.json").write_text("{}")
        return path, "corrupt"
    return path, "does not exist"


def test_app_starts_without_a_model_and_says_how_to_fix_it(broken_checkpoint: tuple[Path, str]) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    path, problem = broken_checkpoint
    with AppProcess(env={"DRUMGEN_CHECKPOINT": str(path), "HF_TOKEN": SECRET, "API_SECRET": SECRET}) as app:
        with urllib.request.urlopen(app.url + "config", timeout=10) as response:
            page = response.read().decode()
        banner = next(line for line in json.loads(page)["components"]
                      if "Model not loaded" in str(line.get("props", {}).get("value", "")))["props"]["value"]
        assert str(path) in banner and problem in banner and TRAIN_FIX in banner
        client = Client(app.url, verbose=False)
        for _ in range(2):  # every request, not just the first, says what is wrong
            with pytest.raises(AppError) as info:
                generate(client)
            message = str(info.value)
            assert "model is not available" in message and problem in message and TRAIN_FIX in message
            assert "\n" not in message
        styles = client.predict(api_name="/styles")  # the rest of the app still works
        assert len(styles) >= 3
    log = app.log_text  # start-up to shut-down
    assert log.count("warm-up failed") == 1 and TRAIN_FIX in log
    assert "Traceback" not in log
    assert SECRET not in log and SECRET not in page


# --- audio unavailable --------------------------------------------------------------------------------
def test_missing_soundfont_still_gives_the_midi_with_a_notice(served: Served,  # noqa: F811
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRUMGEN_SOUNDFONT", "/nonexistent/kit.sf2")
    audio_path, midi_path, summary = generate(served.client, bars=2)
    assert audio_path is None
    assert midi_to_pattern(Path(midi_path).read_bytes()).bars == 2
    assert len(summary["notices"]) == 1
    assert "DRUMGEN_SOUNDFONT" in summary["notices"][0] and "/nonexistent/kit.sf2" in summary["notices"][0]
    assert "MIDI file is fine" in summary["notices"][0]


def test_corrupt_soundfont_still_gives_the_midi_with_a_notice(served: Served,  # noqa: F811
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    corrupt = tmp_path / "broken.sf2"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00sfbk not a soundfont")
    monkeypatch.setenv("DRUMGEN_SOUNDFONT", str(corrupt))
    audio_path, midi_path, summary = generate(served.client, bars=2)
    assert audio_path is None
    assert midi_to_pattern(Path(midi_path).read_bytes()).bars == 2
    assert "could not load the SoundFont" in summary["notices"][0] and "MIDI file is fine" in summary["notices"][0]


def no_fluidsynth() -> None:
    raise AudioUnavailableError(f"{INSTALL_HINT} (OSError: libfluidsynth.so.3: cannot open shared object file)")


def test_missing_libfluidsynth_still_gives_the_midi_with_a_notice(served: Served,  # noqa: F811
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio, "_load_fluidsynth", no_fluidsynth)
    audio_path, midi_path, summary = generate(served.client)
    assert audio_path is None and midi_to_pattern(Path(midi_path).read_bytes()).bars == 1
    assert "libfluidsynth" in summary["notices"][0] and "apt-get install" in summary["notices"][0]


def test_cli_without_fluidsynth_writes_the_midi_and_reports_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from drumgen.cli import main

    monkeypatch.setattr(audio, "_load_fluidsynth", no_fluidsynth)
    assert main(["generate", "--style", "funk", "--bars", "1", "--seed", "3", "--out", str(tmp_path)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert "libfluidsynth" in line["audio_error"] and "audio" not in line
    assert [p.name for p in tmp_path.iterdir()] == [Path(line["midi"]).name]


# --- temp space full or read-only ---------------------------------------------------------------------
def test_full_disk_for_audio_still_gives_the_midi(served: Served,  # noqa: F811
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    original = pathlib.Path.write_bytes

    def full(self: Path, data: bytes) -> int:
        if self.suffix == ".mp3" and served.temp.root in self.parents:  # the app's preview, not the MIDI
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full)
    audio_path, midi_path, summary = generate(served.client)
    assert audio_path is None and midi_to_pattern(Path(midi_path).read_bytes()).bars == 1
    assert "No space left on device" in summary["notices"][0] and "MIDI file is fine" in summary["notices"][0]


@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_when_not_even_the_midi_can_be_saved_the_error_says_so(served: Served,  # noqa: F811
                                                               monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    from gradio_client.exceptions import AppError

    client, root = served.client, served.temp.root
    if fault == "read-only":
        def read_only() -> Path:
            raise OSError(errno.EROFS, "Read-only file system", str(root))

        monkeypatch.setattr(served.temp, "request_dir", read_only)
    else:
        original = pathlib.Path.write_bytes

        def write_bytes(self: Path, data: bytes) -> int:
            if root in self.parents:
                raise OSError(errno.ENOSPC, "No space left on device")
            return original(self, data)

        monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)
    with pytest.raises(AppError) as info:
        generate(client, seed=77)
    message = str(info.value)
    assert "could not be saved" in message and "seed 77" in message
    assert ("Read-only file system" if fault == "read-only" else "No space left on device") in message
    monkeypatch.undo()  # space is back: the app serves again
    _, midi_path, summary = generate(client, seed=77)
    assert summary["seed"] == 77 and Path(midi_path).is_file()


def test_cli_out_of_space_keeps_the_midi_or_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from drumgen.cli import main

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(engine, "write_audio", full)  # what write_groove calls
    assert main(["generate", "--style", "funk", "--bars", "1", "--seed", "3", "--out", str(tmp_path)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert "No space left on device" in line["audio_error"] and Path(line["midi"]).is_file()
    monkeypatch.setattr(pathlib.Path, "write_bytes", full)
    assert main(["generate", "--style", "funk", "--bars", "1", "--out", str(tmp_path / "again")]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.strip() == "error: [Errno 28] No space left on device"


# --- GPU out of memory --------------------------------------------------------------------------------
def test_gpu_out_of_memory_while_generating_falls_back_to_the_cpu(monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    devices: list[str] = []
    original = engine.sample_tokens

    def sample_tokens(model: Any, *args: Any, **kwargs: Any) -> Any:
        devices.append(next(model.parameters()).device.type)
        if len(devices) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(model, *args, **kwargs)

    drums = Engine.load()
    request = GenerateRequest(style="funk", bars=2, seed=5, audio=False)
    monkeypatch.setattr(engine, "sample_tokens", sample_tokens)
    with caplog.at_level(logging.WARNING, logger="drumgen.engine"):
        grooves = drums.generate(request)
    assert len(devices) == 2 and devices[1] == "cpu"  # tried once, then again on the CPU
    assert grooves[0].pattern.bars == 2 and grooves[0].pattern.notes
    assert any("out of memory" in r.getMessage() and "CPU" in r.getMessage() for r in caplog.records)
    monkeypatch.undo()
    assert drums.generate(request)[0].midi == grooves[0].midi  # the same groove as without the fault


def test_gpu_out_of_memory_while_loading_falls_back_to_the_cpu(monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    from drumgen.model import DrumPatternTransformer
    from drumgen.styles import get_model_path

    original_to = DrumPatternTransformer.to

    def to(self: Any, *args: Any, **kwargs: Any) -> Any:
        if "cuda" in str(args[0] if args else kwargs.get("device")):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return original_to(self, *args, **kwargs)

    def clear() -> None:  # do not leave this model cached for other tests
        model_loader.load_model.cache_clear()
        model_loader._load_checkpoint.cache_clear()

    monkeypatch.setattr(model_loader, "pick_device", lambda device=None: torch.device("cuda"))
    monkeypatch.setattr(DrumPatternTransformer, "to", to)
    clear()
    try:
        with caplog.at_level(logging.WARNING, logger="drumgen.model_loader"), pytest.warns(RuntimeWarning):
            model, _ = model_loader.load_model(str(get_model_path("funk")), "cuda:0")
    finally:
        clear()
    assert next(model.parameters()).device.type == "cpu"
    assert any("out of memory" in r.getMessage() for r in caplog.records)


# --- a model that arrives later -----------------------------------------------------------------------
def test_a_checkpoint_put_in_place_is_used_without_a_restart(tmp_path: Path) -> None:
    """Started without a model, the app says so; once the checkpoint is there, the next request gets a groove."""
    from gradio_client.exceptions import AppError

    from drumgen.styles import shared_checkpoint

    real = shared_checkpoint()
    folder = tmp_path / "later"
    late = serve(lambda: Engine.load(folder / real.name))
    try:
        assert late.startup_error and str(folder / real.name) in late.startup_error
        with pytest.raises(AppError, match="model is not available"):
            generate(late.client)
        folder.mkdir()
        for name in (real.name, "tokenizer.json", "metadata.json"):
            if (real.parent / name).is_file():
                shutil.copyfile(real.parent / name, folder / name)
        _, midi_path, summary = generate(late.client, bars=2)
        assert summary["seed"] == 3 and midi_to_pattern(Path(midi_path).read_bytes()).bars == 2
    finally:
        late.blocks.close()
