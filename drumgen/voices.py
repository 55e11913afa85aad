"""General MIDI drums: the nine canonical voices, the pitches that reduce to them, and the GM kits.

The Groove MIDI Dataset was recorded on a Roland kit whose extra articulations
(e.g. hi-hat edge 22/26, tom rims 58) sit outside plain GM; every pitch the
project meets is reduced to one of nine canonical voices, the reduction used by
GrooVAE ("Learning to Groove", Gillick et al. 2019).
"""

from __future__ import annotations

GM_DRUM_CHANNEL = 9  # zero-based MIDI channel 10
GM_DRUM_BANK = 128  # SoundFont bank that holds the GM drum kits
MIN_DRUM_PITCH = 22  # lowest pitch accepted in a Pattern (Roland hi-hat edge)
MAX_DRUM_PITCH = 87  # highest GM2 percussion note

# GM drum kits: presets of SoundFont bank 128 (their program numbers).
KIT_PROGRAMS: dict[str, int] = {
    "standard": 0, "room": 8, "power": 16, "electronic": 24,
    "tr808": 25, "jazz": 32, "brush": 40, "orchestra": 48,
}

# The nine canonical voices, in the order used by grids and tokens, with the GM
# pitch each is written as.
VOICES: tuple[str, ...] = (
    "kick", "snare", "closed_hat", "open_hat", "low_tom", "mid_tom", "high_tom", "crash", "ride",
)
VOICE_PITCH: dict[str, int] = {
    "kick": 36, "snare": 38, "closed_hat": 42, "open_hat": 46, "low_tom": 43,
    "mid_tom": 47, "high_tom": 50, "crash": 49, "ride": 51,
}
CANONICAL_PITCHES: tuple[int, ...] = tuple(VOICE_PITCH[v] for v in VOICES)

# Every pitch that reduces to a voice (the GrooVAE / Roland TD-11 reduction).
_VOICE_MEMBERS: dict[str, tuple[int, ...]] = {
    "kick": (35, 36),
    "snare": (37, 38, 39, 40),
    "closed_hat": (22, 42, 44),
    "open_hat": (26, 46),
    "low_tom": (41, 43, 58),
    "mid_tom": (45, 47),
    "high_tom": (48, 50),
    "crash": (49, 52, 55, 57),
    "ride": (51, 53, 59),
}
PITCH_TO_VOICE: dict[int, str] = {p: v for v, ps in _VOICE_MEMBERS.items() for p in ps}

# The six-voice reduction of the "Language Models are Drummers" stability measure.
STABILITY_GROUPS: tuple[str, ...] = ("crash", "ride", "snare", "kick", "hihat", "toms")
VOICE_TO_STABILITY_GROUP: dict[str, str] = {
    "kick": "kick", "snare": "snare", "closed_hat": "hihat", "open_hat": "hihat",
    "low_tom": "toms", "mid_tom": "toms", "high_tom": "toms", "crash": "crash", "ride": "ride",
}


def voice_of(pitch: int) -> str | None:
    """Return the canonical voice a pitch reduces to, or None for other percussion."""
    return PITCH_TO_VOICE.get(pitch)


def canonical_pitch(pitch: int) -> int | None:
    """Return the canonical GM pitch of the voice a pitch reduces to (None if none)."""
    voice = PITCH_TO_VOICE.get(pitch)
    return VOICE_PITCH[voice] if voice else None
