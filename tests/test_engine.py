"""The engine's stages end to end: on a mock model that plays a fixed groove (exact and fast), and on
the committed (or tiny) checkpoint for half-time styles at every tempo and many variations."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from conftest import use_checkpoint
from mock_model import HAT, HAT_STEPS, KICK, KICK_STEPS, SNARE, SNARE_STEPS, MockDrumModel

from drumgen.constants import PPQ
from drumgen.engine import Engine
from drumgen.generate import generate_pattern
from drumgen.midi_io import midi_to_pattern
from drumgen.model_loader import load_model
from drumgen.pattern import Note, Pattern
from drumgen.request import GenerateRequest
from drumgen.rules import stretch
from drumgen.styles import StyleRegistry
from drumgen.tokenizer import TICKS_PER_STEP, DrumTokenizer

BAR = 4 * PPQ


@pytest.fixture(scope="module")
def mock_engine() -> Engine:
    tok = DrumTokenizer()
    return Engine(MockDrumModel(tok), tok, {"version": "mock"}, Path("mock.pt"), StyleRegistry())


def onsets(pattern: Pattern, pitch: int) -> list[int]:
    return [n.onset for n in pattern.notes if n.pitch == pitch]


# --- the stages, on the mock model ---------------------------------------------------------------
def test_resolve_fills_the_request_from_the_preset_and_checks_it_once(mock_engine: Engine) -> None:
    plan = mock_engine.resolve(GenerateRequest(style="J Dilla", bars=8, seed=5, variation=0.25))
    assert (plan.preset.id, plan.tempo, plan.kit, plan.swing, plan.variation) == ("j_dilla", 90, "standard", 62, 0.25)
    assert plan.sampling.temperature == plan.preset.temperature and plan.seeds == [5]
    with pytest.raises(ValueError, match="variation must be a number from 0 to 1"):
        mock_engine.resolve(GenerateRequest(style="rock", variation=1.5))


def test_sample_gives_the_quantized_groove_the_model_plays(mock_engine: Engine) -> None:
    plan = mock_engine.resolve(GenerateRequest(style="rock", bars=3, seed=1, fill_every=0))
    (sampled,) = mock_engine.sample(plan)
    pattern = sampled.pattern
    assert pattern.bars == 3 and pattern.tempo == 110
    for pitch, steps in ((KICK, KICK_STEPS), (SNARE, SNARE_STEPS), (HAT, HAT_STEPS)):
        assert onsets(pattern, pitch) == [b * BAR + s * TICKS_PER_STEP for b in range(3) for s in steps]


def test_finish_humanizes_writes_midi_and_measures_the_feel(mock_engine: Engine) -> None:
    plan = mock_engine.resolve(GenerateRequest(style="j_dilla", bars=2, seed=3))
    (groove,) = mock_engine.finish(plan, mock_engine.sample(plan))
    back = midi_to_pattern(groove.midi)
    assert back.notes == groove.pattern.notes and back.bars == 2 and back.tempo == 90
    assert groove.pattern.notes != groove.quantized.notes  # the feel moved the hits
    assert groove.summary["feel"]["swing"] > 55  # J Dilla's swing reached the off-beat hats
    assert groove.filename == "j_dilla_90bpm_2bars_seed3.mid"
    flat = mock_engine.resolve(GenerateRequest(style="j_dilla", bars=2, seed=3, humanize=0))
    (quantized,) = mock_engine.finish(flat, mock_engine.sample(flat))
    assert quantized.pattern.notes == quantized.quantized.notes


def test_same_request_and_seed_give_the_same_bytes(mock_engine: Engine) -> None:
    request = GenerateRequest(style="questlove", bars=4, seed=9, audio=False)
    assert mock_engine.generate(request)[0].midi == mock_engine.generate(request)[0].midi
    assert mock_engine.generate(replace(request, seed=10))[0].midi != mock_engine.generate(request)[0].midi


def test_the_half_time_preset_spreads_each_bar_over_two(mock_engine: Engine) -> None:
    plan = mock_engine.resolve(GenerateRequest(style="metro_boomin", bars=4, seed=1))
    (sampled,) = mock_engine.sample(plan)
    snare_steps = {(o % BAR) // TICKS_PER_STEP for o in onsets(sampled.pattern, SNARE)}
    assert snare_steps == {48}  # the backbeat lands on beat 3 of every bar


def test_render_adds_audio_or_a_notice(mock_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    import drumgen.engine as engine_module

    plan = mock_engine.resolve(GenerateRequest(style="rock", bars=1, seed=1))
    grooves = mock_engine.finish(plan, mock_engine.sample(plan))
    monkeypatch.setattr(engine_module, "render_audio", lambda *a, **k: (_ for _ in ()).throw(OSError("no sound")))
    mock_engine.render(plan, grooves)
    assert grooves[0].audio is None and "MIDI file is fine" in grooves[0].notices[0]


def test_a_half_time_bar_cut_in_half_keeps_the_half_that_has_hits() -> None:
    """A generated half-time bar cut to one bar keeps its first half when that has hits, else its
    second half (so a 1-bar half-time groove is never silent)."""
    late = Pattern(tempo=70, bars=1).with_notes([Note(2 * PPQ, 38, 100), Note(3 * PPQ, 42, 60)])  # beats 3, 4
    assert [(n.onset, n.pitch) for n in stretch(late, 2, 1, 140).notes] == [(4 * PPQ - BAR, 38), (6 * PPQ - BAR, 42)]
    early = Pattern(tempo=70, bars=1).with_notes([Note(0, 36, 100), Note(3 * PPQ, 38, 90)])  # beats 1, 4
    assert [(n.onset, n.pitch) for n in stretch(early, 2, 1, 140).notes] == [(0, 36)]
    assert [(n.onset, n.pitch) for n in stretch(late, 2, 2, 140).notes] == [(4 * PPQ, 38), (6 * PPQ, 42)]


# --- the original design's calls ----------------------------------------------------------------------
def test_generate_pattern_takes_max_length_and_device_and_returns_tokens() -> None:
    tok = DrumTokenizer()
    patterns, tokens = generate_pattern(MockDrumModel(tok), tok, num_bars=12, max_length=300, device="cpu",
                                        return_tokens=True)
    assert patterns[0].bars == 12 and tokens[0].count(tok.ids.bar) == 12
    assert onsets(patterns[0], KICK)[-1] == 11 * BAR + KICK_STEPS[-1] * TICKS_PER_STEP


# --- on the committed (or tiny) checkpoint ------------------------------------------------------------
@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest) -> Engine:
    with pytest.MonkeyPatch.context() as mp:
        use_checkpoint(request, mp)
        return Engine.load()


def test_load_model_takes_a_style_name(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    use_checkpoint(request, monkeypatch)
    by_name, _ = load_model("J Dilla")
    by_id, _ = load_model("j_dilla_v1")
    assert by_name.num_parameters() == by_id.num_parameters() > 0
    with pytest.raises(FileNotFoundError):
        load_model("no_such_style_or_file")


@pytest.mark.parametrize("tempo", [40, 60, 79.5, 140, 300], ids=lambda t: f"{t}bpm")
def test_half_time_style_works_at_every_tempo(engine: Engine, tempo: float) -> None:
    """Metro Boomin conditions the model on half the tempo; below 80 BPM that half is under 40."""
    (groove,) = engine.generate(GenerateRequest(style="metro_boomin", bars=3, tempo=tempo, seed=2, audio=False))
    back = midi_to_pattern(groove.midi)
    assert back.bars == 3 and back.tempo == pytest.approx(tempo)
    assert groove.pattern.notes, "a half-time groove should have hits"


def test_twenty_variations_in_one_request_each_reproducible_from_its_seed(engine: Engine) -> None:
    grooves = engine.generate(GenerateRequest(style="funk", bars=2, seed=100, count=20, audio=False))
    assert [g.seed for g in grooves] == list(range(100, 120))
    assert len({g.midi for g in grooves}) > 10, "variations should differ"
    (alone,) = engine.generate(GenerateRequest(style="funk", bars=2, seed=117, audio=False))
    assert alone.midi == grooves[17].midi


def test_variation_zero_repeats_the_first_phrase(engine: Engine) -> None:
    for seed in range(3):
        (groove,) = engine.generate(GenerateRequest(style="rock", bars=8, seed=seed, variation=0, humanize=0,
                                                    fill_every=0, audio=False))
        bars = [sorted((n.onset - b * BAR, n.pitch, n.velocity) for n in groove.pattern.notes
                       if b * BAR <= n.onset < (b + 1) * BAR) for b in range(8)]
        assert all(bars[b] == bars[b % 2] for b in range(2, 8)), f"seed {seed}"


def test_beat_bars_after_a_fill_return_to_the_groove() -> None:
    """With fills every 4 bars the beat bars after each fill play as few toms as a groove without
    fills does (the model, whose training windows end on their fill, would otherwise keep filling)."""
    from conftest import COMMITTED_CHECKPOINT

    from drumgen.voices import VOICE_PITCH

    toms = {VOICE_PITCH[v] for v in ("low_tom", "mid_tom", "high_tom")}
    shipped = Engine.load(COMMITTED_CHECKPOINT)
    grooves = shipped.generate(GenerateRequest(style="funk", bars=8, seed=11, count=8, fill_every=4, audio=False))
    after_fill = [(g, b) for g in grooves for b in (4, 5, 6)]  # bar 3 is the first fill, bar 7 the second
    with_toms = sum(any(n.pitch in toms and b * BAR <= n.onset < (b + 1) * BAR for n in g.pattern.notes)
                    for g, b in after_fill)
    assert with_toms / len(after_fill) <= 0.2, f"{with_toms} of {len(after_fill)} beat bars after a fill hold toms"
