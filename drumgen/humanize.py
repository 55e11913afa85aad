"""Humanization: swing, correlated micro-timing drift, per-voice offsets, velocity, ghost notes, articulations.

Deterministic for a given seed; every effect is scaled by ``amount`` (0-1) and
``amount=0`` returns the pattern unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Defaults measured on the Groove MIDI Dataset (see BRIEF.md): hits sit ~12 ms from the
# grid inside 2-bar windows, slow drift wanders ~10 ms between windows, hats lead by ~10 ms.
DEFAULT_SWING = 50.0  # percent; 50 = straight, ~66 = triplet
DEFAULT_MICRO_TIMING_MS = 12.0
DEFAULT_DRIFT_MS = 10.0
DEFAULT_GHOST_NOTE_PROB = 0.0
DEFAULT_VELOCITY_VARIATION = 0.1
DEFAULT_GHOST_VELOCITY = 30  # ghost notes are written at about this velocity (<= 40)
DEFAULT_VOICE_OFFSETS_MS: dict[str, float] = {"closed_hat": -10.0, "open_hat": -8.0, "kick": -3.0, "snare": -2.0}


@dataclass(frozen=True)
class Articulation:
    """A style rule applied after humanization, e.g. ``type="hat_rolls"``.

    ``probability`` is the chance per eligible spot (for hat rolls: per beat that has a hat);
    ``options`` holds rule-specific values (e.g. ``{"divisions": [8, 6]}`` for 32nd or triplet rolls).
    """

    type: str
    probability: float = 0.25
    options: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class HumanizeParams:
    """How a style humanizes. Defaults: straight (swing 50 %), micro-timing 12 ms,
    drift 10 ms, no ghost notes, velocity variation 0.1, the dataset's per-voice offsets."""

    swing: float = DEFAULT_SWING
    micro_timing_ms: float = DEFAULT_MICRO_TIMING_MS
    drift_ms: float = DEFAULT_DRIFT_MS
    ghost_note_prob: float = DEFAULT_GHOST_NOTE_PROB
    velocity_variation: float = DEFAULT_VELOCITY_VARIATION
    voice_offsets_ms: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_VOICE_OFFSETS_MS))
    articulations: tuple[Articulation, ...] = ()
