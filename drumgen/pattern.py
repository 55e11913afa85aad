"""The Pattern: one plain data structure for a drum performance that every module speaks.

Times are integer MIDI ticks at ``PPQ`` (480) ticks per quarter note, so a MIDI
export and import round-trip exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from drumgen.constants import MAX_BARS, MAX_TEMPO, MIN_BARS, MIN_TEMPO, PPQ
from drumgen.voices import MAX_DRUM_PITCH, MIN_DRUM_PITCH

DEFAULT_NOTE_TICKS = 60  # drum notes are one-shots; a 32nd-note gate keeps note-offs tidy


@dataclass(frozen=True, order=True)
class Note:
    """One drum hit: ``onset`` in ticks from the pattern start, GM ``pitch``, ``velocity`` 1-127."""

    onset: int
    pitch: int
    velocity: int
    duration: int = DEFAULT_NOTE_TICKS


@dataclass
class Pattern:
    """A drum performance of ``bars`` whole bars.

    Defaults: tempo 120 BPM, time signature 4/4, no notes, empty ``meta``
    (free text such as the generation recipe, written into exported MIDI).
    """

    notes: list[Note] = field(default_factory=list)
    tempo: float = 120.0
    bars: int = 4
    time_signature: tuple[int, int] = (4, 4)
    meta: dict[str, str] = field(default_factory=dict)

    # --- geometry -----------------------------------------------------------------
    @property
    def ticks_per_beat(self) -> int:
        """Ticks of one time-signature beat (a quarter in 4/4, an eighth in 6/8)."""
        return PPQ * 4 // self.time_signature[1]

    @property
    def ticks_per_bar(self) -> int:
        return self.ticks_per_beat * self.time_signature[0]

    @property
    def ticks_per_16th(self) -> int:
        return PPQ // 4

    @property
    def length_ticks(self) -> int:
        """Ticks from the start to the last bar line (the loop length)."""
        return self.ticks_per_bar * self.bars

    @property
    def seconds_per_tick(self) -> float:
        return 60.0 / (self.tempo * PPQ)

    @property
    def duration_seconds(self) -> float:
        return self.length_ticks * self.seconds_per_tick

    def ms_to_ticks(self, ms: float) -> float:
        """Convert milliseconds to (fractional) ticks at this pattern's tempo."""
        return ms / 1000.0 / self.seconds_per_tick

    def ticks_to_ms(self, ticks: float) -> float:
        """Convert ticks to milliseconds at this pattern's tempo."""
        return ticks * self.seconds_per_tick * 1000.0


    # --- editing --------------------------------------------------------------------
    def with_notes(self, notes: list[Note]) -> Pattern:
        """Return a copy holding ``notes`` (sorted), everything else kept."""
        return replace(self, notes=sorted(notes), meta=dict(self.meta))

    # --- validation -----------------------------------------------------------------
    def validate(self) -> Pattern:
        """Check the pattern and return it; raise ``ValueError`` naming the first problem."""
        if not (isinstance(self.tempo, (int, float)) and math.isfinite(self.tempo)):
            raise ValueError(f"tempo must be a finite number of BPM, got {self.tempo!r}")
        if not MIN_TEMPO <= self.tempo <= MAX_TEMPO:
            raise ValueError(f"tempo {self.tempo} BPM is outside {MIN_TEMPO:g}-{MAX_TEMPO:g} BPM")
        if not isinstance(self.bars, int) or not MIN_BARS <= self.bars <= MAX_BARS:
            raise ValueError(f"bars must be a whole number from {MIN_BARS} to {MAX_BARS}, got {self.bars!r}")
        num, den = self.time_signature
        if not (1 <= num <= 32 and den in (1, 2, 4, 8, 16, 32)):
            raise ValueError(f"time signature {num}/{den} is not supported")
        seen: set[tuple[int, int]] = set()
        for i, note in enumerate(self.notes):
            where = f"note {i} (onset {note.onset}, pitch {note.pitch})"
            if not MIN_DRUM_PITCH <= note.pitch <= MAX_DRUM_PITCH:
                raise ValueError(
                    f"{where}: pitch outside the GM drum range {MIN_DRUM_PITCH}-{MAX_DRUM_PITCH}"
                )
            if not 1 <= note.velocity <= 127:
                raise ValueError(f"{where}: velocity {note.velocity} is outside 1-127")
            if not 0 <= note.onset < self.length_ticks:
                raise ValueError(
                    f"{where}: onset is outside the pattern's {self.bars} bars (0-{self.length_ticks - 1} ticks)"
                )
            if note.duration < 1:
                raise ValueError(f"{where}: duration {note.duration} must be at least 1 tick")
            key = (note.onset, note.pitch)
            if key in seen:
                raise ValueError(f"{where}: duplicate hit of the same pitch at the same instant")
            seen.add(key)
        return self


def clamp_velocity(velocity: float) -> int:
    """Round and clamp a velocity into MIDI's 1-127."""
    return int(min(127, max(1, round(velocity))))
