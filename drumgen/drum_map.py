"""General MIDI drum vocabulary: note names, the nine canonical voices, and the mapping between them.

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

# GM / GM2 percussion key map, notes 27-87.
GM_DRUM_NAMES: dict[int, str] = {
    27: "High Q", 28: "Slap", 29: "Scratch Push", 30: "Scratch Pull", 31: "Sticks",
    32: "Square Click", 33: "Metronome Click", 34: "Metronome Bell",
    35: "Acoustic Bass Drum", 36: "Bass Drum 1", 37: "Side Stick", 38: "Acoustic Snare",
    39: "Hand Clap", 40: "Electric Snare", 41: "Low Floor Tom", 42: "Closed Hi-Hat",
    43: "High Floor Tom", 44: "Pedal Hi-Hat", 45: "Low Tom", 46: "Open Hi-Hat",
    47: "Low-Mid Tom", 48: "Hi-Mid Tom", 49: "Crash Cymbal 1", 50: "High Tom",
    51: "Ride Cymbal 1", 52: "Chinese Cymbal", 53: "Ride Bell", 54: "Tambourine",
    55: "Splash Cymbal", 56: "Cowbell", 57: "Crash Cymbal 2", 58: "Vibraslap",
    59: "Ride Cymbal 2", 60: "Hi Bongo", 61: "Low Bongo", 62: "Mute Hi Conga",
    63: "Open Hi Conga", 64: "Low Conga", 65: "High Timbale", 66: "Low Timbale",
    67: "High Agogo", 68: "Low Agogo", 69: "Cabasa", 70: "Maracas",
    71: "Short Whistle", 72: "Long Whistle", 73: "Short Guiro", 74: "Long Guiro",
    75: "Claves", 76: "Hi Wood Block", 77: "Low Wood Block", 78: "Mute Cuica",
    79: "Open Cuica", 80: "Mute Triangle", 81: "Open Triangle", 82: "Shaker",
    83: "Jingle Bell", 84: "Belltree", 85: "Castanets", 86: "Mute Surdo", 87: "Open Surdo",
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


def drum_name(pitch: int) -> str:
    """Return the GM name of a drum pitch, or ``"Note N"`` for one outside the map."""
    return GM_DRUM_NAMES.get(pitch, f"Note {pitch}")


def voice_of(pitch: int) -> str | None:
    """Return the canonical voice a pitch reduces to, or None for other percussion."""
    return PITCH_TO_VOICE.get(pitch)


def canonical_pitch(pitch: int) -> int | None:
    """Return the canonical GM pitch of the voice a pitch reduces to (None if none)."""
    voice = PITCH_TO_VOICE.get(pitch)
    return VOICE_PITCH[voice] if voice else None
