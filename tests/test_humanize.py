"""Humanization: swing to the tick, determinism, per-hit randomness, ghost notes that loop,
micro-timing statistics, bounds, rolls, and the feel readout."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from drumgen.constants import GHOST_MAX_VELOCITY
from drumgen.humanize import (
    Articulation,
    Hit,
    HumanizeParams,
    add_ghost_notes,
    apply_articulations,
    apply_learned_timing,
    apply_micro_timing,
    apply_swing,
    fit_to_pattern,
    ghost_notes_needed,
    humanize,
    measure_feel,
    swing_offset_ticks,
    vary_velocity,
)
from drumgen.pattern import PPQ, Note, Pattern
from drumgen.voices import VOICE_PITCH, voice_of

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


def hits_of(notes: list[Note]) -> list[Hit]:
    return [Hit(n, n.onset) for n in notes]


def notes_of(hits: list[Hit]) -> list[Note]:
    return [h.note for h in hits]


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
    out = notes_of(apply_swing(hits_of(notes), pattern, 62))
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


# --- randomness keyed to each hit ---------------------------------------------------------------
def test_rerolling_the_hats_leaves_kick_and_snare_byte_identical() -> None:
    base = groove(bars=8)
    other_hats = [n for n in base.notes if n.pitch != HAT]
    other_hats += [Note(b * 4 * PPQ + s * T16, HAT, 70 + s) for b in range(8) for s in (1, 3, 6, 9, 14)]
    rerolled = base.with_notes(other_hats)
    a, b = humanize(base, FULL, seed=21), humanize(rerolled, FULL, seed=21)
    assert [n for n in a.notes if n.pitch != HAT] == [n for n in b.notes if n.pitch != HAT]
    assert [n for n in a.notes if n.pitch == HAT] != [n for n in b.notes if n.pitch == HAT]


def test_adding_one_hit_moves_no_other_hit() -> None:
    params = replace(FULL, ghost_note_prob=0.0, articulations=())
    base = groove(bars=4)
    extra = base.with_notes([*base.notes, Note(5 * T16, 47, 90)])  # one mid tom
    a, b = humanize(base, params, seed=3), humanize(extra, params, seed=3)
    assert [n for n in b.notes if n.pitch != 47] == a.notes


# --- ghost notes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("share", "amount"), [(0.4, 1.0), (0.4, 0.5), (0.1, 1.0), (0.35, 1.0)],
                         ids=["0.4", "0.4x0.5", "0.1", "0.35"])
def test_ghost_share_of_the_snare_reaches_the_style_s_value(share: float, amount: float) -> None:
    pattern = groove(bars=16)
    out = humanize(pattern, replace(DRY, ghost_note_prob=share), amount=amount, seed=1)
    snares = [n for n in out.notes if n.pitch == SNARE]
    ghosts = [n for n in snares if n.velocity <= GHOST_MAX_VELOCITY]
    assert len(snares) - len(ghosts) == 32  # the backbeat is kept and no ghost lands on it
    assert len(ghosts) / len(snares) == pytest.approx(share * amount, abs=0.06)
    assert all(18 <= n.velocity <= GHOST_MAX_VELOCITY for n in ghosts)


def test_ghosts_the_model_already_plays_count_toward_the_share() -> None:
    pattern = groove(bars=4)
    own = pattern.with_notes([*pattern.notes, *(Note(b * 4 * PPQ + 7 * T16, SNARE, 30) for b in range(4))])
    assert ghost_notes_needed(own.notes, 0.2) == 0  # 4 ghosts of 12 snares: already past 20 %
    assert ghost_notes_needed(own.notes, 0.5) == 4  # 8 of 16
    out = humanize(own, replace(DRY, ghost_note_prob=0.2), seed=0)
    assert out.notes == own.notes


def test_added_ghosts_repeat_with_the_phrase_and_avoid_snares() -> None:
    one_bar = groove(bars=8)
    two_bar = one_bar.with_notes([*one_bar.notes, *(Note(b * 4 * PPQ + 7 * T16, KICK, 90) for b in range(1, 8, 2))])
    bar_ticks = 4 * PPQ
    for pattern in (one_bar, two_bar):
        ghosts = notes_of(add_ghost_notes(hits_of(pattern.notes), pattern, 0.4, seed=5))[len(pattern.notes):]
        assert ghosts and not {g.onset for g in ghosts} & {n.onset for n in pattern.notes if n.pitch == SNARE}
        places = [{g.onset % bar_ticks for g in ghosts if g.onset // bar_ticks == b} for b in range(8)]
        assert places[0] == places[2] == places[4] == places[6]  # the phrase, repeated
        assert places[1] == places[3] == places[5] == places[7]
        if pattern is one_bar:  # a one-bar loop keeps its ghosts in every bar, so it still loops one bar
            assert places[0] == places[1]


def test_with_variation_the_ghosts_vary_between_phrases_at_the_same_share() -> None:
    pattern = groove(bars=16)
    bar_ticks = 4 * PPQ

    def places(variation: float) -> tuple[int, list[frozenset[int]]]:
        ghosts = notes_of(add_ghost_notes(hits_of(pattern.notes), pattern, 0.4, seed=5,
                                          variation=variation))[len(pattern.notes):]
        return len(ghosts), [frozenset(g.onset % bar_ticks for g in ghosts if g.onset // bar_ticks == b)
                             for b in range(0, 16, 2)]

    (n_still, still), (n_loose, loose) = places(0.0), places(1.0)
    assert len(set(still)) == 1 and len(set(loose)) > 1
    assert abs(n_still - n_loose) <= 16


def test_fill_bars_get_no_added_ghosts() -> None:
    pattern = groove(bars=4)
    ghosts = notes_of(add_ghost_notes(hits_of(pattern.notes), pattern, 0.5, seed=2, fill_bars={3}))[len(pattern.notes):]
    assert ghosts and all(g.onset < 3 * 4 * PPQ for g in ghosts)


def test_ghosts_stay_ghosts_under_velocity_variation() -> None:
    pattern = groove(bars=16)
    params = replace(DRY, ghost_note_prob=0.5, velocity_variation=1.0, accent=0.5)
    out = humanize(pattern, params, seed=2)
    snares = [n for n in out.notes if n.pitch == SNARE]
    loud = [n for n in snares if n.onset % PPQ == 0 and n.onset % (2 * PPQ) == PPQ]
    assert all(n.velocity <= GHOST_MAX_VELOCITY for n in snares if n not in loud)


# --- velocity -------------------------------------------------------------------------------------
def test_velocity_variation_and_accent() -> None:
    pattern = groove(bars=32)
    hats = hits_of([n for n in pattern.notes if n.pitch == HAT])
    assert vary_velocity(hats, pattern, 0.0, 0, accent=0.0) == hats
    varied = notes_of(vary_velocity(hats, pattern, 0.15, 0, accent=0.0))
    rel_std = np.std([n.velocity for n in varied]) / 80
    assert 0.10 < rel_std < 0.20
    accented = notes_of(vary_velocity(apply_swing(hats, pattern, 62), pattern, 0.0, 0, accent=0.1))
    on_beat = {n.velocity for n in accented if n.onset % PPQ == 0}
    off_16th = {n.velocity for n in accented if n.onset % (2 * T16) == 149}
    assert on_beat == {88} and off_16th == {72}
    assert all(1 <= n.velocity <= 127 for n in notes_of(vary_velocity(hats, pattern, 1.0, 0, accent=1.0)))


# --- micro-timing ---------------------------------------------------------------------------------
def _offsets_ms(out: Pattern, pitch: int) -> np.ndarray:
    ticks = np.array([n.onset for n in out.notes if n.pitch == pitch], dtype=float)
    grid = np.rint(ticks / T16) * T16
    return (ticks - grid) * out.seconds_per_tick * 1000.0


def test_micro_timing_statistics() -> None:
    pattern = groove(bars=32, tempo=95)
    params = replace(DRY, micro_timing_ms=12.0, drift_ms=10.0, voice_offsets_ms={"closed_hat": -10.0})
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
    notes = notes_of(apply_micro_timing(hits_of(pattern.notes), pattern, 9, 0.0, 10.0, {}))
    moved = {(n0.onset, n0.pitch): n1.onset - n0.onset for n0, n1 in zip(pattern.notes, notes, strict=True)}
    # all voices share the drift: kick and hat on the same tick move together
    assert all(moved[(t, KICK)] == moved[(t, HAT)] for (t, p) in moved if p == KICK)
    hats = np.array([moved[(t, p)] for (t, p) in sorted(moved) if p == HAT], dtype=float)
    assert np.std(hats) > 3.0  # it does wander ...
    assert np.max(np.abs(np.diff(hats))) <= 2.0  # ... slowly: neighbouring 16ths move alike (not white noise)


# --- bounds ---------------------------------------------------------------------------------------
EXTREME = HumanizeParams(
    swing=75, micro_timing_ms=100.0, drift_ms=100.0, ghost_note_prob=1.0, velocity_variation=1.0,
    voice_offsets_ms={"closed_hat": -100.0, "kick": 100.0}, accent=1.0,
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
    params = replace(DRY, articulations=(Articulation("hat_rolls", 1.0, {"divisions": [8, 6]}),))
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
    assert notes_of(apply_articulations(hits_of(pattern.notes), pattern, never, 0)) == pattern.notes
    no_hats = Pattern(notes=[n for n in pattern.notes if n.pitch != HAT], bars=2)
    out = apply_articulations(hits_of(no_hats.notes), no_hats, [Articulation("hat_rolls", 1.0)], 0)
    assert notes_of(out) == no_hats.notes


BAD_ARTICULATIONS = {
    "typo-type": (dict(type="hat_roll"), "hat_roll"),
    "probability": (dict(type="hat_rolls", probability=1.5), "probability"),
    "typo-option": (dict(type="hat_rolls", options={"division": [8]}), "division"),
    "bad-division": (dict(type="hat_rolls", options={"divisions": [7]}), "divisions"),
    "bad-span": (dict(type="hat_rolls", options={"spans": ["double"]}), "spans"),
}


@pytest.mark.parametrize(("kwargs", "match"), BAD_ARTICULATIONS.values(), ids=BAD_ARTICULATIONS.keys())
def test_bad_articulation_is_refused_when_made(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Articulation(**kwargs)


# --- bad values -----------------------------------------------------------------------------------
BAD_PARAMS = {
    "swing": (dict(swing=90), "swing"),
    "ghost-prob": (dict(ghost_note_prob=1.2), "ghost_note_prob"),
    "micro-negative": (dict(micro_timing_ms=-1), "micro_timing_ms"),
    "drift-inf": (dict(drift_ms=math.inf), "drift_ms"),
    "variation-nan": (dict(velocity_variation=math.nan), "velocity_variation"),
    "offset-unknown-voice": (dict(voice_offsets_ms={"hihat": -10.0}), "hihat"),
    "offset-too-large": (dict(voice_offsets_ms={"snare": 500.0}), "snare"),
    "swing-bool": (dict(swing=True), "swing"),
}


@pytest.mark.parametrize(("kwargs", "match"), BAD_PARAMS.values(), ids=BAD_PARAMS.keys())
def test_bad_params_are_refused_when_made_naming_the_field(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HumanizeParams(**kwargs)


# --- measure_feel ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("swing", "micro", "hat_ms"),
    [(62, 0.0, 0.0), (50, 0.0, 0.0), (66, 0.0, 0.0), (62, 8.0, 0.0), (58, 5.0, -10.0)],
    ids=["62", "straight", "66", "62-jitter", "58-jitter-early-hats"],
)
def test_measure_feel_recovers_swing(swing: float, micro: float, hat_ms: float) -> None:
    pattern = groove(bars=8)
    offsets = {"closed_hat": hat_ms}
    params = replace(DRY, micro_timing_ms=micro, drift_ms=micro, voice_offsets_ms=offsets)
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


def test_a_loose_learned_feel_keeps_every_hit_in_its_own_grid_cell() -> None:
    """However loose the feel, a hit is not pushed so far that it reads back as another step (a 16th
    most of the way to a triplet would): re-quantized, each hit lands where the model put it."""
    from drumgen.tokenizer import grid_steps

    pattern = groove(bars=8)
    learned = {(n.onset, n.pitch): (0.0, 0.4 * T16) for n in pattern.notes}  # a wide spread: 40 % of a 16th
    moved = notes_of(apply_learned_timing(hits_of(pattern.notes), pattern, 3, learned, amount=1.0, looseness=3.0))
    onsets = np.array([n.onset for n in moved], dtype=float)
    assert (onsets % T16 != 0).mean() > 0.8  # the feel moved them
    assert list(grid_steps(onsets)) == [n.onset for n in pattern.notes]
