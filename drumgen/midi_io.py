"""MIDI export and import: a :class:`~drumgen.pattern.Pattern` to and from a Standard MIDI File.

Exported files are type 1 at 480 PPQ with a conductor track and the drums:

* track 0 (conductor): ``set_tempo``, ``time_signature``, one ``text`` event
  ``"key=value"`` per ``pattern.meta`` item (the generation recipe, keys sorted),
  and ``"drumgen bpm=<tempo>"`` on the last bar line, as a text event and a marker (the loop end
  and the exact tempo, which ``set_tempo``'s whole microseconds cannot hold);
* track 1 (drums): ``track_name``, ``note_on``/``note_off`` pairs on channel 10
  (index 9) - or, split, one such track per kit piece (Kick, Snare, Hi-hat, ...) - in General
  MIDI's note numbers or a drum instrument's own (:mod:`drumgen.drum_maps`).

Every track ends (``end_of_track``) exactly on the last bar line, so a DAW loops the
file cleanly; the marker on the loop end also gives tools that take the last event as
the end (pretty_midi, some DAWs) the full loop length. Equal patterns give identical
bytes. Text is written as UTF-8.

Reading is :func:`read_midi`, on symusic's parser (type 0, 1 and 2 files, running status, any
number of tracks), for uploads, the dataset and the app alike.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import mido
from symusic import Score, Track

from drumgen.constants import MAX_BARS, MAX_TEMPO, MIN_TEMPO, PPQ
from drumgen.drum_maps import DrumMap, remap_notes
from drumgen.limits import BARS
from drumgen.pattern import Note, Pattern, clamp_velocity
from drumgen.voices import GM_DRUM_CHANNEL, MAX_DRUM_PITCH, MIN_DRUM_PITCH, voice_of

log = logging.getLogger(__name__)

DEFAULT_TRACK_NAME = "Drums"
DEFAULT_TEMPO_BPM = 120.0  # used on import when a file has no set_tempo
MAX_MIDI_BYTES = 2 * 1024 * 1024  # larger inputs are refused before parsing
MARKER_PREFIX = "drumgen"  # marker text: "drumgen bpm=<exact tempo>"
TEMPO_MATCH_BPM = 0.01  # the marker's exact tempo is trusted when set_tempo agrees this closely
IMPORT_TEMPO_DECIMALS = 3  # tempo read from set_tempo alone is rounded to this many decimals
MAX_FILENAME_STYLE_CHARS = 64
NOTE_OFF, NOTE_ON = 0, 1  # event kinds; at equal ticks note-offs sort first
# Kit pieces of a split export, in track order, and the voices each holds.
PIECE_OF_VOICE: dict[str, str] = {
    "kick": "Kick", "snare": "Snare", "closed_hat": "Hi-hat", "open_hat": "Hi-hat", "high_tom": "High tom",
    "mid_tom": "Mid tom", "low_tom": "Low tom", "crash": "Crash", "ride": "Ride",
}
PIECES: tuple[str, ...] = tuple(dict.fromkeys(PIECE_OF_VOICE.values()))
OTHER_PIECE = "Percussion"  # GM percussion no voice explains (an upload's tambourine, say)
_DRUM_NAME = re.compile(r"drum|perc|kit|beat", re.IGNORECASE)  # track names of a drum part off channel 10
MERGE_TICKS = PPQ // 8  # a part's onsets closer than a 32nd are one onset

_MARKER_RE = re.compile(rf"^{MARKER_PREFIX} bpm=(\S+)$")
_UNSAFE_CHARS = re.compile(r"[^a-z0-9_]+")


class MidiImportError(ValueError):
    """A MIDI input could not be read (not a MIDI file, empty, truncated, too large, no drums, not 4/4, ...)."""


# --- export ---------------------------------------------------------------------------------
def note_events(pattern: Pattern, notes: Iterable[Note] | None = None) -> list[tuple[int, int, int, int]]:
    """Return note events as ``(tick, kind, pitch, velocity)``, sorted: of ``notes`` (default: the
    pattern's) in the pattern's loop.

    ``kind`` is ``NOTE_OFF`` (0) or ``NOTE_ON`` (1); at equal ticks offs come before ons,
    then ascending pitch. A note's off is at ``onset + duration``, clipped to the last bar
    line and to the next onset of the same pitch (so hits never cut each other short).
    """
    end = pattern.length_ticks
    by_pitch: dict[int, list[Note]] = defaultdict(list)
    for note in sorted(pattern.notes if notes is None else notes):
        by_pitch[note.pitch].append(note)
    events: list[tuple[int, int, int, int]] = []
    for pitch, notes in by_pitch.items():
        for i, note in enumerate(notes):
            off = min(note.onset + note.duration, end)
            if i + 1 < len(notes):
                off = min(off, notes[i + 1].onset)
            off = max(off, note.onset + 1)
            events.append((note.onset, NOTE_ON, pitch, note.velocity))
            events.append((off, NOTE_OFF, pitch, 0))
    events.sort()
    return events


def _utf8_text(text: str) -> str:
    """Encode ``text`` as UTF-8 in the latin-1 string mido writes byte for byte."""
    return text.encode("utf-8").decode("latin-1")


def _check_meta(meta: dict[str, str]) -> None:
    for key in meta:
        if not isinstance(key, str) or not key or "=" in key or "\n" in key or key.startswith(MARKER_PREFIX):
            raise ValueError(
                f"meta key {key!r} cannot be written: keys must be non-empty text without '=' or "
                f"newlines and must not start with {MARKER_PREFIX!r}"
            )


def _delta_times(track: mido.MidiTrack, timed: list[tuple[int, mido.Message | mido.MetaMessage]]) -> None:
    """Append ``(absolute tick, message)`` items to ``track`` with delta times."""
    now = 0
    for tick, msg in timed:
        track.append(msg.copy(time=tick - now))
        now = tick


def tracks_of(pattern: Pattern, drum_map: DrumMap | None = None, split_tracks: bool = False,
              track_name: str = DEFAULT_TRACK_NAME) -> list[tuple[str, list[Note]]]:
    """The drum tracks to write, as ``(name, notes)``: one track of every note, or with
    ``split_tracks`` one per kit piece the groove uses (in :data:`PIECES` order); the notes in
    ``drum_map``'s numbers (GM when None). Hi-hats are remapped as one piece, so an open hat's
    articulation still sees the hats after it."""
    if split_tracks:
        groups: dict[str, list[Note]] = {}
        for note in pattern.notes:
            groups.setdefault(PIECE_OF_VOICE.get(voice_of(note.pitch) or "", OTHER_PIECE), []).append(note)
        named = [(piece, groups[piece]) for piece in (*PIECES, OTHER_PIECE) if piece in groups]
    else:
        named = [(track_name, list(pattern.notes))]
    if drum_map is None:
        return named
    mapped = [(name, remap_notes(notes, drum_map, loop_ticks=pattern.length_ticks)) for name, notes in named]
    return [(name, notes) for name, notes in mapped if notes]


def pattern_to_midi(pattern: Pattern, track_name: str = DEFAULT_TRACK_NAME, check: bool = True,
                    drum_map: DrumMap | None = None, split_tracks: bool = False) -> mido.MidiFile:
    """Build a type-1, 480-PPQ ``mido.MidiFile`` of ``pattern`` (default track name ``"Drums"``).

    ``drum_map`` writes the notes in a drum instrument's own numbers (default: General MIDI);
    ``split_tracks`` writes one named track per kit piece (Kick, Snare, Hi-hat, ...), all on
    channel 10. The pattern is validated first (``ValueError`` naming the problem) unless ``check``
    is False (the engine validates each groove once, before it writes it). See the module docstring
    for the layout.
    """
    if check:
        pattern.validate()
    _check_meta(pattern.meta)
    end = pattern.length_ticks
    num, den = pattern.time_signature

    conductor: list[tuple[int, mido.MetaMessage]] = [
        (0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(pattern.tempo))),
        (0, mido.MetaMessage("time_signature", numerator=num, denominator=den)),
    ]
    for key in sorted(pattern.meta):
        text = _utf8_text(f"{key}={pattern.meta[key]}")
        conductor.append((0, mido.MetaMessage("text", text=text)))
    loop_end = f"{MARKER_PREFIX} bpm={float(pattern.tempo)!r}"
    conductor.append((end, mido.MetaMessage("text", text=loop_end)))  # tools that end at the last text see the loop
    conductor.append((end, mido.MetaMessage("marker", text=loop_end)))  # the reader (symusic) reads markers

    midi = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    timed_tracks: list[list[tuple[int, mido.Message | mido.MetaMessage]]] = [conductor]
    for name, notes in tracks_of(pattern, drum_map, split_tracks, track_name):
        drums: list[tuple[int, mido.Message | mido.MetaMessage]] = [
            (0, mido.MetaMessage("track_name", name=_utf8_text(name)))]
        for tick, kind, pitch, velocity in note_events(pattern, notes):
            msg_type = "note_on" if kind == NOTE_ON else "note_off"
            drums.append((tick, mido.Message(msg_type, channel=GM_DRUM_CHANNEL, note=pitch, velocity=velocity)))
        timed_tracks.append(drums)
    for timed in timed_tracks:
        track = mido.MidiTrack()
        _delta_times(track, [*timed, (end, mido.MetaMessage("end_of_track"))])
        midi.tracks.append(track)
    return midi


def pattern_to_midi_bytes(pattern: Pattern, track_name: str = DEFAULT_TRACK_NAME, check: bool = True,
                          drum_map: DrumMap | None = None, split_tracks: bool = False) -> bytes:
    """Return the Standard MIDI File bytes of ``pattern`` (see :func:`pattern_to_midi`)."""
    buffer = io.BytesIO()
    pattern_to_midi(pattern, track_name, check, drum_map, split_tracks).save(file=buffer)
    return buffer.getvalue()


def write_midi(pattern: Pattern, path: str | Path, track_name: str = DEFAULT_TRACK_NAME) -> Path:
    """Write ``pattern`` as a ``.mid`` file at ``path`` (parents created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pattern_to_midi_bytes(pattern, track_name))
    return path


# --- import ---------------------------------------------------------------------------------
@dataclass
class MidiRead:
    """A drum part read from a MIDI file, and what the reader had to do to it (one line each)."""

    pattern: Pattern
    notices: list[str] = field(default_factory=list)


def _read_source(source: str | Path | bytes) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        path = Path(source)
        size = path.stat().st_size  # FileNotFoundError for a missing path
        if size > MAX_MIDI_BYTES:
            raise MidiImportError(f"{path.name} is {size:,} bytes; the limit is {MAX_MIDI_BYTES:,} bytes")
        data = path.read_bytes()
    if not data:
        raise MidiImportError("the file is empty: no MIDI data")
    if len(data) > MAX_MIDI_BYTES:
        raise MidiImportError(f"the file is {len(data):,} bytes; the limit is {MAX_MIDI_BYTES:,} bytes")
    if not data.startswith(b"MThd"):
        raise MidiImportError("not a MIDI file: it does not start with the 'MThd' header")
    return data


def read_score(source: str | Path | bytes) -> Score:
    """Parse a Standard MIDI File (a path or its bytes, type 0, 1 or 2) with symusic.

    ``MidiImportError`` (a ``ValueError``) names what is wrong with a file that is too large, empty,
    not MIDI, truncated or malformed; ``FileNotFoundError`` for a missing path.
    """
    data = _read_source(source)
    try:
        score = Score.from_midi(data)
    except RuntimeError as exc:  # symusic's parser reports every malformed file this way
        detail = str(exc).removeprefix("MiniMidi: ").split(":")[0].strip()
        if "Division" in detail:
            raise MidiImportError("the file uses SMPTE time code instead of beats; save it with a "
                                  "ticks-per-beat resolution") from None
        raise MidiImportError(f"the MIDI data is truncated or malformed ({detail})") from None
    if score.ticks_per_quarter <= 0:
        raise MidiImportError(f"unsupported MIDI resolution {score.ticks_per_quarter} ticks per beat")
    return score


def score_notes(score: Score, tracks: Iterable[Track] | None = None) -> list[Note]:
    """The notes of ``tracks`` (default: all) rescaled to 480 PPQ; velocities clamped to 1-127."""
    scale = PPQ / score.ticks_per_quarter
    return [Note(round(n.time * scale), n.pitch, clamp_velocity(n.velocity), max(1, round(n.duration * scale)))
            for track in (score.tracks if tracks is None else tracks) for n in track.notes]


def _drum_tracks(score: Score) -> list[Track]:
    """Tracks on MIDI channel 10, else tracks named like a drum part."""
    drums = [t for t in score.tracks if t.is_drum and len(t.notes)]
    if drums:
        return drums
    return [t for t in score.tracks if len(t.notes) and _DRUM_NAME.search(t.name or "")]


def _tempo(score: Score, notices: list[str]) -> float:
    """The first tempo (exact from a drumgen marker when it agrees), with a notice if the tempo changes."""
    if not len(score.tempos):
        notices.append(f"the file has no tempo; using {DEFAULT_TEMPO_BPM:g} BPM")
        return DEFAULT_TEMPO_BPM
    first = score.tempos[0].qpm
    if len({round(t.qpm, 3) for t in score.tempos}) > 1:
        notices.append(f"the file changes tempo; using its first tempo, {first:.3f} BPM".replace(".000 ", " "))
    for marker in score.markers:
        found = _MARKER_RE.match(marker.text)
        if found:
            try:
                exact = float(found.group(1))
            except ValueError:
                continue
            if abs(exact - first) <= TEMPO_MATCH_BPM:
                return exact
    return round(first, IMPORT_TEMPO_DECIMALS)


def read_midi(source: str | Path | bytes, bars: int | None = None) -> MidiRead:
    """Read the drum part of a Standard MIDI File (a path or its bytes) into a 4/4 :class:`Pattern`.

    The drum part is the notes on MIDI channel 10, or of tracks named like drums when no channel-10
    notes exist; ``MidiImportError`` says so when there is neither. Tempo: the first tempo (the exact
    value from a drumgen marker when it agrees; a notice when the file changes tempo); a meter other
    than 4/4 is an error. ``bars`` defaults to the drumgen loop-end marker, else the last note
    rounded up to whole bars, at most ``MAX_BARS`` (a notice when longer). Notes outside the bars or
    the GM drum range are dropped with a notice; of repeated hits of one pitch at one tick the loudest
    is kept. Ticks are rescaled to 480 PPQ.

    Raises ``MidiImportError`` (a ``ValueError``) naming the problem; ``FileNotFoundError`` for a
    missing path.
    """
    if bars is not None:
        bars = BARS.check(bars)
    score = read_score(source)
    notices: list[str] = []
    _check_meter(score)
    tracks = _drum_tracks(score)
    if not tracks:
        what = "no notes at all" if not score.note_num() else "no notes on MIDI channel 10 and no track named drums"
        raise MidiImportError(f"the file has no drum part ({what})")
    tempo = _tempo(score, notices)
    raw = score_notes(score, tracks)
    bar_ticks = 4 * PPQ
    if bars is None:
        scale = PPQ / score.ticks_per_quarter
        loop_end = [m.time for m in score.markers if _MARKER_RE.match(m.text)]
        last = round(loop_end[0] * scale) if loop_end else max(n.onset for n in raw) + 1
        bars = max(1, math.ceil(last / bar_ticks))
        if bars > MAX_BARS:
            notices.append(f"the groove is {bars} bars long; keeping the first {MAX_BARS}")
            bars = MAX_BARS
    length = bar_ticks * bars
    notes: dict[tuple[int, int], Note] = {}
    outside = out_of_range = 0
    for note in raw:
        if not MIN_DRUM_PITCH <= note.pitch <= MAX_DRUM_PITCH:
            out_of_range += 1
        elif not 0 <= note.onset < length:
            outside += 1
        elif (note.onset, note.pitch) not in notes or note.velocity > notes[note.onset, note.pitch].velocity:
            notes[note.onset, note.pitch] = replace(note, duration=max(1, min(note.duration, length - note.onset)))
    if outside and len(notes) and bars < MAX_BARS:
        notices.append(f"dropped {outside} note(s) after the {bars} bar(s)")
    if out_of_range:
        notices.append(f"dropped {out_of_range} note(s) outside the GM drum range {MIN_DRUM_PITCH}-{MAX_DRUM_PITCH}")
    if not notes:
        raise MidiImportError("the drum part has no notes the generator can use (GM drum notes "
                              f"{MIN_DRUM_PITCH}-{MAX_DRUM_PITCH} inside the first {bars} bar(s))")
    pattern = Pattern(notes=sorted(notes.values()), tempo=tempo, bars=bars)
    try:
        pattern.validate()
    except ValueError as exc:
        raise MidiImportError(f"the file does not give a valid groove: {exc}") from exc
    for notice in notices:
        log.info("MIDI import: %s", notice)
    return MidiRead(pattern, notices)


@dataclass(frozen=True)
class PartRead:
    """The onsets of any part of a MIDI file (a bass line, a melody, a tapped rhythm) at 480 PPQ,
    merged within a 32nd, each with its longest note's length; the file's tempo and length."""

    onsets: tuple[int, ...]
    lengths: tuple[int, ...]
    tempo: float
    bars: int
    notices: tuple[str, ...] = ()


def read_part(source: str | Path | bytes) -> PartRead:
    """The rhythm of a file's melodic parts (every track off channel 10; the drums when there is
    nothing else), for drums that follow it. Same checks and notices as :func:`read_midi`."""
    score = read_score(source)
    notices: list[str] = []
    _check_meter(score)
    tracks = [t for t in score.tracks if len(t.notes) and not t.is_drum] or [t for t in score.tracks if len(t.notes)]
    if not tracks:
        raise MidiImportError("the file has no notes")
    tempo = _tempo(score, notices)
    if not MIN_TEMPO <= tempo <= MAX_TEMPO:  # drums follow the part at its own tempo, so it must be playable
        raise MidiImportError(f"the part's tempo {tempo:g} BPM is outside {MIN_TEMPO:g}-{MAX_TEMPO:g} BPM")
    notes = sorted(score_notes(score, tracks))
    bars = max(1, math.ceil((notes[-1].onset + 1) / (4 * PPQ)))
    if bars > MAX_BARS:
        notices.append(f"the part is {bars} bars long; keeping the first {MAX_BARS}")
        bars = MAX_BARS
    onsets: list[int] = []
    lengths: list[int] = []
    for note in notes:
        if note.onset >= bars * 4 * PPQ:
            break
        if onsets and note.onset - onsets[-1] < MERGE_TICKS:
            lengths[-1] = max(lengths[-1], note.duration)
            continue
        onsets.append(note.onset)
        lengths.append(note.duration)
    return PartRead(tuple(onsets), tuple(lengths), tempo, bars, tuple(notices))


def _check_meter(score: Score) -> None:
    for sig in score.time_signatures:
        if (sig.numerator, sig.denominator) != (4, 4):
            raise MidiImportError(f"the groove is in {sig.numerator}/{sig.denominator}; only 4/4 is supported")


def midi_to_pattern(source: str | Path | bytes, bars: int | None = None) -> Pattern:
    """The drum part of a Standard MIDI File as a :class:`Pattern` (see :func:`read_midi`)."""
    return read_midi(source, bars).pattern


# --- file names -----------------------------------------------------------------------------
def pattern_filename(style_id: str, tempo: float, bars: int, seed: int | None, ext: str = "mid",
                     target: str | None = None) -> str:
    """Return a safe file name such as ``"j_dilla_90bpm_4bars_seed123.mid"`` (default ``ext="mid"``).

    ``style_id`` is lower-cased and reduced to ``[a-z0-9_]`` (never a path; ``"pattern"``
    when nothing is left), the tempo rounded to whole BPM; ``seed=None`` leaves the seed out;
    ``target`` (a drum map's id) is appended, as ``..._seed123_ezdrummer_3.mid``.
    """
    def safe(text: str) -> str:
        return _UNSAFE_CHARS.sub("_", str(text).lower()).strip("_")[:MAX_FILENAME_STYLE_CHARS].strip("_")

    parts = [safe(style_id) or "pattern", f"{round(tempo)}bpm", f"{int(bars)}bars"]
    if seed is not None:
        parts.append(f"seed{int(seed)}")
    if target and safe(target):
        parts.append(safe(target))
    suffix = re.sub(r"[^a-z0-9]+", "", ext.lower())
    name = "_".join(parts)
    return f"{name}.{suffix}" if suffix else name
