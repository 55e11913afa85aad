"""Bring your own MIDI: the engine's stages applied to an uploaded groove or part.

- :func:`humanize_upload` - a drum groove gets a style's feel: the model reads it and gives every
  hit its learned timing and the velocity it expects there, then the style's character; every note
  is kept (same pitch, same grid step before the feel);
- :func:`continue_upload` - the upload's last bars (up to 8) are the prompt, new bars follow in the
  style and lean toward the prompt's last phrase; the upload's own bars are unchanged;
- :func:`reroll_upload` - some voices are kept exactly (onset and velocity) and the model plays the
  rest around them (fixed hits);
- :func:`drumify_part` - any part's onsets become the kick and the model plays the kit around them.

Each takes a :class:`~drumgen.request.GenerateRequest` for the style and controls; the tempo and
length come from the upload (continue adds ``request.bars`` new bars). Half-time presets are
conditioned on the upload's own tempo here (an upload's bars are bars), and no groove is forced to
open on a kick: the upload decides.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np
import torch

from drumgen.constants import MAX_BARS, PPQ
from drumgen.constraints import BarHit, FixedHits, RequiredHit, Vocabulary, vocabulary
from drumgen.engine import Engine, Groove, Sampled
from drumgen.humanize import LearnedTiming
from drumgen.limits import shown
from drumgen.midi_io import PartRead
from drumgen.pattern import Note, Pattern
from drumgen.request import GenerateRequest, ResolvedRequest
from drumgen.tokenizer import TICKS_PER_STEP, grid_steps, quantize_pattern
from drumgen.voices import VOICE_PITCH, VOICES, canonical_pitch

PROMPT_BARS = 8  # continue: the prompt is at most the upload's last 8 bars (the model's training windows)
SCORE_BARS = 8  # an upload is read by the model in windows of this many bars
LOCKABLE = VOICES
KICK = VOICE_PITCH["kick"]
DRUMIFY_MIN_SHARE = 0.5  # drumify puts a kick on at least this share of the part's onsets, strongest first


def snap(onset: int) -> int:
    """The grid step an onset belongs to (the tokenizer's rule, :func:`drumgen.tokenizer.grid_steps`)."""
    return int(grid_steps(np.asarray(onset, dtype=float)))


def snap_to_grid(pattern: Pattern) -> Pattern:
    """Every note moved to its grid step (pitches kept); of two notes of one pitch on one step the
    louder stays."""
    best: dict[tuple[int, int], Note] = {}
    for n in pattern.notes:
        onset = min(snap(n.onset), pattern.length_ticks - 1)
        key = (onset, n.pitch)
        if key not in best or n.velocity > best[key].velocity:
            best[key] = replace(n, onset=onset, duration=max(1, min(n.duration, pattern.length_ticks - onset)))
    return pattern.with_notes(list(best.values()))


# --- the model reads an upload -------------------------------------------------------------------
@torch.inference_mode()
def score(engine: Engine, genre: str, pattern: Pattern) -> tuple[LearnedTiming, dict[tuple[int, int], float]]:
    """The model's learned timing and expected velocity for each hit of ``pattern``'s grid, keyed
    ``(grid onset, canonical pitch)``: the timing head's prediction for the hit, and the mean of the
    velocities the model gave that voice at that point."""
    tok, model = engine.tokenizer, engine.model
    vocab = vocabulary(tok)
    grid = quantize_pattern(pattern)
    bars = tok.encode_bars(grid)
    timing: dict[tuple[int, int], tuple[float, float]] = {}
    velocity: dict[tuple[int, int], float] = {}
    values = torch.tensor(vocab.velocity_values, dtype=torch.float32)
    ticks = PPQ // 4
    device = next(model.parameters()).device
    for start in range(0, len(bars), SCORE_BARS):
        window = [t for bar in bars[start:start + SCORE_BARS] for t in bar]
        ids = tok.prefix(genre, pattern.tempo) + window
        logits, head = model(torch.tensor([ids], device=device), with_timing=True)
        step, bar = 0, start - 1
        for i, token in enumerate(ids):
            if token == tok.ids.bar:
                bar += 1
            elif token in vocab.step_of:
                step = vocab.step_of[token]
            elif token in vocab.voice_of:
                voice = vocab.voice_of[token]
                key = (bar * 4 * PPQ + step * TICKS_PER_STEP, vocab.pitches[voice])
                probs = logits[0, i - 1, vocab.hit_tokens[voice]].softmax(dim=-1)
                velocity[key] = float((probs * values).sum())
                if head is not None:
                    mean, log_std = head[0, i].tolist()
                    timing[key] = (mean * ticks, math.exp(log_std) * ticks)
    return timing, velocity


def _keyed_by_notes(pattern: Pattern, by_grid: dict[tuple[int, int], object]) -> dict[tuple[int, int], object]:
    """Grid-keyed values re-keyed by each note's own ``(onset, pitch)`` (its grid step and voice)."""
    out = {}
    for n in pattern.notes:
        voice_pitch = canonical_pitch(n.pitch)
        value = by_grid.get((snap(n.onset), voice_pitch)) if voice_pitch is not None else None
        if value is not None:
            out[n.onset, n.pitch] = value
    return out


def _plan(engine: Engine, request: GenerateRequest, tempo: float, bars: int) -> ResolvedRequest:
    return engine.resolve(replace(request, tempo=tempo, bars=bars))


# --- the four modes ---------------------------------------------------------------------------------
def humanize_upload(engine: Engine, request: GenerateRequest, upload: Pattern, quantize: bool = False) -> list[Groove]:
    """``upload`` (a drum groove) with the style's feel, ``request.count`` variations (seed + i);
    ``quantize`` first snaps it to the grid (for a played file)."""
    plan = _plan(engine, request, upload.tempo, upload.bars)
    source = snap_to_grid(upload) if quantize else upload
    timing, velocity = score(engine, plan.preset.genre, source)
    sampled = [Sampled(source, [], seed, _keyed_by_notes(source, timing), _keyed_by_notes(source, velocity), made=False)
               for seed in plan.seeds]
    grooves = engine.finish(plan, sampled)
    merged = len(upload.notes) - len(source.notes)
    if merged:
        for groove in grooves:
            groove.notices.append(f"quantizing merged {merged} note(s) that fell on the same step as another of "
                                  "their pitch")
    return _rendered(engine, plan, grooves)


def continue_upload(engine: Engine, request: GenerateRequest, upload: Pattern, only_new: bool = False
                    ) -> list[Groove]:
    """``request.bars`` new bars after ``upload`` in the style, prompted by its last bars (up to 8) and
    leaning toward its last phrase; the result is the upload followed by the new bars (only the new
    bars with ``only_new``). The upload's own bars are kept exactly."""
    if not only_new and upload.bars + request.bars > MAX_BARS:
        room = MAX_BARS - upload.bars
        hint = f"ask for at most {room} new bar(s) or use only_new" if room > 0 else "use only_new (the new bars alone)"
        raise ValueError(f"bars: the upload's {upload.bars} bars plus {request.bars} new ones pass {MAX_BARS}; {hint}")
    plan = _plan(engine, request, upload.tempo, request.bars)
    tok = engine.tokenizer
    prompt_bars = min(PROMPT_BARS, upload.bars)
    first = upload.bars - prompt_bars
    grid = quantize_pattern(upload)
    encoded = tok.encode_bars(grid)[first:]
    prompt = tok.prefix(plan.preset.genre, upload.tempo) + [t for bar in encoded for t in bar]
    vocab = vocabulary(tok)
    phrase_source = encoded[-2:] if len(encoded) >= 2 and len(encoded) % 2 == 0 else encoded[-1:]
    phrase = [_bar_hits(bar, vocab) for bar in phrase_source]
    new = engine.finish(plan, engine.sample(plan, prompt=prompt, phrase=phrase, opening=False, half_time=False))
    if only_new:
        return _rendered(engine, plan, new)
    whole = _plan(engine, request, upload.tempo, upload.bars + request.bars)
    shift = upload.length_ticks
    joined = []
    for groove in new:
        notes = list(upload.notes) + [replace(n, onset=n.onset + shift) for n in groove.pattern.notes]
        pattern = replace(groove.pattern, bars=whole.bars, notes=sorted(notes))
        joined.append(_regroove(engine, whole, groove, pattern))
    return _rendered(engine, whole, joined)


def reroll_upload(engine: Engine, request: GenerateRequest, upload: Pattern, keep: Iterable[str]) -> list[Groove]:
    """``upload`` with the voices in ``keep`` (e.g. ``["kick", "snare"]``) kept exactly and the rest
    generated around them in the style."""
    kept = _voices(keep)
    plan = _plan(engine, request, upload.tempo, upload.bars)
    vocab = vocabulary(engine.tokenizer)
    locked_pitches = [VOICE_PITCH[v] for v in kept]
    kept_notes = [n for n in upload.notes if (canonical_pitch(n.pitch) or -1) in locked_pitches]
    required: dict[int, list[RequiredHit]] = {}
    seen: set[tuple[int, int, int]] = set()
    for n in sorted(kept_notes):
        onset = snap(n.onset)
        bar, step = divmod(onset, 4 * PPQ)
        pitch = canonical_pitch(n.pitch)
        key = (bar, step // TICKS_PER_STEP, pitch)
        if bar < plan.bars and key not in seen:
            seen.add(key)
            token = vocab.hit_token(vocab.voice_of_pitch[pitch], n.velocity)
            required.setdefault(bar, []).append(RequiredHit(step // TICKS_PER_STEP, pitch, (token,)))
    fixed = FixedHits(vocab, required, locked=locked_pitches)
    sampled = engine.sample(plan, extra=[fixed], opening=False, half_time=False)
    out = []
    for groove in engine.finish(plan, sampled):
        others = [n for n in groove.pattern.notes if canonical_pitch(n.pitch) not in locked_pitches]
        out.append(_regroove(engine, plan, groove, groove.pattern.with_notes(others + kept_notes)))
    return _rendered(engine, plan, out)


def drumify_part(engine: Engine, request: GenerateRequest, part: PartRead) -> list[Groove]:
    """A groove in the style whose kick follows ``part``'s onsets: at least half of them (the
    strongest: on the beat, then on the 8th, then the longest notes) get a kick, no kick falls
    elsewhere, and the rest of the kit is generated around it."""
    plan = _plan(engine, request, part.tempo, part.bars)
    vocab = vocabulary(engine.tokenizer)
    loud = vocab.hits_at_least(KICK, 80)
    required: dict[int, list[RequiredHit]] = {}
    for onset in kick_onsets(part):
        bar, tick = divmod(onset, 4 * PPQ)
        if bar < plan.bars:
            required.setdefault(bar, []).append(RequiredHit(tick // TICKS_PER_STEP, KICK, loud))
    fixed = FixedHits(vocab, required, locked=[KICK])
    grooves = engine.finish(plan, engine.sample(plan, extra=[fixed], opening=False, half_time=False))
    return _rendered(engine, plan, grooves)


def kick_onsets(part: PartRead) -> list[int]:
    """The grid steps of ``part`` that get a kick: per bar, the strongest half of its onsets (rounded
    up): on a beat first, then on an 8th, then by note length."""
    by_bar: dict[int, list[tuple[int, int]]] = {}
    loop = part.bars * 4 * PPQ
    for onset, length in zip(part.onsets, part.lengths, strict=True):
        grid = snap(onset) % loop  # a hit just before the loop's end is its next downbeat, the loop's first
        by_bar.setdefault(grid // (4 * PPQ), []).append((grid, length))
    chosen: list[int] = []
    for hits in by_bar.values():
        unique = {g: max(ln for gg, ln in hits if gg == g) for g, _ in hits}
        ranked = sorted(unique, key=lambda g: (g % PPQ != 0, g % (PPQ // 2) != 0, -unique[g], g))
        chosen += ranked[:math.ceil(DRUMIFY_MIN_SHARE * len(ranked))]
    return sorted(chosen)


# --- helpers -----------------------------------------------------------------------------------------
def _voices(keep: Iterable[str]) -> list[str]:
    names = [str(v).strip().lower().replace("-", "_").replace(" ", "_") for v in keep]
    aliases = {"hat": "closed_hat", "hihat": "closed_hat", "hi_hat": "closed_hat", "toms": None}
    voices: list[str] = []
    for name in names:
        if name == "toms":
            voices += ["low_tom", "mid_tom", "high_tom"]
            continue
        name = aliases.get(name, name) or name
        if name not in LOCKABLE:
            raise ValueError(f"keep must name voices from {', '.join(LOCKABLE)} (or hat, toms), got {shown(name)}")
        voices.append(name)
    if not voices:
        raise ValueError(f"keep must name at least one voice from {', '.join(LOCKABLE)}")
    if len(set(voices)) >= len(LOCKABLE):
        raise ValueError("keep: at least one voice must be left to re-roll")
    return list(dict.fromkeys(voices))


def _bar_hits(bar_tokens: Sequence[int], vocab: Vocabulary) -> list[BarHit]:
    step, out = 0, []
    for token in bar_tokens:
        if token in vocab.step_of:
            step = vocab.step_of[token]
        elif token in vocab.voice_of:
            out.append(BarHit(step, vocab.voice_of[token], token))
    return out


def _regroove(engine: Engine, plan: ResolvedRequest, groove: Groove, pattern: Pattern) -> Groove:
    """``groove`` with a new finished ``pattern``: MIDI bytes, note count and measured feel again."""
    return engine.groove(plan, groove.seed, groove.quantized, pattern)


def _rendered(engine: Engine, plan: ResolvedRequest, grooves: list[Groove]) -> list[Groove]:
    if plan.audio:
        engine.render(plan, grooves)
    return grooves
