"""MIDI export and import: a :class:`~drumgen.pattern.Pattern` to and from a Standard MIDI File.

Exported files are type 1 at 480 PPQ with two tracks:

* track 0 (conductor): ``set_tempo``, ``time_signature``, one ``text`` event
  ``"key=value"`` per ``pattern.meta`` item (the generation recipe, keys sorted),
  and the ``"drumgen bpm=<tempo>"`` marker text placed on the last bar line;
* track 1 (drums): ``track_name``, ``note_on``/``note_off`` pairs on channel 10
  (index 9).

Every track ends (``end_of_track``) exactly on the last bar line, so a DAW loops the
file cleanly; the marker on the loop end also gives tools that take the last event as
the end (pretty_midi, some DAWs) the full loop length. Equal patterns give identical
bytes. Text is written as UTF-8.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections import defaultdict, deque
from pathlib import Path

import mido

from drumgen.drum_map import GM_DRUM_CHANNEL, MAX_DRUM_PITCH, MIN_DRUM_PITCH
from drumgen.pattern import DEFAULT_NOTE_TICKS, MAX_BARS, MIN_BARS, PPQ, Note, Pattern

log = logging.getLogger(__name__)

DEFAULT_TRACK_NAME = "Drums"
DEFAULT_TEMPO_BPM = 120.0  # used on import when a file has no set_tempo
DEFAULT_TIME_SIGNATURE = (4, 4)
MAX_MIDI_BYTES = 2 * 1024 * 1024  # larger inputs are refused before parsing
MARKER_PREFIX = "drumgen"  # marker text: "drumgen bpm=<exact tempo>"
TEMPO_MATCH_BPM = 0.01  # the marker's exact tempo is trusted when set_tempo agrees this closely
IMPORT_TEMPO_DECIMALS = 3  # tempo read from set_tempo alone is rounded to this many decimals
MAX_FILENAME_STYLE_CHARS = 64
NOTE_OFF, NOTE_ON = 0, 1  # event kinds; at equal ticks note-offs sort first

_MARKER_RE = re.compile(rf"^{MARKER_PREFIX} bpm=(\S+)$")
_UNSAFE_CHARS = re.compile(r"[^a-z0-9_]+")


class MidiImportError(ValueError):
    """A MIDI input could not be read (not a MIDI file, empty, truncated, too large, ...)."""


# --- export ---------------------------------------------------------------------------------
def note_events(pattern: Pattern) -> list[tuple[int, int, int, int]]:
    """Return the pattern's note events as ``(tick, kind, pitch, velocity)``, sorted.

    ``kind`` is ``NOTE_OFF`` (0) or ``NOTE_ON`` (1); at equal ticks offs come before ons,
    then ascending pitch. A note's off is at ``onset + duration``, clipped to the last bar
    line and to the next onset of the same pitch (so hits never cut each other short).
    """
    end = pattern.length_ticks
    by_pitch: dict[int, list[Note]] = defaultdict(list)
    for note in sorted(pattern.notes):
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


def _read_text(text: str) -> str:
    """Undo :func:`_utf8_text`; foreign latin-1 text that is not UTF-8 is returned as is."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


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


def pattern_to_midi(pattern: Pattern, track_name: str = DEFAULT_TRACK_NAME) -> mido.MidiFile:
    """Build a type-1, 480-PPQ ``mido.MidiFile`` of ``pattern`` (default track name ``"Drums"``).

    The pattern is validated first (``ValueError`` naming the problem). See the module
    docstring for the layout.
    """
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
    conductor.append((end, mido.MetaMessage("text", text=f"{MARKER_PREFIX} bpm={float(pattern.tempo)!r}")))

    drums: list[tuple[int, mido.Message | mido.MetaMessage]] = [
        (0, mido.MetaMessage("track_name", name=_utf8_text(track_name)))
    ]
    for tick, kind, pitch, velocity in note_events(pattern):
        msg_type = "note_on" if kind == NOTE_ON else "note_off"
        drums.append((tick, mido.Message(msg_type, channel=GM_DRUM_CHANNEL, note=pitch, velocity=velocity)))

    midi = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    for timed in (conductor, drums):
        track = mido.MidiTrack()
        _delta_times(track, [*timed, (end, mido.MetaMessage("end_of_track"))])
        midi.tracks.append(track)
    return midi


def pattern_to_midi_bytes(pattern: Pattern, track_name: str = DEFAULT_TRACK_NAME) -> bytes:
    """Return the Standard MIDI File bytes of ``pattern`` (default track name ``"Drums"``)."""
    buffer = io.BytesIO()
    pattern_to_midi(pattern, track_name).save(file=buffer)
    return buffer.getvalue()


def write_midi(pattern: Pattern, path: str | Path, track_name: str = DEFAULT_TRACK_NAME) -> Path:
    """Write ``pattern`` as a ``.mid`` file at ``path`` (parents created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pattern_to_midi_bytes(pattern, track_name))
    return path


# --- import ---------------------------------------------------------------------------------
def _read_source(source: str | Path | bytes) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        size = path.stat().st_size  # FileNotFoundError for a missing path
        if size > MAX_MIDI_BYTES:
            raise MidiImportError(f"{path.name}: {size} bytes is larger than the {MAX_MIDI_BYTES}-byte limit")
        data = path.read_bytes()
    if not data:
        raise MidiImportError("empty input: no MIDI data")
    if len(data) > MAX_MIDI_BYTES:
        raise MidiImportError(f"{len(data)} bytes is larger than the {MAX_MIDI_BYTES}-byte limit")
    if not data.startswith(b"MThd"):
        raise MidiImportError("not a MIDI file: it does not start with the 'MThd' header")
    return data


def _parse(data: bytes) -> mido.MidiFile:
    try:
        return mido.MidiFile(file=io.BytesIO(data))
    except EOFError as exc:
        raise MidiImportError("truncated MIDI file: the data ends before the file's tracks do") from exc
    except Exception as exc:  # mido raises OSError, ValueError, KeyError, ... on bad data
        raise MidiImportError(f"malformed MIDI file: {type(exc).__name__}: {exc}") from exc


def _timeline(midi: mido.MidiFile) -> tuple[list[tuple[int, int, int, mido.Message]], int]:
    """All messages as ``(absolute tick, track, index, message)`` in time order, and the end tick."""
    timed = []
    end = 0
    for t, track in enumerate(midi.tracks):
        now = 0
        for i, msg in enumerate(track):
            now += msg.time
            timed.append((now, t, i, msg))
        end = max(end, now)
    timed.sort(key=lambda item: item[:3])
    return timed, end


def midi_to_pattern(source: str | Path | bytes, bars: int | None = None) -> Pattern:
    """Read a Standard MIDI File (a path or its bytes) back into a :class:`Pattern`.

    Drums are the notes on channel 10; a file with none there is read as all drums.
    Tempo comes from the first ``set_tempo`` (default 120 BPM; the exact value from a
    drumgen marker when it agrees), the time signature from the first ``time_signature``
    (default 4/4), ``meta`` from ``"key=value"`` text events. Ticks are rescaled to 480 PPQ.
    ``bars`` defaults to the end of the file rounded up to whole bars, at most
    ``MAX_BARS`` (longer files are cut, with a warning). Notes outside the bars or the GM
    drum range are dropped with a warning; for repeated hits of one pitch at one tick the
    loudest is kept.

    Raises ``MidiImportError`` (a ``ValueError``) for input that is not a readable MIDI
    file, is larger than ``MAX_MIDI_BYTES``, or gives an invalid pattern;
    ``FileNotFoundError`` for a missing path.
    """
    if bars is not None and (isinstance(bars, bool) or not isinstance(bars, int)
                             or not MIN_BARS <= bars <= MAX_BARS):
        raise ValueError(f"bars must be a whole number from {MIN_BARS} to {MAX_BARS}, got {bars!r}")
    midi = _parse(_read_source(source))
    if midi.type == 2:
        raise MidiImportError("MIDI type 2 (independent sequences) is not supported")
    file_ppq = midi.ticks_per_beat
    if not file_ppq or file_ppq <= 0:
        raise MidiImportError(f"unsupported MIDI time division {file_ppq!r} (SMPTE timing is not supported)")

    def rescale(tick: int) -> int:
        return tick if file_ppq == PPQ else round(tick * PPQ / file_ppq)

    timed, end_tick = _timeline(midi)
    tempo_us: int | None = None
    marker_bpm: float | None = None
    time_signature: tuple[int, int] | None = None
    meta: dict[str, str] = {}
    ons: dict[int, list[tuple[int, int, int]]] = defaultdict(list)  # channel -> (tick, pitch, velocity)
    open_notes: dict[tuple[int, int], deque[int]] = defaultdict(deque)  # (channel, pitch) -> on indices
    offs: dict[tuple[int, int], int] = {}  # (channel, index in ons[channel]) -> off tick

    for tick, _track, _index, msg in timed:
        if msg.type == "set_tempo" and tempo_us is None:
            tempo_us = msg.tempo
        elif msg.type == "time_signature" and time_signature is None:
            time_signature = (msg.numerator, msg.denominator)
        elif msg.type == "text":
            text = _read_text(msg.text)
            marker = _MARKER_RE.match(text)
            if marker:
                try:
                    marker_bpm = float(marker.group(1))
                except ValueError:
                    log.warning("ignoring unreadable drumgen marker %r", text)
            elif "=" in text:
                key, value = text.split("=", 1)
                if key:
                    meta[key] = value
        elif msg.type == "note_on" and msg.velocity > 0:
            open_notes[msg.channel, msg.note].append(len(ons[msg.channel]))
            ons[msg.channel].append((tick, msg.note, msg.velocity))
        elif msg.type in ("note_off", "note_on"):  # note_on with velocity 0 is a note-off
            pending = open_notes.get((msg.channel, msg.note))
            if pending:
                offs[msg.channel, pending.popleft()] = tick

    # tempo: exact from the marker when set_tempo agrees, else from set_tempo
    if tempo_us is None:
        tempo = marker_bpm if marker_bpm is not None else DEFAULT_TEMPO_BPM
    else:
        file_bpm = mido.tempo2bpm(tempo_us)
        if marker_bpm is not None and abs(marker_bpm - file_bpm) <= TEMPO_MATCH_BPM:
            tempo = marker_bpm
        else:
            tempo = round(file_bpm, IMPORT_TEMPO_DECIMALS)

    # drum notes: channel 10, or every channel when channel 10 has none
    channels = [GM_DRUM_CHANNEL] if ons.get(GM_DRUM_CHANNEL) else sorted(ons)
    if channels and channels != [GM_DRUM_CHANNEL]:
        log.info("no notes on MIDI channel 10; reading the notes of channels %s as drums",
                 [c + 1 for c in channels])
    raw: list[Note] = []
    for channel in channels:
        for i, (tick, pitch, velocity) in enumerate(ons[channel]):
            off = offs.get((channel, i))
            onset = rescale(tick)
            duration = rescale(off) - onset if off is not None else DEFAULT_NOTE_TICKS
            raw.append(Note(onset=onset, pitch=pitch, velocity=velocity, duration=max(1, duration)))

    time_signature = time_signature or DEFAULT_TIME_SIGNATURE
    probe = Pattern(tempo=tempo, bars=1, time_signature=time_signature)
    if bars is None:
        last = max([rescale(end_tick), *(n.onset + 1 for n in raw)])
        bars = max(1, math.ceil(last / probe.ticks_per_bar))
        if bars > MAX_BARS:
            log.warning("MIDI file is %d bars long; keeping the first %d", bars, MAX_BARS)
            bars = MAX_BARS
    length = probe.ticks_per_bar * bars

    notes: dict[tuple[int, int], Note] = {}
    outside = out_of_range = 0
    for note in raw:
        if not MIN_DRUM_PITCH <= note.pitch <= MAX_DRUM_PITCH:
            out_of_range += 1
        elif not 0 <= note.onset < length:
            outside += 1
        else:
            key = (note.onset, note.pitch)
            if key not in notes or note.velocity > notes[key].velocity:
                notes[key] = note
    if outside:
        log.warning("dropped %d note(s) outside the %s bar(s)", outside, bars)
    if out_of_range:
        log.warning("dropped %d note(s) outside the GM drum range %d-%d",
                    out_of_range, MIN_DRUM_PITCH, MAX_DRUM_PITCH)
    if len(notes) < len(raw) - outside - out_of_range:
        log.info("merged %d repeated hit(s) of one pitch at one tick",
                 len(raw) - outside - out_of_range - len(notes))

    pattern = Pattern(notes=sorted(notes.values()), tempo=tempo, bars=bars,
                      time_signature=time_signature, meta=meta)
    try:
        return pattern.validate()
    except ValueError as exc:
        raise MidiImportError(f"MIDI file does not give a valid pattern: {exc}") from exc


# --- file names -----------------------------------------------------------------------------
def pattern_filename(style_id: str, tempo: float, bars: int, seed: int | None, ext: str = "mid") -> str:
    """Return a safe file name such as ``"j_dilla_90bpm_4bars_seed123.mid"`` (default ``ext="mid"``).

    ``style_id`` is lower-cased and reduced to ``[a-z0-9_]`` (never a path; ``"pattern"``
    when nothing is left), the tempo rounded to whole BPM; ``seed=None`` leaves the seed out.
    """
    style = _UNSAFE_CHARS.sub("_", str(style_id).lower()).strip("_")[:MAX_FILENAME_STYLE_CHARS].strip("_")
    parts = [style or "pattern", f"{round(tempo)}bpm", f"{int(bars)}bars"]
    if seed is not None:
        parts.append(f"seed{int(seed)}")
    suffix = re.sub(r"[^a-z0-9]+", "", ext.lower())
    name = "_".join(parts)
    return f"{name}.{suffix}" if suffix else name
