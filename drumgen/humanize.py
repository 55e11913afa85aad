"""Humanization: swing, correlated micro-timing drift, voice offsets, velocity, ghost notes, articulations.

Deterministic for a given seed; every effect is scaled by ``amount`` (0-1) and
``amount=0`` returns the pattern unchanged.

Each effect is a small pure function on a list of notes; :func:`humanize` chains them:

1. :func:`add_ghost_notes` - snare ghosts on empty 16ths of the *straight* grid (run before
   swing so that swing moves ghosts on off-beat 16ths exactly like every other note)
2. :func:`apply_swing` - MPC-style swing of the off-beat 16ths
3. :func:`vary_velocity` - random velocity variation plus a light beat accent
4. :func:`apply_articulations` - style rules such as trap hat rolls (placed on the grid, so run
   before micro-timing, which then humanizes the rolls with everything else)
5. :func:`apply_micro_timing` - per-voice offsets, slow shared drift, per-hit jitter
6. clamp into the loop, resolve same-pitch collisions, validate

Every effect draws from its own random stream (children of one
``numpy.random.Generator(PCG64(seed))``), so turning one knob does not reshuffle the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from drumgen.drum_map import VOICE_PITCH, VOICES, voice_of
from drumgen.pattern import DEFAULT_NOTE_TICKS, PPQ, Note, Pattern, clamp_velocity

# Defaults measured on the Groove MIDI Dataset (see BRIEF.md): hits sit ~12 ms from the
# grid inside 2-bar windows, slow drift wanders ~10 ms between windows, hats lead by ~10 ms.
DEFAULT_SWING = 50.0  # percent; 50 = straight, ~66 = triplet
DEFAULT_MICRO_TIMING_MS = 12.0
DEFAULT_DRIFT_MS = 10.0
DEFAULT_GHOST_NOTE_PROB = 0.0
DEFAULT_VELOCITY_VARIATION = 0.1
DEFAULT_GHOST_VELOCITY = 30  # ghost notes are written at about this velocity (<= 40)
DEFAULT_VOICE_OFFSETS_MS: dict[str, float] = {
    "closed_hat": -10.0, "open_hat": -8.0, "kick": -3.0, "snare": -2.0,
}
DEFAULT_ACCENT = 0.08  # beat downbeats x(1 + accent), off-8th positions x(1 - accent)

MIN_SWING, MAX_SWING = 50.0, 75.0  # percent
GHOST_MAX_VELOCITY = 40  # a hit at or below this velocity counts as a ghost note
GHOST_VELOCITY_SPREAD = (-12, 8)  # new ghosts: DEFAULT_GHOST_VELOCITY + uniform integer in this range
VELOCITY_FACTOR_RANGE = (0.25, 1.75)  # the random velocity factor is clipped into this range
JITTER_CLIP_SIGMAS = 3.0  # per-hit jitter is clipped at +-3 standard deviations
DRIFT_WINDOW_BARS = 2  # drift is sampled once per 2-bar window ...
DRIFT_CORRELATION = 0.5  # ... as a stationary AR(1); at 0.5 neighbouring windows differ by ~drift_ms
ROLL_VELOCITY_RAMP = (0.55, 1.0)  # hat rolls ramp between these fractions of the replaced hats' velocity
HAT_ROLL_DIVISIONS = (8, 6)  # notes per quarter note: 32nds, 16th triplets
HAT_ROLL_SPANS = ("half", "whole")  # a roll fills the second half of the beat or the whole beat


@dataclass(frozen=True)
class Articulation:
    """A style rule applied after swing and velocity, before micro-timing (so it breathes with the groove).

    ``probability`` is the chance per eligible spot (for hat rolls: per beat that has a hat),
    multiplied by the humanize ``amount``; ``options`` holds rule-specific values. Default
    probability 0.25, no options. ``hat_rolls`` options: ``divisions`` (notes per quarter note,
    default ``[8, 6]``: 32nds or 16th triplets) and ``spans`` (default ``["half", "whole"]``).
    """

    type: str
    probability: float = 0.25
    options: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class HumanizeParams:
    """How a style humanizes. Defaults: straight (swing 50 %), micro-timing 12 ms,
    drift 10 ms, no ghost notes, velocity variation 0.1, the dataset's per-voice offsets,
    beat accent 0.08, no articulations."""

    swing: float = DEFAULT_SWING
    micro_timing_ms: float = DEFAULT_MICRO_TIMING_MS
    drift_ms: float = DEFAULT_DRIFT_MS
    ghost_note_prob: float = DEFAULT_GHOST_NOTE_PROB
    velocity_variation: float = DEFAULT_VELOCITY_VARIATION
    voice_offsets_ms: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_VOICE_OFFSETS_MS))
    articulations: tuple[Articulation, ...] = ()
    accent: float = DEFAULT_ACCENT


# --- validation -----------------------------------------------------------------------------------
def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_range(name: str, value: object, lo: float, hi: float = math.inf) -> float:
    """Return ``value`` as float or raise ``ValueError`` naming it when not a finite number in [lo, hi]."""
    if not _is_real(value) or not math.isfinite(float(value)) or not lo <= float(value) <= hi:
        bounds = f"{lo:g}-{hi:g}" if math.isfinite(hi) else f">= {lo:g}"
        raise ValueError(f"{name} must be a finite number in {bounds}, got {value!r}")
    return float(value)


def check_params(params: HumanizeParams, swing: float | None = None) -> None:
    """Raise ``ValueError`` naming the first bad field of ``params``; ``swing`` overrides ``params.swing``."""
    _check_range("swing", params.swing if swing is None else swing, MIN_SWING, MAX_SWING)
    _check_range("micro_timing_ms", params.micro_timing_ms, 0.0)
    _check_range("drift_ms", params.drift_ms, 0.0)
    _check_range("ghost_note_prob", params.ghost_note_prob, 0.0, 1.0)
    _check_range("velocity_variation", params.velocity_variation, 0.0)
    _check_range("accent", params.accent, 0.0, 1.0)
    for voice, ms in params.voice_offsets_ms.items():
        if voice not in VOICES:
            raise ValueError(f"voice_offsets_ms: unknown voice {voice!r}; known voices: {', '.join(VOICES)}")
        _check_range(f"voice_offsets_ms[{voice!r}]", ms, -math.inf)
    for art in params.articulations:
        _check_articulation(art)


# --- 1. ghost notes -------------------------------------------------------------------------------
def add_ghost_notes(
    notes: Sequence[Note], pattern: Pattern, prob: float, rng: np.random.Generator
) -> list[Note]:
    """Add snare ghosts (pitch 38) on 16ths of the straight grid that hold no snare-voice hit.

    Each empty 16th gets a ghost with probability ``prob`` (already scaled by amount), at
    velocity ``DEFAULT_GHOST_VELOCITY`` -12..+8, never above ``GHOST_MAX_VELOCITY``. A snare hit
    occupies the 16th nearest to it. Returns a new list; ``notes`` is untouched.
    """
    t16 = pattern.ticks_per_16th
    n16 = pattern.length_ticks // t16
    taken = {round(n.onset / t16) for n in notes if voice_of(n.pitch) == "snare"}
    coins = rng.random(n16)  # one draw per grid 16th, so the stream does not depend on the pattern
    lo, hi = GHOST_VELOCITY_SPREAD
    vels = rng.integers(DEFAULT_GHOST_VELOCITY + lo, DEFAULT_GHOST_VELOCITY + hi + 1, n16)
    ghosts = [
        Note(i * t16, VOICE_PITCH["snare"], int(min(GHOST_MAX_VELOCITY, max(1, vels[i]))))
        for i in range(n16)
        if i not in taken and coins[i] < prob
    ]
    return [*notes, *ghosts]


# --- 2. swing -------------------------------------------------------------------------------------
def swing_offset_ticks(swing_percent: float, ticks_per_8th: int = PPQ // 2) -> int:
    """Ticks from an 8th-note's start to its swung off 16th: round-half-up(swing/100 * 8th).

    50 -> 120, 62 -> 149, 66 -> 158 at 480 PPQ.
    """
    return int(math.floor(swing_percent / 100.0 * ticks_per_8th + 0.5))


def apply_swing(notes: Sequence[Note], pattern: Pattern, swing_percent: float) -> list[Note]:
    """Move off-beat 16ths (odd 16th index, exactly on the grid) to ``swing_percent`` of their 8th.

    Everything else (on-beat 16ths, triplets, 32nds, humanized onsets) is left alone.
    ``swing_percent`` is the effective swing (already scaled by amount); 50 is straight.
    """
    _check_range("swing", swing_percent, MIN_SWING, MAX_SWING)
    t16 = pattern.ticks_per_16th
    shift = swing_offset_ticks(swing_percent, 2 * t16) - t16
    if shift == 0:
        return list(notes)
    return [
        replace(n, onset=n.onset + shift) if n.onset % t16 == 0 and (n.onset // t16) % 2 == 1 else n
        for n in notes
    ]


# --- 3. velocity ----------------------------------------------------------------------------------
def vary_velocity(
    notes: Sequence[Note],
    pattern: Pattern,
    variation: float,
    rng: np.random.Generator,
    accent: float = 0.0,
) -> list[Note]:
    """Scale each velocity by ``1 + N(0, variation)`` (clipped to 0.25-1.75) and a beat accent.

    Hits exactly on a beat get ``x(1 + accent)``, hits off the 8th grid (e.g. swung 16ths)
    ``x(1 - accent)``; both values come already scaled by amount (default accent 0). Ghost
    notes (velocity <= 40) stay <= 40; results are clamped to 1-127.
    """
    if not notes:
        return []
    factors = np.clip(1.0 + rng.normal(0.0, variation, len(notes)), *VELOCITY_FACTOR_RANGE)
    tpb, t8 = pattern.ticks_per_beat, 2 * pattern.ticks_per_16th
    out = []
    for note, f in zip(notes, factors, strict=True):
        if note.onset % tpb == 0:
            f *= 1.0 + accent
        elif note.onset % t8 != 0:
            f *= 1.0 - accent
        vel = clamp_velocity(note.velocity * f)
        if note.velocity <= GHOST_MAX_VELOCITY:
            vel = min(vel, GHOST_MAX_VELOCITY)
        out.append(replace(note, velocity=vel))
    return out


# --- 5. micro-timing ------------------------------------------------------------------------------
def drift_curve(
    pattern: Pattern, drift_ms: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Knots of the slow timing drift shared by all voices: ``(ticks, ms)``.

    One knot per 2-bar window boundary (and the end); the values are a stationary AR(1) with
    standard deviation ``drift_ms`` and correlation 0.5, then centred on zero so drift does
    not shift the whole pattern (per-voice offsets keep their meaning).
    """
    window = DRIFT_WINDOW_BARS * pattern.ticks_per_bar
    n_windows = max(1, math.ceil(pattern.length_ticks / window))
    knots = np.arange(n_windows + 1, dtype=float) * window
    noise = rng.normal(0.0, drift_ms, n_windows + 1)
    values = np.empty_like(noise)
    values[0] = noise[0]
    rho = DRIFT_CORRELATION
    for k in range(1, len(values)):
        values[k] = rho * values[k - 1] + math.sqrt(1.0 - rho**2) * noise[k]
    return knots, values - values.mean()


def _smooth_interp(x: np.ndarray, knots: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Cosine interpolation between knots: continuous with a continuous slope, no corners."""
    idx = np.clip(np.searchsorted(knots, x, side="right") - 1, 0, len(knots) - 2)
    t = np.clip((x - knots[idx]) / (knots[idx + 1] - knots[idx]), 0.0, 1.0)
    w = (1.0 - np.cos(np.pi * t)) / 2.0
    return values[idx] * (1.0 - w) + values[idx + 1] * w


def apply_micro_timing(
    notes: Sequence[Note],
    pattern: Pattern,
    rng: np.random.Generator,
    micro_timing_ms: float,
    drift_ms: float,
    voice_offsets_ms: Mapping[str, float],
) -> list[Note]:
    """Shift each onset by its voice's offset + the shared slow drift + white jitter (all in ms).

    Values come already scaled by amount. Jitter is ``N(0, micro_timing_ms)`` clipped at +-3
    sigma; the drift is :func:`drift_curve` interpolated smoothly. Milliseconds become ticks
    at the pattern's tempo, rounded to whole ticks; onsets are not clamped here.
    """
    if not notes:
        return []
    onsets = np.array([n.onset for n in notes], dtype=float)
    voice_ms = np.array([voice_offsets_ms.get(voice_of(n.pitch) or "", 0.0) for n in notes], dtype=float)
    knots, values = drift_curve(pattern, drift_ms, rng)
    lim = JITTER_CLIP_SIGMAS * micro_timing_ms
    jitter = np.clip(rng.normal(0.0, micro_timing_ms, len(notes)), -lim, lim)
    total_ms = voice_ms + _smooth_interp(onsets, knots, values) + jitter
    new = np.rint(onsets + total_ms * pattern.ms_to_ticks(1.0)).astype(int)
    return [replace(n, onset=int(t)) for n, t in zip(notes, new, strict=True)]


# --- 4. articulations -----------------------------------------------------------------------------
def _hat_rolls(
    notes: Sequence[Note], pattern: Pattern, art: Articulation, prob: float, rng: np.random.Generator
) -> list[Note]:
    """Replace, per beat holding a closed hat, its hats with a 32nd / 16th-triplet roll (chance ``prob``).

    A roll covers the second half of the beat or the whole beat, steps of ``PPQ // division``
    ticks, velocity ramping up or down between 55 % and 100 % of the loudest replaced hat.
    """
    divisions = [int(d) for d in art.options.get("divisions", HAT_ROLL_DIVISIONS)]  # type: ignore[union-attr]
    spans = [str(s) for s in art.options.get("spans", HAT_ROLL_SPANS)]  # type: ignore[union-attr]
    tpb = pattern.ticks_per_beat
    is_hat = [voice_of(n.pitch) == "closed_hat" for n in notes]
    out = list(notes)
    for beat in range(pattern.length_ticks // tpb):
        lo, hi = beat * tpb, (beat + 1) * tpb
        # draw for every beat so the stream does not depend on which beats have hats
        coin, div, span, up = rng.random(), rng.choice(divisions), rng.choice(spans), rng.random() < 0.5
        if coin >= prob or not any(h and lo <= n.onset < hi for n, h in zip(notes, is_hat, strict=True)):
            continue
        start = lo + tpb // 2 if span == "half" else lo
        replaced = [n for n in out if voice_of(n.pitch) == "closed_hat" and start <= n.onset < hi]
        if not replaced:  # "half" roll but this beat's hats are all in its first half
            start = lo
            replaced = [n for n in out if voice_of(n.pitch) == "closed_hat" and lo <= n.onset < hi]
        pitch = next((n.pitch for n in replaced if n.pitch != 44), VOICE_PITCH["closed_hat"])
        base = max(n.velocity for n in replaced)
        step = PPQ // int(div)
        count = max(1, (hi - start) // step)
        ramp = np.linspace(*ROLL_VELOCITY_RAMP, count)
        if not up:
            ramp = ramp[::-1]
        out = [n for n in out if n not in replaced]
        gate = max(1, min(DEFAULT_NOTE_TICKS, step // 2))  # note-offs well before the next roll hit
        out += [Note(start + i * step, pitch, clamp_velocity(base * r), gate) for i, r in enumerate(ramp)]
    return out


_ARTICULATIONS: dict[
    str, Callable[[Sequence[Note], Pattern, Articulation, float, np.random.Generator], list[Note]]
] = {"hat_rolls": _hat_rolls}
_ARTICULATION_OPTIONS: dict[str, set[str]] = {"hat_rolls": {"divisions", "spans"}}


def _check_articulation(art: Articulation) -> None:
    """Raise ``ValueError`` for an unknown articulation type, option or bad value (catches preset typos)."""
    if art.type not in _ARTICULATIONS:
        raise ValueError(f"unknown articulation type {art.type!r}; known types: {', '.join(_ARTICULATIONS)}")
    _check_range(f"{art.type} probability", art.probability, 0.0, 1.0)
    unknown = set(art.options) - _ARTICULATION_OPTIONS[art.type]
    if unknown:
        raise ValueError(f"{art.type}: unknown option(s) {sorted(unknown)}")
    if art.type == "hat_rolls":
        divisions = art.options.get("divisions", HAT_ROLL_DIVISIONS)
        if (
            not isinstance(divisions, (list, tuple))
            or not divisions
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 and PPQ % d == 0
                       for d in divisions)
        ):
            raise ValueError(
                f"hat_rolls divisions must be a non-empty list of divisors of {PPQ}, got {divisions!r}"
            )
        spans = art.options.get("spans", HAT_ROLL_SPANS)
        if not isinstance(spans, (list, tuple)) or not spans or not set(spans) <= set(HAT_ROLL_SPANS):
            raise ValueError(f"hat_rolls spans must be a non-empty list from {HAT_ROLL_SPANS}, got {spans!r}")


def apply_articulations(
    notes: Sequence[Note],
    pattern: Pattern,
    articulations: Sequence[Articulation],
    rng: np.random.Generator,
    amount: float = 1.0,
) -> list[Note]:
    """Apply each articulation in order with chance ``probability * amount`` (default amount 1).

    Unknown types raise ``ValueError`` naming the type.
    """
    out = list(notes)
    for art in articulations:
        _check_articulation(art)
        out = _ARTICULATIONS[art.type](out, pattern, art, art.probability * amount, rng)
    return out


# --- 6. fit into the loop -------------------------------------------------------------------------
def fit_to_pattern(notes: Sequence[Note], pattern: Pattern) -> list[Note]:
    """Clamp onsets into ``[0, length)``, trim note-offs to the loop end, resolve same-pitch collisions.

    A later duplicate (same pitch, same tick) is nudged one tick later, else one tick earlier,
    else dropped.
    """
    length = pattern.length_ticks
    seen: set[tuple[int, int]] = set()
    out = []
    for n in sorted(replace(n, onset=min(max(n.onset, 0), length - 1)) for n in notes):
        for onset in (n.onset, n.onset + 1, n.onset - 1):
            if 0 <= onset < length and (onset, n.pitch) not in seen:
                seen.add((onset, n.pitch))
                out.append(replace(n, onset=onset, duration=max(1, min(n.duration, length - onset))))
                break
    return out


# --- the chain ------------------------------------------------------------------------------------
def humanize(
    pattern: Pattern,
    params: HumanizeParams,
    amount: float = 1.0,
    seed: int = 0,
    swing: float | None = None,
) -> Pattern:
    """Return a new, validated, humanized copy of ``pattern`` (the input is untouched).

    ``amount`` (0-1, default 1) scales every effect: swing becomes ``50 + (swing - 50) * amount``,
    ghost and articulation probabilities, velocity variation, accent and all timing offsets
    are multiplied by it; ``amount=0`` returns the same notes. ``seed`` (default 0) makes the
    result reproducible; ``swing`` (percent, 50-75) overrides ``params.swing`` when given.
    Raises ``ValueError`` naming a bad ``amount``, ``seed`` or parameter.
    """
    amount = _check_range("amount", amount, 0.0, 1.0)
    swing_percent = _check_range("swing", params.swing if swing is None else swing, MIN_SWING, MAX_SWING)
    check_params(params, swing_percent)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if amount == 0.0:
        return replace(pattern, notes=list(pattern.notes), meta=dict(pattern.meta)).validate()

    root = np.random.Generator(np.random.PCG64(seed))
    ghost_rng, velocity_rng, timing_rng, articulation_rng = root.spawn(4)  # one stream per effect
    notes = add_ghost_notes(pattern.notes, pattern, params.ghost_note_prob * amount, ghost_rng)
    notes = apply_swing(notes, pattern, 50.0 + (swing_percent - 50.0) * amount)
    notes = vary_velocity(
        notes, pattern, params.velocity_variation * amount, velocity_rng, params.accent * amount
    )
    notes = apply_articulations(notes, pattern, params.articulations, articulation_rng, amount)
    notes = apply_micro_timing(
        notes,
        pattern,
        timing_rng,
        params.micro_timing_ms * amount,
        params.drift_ms * amount,
        {voice: ms * amount for voice, ms in params.voice_offsets_ms.items()},
    )
    return pattern.with_notes(fit_to_pattern(notes, pattern)).validate()


# --- measuring ------------------------------------------------------------------------------------
def measure_feel(pattern: Pattern) -> dict[str, object]:
    """Summarise a pattern's feel for display.

    Returns a dict:

    - ``swing``: percent, the median position of off-beat 16ths within their 8th note (hits
      40-85 % of the way through an 8th), each corrected by its voice's median lean at the 8th
      starts, clipped to 50-75; ``None`` when there are none
    - ``offset_ms``: per voice, the mean signed distance in ms from the nearest point of the
      16th grid swung by the measured swing (negative = early)
    - ``mean_abs_offset_ms``: the mean absolute distance over all hits
    - ``ghost_share``: share of hits with velocity <= 40
    - ``hits_per_bar``: hits divided by bars
    """
    notes = pattern.notes
    t16 = pattern.ticks_per_16th
    t8 = 2 * t16
    onsets = np.array([n.onset for n in notes], dtype=float)
    voices = [voice_of(n.pitch) or "other" for n in notes]
    pos = onsets % t8
    # Each voice's own lean (its median distance from the 8th starts it plays near) is taken off
    # its off-beat positions, so an early hi-hat does not read as less swing.
    near_8th = np.minimum(pos, t8 - pos) <= 0.15 * t8
    dev_8th = np.where(pos > t8 / 2, pos - t8, pos)
    lean: dict[str, float] = {}
    for voice in set(voices):
        devs = [d for d, w, m in zip(dev_8th, voices, near_8th, strict=True) if w == voice and m]
        if devs:
            lean[voice] = float(np.median(devs))
    in_off = (pos >= 0.4 * t8) & (pos <= 0.85 * t8)
    off = np.array([p - lean.get(v, 0.0) for p, v, m in zip(pos, voices, in_off, strict=True) if m])
    swing = float(np.clip(100.0 * np.median(off) / t8, MIN_SWING, MAX_SWING)) if off.size else None

    # Distance to the nearest point of the swung 16th grid (the 8th starts and their swung off 16ths).
    grid_off = (swing if swing is not None else 50.0) / 100.0 * t8
    base = np.floor(onsets / t8) * t8
    cands = np.stack([base - t8 + grid_off, base, base + grid_off, base + t8])
    dist = onsets - cands
    delta = dist[np.argmin(np.abs(dist), axis=0), np.arange(len(notes))] if notes else np.array([])
    delta_ms = delta * pattern.seconds_per_tick * 1000.0

    by_voice: dict[str, list[float]] = {}
    for voice, d in zip(voices, delta_ms, strict=True):
        by_voice.setdefault(voice, []).append(float(d))
    return {
        "swing": None if swing is None else round(swing, 2),
        "offset_ms": {v: round(float(np.mean(ds)), 2) for v, ds in sorted(by_voice.items())},
        "mean_abs_offset_ms": round(float(np.mean(np.abs(delta_ms))), 2) if notes else 0.0,
        "ghost_share": round(sum(n.velocity <= GHOST_MAX_VELOCITY for n in notes) / len(notes), 4)
        if notes
        else 0.0,
        "hits_per_bar": round(len(notes) / pattern.bars, 2),
    }
