"""Audio preview: render a :class:`~drumgen.pattern.Pattern` with FluidSynth and write WAV / OGG.

FluidSynth (the system library ``libfluidsynth`` through ``pyfluidsynth``) is imported
only when audio is rendered, so the rest of the package works without it; when it
cannot be loaded :class:`AudioUnavailableError` says how to install it. A synth is
created without an audio driver, its SoundFont loaded once per process per
``(soundfont, sample_rate)`` and reused (a small cache, each synth behind a lock, so
concurrent renders are safe).

Rendering is offline: the previous render's voices are killed, the note events are
played in time order and each gap between them is synthesized as float samples (no
16-bit dither). Reverb and chorus are off: the preview is dry (a DAW adds its own room)
and renders ~1.4x faster. FluidSynth applies events at 64-frame block boundaries
(1.5 ms at 44.1 kHz); every render starts on a block boundary, so note timing is the
same on every render. Output is not guaranteed bit-identical between renders: FluidSynth
ramps a reused voice slot's gain from its previous value over the first block of a note.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import io
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from drumgen.constants import DEFAULT_SAMPLE_RATE
from drumgen.limits import SAMPLE_RATE
from drumgen.midi_io import NOTE_ON, note_events
from drumgen.pattern import Pattern
from drumgen.voices import GM_DRUM_BANK, GM_DRUM_CHANNEL, KIT_PROGRAMS

log = logging.getLogger(__name__)

DEFAULT_KIT = "standard"
DEFAULT_TAIL = 1.0  # seconds rendered after the last bar line so cymbals ring out
MAX_TAIL = 10.0
DEFAULT_GAIN = 0.5  # FluidSynth master gain; leaves headroom for dense hits on every kit
MIDI_CHANNELS = 16
SYNTH_SETTINGS: dict[str, int] = {"synth.reverb.active": 0, "synth.chorus.active": 0}
FLUID_BLOCK_FRAMES = 64  # FluidSynth's internal block (FLUID_BUFSIZE); events apply at its boundaries
MAX_CACHED_SYNTHS = 4  # (soundfont, sample_rate) pairs kept loaded
INT16_SCALE = 32768.0

SOUNDFONT_ENV = "DRUMGEN_SOUNDFONT"
SYSTEM_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")  # Debian fluid-soundfont-gm
BUNDLED_SOUNDFONT_NAME = "TimGM6mb.sf2"  # shipped inside the pretty_midi package

SOUNDFILE_FORMATS = {"wav": ("WAV", "PCM_16"), "ogg": ("OGG", "VORBIS")}  # container and subtype of each

INSTALL_HINT = (
    "audio rendering needs the FluidSynth library (libfluidsynth) and the pyfluidsynth package: "
    "install the library with `apt-get install libfluidsynth3` (Debian/Ubuntu) or "
    "`brew install fluid-synth` (macOS), then `pip install pyfluidsynth`"
)


class AudioUnavailableError(RuntimeError):
    """FluidSynth (libfluidsynth / pyfluidsynth) or its SoundFont cannot be loaded; the message says how to fix it."""


def _load_fluidsynth() -> ModuleType:
    """Import ``fluidsynth`` lazily; raise :class:`AudioUnavailableError` when it cannot be loaded."""
    try:
        # pyfluidsynth prints where it found the library to stdout when $CI is set; keep stdout
        # clean (the CLI prints JSON lines there)
        with contextlib.redirect_stdout(io.StringIO()):
            import fluidsynth
    except (ImportError, OSError) as exc:
        raise AudioUnavailableError(f"{INSTALL_HINT} ({type(exc).__name__}: {exc})") from exc
    return fluidsynth


def audio_available() -> bool:
    """Return True when FluidSynth can be loaded (audio rendering will work)."""
    try:
        _load_fluidsynth()
    except AudioUnavailableError:
        return False
    return True


def kit_program(kit: str | int) -> int:
    """Return the bank-128 preset of a kit name (see ``KIT_PROGRAMS``; case and '-' ignored) or number."""
    if isinstance(kit, bool):
        raise ValueError(f"kit must be a name or a program number, got {kit!r}")
    if isinstance(kit, int):
        if not 0 <= kit <= 127:
            raise ValueError(f"kit program {kit} is outside 0-127")
        return kit
    name = str(kit).strip().lower().replace("-", "").replace(" ", "")
    if name not in KIT_PROGRAMS:
        raise ValueError(f"unknown kit {kit!r}; choose one of: {', '.join(KIT_PROGRAMS)}")
    return KIT_PROGRAMS[name]


def bundled_soundfont() -> Path | None:
    """Return pretty_midi's bundled ``TimGM6mb.sf2`` when pretty_midi is installed, else None."""
    spec = importlib.util.find_spec("pretty_midi")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / BUNDLED_SOUNDFONT_NAME
        if candidate.is_file():
            return candidate
    return None


def find_soundfont() -> Path:
    """Return the SoundFont to use.

    Order: ``$DRUMGEN_SOUNDFONT`` (``FileNotFoundError`` if set but missing), then
    FluidR3_GM where installed (``/usr/share/sounds/sf2/FluidR3_GM.sf2``), then
    pretty_midi's bundled ``TimGM6mb.sf2``.
    """
    override = os.environ.get(SOUNDFONT_ENV)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{SOUNDFONT_ENV}={override!r} does not name an existing SoundFont file")
        return path
    if SYSTEM_SOUNDFONT.is_file():
        return SYSTEM_SOUNDFONT
    bundled = bundled_soundfont()
    if bundled is not None:
        return bundled
    raise FileNotFoundError(
        f"no SoundFont found: set {SOUNDFONT_ENV}, install fluid-soundfont-gm ({SYSTEM_SOUNDFONT}), "
        f"or install pretty_midi (bundles {BUNDLED_SOUNDFONT_NAME})"
    )


# --- synth cache ----------------------------------------------------------------------------
@dataclass
class _SynthHandle:
    """A loaded synth: the pyfluidsynth ``Synth``, its SoundFont id and the lock renders hold.

    ``frames`` counts the frames rendered so far (modulo the block size), so the next
    render can start on a block boundary.
    """

    synth: Any
    sfid: int
    soundfont: Path
    sample_rate: int
    load_seconds: float
    lock: threading.Lock
    write: Callable[[Any, np.ndarray], None]
    frames: int = 0


def _float_writer(fluidsynth: ModuleType) -> Callable[[Any, np.ndarray], None]:
    """Return ``write(synth, out)`` filling a C-contiguous float32 ``(n, 2)`` view with the next n frames.

    Uses ``fluid_synth_write_float`` (no dither, no 16-bit rounding); falls back to
    pyfluidsynth's ``get_samples`` (interleaved int16) where that symbol is not exposed.
    """
    write_float = None
    if hasattr(fluidsynth, "cfunc"):
        write_float = fluidsynth.cfunc(
            "fluid_synth_write_float", ctypes.c_int,
            ("synth", ctypes.c_void_p, 1), ("len", ctypes.c_int, 1),
            ("lbuf", ctypes.c_void_p, 1), ("loff", ctypes.c_int, 1), ("lincr", ctypes.c_int, 1),
            ("rbuf", ctypes.c_void_p, 1), ("roff", ctypes.c_int, 1), ("rincr", ctypes.c_int, 1),
        )
    if write_float is None:
        log.info("fluid_synth_write_float is not available; rendering through 16-bit get_samples")

        def write_s16(synth: Any, out: np.ndarray) -> None:
            out[:] = synth.get_samples(len(out)).reshape(-1, 2) / np.float32(INT16_SCALE)

        return write_s16

    def write(synth: Any, out: np.ndarray) -> None:
        pointer = out.ctypes.data  # left at 0, 2, 4, ...; right at 1, 3, 5, ...
        write_float(synth.synth, len(out), pointer, 0, 2, pointer, 1, 2)

    return write


_CACHE: OrderedDict[tuple[str, int], _SynthHandle] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_load_count = 0  # SoundFont loads in this process (tests check that renders reuse the synth)


def load_count() -> int:
    """Return how many times a SoundFont has been loaded in this process."""
    return _load_count


def clear_synth_cache() -> None:
    """Delete every cached synth (frees their SoundFonts); the next render loads again."""
    with _CACHE_LOCK:
        handles = list(_CACHE.values())
        _CACHE.clear()
    for handle in handles:
        with handle.lock:
            handle.synth.delete()


def _get_synth(soundfont: Path, sample_rate: int) -> _SynthHandle:
    """Return the cached synth for ``(soundfont, sample_rate)``, creating it on first use."""
    global _load_count
    fluidsynth = _load_fluidsynth()
    key = (str(soundfont.resolve()), sample_rate)
    evicted: list[_SynthHandle] = []
    with _CACHE_LOCK:
        handle = _CACHE.get(key)
        if handle is not None:
            _CACHE.move_to_end(key)
            return handle
        start = time.perf_counter()
        synth = fluidsynth.Synth(gain=DEFAULT_GAIN, samplerate=float(sample_rate), channels=MIDI_CHANNELS,
                                 **SYNTH_SETTINGS)
        sfid = synth.sfload(str(soundfont))
        if sfid < 0:
            synth.delete()
            # the MIDI is still good: this is missing audio (kept, with a notice), not a bad request
            raise AudioUnavailableError(f"FluidSynth could not load the SoundFont {soundfont} (corrupt or not a .sf2); "
                                        f"set {SOUNDFONT_ENV} to a valid one or reinstall fluid-soundfont-gm")
        load_seconds = time.perf_counter() - start
        _load_count += 1
        log.info("loaded SoundFont %s at %d Hz in %.2f s", soundfont.name, sample_rate, load_seconds)
        handle = _SynthHandle(synth, sfid, soundfont, sample_rate, load_seconds, threading.Lock(),
                              _float_writer(fluidsynth))
        _CACHE[key] = handle
        while len(_CACHE) > MAX_CACHED_SYNTHS:
            evicted.append(_CACHE.popitem(last=False)[1])
    for old in evicted:
        with old.lock:  # waits for a render in progress
            old.synth.delete()
    return handle


# --- rendering ------------------------------------------------------------------------------
def rendered_length(pattern: Pattern, sample_rate: int = DEFAULT_SAMPLE_RATE,
                    tail_seconds: float = DEFAULT_TAIL) -> int:
    """Return the number of sample frames :func:`render_audio` produces (defaults 44100 Hz, 1 s tail)."""
    return round((pattern.duration_seconds + tail_seconds) * sample_rate)


def render_audio(
    pattern: Pattern,
    kit: str | int = DEFAULT_KIT,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    soundfont: str | Path | None = None,
    tail_seconds: float = DEFAULT_TAIL,
    check: bool = True,
) -> np.ndarray:
    """Render ``pattern`` to stereo audio: float32 in [-1, 1], shape ``(n_samples, 2)``.

    Defaults: kit ``"standard"``, 44100 Hz, the SoundFont of :func:`find_soundfont`,
    a 1 s tail after the last bar line. ``n_samples = round((duration + tail) * rate)``
    (:func:`rendered_length`). The pattern is validated unless ``check`` is False (the engine's
    grooves are validated once, when finished).
    Raises ``ValueError`` for a bad kit, sample rate or tail, ``FileNotFoundError`` for a
    missing SoundFont, :class:`AudioUnavailableError` when FluidSynth cannot be loaded.
    """
    if check:
        pattern.validate()
    program = kit_program(kit)
    sample_rate = SAMPLE_RATE.check(sample_rate)
    if not 0.0 <= tail_seconds <= MAX_TAIL:
        raise ValueError(f"tail_seconds {tail_seconds} is outside 0-{MAX_TAIL:g} s")
    font = Path(soundfont) if soundfont is not None else find_soundfont()
    if not font.is_file():
        raise FileNotFoundError(f"SoundFont {font} does not exist")

    handle = _get_synth(font, sample_rate)
    total = rendered_length(pattern, sample_rate, tail_seconds)
    out = np.zeros((total, 2), dtype=np.float32)
    samples_per_tick = pattern.seconds_per_tick * sample_rate
    with handle.lock:
        synth, write = handle.synth, handle.write
        synth.system_reset()  # resets controllers and programs
        synth.all_sounds_off(GM_DRUM_CHANNEL)  # kills the previous render's voices at the next block
        pad = -handle.frames % FLUID_BLOCK_FRAMES
        if pad:  # finish the current block so this render starts on a block boundary
            write(synth, np.zeros((pad, 2), dtype=np.float32))
        if synth.program_select(GM_DRUM_CHANNEL, handle.sfid, GM_DRUM_BANK, program) != 0:
            log.warning("kit %r (bank %d preset %d) is not in %s; using the standard kit",
                        kit, GM_DRUM_BANK, program, font.name)
            synth.program_select(GM_DRUM_CHANNEL, handle.sfid, GM_DRUM_BANK, KIT_PROGRAMS[DEFAULT_KIT])
        done = 0
        for tick, kind, pitch, velocity in note_events(pattern):
            at = min(round(tick * samples_per_tick), total)
            if at > done:
                write(synth, out[done:at])
                done = at
            if kind == NOTE_ON:
                synth.noteon(GM_DRUM_CHANNEL, pitch, velocity)
            else:
                synth.noteoff(GM_DRUM_CHANNEL, pitch)
        if total > done:
            write(synth, out[done:])
        synth.all_sounds_off(GM_DRUM_CHANNEL)
        handle.frames = (handle.frames + pad + total) % FLUID_BLOCK_FRAMES
    return np.clip(out, -1.0, 1.0, out=out)


# --- files ----------------------------------------------------------------------------------
def write_audio(waveform: np.ndarray, path: str | Path, sample_rate: int = DEFAULT_SAMPLE_RATE,
                format: str | None = None) -> Path:
    """Write ``waveform`` (float, ``(n,)`` or ``(n, channels)``) and return the path.

    ``format`` ``"wav"`` (16-bit PCM) or ``"ogg"`` (Vorbis); default None picks it from
    the file extension. Samples are clipped to [-1, 1]; parent folders are created.
    """
    import soundfile

    path = Path(path)
    name = (format or path.suffix.lstrip(".")).lower()
    if name not in SOUNDFILE_FORMATS:
        raise ValueError(f"unsupported audio format {name!r}; choose one of: {', '.join(SOUNDFILE_FORMATS)}")
    sample_rate = SAMPLE_RATE.check(sample_rate)
    data = np.asarray(waveform, dtype=np.float32)
    if data.ndim not in (1, 2) or data.shape[0] == 0:
        raise ValueError(f"waveform must be a non-empty (n,) or (n, channels) array, got shape {data.shape}")
    container, subtype = SOUNDFILE_FORMATS[name]
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.clip(data, -1.0, 1.0), sample_rate, subtype=subtype, format=container)
    return path


def render_to_file(
    pattern: Pattern,
    path: str | Path,
    kit: str | int = DEFAULT_KIT,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    soundfont: str | Path | None = None,
    tail_seconds: float = DEFAULT_TAIL,
) -> Path:
    """Render ``pattern`` (see :func:`render_audio` for the defaults) to a .wav or .ogg file."""
    waveform = render_audio(pattern, kit=kit, sample_rate=sample_rate, soundfont=soundfont,
                            tail_seconds=tail_seconds)
    return write_audio(waveform, path, sample_rate)
