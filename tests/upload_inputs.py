"""Good files a user brings to the four upload modes, made at test time: a programmed funk groove, the
same groove as a drummer might play it (off the grid, uneven velocities), and a bass line.
"""

from __future__ import annotations

import io
import random
from dataclasses import replace
from pathlib import Path

import mido
from conftest import funk_bar

from drumgen.midi_io import pattern_to_midi_bytes
from drumgen.pattern import PPQ, Note, Pattern

GROOVE_TEMPO, BASS_TEMPO = 96.0, 92.0
PLAYED_JITTER_TICKS = 24  # a played hit lands up to this far (25 ms at 96 BPM) off its 16th
# One bar of bass (tick in the bar, pitch, length): the root on 1, pushes on the "a" of 2 and the "and"
# of 3, then beat 4 and its "a".
T16 = PPQ // 4
BASS_BAR = [(0, 40, 360), (7 * T16, 40, 200), (10 * T16, 43, 240), (12 * T16, 45, 400), (15 * T16, 47, 100)]


def funk_groove(bars: int = 4) -> Pattern:
    """``bars`` bars of programmed funk (16th hats, syncopated kick, backbeat with ghost notes)."""
    return Pattern(notes=sorted(n for b in range(bars) for n in funk_bar(b)), tempo=GROOVE_TEMPO, bars=bars)


def played(pattern: Pattern, seed: int = 0) -> Pattern:
    """``pattern`` as played: each hit up to :data:`PLAYED_JITTER_TICKS` off the grid, velocities uneven."""
    rng = random.Random(seed)
    notes = [replace(n, onset=max(0, n.onset + rng.randint(-PLAYED_JITTER_TICKS, PLAYED_JITTER_TICKS)),
                     velocity=max(1, min(127, n.velocity + rng.randint(-12, 12)))) for n in pattern.notes]
    return pattern.with_notes(sorted(notes))


def write_groove_file(path: Path, pattern: Pattern) -> Path:
    path.write_bytes(pattern_to_midi_bytes(pattern))
    return path


def bass_line(bars: int = 4) -> list[Note]:
    return [Note(b * 4 * PPQ + tick, pitch, 90, length) for b in range(bars) for tick, pitch, length in BASS_BAR]


def write_bass_file(path: Path, bars: int = 4, tempo: float = BASS_TEMPO) -> Path:
    """A type-1 file with a tempo track and a bass track on channel 1 (no drums)."""
    midi = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo)),
                                       mido.MetaMessage("time_signature", numerator=4, denominator=4)]))
    events = sorted([(n.onset, 1, mido.Message("note_on", channel=0, note=n.pitch, velocity=n.velocity))
                     for n in bass_line(bars)] +
                    [(n.onset + n.duration, 0, mido.Message("note_off", channel=0, note=n.pitch, velocity=0))
                     for n in bass_line(bars)], key=lambda e: (e[0], e[1]))
    track, now = mido.MidiTrack([mido.MetaMessage("track_name", name="Bass")]), 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    path.write_bytes(buffer.getvalue())
    return path
