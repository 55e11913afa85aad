"""Style rules that shape a sampled pattern before its feel: the half-time stretch and the trap
hi-hat line. They work on the grid (quantized patterns), so the feel humanizes their hits with the
model's own."""

from __future__ import annotations

from dataclasses import replace

from drumgen import keyed_random
from drumgen.constants import PPQ
from drumgen.pattern import Note, Pattern
from drumgen.styles import StylePreset
from drumgen.voices import VOICE_PITCH

TRAP_HAT_GRIDS = (2, 4)  # notes per beat of the trap hat line: 8ths or 16ths, one choice per groove
TRAP_HAT_VELOCITIES = (100, 70, 84, 70)  # on the beat, e, and, a
TRAP_HAT_VELOCITY_SPREAD = 8  # each hit +- this, keyed to its place in the bar


def half_time_factor(preset: StylePreset) -> int:
    """How many output bars one generated bar spans (2 for a half-time preset, else 1)."""
    return max(1, round(1 / preset.tempo_scale)) if preset.tempo_scale < 1 else 1


def stretch_map(pattern: Pattern, factor: int, bars: int) -> dict[tuple[int, int], int]:
    """Where each hit ``(onset, pitch)`` of ``pattern`` lands when stretched (see :func:`stretch`)."""
    bar_ticks = pattern.ticks_per_bar
    end = bar_ticks * bars
    scaled = {(n.onset, n.pitch): n.onset * factor for n in pattern.notes}
    kept = {key: onset for key, onset in scaled.items() if onset < end}
    for k in range(1, factor):
        if any(onset >= end - bar_ticks for onset in kept.values()):
            break
        shift = k * bar_ticks
        kept.update({key: onset - shift for key, onset in scaled.items() if end - bar_ticks <= onset - shift < end})
    return kept


def stretch(pattern: Pattern, factor: int, bars: int, tempo: float) -> Pattern:
    """A pattern played ``factor`` times slower in the grid (half-time feel), cut to ``bars``.

    When the cut leaves the last bar silent, that bar takes the cut-off rest of its generated
    bar instead (so a 1-bar half-time groove is never silent: every generated bar has a hit).
    """
    where = stretch_map(pattern, factor, bars)
    notes = [replace(n, onset=where[n.onset, n.pitch]) for n in pattern.notes if (n.onset, n.pitch) in where]
    return Pattern(tempo=tempo, bars=bars, meta=dict(pattern.meta)).with_notes(notes)


def trap_hat_line(pattern: Pattern, seed: int) -> Pattern:
    """``pattern`` with its closed hats replaced by a trap hat line on the full-tempo grid: every 8th
    or every 16th (one choice per groove, keyed to the seed), accented on the beat, the same in every
    bar (rolls come later, from the style's articulations). Open hats stay, and no closed hat is laid
    where one sounds."""
    per_beat = TRAP_HAT_GRIDS[int(keyed_random.uniform(seed, "trap-grid", 0)[()] * len(TRAP_HAT_GRIDS))]
    step = PPQ // per_beat
    closed, open_hat = VOICE_PITCH["closed_hat"], VOICE_PITCH["open_hat"]
    opens = {n.onset for n in pattern.notes if n.pitch == open_hat}
    notes = [n for n in pattern.notes if n.pitch != closed]
    spread = keyed_random.uniform(seed, "trap-velocity", list(range(pattern.ticks_per_bar // step)))
    for onset in range(0, pattern.length_ticks, step):
        if onset in opens:
            continue
        in_bar = (onset % pattern.ticks_per_bar) // step
        accent = TRAP_HAT_VELOCITIES[(onset % PPQ) // (PPQ // 4)]
        velocity = round(accent + (2 * spread[in_bar] - 1) * TRAP_HAT_VELOCITY_SPREAD)
        notes.append(Note(onset, closed, velocity))
    return replace(pattern, notes=sorted(notes), meta=dict(pattern.meta))
