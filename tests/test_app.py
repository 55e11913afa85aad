"""The Gradio app through its API (gradio_client against a real server on loopback): ``/generate``
returns audio, the ``.mid`` and a summary; ``/styles`` the presets; the controls reach the MIDI and
the audio; values left out of an API call are the style's own. Importing ``app`` does no work.

Uses the committed checkpoint (else the tiny checkpoint that ``conftest.py`` trains) and real
FluidSynth for the audio. Bad input through the API is in ``test_reliability_api.py``.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pytest
from app_fixtures import REPO, REQUEST_TIMEOUT_S, Served, client, generate, served  # noqa: F401 (fixtures)

from drumgen.humanize import swing_offset_ticks
from drumgen.midi_io import midi_to_pattern
from drumgen.pattern import PPQ, Note, Pattern
from drumgen.voices import PITCH_TO_VOICE

LENGTH_TOLERANCE_S = 0.05
MAX_PREVIEW_BYTES_PER_BAR = 250_000 // 4  # a 4-bar preview loads at once: at most 250 KB
T16 = PPQ // 4
FILL_VOICES = {"high_tom", "mid_tom", "low_tom", "crash"}


def pattern_of(midi_path: str) -> Pattern:
    return midi_to_pattern(Path(midi_path).read_bytes())


def bar_cells(pattern: Pattern) -> list[set[tuple[int, int, int]]]:
    """Each bar's hits as ``(tick in the bar, pitch, velocity)``."""
    bars: list[set[tuple[int, int, int]]] = [set() for _ in range(pattern.bars)]
    for n in pattern.notes:
        bar, tick = divmod(n.onset, pattern.ticks_per_bar)
        bars[bar].add((tick, n.pitch, n.velocity))
    return bars


def test_styles_endpoint_lists_the_presets(client: Any) -> None:  # noqa: F811
    presets = client.predict(api_name="/styles")
    assert len(presets) == 15
    assert [p["id"] for p in presets[:3]] == ["j_dilla", "metro_boomin", "questlove"]
    for p in presets:
        assert {"id", "name", "description", "default_tempo", "tempo_range", "kit", "humanize", "fill_every",
                "temperature", "top_k", "top_p", "variation"} <= p.keys()


@pytest.mark.parametrize(("style", "bars", "tempo", "kit"), [
    ("funk", 2, 120, "standard"),
    ("metro_boomin", 3, 140, "tr808"),  # half-time conditioning, odd bar count
], ids=["funk-2bars", "metro-3bars-halftime"])
def test_generate_returns_audio_midi_and_summary(client: Any, style: str, bars: int, tempo: float,  # noqa: F811
                                                 kit: str) -> None:
    import soundfile

    audio_path, midi_path, summary = generate(client, style=style, bars=bars, tempo=tempo, kit=kit, seed=7,
                                              random_seed=False)
    # audio: the small MP3 preview, exactly one loop long (the ring-out folded onto its start), not silent
    assert audio_path is not None and Path(audio_path).name == summary["preview"] == Path(summary["file"]).stem + ".mp3"
    head = Path(audio_path).read_bytes()[:3]
    assert head == b"ID3" or (head[0] == 0xFF and head[1] & 0xE0 == 0xE0)  # an ID3 tag or an MPEG frame sync
    data, rate = soundfile.read(audio_path)
    expected = bars * 4 * 60 / tempo
    assert abs(len(data) / rate - expected) < LENGTH_TOLERANCE_S
    assert float(np.sqrt(np.mean(np.square(data)))) > 1e-3
    assert Path(audio_path).stat().st_size < MAX_PREVIEW_BYTES_PER_BAR * bars
    # MIDI: a drum file (channel 10) of the asked bars and tempo, named by what it holds
    assert Path(midi_path).name == summary["file"] == f"{style}_{tempo}bpm_{bars}bars_seed7.mid"
    pattern = pattern_of(midi_path)
    assert pattern.bars == bars and pattern.tempo == pytest.approx(tempo, abs=0.01) and pattern.notes
    notes = [m for track in mido.MidiFile(midi_path).tracks for m in track if m.type in ("note_on", "note_off")]
    assert notes and all(m.channel == 9 for m in notes)
    # summary: what was asked and what was used
    assert summary["style"] == style and summary["tempo"] == tempo and summary["bars"] == bars
    assert summary["seed"] == 7 and summary["settings"]["kit"] == kit
    assert summary["notes"] == len(pattern.notes)
    assert summary["model_version"].startswith(f"{style}_v")
    assert {"swing", "offset_ms", "ghost_share", "hits_per_bar"} <= summary["feel"].keys()


def test_same_seed_gives_identical_midi(client: Any) -> None:  # noqa: F811
    params = dict(style="j_dilla", bars=2, tempo=90, seed=1234, random_seed=False)
    first, second = generate(client, **params), generate(client, **params)
    assert Path(first[1]).read_bytes() == Path(second[1]).read_bytes()
    other = generate(client, **{**params, "seed": 1235})
    assert Path(other[1]).read_bytes() != Path(first[1]).read_bytes()


def test_random_seed_is_reported(client: Any) -> None:  # noqa: F811
    _, midi_path, summary = generate(client, style="rock", bars=1, seed=5, random_seed=True)
    assert isinstance(summary["seed"], int) and f"seed{summary['seed']}.mid" in midi_path


def test_a_given_seed_is_used_and_a_left_out_one_is_random(client: Any) -> None:  # noqa: F811
    """An API caller who passes only ``seed`` gets that seed (the page's "Random seed" box starts
    ticked, the API's does not); one who passes none gets a fresh random seed each call."""
    assert generate(client, style="rock", bars=1, seed=123)[2]["seed"] == 123
    seeds = {generate(client, style="rock", bars=1)[2]["seed"] for _ in range(3)}
    assert len(seeds) == 3


# --- the controls reach the groove ----------------------------------------------------------------
def test_swing_moves_the_off_beat_16ths_later(client: Any) -> None:  # noqa: F811
    """The same seed at swing 50 and 70: the same hits, the off-beat 16ths played later by the
    swing's offset (70 % of an 8th instead of 50 %), every other hit where it was."""
    common = dict(style="j_dilla", bars=4, swing_override=True, seed=3, random_seed=False)
    straight = pattern_of(generate(client, **common, swing=50)[1])
    _, swung_path, summary = generate(client, **common, swing=70)
    swung = pattern_of(swung_path)
    assert summary["settings"]["swing"] == 70
    shift = swing_offset_ticks(70) - swing_offset_ticks(50)  # 48 ticks at 480 PPQ

    def onsets(p: Pattern) -> dict[int, list[int]]:
        out: dict[int, list[int]] = defaultdict(list)
        for n in p.notes:
            out[n.pitch].append(n.onset)
        return out

    before, after = onsets(straight), onsets(swung)
    assert {p: len(v) for p, v in before.items()} == {p: len(v) for p, v in after.items()}  # the same hits
    moves = [(x, y - x) for p in before for x, y in zip(before[p], after[p], strict=True)]
    later = [x for x, d in moves if abs(d - shift) <= 2]
    still = [x for x, d in moves if abs(d) <= 2]
    assert len(later) >= 4 and len(later) + len(still) >= 0.9 * len(moves), moves
    assert all(round(x / T16) % 2 == 1 for x in later)  # only off-beat 16ths moved
    assert any(round(x / T16) % 2 == 0 for x in still)  # on-beat hits stayed


def test_fills_break_the_loop_with_toms_and_crashes(client: Any) -> None:  # noqa: F811
    """On the grid and looping exactly (humanize 0, variation 0): fills off, every bar repeats the
    first; fills every 2 bars, bars 2 and 4 are fills that differ from the looping bars 1 and 3
    and, over a few seeds, hold more toms and crashes than they do; bar 3 is bar 1 again once the
    fill has landed on a crash on its downbeat."""

    def landed(bar: set[tuple[int, int, int]]) -> set[tuple[int, int, int]]:  # without its downbeat crash
        return {h for h in bar if not (h[0] == 0 and PITCH_TO_VOICE.get(h[1]) == "crash")}

    common = dict(style="rock", bars=4, humanize=0, variation=0, random_seed=False)
    fill_hits = beat_hits = 0
    for seed in (1, 2, 3):
        no_fills = bar_cells(pattern_of(generate(client, **common, fill_every=0, seed=seed)[1]))
        assert all(bar == no_fills[0] for bar in no_fills), seed
        _, midi_path, summary = generate(client, **common, fill_every=2, seed=seed)
        bars = bar_cells(pattern_of(midi_path))
        assert summary["settings"]["fill_every"] == 2
        assert landed(bars[2]) == landed(bars[0]) and bars[1] != bars[0] and bars[3] != bars[0], seed
        assert any(t == 0 and PITCH_TO_VOICE.get(p) == "crash" for t, p, _ in bars[2]), seed  # the fill lands
        count = [sum(PITCH_TO_VOICE.get(pitch) in FILL_VOICES for _, pitch, _ in bar) for bar in bars]
        fill_hits += count[1] + count[3]
        beat_hits += count[0] + count[2]
    assert fill_hits > beat_hits


def test_kit_changes_the_audio_not_the_midi(client: Any) -> None:  # noqa: F811
    import soundfile

    common = dict(style="funk", bars=2, seed=11, random_seed=False)
    standard_audio, standard_midi, _ = generate(client, **common, kit="standard")
    tr808_audio, tr808_midi, summary = generate(client, **common, kit="tr808")
    assert summary["settings"]["kit"] == "tr808"
    assert pattern_of(tr808_midi).notes == pattern_of(standard_midi).notes
    a, _ = soundfile.read(standard_audio)
    b, _ = soundfile.read(tr808_audio)
    assert a.shape == b.shape
    rms = float(np.sqrt(np.mean(np.square(a))))
    assert float(np.sqrt(np.mean(np.square(a - b)))) > 0.2 * rms  # audibly another kit


def test_sampling_and_humanize_controls_are_used(client: Any) -> None:  # noqa: F811
    _, midi_path, summary = generate(client, style="j_dilla", bars=2, humanize=50, temperature=0.5, top_k=10,
                                     top_p=0.8, variation=40, seed=3, random_seed=False)
    assert summary["settings"] == {**summary["settings"], "humanize": 0.5, "temperature": 0.5, "top_k": 10,
                                   "top_p": 0.8, "variation": 0.4}
    grid = generate(client, style="j_dilla", bars=2, humanize=0, seed=3, random_seed=False)[1]
    assert all(n.onset % T16 == 0 for n in pattern_of(grid).notes)  # humanize 0: every hit on the grid
    assert any(n.onset % T16 for n in pattern_of(midi_path).notes)
    _, _, plain = generate(client, style="j_dilla", bars=1, swing_override=False, swing=70, seed=3,
                           random_seed=False)
    assert plain["settings"]["swing"] == 62  # the preset's swing when not overridden


# --- left-out values are the style's own ------------------------------------------------------------
@pytest.mark.parametrize("style", ["rock", "metro_boomin"])
def test_left_out_values_are_the_styles_own(client: Any, style: str) -> None:  # noqa: F811
    preset = next(p for p in client.predict(api_name="/styles") if p["id"] == style)
    _, midi_path, summary = generate(client, style=style, bars=2, seed=2, random_seed=False)
    assert summary["tempo"] == preset["default_tempo"]
    assert pattern_of(midi_path).tempo == pytest.approx(preset["default_tempo"], abs=0.01)
    settings = summary["settings"]
    assert settings == {**settings, "kit": preset["kit"], "fill_every": preset["fill_every"],
                        "temperature": preset["temperature"], "top_k": preset["top_k"], "top_p": preset["top_p"],
                        "variation": preset["variation"], "swing": preset["humanize"]["swing"], "humanize": 1.0}


def test_rock_without_tempo_or_fills_plays_at_110_with_fills_every_8(client: Any) -> None:  # noqa: F811
    _, midi_path, summary = generate(client, style="rock", bars=8, seed=4, random_seed=False)
    assert summary["tempo"] == 110 and summary["settings"]["fill_every"] == 8
    assert Path(midi_path).name == "rock_110bpm_8bars_seed4.mid"
    given = generate(client, style="rock", bars=8, tempo=110, fill_every=8, seed=4, random_seed=False)[1]
    assert Path(given).read_bytes() == Path(midi_path).read_bytes()  # the same as asking for them


def test_variation_zero_repeats_the_first_phrase(client: Any) -> None:  # noqa: F811
    common = dict(style="funk", bars=4, humanize=0, fill_every=0, random_seed=False)
    free_bars_differ = False
    for seed in (5, 6, 7):
        looped = bar_cells(pattern_of(generate(client, **common, variation=0, seed=seed)[1]))
        assert looped[2:4] == looped[0:2] and looped[0], seed
        free = bar_cells(pattern_of(generate(client, **common, variation=100, seed=seed)[1]))
        free_bars_differ |= free[2:4] != free[0:2]
    assert free_bars_differ  # the repeat comes from variation 0, not from the model alone


# --- the page's own pieces ----------------------------------------------------------------------------
def test_audio_failure_still_returns_the_midi(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from drumgen import engine
    from drumgen.audio import AudioUnavailableError

    def broken(*args: Any, **kwargs: Any) -> None:
        raise AudioUnavailableError("no libfluidsynth here")

    monkeypatch.setattr(engine, "render_audio", broken)  # the server runs in this process
    audio_path, midi_path, summary = generate(client, style="funk", bars=1, seed=1, random_seed=False)
    assert audio_path is None
    assert pattern_of(midi_path).bars == 1
    assert summary["notices"] and "MIDI file is fine" in summary["notices"][0]


def test_drum_grid_and_feel_readout() -> None:
    from drumgen.web.ui import drum_grid_svg, feel_html

    pattern = Pattern(notes=[Note(0, 36, 110), Note(120, 38, 25), Note(480, 42, 80)], tempo=100, bars=2)
    svg = drum_grid_svg(pattern)
    assert svg.count("<circle") == 1 and svg.count('rx="2.5"') == 2  # one ghost ring, two solid hits
    assert "Kick" in svg and "Snare" in svg and "Hi-hat" in svg and "Ride" not in svg
    feel = feel_html({"feel": {"swing": 61.6, "offset_ms": {"kick": -4.2, "snare": 9.0}, "mean_abs_offset_ms": 12.0,
                               "ghost_share": 0.33, "hits_per_bar": 1.5}, "settings": {"swing": 60.0}})
    assert '<div class="feel-value">62 %</div>' in feel  # the measured swing, rounded
    assert '<div class="feel-hint">asked 60 %</div>' in feel
    assert '<div class="feel-value">33 %</div>' in feel and "-4.2 ms" in feel and "+9.0 ms" in feel
    straight = feel_html({"feel": {"swing": None}, "settings": {"swing": 50.0}})
    assert '<div class="feel-value">straight</div>' in straight


def test_a_named_input_keeps_its_check_when_gradio_rebuilds_it() -> None:
    """Gradio rebuilds a component from its constructor arguments whenever an event updates one of
    its properties (the swing slider's ``interactive`` toggle, an example's load); the rebuilt one
    still checks its field and names it."""
    import gradio as gr

    from drumgen.limits import KIT, SWING, TEMPO, ChoiceLimit
    from drumgen.web.ui import NamedDropdown, NamedNumber, NamedSlider, StrictCheckbox

    def rebuilt(component: Any, **update: Any) -> Any:  # what gradio does with a property update
        return type(component)(**{**component.constructor_args, **update, "render": False})

    swing = rebuilt(NamedSlider.of(SWING, value=62, label="Swing (%)", interactive=False), interactive=True)
    tempo = rebuilt(NamedNumber.of(TEMPO, value=None, label="tempo"))
    kit = rebuilt(NamedDropdown.of(KIT, choices=[(k, k) for k in KIT.choices], value="standard", label="Kit"))
    style = rebuilt(NamedDropdown.of(ChoiceLimit("style", ("j_dilla",)), resolve=lambda name: "j_dilla",
                                     choices=[("J Dilla", "j_dilla")], value="j_dilla"), label="Style")
    random_seed = rebuilt(StrictCheckbox.of("random_seed", value=True), value=False)
    assert (swing.preprocess(70), tempo.preprocess(None), kit.preprocess("TR808"), style.preprocess("J Dilla"),
            random_seed.preprocess(False)) == (70.0, None, "tr808", "j_dilla", False)
    for component, bad, message in [
        (swing, 90, "swing must be a number from 50 to 75 %, got 90"),
        (tempo, 999, "tempo must be a number from 40 to 300 BPM, got 999"),
        (kit, "cowbell", "kit must be one of"),
        (random_seed, "false", "random_seed must be true or false, got 'false'"),
    ]:
        with pytest.raises(gr.Error) as info:
            component.preprocess(bad)
        assert info.value.message.startswith(message)


def test_importing_the_app_does_no_work(tmp_path: Path) -> None:
    """``import app`` loads no model (not even an absent one), writes nothing to the temp folder,
    makes no gradio temp folder and leaves gradio's own functions in place."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    missing = tmp_path / "no_model" / "drumgen.pt"
    probe = (
        "import sys\n"
        "opened = []\n"
        "sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == 'open' else None)\n"
        "import gradio.route_utils as ru\n"
        "sweeper = ru.delete_files_created_by_app\n"
        "import app\n"
        "assert ru.delete_files_created_by_app is sweeper, 'gradio patched at import'\n"
        "models = [p for p in opened if p.endswith('.pt') or p == sys.argv[1] or 'checkpoints/' in p]\n"
        "assert not models, models\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp), "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
           "DRUMGEN_CHECKPOINT": str(missing), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", probe, str(missing)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "" and done.stderr == ""  # silent: no warm-up, no "model not found"
    assert list(tmp.iterdir()) == []
    assert not (tmp_path / "gradio").exists()


# --- into the DAW: drum maps, a track per piece, several variations per click ---------------------------
def test_drum_map_and_split_tracks_reach_the_midi(client: Any) -> None:  # noqa: F811
    """The same groove exported for EZdrummer 3, one track per kit piece: only the map's notes, every
    track on channel 10 and named for its piece, the hits at the GM groove's times."""
    from drumgen.drum_maps import get_drum_map
    from drumgen.midi_io import PIECE_OF_VOICE

    common = dict(style="funk", bars=2, seed=21, random_seed=False)
    _, gm_path, _ = generate(client, **common)
    audio_path, midi_path, summary = generate(client, **common, drum_map="ezdrummer_3", split_tracks=True)
    target = get_drum_map("ezdrummer_3")
    assert Path(midi_path).name == "funk_100bpm_2bars_seed21_ezdrummer_3.mid" == summary["file"]
    assert (summary["settings"]["drum_map"], summary["settings"]["split_tracks"]) == ("ezdrummer_3", True)
    midi = mido.MidiFile(midi_path)
    drums = midi.tracks[1:]
    names = [next(m.name for m in t if m.type == "track_name") for t in drums]
    gm = pattern_of(gm_path)
    assert len(drums) == len(set(names)) > 1
    assert set(names) == {PIECE_OF_VOICE[PITCH_TO_VOICE[n.pitch]] for n in gm.notes}
    ons = [m for t in drums for m in t if m.type == "note_on" and m.velocity > 0]
    assert {m.note for m in ons} <= target.notes and all(m.channel == 9 for m in ons)
    onsets = sorted(tick for t in drums for tick in _onset_ticks(t))
    assert onsets == sorted(n.onset for n in gm.notes)  # the same hits, in the instrument's notes
    assert audio_path is not None  # the preview plays from GM whatever the export


def _onset_ticks(track: mido.MidiTrack) -> list[int]:
    now, out = 0, []
    for m in track:
        now += m.time
        if m.type == "note_on" and m.velocity > 0:
            out.append(now)
    return out


def test_generate_variations_returns_every_variation_and_one_zip(client: Any) -> None:  # noqa: F811
    """Four variations in one call: seeds seed..seed+3, each the groove /generate makes with its seed;
    the zip holds each one's .mid and looping .mp3 under the names the summaries give; the same call
    gives the same bytes."""
    import zipfile

    import soundfile

    params = dict(style="j_dilla", bars=2, seed=30, random_seed=False, variations=4)
    preview, midi_path, summary, zip_path = client.submit(**params, api_name="/generate_variations").result(
        timeout=REQUEST_TIMEOUT_S)
    variations = summary["variations"]
    assert [v["seed"] for v in variations] == [30, 31, 32, 33] and summary["seed"] == 30
    assert Path(midi_path).name == variations[0]["file"] and Path(preview).name == variations[0]["preview"]
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        assert names == [name for v in variations for name in (v["file"], v["preview"])]
        files = {name: archive.read(name) for name in names}
    assert Path(zip_path).name == "j_dilla_90bpm_2bars_seed30_4variations.zip"
    for v in variations:
        one = generate(client, style="j_dilla", bars=2, seed=v["seed"], random_seed=False)
        assert files[v["file"]] == Path(one[1]).read_bytes()
        data, rate = soundfile.read(io.BytesIO(files[v["preview"]]))
        assert abs(len(data) / rate - 2 * 4 * 60 / 90) < LENGTH_TOLERANCE_S
    assert len({files[v["file"]] for v in variations}) == 4  # four different grooves
    again = client.submit(**params, api_name="/generate_variations").result(timeout=REQUEST_TIMEOUT_S)
    with zipfile.ZipFile(again[3]) as archive:  # the MIDI again byte for byte (audio is not promised so)
        assert archive.namelist() == names
        assert all(archive.read(n) == files[n] for n in names if n.endswith(".mid"))
