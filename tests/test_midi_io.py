"""MIDI export / import: round trips, file structure (mido, pretty_midi), determinism, bad input."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import mido
import pretty_midi
import pytest

from drumgen.constants import MAX_BARS, PPQ
from drumgen.midi_io import (
    MAX_MIDI_BYTES,
    MidiImportError,
    midi_to_pattern,
    pattern_filename,
    pattern_to_midi,
    pattern_to_midi_bytes,
    read_midi,
    write_midi,
)
from drumgen.pattern import Note, Pattern
from drumgen.voices import GM_DRUM_CHANNEL

GROOVE_DIR = Path(__file__).resolve().parents[2] / "shared" / "groove"
KICK, SNARE, CLOSED_HAT, OPEN_HAT, CRASH = 36, 38, 42, 46, 49


def make_pattern(tempo: float = 120.0, time_signature: tuple[int, int] = (4, 4), bars: int = 2,
                 meta: dict[str, str] | None = None) -> Pattern:
    """A groove with hats on every 8th, kick and snare, ghost notes and humanized onsets."""
    probe = Pattern(bars=bars, time_signature=time_signature)
    eighth = PPQ // 2
    notes: list[Note] = []
    for bar in range(bars):
        start = bar * probe.ticks_per_bar
        for i in range(probe.ticks_per_bar // eighth):
            nudge = (-7, 0, 5, -3)[i % 4]
            notes.append(Note(max(0, start + i * eighth + nudge), CLOSED_HAT, 60 + 7 * (i % 3), 50))
        notes.append(Note(start, KICK, 110))
        notes.append(Note(start + probe.ticks_per_bar // 2 + 11, SNARE, 118, 90))
        notes.append(Note(start + probe.ticks_per_bar // 2 - 120, SNARE, 28, 30))  # ghost note
    notes.append(Note(0, CRASH, 100, 400))
    notes.append(Note(probe.ticks_per_bar * bars - 100, OPEN_HAT, 90, 80))  # ends before the loop end
    if meta is None:
        meta = {"style": "j_dilla", "seed": "123", "swing": "62", "description": "Signature swing — soulful"}
    return Pattern(notes=sorted(notes), tempo=tempo, bars=bars, time_signature=time_signature,
                   meta=meta).validate()


ROUND_TRIPS = [
    pytest.param(120.0, (4, 4), 4, id="120bpm-4_4-4bars"),
    pytest.param(92.5, (4, 4), 2, id="92.5bpm-4_4"),
    pytest.param(87.123, (4, 4), 3, id="87.123bpm-3bars"),
    pytest.param(300.0, (4, 4), 1, id="300bpm-1bar"),
    pytest.param(40.0, (4, 4), MAX_BARS, id="40bpm-max-bars"),
]
OTHER_METERS = [  # written as asked; read back as an error (the generator is 4/4 only)
    pytest.param(140.0, (6, 8), 2, id="140bpm-6_8"),
    pytest.param(87.0, (3, 4), 3, id="87bpm-3_4"),
]


def recipe_of(data: bytes) -> dict[str, str]:
    """The ``key=value`` text events of a file (the generation recipe), read with mido."""
    midi = mido.MidiFile(file=io.BytesIO(data))
    texts = [m.text.encode("latin-1").decode("utf-8") for t in midi.tracks for m in t if m.type == "text"]
    return dict(text.split("=", 1) for text in texts if "=" in text and not text.startswith("drumgen "))


@pytest.mark.parametrize(("tempo", "time_signature", "bars"), ROUND_TRIPS)
def test_round_trip_bytes_and_file(tmp_path: Path, tempo: float, time_signature: tuple[int, int],
                                   bars: int) -> None:
    pattern = make_pattern(tempo, time_signature, bars)
    path = write_midi(pattern, tmp_path / "sub" / "groove.mid")
    for source in (path, str(path), pattern_to_midi_bytes(pattern)):
        back = midi_to_pattern(source)
        assert back.notes == pattern.notes
        assert back.tempo == pattern.tempo  # exact, from the loop-end marker
        assert back.bars == pattern.bars
        assert back.time_signature == pattern.time_signature
    assert recipe_of(path.read_bytes()) == pattern.meta


@pytest.mark.parametrize(("tempo", "time_signature", "bars"), OTHER_METERS)
def test_other_meters_are_written_but_not_read(tempo: float, time_signature: tuple[int, int], bars: int) -> None:
    data = pattern_to_midi_bytes(make_pattern(tempo, time_signature, bars))
    sigs = [(m.numerator, m.denominator) for t in mido.MidiFile(file=io.BytesIO(data)).tracks for m in t
            if m.type == "time_signature"]
    assert sigs == [time_signature]
    with pytest.raises(MidiImportError, match=f"{time_signature[0]}/{time_signature[1]}.*only 4/4"):
        midi_to_pattern(data)


@pytest.mark.parametrize(("tempo", "time_signature", "bars"), ROUND_TRIPS[:3] + OTHER_METERS)
def test_file_structure_in_mido(tempo: float, time_signature: tuple[int, int], bars: int) -> None:
    pattern = make_pattern(tempo, time_signature, bars)
    midi = mido.MidiFile(file=io.BytesIO(pattern_to_midi_bytes(pattern)))
    assert midi.type == 1
    assert midi.ticks_per_beat == PPQ
    tempos = [m.tempo for t in midi.tracks for m in t if m.type == "set_tempo"]
    assert tempos == [mido.bpm2tempo(tempo)]
    assert mido.tempo2bpm(tempos[0]) == pytest.approx(tempo, abs=1e-3)
    sigs = [(m.numerator, m.denominator) for t in midi.tracks for m in t if m.type == "time_signature"]
    assert sigs == [time_signature]
    for track in midi.tracks:
        assert track[-1].type == "end_of_track"
        assert sum(m.time for m in track) == pattern.length_ticks  # loop-exact in every track
    channel_msgs = [m for t in midi.tracks for m in t if not m.is_meta]
    assert {m.channel for m in channel_msgs} == {GM_DRUM_CHANNEL}
    assert sum(m.type == "note_on" for m in channel_msgs) == len(pattern.notes)
    assert sum(m.type == "note_off" for m in channel_msgs) == len(pattern.notes)
    names = [m.name for t in midi.tracks for m in t if m.type == "track_name"]
    assert "Drums" in names
    timed = [(m.type, m.text, sum(x.time for x in t[:i + 1])) for t in midi.tracks for i, m in enumerate(t)
             if m.type in ("text", "marker")]
    assert ("text", "style=j_dilla", 0) in timed
    loop_end = f"drumgen bpm={float(tempo)!r}"
    assert [e for e in timed if e[1] == loop_end] == [("text", loop_end, pattern.length_ticks),
                                                      ("marker", loop_end, pattern.length_ticks)]


@pytest.mark.parametrize(("tempo", "time_signature", "bars"), ROUND_TRIPS[:3] + OTHER_METERS)
def test_file_opens_in_pretty_midi(tempo: float, time_signature: tuple[int, int], bars: int) -> None:
    pattern = make_pattern(tempo, time_signature, bars)
    pm = pretty_midi.PrettyMIDI(io.BytesIO(pattern_to_midi_bytes(pattern)))
    assert len(pm.instruments) == 1
    drums = pm.instruments[0]
    assert drums.is_drum
    assert len(drums.notes) == len(pattern.notes)
    assert pm.get_end_time() == pytest.approx(pattern.duration_seconds, abs=1e-3)
    _, tempi = pm.get_tempo_changes()
    assert list(tempi) == pytest.approx([tempo], abs=1e-3)
    sig = pm.time_signature_changes[0]
    assert (sig.numerator, sig.denominator) == time_signature


def test_note_offs_clipped_to_loop_end_and_next_hit() -> None:
    end = Pattern(bars=1).length_ticks
    pattern = Pattern(notes=[Note(0, CLOSED_HAT, 80, 100), Note(40, CLOSED_HAT, 70, 100),
                             Note(end - 10, CRASH, 100, 480)], bars=1)
    back = midi_to_pattern(pattern_to_midi_bytes(pattern))
    assert [(n.onset, n.duration) for n in back.notes] == [(0, 40), (40, 100), (end - 10, 10)]


def test_same_pattern_gives_identical_bytes() -> None:
    meta = {"style": "funk", "seed": "7"}
    a = make_pattern(meta=meta)
    b = Pattern(notes=list(reversed(a.notes)), tempo=a.tempo, bars=a.bars,
                meta={"seed": "7", "style": "funk"})  # same content, other order
    data = pattern_to_midi_bytes(a)
    assert data == pattern_to_midi_bytes(b)
    assert data == pattern_to_midi_bytes(make_pattern(meta=dict(meta)))
    assert data != pattern_to_midi_bytes(make_pattern(meta={**meta, "seed": "8"}))


def test_track_name_and_unicode_meta_round_trip() -> None:
    pattern = make_pattern(meta={"prompt": "Beyoncé 🥁 = groove", "empty": ""})
    data = pattern_to_midi_bytes(pattern, track_name="Kit ü")
    assert pretty_midi.PrettyMIDI(io.BytesIO(data)).instruments[0].name.encode("latin-1").decode() == "Kit ü"
    assert recipe_of(data) == pattern.meta


@pytest.mark.parametrize(
    "meta", [{"a=b": "x"}, {"": "x"}, {"drumgen": "x"}], ids=["equals", "empty", "marker"]
)
def test_unwritable_meta_keys_rejected(meta: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="meta key"):
        pattern_to_midi(make_pattern(meta=meta))


def test_invalid_pattern_rejected_on_export() -> None:
    with pytest.raises(ValueError, match="outside"):
        pattern_to_midi(Pattern(notes=[Note(10_000, KICK, 100)], bars=1))


# --- import of foreign files ------------------------------------------------------------------------
def foreign_midi(ppq: int = 96, channel: int = GM_DRUM_CHANNEL,
                 notes: list[tuple[int, int, int, int]] | None = None, tempo_bpm: float | None = 100.0,
                 extra: list[mido.MetaMessage] | None = None, end_tick: int | None = None,
                 midi_type: int = 0, track_name: str | None = None) -> bytes:
    """A one-track file at ``ppq`` with (tick, pitch, velocity, length) notes, note_on velocity 0 as off
    (mido writes running status)."""
    notes = notes if notes is not None else [(0, KICK, 100, 10), (ppq, SNARE, 90, 10), (2 * ppq, 42, 60, 10)]
    events: list[tuple[int, int, mido.Message | mido.MetaMessage]] = []
    if track_name is not None:
        events.append((0, 0, mido.MetaMessage("track_name", name=track_name)))
    if tempo_bpm is not None:
        events.append((0, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm))))
    events += [(m.time, 0, m.copy(time=0)) for m in extra or []]
    for tick, pitch, vel, length in notes:
        events.append((tick, 2, mido.Message("note_on", channel=channel, note=pitch, velocity=vel)))
        events.append((tick + length, 1, mido.Message("note_on", channel=channel, note=pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track, now = mido.MidiTrack(), 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=(end_tick - now) if end_tick is not None else 0))
    midi = mido.MidiFile(type=midi_type, ticks_per_beat=ppq)
    midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def multi_track_midi(parts: list[tuple[str, int, list[tuple[int, int, int, int]]]], midi_type: int = 1) -> bytes:
    """A file with one track per ``(name, channel, notes)`` part at 480 PPQ, 100 BPM."""
    midi = mido.MidiFile(type=midi_type, ticks_per_beat=PPQ)
    for i, (name, channel, notes) in enumerate(parts):
        raw = mido.MidiFile(file=io.BytesIO(foreign_midi(PPQ, channel, notes, 100.0 if i == 0 else None,
                                                         track_name=name)))
        midi.tracks.append(raw.tracks[0])
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def test_import_rescales_ppq_and_reads_velocity_zero_offs() -> None:
    read = read_midi(foreign_midi(ppq=96))
    pattern, scale = read.pattern, PPQ // 96
    assert [(n.onset, n.pitch, n.velocity, n.duration) for n in pattern.notes] == [
        (0, KICK, 100, 10 * scale), (96 * scale, SNARE, 90, 10 * scale), (192 * scale, 42, 60, 10 * scale)]
    assert pattern.tempo == 100.0 and pattern.time_signature == (4, 4) and pattern.bars == 1
    assert read.notices == []


@pytest.mark.parametrize("midi_type", [0, 1, 2], ids=["type-0", "type-1", "type-2"])
def test_import_reads_every_file_type(midi_type: int) -> None:
    data = multi_track_midi([("Drums", GM_DRUM_CHANNEL, [(0, KICK, 100, 10), (PPQ, SNARE, 90, 10)]),
                             ("Bass", 0, [(0, 40, 90, 400)])], midi_type=1) if midi_type else foreign_midi(PPQ)
    if midi_type == 2:
        data = data[:9] + b"\x02" + data[10:]  # the header's format field
    assert [n.pitch for n in midi_to_pattern(data).notes][:2] == [KICK, SNARE]


def test_import_finds_the_drum_part_among_other_parts() -> None:
    drums = [(0, KICK, 100, 10), (PPQ, SNARE, 90, 10)]
    data = multi_track_midi([("Bass", 0, [(0, 40, 90, 400), (PPQ, 43, 90, 400)]), ("Kit", GM_DRUM_CHANNEL, drums)])
    assert [n.pitch for n in midi_to_pattern(data).notes] == [KICK, SNARE]
    named = multi_track_midi([("Bass", 0, [(0, 40, 90, 400)]), ("Drums", 2, drums)])  # drums off channel 10
    assert [n.pitch for n in midi_to_pattern(named).notes] == [KICK, SNARE]


def test_a_file_without_a_drum_part_says_so() -> None:
    with pytest.raises(MidiImportError, match="no drum part"):
        midi_to_pattern(multi_track_midi([("Bass", 0, [(0, 40, 90, 400)]), ("Keys", 1, [(0, 60, 90, 400)])]))


def test_import_notices_tempo_changes_long_files_and_dropped_notes() -> None:
    change = [mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(130), time=4 * PPQ)]
    read = read_midi(foreign_midi(ppq=PPQ, notes=[(0, KICK, 100, 10), (5 * PPQ, SNARE, 90, 10)], extra=change))
    assert read.pattern.tempo == 100.0 and any("changes tempo" in n and "100" in n for n in read.notices)
    long = read_midi(foreign_midi(ppq=PPQ, notes=[(0, KICK, 100, 10), (40 * 4 * PPQ, SNARE, 90, 10)]))
    assert long.pattern.bars == MAX_BARS and any("first 32" in n for n in long.notices)
    outside = read_midi(foreign_midi(ppq=PPQ, notes=[(0, KICK, 100, 10), (10, 100, 100, 10), (20, 12, 80, 10)]))
    assert [n.pitch for n in outside.pattern.notes] == [KICK]
    assert any("outside the GM drum range" in n for n in outside.notices)


def test_bars_can_be_asked_for_and_default_to_the_last_note() -> None:
    data = foreign_midi(ppq=PPQ, tempo_bpm=None, notes=[(0, KICK, 100, 10), (9 * PPQ, SNARE, 90, 10)])
    read = read_midi(data)
    assert read.pattern.bars == 3 and read.pattern.tempo == 120.0 and any("no tempo" in n for n in read.notices)
    assert midi_to_pattern(data, bars=2).notes == [Note(0, KICK, 100, 10)]


def test_import_keeps_loudest_of_repeated_hits() -> None:
    notes = [(0, KICK, 40, 5), (0, KICK, 100, 10)]
    assert [n.velocity for n in midi_to_pattern(foreign_midi(ppq=PPQ, notes=notes)).notes] == [100]


@pytest.mark.parametrize("bars", [0, MAX_BARS + 1, 2.5], ids=["zero", "too-many", "fraction"])
def test_import_rejects_bad_bars(bars: int) -> None:
    with pytest.raises(ValueError, match="bars"):
        midi_to_pattern(foreign_midi(), bars=bars)


def _valid_bytes() -> bytes:
    return pattern_to_midi_bytes(make_pattern())


def _smpte() -> bytes:
    data = bytearray(foreign_midi(ppq=PPQ))
    data[12:14] = b"\xe7\x28"  # -25 frames per second, 40 ticks per frame
    return bytes(data)


MALFORMED = [
    pytest.param(b"", "empty", id="empty"),
    pytest.param(b"RIFF\x00\x00\x00\x00WAVEfmt ", "not a MIDI file", id="wav-header"),
    pytest.param(b"hello world", "not a MIDI file", id="text"),
    pytest.param(_valid_bytes()[:60], "truncated", id="truncated"),
    pytest.param(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\xf0\xff\xff",
                 "malformed", id="garbage-track"),
    pytest.param(b"MThd" + b"\x00" * (MAX_MIDI_BYTES + 1), "limit", id="too-large"),
    pytest.param(_smpte(), "SMPTE", id="smpte-time"),
    pytest.param(foreign_midi(notes=[]), "no drum part", id="no-notes"),
    pytest.param(foreign_midi(notes=[(0, 100, 90, 10)]), "no notes the generator can use", id="no-drum-notes"),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED)
def test_malformed_input_raises_midi_import_error(data: bytes, message: str) -> None:
    with pytest.raises(MidiImportError, match=message):
        midi_to_pattern(data)


def test_malformed_file_and_size_cap_on_paths(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not midi at all")
    with pytest.raises(MidiImportError, match="not a MIDI file"):
        midi_to_pattern(bad)
    big = tmp_path / "big.mid"
    big.write_bytes(b"MThd" + b"\x00" * MAX_MIDI_BYTES)
    with pytest.raises(MidiImportError, match="limit"):
        midi_to_pattern(big)
    assert issubclass(MidiImportError, ValueError)
    with pytest.raises(FileNotFoundError):
        midi_to_pattern(tmp_path / "missing.mid")


# --- file names ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("style_id", "tempo", "bars", "seed", "ext", "expected"),
    [
        pytest.param("j_dilla", 90, 4, 123, "mid", "j_dilla_90bpm_4bars_seed123.mid", id="plain"),
        pytest.param("Metro Boomin", 139.6, 8, 0, "wav", "metro_boomin_140bpm_8bars_seed0.wav",
                     id="spaces-round"),
        pytest.param("../../etc", 100, 2, 5, "mid", "etc_100bpm_2bars_seed5.mid", id="traversal"),
        pytest.param("/abs/path\\x", 100, 2, 5, ".OGG", "abs_path_x_100bpm_2bars_seed5.ogg",
                     id="abs-backslash"),
        pytest.param("...", 85, 1, None, "mid", "pattern_85bpm_1bars.mid", id="empty-no-seed"),
    ],
)
def test_pattern_filename(style_id: str, tempo: float, bars: int, seed: int | None, ext: str,
                          expected: str) -> None:
    name = pattern_filename(style_id, tempo, bars, seed, ext)
    assert name == expected
    assert "/" not in name and "\\" not in name and ".." not in name


# --- the Groove MIDI Dataset ------------------------------------------------------------------------
def _dataset_rows() -> list[dict[str, str]]:
    with (GROOVE_DIR / "info.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.dataset
@pytest.mark.parametrize("kind", ["beat_4-4", "fill_4-4"])
def test_import_groove_dataset_file(kind: str) -> None:
    if not (GROOVE_DIR / "info.csv").is_file():
        pytest.skip(f"Groove MIDI Dataset not found at {GROOVE_DIR}")
    beat_type, time_sig = kind.split("_")
    row = next(r for r in _dataset_rows() if r["beat_type"] == beat_type and r["time_signature"] == time_sig)
    pattern = midi_to_pattern(GROOVE_DIR / row["midi_filename"])
    assert pattern.tempo == pytest.approx(float(row["bpm"]), abs=0.01)
    assert pattern.time_signature == tuple(int(x) for x in time_sig.split("-"))
    assert 1 <= pattern.bars <= MAX_BARS
    assert pattern.notes
    pattern.validate()
    again = midi_to_pattern(pattern_to_midi_bytes(pattern))
    assert [(n.onset, n.pitch, n.velocity) for n in again.notes] == [
        (n.onset, n.pitch, n.velocity) for n in pattern.notes]
    assert (again.tempo, again.bars, again.time_signature) == (
        pattern.tempo, pattern.bars, pattern.time_signature)
