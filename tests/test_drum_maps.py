"""Drum-map presets: the shipped TOML files, lookup, validation of malformed files, and remapping
a GM groove onto each target (only declared notes, articulation rules)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from drumgen import drum_maps, resources
from drumgen.constants import PPQ
from drumgen.drum_maps import (
    ARTICULATIONS,
    HAT_EDGE_MIN_VELOCITY,
    RIMSHOT_MIN_VELOCITY,
    DrumMap,
    DrumMapError,
    UnknownDrumMapError,
    drum_map_problems,
    drum_maps_json,
    get_drum_map,
    list_drum_maps,
    load_drum_map,
    remap_notes,
)
from drumgen.pattern import Note, Pattern
from drumgen.voices import CANONICAL_PITCHES, VOICE_PITCH, VOICES

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "drum_maps"
SHIPPED_IDS = sorted(p.stem for p in SHIPPED_DIR.glob("*.toml"))
T16 = PPQ // 4
BAR = 16 * T16

# A target with every articulation on its own note, so each rule's outcome is visible.
FULL_TOML = """\
name = "Full Test Kit"
source = "test fixture"
[voices]
kick = 1
snare = 2
closed_hat = 3
open_hat = 4
low_tom = 5
mid_tom = 6
high_tom = 7
crash = 8
ride = 9
[articulations]
hat_pedal = 10
hat_half_open = 11
hat_open = 12
hat_closed_tip = 13
hat_closed_edge = 14
snare_rimshot = 15
snare_side_stick = 16
ride_bell = 17
ride_edge = 18
crash_choke = 19
"""
BARE_TOML = FULL_TOML.split("[articulations]")[0].replace("Full Test Kit", "Bare Test Kit")


@pytest.fixture()
def full_map(tmp_path: Path) -> DrumMap:
    path = tmp_path / "full.toml"
    path.write_text(FULL_TOML)
    return load_drum_map(path)


@pytest.fixture()
def bare_map(tmp_path: Path) -> DrumMap:
    path = tmp_path / "bare.toml"
    path.write_text(BARE_TOML)
    return load_drum_map(path)


def busy_groove() -> Pattern:
    """Two bars using every GM pitch the project meets: 16th hats alternating soft and loud,
    open hats closed after a 16th, an 8th and a whole beat plus one left ringing at the end,
    pedal hats, ghost / normal / accented snares, side stick, electric snare, all toms, four
    crashes, ride bow / bell / cymbal 2, Roland edge notes and GM percussion no voice explains."""
    notes: list[Note] = []
    for bar in range(2):
        start = bar * BAR
        open_steps = {2: 1, 6: 2, 10: 4}  # open-hat step -> 16ths until the next hat
        skip = {s + d2 for s, gap in open_steps.items() for d2 in range(1, gap)}
        for s in range(16):
            if s in open_steps:
                notes.append(Note(start + s * T16, 46, 90))
            elif s not in skip and s != 15:
                notes.append(Note(start + s * T16, 42, 105 if s % 2 == 0 else 55))
        notes += [Note(start + s * T16, 44, 70) for s in (4, 8)]
        notes += [Note(start + s * T16, 36, 110) for s in (0, 8)] + [Note(start + 10 * T16, 35, 100)]
        notes += [Note(start + 4 * T16, 38, 110), Note(start + 7 * T16, 38, 40), Note(start + 12 * T16, 38, 125)]
        notes += [Note(start + 3 * T16, 37, 80), Note(start + 13 * T16, 40, 122), Note(start + 14 * T16, 39, 90)]
        notes += [Note(start + s * T16, p, 95) for s, p in zip(range(8, 14), (50, 48, 47, 45, 43, 41), strict=True)]
        notes += [Note(start, 49, 120), Note(start + 8 * T16, 57, 110), Note(start + T16, 52, 100),
                  Note(start + 9 * T16, 55, 100)]
        notes += [Note(start + s * T16, 51, 85) for s in (0, 4, 8)]
        notes += [Note(start + 12 * T16, 53, 100), Note(start + 14 * T16, 59, 90)]
        notes += [Note(start + 5 * T16, 22, 100), Note(start + 11 * T16, 58, 90), Note(start + 15 * T16, 54, 80),
                  Note(start + 15 * T16, 56, 80)]
    notes.append(Note(2 * BAR - T16, 26, 90))  # an open (edge) hat with no hat after it
    return Pattern(notes=sorted(notes), tempo=100, bars=2).validate()


# --------------------------------------------------------------------------- shipped files


def test_shipped_maps_all_load() -> None:
    assert drum_map_problems(SHIPPED_DIR) == {}
    ids = [m.id for m in list_drum_maps(SHIPPED_DIR)]
    assert sorted(ids) == SHIPPED_IDS
    assert ids[0] == "gm" and len(ids) >= 9
    assert len(set(ids)) == len(ids)
    names = [re.sub(r"[\s\-_]+", "_", m.name.lower()) for m in list_drum_maps(SHIPPED_DIR)]
    assert len(set(names)) == len(names)


def test_default_folder_is_the_resources_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(drum_maps.DRUM_MAPS_DIR_ENV, raising=False)
    assert Path(resources.DRUM_MAPS_DIR).resolve() == SHIPPED_DIR
    assert [m.id for m in list_drum_maps()] == [m.id for m in list_drum_maps(SHIPPED_DIR)]


@pytest.mark.parametrize("map_id", SHIPPED_IDS)
def test_shipped_map_declares_every_voice_in_midi_range(map_id: str) -> None:
    m = get_drum_map(map_id, SHIPPED_DIR)
    assert m.name and m.source
    assert tuple(m.voices) == VOICES
    assert set(m.articulations) <= set(ARTICULATIONS)
    for note in (*m.voices.values(), *m.articulations.values()):
        assert isinstance(note, int) and 0 <= note <= 127
    assert len({m.voices[v] for v in VOICES}) == len(VOICES), "two voices share a note"


@pytest.mark.parametrize("map_id", SHIPPED_IDS)
def test_shipped_map_cites_a_source_and_the_octave_convention(map_id: str) -> None:
    text = (SHIPPED_DIR / f"{map_id}.toml").read_text()
    assert "http" in get_drum_map(map_id, SHIPPED_DIR).source
    assert re.search(r"C[34] = 60", text), "the file must say which octave convention its source uses"


@pytest.mark.parametrize("map_id", [i for i in SHIPPED_IDS if i != "gm"])
def test_busy_groove_uses_only_the_notes_the_file_declares(map_id: str) -> None:
    m = get_drum_map(map_id, SHIPPED_DIR)
    groove = busy_groove()
    out = remap_notes(groove.notes, m)
    assert out and {n.pitch for n in out} <= m.notes
    assert out == sorted(out)
    assert len({(n.onset, n.pitch) for n in out}) == len(out)
    # Only the GM percussion no voice explains (tambourine, cowbell) is gone.
    explained = [n for n in groove.notes if n.pitch not in (54, 56)]
    assert len(out) <= len(explained)
    assert {n.onset for n in out} == {n.onset for n in explained}


@pytest.mark.parametrize("map_id", SHIPPED_IDS)
def test_each_voice_plays_its_declared_note(map_id: str) -> None:
    """A plain, medium-loud hit of each voice lands on the voice's note, or on the articulation
    the rules pick for it (closed hats are tip hits)."""
    m = get_drum_map(map_id, SHIPPED_DIR)
    for voice in VOICES:
        (out,) = remap_notes([Note(0, VOICE_PITCH[voice], 80)], m)
        expected = m.articulations.get("hat_closed_tip", m.voices[voice]) if voice == "closed_hat" else m.voices[voice]
        assert out.pitch == expected, voice


def test_gm_map_is_the_identity() -> None:
    gm = get_drum_map("gm", SHIPPED_DIR)
    assert {v: gm.voices[v] for v in VOICES} == VOICE_PITCH
    groove = busy_groove()
    assert remap_notes(groove.notes, gm) == groove.notes
    canonical = [Note(i * T16, p, 127) for i, p in enumerate(CANONICAL_PITCHES)]
    assert remap_notes(canonical, gm) == canonical


def test_other_gm_percussion_passes_only_through_gm() -> None:
    tambourine = [Note(0, 54, 80), Note(T16, 56, 80)]
    assert remap_notes(tambourine, get_drum_map("gm", SHIPPED_DIR)) == tambourine
    for m in list_drum_maps(SHIPPED_DIR):
        if m.id != "gm":
            assert remap_notes(tambourine, m) == []


def test_drum_maps_json_lists_notes_per_voice() -> None:
    data = drum_maps_json(SHIPPED_DIR)
    json.dumps(data)  # plain JSON values only
    assert [d["id"] for d in data] == [m.id for m in list_drum_maps(SHIPPED_DIR)]
    for d in data:
        assert {"id", "name", "source", "notes", "articulations"} <= set(d)
        assert list(d["notes"]) == list(VOICES)
    data[0]["notes"]["kick"] = 0  # a copy: the registry is untouched
    assert get_drum_map("gm", SHIPPED_DIR).voices["kick"] == 36


# --------------------------------------------------------------------------- lookup


def test_lookup_by_id_or_display_name_case_insensitive() -> None:
    sd3 = get_drum_map("superior_drummer_3", SHIPPED_DIR)
    assert get_drum_map("Superior Drummer 3", SHIPPED_DIR) is sd3
    assert get_drum_map("  SUPERIOR-drummer-3 ", SHIPPED_DIR) is sd3
    assert get_drum_map("GM", SHIPPED_DIR).id == "gm"
    assert get_drum_map("General MIDI", SHIPPED_DIR).id == "gm"


@pytest.mark.parametrize("name", ["nope", "../styles/j_dilla", "", "   ", 7])
def test_unknown_map_lists_the_valid_ids(name: object) -> None:
    with pytest.raises(UnknownDrumMapError) as exc:
        get_drum_map(name, SHIPPED_DIR)  # type: ignore[arg-type]
    for map_id in SHIPPED_IDS:
        assert map_id in str(exc.value)


def test_env_var_and_argument_choose_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "full.toml").write_text(FULL_TOML)
    monkeypatch.setenv(drum_maps.DRUM_MAPS_DIR_ENV, str(tmp_path))
    assert [m.id for m in list_drum_maps()] == ["full"]
    assert "gm" in [m.id for m in list_drum_maps(SHIPPED_DIR)]
    with pytest.raises(FileNotFoundError, match=drum_maps.DRUM_MAPS_DIR_ENV):
        list_drum_maps(tmp_path / "missing")


def test_edited_file_is_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "full.toml"
    path.write_text(FULL_TOML)
    assert get_drum_map("full", tmp_path).voices["kick"] == 1
    path.write_text(FULL_TOML.replace("kick = 1\n", "kick = 100\n"))
    assert get_drum_map("full", tmp_path).voices["kick"] == 100


# --------------------------------------------------------------------------- malformed files

BAD_FILES = {
    "missing_voice": (FULL_TOML.replace("ride = 9\n", ""), "voices.ride", "is missing"),
    "note_too_high": (FULL_TOML.replace("kick = 1\n", "kick = 128\n"), "voices.kick", "0-127"),
    "negative_note": (FULL_TOML.replace("ride_bell = 17\n", "ride_bell = -1\n"), "articulations.ride_bell", "0-127"),
    "bool_note": (FULL_TOML.replace("snare = 2\n", "snare = true\n"), "voices.snare", "integer"),
    "float_note": (FULL_TOML.replace("snare = 2\n", "snare = 38.0\n"), "voices.snare", "integer"),
    "unknown_voice": (FULL_TOML.replace("kick = 1\n", "kick = 1\ncowbell = 56\n"), "voices.cowbell", "not a known"),
    "unknown_articulation": (FULL_TOML + "hat_splash = 20\n", "articulations.hat_splash", "not a known"),
    "unknown_field": ("vendor = 'x'\n" + FULL_TOML, "vendor", "not a known field"),
    "missing_name": (FULL_TOML.replace('name = "Full Test Kit"\n', ""), "name", "is missing"),
    "missing_source": (FULL_TOML.replace('source = "test fixture"\n', ""), "source", "is missing"),
    "empty_source": (FULL_TOML.replace('source = "test fixture"', 'source = "  "'), "source", "non-empty"),
    "no_voices": (FULL_TOML.split("[voices]")[0], "voices", "is missing"),
    "voices_not_table": (FULL_TOML.split("[voices]")[0] + "voices = 3\n", "voices", "must be a table"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_malformed_file_is_skipped_naming_file_and_field(
    tmp_path: Path, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    text, fld, problem = BAD_FILES[case]
    (tmp_path / "good.toml").write_text(FULL_TOML.replace("Full Test Kit", "Good"))
    bad = tmp_path / "broken.toml"
    bad.write_text(text)
    with caplog.at_level(logging.WARNING, logger="drumgen.drum_maps"):
        assert [m.id for m in list_drum_maps(tmp_path)] == ["good"]
    message = drum_map_problems(tmp_path)[str(bad)]
    assert f"field '{fld}'" in message and problem in message and str(bad) in message
    assert str(bad) in caplog.text and fld in caplog.text
    with pytest.raises(DrumMapError, match=re.escape(fld)):
        get_drum_map("broken", tmp_path)


def test_bad_toml_and_bad_file_name_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(FULL_TOML)
    (tmp_path / "broken.toml").write_text("name = \n")
    (tmp_path / "Bad Name.toml").write_text(FULL_TOML.replace("Full Test Kit", "Other"))
    assert [m.id for m in list_drum_maps(tmp_path)] == ["good"]
    problems = drum_map_problems(tmp_path)
    assert "not valid TOML" in problems[str(tmp_path / "broken.toml")]
    assert "file name must be a lowercase id" in problems[str(tmp_path / "Bad Name.toml")]


def test_duplicate_display_name_is_reported(tmp_path: Path) -> None:
    (tmp_path / "aaa.toml").write_text(FULL_TOML)
    (tmp_path / "bbb.toml").write_text(FULL_TOML)
    assert [m.id for m in list_drum_maps(tmp_path)] == ["aaa"]
    assert "clashes with drum map 'aaa'" in drum_map_problems(tmp_path)[str(tmp_path / "bbb.toml")]


# --------------------------------------------------------------------------- articulation rules


def pitches(notes: list[Note]) -> list[int]:
    return [n.pitch for n in notes]


def test_open_hats_by_length(full_map: DrumMap) -> None:
    """Gap to the next hat: a 16th -> half-open, an 8th -> the open-hat voice, a beat -> wide open,
    no later hat -> the open-hat voice."""
    def open_then_closed(gap: int) -> int:
        out = remap_notes([Note(0, 46, 90), Note(gap, 42, 80)], full_map)
        return out[0].pitch

    assert open_then_closed(T16) == 11
    assert open_then_closed(T16 + 1) == 4
    assert open_then_closed(2 * T16) == 4
    assert open_then_closed(PPQ - 1) == 4
    assert open_then_closed(PPQ) == 12
    assert open_then_closed(4 * PPQ) == 12
    assert pitches(remap_notes([Note(0, 46, 90)], full_map)) == [4]


def test_pedal_hat_closes_an_open_hat(full_map: DrumMap) -> None:
    out = remap_notes([Note(0, 46, 90), Note(T16, 44, 60)], full_map)
    assert pitches(out) == [11, 10]


def test_open_hat_gap_wraps_round_the_loop(full_map: DrumMap) -> None:
    notes = [Note(0, 42, 80), Note(BAR - T16, 46, 90)]
    assert pitches(remap_notes(notes, full_map)) == [13, 4]
    assert pitches(remap_notes(notes, full_map, loop_ticks=BAR)) == [13, 11]
    # A lone open hat rings round the whole loop.
    assert pitches(remap_notes([Note(BAR - 2 * T16, 46, 90)], full_map, loop_ticks=BAR)) == [12]


def test_gap_is_measured_in_beats_of_ticks_per_beat(full_map: DrumMap) -> None:
    notes = [Note(0, 46, 90), Note(60, 42, 80)]
    assert pitches(remap_notes(notes, full_map, ticks_per_beat=240)) == [11, 13]
    assert pitches(remap_notes(notes, full_map, ticks_per_beat=480)) == [11, 13]
    notes = [Note(0, 46, 90), Note(240, 42, 80)]
    assert pitches(remap_notes(notes, full_map, ticks_per_beat=240)) == [12, 13]
    with pytest.raises(ValueError, match="ticks_per_beat"):
        remap_notes(notes, full_map, ticks_per_beat=0)
    with pytest.raises(ValueError, match="loop_ticks"):
        remap_notes(notes, full_map, loop_ticks=0)


def test_closed_hat_tip_or_edge_by_velocity(full_map: DrumMap) -> None:
    notes = [Note(0, 42, HAT_EDGE_MIN_VELOCITY - 1), Note(T16, 42, HAT_EDGE_MIN_VELOCITY), Note(2 * T16, 42, 127)]
    assert pitches(remap_notes(notes, full_map)) == [13, 14, 14]


def test_rimshot_for_the_loudest_snares_only(full_map: DrumMap) -> None:
    notes = [Note(0, 38, RIMSHOT_MIN_VELOCITY - 1), Note(T16, 38, RIMSHOT_MIN_VELOCITY), Note(2 * T16, 40, 127),
             Note(3 * T16, 40, 90), Note(4 * T16, 39, 127)]
    assert pitches(remap_notes(notes, full_map)) == [2, 15, 15, 2, 2]


def test_gm_articulation_notes_pick_the_target_articulation(full_map: DrumMap) -> None:
    notes = [Note(0, 44, 70), Note(T16, 37, 127), Note(2 * T16, 53, 100), Note(3 * T16, 59, 90),
             Note(4 * T16, 22, 60)]
    assert pitches(remap_notes(notes, full_map)) == [10, 16, 17, 18, 14]


def test_voices_reduce_to_their_notes(full_map: DrumMap) -> None:
    notes = [Note(i * T16, p, 90) for i, p in enumerate((35, 36, 41, 43, 58, 45, 47, 48, 50, 49, 52, 55, 57, 51))]
    assert pitches(remap_notes(notes, full_map)) == [1, 1, 5, 5, 5, 6, 6, 7, 7, 8, 8, 8, 8, 9]


def test_crash_choke_is_never_chosen(full_map: DrumMap) -> None:
    out = remap_notes(busy_groove().notes, full_map)
    assert 19 not in pitches(out)


def test_missing_articulations_fall_back_to_the_voice(bare_map: DrumMap) -> None:
    notes = [Note(0, 46, 90), Note(T16, 44, 70), Note(2 * T16, 37, 90), Note(3 * T16, 53, 90),
             Note(4 * T16, 59, 90), Note(5 * T16, 22, 120), Note(6 * T16, 42, 127), Note(7 * T16, 38, 127),
             Note(8 * T16, 46, 90)]
    assert pitches(remap_notes(notes, bare_map)) == [4, 3, 2, 9, 9, 3, 3, 2, 4]
    assert set(pitches(remap_notes(busy_groove().notes, bare_map))) <= bare_map.notes


def test_remap_keeps_timing_velocity_and_length(full_map: DrumMap) -> None:
    note = Note(123, 38, 77, duration=45)
    (out,) = remap_notes([note], full_map)
    assert (out.onset, out.velocity, out.duration, out.pitch) == (123, 77, 45, 2)


def test_collisions_keep_the_loudest_note(full_map: DrumMap) -> None:
    # 35 and 36 both become the kick; 52 and 57 both become the crash.
    notes = [Note(0, 35, 60), Note(0, 36, 100), Note(T16, 57, 127), Note(T16, 52, 50)]
    out = remap_notes(notes, full_map)
    assert [(n.onset, n.pitch, n.velocity) for n in out] == [(0, 1, 100), (T16, 8, 127)]


def test_remap_is_deterministic_and_order_independent(full_map: DrumMap) -> None:
    notes = busy_groove().notes
    assert remap_notes(notes, full_map) == remap_notes(list(reversed(notes)), full_map)
    assert remap_notes(notes, full_map) == remap_notes(notes, full_map)


def test_busy_groove_reaches_every_articulation_but_the_choke(full_map: DrumMap) -> None:
    used = set(pitches(remap_notes(busy_groove().notes, full_map)))
    expected = {full_map.articulations[a] for a in ARTICULATIONS if a != "crash_choke"}
    assert expected <= used
    # Every closed hat is a tip or an edge hit on a target that has both.
    assert {n for v, n in full_map.voices.items() if v != "closed_hat"} <= used
