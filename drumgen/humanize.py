"""Humanization: a quantized groove gets a style's feel.

Every effect is scaled by ``amount`` (0-1) and ``amount=0`` returns the pattern unchanged.
:func:`humanize` chains small functions on lists of notes:

1. :func:`add_ghost_notes` - snare ghosts until the snare's ghost share reaches the style's
   ``ghost_note_prob`` (counting the ghosts already there), at places chosen per position inside the
   repeating phrase, so they repeat with the loop; never on a 16th that holds a snare
2. the learned feel, when the model gave one (:func:`apply_learned_timing`): each hit moves by the
   micro-timing the model predicted for it (its mean, plus its spread scaled by the style's
   ``micro_timing_ms``), the off-beat 16ths leaning to the style's swing when it names one;
   otherwise :func:`apply_swing` - MPC-style swing of the off-beat 16ths
3. :func:`vary_velocity` - velocity variation plus a light beat accent (and, for the model's own
   hits, a spread inside each velocity bin its tokens rounded to)
4. :func:`apply_articulations` - style rules such as trap hat rolls (on the grid, so run before
   micro-timing, which then humanizes the rolls with everything else)
5. :func:`apply_micro_timing` - the style's per-voice offsets and slow shared drift on top (and per-hit
   jitter when there is no learned feel)
6. clamp into the loop and resolve same-pitch collisions

Randomness is keyed to each hit (:mod:`drumgen.keyed_random`): a hit's draws depend on the seed,
its place on the grid and its voice, never on the other hits, so re-rolling the hats leaves the
kick and snare byte-identical.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from drumgen import keyed_random
from drumgen.constants import GHOST_MAX_VELOCITY, MAX_SWING, MIN_SWING, PPQ, STRAIGHT_SWING
from drumgen.limits import NumberLimit
from drumgen.pattern import DEFAULT_NOTE_TICKS, Note, Pattern, clamp_velocity
from drumgen.tokenizer import grid_steps
from drumgen.voices import VOICE_PITCH, VOICES, voice_of

# Defaults measured on the Groove MIDI Dataset: hits sit ~12 ms from the grid inside 2-bar windows,
# slow drift wanders ~10 ms between windows, every voice plays a little early, the hi-hat most.
DEFAULT_MICRO_TIMING_MS = 12.0  # the learned feel's spread plays as learned at this value (a drummer's)
DEFAULT_DRIFT_MS = 0.0  # extra shared drift on top of the learned feel (its own share already wanders)
DEFAULT_GHOST_NOTE_PROB = 0.0
DEFAULT_VELOCITY_VARIATION = 0.0  # extra on top of the model's velocities
DEFAULT_GHOST_VELOCITY = 30  # new ghost notes are written at about this velocity
DEFAULT_ACCENT = 0.0  # beat downbeats x(1 + accent), off-8th positions x(1 - accent)
MAX_TIMING_MS = 100.0  # bound on micro-timing, drift and per-voice offsets
LEARNED_DRIFT_SHARE = 0.35  # of the learned spread's variance, the share that wanders slowly and together
LEARNED_VELOCITY_SHARE = 0.5  # an upload's velocities move this far toward what the model expects


GHOST_VELOCITY_SPREAD = (-12, 8)  # new ghosts: DEFAULT_GHOST_VELOCITY + this range
GHOST_PLACE_WEIGHT = {1: 1.0, 3: 1.0, 2: 0.5, 0: 0.15}  # 16th within the beat: the e and a first, then the and
GHOST_BREAK_WITH_VARIATION = 0.5  # at variation 1 half the ghosts of a phrase position skip a given bar
VELOCITY_FACTOR_RANGE = (0.25, 1.75)  # the random velocity factor is clipped into this range
JITTER_CLIP_SIGMAS = 3.0  # per-hit jitter is clipped at +-3 standard deviations
DRIFT_WINDOW_BARS = 2  # drift is drawn once per 2-bar window ...
DRIFT_CORRELATION = 0.5  # ... as a stationary AR(1); at 0.5 neighbouring windows differ by ~drift_ms
ROLL_VELOCITY_RAMP = (0.55, 1.0)  # hat rolls ramp between these fractions of the replaced hats' velocity
HAT_ROLL_DIVISIONS = (8, 6)  # notes per quarter note: 32nds, 16th triplets
HAT_ROLL_SPANS = ("half", "whole")  # a roll fills the second half of the beat or the whole beat

@dataclass(frozen=True)
class Articulation:
    """A style rule applied after swing and velocity, before micro-timing (so it breathes with the groove).

    ``probability`` is the chance per eligible spot (for hat rolls: per beat that has a hat),
    multiplied by the humanize ``amount``; ``options`` holds rule-specific values. ``hat_rolls``
    options: ``divisions`` (notes per quarter note, default ``[8, 6]``: 32nds or 16th triplets) and
    ``spans`` (default ``["half", "whole"]``). Checked when made.
    """

    type: str
    probability: float = 0.25
    options: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in _ARTICULATIONS:
            raise ValueError(f"unknown articulation type {self.type!r}; known types: {', '.join(_ARTICULATIONS)}")
        NumberLimit(f"{self.type} probability", 0.0, 1.0).check(self.probability)
        unknown = set(self.options) - _ARTICULATION_OPTIONS[self.type]
        if unknown:
            raise ValueError(f"{self.type}: unknown option(s) {sorted(unknown)}")
        if self.type == "hat_rolls":
            divisions = self.options.get("divisions", HAT_ROLL_DIVISIONS)
            if (not isinstance(divisions, list | tuple) or not divisions
                    or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 and PPQ % d == 0
                               for d in divisions)):
                raise ValueError(f"hat_rolls divisions must be a non-empty list of divisors of {PPQ}, "
                                 f"got {divisions!r}")
            spans = self.options.get("spans", HAT_ROLL_SPANS)
            if not isinstance(spans, list | tuple) or not spans or not set(spans) <= set(HAT_ROLL_SPANS):
                raise ValueError(f"hat_rolls spans must be a non-empty list from {HAT_ROLL_SPANS}, got {spans!r}")


@dataclass(frozen=True)
class HumanizeParams:
    """How a style humanizes (its character on top of the learned feel), checked when made.

    Defaults: the learned feel as it is. ``swing`` None = the learned swing (a percent makes the
    off-beat 16ths lean to it); ``micro_timing_ms`` scales the learned timing's spread (12 = as
    learned); ``drift_ms`` adds slow shared drift; ``voice_offsets_ms`` shifts voices (ms, + = late);
    ``ghost_note_prob`` is the share of the snare's hits that are ghost notes once humanized (the
    model's own ghosts count toward it); ``velocity_variation`` and ``accent`` add dynamics; no
    articulations. Without a learned feel (a model without a timing head) ``micro_timing_ms`` is
    plain per-hit jitter and swing None is straight."""

    swing: float | None = None
    micro_timing_ms: float = DEFAULT_MICRO_TIMING_MS
    drift_ms: float = DEFAULT_DRIFT_MS
    ghost_note_prob: float = DEFAULT_GHOST_NOTE_PROB
    velocity_variation: float = DEFAULT_VELOCITY_VARIATION
    voice_offsets_ms: dict[str, float] = field(default_factory=dict)
    articulations: tuple[Articulation, ...] = ()
    accent: float = DEFAULT_ACCENT

    def __post_init__(self) -> None:
        if self.swing is not None:
            NumberLimit("swing", MIN_SWING, MAX_SWING, unit=" %").check(self.swing)
        for name in ("micro_timing_ms", "drift_ms"):
            NumberLimit(name, 0.0, MAX_TIMING_MS).check(getattr(self, name))
        NumberLimit("ghost_note_prob", 0.0, 1.0).check(self.ghost_note_prob)
        NumberLimit("velocity_variation", 0.0, 1.0).check(self.velocity_variation)
        NumberLimit("accent", 0.0, 1.0).check(self.accent)
        for voice, ms in self.voice_offsets_ms.items():
            if voice not in VOICES:
                raise ValueError(f"voice_offsets_ms: unknown voice {voice!r}; known voices: {', '.join(VOICES)}")
            NumberLimit(f"voice_offsets_ms[{voice!r}]", -MAX_TIMING_MS, MAX_TIMING_MS).check(ms)
        for art in self.articulations:
            if not isinstance(art, Articulation):
                raise ValueError(f"articulations must be Articulation objects, got {type(art).__name__}")


@dataclass(frozen=True)
class Hit:
    """A note on its way through the chain, with the grid onset its random draws are keyed to."""

    note: Note
    key: int  # the quantized onset (ticks) the hit had before any feel


def _keys(hits: Sequence[Hit]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([h.key for h in hits], dtype=np.int64), np.array([h.note.pitch for h in hits], dtype=np.int64))


# --- 1. ghost notes -------------------------------------------------------------------------------
def ghost_notes_needed(notes: Sequence[Note], share: float) -> int:
    """How many snare ghosts to add so ghosts are ``share`` of the snare's hits (0 when already there)."""
    snares = [n for n in notes if voice_of(n.pitch) == "snare"]
    ghosts = sum(n.velocity <= GHOST_MAX_VELOCITY for n in snares)
    if share <= 0 or not snares:
        return 0
    if share >= 1:
        share = 0.95
    return max(0, math.ceil((share * len(snares) - ghosts) / (1.0 - share)))


def _bar_cells(notes: Sequence[Note], pattern: Pattern, bar: int) -> set[tuple[int, int]]:
    """(nearest 16th, pitch) of every note of ``bar``."""
    t16, start = pattern.ticks_per_16th, bar * pattern.ticks_per_bar
    return {(round((n.onset - start) / t16), n.pitch) for n in notes
            if start - t16 // 2 <= n.onset < start + pattern.ticks_per_bar - t16 // 2}


def add_ghost_notes(hits: Sequence[Hit], pattern: Pattern, share: float, seed: int,
                    fill_bars: Iterable[int] = (), variation: float = 0.0, phrase_bars: int = 2) -> list[Hit]:
    """Add snare ghosts (pitch 38) on empty 16ths of the straight grid until ghost notes are ``share``
    of the snare's hits (already scaled by amount).

    Places are chosen per position inside the ``phrase_bars``-bar phrase (one bar when the groove's
    first two bars are the same: a one-bar loop; ranked by a keyed draw,
    weighted toward the e and a of the beat) and filled in every beat bar at that phrase position, so
    the ghosts repeat with the loop (whole places only: the share lands within half a place of the
    target); with ``variation`` > 0 some bars skip some of them. A 16th that
    holds a snare hit (or is within a 32nd of one) never gets a ghost; fill bars get none.
    """
    notes = [h.note for h in hits]
    need = ghost_notes_needed(notes, share)
    if need == 0:
        return list(hits)
    t16 = pattern.ticks_per_16th
    per_bar = pattern.ticks_per_bar // t16
    fills = set(fill_bars)
    beat_bars = [b for b in range(pattern.bars) if b not in fills]
    if not beat_bars:
        return list(hits)
    phrase = max(1, min(phrase_bars, len(beat_bars)))
    if (phrase == 2 and {0, 1} <= set(beat_bars) and len(beat_bars) <= 1.5 * need
            and _bar_cells(notes, pattern, 0) == _bar_cells(notes, pattern, 1)):
        # the groove loops a single bar: ghosts alternating between two bars would break it (when a
        # place in every bar does not overshoot the share)
        phrase = 1
    taken = {round(n.onset / t16) for n in notes if voice_of(n.pitch) == "snare"}
    taken |= {round((n.onset + t16 // 2) / t16) for n in notes if voice_of(n.pitch) == "snare"}
    # rank the phrase's 16ths once; lower score = earlier choice
    phrase_pos, steps = np.meshgrid(np.arange(phrase), np.arange(per_bar), indexing="ij")
    weight = np.vectorize(lambda s: GHOST_PLACE_WEIGHT.get(s % 4, 0.0))(steps)
    score = keyed_random.uniform(seed, "ghost-place", phrase_pos, steps) / np.maximum(weight, 1e-9)
    order = np.argsort(score, axis=None, kind="stable")
    lo, hi = GHOST_VELOCITY_SPREAD
    added: list[Hit] = []
    for flat in order:
        if len(added) >= need:
            break
        pp, step = divmod(int(flat), per_bar)
        velocity = int(DEFAULT_GHOST_VELOCITY + lo + keyed_random.uniform(seed, "ghost-velocity", pp, step)[()]
                       * (hi - lo + 1))
        cells = [bar * per_bar + step for bar in beat_bars if bar % phrase == pp and bar * per_bar + step not in taken
                 and not (variation > 0 and keyed_random.uniform(seed, "ghost-skip", bar, step)[()]
                          < variation * GHOST_BREAK_WITH_VARIATION)]
        if added and len(added) + len(cells) / 2 > need:  # a whole place more would overshoot more than it helps
            break
        for cell in cells:
            onset = cell * t16
            added.append(Hit(Note(onset, VOICE_PITCH["snare"], min(GHOST_MAX_VELOCITY, max(1, velocity))), onset))
            taken.add(cell)
    return [*hits, *added]


# --- 2. swing -------------------------------------------------------------------------------------
def swing_offset_ticks(swing_percent: float, ticks_per_8th: int = PPQ // 2) -> int:
    """Ticks from an 8th-note's start to its swung off 16th: round-half-up(swing/100 * 8th).

    50 -> 120, 62 -> 149, 66 -> 158 at 480 PPQ.
    """
    return int(math.floor(swing_percent / 100.0 * ticks_per_8th + 0.5))


def apply_swing(hits: Sequence[Hit], pattern: Pattern, swing_percent: float) -> list[Hit]:
    """Move off-beat 16ths (odd 16th index, exactly on the grid) to ``swing_percent`` of their 8th.

    Everything else (on-beat 16ths, triplets, 32nds, humanized onsets) is left alone.
    ``swing_percent`` is the effective swing (already scaled by amount); 50 is straight.
    """
    t16 = pattern.ticks_per_16th
    shift = swing_offset_ticks(swing_percent, 2 * t16) - t16
    if shift == 0:
        return list(hits)
    return [replace(h, note=replace(h.note, onset=h.note.onset + shift))
            if h.note.onset % t16 == 0 and (h.note.onset // t16) % 2 == 1 else h for h in hits]


LEARNED_MAX_SHIFT = 0.45  # of a 16th: the farthest the learned feel takes a hit from its step
TRIPLET_TICKS = PPQ // 3  # an 8th-note triplet step: a grid place of its own
CELL_BACKOFF_STEPS = 8  # a shift that leaves its hit's grid cell shrinks in eighths until it stays
LearnedTiming = Mapping[tuple[int, int], tuple[float, float]]  # (grid onset, pitch) -> (mean, std) in ticks


def apply_learned_timing(hits: Sequence[Hit], pattern: Pattern, seed: int, learned: LearnedTiming,
                         amount: float, looseness: float = 1.0, swing: float | None = None) -> list[Hit]:
    """Move each hit by its learned micro-timing: ``amount * (mean + looseness * std * z)`` ticks.

    ``z`` is keyed to the hit and partly shared: ``LEARNED_DRIFT_SHARE`` of its variance is a slow
    drift common to all voices (so the feel wanders like a drummer's, not like white noise), the rest
    the hit's own. Hits the model did not play (added ghosts, roll notes) take their voice's median
    learned timing. With ``swing`` (percent) the off-beat 16ths are moved so that on average they
    sit where that swing puts them; their learned spread around it is kept.
    """
    if not hits:
        return []
    by_pitch: dict[int, list[tuple[float, float]]] = {}
    for (_, pitch), value in learned.items():
        by_pitch.setdefault(pitch, []).append(value)

    def medians(values: list[tuple[float, float]]) -> tuple[float, float]:
        return float(np.median([m for m, _ in values])), float(np.median([s for _, s in values]))

    median = {p: medians(v) for p, v in by_pitch.items()}
    overall = medians(list(learned.values()))
    values = [learned.get((h.key, h.note.pitch)) or median.get(h.note.pitch, overall) for h in hits]
    mean = np.array([m for m, _ in values])
    std = np.array([s for _, s in values])
    keys, pitches = _keys(hits)
    knots, shared = drift_curve(pattern, 1.0, seed, stream="learned-drift")
    slow = _smooth_interp(keys.astype(float), knots, shared / max(float(np.std(shared)), 1e-9))
    own = keyed_random.normal(seed, "learned-timing", keys, pitches)
    z = math.sqrt(1.0 - LEARNED_DRIFT_SHARE) * own + math.sqrt(LEARNED_DRIFT_SHARE) * slow
    t16 = pattern.ticks_per_16th
    onsets = np.array([h.note.onset for h in hits], dtype=float)
    # a drummer's hit stays nearer its own 16th than the next (the head learned offsets within half
    # a step): a far tail draw must not move a backbeat snare onto another step, nor push the hit of
    # a played upload, already off its step, over the half-way point
    on_grid = (onsets % t16 == 0) | (onsets % TRIPLET_TICKS == 0)
    step = np.where(on_grid, onsets, np.rint(onsets / t16) * t16)
    reach = LEARNED_MAX_SHIFT * t16
    shift = np.clip(onsets + amount * (mean + looseness * std * z), step - reach, step + reach) - onsets
    # and it stays in its own cell of the token grid: a 16th pushed most of the way to a neighbouring
    # triplet would read back as that triplet (re-quantized, imported, or humanized again). The swing
    # lean below is left out of this: swinging a 16th toward the triplet is what swing is.
    own = grid_steps(onsets)
    for _ in range(CELL_BACKOFF_STEPS):
        out = grid_steps(np.rint(onsets + shift)) != own
        if not out.any():
            break
        shift = np.where(out, shift * (1.0 - 1.0 / CELL_BACKOFF_STEPS), shift)
    shift = np.where(grid_steps(np.rint(onsets + shift)) != own, 0.0, shift)
    off_beat = (keys % t16 == 0) & ((keys // t16) % 2 == 1)
    if swing is not None and off_beat.any():
        lean = (swing_offset_ticks(swing, 2 * t16) - t16) - float(np.mean(mean[off_beat]))
        shift = np.where(off_beat, shift + amount * lean, shift)
    new = np.rint(onsets + shift).astype(int)
    return [replace(h, note=replace(h.note, onset=int(t))) for h, t in zip(hits, new, strict=True)]


def spread_velocity_bins(hits: Sequence[Hit], seed: int, width: int, amount: float) -> list[Hit]:
    """Spread each velocity evenly inside the ``width``-wide bin the model's tokens rounded it to
    (keyed to the hit), so equal tokens do not all play at one velocity."""
    if not hits or width <= 1:
        return list(hits)
    keys, pitches = _keys(hits)
    spread = (keyed_random.uniform(seed, "velocity-bin", keys, pitches) - 0.5) * width * amount
    out = []
    for hit, d in zip(hits, spread, strict=True):
        vel = clamp_velocity(hit.note.velocity + d)
        if hit.note.velocity <= GHOST_MAX_VELOCITY:
            vel = min(vel, GHOST_MAX_VELOCITY)
        out.append(replace(hit, note=replace(hit.note, velocity=vel)))
    return out


def pull_velocities(hits: Sequence[Hit], expected: Mapping[tuple[int, int], float], share: float) -> list[Hit]:
    """Move each hit's velocity ``share`` of the way to the velocity ``expected`` at ``(key, pitch)``."""
    out = []
    for hit in hits:
        target = expected.get((hit.key, hit.note.pitch))
        if target is None:
            out.append(hit)
            continue
        out.append(replace(hit, note=replace(hit.note, velocity=clamp_velocity(
            hit.note.velocity + share * (target - hit.note.velocity)))))
    return out


# --- 3. velocity ----------------------------------------------------------------------------------
def vary_velocity(hits: Sequence[Hit], pattern: Pattern, variation: float, seed: int,
                  accent: float = 0.0) -> list[Hit]:
    """Scale each velocity by ``1 + variation * N(0, 1)`` (clipped to 0.25-1.75) and a beat accent.

    Hits on a beat (by their grid onset) get ``x(1 + accent)``, hits off the 8th grid
    ``x(1 - accent)``; both values come already scaled by amount. Ghost notes (velocity <= 40)
    stay <= 40; results are clamped to 1-127.
    """
    if not hits:
        return []
    keys, pitches = _keys(hits)
    factors = np.clip(1.0 + variation * keyed_random.normal(seed, "velocity", keys, pitches), *VELOCITY_FACTOR_RANGE)
    tpb, t8 = pattern.ticks_per_beat, 2 * pattern.ticks_per_16th
    out = []
    for hit, f in zip(hits, factors, strict=True):
        if hit.key % tpb == 0:
            f *= 1.0 + accent
        elif hit.key % t8 != 0:
            f *= 1.0 - accent
        vel = clamp_velocity(hit.note.velocity * f)
        if hit.note.velocity <= GHOST_MAX_VELOCITY:
            vel = min(vel, GHOST_MAX_VELOCITY)
        out.append(replace(hit, note=replace(hit.note, velocity=vel)))
    return out


# --- 4. articulations -----------------------------------------------------------------------------
def _hat_rolls(hits: Sequence[Hit], pattern: Pattern, art: Articulation, prob: float, seed: int) -> list[Hit]:
    """Replace, per beat holding a closed hat, its hats with a 32nd / 16th-triplet roll (chance ``prob``).

    A roll covers the second half of the beat or the whole beat, steps of ``PPQ // division``
    ticks, velocity ramping up or down between 55 % and 100 % of the loudest replaced hat.
    Each beat's draws are keyed to the beat.
    """
    divisions = [int(d) for d in art.options.get("divisions", HAT_ROLL_DIVISIONS)]  # type: ignore[union-attr]
    spans = [str(s) for s in art.options.get("spans", HAT_ROLL_SPANS)]  # type: ignore[union-attr]
    tpb = pattern.ticks_per_beat
    beats = np.arange(pattern.length_ticks // tpb)
    coins = keyed_random.uniform(seed, "roll", beats)
    div_picks = keyed_random.uniform(seed, "roll-division", beats)
    span_picks = keyed_random.uniform(seed, "roll-span", beats)
    rising = keyed_random.uniform(seed, "roll-direction", beats) < 0.5
    out = list(hits)
    for beat in beats.tolist():
        if coins[beat] >= prob:
            continue
        lo, hi = beat * tpb, (beat + 1) * tpb
        div = divisions[int(div_picks[beat] * len(divisions))]
        span = spans[int(span_picks[beat] * len(spans))]
        start = lo + tpb // 2 if span == "half" else lo
        replaced = [h for h in out if voice_of(h.note.pitch) == "closed_hat" and start <= h.note.onset < hi]
        if not replaced:  # a "half" roll, but this beat's hats are all in its first half
            start = lo
            replaced = [h for h in out if voice_of(h.note.pitch) == "closed_hat" and lo <= h.note.onset < hi]
        if not replaced:
            continue
        pitch = next((h.note.pitch for h in replaced if h.note.pitch != 44), VOICE_PITCH["closed_hat"])
        base = max(h.note.velocity for h in replaced)
        step = PPQ // div
        count = max(1, (hi - start) // step)
        ramp = np.linspace(*ROLL_VELOCITY_RAMP, count)
        if not rising[beat]:
            ramp = ramp[::-1]
        out = [h for h in out if h not in replaced]
        gate = max(1, min(DEFAULT_NOTE_TICKS, step // 2))  # note-offs well before the next roll hit
        out += [Hit(Note(start + i * step, pitch, clamp_velocity(base * r), gate), start + i * step)
                for i, r in enumerate(ramp)]
    return out


_ARTICULATIONS: dict[str, Callable[[Sequence[Hit], Pattern, Articulation, float, int], list[Hit]]] = {
    "hat_rolls": _hat_rolls,
}
_ARTICULATION_OPTIONS: dict[str, set[str]] = {"hat_rolls": {"divisions", "spans"}}


def apply_articulations(hits: Sequence[Hit], pattern: Pattern, articulations: Sequence[Articulation], seed: int,
                        amount: float = 1.0) -> list[Hit]:
    """Apply each articulation in order with chance ``probability * amount``."""
    out = list(hits)
    for art in articulations:
        out = _ARTICULATIONS[art.type](out, pattern, art, art.probability * amount, seed)
    return out


# --- 5. micro-timing ------------------------------------------------------------------------------
def drift_curve(pattern: Pattern, drift_ms: float, seed: int, stream: str = "drift") -> tuple[np.ndarray, np.ndarray]:
    """Knots of the slow timing drift shared by all voices: ``(ticks, ms)``.

    One knot per 2-bar window boundary (and the end); the values are a stationary AR(1) with
    standard deviation ``drift_ms`` and correlation 0.5 (each window's draw keyed to the window),
    then centred on zero so drift does not shift the whole pattern.
    """
    window = DRIFT_WINDOW_BARS * pattern.ticks_per_bar
    n_windows = max(1, math.ceil(pattern.length_ticks / window))
    knots = np.arange(n_windows + 1, dtype=float) * window
    noise = drift_ms * keyed_random.normal(seed, stream, np.arange(n_windows + 1))
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


def apply_micro_timing(hits: Sequence[Hit], pattern: Pattern, seed: int, micro_timing_ms: float, drift_ms: float,
                       voice_offsets_ms: Mapping[str, float]) -> list[Hit]:
    """Shift each onset by its voice's offset + the shared slow drift + its own jitter (all in ms).

    Values come already scaled by amount. Jitter is ``micro_timing_ms * N(0, 1)`` keyed to the hit,
    clipped at +-3 sigma; the drift is :func:`drift_curve` interpolated smoothly. Onsets are rounded
    to whole ticks and not clamped here.
    """
    if not hits:
        return []
    keys, pitches = _keys(hits)
    onsets = np.array([h.note.onset for h in hits], dtype=float)
    voice_ms = np.array([voice_offsets_ms.get(voice_of(h.note.pitch) or "", 0.0) for h in hits], dtype=float)
    knots, values = drift_curve(pattern, drift_ms, seed) if drift_ms else (np.array([0.0, 1.0]), np.zeros(2))
    lim = JITTER_CLIP_SIGMAS * micro_timing_ms
    jitter = np.clip(micro_timing_ms * keyed_random.normal(seed, "timing", keys, pitches), -lim, lim)
    total_ms = voice_ms + _smooth_interp(onsets, knots, values) + jitter
    new = np.rint(onsets + total_ms * pattern.ms_to_ticks(1.0)).astype(int)
    return [replace(h, note=replace(h.note, onset=int(t))) for h, t in zip(hits, new, strict=True)]


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
    fill_bars: Iterable[int] = (),
    variation: float = 1.0,
    learned: LearnedTiming | None = None,
    velocity_bin: int = 0,
    learned_velocity: Mapping[tuple[int, int], float] | None = None,
    add_notes: bool = True,
) -> Pattern:
    """Return a humanized copy of ``pattern`` (the input is untouched).

    ``learned`` is the model's timing for its hits (``(grid onset, pitch) -> (mean, std)`` in ticks);
    without it the feel is hand-set (see :class:`HumanizeParams`). ``amount`` (0-1) scales every
    effect (the learned timing, the swing, the ghost share, articulation probabilities, velocity
    changes and every offset); ``amount=0`` returns the same notes. ``swing`` (percent) overrides
    ``params.swing``. ``fill_bars`` get no added ghost notes; ``variation`` (0-1) lets the added
    ghosts vary from one phrase to the next. ``velocity_bin`` is the width of the velocity bins the
    model's tokens rounded to (0 for velocities that are exact, such as an uploaded file's).
    ``learned_velocity`` (``(onset, pitch) -> velocity`` the model expects there) pulls each such
    hit's velocity toward it by ``LEARNED_VELOCITY_SHARE * amount``. ``add_notes`` False leaves the
    notes as they are (no ghost notes, no articulations): humanizing a user's own groove.
    ``amount`` and ``swing`` are trusted to be in range (:func:`drumgen.request.resolve_request`
    checked them).
    """
    if amount == 0.0:
        return replace(pattern, notes=list(pattern.notes), meta=dict(pattern.meta))
    swing_percent = params.swing if swing is None else swing
    offsets = dict(params.voice_offsets_ms)
    hits = [Hit(n, n.onset) for n in pattern.notes]
    if add_notes:
        hits = add_ghost_notes(hits, pattern, params.ghost_note_prob * amount, seed, fill_bars, variation)
    if learned_velocity:
        hits = pull_velocities(hits, learned_velocity, LEARNED_VELOCITY_SHARE * amount)
    if learned:
        looseness = params.micro_timing_ms / DEFAULT_MICRO_TIMING_MS
        hits = apply_learned_timing(hits, pattern, seed, learned, amount, looseness, swing_percent)
        hits = spread_velocity_bins(hits, seed, velocity_bin, amount)
        jitter_ms = 0.0
    else:
        straight = STRAIGHT_SWING if swing_percent is None else swing_percent
        hits = apply_swing(hits, pattern, STRAIGHT_SWING + (straight - STRAIGHT_SWING) * amount)
        jitter_ms = params.micro_timing_ms * amount
    hits = vary_velocity(hits, pattern, params.velocity_variation * amount, seed, params.accent * amount)
    if add_notes:
        hits = apply_articulations(hits, pattern, params.articulations, seed, amount)
    hits = apply_micro_timing(hits, pattern, seed, jitter_ms, params.drift_ms * amount,
                              {voice: ms * amount for voice, ms in offsets.items()})
    return pattern.with_notes(fit_to_pattern([h.note for h in hits], pattern))


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
    grid_off = (swing if swing is not None else STRAIGHT_SWING) / 100.0 * t8
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
