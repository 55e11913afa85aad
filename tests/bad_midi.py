"""Bad MIDI files for the upload doors (CLI, app handlers, API): each with the mode it is tried in, the
problem its one-line answer must name (a regex), and what it is, for the README's table.

Made with mido and by hand, at test time (nothing binary is committed).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import mido

from drumgen.midi_io import MAX_MIDI_BYTES, pattern_to_midi_bytes
from drumgen.pattern import PPQ, Note, Pattern

KICK, SNARE, HAT = 36, 38, 42
HEADER = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0"  # format 0, one track, 480 ticks per beat


def track(body: bytes) -> bytes:
    """A track chunk around raw event bytes."""
    return b"MTrk" + len(body).to_bytes(4, "big") + body


@dataclass(frozen=True)
class BadFile:
    id: str
    name: str  # the file name it is uploaded as
    data: bytes
    mode: str
    message: str  # a regex the one-line answer must match
    what: str  # for the README
    route: str = ""  # a regex of the upload route's answer, for a file it refuses before any mode sees it


def midi_file(tracks: list[list[mido.Message | mido.MetaMessage]], ppq: int = PPQ, midi_type: int = 1) -> bytes:
    """A file of ``tracks`` (messages with delta times) at ``ppq``."""
    midi = mido.MidiFile(type=midi_type, ticks_per_beat=ppq)
    for messages in tracks:
        track = mido.MidiTrack()
        track.extend(messages)
        midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def notes(pitches: list[int], channel: int = 9, step: int = PPQ, velocity: int = 100) -> list[mido.Message]:
    out: list[mido.Message] = []
    for i, pitch in enumerate(pitches):
        delta = 0 if i == 0 else step - 10
        out.append(mido.Message("note_on", channel=channel, note=pitch, velocity=velocity, time=delta))
        out.append(mido.Message("note_off", channel=channel, note=pitch, velocity=0, time=10))
    return out


def tempo(bpm: float, time: int = 0) -> mido.MetaMessage:
    return mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=time)


def meter(numerator: int, denominator: int) -> mido.MetaMessage:
    return mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator)


def good_groove() -> bytes:
    """Two bars of rock: 8th hats, kick on 1 and 3, snare on 2 and 4."""
    t16 = PPQ // 4
    hits = [Note(b * 16 * t16 + s * t16, HAT, 80) for b in range(2) for s in range(0, 16, 2)]
    hits += [Note(b * 16 * t16 + s * t16, KICK, 110) for b in range(2) for s in (0, 8)]
    hits += [Note(b * 16 * t16 + s * t16, SNARE, 110) for b in range(2) for s in (4, 12)]
    return pattern_to_midi_bytes(Pattern(notes=sorted(hits), tempo=96.0, bars=2))


def bad_files() -> list[BadFile]:
    good = good_groove()
    smpte = bytearray(good)
    smpte[12:14] = b"\xe7\x28"  # division: -25 frames per second, 40 ticks per frame
    zero_ppq = bytearray(good)
    zero_ppq[12:14] = b"\x00\x00"
    drums = notes([KICK, SNARE, KICK, SNARE])
    return [
        BadFile("empty", "empty.mid", b"", "humanize", r"empty\.mid: the file is empty", "an empty file (0 bytes)",
                route=r"400 .*empty\.mid'? is empty"),
        BadFile("text", "notes.mid", b"kick snare kick snare\n", "humanize", r"not a MIDI file",
                "plain text named .mid", route=r"415 .*notes\.mid'? is not a Standard MIDI File"),
        BadFile("wav-bytes", "loop.mid", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40), "humanize",
                r"not a MIDI file", "a WAV file renamed .mid", route=r"415 .*loop\.mid'? is not a Standard MIDI File"),
        BadFile("wrong-suffix", "groove.wav", good, "humanize", r"groove\.wav: only \.mid or \.midi",
                "a good MIDI file named .wav", route=r"415 only \.mid / \.midi files can be uploaded"),
        BadFile("too-large", "huge.mid", b"MThd" + bytes(MAX_MIDI_BYTES), "humanize",
                r"limit is 2,097,152 bytes", "2 MB and 4 bytes",
                route=r"exceeds the maximum file size of 2097152 bytes|413 .*2,097,152 bytes"),
        BadFile("truncated", "cut.mid", good[:60], "humanize", r"truncated or malformed", "a file cut short"),
        BadFile("garbage-track", "garbage.mid",
                b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\xf0\xff\xff", "humanize",
                r"truncated or malformed", "a track of garbage bytes"),
        BadFile("running-status", "status.mid", HEADER + track(b"\x00\x24\x64\x00\xff\x2f\x00"), "humanize",
                r"truncated or malformed \(Unexpected running status", "running status with no status byte before it"),
        BadFile("header-length", "header.mid", b"MThd\x00\x00\x00\x00" + track(b"\x00\x99\x24\x64\x00\xff\x2f\x00"),
                "humanize", r"truncated or malformed", "a header chunk of length 0"),
        BadFile("smpte", "smpte.mid", bytes(smpte), "humanize", r"SMPTE time code", "SMPTE time instead of beats"),
        BadFile("zero-ppq", "zero.mid", bytes(zero_ppq), "humanize", r"resolution|truncated or malformed",
                "0 ticks per beat"),
        BadFile("no-notes", "silent.mid", midi_file([[tempo(100), meter(4, 4)]]), "humanize",
                r"no drum part \(no notes at all\)", "tempo and meter, no notes"),
        BadFile("no-drum-part", "bass.mid", midi_file([[tempo(100)], notes([40, 43, 45], channel=0)]), "humanize",
                r"no drum part \(no notes on MIDI channel 10", "a bass line only (humanize needs drums)"),
        BadFile("no-gm-drum-notes", "high.mid", midi_file([[tempo(100), *notes([100, 110])]]), "humanize",
                r"no notes the generator can use", "channel-10 notes outside the GM drum range"),
        BadFile("three-four", "waltz.mid", midi_file([[tempo(100), meter(3, 4), *drums]]), "humanize",
                r"3/4; only 4/4", "a 3/4 groove"),
        BadFile("six-eight", "shuffle.mid", midi_file([[tempo(100), meter(6, 8), *drums]]), "continue",
                r"6/8; only 4/4", "a 6/8 groove (continue)"),
        BadFile("only-note-offs", "offs.mid",
                midi_file([[tempo(100), *[m for m in drums if m.type == "note_off"]]]), "reroll",
                r"no drum part", "note-offs without note-ons (re-roll)"),
        BadFile("part-without-notes", "empty_part.mid", midi_file([[tempo(100), meter(4, 4)]]), "drumify",
                r"the file has no notes", "no notes to drumify"),
        BadFile("part-in-5-4", "odd.mid", midi_file([[tempo(100), meter(5, 4)], notes([40, 43], channel=0)]),
                "drumify", r"5/4; only 4/4", "a 5/4 bass line (drumify)"),
    ]


NOTICES = [  # (id, name, data, mode, the notice a groove comes with): odd but usable files
    ("tempo-change", "change.mid", lambda: midi_file([[tempo(100), *notes([KICK, SNARE]), tempo(140, 0),
                                                       *notes([KICK, SNARE])]]), "humanize",
     r"changes tempo; using its first tempo, 100 BPM"),
    ("absurd-delta", "far.mid", lambda: midi_file([[tempo(100), *notes([KICK, SNARE]),
                                                    mido.Message("note_on", channel=9, note=KICK, velocity=90,
                                                                 time=0x0FFFFFFF),
                                                    mido.Message("note_off", channel=9, note=KICK, time=10)]]),
     "humanize", r"keeping the first 32"),
    ("no-tempo", "plain.mid", lambda: midi_file([notes([KICK, SNARE, KICK, SNARE])]), "humanize",
     r"no tempo; using 120 BPM"),
]
