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
