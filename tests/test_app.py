"""The Gradio app through its API (gradio_client against a real server on loopback): ``/generate``
returns audio, the ``.mid`` and a summary; ``/styles`` the presets; bad input names the field.

Uses the committed checkpoint (else the tiny checkpoint that ``conftest.py`` trains) and real
FluidSynth for the audio.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import mido
import numpy as np
import pytest
from conftest import free_port, use_checkpoint

from drumgen.midi_io import midi_to_pattern
from drumgen.pattern import Note, Pattern

REPO = Path(__file__).resolve().parent.parent
TAIL_S = 1.0  # the renderer's ring-out after the last bar
LENGTH_TOLERANCE_S = 0.05


def import_app() -> ModuleType:
    """``app.py`` (imported once per session; its import loads and warms up the model)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module("app")


@pytest.fixture(scope="module")
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """``(app module, gradio_client.Client)`` for a fresh app served on a free loopback port."""
    from gradio_client import Client

    with pytest.MonkeyPatch.context() as mp:
        use_checkpoint(request, mp)
        app = import_app()
        blocks = app.build_app()
        _, url, _ = app.launch(blocks, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                               quiet=True)
        try:
            yield app, Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))
        finally:
            blocks.close()


@pytest.fixture(scope="module")
def client(served: tuple[Any, Any]) -> Any:
    return served[1]


def generate(client: Any, **params: Any) -> tuple[str | None, str, dict[str, Any]]:
    return client.predict(**params, api_name="/generate")


def test_styles_endpoint_lists_the_presets(client: Any) -> None:
    presets = client.predict(api_name="/styles")
    assert len(presets) == 15
    assert [p["id"] for p in presets[:3]] == ["j_dilla", "metro_boomin", "questlove"]
    for p in presets:
        assert {"id", "name", "description", "default_tempo", "tempo_range", "kit", "humanize"} <= p.keys()


@pytest.mark.parametrize(("style", "bars", "tempo", "kit"), [
    ("funk", 2, 120, "standard"),
    ("metro_boomin", 3, 140, "tr808"),  # half-time conditioning, odd bar count
], ids=["funk-2bars", "metro-3bars-halftime"])
def test_generate_returns_audio_midi_and_summary(client: Any, style: str, bars: int, tempo: float, kit: str) -> None:
    import soundfile

    audio_path, midi_path, summary = generate(client, style=style, bars=bars, tempo=tempo, kit=kit, seed=7,
                                              random_seed=False)
    # audio: the groove plus the ring-out tail, not silent
    assert audio_path is not None
    data, rate = soundfile.read(audio_path)
    expected = bars * 4 * 60 / tempo + TAIL_S
    assert abs(len(data) / rate - expected) < LENGTH_TOLERANCE_S
    assert float(np.sqrt(np.mean(np.square(data)))) > 1e-3
    # MIDI: a drum file (channel 10) of the asked bars and tempo, named by what it holds
    midi = Path(midi_path).read_bytes()
    assert Path(midi_path).name == summary["file"] == f"{style}_{tempo}bpm_{bars}bars_seed7.mid"
    pattern = midi_to_pattern(midi)
    assert pattern.bars == bars and pattern.tempo == pytest.approx(tempo, abs=0.01) and pattern.notes
    notes = [m for track in mido.MidiFile(midi_path).tracks for m in track if m.type in ("note_on", "note_off")]
    assert notes and all(m.channel == 9 for m in notes)
    # summary: what was asked and what was used
    assert summary["style"] == style and summary["tempo"] == tempo and summary["bars"] == bars
    assert summary["seed"] == 7 and summary["settings"]["kit"] == kit
    assert summary["model_version"].startswith(f"{style}_v")
    assert {"swing", "offset_ms", "ghost_share", "hits_per_bar"} <= summary["feel"].keys()


def test_same_seed_gives_identical_midi(client: Any) -> None:
    params = dict(style="j_dilla", bars=2, tempo=90, seed=1234, random_seed=False)
    first, second = generate(client, **params), generate(client, **params)
    assert Path(first[1]).read_bytes() == Path(second[1]).read_bytes()
    other = generate(client, **{**params, "seed": 1235})
    assert Path(other[1]).read_bytes() != Path(first[1]).read_bytes()


def test_random_seed_is_reported(client: Any) -> None:
    _, midi_path, summary = generate(client, style="rock", bars=1, seed=5, random_seed=True)
    assert isinstance(summary["seed"], int) and f"seed{summary['seed']}.mid" in midi_path


def test_controls_reach_the_groove(client: Any) -> None:
    _, _, summary = generate(client, style="j_dilla", bars=4, humanize=50, swing_override=True, swing=70,
                             fill_every=2, kit="brush", temperature=0.5, top_k=10, top_p=0.8, seed=3,
                             random_seed=False)
    settings = summary["settings"]
    assert settings == {**settings, "humanize": 0.5, "swing": 70, "fill_every": 2, "kit": "brush",
                        "temperature": 0.5, "top_k": 10, "top_p": 0.8}
    _, _, plain = generate(client, style="j_dilla", bars=1, swing_override=False, swing=70, seed=3,
                           random_seed=False)
    assert plain["settings"]["swing"] == 62  # the preset's swing when not overridden


@pytest.mark.parametrize(("params", "field"), [
    ({"tempo": 999}, "tempo"),
    ({"style": "no_such_style"}, "style"),
    ({"bars": 0}, "bars"),
    ({"bars": 40}, "bars"),
    ({"kit": "cowbell"}, "kit"),
    ({"humanize": 150}, "humanize"),
    ({"swing_override": True, "swing": 90}, "swing"),
    ({"fill_every": 3}, "fill_every"),
    ({"seed": -1, "random_seed": False}, "seed"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_input_names_the_field(client: Any, params: dict[str, Any], field: str) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=rf"\b{field}\b") as info:
        generate(client, **{"style": "funk", "bars": 1, **params})
    assert any(ch.isdigit() for ch in str(info.value)) or "valid styles" in str(info.value)  # says what is allowed


def test_audio_failure_still_returns_the_midi(served: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from drumgen import pipeline
    from drumgen.audio import AudioUnavailableError

    def broken(*args: Any, **kwargs: Any) -> None:
        raise AudioUnavailableError("no libfluidsynth here")

    monkeypatch.setattr(pipeline, "render_audio", broken)  # the server runs in this process
    audio_path, midi_path, summary = generate(served[1], style="funk", bars=1, seed=1, random_seed=False)
    assert audio_path is None
    assert midi_to_pattern(Path(midi_path).read_bytes()).bars == 1
    assert summary["notices"] and "MIDI file is fine" in summary["notices"][0]


def test_drum_grid_and_feel_readout() -> None:
    from drumgen.ui import drum_grid_svg, feel_html

    pattern = Pattern(notes=[Note(0, 36, 110), Note(120, 38, 25), Note(480, 42, 80)], tempo=100, bars=2)
    svg = drum_grid_svg(pattern)
    assert svg.count("<circle") == 1 and svg.count('rx="2.5"') == 2  # one ghost ring, two solid hits
    assert "Kick" in svg and "Snare" in svg and "Hi-hat" in svg and "Ride" not in svg
    feel = feel_html({"feel": {"swing": 61.6, "offset_ms": {"kick": -4.2, "snare": 9.0}, "mean_abs_offset_ms": 12.0,
                               "ghost_share": 0.33, "hits_per_bar": 1.5}, "settings": {"swing": 62.0}})
    assert "62 %" in feel and "33 %" in feel and "-4.2 ms" in feel and "+9.0 ms" in feel
