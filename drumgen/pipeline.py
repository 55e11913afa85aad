"""One request, end to end: style preset + controls -> model -> humanize -> .mid bytes -> audio.

:func:`generate_grooves` is the single function the CLI, the Gradio app and the API call.
"""

from __future__ import annotations

import contextlib
import logging
import math
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drumgen import __version__
from drumgen.audio import DEFAULT_SAMPLE_RATE, KIT_PROGRAMS, AudioUnavailableError, render_audio
from drumgen.generate import MAX_SAMPLES, fill_bar_set, generate_pattern
from drumgen.humanize import humanize, measure_feel
from drumgen.midi_io import pattern_filename, pattern_to_midi_bytes
from drumgen.model import DrumPatternTransformer
from drumgen.model_loader import load_bundle
from drumgen.pattern import MAX_BARS, MAX_TEMPO, MIN_BARS, MIN_TEMPO, Note, Pattern
from drumgen.styles import StylePreset, get_model_path, get_style
from drumgen.tokenizer import DrumTokenizer

log = logging.getLogger(__name__)

MAX_SEED = 2**63 - 1
MAX_COUNT = 64  # variations per request; the model samples them MAX_SAMPLES at a time
FILL_EVERY_CHOICES = (0, 2, 4, 8)
SAMPLE_RATES = (22050, 32000, 44100, 48000)
HUMANIZE_SEED_SALT = 0x5EED  # humanization draws from seed ^ salt, apart from the model's draws


@dataclass(frozen=True)
class GenerateRequest:
    """What a user asks for. ``None`` means "the style preset's value".

    Defaults: 4 bars, the preset's tempo, a random seed, one variation, the preset's
    sampling (temperature, top-k, top-p), full humanization (1.0), the preset's swing,
    kit and fill interval, audio rendered at 44100 Hz.
    """

    style: str
    bars: int = 4
    tempo: float | None = None
    seed: int | None = None
    count: int = 1
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    humanize: float = 1.0
    swing: float | None = None
    kit: str | None = None
    fill_every: int | None = None
    audio: bool = True
    sample_rate: int = DEFAULT_SAMPLE_RATE


@dataclass
class Groove:
    """One generated variation: the humanized pattern, its MIDI bytes, audio and a summary."""

    pattern: Pattern
    quantized: Pattern
    midi: bytes
    filename: str
    seed: int
    summary: dict[str, Any]
    audio: np.ndarray | None = None
    sample_rate: int = DEFAULT_SAMPLE_RATE
    audio_error: str | None = None
    notices: list[str] = field(default_factory=list)


def _number(name: str, value: Any, lo: float, hi: float, unit: str = "") -> float:
    """``value`` as a finite float in [lo, hi], or ``ValueError`` naming ``name`` and the range."""
    given = value
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number from {lo:g} to {hi:g}{unit}, got {given!r}")
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a number from {lo:g} to {hi:g}{unit}, got {given!r}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number from {lo:g} to {hi:g}{unit}, got {given!r}")
    return value


def _whole(name: str, value: Any, lo: int, hi: int) -> int:
    """``value`` as an int in [lo, hi] (a float must be whole), or ``ValueError`` naming ``name``."""
    number = _number(name, value, lo, hi)
    if number != int(number):
        raise ValueError(f"{name} must be a whole number from {lo} to {hi}, got {value!r}")
    return int(number)


def resolve_request(req: GenerateRequest) -> tuple[GenerateRequest, StylePreset]:
    """Check every field and fill the ``None`` ones from the preset; ``ValueError`` names the field."""
    preset = get_style(req.style)
    bars = _whole("bars", req.bars, MIN_BARS, MAX_BARS)
    tempo = preset.default_tempo if req.tempo is None else _number("tempo", req.tempo, MIN_TEMPO, MAX_TEMPO, " BPM")
    if req.seed is None:
        seed = secrets.randbelow(2**31)
    else:
        if isinstance(req.seed, bool) or (isinstance(req.seed, float)
                                          and not (math.isfinite(req.seed) and req.seed.is_integer())):
            raise ValueError(f"seed must be a whole number from 0 to 2^63-1, got {req.seed!r}")
        try:
            seed = int(req.seed)
        except (TypeError, ValueError):
            raise ValueError(f"seed must be a whole number from 0 to 2^63-1, got {req.seed!r}") from None
        if not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be a whole number from 0 to 2^63-1, got {req.seed!r}")
    count = _whole("count", req.count, 1, MAX_COUNT)
    temperature = preset.temperature if req.temperature is None else _number("temperature", req.temperature, 0, 5)
    top_k = preset.top_k if req.top_k is None else _whole("top_k", req.top_k, 0, 10_000)
    top_p = preset.top_p if req.top_p is None else _number("top_p", req.top_p, 0, 1)
    amount = _number("humanize", req.humanize, 0, 1)
    swing = None if req.swing is None else _number("swing", req.swing, 50, 75, " %")
    kit = preset.kit if req.kit in (None, "") else str(req.kit).strip().lower()
    if kit not in KIT_PROGRAMS:
        raise ValueError(f"kit must be one of {', '.join(KIT_PROGRAMS)}, got {req.kit!r}")
    fill_every = preset.fill_every if req.fill_every is None else _whole("fill_every", req.fill_every, 0, 8)
    if fill_every not in FILL_EVERY_CHOICES:
        raise ValueError(f"fill_every must be one of {FILL_EVERY_CHOICES} (0 = off), got {req.fill_every!r}")
    sample_rate = _whole("sample_rate", req.sample_rate, 8000, 96000)
    resolved = replace(req, style=preset.id, bars=bars, tempo=tempo, seed=seed, count=count,
                       temperature=temperature, top_k=top_k, top_p=top_p, humanize=amount, swing=swing,
                       kit=kit, fill_every=fill_every, sample_rate=sample_rate)
    return resolved, preset


def _model_for(preset: StylePreset) -> tuple[DrumPatternTransformer, DrumTokenizer, dict[str, Any]]:
    return load_bundle(str(get_model_path(preset.id)))


def _stretch(pattern: Pattern, factor: int, bars: int, tempo: float) -> Pattern:
    """A pattern played ``factor`` times slower in the grid (half-time feel), cut to ``bars``.

    When the cut leaves the last bar silent, that bar takes the cut-off rest of its generated
    bar instead (so a 1-bar half-time groove is never silent: every generated bar has a hit).
    """
    out = Pattern(tempo=tempo, bars=bars, meta=dict(pattern.meta))
    notes = [Note(n.onset * factor, n.pitch, n.velocity, n.duration) for n in pattern.notes]
    bar_ticks, end = out.ticks_per_bar, out.length_ticks
    kept = [n for n in notes if n.onset < end]
    for k in range(1, factor):
        if any(n.onset >= end - bar_ticks for n in kept):
            break
        shift = k * bar_ticks
        kept += [replace(n, onset=n.onset - shift) for n in notes if end - bar_ticks <= n.onset - shift < end]
    return out.with_notes(kept)


def sample_patterns(req: GenerateRequest, preset: StylePreset) -> tuple[list[Pattern], dict[str, Any]]:
    """Quantized patterns from the model for a resolved request (one per variation)."""
    model, tokenizer, metadata = _model_for(preset)
    # half-time feel: condition on tempo * scale and stretch each generated bar over 1/scale bars
    factor = max(1, round(1 / preset.tempo_scale)) if preset.tempo_scale < 1 else 1
    gen_bars = math.ceil(req.bars / factor)
    gen_tempo = req.tempo / factor
    fills = {b // factor for b in fill_bar_set(req.bars, req.fill_every)}
    seeds = [(req.seed + i) % (MAX_SEED + 1) for i in range(req.count)]
    patterns: list[Pattern] = []
    for start in range(0, req.count, MAX_SAMPLES):
        chunk = seeds[start:start + MAX_SAMPLES]
        kwargs = dict(num_bars=gen_bars, temperature=req.temperature, top_k=req.top_k, top_p=req.top_p,
                      seed=chunk, num_samples=len(chunk), genre=preset.genre, tempo=req.tempo,
                      conditioning_tempo=gen_tempo, fill_bars=fills)
        try:
            patterns += generate_pattern(model, tokenizer, **kwargs)
        except torch.cuda.OutOfMemoryError:
            log.warning("CUDA out of memory while generating; retrying on the CPU")
            torch.cuda.empty_cache()
            model, tokenizer, metadata = load_bundle(str(get_model_path(preset.id)), device="cpu")
            patterns += generate_pattern(model, tokenizer, **kwargs)
    if factor > 1:
        patterns = [_stretch(p, factor, req.bars, req.tempo) for p in patterns]
    return patterns, metadata


def generate_grooves(req: GenerateRequest) -> list[Groove]:
    """Generate ``req.count`` humanized grooves with MIDI bytes and (optionally) audio.

    Raises ``ValueError`` naming the field for bad input. Audio that cannot be made
    (FluidSynth or SoundFont missing) leaves ``audio=None`` and a notice; the MIDI is kept.
    """
    req, preset = resolve_request(req)
    patterns, metadata = sample_patterns(req, preset)
    model_version = f"{preset.model_id}/drumgen-{metadata.get('version', __version__)}"
    grooves: list[Groove] = []
    for i, quantized in enumerate(patterns):
        seed = (req.seed + i) % (MAX_SEED + 1)
        settings = {
            "temperature": req.temperature, "top_k": req.top_k, "top_p": req.top_p,
            "humanize": req.humanize, "swing": req.swing if req.swing is not None else preset.humanize.swing,
            "kit": req.kit, "fill_every": req.fill_every,
        }
        recipe = {"style": preset.id, "seed": str(seed), "tempo": f"{req.tempo:g}", "bars": str(req.bars),
                  "model": model_version, **{k: str(v) for k, v in settings.items()}}
        quantized = replace(quantized, meta=recipe)
        pattern = humanize(quantized, preset.humanize, amount=req.humanize, seed=seed ^ HUMANIZE_SEED_SALT,
                           swing=req.swing)
        pattern = replace(pattern, meta=recipe).validate()
        filename = pattern_filename(preset.id, req.tempo, req.bars, seed)
        summary = {
            "style": preset.id, "style_name": preset.name, "tempo": req.tempo, "bars": req.bars, "seed": seed,
            "settings": settings, "model_version": model_version, "file": filename,
            "notes": len(pattern.notes), "feel": measure_feel(pattern),
        }
        groove = Groove(pattern, quantized, pattern_to_midi_bytes(pattern), filename, seed, summary,
                        sample_rate=req.sample_rate)
        if req.audio:
            try:
                groove.audio = render_audio(pattern, kit=req.kit, sample_rate=req.sample_rate)
            except (AudioUnavailableError, FileNotFoundError, OSError, RuntimeError) as exc:
                groove.audio_error = f"audio could not be rendered ({exc}); the MIDI file is fine"
                groove.notices.append(groove.audio_error)
                log.warning("%s", groove.audio_error)
        grooves.append(groove)
    return grooves


def write_groove(groove: Groove, out_dir: str | Path, audio_format: str = "ogg") -> dict[str, str]:
    """Write a groove's ``.mid`` (and audio when it has some) into ``out_dir``; return the paths.

    An audio file that cannot be written (disk full, read-only) is left out with a notice in
    ``groove.audio_error``; the MIDI file is kept. ``OSError`` when the MIDI cannot be written."""
    from drumgen.audio import write_audio

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"midi": str(out / groove.filename)}
    (out / groove.filename).write_bytes(groove.midi)
    if groove.audio is not None:
        audio_path = out / (Path(groove.filename).stem + f".{audio_format}")
        try:
            write_audio(groove.audio, audio_path, groove.sample_rate)
        except (OSError, RuntimeError) as exc:  # disk full / read-only (soundfile's errors are RuntimeErrors)
            with contextlib.suppress(OSError):  # a partial file, where the file system still lets us
                audio_path.unlink(missing_ok=True)
            groove.audio_error = f"audio could not be written ({exc}); the MIDI file is fine"
            groove.notices.append(groove.audio_error)
            log.warning("%s", groove.audio_error)
        else:
            paths["audio"] = str(audio_path)
    return paths
