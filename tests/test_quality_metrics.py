"""The groove-quality measures of drumgen.tools.metrics and the real-groove reference of drumgen.tools.reference,
on hand-built patterns whose answers are known (and once on the Groove MIDI Dataset when present)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from drumgen.constants import PPQ
from drumgen.pattern import Note, Pattern
from drumgen.tokenizer import quantize_pattern
from drumgen.tools.metrics import (
    EDIT_GROUPS,
    WindowSpace,
    bar_kind_density,
    bar_stability,
    bar_texts,
    edit_grids,
    edit_stability,
    frechet_distance,
    ghost_share,
    grid_offsets,
    has_backbeat,
    has_kick,
    levenshtein,
    mean_edit_stability,
    range_stability,
    stability_profiles,
    timing_stats,
    trap_checks,
    window_features,
)
from drumgen.tools.reference import (
    GenreGrooves,
    cut_bars,
    genre_figures,
    real_reference,
    stretches,
    trim_empty_bars,
    write_real_reference,
)

KICK, SNARE, CLAP, HAT, OPEN_HAT, HAT_EDGE, LOW_TOM, HIGH_TOM, CRASH = 36, 38, 39, 42, 46, 22, 43, 50, 49
T16 = PPQ // 4
BAR = 16 * T16
TEMPO_1MS = 125.0  # at 125 BPM one tick (480 PPQ) lasts exactly 1 ms
GROOVE_DIR = Path(__file__).resolve().parents[2] / "shared" / "groove"


def rock_bar(bar: int, snare_ms: int = 0, velocity: int = 100) -> list[Note]:
    """8th hats, kick on 1 and 3, snare on 2 and 4 (``snare_ms`` ticks late: ms at 125 BPM)."""
    s = bar * BAR
    notes = [Note(s + i * T16, HAT, 80) for i in range(0, 16, 2)]
    notes += [Note(s + i * T16, KICK, 110) for i in (0, 8)]
    notes += [Note(s + i * T16 + snare_ms, SNARE, velocity) for i in (4, 12)]
    return notes


def loop(bars: int, make=rock_bar, tempo: float = 120.0) -> Pattern:
    return Pattern(notes=sorted(n for b in range(bars) for n in make(b)), tempo=tempo, bars=bars)


def plain_levenshtein(s1: bytes, s2: bytes) -> int:
    """Textbook dynamic programme, for checking the vectorized one."""
    prev = list(range(len(s2) + 1))
    for i, c1 in enumerate(s1, 1):
        cur = [i]
        for j, c2 in enumerate(s2, 1):
            cur.append(min(prev[j - 1] + (c1 != c2), prev[j] + 1, cur[-1] + 1))
        prev = cur
    return prev[-1]


# --- stability ------------------------------------------------------------------------------------
def test_a_copy_paste_loop_scores_zero_on_both_measures() -> None:
    groove = loop(16)
    assert edit_stability(groove) == [0] * 14  # bars 2-15: the first and last have one neighbour
    assert mean_edit_stability([groove]) == 0.0
    assert bar_stability(groove) == [0] * 16
    assert range_stability(groove, 2, 8) == 0.0


def test_a_one_cell_change_scores_one_on_both_measures() -> None:
    notes = [n for b in range(16) for n in rock_bar(b)] + [Note(4 * BAR + 6 * T16, KICK, 100)]  # bar 5
    groove = Pattern(notes=sorted(notes), bars=16)
    expected = [0] * 16
    expected[4] = 1  # bar 5 differs from both neighbours by one cell; 4 and 6 still match 3 and 7
    assert bar_stability(groove) == expected
    assert edit_stability(groove) == expected[1:-1]
    assert stability_profiles([groove], "edit")[0].tolist() == expected
    assert range_stability(groove, 2, 8) == pytest.approx(1 / 7)


def test_bar_text_is_the_published_layout() -> None:
    groove = Pattern(notes=[Note(0, KICK, 100), Note(0, HAT, 90), Note(4 * T16, SNARE, 100),
                            Note(15 * T16, CRASH, 100)], bars=1)
    text = bar_texts(edit_grids(groove))[0].tobytes().decode()
    assert EDIT_GROUPS == ("crash", "ride", "hihat", "snare", "kick", "toms")
    rows = ["------"] * 16
    rows[0], rows[4], rows[15] = "--o-o-", "---o--", "o-----"
    # the published code joins the lines it read (each ending in a newline) with a newline
    assert text == "\n".join(row + "\n" for row in rows)
    assert len(text) == 16 * 7 + 15


def test_levenshtein_matches_the_textbook_programme() -> None:
    rng = np.random.default_rng(0)
    for length in (1, 7, 127):
        a = rng.integers(0, 3, (200, length)).astype(np.uint8)
        b = a.copy()
        b[:100] = rng.integers(0, 3, (100, length))  # unrelated strings ...
        flip = rng.integers(0, length, 100)
        b[100 + np.arange(100), flip] ^= 1  # ... and one substitution away
        got = levenshtein(a, b)
        assert got.tolist() == [plain_levenshtein(x.tobytes(), y.tobytes()) for x, y in zip(a, b, strict=True)]
    with pytest.raises(ValueError):
        levenshtein(np.zeros((2, 3), np.uint8), np.zeros((2, 4), np.uint8))


def test_edit_distance_never_exceeds_the_cell_count_and_sees_shifts() -> None:
    rng = np.random.default_rng(1)
    notes = [Note(int(s) * T16, int(p), 100) for s, p in zip(rng.integers(0, 8 * 16, 300),
                                                               rng.choice([KICK, SNARE, HAT, CRASH, LOW_TOM], 300),
                                                               strict=True)]
    random = Pattern(notes=sorted(set(notes)), bars=8)
    edit, cell = stability_profiles([random], "edit")[0], stability_profiles([random], "cell")[0]
    assert (edit <= cell).all() and (edit > 0).all()
    # a 16th line moved one step later: 16 cells differ, but the texts are one line apart
    line = [Note(s * T16, HAT, 90) for s in range(0, 16, 2)]
    shifted = Pattern(notes=line + [Note(BAR + n.onset + T16, HAT, 90) for n in line], bars=2)
    assert bar_stability(shifted) == [16, 16]
    assert stability_profiles([shifted], "edit")[0].tolist() == [16, 16]  # 8 deletes + 8 inserts of a line


def test_edit_stability_reads_the_first_16_bars_and_the_published_pitches() -> None:
    groove = loop(32)
    assert len(edit_stability(groove)) == 14
    # hat edge (22) counts as hi-hat in the nine-voice reduction, not in the published pitch set
    notes = [n for b in range(3) for n in rock_bar(b)] + [Note(BAR + 3 * T16, HAT_EDGE, 60)]
    edged = Pattern(notes=sorted(notes), bars=3)
    assert edit_stability(edged) == [1]
    assert edit_stability(edged, published_pitches=True) == [0]


def test_range_stability_follows_the_form_of_a_long_groove() -> None:
    rng = np.random.default_rng(2)
    steady = [n for b in range(16) for n in rock_bar(b)]
    wander = [Note(b * BAR + int(s) * T16, int(p), 90) for b in range(16, 32)
              for s, p in zip(rng.integers(0, 16, 10), rng.choice([KICK, SNARE, HAT, LOW_TOM], 10), strict=True)]
    groove = Pattern(notes=sorted(set(steady + wander)), bars=32)
    assert range_stability(groove, 2, 8) == 0.0
    assert range_stability(groove, 25, 31) > 5
    assert range_stability(groove, 2, 8, "cell") == 0.0
    with pytest.raises(ValueError):
        range_stability(groove, 0, 8)
    with pytest.raises(ValueError):
        range_stability(groove, 25, 33)


# --- timing ---------------------------------------------------------------------------------------
def test_a_10_ms_late_snare_shows_plus_10_ms_against_the_hats() -> None:
    groove = loop(4, lambda b: rock_bar(b, snare_ms=10), tempo=TEMPO_1MS)
    stats = timing_stats([groove])
    assert stats["snare_vs_hat_ms"] == pytest.approx(10.0)
    assert stats["kick_vs_hat_ms"] == pytest.approx(0.0)
    assert stats["voices"]["snare"] == {"mean_ms": pytest.approx(10.0), "std_ms": pytest.approx(0.0), "hits": 8}
    assert stats["voices"]["hat"]["hits"] == 32
    assert stats["voices"]["ride"] == {"mean_ms": None, "std_ms": None, "hits": 0}


def test_timing_spread_and_early_hits() -> None:
    notes = [Note(i * T16 + (5 if i % 2 else -5), HAT, 80) for i in range(1, 64)]
    stats = timing_stats([Pattern(notes=notes, tempo=TEMPO_1MS, bars=4)])["voices"]["closed_hat"]
    assert stats["mean_ms"] == pytest.approx(5 / 63, abs=1e-9)  # 32 late, 31 early
    assert stats["std_ms"] == pytest.approx(5.0, abs=0.01)


def test_triplets_are_measured_from_the_triplet_grid() -> None:
    trip = PPQ // 3
    notes = [Note(b * BAR + k * trip, HAT, 80) for b in range(2) for k in range(12)]
    groove = Pattern(notes=notes, tempo=TEMPO_1MS, bars=2)
    _, on_token_grid = grid_offsets(groove)
    assert np.allclose(on_token_grid, 0)
    _, from_16ths = grid_offsets(groove, triplets=False)
    assert sorted(set(np.round(from_16ths).tolist())) == [-40.0, 0.0, 40.0]


def test_offsets_are_what_the_tokenizer_quantization_throws_away() -> None:
    rng = np.random.default_rng(3)
    onsets = np.unique(rng.integers(0, 4 * BAR, 400))
    groove = Pattern(notes=[Note(int(t), SNARE, 90) for t in onsets], tempo=TEMPO_1MS, bars=4)
    _, offsets = grid_offsets(groove)
    snapped = np.rint(onsets - offsets).astype(int)  # 1 ms = 1 tick at this tempo
    quantized = quantize_pattern(groove)
    keep = snapped < groove.length_ticks
    assert set(snapped[keep].tolist()) == {n.onset for n in quantized.notes}


# --- ghosts, bar kinds ------------------------------------------------------------------------------
def test_ghost_share_per_voice() -> None:
    notes = [Note(0, KICK, 100), Note(4 * T16, SNARE, 100), Note(6 * T16, SNARE, 40), Note(7 * T16, SNARE, 30),
             Note(9 * T16, SNARE, 41), Note(12 * T16, CLAP, 100), Note(0, HAT, 20), Note(2 * T16, HAT, 90)]
    shares = ghost_share([Pattern(notes=notes, bars=1)])
    assert shares["snare"] == pytest.approx(2 / 5)  # 40 and 30 of 100, 40, 30, 41, clap 100
    assert shares["kick"] == 0.0 and shares["closed_hat"] == 0.5
    assert shares["ride"] is None


def fill_bar(bar: int) -> list[Note]:
    s = bar * BAR
    return [Note(s + i * T16, SNARE, 90) for i in range(8)] + [Note(s + i * T16, HIGH_TOM, 100) for i in range(8, 16)]


def test_hat_and_tom_density_of_beat_and_fill_bars() -> None:
    bars = [rock_bar(0) + [Note(0, CRASH, 110)], rock_bar(1), rock_bar(2) + [Note(2 * BAR + 15 * T16, LOW_TOM, 90)],
            fill_bar(3)]
    groove = Pattern(notes=sorted(n for b in bars for n in b), bars=4)
    density = bar_kind_density([groove], [{3}])
    assert density["beat"] == {"bars": 3, "hat_cells": 8.0, "closed_hat_cells": 8.0, "tom_share": pytest.approx(1 / 3),
                               "tom_or_crash_share": pytest.approx(2 / 3)}
    assert density["fill"] == {"bars": 1, "hat_cells": 0.0, "closed_hat_cells": 0.0, "tom_share": 1.0,
                               "tom_or_crash_share": 1.0}
    no_fills = bar_kind_density([groove])
    assert no_fills["beat"]["bars"] == 4 and no_fills["fill"]["bars"] == 0 and no_fills["fill"]["tom_share"] is None
    # an open hat on a closed hat's step is one hat cell, not two
    both = Pattern(notes=[Note(0, HAT, 80), Note(0, OPEN_HAT, 80), Note(T16, OPEN_HAT, 80)], bars=1)
    assert bar_kind_density([both])["beat"]["hat_cells"] == 2.0
    with pytest.raises(ValueError):
        bar_kind_density([groove], [])


# --- trap, backbeat, kick ---------------------------------------------------------------------------
def trap_bar(bar: int, roll: bool = True) -> list[Note]:
    """16th hats (a 32nd roll on beat 4), kick on 1, clap on 3: a half-time trap bar."""
    s = bar * BAR
    notes = [Note(s + i * T16, HAT, 80) for i in range(16)] + [Note(s, KICK, 110), Note(s + 8 * T16, CLAP, 110)]
    if roll:
        notes += [Note(s + i * T16 + T16 // 2, HAT, 60) for i in range(12, 16)]
    return notes


def test_trap_checks_of_a_trap_groove_and_a_rock_groove() -> None:
    trap = loop(4, trap_bar)
    assert trap_checks([trap]) == {"bars": 4, "hat_line_share": 1.0, "snare_on_three_share": 1.0,
                                   "hat_roll_share": 1.0}
    half = loop(4, lambda b: trap_bar(b, roll=b % 2 == 0))
    assert trap_checks([half])["hat_roll_share"] == 0.5
    rock = loop(4)
    assert trap_checks([rock]) == {"bars": 4, "hat_line_share": 1.0, "snare_on_three_share": 0.0,
                                   "hat_roll_share": 0.0}
    # played timing of a 16th line is not a roll
    rng = np.random.default_rng(4)
    loose = Pattern(notes=[Note(i * T16 + int(rng.integers(-20, 21)), HAT, 80) for i in range(1, 64)],
                    tempo=TEMPO_1MS, bars=4)
    assert trap_checks([loose])["hat_roll_share"] == 0.0
    ghost3 = Pattern(notes=[Note(8 * T16, SNARE, 30)], bars=1)
    assert trap_checks([ghost3])["snare_on_three_share"] == 0.0
    assert trap_checks([])["bars"] == 0


def test_backbeat_and_kick_presence() -> None:
    assert has_backbeat(loop(2)) and has_kick(loop(2))
    ghosts_only = loop(2, lambda b: rock_bar(b, velocity=35))
    assert not has_backbeat(ghosts_only)
    assert not has_backbeat(loop(2, trap_bar))  # a half-time snare on 3 is no 2-and-4 backbeat
    one = Pattern(notes=[Note(BAR + 12 * T16 - 10, CLAP, 90)], bars=2)  # a hair early on beat 4
    assert has_backbeat(one) and not has_kick(one)
    laid_back = Pattern(notes=[Note(4 * T16 + T16 * 6 // 10, SNARE, 100)], bars=1)  # 0.6 of a 16th late
    assert has_backbeat(laid_back)
    assert not has_backbeat(Pattern(notes=[Note(5 * T16, SNARE, 100)], bars=1))  # on the next 16th: no backbeat
    assert not has_kick(Pattern(notes=[], bars=1)) and not has_backbeat(Pattern(notes=[], bars=1))


# --- Frechet-style distance -----------------------------------------------------------------------
def window_set(seed: int, n: int = 120, late_ms: int = 0) -> np.ndarray:
    """Window features of ``n`` 4-bar rock grooves with random ghost notes, velocities and timing."""
    rng = np.random.default_rng(seed)
    feats = []
    for _ in range(n):
        notes = []
        for b in range(4):
            for note in rock_bar(b):
                notes.append(Note(max(0, note.onset + int(rng.normal(0, 8)) + late_ms), note.pitch,
                                  int(np.clip(note.velocity + rng.normal(0, 10), 1, 127))))
            for step in rng.choice([3, 7, 11, 15], 2, replace=False):
                notes.append(Note(b * BAR + int(step) * T16, SNARE, int(rng.integers(20, 40))))
        feats.append(window_features(Pattern(notes=sorted(notes), tempo=TEMPO_1MS, bars=4)))
    return np.concatenate(feats)


def test_window_features_layout() -> None:
    groove = Pattern(notes=[Note(T16 + 30, SNARE, 127), Note(T16 + 20, SNARE, 60), Note(5 * BAR, KICK, 64)],
                     bars=8)
    feats = window_features(groove)
    assert feats.shape == (2, 4 * 16 * 9 * 3)
    cells = feats[0].reshape(64, 9, 3)
    assert cells[1, 1].tolist() == pytest.approx([1.0, 1.0, 0.25])  # the loudest of the two snares
    assert cells.sum() == pytest.approx(2.25)
    assert feats[1].reshape(64, 9, 3)[16, 0].tolist() == pytest.approx([1.0, 64 / 127, 0.0])
    assert window_features(Pattern(bars=3)).shape == (0, 4 * 16 * 9 * 3)
    assert len(window_features(groove, hop_bars=1)) == 5


def test_frechet_distance_is_zero_for_a_set_against_itself_and_grows_with_a_shift() -> None:
    ref = window_set(0)
    space = WindowSpace.fit(ref)
    assert frechet_distance(ref, ref, space) == pytest.approx(0.0, abs=1e-9)
    same_kind = frechet_distance(window_set(1), ref, space)
    late10 = frechet_distance(window_set(1, late_ms=10), ref, space)
    late20 = frechet_distance(window_set(1, late_ms=20), ref, space)
    assert same_kind < late10 < late20
    # the shift is timing only: the offset components see it, the hit components do not
    assert frechet_distance(window_set(1, late_ms=10), ref, space, "offset") > 5 * frechet_distance(
        window_set(1), ref, space, "offset")
    assert frechet_distance(window_set(1, late_ms=10), ref, space, "hit") == pytest.approx(
        frechet_distance(window_set(1), ref, space, "hit"))
    assert frechet_distance(ref, window_set(1)) > 0  # space fitted on the reference when not given
    assert space.components.shape == (24, ref.shape[1]) and sorted(set(space.kinds.tolist())) == [0, 1, 2]


def test_frechet_space_of_quantized_grooves_leaves_the_timing_out() -> None:
    ref = window_set(0)
    ref[:, 2::3] = 0  # no offsets: as if every groove were quantized
    space = WindowSpace.fit(ref)
    assert 2 not in space.kinds.tolist()
    with pytest.raises(ValueError):
        WindowSpace.fit(ref[:1])
    with pytest.raises(ValueError):
        frechet_distance(ref[:1], ref, space)


# --- the reference --------------------------------------------------------------------------------
def test_cutting_and_trimming_bars() -> None:
    groove = Pattern(notes=[Note(2 * BAR - 10, SNARE, 90), Note(2 * BAR + 4 * T16, KICK, 100),
                            Note(3 * BAR, HAT, 80)], bars=6)
    trimmed = trim_empty_bars(groove)  # bars 1, 2 (0-based) hold hits; the hair-early snare counts for bar 2
    assert trimmed.bars == 2
    assert [(n.onset, n.pitch) for n in trimmed.notes] == [(-10, SNARE), (4 * T16, KICK), (BAR, HAT)]
    assert [p.bars for p in stretches([loop(40)])] == [16, 16, 8]
    assert [p.bars for p in stretches([loop(37)])] == [16, 16]
    assert cut_bars(loop(4), 1, 2).notes == loop(2).notes


def test_genre_figures_agree_with_the_measures_one_by_one() -> None:
    rng = np.random.default_rng(5)

    def varied(bars: int) -> Pattern:
        notes = {n for b in range(bars) for n in rock_bar(b)}
        notes |= {Note(int(t), int(p), 70) for t, p in zip(rng.integers(0, bars * BAR, bars * 3),
                                                           rng.choice([KICK, SNARE, LOW_TOM, OPEN_HAT], bars * 3),
                                                           strict=True)}
        return Pattern(notes=sorted(notes), tempo=100.0, bars=bars)

    beats = [varied(40), varied(33), varied(30)]
    fig = genre_figures(GenreGrooves(beats_raw=beats, beats=[quantize_pattern(p) for p in beats], fills=[],
                                     drummers={"a", "b"}))
    cut = stretches([quantize_pattern(p) for p in beats])
    assert [p.bars for p in cut] == [16, 16, 8, 16, 16, 16, 14]
    assert fig["stability"]["edit"] == pytest.approx(mean_edit_stability(cut), abs=1e-4)
    assert fig["stability"]["cell"] == pytest.approx(np.mean([v for p in cut for v in bar_stability(p)]), abs=1e-4)
    long = stretches([quantize_pattern(p) for p in beats], 32, 32)
    assert fig["form_32"]["stretches"] == 2
    assert fig["form_32"]["bars_25_31"] == pytest.approx(np.mean([range_stability(p, 25, 31) for p in long]))
    assert fig["counts"]["edit_stability_bars"] == sum(p.bars - 2 for p in cut)
    firsts = [quantize_pattern(cut_bars(p, 0, 16)) for p in beats]
    assert fig["stability"]["edit_first16"] == pytest.approx(mean_edit_stability(firsts), abs=1e-4)
    assert fig["trusted"] and fig["frechet"]["floor"] is None


def test_real_reference_on_the_tiny_synthetic_dataset(groove_dataset: Path, tmp_path: Path) -> None:
    ref = real_reference(groove_dataset, "validation", genres=("rock", "funk", "jazz"))
    rock, funk, jazz = (ref["genres"][g] for g in ("rock", "funk", "jazz"))
    assert ref["split"] == "validation" and ref["floor_split"] == "train"
    assert rock["counts"]["beat_files"] == 1 and rock["counts"]["beat_bars"] == 8 and not rock["trusted"]
    # strictly repeating, quantized grooves: no variation, no timing
    assert rock["stability"]["edit"] == 0 and rock["stability"]["cell"] == 0 and rock["stability"]["edit_first16"] == 0
    assert rock["timing"]["voices"]["snare"]["std_ms"] == 0 and rock["timing"]["snare_vs_hat_ms"] == 0
    assert funk["ghost_share"]["snare"] == pytest.approx(3 / 5)
    assert rock["bars"]["beat"]["hat_cells"] == 8 and funk["bars"]["beat"]["hat_cells"] == 16
    assert rock["backbeat_share"] == 1 and rock["kick_share"] == 1
    assert rock["frechet"]["floor"] is None and rock["frechet"]["windows"] == 2  # too few windows for a floor
    assert jazz["counts"]["beat_files"] == 0 and jazz["stability"]["edit"] is None
    out = tmp_path / "reference.json"
    written = write_real_reference(groove_dataset, out, splits=("train",), genres=("rock",))
    assert json.loads(out.read_text()) == written
    assert written["train"]["genres"]["rock"]["counts"]["fill_files"] == 1
    assert written["train"]["genres"]["rock"]["bars"]["fill"]["tom_share"] == 1


@pytest.mark.dataset
def test_real_reference_on_the_groove_dataset() -> None:
    if not (GROOVE_DIR / "info.csv").is_file():
        pytest.skip(f"Groove MIDI Dataset not found at {GROOVE_DIR}")
    ref = real_reference(GROOVE_DIR, "validation", genres=("rock", "funk"))
    for genre in ("rock", "funk"):
        fig = ref["genres"][genre]
        assert fig["trusted"] and fig["counts"]["stretches"] >= 10
        stab = fig["stability"]
        assert 2 < stab["edit"] <= stab["cell"] < 15  # human grooves: a few cells a bar
        assert 10 < fig["timing"]["voices"]["hat"]["std_ms"] < 50  # drummers spread by tens of ms
        assert 0 < fig["ghost_share"]["snare"] < 0.6
        assert fig["frechet"]["floor"] > 0 and fig["frechet"]["windows"] >= 50
        # one real funk groove plays 48 bars of hats alone: not every real stretch has a backbeat
        assert fig["backbeat_share"] > 0.8 and fig["kick_share"] > 0.8
