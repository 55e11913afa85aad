"""Constants more than one module needs, defined once.

Ranges a user can send are in :mod:`drumgen.limits`; this module holds the values behind them
and the musical and file-format constants shared by the library, the app and the tools.
"""

from __future__ import annotations

# --- time and length ----------------------------------------------------------------------------
PPQ = 480  # MIDI ticks per quarter note, everywhere in the project
MIN_TEMPO, MAX_TEMPO = 40.0, 300.0  # BPM
MIN_BARS, MAX_BARS = 1, 32
MAX_SEED = 2**63 - 1
MAX_COUNT = 64  # variations per request (the model samples them 16 at a time)
MAX_UI_VARIATIONS = 4  # variations per click in the app

# --- the dataset's genre labels (the model's Genre_* tokens) ---------------------------------------
GENRES: tuple[str, ...] = (
    "afrobeat", "afrocuban", "blues", "country", "dance", "funk", "gospel", "highlife", "hiphop",
    "jazz", "latin", "middleeastern", "neworleans", "pop", "punk", "reggae", "rock", "soul",
)

# --- feel -------------------------------------------------------------------------------------------
FILL_EVERY_CHOICES: tuple[int, ...] = (0, 2, 4, 8)  # 0 = no fills
STRAIGHT_SWING = 50.0  # percent; ~66 = triplet swing
MIN_SWING, MAX_SWING = 50.0, 75.0
GHOST_MAX_VELOCITY = 40  # a hit at or below this velocity is a ghost note

# --- sampling defaults (the original design's generate_pattern) --------------------------------------
DEFAULT_TEMPERATURE = 1.0
DEFAULT_TOP_K = 50
DEFAULT_TOP_P = 0.9
DEFAULT_VARIATION = 1.0  # 1 = free sampling; presets set their own

# --- audio ------------------------------------------------------------------------------------------
SAMPLE_RATES: tuple[int, ...] = (22050, 32000, 44100, 48000)
DEFAULT_SAMPLE_RATE = 44100
AUDIO_FORMATS: tuple[str, ...] = ("ogg", "wav")

# --- how to fix a missing or stale model -------------------------------------------------------------
TRAIN_COMMAND = "python -m drumgen train --data ../shared/groove"
RETRAIN_HINT = f"train one with: {TRAIN_COMMAND}"
