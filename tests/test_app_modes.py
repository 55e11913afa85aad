"""Bring your own MIDI through the API: ``/humanize``, ``/continue``, ``/reroll`` and ``/drumify`` with
gradio_client against a live app (the file sent with ``handle_file``), on the committed checkpoint
(else the tiny one) with real FluidSynth previews.

Humanize keeps every note (pitch and grid step) and moves it off the grid; continue keeps the upload's
bars exactly and adds new ones; re-roll keeps the locked voices exactly and changes the rest; drumify
puts its kicks on the part's onsets at the part's tempo and length; the same file, settings and seed
give the same bytes; an upload and every file made from it are gone after the files' lifetime.
Bad files are in ``test_bad_files.py``.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from app_fixtures import Served, client, serve, served, upload_mode  # noqa: F401 (module-scoped fixtures)
from conftest import use_checkpoint
from upload_inputs import BASS_TEMPO, bass_line, funk_groove, played, write_bass_file, write_groove_file

from drumgen.midi_io import midi_to_pattern
from drumgen.modes import snap
from drumgen.pattern import PPQ, Pattern
from drumgen.voices import VOICE_PITCH, canonical_pitch

COMMON = dict(style="funk", seed=5, random_seed=False)
KICK, SNARE = VOICE_PITCH["kick"], VOICE_PITCH["snare"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("uploads")
    return {"groove": write_groove_file(root / "my_funk.mid", funk_groove(4)),
            "played": write_groove_file(root / "played_funk.mid", played(funk_groove(4), seed=1)),
            "bass": write_bass_file(root / "bass.mid", bars=4)}


def pattern_of(path: str) -> Pattern:
    return midi_to_pattern(Path(path).read_bytes())


def hits(pattern: Pattern, pitches: set[int] | None = None) -> list[tuple[int, int, int]]:
    return sorted((n.onset, n.pitch, n.velocity) for n in pattern.notes if pitches is None or n.pitch in pitches)


def test_humanize_keeps_every_note_and_gives_it_the_styles_feel(client: Any, files: dict[str, Path]) -> None:  # noqa: F811
    preview, midi, summary, zip_path = upload_mode(client, "humanize", files["groove"], **COMMON)
    source, out = funk_groove(4), pattern_of(midi)
    assert (out.bars, out.tempo, summary["bars"]) == (4, source.tempo, 4)
    assert Path(midi).name == summary["file"] == "humanize_funk_96bpm_4bars_seed5.mid"
    assert sorted((snap(n.onset), n.pitch) for n in out.notes) == sorted((n.onset, n.pitch) for n in source.notes)
    off_grid = [n for n in out.notes if n.onset % (PPQ // 4)]
    assert len(off_grid) > len(out.notes) / 2  # the feel moved the hits
    assert {n.velocity for n in out.notes} != {n.velocity for n in source.notes}
    assert preview is not None and Path(preview).stat().st_size > 0
    zero = pattern_of(upload_mode(client, "humanize", files["groove"], **COMMON, humanize=0)[1])
    assert sorted((n.onset, n.pitch) for n in zero.notes) == sorted((n.onset, n.pitch) for n in source.notes)
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.namelist() == [summary["file"], summary["preview"]]


def test_humanize_with_quantize_snaps_a_played_file_first(client: Any, files: dict[str, Path]) -> None:  # noqa: F811
    _, midi, _, _ = upload_mode(client, "humanize", files["played"], **COMMON, quantize=True, humanize=0)
    grid = {(n.onset, n.pitch) for n in pattern_of(midi).notes}
    assert grid == {(min(snap(n.onset), 4 * 4 * PPQ - 1), n.pitch) for n in played(funk_groove(4), 1).notes}
    assert all(onset % (PPQ // 4) == 0 for onset, _ in grid)
    _, unsnapped, _, _ = upload_mode(client, "humanize", files["played"], **COMMON, humanize=0)
    assert any(n.onset % (PPQ // 4) for n in pattern_of(unsnapped).notes)  # without quantize the played timing stays


def test_continue_keeps_the_upload_and_adds_new_bars(client: Any, files: dict[str, Path]) -> None:  # noqa: F811
    _, midi, summary, _ = upload_mode(client, "continue", files["groove"], **COMMON, bars=4)
    source, out = funk_groove(4), pattern_of(midi)
    assert out.bars == summary["bars"] == 8 and out.tempo == source.tempo
    first = [n for n in out.notes if n.onset < source.length_ticks]
    assert hits(out.with_notes(first)) == hits(source)  # the upload's own bars, exactly
    new = [n for n in out.notes if n.onset >= source.length_ticks]
    assert len(new) >= 4 * 4 and {canonical_pitch(n.pitch) for n in new} >= {KICK, SNARE}
    _, only, only_summary, _ = upload_mode(client, "continue", files["groove"], **COMMON, bars=4, only_new=True)
    assert pattern_of(only).bars == only_summary["bars"] == 4
    assert hits(pattern_of(only)) == sorted((o - source.length_ticks, p, v) for o, p, v in hits(out.with_notes(new)))


def test_reroll_keeps_locked_voices_exactly_and_changes_the_rest(client: Any, files: dict[str, Path]) -> None:  # noqa: F811
    source = funk_groove(4)
    _, midi, summary, _ = upload_mode(client, "reroll", files["groove"], **COMMON, keep=["kick", "snare"])
    out = pattern_of(midi)
    assert out.bars == 4 and summary["file"] == "reroll_funk_96bpm_4bars_seed5.mid" and summary["mode"] == "reroll"
    assert hits(out, {KICK, SNARE}) == hits(source, {KICK, SNARE})  # onset and velocity, every one
    others = {n.pitch for n in out.notes} - {KICK, SNARE}
    assert others and hits(out, others) != hits(source, others)
    other = upload_mode(client, "reroll", files["groove"], **{**COMMON, "seed": 6}, keep="kick,snare")  # as text
    other_seed = pattern_of(other[1])
    assert hits(other_seed, {KICK, SNARE}) == hits(source, {KICK, SNARE}) and hits(other_seed) != hits(out)


def test_drumify_puts_the_kicks_on_the_parts_onsets(client: Any, files: dict[str, Path]) -> None:  # noqa: F811
    _, midi, summary, _ = upload_mode(client, "drumify", files["bass"], **COMMON, humanize=0)
    out = pattern_of(midi)
    assert (out.bars, out.tempo, summary["tempo"]) == (4, BASS_TEMPO, BASS_TEMPO)
    onsets = {n.onset for n in bass_line(4)}
    kicks = {n.onset for n in out.notes if canonical_pitch(n.pitch) == KICK}
    assert len(kicks & onsets) >= 0.7 * len(kicks) and len(kicks & onsets) >= 0.5 * len(onsets)
    assert {canonical_pitch(n.pitch) for n in out.notes} - {KICK}  # the rest of the kit around them


@pytest.mark.parametrize("mode", ["humanize", "continue", "reroll", "drumify"])
def test_the_same_file_settings_and_seed_give_the_same_bytes(client: Any, files: dict[str, Path],  # noqa: F811
                                                             mode: str) -> None:
    source = files["bass" if mode == "drumify" else "groove"]
    first, again = (upload_mode(client, mode, source, **COMMON, variations=2) for _ in range(2))
    assert Path(first[1]).read_bytes() == Path(again[1]).read_bytes()
    # the zip: both variations' .mid and .mp3; the MIDI is promised byte for byte (audio is not: FluidSynth
    # ramps a voice it reuses from the previous render)
    with zipfile.ZipFile(first[3]) as a, zipfile.ZipFile(again[3]) as b:
        assert a.namelist() == b.namelist()
        assert all(a.read(n) == b.read(n) for n in a.namelist() if n.endswith(".mid"))
    assert [v["seed"] for v in first[2]["variations"]] == [5, 6]
    with zipfile.ZipFile(first[3]) as archive:
        mids = [archive.read(n) for n in archive.namelist() if n.endswith(".mid")]
    assert len(mids) == 2 and mids[0] == Path(first[1]).read_bytes()
    assert mids[0] != mids[1]  # seed 6 is another variation


def test_an_upload_mode_exports_for_a_drum_map_in_split_tracks(client: Any, files: dict[str, Path]) -> None:  # noqa: F811
    import mido

    from drumgen.drum_maps import get_drum_map

    _, midi, summary, _ = upload_mode(client, "humanize", files["groove"], **COMMON, drum_map="superior_drummer_3",
                                      split_tracks=True)
    assert Path(midi).name == "humanize_funk_96bpm_4bars_seed5_superior_drummer_3.mid"
    tracks = mido.MidiFile(midi).tracks[1:]
    notes = {m.note for t in tracks for m in t if m.type == "note_on" and m.velocity}
    assert len(tracks) >= 3 and notes <= get_drum_map("superior_drummer_3").notes


# --- every file's lifetime -------------------------------------------------------------------------------
SHORT_LIFETIME_S = 10  # longer than a slow, loaded machine takes for the request, so its files are seen first


@pytest.fixture
def short_lived(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """An app whose files (uploads, outputs, its own temp folders) live :data:`SHORT_LIFETIME_S` seconds."""
    with pytest.MonkeyPatch.context() as mp:
        use_checkpoint(request, mp)
        mp.setenv("DRUMGEN_FILES_MAX_AGE_S", str(SHORT_LIFETIME_S))
        one = serve(downloads=tmp_path / "downloads", files_max_age_s=SHORT_LIFETIME_S)
        try:
            yield one
        finally:
            one.blocks.close()


def test_no_upload_or_derived_file_outlives_its_lifetime(short_lived: Served, files: dict[str, Path]) -> None:
    blocks = short_lived.blocks
    upload_mode(short_lived.client, "humanize", files["groove"], **COMMON, variations=2)
    uploads = [Path(p) for p in blocks.upload_file_set]
    made = [Path(p) for p in short_lived.temp.root.rglob("*") if p.is_file()]
    handed_out = [Path(p) for files_set in blocks.temp_file_sets for p in files_set]
    assert any(p.name == "my_funk.mid" for p in uploads)
    assert {p.suffix for p in made} >= {".mid", ".mp3", ".zip"}
    assert all(p.exists() for p in uploads + made)
    sweep_s = max(1, min(60, SHORT_LIFETIME_S // 4))
    deadline = time.monotonic() + SHORT_LIFETIME_S + 3 * sweep_s + 10
    left = uploads + made + handed_out
    while time.monotonic() < deadline:
        short_lived.temp.request_dir()  # what the next request does: the app's stale folders go
        left = [p for p in left if p.exists()]
        if not left:
            break
        time.sleep(0.5)
    assert left == [], left
