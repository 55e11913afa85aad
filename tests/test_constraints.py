"""Sampling constraints that compose: grammar + fill bars + fixed hits + voices off + loop lean hold
together whatever the model wants (a model of random logits), and each does what it says."""

from __future__ import annotations

import math

import pytest
from mock_model import RandomDrumModel
from test_grammar_generate import BAR_TICKS, walk

from drumgen.constraints import (
    FillBars,
    FixedHits,
    LoopLean,
    RequiredHit,
    VoicesOff,
    lean_bias,
    vocabulary,
)
from drumgen.generate import sample_tokens
from drumgen.sampling import SamplingSettings
from drumgen.tokenizer import DrumTokenizer

KICK, SNARE, CLOSED_HAT, CRASH, RIDE = 36, 38, 42, 49, 51
STEPS_PER_BAR = 96
FREE = SamplingSettings(temperature=1.0, top_k=0, top_p=1.0)


@pytest.fixture(scope="module")
def tok() -> DrumTokenizer:
    return DrumTokenizer()


def required(tok: DrumTokenizer, pitch: int, steps: tuple[int, ...], velocity: int) -> list[RequiredHit]:
    vocab = vocabulary(tok)
    token = vocab.hit_token(vocab.voice_of_pitch[pitch], velocity)
    return [RequiredHit(step, pitch, (token,)) for step in steps]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("num_bars", [1, 4, 12], ids=["1-bar", "4-bars", "12-bars-rebuilds"])
def test_grammar_fills_fixed_hits_voices_off_and_lean_sample_together(tok: DrumTokenizer, seed: int,
                                                                      num_bars: int) -> None:
    vocab = vocabulary(tok)
    fills = {b for b in range(num_bars) if b % 4 == 3}
    fixed = {b: required(tok, KICK, (0, 48), 100) + required(tok, SNARE, (24, 72), 110)
             for b in range(num_bars) if b not in fills}
    rules = [FillBars(vocab, fills), FixedHits(vocab, fixed, locked=[KICK]), VoicesOff(vocab, [RIDE, CRASH]),
             LoopLean(vocab, 0.3, fills)]
    model = RandomDrumModel(tok, seed=seed)
    states = sample_tokens(model, tok, tok.prefix("funk", 100), num_bars, FREE, [seed, seed + 50], rules)
    for state in states:
        hits = walk(tok, state.tokens, num_bars, fills)  # the grammar and the fill bars held
        assert not [h for h in hits if h.pitch in (RIDE, CRASH)], "a voice that is off played"
        for bar in range(num_bars):
            in_bar = [h for h in hits if bar * BAR_TICKS <= h.onset < (bar + 1) * BAR_TICKS]
            kicks = sorted((h.onset - bar * BAR_TICKS) * STEPS_PER_BAR // BAR_TICKS for h in in_bar if h.pitch == KICK)
            snares = {(h.onset - bar * BAR_TICKS) * STEPS_PER_BAR // BAR_TICKS for h in in_bar if h.pitch == SNARE}
            if bar in fills:
                assert not kicks, "the locked kick played where it was not fixed"
            else:
                assert kicks == [0, 48], f"bar {bar}: locked kick at {kicks}"
                assert {24, 72} <= snares, f"bar {bar}: fixed snares missing ({sorted(snares)})"
            assert all(h.velocity == tok.velocity_values[vocab.bin_of[vocab.hit_token(0, 100)]]
                       for h in in_bar if h.pitch == KICK)


def test_fixed_hits_at_one_instant_are_all_played(tok: DrumTokenizer) -> None:
    vocab = vocabulary(tok)
    fixed = {0: required(tok, KICK, (0,), 120) + required(tok, SNARE, (0,), 60) + required(tok, CRASH, (0,), 110)}
    for seed in range(5):
        state = sample_tokens(RandomDrumModel(tok, seed=seed), tok, tok.prefix("rock", 120), 1, FREE, [seed],
                              [FillBars(vocab, ()), FixedHits(vocab, fixed)])[0]
        at_zero = {h.pitch for h in walk(tok, state.tokens, 1) if h.onset == 0}
        assert {KICK, SNARE, CRASH} <= at_zero


def test_variation_zero_repeats_the_phrase_exactly_and_leaves_fills_free(tok: DrumTokenizer) -> None:
    vocab = vocabulary(tok)
    fills = {7}
    rules = [FillBars(vocab, fills), LoopLean(vocab, 0.0, fills)]
    for seed in range(4):
        state = sample_tokens(RandomDrumModel(tok, seed=seed), tok, tok.prefix("rock", 120), 8, FREE, [seed], rules)[0]
        walk(tok, state.tokens, 8, fills)
        bars = [[(h.step, h.voice, h.token) for h in bar] for bar in state.bars]
        for b in range(2, 7):
            assert bars[b] == bars[b % 2], f"seed {seed}: bar {b} left the phrase"
        assert bars[7] != bars[1], "the fill bar copied the groove"


def stability(tok: DrumTokenizer, variation: float, seeds: range) -> float:
    vocab = vocabulary(tok)
    rules = [FillBars(vocab, ())] + ([LoopLean(vocab, variation)] if variation < 1 else [])
    distances = []
    for seed in seeds:
        state = sample_tokens(RandomDrumModel(tok, seed=seed, scale=1.5), tok, tok.prefix("rock", 120), 6,
                              SamplingSettings(1.0, 20, 1.0), [seed], rules)[0]
        cells = [{(h.step, h.voice) for h in bar} for bar in state.bars]
        distances += [len(cells[b] ^ cells[b - 2]) for b in range(2, 6)]
    return sum(distances) / len(distances)


def test_more_variation_means_bars_differ_more_from_the_phrase(tok: DrumTokenizer) -> None:
    tight, loose, free = (stability(tok, v, range(6)) for v in (0.05, 0.4, 1.0))
    assert tight < loose < free


def test_constraints_that_contradict_each_other_say_so(tok: DrumTokenizer) -> None:
    vocab = vocabulary(tok)
    rules = [FillBars(vocab, ()), FixedHits(vocab, {0: required(tok, RIDE, (0,), 90)}), VoicesOff(vocab, [RIDE])]
    with pytest.raises(RuntimeError, match="contradict"):
        sample_tokens(RandomDrumModel(tok), tok, tok.prefix("rock", 120), 1, FREE, [0], rules)


@pytest.mark.parametrize("make", [
    lambda v: FixedHits(v, {}, locked=v.pitches),
    lambda v: VoicesOff(v, v.pitches),
    lambda v: FixedHits(v, {0: [RequiredHit(96, KICK, (1,))]}),
    lambda v: FixedHits(v, {0: [RequiredHit(0, 60, (1,))]}),
    lambda v: LoopLean(v, 1.5),
], ids=["all-locked", "all-off", "step-outside-bar", "not-a-voice", "lean-past-full-variation"])
def test_constraints_are_checked_when_made(tok: DrumTokenizer, make) -> None:
    with pytest.raises(ValueError):
        make(vocabulary(tok))


def test_lean_bias_grows_as_variation_falls() -> None:
    assert lean_bias(1.0) == 0.0
    assert math.isinf(lean_bias(0.0))
    values = [lean_bias(v) for v in (0.9, 0.5, 0.25, 0.1, 0.01)]
    assert values == sorted(values) and values[1] == pytest.approx(2.0)
