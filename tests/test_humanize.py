"""Humanization: swing to the tick, determinism, ghost-note rate, micro-timing statistics, bounds, rolls."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from drumgen.drum_map import VOICE_PITCH, voice_of
from drumgen.humanize import (
    GHOST_MAX_VELOCITY,
    Articulation,
    HumanizeParams,
    add_ghost_notes,
    apply_articulations,
    apply_micro_timing,
    apply_swing,
    fit_to_pattern,
    humanize,
    measure_feel,
    swing_offset_ticks,
    vary_velocity,
)
from drumgen.pattern import PPQ, Note, Pattern

KICK, SNARE, HAT = VOICE_PITCH["kick"], VOICE_PITCH["snare"], VOICE_PITCH["closed_hat"]
T16 = PPQ // 4

# Every effect off: only what a test turns on happens.
DRY = HumanizeParams(
    swing=50.0, micro_timing_ms=0.0, drift_ms=0.0, ghost_note_prob=0.0,
    velocity_variation=0.0, voice_offsets_ms={}, accent=0.0,
)


def groove(bars: int = 4, tempo: float = 95.0) -> Pattern:
    """Straight 16th hats, kick on 1 and 3, snare on 2 and 4."""
    notes = []
    for bar in range(bars):
        b0 = bar * 4 * PPQ
        notes += [Note(b0 + i * T16, HAT, 80) for i in range(16)]
        notes += [Note(b0, KICK, 100), Note(b0 + 2 * PPQ, KICK, 100)]
        notes += [Note(b0 + PPQ, SNARE, 105), Note(b0 + 3 * PPQ, SNARE, 105)]
    return Pattern(notes=notes, tempo=tempo, bars=bars).validate()


def replace_params(params: HumanizeParams, **changes: object) -> HumanizeParams:
    return replace(params, **changes)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


# --- swing ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("swing", "amount", "offset"),
    [(62, 1.0, 149), (50, 1.0, 120), (66, 1.0, 158), (75, 1.0, 180), (62, 0.5, 134), (58, 0.25, 125)],
    ids=["62", "straight", "66-triplet", "75-max", "62-half-amount=56", "58-quarter-amount=52"],
)
def test_swing_moves_off_16ths_to_the_tick(swing: float, amount: float, offset: int) -> None:
    pattern = groove(bars=2)
    out = humanize(pattern, DRY, amount=amount, seed=3, swing=swing)
    hats = sorted(n.onset for n in out.notes if n.pitch == HAT)
    expected = sorted(
        e0 + (offset if i % 2 else 0) for e0 in range(0, pattern.length_ticks, 2 * T16) for i in range(2)
    )
    assert hats == expected
    # on-beat notes never move, velocities untouched in the dry setting
    assert sorted((n.onset, n.pitch, n.velocity) for n in out.notes if n.pitch != HAT) == sorted(
        (n.onset, n.pitch, n.velocity) for n in pattern.notes if n.pitch != HAT
    )


def test_swing_math() -> None:
    assert [swing_offset_ticks(s) for s in (50, 56, 62, 66, 75)] == [120, 134, 149, 158, 180]


def test_swing_leaves_triplets_and_32nds_alone() -> None:
    pattern = Pattern(notes=[], bars=1)
    notes = [Note(t, HAT, 80) for t in (60, 80, 160, 180, 320)]
    notes += [Note(T16, SNARE, 90), Note(3 * T16, KICK, 90)]
    out = apply_swing(notes, pattern, 62)
    assert sorted(n.onset for n in out) == sorted([60, 80, 160, 180, 320, 149, 240 + 149])


# --- determinism and amount 0 ----------------------------------------------------------------------
FULL = HumanizeParams(
    swing=62, micro_timing_ms=20, ghost_note_prob=0.4, velocity_variation=0.15,
    articulations=(Articulation("hat_rolls", 0.3),),
)


def test_same_seed_same_notes_and_input_untouched() -> None:
    pattern = groove()
    before = list(pattern.notes)
    a = humanize(pattern, FULL, seed=7)
    b = humanize(pattern, FULL, seed=7)
    c = humanize(pattern, FULL, seed=8)
    assert a.notes == b.notes
    assert a.notes != c.notes
    assert pattern.notes == before
    assert a.notes != pattern.notes and a is not pattern


def test_global_numpy_state_is_not_used() -> None:
    pattern = groove()
    np.random.seed(1)
    a = humanize(pattern, FULL, seed=5)
    np.random.seed(2)
    np.random.random(10)
    assert humanize(pattern, FULL, seed=5).notes == a.notes


def test_amount_zero_is_identity() -> None:
    pattern = groove()
    out = humanize(pattern, FULL, amount=0.0, seed=11)
    assert out.notes == pattern.notes
    assert out is not pattern and out.notes is not pattern.notes


# --- ghost notes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prob", "amount"), [(0.4, 1.0), (0.4, 0.5), (0.1, 1.0), (1.0, 1.0)], ids=["0.4", "0.4x0.5", "0.1", "1.0"]
)
def test_ghost_rate_matches_probability(prob: float, amount: float) -> None:
    pattern = groove(bars=32)  # 4 seeds x 32 bars = 128 bars of 14 empty snare 16ths
    params = replace_params(DRY, ghost_note_prob=prob)
    ghosts = []
    for seed in range(4):
        out = humanize(pattern, params, amount=amount, seed=seed)
        seed_ghosts = [n for n in out.notes if n.pitch == SNARE and n.velocity <= GHOST_MAX_VELOCITY]
        # the backbeat is kept and no ghost lands on it
        assert len([n for n in out.notes if n.pitch == SNARE]) == len(seed_ghosts) + 64
        ghosts += seed_ghosts
    assert abs(len(ghosts) / (128 * 14) - prob * amount) < 0.05
    assert all(12 <= n.velocity <= GHOST_MAX_VELOCITY for n in ghosts)


def test_ghosts_only_on_empty_16ths_and_swung() -> None:
    pattern = groove(bars=8)
    ghosts = add_ghost_notes(pattern.notes, pattern, 1.0, rng())[len(pattern.notes):]
    assert len(ghosts) == 8 * 14
    assert not {g.onset for g in ghosts} & {n.onset for n in pattern.notes if n.pitch == SNARE}
    out = humanize(pattern, replace_params(DRY, ghost_note_prob=1.0, swing=62), seed=0)
    ghost_pos = {n.onset % (2 * T16) for n in out.notes if n.pitch == SNARE and n.velocity <= 40}
    assert ghost_pos == {0, 149}


def test_ghosts_stay_ghosts_under_velocity_variation() -> None:
    pattern = groove(bars=16)
    params = replace_params(DRY, ghost_note_prob=0.5, velocity_variation=1.0, accent=0.5)
    out = humanize(pattern, params, seed=2)
    snares = [n for n in out.notes if n.pitch == SNARE]
    loud = [n for n in snares if n.onset % PPQ == 0 and n.onset % (2 * PPQ) == PPQ]
    assert all(n.velocity <= GHOST_MAX_VELOCITY for n in snares if n not in loud)


# --- velocity -------------------------------------------------------------------------------------
def test_velocity_variation_and_accent() -> None:
    pattern = groove(bars=32)
    hats = [n for n in pattern.notes if n.pitch == HAT]
    assert vary_velocity(hats, pattern, 0.0, rng(), accent=0.0) == hats
    varied = vary_velocity(hats, pattern, 0.15, rng(), accent=0.0)
    rel_std = np.std([n.velocity for n in varied]) / 80
    assert 0.10 < rel_std < 0.20
    accented = vary_velocity(apply_swing(hats, pattern, 62), pattern, 0.0, rng(), accent=0.1)
    on_beat = {n.velocity for n in accented if n.onset % PPQ == 0}
    off_16th = {n.velocity for n in accented if n.onset % (2 * T16) == 149}
    assert on_beat == {88} and off_16th == {72}
    assert all(1 <= n.velocity <= 127 for n in vary_velocity(hats, pattern, 5.0, rng(), accent=1.0))


# --- micro-timing ---------------------------------------------------------------------------------
def _offsets_ms(out: Pattern, pitch: int) -> np.ndarray:
    ticks = np.array([n.onset for n in out.notes if n.pitch == pitch], dtype=float)
    grid = np.rint(ticks / T16) * T16
    return (ticks - grid) * out.seconds_per_tick * 1000.0


def test_micro_timing_statistics() -> None:
    pattern = groove(bars=32, tempo=95)
    params = replace_params(DRY, micro_timing_ms=12.0, drift_ms=10.0, voice_offsets_ms={"closed_hat": -10.0})
    out = humanize(pattern, params, seed=4)
    all_ms = np.concatenate([_offsets_ms(out, p) for p in (HAT, KICK, SNARE)])
    assert 5.0 < np.mean(np.abs(all_ms)) < 30.0
    hat, snare = _offsets_ms(out, HAT).mean(), _offsets_ms(out, SNARE).mean()
    assert hat < -5.0
    assert hat < snare - 5.0
    feel = measure_feel(out)
    assert feel["offset_ms"]["closed_hat"] == pytest.approx(hat, abs=0.5)


def test_drift_is_correlated_and_shared() -> None:
    pattern = groove(bars=16, tempo=90)
    notes = apply_micro_timing(pattern.notes, pattern, rng(9), 0.0, 10.0, {})
    moved = {(n0.onset, n0.pitch): n1.onset - n0.onset for n0, n1 in zip(pattern.notes, notes, strict=True)}
    # all voices share the drift: kick and hat on the same tick move together
    assert all(moved[(t, KICK)] == moved[(t, HAT)] for (t, p) in moved if p == KICK)
    hats = np.array([moved[(t, p)] for (t, p) in sorted(moved) if p == HAT], dtype=float)
    assert np.std(hats) > 3.0  # it does wander ...
    assert np.max(np.abs(np.diff(hats))) <= 2.0  # ... slowly: neighbouring 16ths move alike (not white noise)


# --- bounds ---------------------------------------------------------------------------------------
EXTREME = HumanizeParams(
    swing=75, micro_timing_ms=200.0, drift_ms=200.0, ghost_note_prob=1.0, velocity_variation=3.0,
    voice_offsets_ms={"closed_hat": -300.0, "kick": 300.0}, accent=1.0,
    articulations=(Articulation("hat_rolls", 1.0),),
)


@pytest.mark.parametrize("seed", range(12))
def test_nothing_leaves_the_loop(seed: int) -> None:
    pattern = Pattern(
        notes=[
            Note(0, HAT, 90), Note(0, KICK, 127), Note(1919, KICK, 100),
            Note(1919, HAT, 1), Note(1918, HAT, 50),
        ],
        bars=1, tempo=60,
    ).validate()
    out = humanize(pattern, EXTREME, seed=seed)
    out.validate()
    assert all(0 <= n.onset < pattern.length_ticks for n in out.notes)
    assert all(n.onset + n.duration <= pattern.length_ticks for n in out.notes)


def test_fit_nudges_or_drops_duplicates() -> None:
    pattern = Pattern(bars=1)
    notes = [Note(-5, HAT, 80), Note(0, HAT, 81), Note(0, HAT, 82), Note(0, HAT, 83), Note(5000, KICK, 90)]
    out = fit_to_pattern(notes, pattern)
    assert sorted(n.onset for n in out if n.pitch == HAT) == [0, 1]
    assert [n.onset for n in out if n.pitch == KICK] == [1919]
    Pattern(notes=out, bars=1).validate()


# --- articulations --------------------------------------------------------------------------------
def test_hat_rolls_with_probability_one() -> None:
    pattern = groove(bars=2)
    params = replace_params(DRY, articulations=(Articulation("hat_rolls", 1.0, {"divisions": [8, 6]}),))
    out = humanize(pattern, params, seed=0)
    steps_seen = set()
    for beat in range(8):
        lo = beat * PPQ
        hats = sorted(n.onset for n in out.notes if n.pitch == HAT and lo + PPQ // 2 <= n.onset < lo + PPQ)
        steps = set(np.diff(hats).tolist())
        assert len(steps) == 1 and steps <= {60, 80}, (beat, hats)
        assert len(hats) == PPQ // 2 // steps.pop()
        steps_seen |= set(np.diff(hats).tolist())
        vels = [n.velocity for n in out.notes if n.pitch == HAT and lo + PPQ // 2 <= n.onset < lo + PPQ]
        assert vels == sorted(vels) or vels == sorted(vels, reverse=True)
        assert len(set(vels)) > 1
    assert steps_seen == {60, 80}


def test_hat_rolls_probability_zero_and_only_on_hat_beats() -> None:
    pattern = groove(bars=2)
    never = [Articulation("hat_rolls", 0.0)]
    assert apply_articulations(pattern.notes, pattern, never, rng()) == pattern.notes
    no_hats = Pattern(notes=[n for n in pattern.notes if n.pitch != HAT], bars=2)
    out = apply_articulations(no_hats.notes, no_hats, [Articulation("hat_rolls", 1.0)], rng())
    assert out == no_hats.notes


@pytest.mark.parametrize(
    ("art", "match"),
    [
        (Articulation("hat_roll"), "hat_roll"),
        (Articulation("hat_rolls", 1.5), "probability"),
        (Articulation("hat_rolls", 0.5, {"division": [8]}), "division"),
        (Articulation("hat_rolls", 0.5, {"divisions": [7]}), "divisions"),
        (Articulation("hat_rolls", 0.5, {"spans": ["double"]}), "spans"),
    ],
    ids=["typo-type", "probability", "typo-option", "bad-division", "bad-span"],
)
def test_bad_articulation_raises(art: Articulation, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        humanize(groove(bars=1), replace_params(DRY, articulations=(art,)), amount=0.0)


# --- bad values -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"amount": -0.1}, "amount"),
        ({"amount": 1.5}, "amount"),
        ({"amount": math.nan}, "amount"),
        ({"amount": "1"}, "amount"),
        ({"swing": 45.0}, "swing"),
        ({"swing": 80.0}, "swing"),
        ({"swing": math.nan}, "swing"),
        ({"seed": -1}, "seed"),
        ({"params": HumanizeParams(swing=90)}, "swing"),
        ({"params": HumanizeParams(ghost_note_prob=1.2)}, "ghost_note_prob"),
        ({"params": HumanizeParams(micro_timing_ms=-1)}, "micro_timing_ms"),
        ({"params": HumanizeParams(drift_ms=math.inf)}, "drift_ms"),
        ({"params": HumanizeParams(velocity_variation=math.nan)}, "velocity_variation"),
        ({"params": HumanizeParams(voice_offsets_ms={"hihat": -10.0})}, "hihat"),
    ],
    ids=[
        "amount-negative", "amount-above-1", "amount-nan", "amount-str", "swing-45", "swing-80", "swing-nan",
        "seed-negative", "params-swing", "ghost-prob", "micro-negative", "drift-inf", "variation-nan",
        "offset-unknown-voice",
    ],
)
def test_bad_values_raise_naming_the_field(kwargs: dict, match: str) -> None:
    kwargs = {"params": DRY, **kwargs}
    with pytest.raises(ValueError, match=match):
        humanize(groove(bars=1), **kwargs)


# --- measure_feel ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("swing", "micro", "hat_ms"),
    [(62, 0.0, 0.0), (50, 0.0, 0.0), (66, 0.0, 0.0), (62, 8.0, 0.0), (58, 5.0, -10.0)],
    ids=["62", "straight", "66", "62-jitter", "58-jitter-early-hats"],
)
def test_measure_feel_recovers_swing(swing: float, micro: float, hat_ms: float) -> None:
    pattern = groove(bars=8)
    offsets = {"closed_hat": hat_ms}
    params = replace_params(DRY, micro_timing_ms=micro, drift_ms=micro, voice_offsets_ms=offsets)
    out = humanize(pattern, params, swing=swing, seed=0)
    feel = measure_feel(out)
    assert feel["swing"] == pytest.approx(swing, abs=0.5 if micro == 0 else 2.0)
    if micro == 0:
        assert feel["mean_abs_offset_ms"] < 0.5  # measured against the swung grid
    assert feel["hits_per_bar"] == 20.0
    assert feel["ghost_share"] == 0.0


def test_measure_feel_ghost_share_and_empty() -> None:
    pattern = Pattern(notes=[Note(0, KICK, 100), Note(PPQ, SNARE, 30)], bars=1)
    feel = measure_feel(pattern)
    assert feel["ghost_share"] == 0.5 and feel["hits_per_bar"] == 2.0 and feel["swing"] is None
    assert set(feel["offset_ms"]) == {voice_of(KICK), voice_of(SNARE)}
    empty = measure_feel(Pattern(bars=2))
    assert empty["swing"] is None and empty["hits_per_bar"] == 0.0 and empty["offset_ms"] == {}
