"""Drum tokens: encode/decode round trips, bar structure, drum tracks, persistence, quantization."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drumgen.pattern import PPQ, Note, Pattern
from drumgen.tokenizer import GENRES, DrumTokenizer, quantize_pattern
from drumgen.voices import CANONICAL_PITCHES

KICK, SNARE, CLOSED_HAT, OPEN_HAT, LOW_TOM, CRASH, RIDE = 36, 38, 42, 46, 43, 49, 51
T16, TRIPLET, BAR = PPQ // 4, PPQ // 3, 4 * PPQ
VELOCITY_BIN = 8  # 16 bins over 1-127


@pytest.fixture(scope="module")
def tok() -> DrumTokenizer:
    return DrumTokenizer()


def names(tok: DrumTokenizer, ids: list[int]) -> list[str]:
    return [tok.id_to_token[i] for i in ids]


# --- patterns -----------------------------------------------------------------------
def rock(bars: int = 2) -> Pattern:
    notes = []
    for b in range(bars):
        s = b * BAR
        notes += [Note(s + i * 2 * T16, CLOSED_HAT, 70 + 5 * (i % 3)) for i in range(8)]
        notes += [Note(s, KICK, 112), Note(s + 8 * T16, KICK, 100), Note(s + 4 * T16, SNARE, 120),
                  Note(s + 12 * T16, SNARE, 118), Note(s + 7 * T16, SNARE, 25)]
    return Pattern(notes=sorted(notes), tempo=100.0, bars=bars)


def shuffle_triplets() -> Pattern:
    """Ride on an 8th-note-triplet shuffle (positions 0, 2 of each triplet), kick and snare."""
    notes = [Note(beat * PPQ + k * TRIPLET, RIDE, 90 - 20 * k) for beat in range(4) for k in (0, 2)]
    notes += [Note(0, KICK, 110), Note(2 * PPQ, KICK, 105), Note(PPQ, SNARE, 115), Note(3 * PPQ, SNARE, 115)]
    return Pattern(notes=sorted(notes), tempo=140.0, bars=1)


def every_voice_every_16th() -> Pattern:
    """All nine canonical voices, each on its own 16ths, extreme velocities included."""
    notes = []
    for step in range(16):
        pitch = CANONICAL_PITCHES[step % len(CANONICAL_PITCHES)]
        notes.append(Note(step * T16, pitch, 1 + step * 8 if step < 15 else 127))
    return Pattern(notes=notes, tempo=90.0, bars=1)


def sparse_middle_bar() -> Pattern:
    """Four bars, only bar 2 has hits (bars 0, 1 and 3 are empty)."""
    s = 2 * BAR
    return Pattern(notes=[Note(s, CRASH, 110), Note(s, KICK, 120), Note(s + 10 * T16, LOW_TOM, 64)],
                   tempo=120.0, bars=4)


ROUND_TRIP_PATTERNS = {
    "rock_2_bars": rock,
    "triplet_shuffle": shuffle_triplets,
    "all_voices_all_velocities": every_voice_every_16th,
    "empty_bars_around_hits": sparse_middle_bar,
}


@pytest.mark.parametrize("make", ROUND_TRIP_PATTERNS.values(), ids=ROUND_TRIP_PATTERNS.keys())
def test_encode_decode_round_trip_keeps_onsets_and_pitches(tok: DrumTokenizer, make) -> None:
    pattern = quantize_pattern(make())
    ids = tok.encode(pattern, "funk")
    decoded = tok.decode(ids, bars=pattern.bars, tempo=pattern.tempo).validate()
    assert [(n.onset, n.pitch) for n in decoded.notes] == [(n.onset, n.pitch) for n in pattern.notes]
    for before, after in zip(pattern.notes, decoded.notes, strict=True):
        assert abs(before.velocity - after.velocity) <= VELOCITY_BIN, (before, after)
        assert after.velocity in tok.velocity_values
    assert decoded.bars == pattern.bars and decoded.tempo == pattern.tempo


def test_loud_and_ghost_velocities_stay_apart(tok: DrumTokenizer) -> None:
    """Binning must not merge a ghost note (<= 40) with an accent."""
    pattern = Pattern(notes=[Note(0, SNARE, 28), Note(4 * T16, SNARE, 120)], bars=1)
    decoded = tok.decode(tok.encode(pattern, "funk"), bars=1, tempo=120.0)
    ghost, accent = (n.velocity for n in decoded.notes)
    assert ghost <= 40 < 100 <= accent


def test_decoded_score_tracks_are_drums(tok: DrumTokenizer) -> None:
    score = tok.decode_score(tok.encode(rock(), "rock"))
    assert score.tracks, "decoding gave no track"
    assert all(track.is_drum for track in score.tracks)
    assert sum(len(track.notes) for track in score.tracks) == len(rock().notes)


@pytest.mark.parametrize(
    ("bars", "hit_bars"),
    [(4, [0]), (4, [2]), (3, []), (8, [0, 7])],
    ids=["trailing-empty", "leading-and-trailing-empty", "all-empty", "empty-middle"],
)
def test_every_bar_gets_bar_and_barkind_tokens(tok: DrumTokenizer, bars: int, hit_bars: list[int]) -> None:
    pattern = Pattern(notes=[Note(b * BAR + 4 * T16, SNARE, 100) for b in hit_bars], bars=bars)
    encoded = tok.encode_bars(pattern)
    assert len(encoded) == bars
    for b, bar in enumerate(encoded):
        assert names(tok, bar[:2]) == ["Bar_None", "BarKind_beat"]
        assert (len(bar) > 2) == (b in hit_bars), f"bar {b}: {names(tok, bar)}"
    flat = tok.encode(pattern, "rock")
    assert flat.count(tok.ids.bar) == bars
    decoded = tok.decode(flat, bars=bars, tempo=pattern.tempo)
    assert [n.onset for n in decoded.notes] == [n.onset for n in pattern.notes]


@pytest.mark.parametrize("fills", [{3}, {1, 3}, {0}, set()], ids=["last", "every-2nd", "first", "none"])
def test_fill_bars_get_barkind_fill(tok: DrumTokenizer, fills: set[int]) -> None:
    pattern = rock(bars=4)
    kinds = [names(tok, bar)[1] for bar in tok.encode_bars(pattern, fill_bars=fills)]
    assert kinds == ["BarKind_fill" if b in fills else "BarKind_beat" for b in range(4)]
    # the fill marker does not change the hits
    assert tok.decode(tok.encode(pattern, "rock", fills), bars=4, tempo=100.0).notes == \
        tok.decode(tok.encode(pattern, "rock"), bars=4, tempo=100.0).notes


def test_prefix_is_bos_genre_tempo(tok: DrumTokenizer) -> None:
    assert names(tok, tok.prefix("funk", 100.0))[:2] == ["BOS_None", "Genre_funk"]
    slow, fast = tok.prefix("funk", 60.0)[2], tok.prefix("funk", 180.0)[2]
    assert slow != fast, "60 and 180 BPM must condition differently"


@pytest.mark.parametrize("genre", ["trap", "", "Funk ", "hip-hop"], ids=["trap", "empty", "spaced", "hyphen"])
def test_prefix_rejects_unknown_genre(tok: DrumTokenizer, genre: str) -> None:
    with pytest.raises(ValueError, match="unknown genre") as err:
        tok.prefix(genre, 100.0)
    assert repr(genre) in str(err.value) and "funk" in str(err.value)


def test_encode_rejects_non_4_4(tok: DrumTokenizer) -> None:
    with pytest.raises(ValueError, match="4/4"):
        tok.encode(Pattern(notes=[Note(0, KICK, 100)], bars=1, time_signature=(3, 4)), "rock")


# --- persistence ----------------------------------------------------------------------
@pytest.mark.parametrize("by", ["directory", "file"])
def test_save_load_round_trip_keeps_vocab(tok: DrumTokenizer, tmp_path: Path, by: str) -> None:
    saved = tok.save(tmp_path)
    assert saved == tmp_path / "tokenizer.json" and saved.is_file()
    loaded = DrumTokenizer.load(tmp_path if by == "directory" else saved)
    assert loaded.vocab == tok.vocab
    assert loaded.ids == tok.ids
    assert loaded.encode(rock(), "jazz") == tok.encode(rock(), "jazz")


CORRUPT_CONFIGS = {
    "empty": lambda good: "",
    "truncated": lambda good: good[: len(good) // 3],
    "not-json": lambda good: "this is not JSON \x00\xff",
    "json-list": lambda good: "[1, 2, 3]",
    "wrong-vocab-size": lambda good: json.dumps(
        {**json.loads(good), "drumgen": {**json.loads(good)["drumgen"], "vocab_size": 99}}),
}


@pytest.mark.parametrize("corrupt", CORRUPT_CONFIGS.values(), ids=CORRUPT_CONFIGS.keys())
def test_corrupt_tokenizer_json_gives_clear_error(tok: DrumTokenizer, tmp_path: Path, corrupt) -> None:
    path = tok.save(tmp_path)
    path.write_text(corrupt(path.read_text()))
    with pytest.raises(ValueError) as err:
        DrumTokenizer.load(path)
    message = str(err.value)
    assert str(path) in message
    assert "corrupt" in message or "vocabulary size" in message


def test_a_checkpoint_tokenizer_of_the_older_layout_is_refused_with_the_retrain_command(
        tok: DrumTokenizer, tmp_path: Path) -> None:
    """Older checkpoints wrote PitchDrum and Velocity as two tokens; they cannot drive this grammar."""
    path = tok.save(tmp_path)
    config = json.loads(path.read_text())
    del config["drumgen"]["layout"]
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="older token layout") as err:
        DrumTokenizer.load(path)
    assert "python -m drumgen train" in str(err.value)
    del config["drumgen"]  # a plain MidiTok config
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="not saved by drumgen"):
        DrumTokenizer.load(path)


def test_each_hit_is_one_token_after_its_position(tok: DrumTokenizer) -> None:
    """A bar of 13 hits at 9 positions is Bar, BarKind, 9 Position and 13 Hit tokens (MidiTok's
    PitchDrum/Velocity pairs merged)."""
    (bar,) = tok.encode_bars(rock(1))
    kinds = [name.split("_")[0] for name in names(tok, bar)]
    assert kinds.count("Hit") == 13 and kinds.count("Position") == 9 and len(bar) == 2 + 9 + 13
    assert "PitchDrum" not in kinds and "Velocity" not in kinds
    assert names(tok, bar)[2:5] == ["Position_0", "Hit_36_111", "Hit_42_71"]


def test_missing_tokenizer_json_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="tokenizer config not found") as err:
        DrumTokenizer.load(tmp_path)
    assert str(tmp_path) in str(err.value)


# --- quantization -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("onset", "expected"),
    [
        (T16 + 15, T16),  # a 16th played 15 ticks (about 16 ms at 120 BPM) late
        (3 * T16 - 12, 3 * T16),  # a 16th played early
        (TRIPLET + 4, TRIPLET),  # clearly on the 2nd 8th-note triplet
        (2 * TRIPLET - 3, 2 * TRIPLET),  # clearly on the 3rd 8th-note triplet
        (140, T16),  # halfway between 16th (120) and triplet (160): stays on the 16th grid
        (PPQ + 3, PPQ),  # on the beat: both grids agree
    ],
    ids=["late-16th", "early-16th", "triplet-2", "triplet-3", "ambiguous-stays-16th", "beat"],
)
def test_quantize_snaps_to_16ths_or_clear_triplets(onset: int, expected: int) -> None:
    quantized = quantize_pattern(Pattern(notes=[Note(onset, SNARE, 90)], bars=1))
    assert [n.onset for n in quantized.notes] == [expected]


@pytest.mark.parametrize(
    ("roland", "canonical"),
    [(22, CLOSED_HAT), (26, OPEN_HAT), (58, LOW_TOM), (44, CLOSED_HAT), (40, SNARE), (35, KICK), (55, CRASH)],
    ids=["hat-edge-22", "open-hat-edge-26", "tom-rim-58", "pedal-hat", "electric-snare", "bass-drum", "splash"],
)
def test_quantize_maps_roland_pitches_to_canonical(roland: int, canonical: int) -> None:
    quantized = quantize_pattern(Pattern(notes=[Note(0, roland, 90)], bars=1))
    assert [n.pitch for n in quantized.notes] == [canonical]


def test_quantize_drops_other_percussion_and_merges_duplicates() -> None:
    notes = [Note(0, 56, 100),  # cowbell: not one of the nine voices
             Note(T16 - 5, 22, 40), Note(T16 + 6, 42, 95),  # two hats landing on one 16th: loudest kept
             Note(BAR - 4, KICK, 100)]  # snaps onto the loop end: belongs to the next bar
    quantized = quantize_pattern(Pattern(notes=notes, bars=1)).validate()
    assert [(n.onset, n.pitch, n.velocity) for n in quantized.notes] == [(T16, CLOSED_HAT, 95)]


def test_quantized_humanized_pattern_encodes_and_round_trips(tok: DrumTokenizer) -> None:
    """A human-played bar (onsets off the grid, Roland pitches) survives quantize -> tokens -> pattern."""
    played = Pattern(notes=[Note(3, 36, 110), Note(118, 22, 60), Note(247, 22, 70), Note(486, 38, 120),
                            Note(605, 26, 80), Note(1452, 58, 90), Note(1566, 37, 35)], tempo=96.0, bars=1)
    quantized = quantize_pattern(played)
    assert all(n.onset % T16 == 0 for n in quantized.notes)
    decoded = tok.decode(tok.encode(quantized, "soul"), bars=1, tempo=96.0)
    assert [(n.onset, n.pitch) for n in decoded.notes] == [
        (0, KICK), (T16, CLOSED_HAT), (2 * T16, CLOSED_HAT), (4 * T16, SNARE), (5 * T16, OPEN_HAT),
        (12 * T16, LOW_TOM), (13 * T16, SNARE)]


def test_every_genre_has_a_token(tok: DrumTokenizer) -> None:
    assert {g: len(tok.prefix(g, 120.0)) for g in GENRES} == {g: 3 for g in GENRES}
    assert len({tok.prefix(g, 120.0)[1] for g in GENRES}) == len(GENRES)
