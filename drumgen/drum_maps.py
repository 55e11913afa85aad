"""Drum-map presets: where a target instrument (a DAW's drum kit, a drum sampler, an e-kit) expects
each drum on the MIDI keyboard, and the remapping of a General MIDI groove onto it.

One TOML file per target in ``drum_maps/`` (file stem = id, e.g. ``superior_drummer_3.toml``):
``name``, ``source`` (the published map the numbers follow), optional ``notes_comment``, a
``[voices]`` table with the MIDI note (0-127) of each of the nine canonical voices
(:data:`drumgen.voices.VOICES`) and an optional ``[articulations]`` table with the notes of
the articulations the target has (:data:`ARTICULATIONS`). ``gm.toml`` is the default.

The folder is :data:`drumgen.resources.DRUM_MAPS_DIR`, overridable with ``$DRUMGEN_DRUM_MAPS_DIR``
or the ``maps_dir`` argument of every function here. A file that does not parse or validate is
logged and skipped (see :func:`drum_map_problems`) so the others still load. Map names are only
ever looked up in the loaded registry, never used as paths.
"""

from __future__ import annotations

import bisect
import logging
import os
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from drumgen.constants import PPQ
from drumgen.limits import shown
from drumgen.pattern import Note
from drumgen.presets import Loaded, PresetFolder, normalize
from drumgen.resources import DRUM_MAPS_DIR
from drumgen.voices import VOICES, voice_of

log = logging.getLogger(__name__)

DRUM_MAPS_DIR_ENV = "DRUMGEN_DRUM_MAPS_DIR"
DEFAULT_DRUM_MAP = "gm"  # General MIDI: the groove's own notes, exported unchanged
MIN_NOTE, MAX_NOTE = 0, 127

# Articulations a map may declare, and what each means on the target.
ARTICULATIONS: dict[str, str] = {
    "hat_pedal": "hi-hat played with the foot (closed pedal 'chick')",
    "hat_half_open": "hi-hat slightly / half open (short, barky open hats)",
    "hat_open": "hi-hat wide open (long open hats that ring)",
    "hat_closed_tip": "closed hi-hat, stick tip on the bow",
    "hat_closed_edge": "closed hi-hat, stick shank on the edge (accents)",
    "snare_rimshot": "snare rimshot (head and rim together)",
    "snare_side_stick": "snare side stick / cross stick",
    "ride_bell": "ride bell",
    "ride_edge": "ride edge (shoulder of the stick on the edge)",
    "crash_choke": "crash grabbed right after the hit",
}

# Remapping thresholds (see remap_notes). Gaps are in beats of ``ticks_per_beat`` ticks.
HALF_OPEN_MAX_GAP_BEATS = 0.25  # an open hat closed again within a 16th note is half-open
WIDE_OPEN_MIN_GAP_BEATS = 1.0  # an open hat left ringing a beat or more is wide open
HAT_EDGE_MIN_VELOCITY = 100  # closed hats this loud are played with the shank on the edge
RIMSHOT_MIN_VELOCITY = 120  # snare hits this loud are rimshots

# GM (and Roland) notes that name an articulation directly, with the voice they fall back to.
_PITCH_ARTICULATION: dict[int, str] = {
    44: "hat_pedal",  # GM Pedal Hi-Hat
    37: "snare_side_stick",  # GM Side Stick (Roland cross-stick)
    53: "ride_bell",  # GM Ride Bell
    59: "ride_edge",  # GM Ride Cymbal 2; the Roland kits of the Groove dataset send it for the ride edge
    22: "hat_closed_edge",  # Roland hi-hat closed edge
}
_HAT_VOICES = frozenset({"closed_hat", "open_hat"})
_SNARE_HEAD_PITCHES = frozenset({38, 40})  # acoustic / electric snare; not the clap (39)

_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_TOP_KEYS = frozenset({"name", "source", "notes_comment", "voices", "articulations"})


class DrumMapError(ValueError):
    """A drum-map file is malformed; the message names the file and the field."""


class UnknownDrumMapError(ValueError):
    """No drum map has that id or display name; the message lists the valid ids."""


@dataclass(frozen=True)
class DrumMap:
    """One target. ``voices`` holds a note for every voice in :data:`~drumgen.voices.VOICES`;
    ``articulations`` holds only those (of :data:`ARTICULATIONS`) the target has. Treat both
    dicts as read-only: the instance is shared by every caller of the registry."""

    id: str
    name: str
    source: str
    voices: dict[str, int]
    articulations: dict[str, int] = field(default_factory=dict)
    notes_comment: str = ""

    @property
    def notes(self) -> frozenset[int]:
        """Every MIDI note this map declares (voices and articulations)."""
        return frozenset(self.voices.values()) | frozenset(self.articulations.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable copy: id, name, source, notes (per voice), articulations, notes_comment."""
        return {
            "id": self.id,
            "name": self.name,
            "source": self.source,
            "notes": {voice: self.voices[voice] for voice in VOICES},
            "articulations": dict(self.articulations),
            "notes_comment": self.notes_comment,
        }


# --------------------------------------------------------------------------- loading


def _fail(path: Path, key: str, problem: str) -> DrumMapError:
    return DrumMapError(f"{path}: field '{key}' {problem}")


def _string(path: Path, data: dict[str, Any], key: str, *, required: bool = True) -> str:
    if key not in data:
        if required:
            raise _fail(path, key, "is missing")
        return ""
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, key, f"must be a non-empty string, got {value!r}")
    return value.strip()


def _note_table(
    path: Path, data: dict[str, Any], key: str, allowed: Sequence[str], *, complete: bool
) -> dict[str, int]:
    """Read a table of MIDI notes keyed by ``allowed`` names (all of them when ``complete``)."""
    if key not in data:
        if complete:
            raise _fail(path, key, "is missing")
        return {}
    table = data[key]
    if not isinstance(table, dict):
        raise _fail(path, key, f"must be a table, got {type(table).__name__}")
    for name in table:
        if name not in allowed:
            raise _fail(path, f"{key}.{name}", f"is not a known name (expected one of: {', '.join(allowed)})")
    notes: dict[str, int] = {}
    for name in allowed:
        if name not in table:
            if complete:
                raise _fail(path, f"{key}.{name}", "is missing")
            continue
        value = table[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, f"{key}.{name}", f"must be a MIDI note number (integer), got {value!r}")
        if not MIN_NOTE <= value <= MAX_NOTE:
            raise _fail(path, f"{key}.{name}", f"is {value}; must be in {MIN_NOTE}-{MAX_NOTE}")
        notes[name] = value
    return notes


def load_drum_map(path: str | os.PathLike[str]) -> DrumMap:
    """Parse and validate one drum-map file; raises ``DrumMapError`` naming the file and field.

    Every voice must be present; ``notes_comment`` and ``[articulations]`` are optional.
    """
    path = Path(path)
    stem = path.stem
    if not _ID_RE.match(stem):
        raise DrumMapError(f"{path}: file name must be a lowercase id [a-z][a-z0-9_]*, e.g. gm.toml")
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise DrumMapError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise DrumMapError(f"{path}: not valid UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise DrumMapError(f"{path}: cannot read: {exc}") from exc
    for key in data:
        if key not in _TOP_KEYS:
            raise _fail(path, key, f"is not a known field (expected one of: {', '.join(sorted(_TOP_KEYS))})")
    return DrumMap(
        id=stem,
        name=_string(path, data, "name"),
        source=_string(path, data, "source"),
        voices=_note_table(path, data, "voices", VOICES, complete=True),
        articulations=_note_table(path, data, "articulations", tuple(ARTICULATIONS), complete=False),
        notes_comment=_string(path, data, "notes_comment", required=False),
    )


_FOLDER = PresetFolder("drum map", load_drum_map, DrumMapError, DRUM_MAPS_DIR, DRUM_MAPS_DIR_ENV,
                       lambda m: (m.id != DEFAULT_DRUM_MAP, m.id))  # the default first, then by id


def _registry(maps_dir: str | os.PathLike[str] | None) -> Loaded[DrumMap]:
    return _FOLDER.load(maps_dir)


def list_drum_maps(maps_dir: str | os.PathLike[str] | None = None) -> list[DrumMap]:
    """All valid maps, ``gm`` first, then by id. Malformed files are skipped (see
    :func:`drum_map_problems`)."""
    return list(_registry(maps_dir).items)


def drum_map_problems(maps_dir: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Files that were skipped, as ``{file path: error message}``; empty when all maps load."""
    return dict(_registry(maps_dir).problems)


def get_drum_map(name: str, maps_dir: str | os.PathLike[str] | None = None) -> DrumMap:
    """Look a map up by id or display name; case-insensitive, spaces/hyphens/underscores
    interchangeable. Raises ``UnknownDrumMapError`` listing the valid ids, or ``DrumMapError``
    with the load problem when the named map's file is malformed."""
    reg = _registry(maps_dir)
    valid = ", ".join(m.id for m in reg.items) or "(none)"
    if not isinstance(name, str) or not normalize(name):
        raise UnknownDrumMapError(f"drum map name must be a non-empty string, got {shown(name)}; "
                                  f"valid drum maps: {valid}")
    key = normalize(name)
    found = reg.find(key)
    if found is not None:
        return found
    if key in reg.broken_ids:
        raise DrumMapError(f"drum map {key!r} could not be loaded: {reg.broken_ids[key]}")
    raise UnknownDrumMapError(f"unknown drum map {shown(name)}; valid drum maps: {valid}")


def drum_maps_json(maps_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Every valid map as :meth:`DrumMap.to_dict` (id, name, source, notes per voice,
    articulations, notes_comment), in :func:`list_drum_maps` order."""
    return [m.to_dict() for m in _registry(maps_dir).items]


# --------------------------------------------------------------------------- remapping


def remap_notes(
    notes: Sequence[Note],
    drum_map: DrumMap,
    ticks_per_beat: int = PPQ,
    *,
    loop_ticks: int | None = None,
) -> list[Note]:
    """Rewrite a groove's GM drum notes as ``drum_map``'s notes, choosing articulations the target
    has from what the groove plays. Onsets, velocities and durations are kept.

    The ``gm`` map is the identity: every note keeps its pitch, including GM percussion that no
    voice explains (tambourine, cowbell, ...). For every other map each note is reduced to its
    voice (:func:`drumgen.voices.voice_of`) and written as that voice's note, except:

    * GM 44 (pedal hat) -> ``hat_pedal``; 37 (side stick) -> ``snare_side_stick``; 53 (ride bell)
      -> ``ride_bell``; 59 (ride cymbal 2, the ride edge on Roland kits) -> ``ride_edge``; Roland
      22 (closed hat edge) -> ``hat_closed_edge``.
    * Other closed hats: velocity >= ``HAT_EDGE_MIN_VELOCITY`` -> ``hat_closed_edge`` (accents are
      played with the shank), otherwise ``hat_closed_tip``.
    * Open hats by the gap to the next hi-hat hit of any kind (closed, open or pedal): at most
      ``HALF_OPEN_MAX_GAP_BEATS`` -> ``hat_half_open``; at least ``WIDE_OPEN_MIN_GAP_BEATS`` ->
      ``hat_open``; between, or with no later hat, the ``open_hat`` voice. With ``loop_ticks``
      (the loop length) the last open hat's gap runs on to the first hat of the next loop.
    * Snare hits (38, 40) with velocity >= ``RIMSHOT_MIN_VELOCITY`` -> ``snare_rimshot``.

    An articulation the target lacks falls back to the voice's note. ``crash_choke`` is never
    chosen: nothing in a groove says when a cymbal is grabbed. Loud rides on downbeats are not
    turned into bell hits either: a bell is the drummer's choice of sound, not a dynamic. Notes
    whose pitch no voice explains are dropped (logged at debug level). The result is sorted, all
    pitches are 0-127, and no two notes share (onset, pitch): the loudest of such a pair is kept.
    """
    if ticks_per_beat < 1:
        raise ValueError(f"ticks_per_beat must be a positive number of ticks, got {ticks_per_beat}")
    if loop_ticks is not None and loop_ticks < 1:
        raise ValueError(f"loop_ticks must be a positive number of ticks, got {loop_ticks}")
    ordered = sorted(notes)
    if drum_map.id == DEFAULT_DRUM_MAP:
        return _dedupe(n for n in ordered if MIN_NOTE <= n.pitch <= MAX_NOTE)

    hat_onsets = sorted({n.onset for n in ordered if voice_of(n.pitch) in _HAT_VOICES})
    out: list[Note] = []
    dropped: set[int] = set()
    for note in ordered:
        pitch = _target_pitch(note, drum_map, hat_onsets, ticks_per_beat, loop_ticks)
        if pitch is None:
            dropped.add(note.pitch)
            continue
        out.append(note if pitch == note.pitch else replace(note, pitch=pitch))
    if dropped:
        log.debug("drum map %s: dropped notes of pitches %s (no voice)", drum_map.id, sorted(dropped))
    return _dedupe(sorted(out))


def _target_pitch(
    note: Note, drum_map: DrumMap, hat_onsets: list[int], ticks_per_beat: int, loop_ticks: int | None
) -> int | None:
    voice = voice_of(note.pitch)
    if voice is None:
        return None
    arts = drum_map.articulations
    fallback = drum_map.voices[voice]
    named = _PITCH_ARTICULATION.get(note.pitch)
    if named is not None:
        return arts.get(named, fallback)
    if voice == "closed_hat":
        wanted = "hat_closed_edge" if note.velocity >= HAT_EDGE_MIN_VELOCITY else "hat_closed_tip"
        return arts.get(wanted, fallback)
    if voice == "open_hat":
        gap = _gap_to_next_hat(note.onset, hat_onsets, loop_ticks)
        if gap is not None and gap <= HALF_OPEN_MAX_GAP_BEATS * ticks_per_beat:
            return arts.get("hat_half_open", fallback)
        if gap is not None and gap >= WIDE_OPEN_MIN_GAP_BEATS * ticks_per_beat:
            return arts.get("hat_open", fallback)
        return fallback
    if note.pitch in _SNARE_HEAD_PITCHES and note.velocity >= RIMSHOT_MIN_VELOCITY:
        return arts.get("snare_rimshot", fallback)
    return fallback


def _gap_to_next_hat(onset: int, hat_onsets: list[int], loop_ticks: int | None) -> int | None:
    """Ticks from ``onset`` to the next later hi-hat onset; wraps round the loop when its length
    is known, else None after the last hat."""
    i = bisect.bisect_right(hat_onsets, onset)
    if i < len(hat_onsets):
        return hat_onsets[i] - onset
    if loop_ticks is None or not hat_onsets:
        return None
    return hat_onsets[0] + loop_ticks - onset


def _dedupe(notes: Iterable[Note]) -> list[Note]:
    """Sorted notes with one per (onset, pitch), keeping the loudest (then longest)."""
    best: dict[tuple[int, int], Note] = {}
    for n in notes:
        key = (n.onset, n.pitch)
        kept = best.get(key)
        if kept is None or (n.velocity, n.duration) > (kept.velocity, kept.duration):
            best[key] = n
    return sorted(best.values())
