"""The request pipeline end to end on the committed (or tiny) checkpoint: half-time styles at
every tempo, many variations in one request."""

from __future__ import annotations

import pytest
from conftest import use_checkpoint

from drumgen.midi_io import midi_to_pattern
from drumgen.pipeline import GenerateRequest, generate_grooves


@pytest.fixture(autouse=True)
def checkpoint(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    use_checkpoint(request, monkeypatch)


@pytest.mark.parametrize("tempo", [40, 60, 79.5, 140, 300], ids=lambda t: f"{t}bpm")
def test_half_time_style_works_at_every_tempo(tempo: float) -> None:
    """Metro Boomin conditions the model on half the tempo; below 80 BPM that half is under 40."""
    (groove,) = generate_grooves(GenerateRequest(style="metro_boomin", bars=3, tempo=tempo, seed=2, audio=False))
    back = midi_to_pattern(groove.midi)
    assert back.bars == 3 and back.tempo == pytest.approx(tempo)
    assert groove.pattern.notes, "a half-time groove should have hits"


def test_twenty_variations_in_one_request_each_reproducible_from_its_seed() -> None:
    grooves = generate_grooves(GenerateRequest(style="funk", bars=2, seed=100, count=20, audio=False))
    assert [g.seed for g in grooves] == list(range(100, 120))
    assert len({g.midi for g in grooves}) > 10, "variations should differ"
    (alone,) = generate_grooves(GenerateRequest(style="funk", bars=2, seed=117, audio=False))
    assert alone.midi == grooves[17].midi



def test_a_half_time_bar_cut_in_half_keeps_the_half_that_has_hits() -> None:
    """A generated half-time bar cut to one bar keeps its first half when that has hits, else its
    second half (so a 1-bar half-time groove is never silent)."""
    from drumgen.pattern import PPQ, Note, Pattern
    from drumgen.pipeline import _stretch

    bar = 4 * PPQ
    late = Pattern(tempo=70, bars=1).with_notes([Note(2 * PPQ, 38, 100), Note(3 * PPQ, 42, 60)])  # beats 3, 4
    assert [(n.onset, n.pitch) for n in _stretch(late, 2, 1, 140).notes] == [(4 * PPQ - bar, 38), (6 * PPQ - bar, 42)]
    early = Pattern(tempo=70, bars=1).with_notes([Note(0, 36, 100), Note(3 * PPQ, 38, 90)])  # beats 1, 4
    assert [(n.onset, n.pitch) for n in _stretch(early, 2, 1, 140).notes] == [(0, 36)]
    assert [(n.onset, n.pitch) for n in _stretch(late, 2, 2, 140).notes] == [(4 * PPQ, 38), (6 * PPQ, 42)]
