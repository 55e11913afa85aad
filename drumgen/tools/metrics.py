"""Quality measures on patterns: the bar grid, repetition/variation stability, genre features,
and the groove-quality figures that compare generated grooves with real drummers per genre.

Stability follows "Language Models are Drummers" (Zhang & Callison-Burch, 2023): a bar is 16
rows of six voices (crash, ride, hi-hat, snare, kick, toms) marked hit or rest; a bar's
stability is its smallest distance to a neighbouring bar. Two distances are offered: the
number of grid cells that differ (:func:`bar_stability`, the "cell" measure) and the published
one, the Levenshtein distance of the bars' text (:func:`edit_stability`). Human grooves average
about 5, a copy-paste loop 0, random hits about 40.

The quality figures (all pure functions of patterns, pooled over the patterns given):
:func:`edit_stability` / :func:`range_stability` (form), :func:`timing_stats` (micro-timing per
voice), :func:`ghost_share`, :func:`bar_kind_density` (hats and toms of beat and fill bars),
:func:`frechet_distance` on :func:`window_features` (realism of 4-bar windows),
:func:`trap_checks`, :func:`has_backbeat` and :func:`has_kick`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from drumgen.constants import GHOST_MAX_VELOCITY as _GHOST_MAX_VELOCITY
from drumgen.constants import PPQ
from drumgen.pattern import Pattern
from drumgen.voices import PITCH_TO_VOICE, STABILITY_GROUPS, VOICE_TO_STABILITY_GROUP, VOICES

STEPS_PER_BAR = 16


def bar_grids(pattern: Pattern, groups: bool = True) -> np.ndarray:
    """Hit grids of every bar: (bars, 16, 6 groups) or (bars, 16, 9 voices), 1 = hit.

    Hits snap to the nearest 16th of their bar (a hit in the last 32nd counts for the next bar).
    """
    names = STABILITY_GROUPS if groups else VOICES
    index = {name: i for i, name in enumerate(names)}
    grid = np.zeros((pattern.bars, STEPS_PER_BAR, len(names)), dtype=np.int8)
    step_ticks = pattern.ticks_per_bar / STEPS_PER_BAR
    for note in pattern.notes:
        voice = PITCH_TO_VOICE.get(note.pitch)
        if voice is None:
            continue
        name = VOICE_TO_STABILITY_GROUP[voice] if groups else voice
        step = round(note.onset / step_ticks)
        bar, step = divmod(step, STEPS_PER_BAR)
        if bar < pattern.bars:
            grid[bar, step, index[name]] = 1
    return grid


def bar_stability(pattern: Pattern) -> list[int]:
    """Each bar's smallest number of differing grid cells to its previous or next bar."""
    grid = bar_grids(pattern).reshape(pattern.bars, -1)
    if pattern.bars < 2:
        return []
    dist = np.abs(np.diff(grid.astype(np.int16), axis=0)).sum(axis=1)  # (bars - 1,) between neighbours
    out = []
    for b in range(pattern.bars):
        near = [int(dist[b - 1])] if b > 0 else []
        if b < pattern.bars - 1:
            near.append(int(dist[b]))
        out.append(min(near))
    return out


def mean_stability(patterns: list[Pattern]) -> float:
    """Mean bar stability over all bars of ``patterns``."""
    values = [s for p in patterns for s in bar_stability(p)]
    return float(np.mean(values)) if values else float("nan")


def bar_features(pattern: Pattern) -> np.ndarray:
    """Per-bar genre features (bars, 9*16 + 9 + 9 + 1): 16th-grid hits per voice, hits off the
    16th grid (triplets) per voice, mean velocity per voice, and hits per bar / 64."""
    grid = bar_grids(pattern, groups=False).astype(np.float32)  # (bars, 16, 9)
    bars = pattern.bars
    off_grid = np.zeros((bars, len(VOICES)), dtype=np.float32)
    vel_sum = np.zeros((bars, len(VOICES)), dtype=np.float32)
    count = np.zeros((bars, len(VOICES)), dtype=np.float32)
    vindex = {v: i for i, v in enumerate(VOICES)}
    sixteenth = PPQ // 4
    for note in pattern.notes:
        voice = PITCH_TO_VOICE.get(note.pitch)
        if voice is None:
            continue
        bar = min(note.onset // pattern.ticks_per_bar, bars - 1)
        v = vindex[voice]
        count[bar, v] += 1
        vel_sum[bar, v] += note.velocity / 127
        if note.onset % sixteenth:
            off_grid[bar, v] += 1
    mean_vel = np.divide(vel_sum, count, out=np.zeros_like(vel_sum), where=count > 0)
    density = count.sum(axis=1, keepdims=True) / 64
    return np.concatenate([grid.reshape(bars, -1), np.minimum(off_grid, 8) / 8, mean_vel, density], axis=1)


# =================================================================================================
# Groove-quality measures: per-genre figures that compare generated grooves with real drummers.
# Every function below is pure (patterns in, numbers out) and vectorized over the hits.
# =================================================================================================

GHOST_MAX_VELOCITY = _GHOST_MAX_VELOCITY  # a hit at or below this velocity counts as a ghost note
BACKBEAT_STEPS = (4, 12)  # beats 2 and 4 on the 16th grid of a 4/4 bar
BACKBEAT_LATE_16THS = 0.75  # how late a backbeat snare may land (J Dilla's lean far behind the beat)
HALF_TIME_SNARE_STEP = 8  # beat 3: the half-time (trap) snare
HAT_LINE_MIN_CELLS = 7  # a bar "holds a hat line" with hats on at least 7 of its 16 cells
# A hat roll: hats closer than a 16th (32nds: 0.5, 16th triplets: 0.67 of a 16th apart). Gaps
# below 0.2 are double triggers or flams; 0.75 leaves room for played timing around a 16th.
ROLL_GAP_RANGE = (0.2, 0.75)  # in 16ths
ROLL_MIN_GAPS = 2  # short gaps (three hats in a row) a bar needs to count as holding a roll
SIXTEENTH_TRIPLET = (PPQ // 4, PPQ // 3)  # 16th and 8th-note-triplet spacing of the token grid
WINDOW_BARS = 4  # bars of one window of the Frechet-style distance
WINDOW_KINDS = ("hit", "velocity", "offset")  # the three features of every voice and 16th step
DEFAULT_COMPONENTS = 8  # principal components per feature kind of the Frechet-style distance
PCA_OVERSAMPLE, PCA_ITERATIONS, PCA_SEED = 16, 12, 0  # subspace iteration for the leading components
PUBLISHED_BARS = 16  # the published stability measure reads the first 16 bars of a groove
_LEVENSHTEIN_CHUNK = 1024  # string pairs per vectorized pass

# The published edit-distance measure writes a 16th step as six characters, one per group in
# this order (the column order of its text files), "o" = hit and "-" = rest.
EDIT_GROUPS: tuple[str, ...] = ("crash", "ride", "hihat", "snare", "kick", "toms")
# Its text files keep only these pitches (GM plus a few Roland articulations folded in); the
# project's own nine-voice reduction also counts 22/26/44 (hat edges, pedal), 35, 39, 41, 52, 55, 58.
PUBLISHED_PITCHES: dict[str, tuple[int, ...]] = {
    "crash": (49, 57), "ride": (51, 53, 59), "hihat": (42, 46),
    "snare": (37, 38, 40), "kick": (36,), "toms": (43, 45, 47, 48, 50),
}
_HIT, _REST, _NEWLINE = ord("o"), ord("-"), ord("\n")

_VOICE_INDEX = {v: i for i, v in enumerate(VOICES)}
_PITCH_VOICE = np.full(128, -1, dtype=np.int8)  # GM pitch -> index into VOICES (-1: other percussion)
for _pitch, _voice in PITCH_TO_VOICE.items():
    _PITCH_VOICE[_pitch] = _VOICE_INDEX[_voice]
_PITCH_EDIT_GROUP = np.full(128, -1, dtype=np.int8)  # GM pitch -> EDIT_GROUPS index, nine-voice reduction
for _pitch, _voice in PITCH_TO_VOICE.items():
    _PITCH_EDIT_GROUP[_pitch] = EDIT_GROUPS.index(VOICE_TO_STABILITY_GROUP[_voice])
_PITCH_PUBLISHED_GROUP = np.full(128, -1, dtype=np.int8)  # ... with the published pitch set only
for _group, _pitches in PUBLISHED_PITCHES.items():
    _PITCH_PUBLISHED_GROUP[list(_pitches)] = EDIT_GROUPS.index(_group)
SNARE, CLOSED_HAT, OPEN_HAT, KICK = (_VOICE_INDEX[v] for v in ("snare", "closed_hat", "open_hat", "kick"))
TOMS = tuple(_VOICE_INDEX[v] for v in ("low_tom", "mid_tom", "high_tom"))
CRASH = _VOICE_INDEX["crash"]
HAT = "hat"  # closed and open hi-hat together, in the timing figures


def _hits(pattern: Pattern, table: np.ndarray = _PITCH_VOICE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(onsets, column, velocities)`` of the hits whose pitch ``table`` maps to a column (>= 0)."""
    if not pattern.notes:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    raw = np.array([(n.onset, n.pitch, n.velocity) for n in pattern.notes], dtype=np.int64)
    column = table[np.clip(raw[:, 1], 0, 127)].astype(np.int64)
    keep = column >= 0
    return raw[keep, 0], column[keep], raw[keep, 2]


def _steps(pattern: Pattern, onsets: np.ndarray) -> np.ndarray:
    """Nearest 16th step of every onset, counted from the pattern start (the rule of bar_grids)."""
    return np.rint(onsets / (pattern.ticks_per_bar / STEPS_PER_BAR)).astype(np.int64)


def _grid(pattern: Pattern, table: np.ndarray, columns: int) -> np.ndarray:
    """(bars, 16, columns) hit grid: every hit at its nearest 16th, ``table`` maps pitch -> column."""
    onsets, column, _ = _hits(pattern, table)
    step = _steps(pattern, onsets)
    grid = np.zeros((pattern.bars, STEPS_PER_BAR, columns), dtype=bool)
    ok = (step >= 0) & (step < pattern.bars * STEPS_PER_BAR)
    grid[step[ok] // STEPS_PER_BAR, step[ok] % STEPS_PER_BAR, column[ok]] = True
    return grid


def voice_grids(pattern: Pattern) -> np.ndarray:
    """(bars, 16, 9 voices) boolean hit grid, the nine voices in ``VOICES`` order; same snapping as
    :func:`bar_grids` (nearest 16th; a hit in a bar's last 32nd counts for the next bar)."""
    return _grid(pattern, _PITCH_VOICE, len(VOICES))


def edit_grids(pattern: Pattern, published_pitches: bool = False) -> np.ndarray:
    """(bars, 16, 6) boolean grid of the published edit-distance measure, columns in ``EDIT_GROUPS``
    order (crash, ride, hi-hat, snare, kick, toms), every hit at its nearest 16th.

    ``published_pitches`` keeps only the pitches of ``PUBLISHED_PITCHES`` (what the published code
    reads from a Groove file); by default every pitch of the nine-voice reduction counts, which is
    the same for the canonical pitches the generator writes.
    """
    table = _PITCH_PUBLISHED_GROUP if published_pitches else _PITCH_EDIT_GROUP
    return _grid(pattern, table, len(EDIT_GROUPS))


def bar_texts(grid: np.ndarray) -> np.ndarray:
    """The published text of every bar of an ``edit_grids`` grid, as (bars, 127) uint8 codes.

    A bar is 16 lines of six characters ("o" hit, "-" rest), each line ending in a newline and
    the lines joined by one more newline (the published code joins ``readlines()`` output with
    ``"\\n"``): 16 * 7 + 15 = 127 characters.
    """
    bars = grid.shape[0]
    text = np.full((bars, STEPS_PER_BAR, len(EDIT_GROUPS) + 2), _NEWLINE, dtype=np.uint8)
    text[:, :, : len(EDIT_GROUPS)] = np.where(grid, _HIT, _REST)
    return text.reshape(bars, -1)[:, :-1]


def levenshtein(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Levenshtein distances (unit insert, delete, substitute) of the row pairs of two (pairs, L)
    uint8 arrays of equal-length strings (L < 16384); (pairs,) int array.

    One dynamic-programming row per character of ``a``, vectorized over the pairs and over the
    row (the left-neighbour recurrence of a row is a running minimum of ``cost - position``),
    in chunks of pairs that stay in cache.
    """
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two (pairs, length) arrays of one shape, got {a.shape} and {b.shape}")
    out = np.zeros(a.shape[0], dtype=np.int64)
    for start in range(0, a.shape[0], _LEVENSHTEIN_CHUNK):
        out[start : start + _LEVENSHTEIN_CHUNK] = _levenshtein_chunk(
            a[start : start + _LEVENSHTEIN_CHUNK], b[start : start + _LEVENSHTEIN_CHUNK])
    return out


def _levenshtein_chunk(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    pairs, length = a.shape
    pos = np.arange(length + 1, dtype=np.int16)
    row = np.broadcast_to(pos, (pairs, length + 1)).copy()  # D[0][j] = j
    best = np.empty_like(row)
    for i in range(length):
        sub = row[:, :-1] + (a[:, i : i + 1] != b)  # diagonal: substitute (or match)
        best[:, 0] = i + 1
        np.minimum(sub, row[:, 1:] + 1, out=best[:, 1:])  # ... or delete a[i]
        # ... or insert b[j]: D[i][j] = min over k <= j of best[k] + j - k
        best -= pos
        np.minimum.accumulate(best, axis=1, out=row)
        row += pos
    return row[:, -1]


def _neighbour_edit_distances(grids: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Edit distance of every bar to the next, for several grids in one batched call."""
    firsts, seconds, sizes = [], [], []
    for grid in grids:
        text = bar_texts(grid)
        firsts.append(text[:-1])
        seconds.append(text[1:])
        sizes.append(max(0, len(grid) - 1))
    if not any(sizes):
        return [np.zeros(0, dtype=np.int64) for _ in grids]
    a, b = np.concatenate(firsts), np.concatenate(seconds)
    dist = np.zeros(len(a), dtype=np.int64)
    differ = (a != b).any(axis=1)  # identical bars (a loop) cost nothing to compare
    if differ.any():
        dist[differ] = levenshtein(a[differ], b[differ])
    return np.split(dist, np.cumsum(sizes)[:-1])


def _profile(neighbour: np.ndarray, bars: int) -> np.ndarray:
    """Per-bar minimum of the distances to the previous and the next bar (one neighbour at the ends)."""
    if bars < 2:
        return np.zeros(0, dtype=np.int64)
    left = np.concatenate([[np.iinfo(np.int64).max], neighbour])
    right = np.concatenate([neighbour, [np.iinfo(np.int64).max]])
    return np.minimum(left, right)


def stability_profiles(patterns: Sequence[Pattern], measure: str = "edit",
                       published_pitches: bool = False) -> list[np.ndarray]:
    """Every bar's stability, per pattern: its smallest distance to the previous or next bar.

    ``measure="edit"``: the Levenshtein distance of the bars' published texts (:func:`bar_texts`);
    ``measure="cell"``: the number of the 16 x 6 grid cells that differ (:func:`bar_stability`).
    The first and last bar have one neighbour; a one-bar pattern gives an empty array.
    """
    if measure == "cell":
        return [np.asarray(bar_stability(p), dtype=np.int64) for p in patterns]
    if measure != "edit":
        raise ValueError(f"measure must be 'edit' or 'cell', got {measure!r}")
    grids = [edit_grids(p, published_pitches) for p in patterns]
    return [_profile(d, len(g)) for d, g in zip(_neighbour_edit_distances(grids), grids, strict=True)]


def edit_stability(pattern: Pattern, published_pitches: bool = False) -> list[int]:
    """The bar stability of "Language Models are Drummers" (Zhang & Callison-Burch, 2023), per bar.

    As the published code computes it: of the groove's first 16 bars, every bar but the first
    and the last gets the smaller Levenshtein distance of its text (:func:`bar_texts`) to the
    previous and to the next bar's; hits snap to the nearest 16th. So a 16-bar groove gives 14
    values; a copy-paste loop scores 0, a one-cell change 1, random hits about 40.
    """
    head = Pattern(notes=pattern.notes, tempo=pattern.tempo, bars=min(pattern.bars, PUBLISHED_BARS),
                   time_signature=pattern.time_signature)
    profile = stability_profiles([head], "edit", published_pitches)[0]
    return [int(v) for v in profile[1:-1]]


def mean_edit_stability(patterns: Sequence[Pattern], published_pitches: bool = False) -> float:
    """Mean :func:`edit_stability` over all bars of ``patterns`` pooled (NaN when none has 3 bars)."""
    heads = [Pattern(notes=p.notes, tempo=p.tempo, bars=min(p.bars, PUBLISHED_BARS),
                     time_signature=p.time_signature) for p in patterns]
    values = np.concatenate([prof[1:-1] for prof in stability_profiles(heads, "edit", published_pitches)]
                            + [np.zeros(0)])
    return float(values.mean()) if values.size else float("nan")


def range_stability(pattern: Pattern, first_bar: int, last_bar: int, measure: str = "edit") -> float:
    """Mean stability of bars ``first_bar``-``last_bar`` (1-based, inclusive, as a musician counts):
    e.g. 2-8 against 25-31 of a 32-bar groove. Each bar's neighbours may lie outside the range."""
    if not 1 <= first_bar <= last_bar <= pattern.bars:
        raise ValueError(f"bars {first_bar}-{last_bar} are not inside the pattern's 1-{pattern.bars}")
    profile = stability_profiles([pattern], measure)[0]
    if not profile.size:
        return float("nan")
    return float(profile[first_bar - 1 : last_bar].mean())


def grid_offsets(pattern: Pattern, triplets: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(voice index, offset in ms)`` of every hit of the nine voices, from its grid point.

    The grid point is the nearest 16th; with ``triplets`` (default) a hit clearly nearer an
    8th-note triplet (less than half the distance, the rule of ``tokenizer.quantize_pattern``)
    is measured from that triplet instead, so offsets are exactly what quantizing to the token
    grid throws away and a played triplet does not read as a 40 ms late 16th. Positive = late.
    """
    onsets, voice, _ = _hits(pattern)
    sixteenth, triplet = SIXTEENTH_TRIPLET
    on = onsets.astype(np.float64)
    grid = np.rint(on / sixteenth) * sixteenth
    if triplets:
        q3 = np.rint(on / triplet) * triplet
        grid = np.where(np.abs(on - q3) < 0.5 * np.abs(on - grid), q3, grid)
    return voice, pattern.ticks_to_ms(1.0) * (on - grid)


def _stat(values: np.ndarray) -> dict[str, float | int | None]:
    if not values.size:
        return {"mean_ms": None, "std_ms": None, "hits": 0}
    return {"mean_ms": float(values.mean()), "std_ms": float(values.std()), "hits": int(values.size)}


def timing_stats(patterns: Sequence[Pattern], triplets: bool = True) -> dict[str, Any]:
    """Per-voice micro-timing over all hits of ``patterns`` pooled (see :func:`grid_offsets`).

    Returns ``{"voices": {voice: {"mean_ms", "std_ms", "hits"}}, "snare_vs_hat_ms",
    "kick_vs_hat_ms"}``: ``voices`` holds the nine voices plus ``"hat"`` (closed and open
    together); the relative figures are a voice's mean offset minus the hats' (positive = the
    snare/kick sits behind the hats). The spread is the population standard deviation, so it
    includes the drift between grooves as well as the jitter within one. Means are None
    (JSON null) where a voice has no hits.
    """
    parts = [grid_offsets(p, triplets) for p in patterns]
    voice = np.concatenate([v for v, _ in parts] + [np.zeros(0, dtype=np.int64)])
    ms = np.concatenate([m for _, m in parts] + [np.zeros(0)])
    voices = {name: _stat(ms[voice == i]) for i, name in enumerate(VOICES)}
    voices[HAT] = _stat(ms[(voice == CLOSED_HAT) | (voice == OPEN_HAT)])

    def versus_hat(name: str) -> float | None:
        a, b = voices[name]["mean_ms"], voices[HAT]["mean_ms"]
        return None if a is None or b is None else float(a - b)

    return {"voices": voices, "snare_vs_hat_ms": versus_hat("snare"), "kick_vs_hat_ms": versus_hat("kick")}


def ghost_share(patterns: Sequence[Pattern]) -> dict[str, float | None]:
    """Per voice, the share of its hits with velocity <= ``GHOST_MAX_VELOCITY`` (40), over all
    hits of ``patterns`` pooled; None for a voice with no hits."""
    parts = [_hits(p) for p in patterns]
    voice = np.concatenate([v for _, v, _ in parts] + [np.zeros(0, dtype=np.int64)])
    vel = np.concatenate([x for _, _, x in parts] + [np.zeros(0, dtype=np.int64)])
    out: dict[str, float | None] = {}
    for i, name in enumerate(VOICES):
        mine = vel[voice == i]
        out[name] = float((mine <= GHOST_MAX_VELOCITY).mean()) if mine.size else None
    return out


def bar_kind_density(patterns: Sequence[Pattern],
                     fill_bars: Sequence[Collection[int]] | None = None) -> dict[str, dict[str, float | int | None]]:
    """Hat and tom density of beat bars and of fill bars, pooled over ``patterns``.

    ``fill_bars[i]`` holds the 0-based indices of the fill bars of ``patterns[i]`` (None: no
    fills anywhere). Returns ``{"beat": figures, "fill": figures}`` with, per kind: ``bars``;
    ``hat_cells``, the mean number of the 16 steps of a bar holding a closed or open hi-hat;
    ``closed_hat_cells`` (closed only); ``tom_share``, the share of bars holding any tom hit;
    ``tom_or_crash_share``, bars holding a tom or a crash. Figures are None for a kind with no bars.
    """
    if fill_bars is not None and len(fill_bars) != len(patterns):
        raise ValueError(f"fill_bars has {len(fill_bars)} entries for {len(patterns)} patterns")
    grids, is_fill = [], []
    for i, p in enumerate(patterns):
        grids.append(voice_grids(p))
        fills = set(fill_bars[i]) if fill_bars is not None else set()
        is_fill.append(np.isin(np.arange(p.bars), list(fills)))
    grid = np.concatenate(grids + [np.zeros((0, STEPS_PER_BAR, len(VOICES)), dtype=bool)])
    fill = np.concatenate(is_fill + [np.zeros(0, dtype=bool)])
    hats = (grid[:, :, CLOSED_HAT] | grid[:, :, OPEN_HAT]).sum(axis=1)
    closed = grid[:, :, CLOSED_HAT].sum(axis=1)
    toms = grid[:, :, list(TOMS)].any(axis=(1, 2))
    crash = grid[:, :, CRASH].any(axis=1)
    out: dict[str, dict[str, float | int | None]] = {}
    for kind, mask in (("beat", ~fill), ("fill", fill)):
        n = int(mask.sum())
        if not n:
            out[kind] = {"bars": 0, "hat_cells": None, "closed_hat_cells": None, "tom_share": None,
                         "tom_or_crash_share": None}
            continue
        out[kind] = {"bars": n, "hat_cells": float(hats[mask].mean()), "closed_hat_cells": float(closed[mask].mean()),
                     "tom_share": float(toms[mask].mean()), "tom_or_crash_share": float((toms | crash)[mask].mean())}
    return out


def trap_checks(patterns: Sequence[Pattern]) -> dict[str, float | int | None]:
    """Trap figures over all bars of ``patterns`` pooled (for a half-time trap groove such as the
    Metro Boomin preset, whose bars are full-tempo 4/4 bars with kick and snare in half time).

    - ``hat_line_share``: bars with hats (closed or open) on at least 7 of the 16 steps
    - ``snare_on_three_share``: bars with a snare or clap hit louder than a ghost (velocity > 40)
      on beat 3 (step 8, nearest 16th)
    - ``hat_roll_share``: bars holding a hat roll, i.e. at least 2 gaps between consecutive hats
      of 0.2-0.75 of a 16th (32nds, 16th triplets) starting in the bar. Gaps, not distances
      from the grid, so the played timing of a 16th line (which moves whole hats by 20-30 ms)
      does not read as a roll, while a roll played late still does.
    """
    bars = sum(p.bars for p in patterns)
    if not bars:
        return {"bars": 0, "hat_line_share": None, "snare_on_three_share": None, "hat_roll_share": None}
    hat_line = snare3 = rolls = 0
    lo, hi = ROLL_GAP_RANGE
    for p in patterns:
        grid = voice_grids(p)
        hat_line += int(((grid[:, :, CLOSED_HAT] | grid[:, :, OPEN_HAT]).sum(axis=1) >= HAT_LINE_MIN_CELLS).sum())
        onsets, voice, vel = _hits(p)
        step = _steps(p, onsets)
        loud_snare = (voice == SNARE) & (vel > GHOST_MAX_VELOCITY) & (step % STEPS_PER_BAR == HALF_TIME_SNARE_STEP)
        snare3 += len(set((step[loud_snare] // STEPS_PER_BAR).tolist()) & set(range(p.bars)))
        sixteenth = p.ticks_per_bar / STEPS_PER_BAR
        hats = np.sort(onsets[(voice == CLOSED_HAT) | (voice == OPEN_HAT)]) / sixteenth
        gaps = np.diff(hats)
        start_bar = np.rint(hats[:-1]).astype(np.int64) // STEPS_PER_BAR
        short = (gaps >= lo) & (gaps < hi) & (start_bar >= 0) & (start_bar < p.bars)
        rolls += int((np.bincount(start_bar[short], minlength=p.bars) >= ROLL_MIN_GAPS).sum())
    return {"bars": bars, "hat_line_share": hat_line / bars, "snare_on_three_share": snare3 / bars,
            "hat_roll_share": rolls / bars}


def has_backbeat(pattern: Pattern) -> bool:
    """True when at least one bar has a snare hit louder than a ghost (velocity > 40) on beat 2 or
    4 (steps 4 and 12): from half a 16th early to ``BACKBEAT_LATE_16THS`` late, since a laid-back
    snare is still the backbeat. Clap and side stick count as snare (the nine-voice reduction)."""
    onsets, voice, vel = _hits(pattern)
    sixteenths = onsets / (pattern.ticks_per_bar / STEPS_PER_BAR) % STEPS_PER_BAR
    near = np.zeros(len(onsets), dtype=bool)
    for beat in BACKBEAT_STEPS:
        near |= (sixteenths >= beat - 0.5) & (sixteenths < beat + BACKBEAT_LATE_16THS)
    return bool(((voice == SNARE) & (vel > GHOST_MAX_VELOCITY) & near).any())


def has_kick(pattern: Pattern) -> bool:
    """True when the pattern holds at least one kick hit (any velocity)."""
    return bool((_hits(pattern)[1] == KICK).any())


# --- Frechet-style distance between sets of 4-bar windows --------------------------------------
def window_features(pattern: Pattern, window_bars: int = WINDOW_BARS, hop_bars: int | None = None) -> np.ndarray:
    """Features of the pattern's consecutive ``window_bars``-bar windows (hop ``hop_bars``, default
    one window length; a short tail is dropped): (windows, window_bars * 16 * 9 * 3).

    Per 16th step and voice, as GrooVAE encodes a groove: ``hit`` (1 if the voice has a hit
    whose nearest 16th is this step), ``velocity`` (that hit's velocity / 127, the loudest if
    several) and ``offset`` (its distance from the step in 16ths, -0.5..0.5); 0 where no hit.
    """
    hop = hop_bars or window_bars
    steps_total = pattern.bars * STEPS_PER_BAR
    cells = np.zeros((steps_total, len(VOICES), len(WINDOW_KINDS)), dtype=np.float32)
    onsets, voice, vel = _hits(pattern)
    step = _steps(pattern, onsets)
    ok = (step >= 0) & (step < steps_total)
    onsets, voice, vel, step = onsets[ok], voice[ok], vel[ok], step[ok]
    if step.size:
        order = np.lexsort((vel, voice, step))  # within a cell the loudest hit comes last ...
        step, voice, vel, onsets = step[order], voice[order], vel[order], onsets[order]
        cell = step * len(VOICES) + voice
        last = np.r_[cell[1:] != cell[:-1], True]  # ... and is the one kept
        step, voice, vel, onsets = step[last], voice[last], vel[last], onsets[last]
        cells[step, voice, 0] = 1.0
        cells[step, voice, 1] = vel / 127.0
        cells[step, voice, 2] = onsets / (pattern.ticks_per_bar / STEPS_PER_BAR) - step
    size = window_bars * STEPS_PER_BAR
    starts = range(0, pattern.bars - window_bars + 1, hop)
    if not starts:
        return np.zeros((0, size * len(VOICES) * len(WINDOW_KINDS)), dtype=np.float32)
    return np.stack([cells[s * STEPS_PER_BAR : s * STEPS_PER_BAR + size].reshape(-1) for s in starts])


@dataclass(frozen=True)
class WindowSpace:
    """The space the Frechet-style distance is measured in, fitted on one set of window features.

    Each feature kind (hit, velocity, offset) gets its own ``n_components`` principal components
    of the fitted set, after scaling the kind to unit total variance: fitted jointly, the 0/1
    hits would take every component and the timing would not count (quantizing a real set
    would then barely move it). Few components per kind keep the covariances well estimated
    from a few hundred windows; the distance uses the joint covariance of all components.
    """

    mean: np.ndarray  # (features,) mean of the fitted set
    components: np.ndarray  # (components, features): scaled principal axes, kind after kind
    kinds: np.ndarray  # (components,) index into WINDOW_KINDS of every component

    @classmethod
    def fit(cls, features: np.ndarray, n_components: int = DEFAULT_COMPONENTS) -> WindowSpace:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2 or x.shape[1] % len(WINDOW_KINDS):
            raise ValueError(f"need at least two windows of window_features to fit on, got shape {x.shape}")
        mean = x.mean(axis=0)
        kind_of_feature = np.arange(x.shape[1]) % len(WINDOW_KINDS)
        components, kinds = [], []
        for kind in range(len(WINDOW_KINDS)):
            cols = kind_of_feature == kind
            block = x[:, cols] - mean[cols]
            total = float((block**2).sum() / len(x))
            if total <= 0:  # a kind without variance (e.g. the offsets of quantized grooves) is left out
                continue
            k = max(1, min(n_components, len(x) - 1, int(cols.sum())))
            axes = np.zeros((k, x.shape[1]))
            axes[:, cols] = _top_axes(block.T @ block / (len(x) * total), k).T / np.sqrt(total)
            components.append(axes)
            kinds += [kind] * k
        if not components:
            raise ValueError("the windows to fit on are all identical")
        return cls(mean=mean, components=np.concatenate(components), kinds=np.array(kinds))

    def project(self, features: np.ndarray) -> np.ndarray:
        """(windows, components) coordinates of window features in this space."""
        return (np.asarray(features, dtype=np.float64) - self.mean) @ self.components.T


def _top_axes(cov: np.ndarray, k: int) -> np.ndarray:
    """(features, k) orthonormal leading eigenvectors of a covariance matrix, by subspace iteration
    from a fixed start (deterministic; a full eigendecomposition of 576 x 576 costs seconds)."""
    size = cov.shape[0]
    width = min(size, k + PCA_OVERSAMPLE)
    if width == size:
        return np.linalg.eigh(cov)[1][:, ::-1][:, :k]
    basis = np.linalg.qr(np.random.default_rng(PCA_SEED).standard_normal((size, width)))[0]
    for _ in range(PCA_ITERATIONS):
        basis = np.linalg.qr(cov @ basis)[0]
    vals, vecs = np.linalg.eigh(basis.T @ cov @ basis)  # Rayleigh-Ritz on the found subspace
    return (basis @ vecs[:, ::-1])[:, :k]


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(a: np.ndarray, b: np.ndarray, space: WindowSpace | None = None, kind: str | None = None) -> float:
    """Frechet distance between Gaussians fitted to two sets of window features in ``space``
    (fitted on ``b``, the reference, when None): |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2).

    ``kind`` (one of ``WINDOW_KINDS``) keeps only that kind's components, e.g. ``"offset"`` for
    the timing alone. 0 for a set against itself; it grows as the sets part. It is biased
    upward for small sets, so report it as a ratio to the floor of two real sets (train
    against validation windows of the genre, in the same space), with sets of similar size.
    """
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"each set needs at least two windows, got {len(a)} and {len(b)}")
    space = space or WindowSpace.fit(b)
    pa, pb = space.project(a), space.project(b)
    if kind is not None:
        keep = space.kinds == WINDOW_KINDS.index(kind)
        pa, pb = pa[:, keep], pb[:, keep]
    return gaussian_frechet(pa, pb)


def gaussian_frechet(pa: np.ndarray, pb: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two sets of points, (n, d) each (e.g.
    ``WindowSpace.project`` output, so a bootstrap projects each set once)."""
    mu = pa.mean(axis=0) - pb.mean(axis=0)
    ca, cb = np.atleast_2d(np.cov(pa, rowvar=False)), np.atleast_2d(np.cov(pb, rowvar=False))
    root_a = _sqrt_psd(ca)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cb @ root_a), 0, None)).sum()  # Tr (S_a S_b)^1/2
    return float(max(0.0, mu @ mu + np.trace(ca) + np.trace(cb) - 2 * cross))
