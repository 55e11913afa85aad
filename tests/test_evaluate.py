"""``python -m drumgen evaluate`` on the tiny synthetic dataset and checkpoint (see conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from drumgen.constants import PPQ
from drumgen.pattern import Note, Pattern
from drumgen.styles import CHECKPOINT_ENV
from drumgen.tools.evaluate import GenreClassifier, evaluate
from drumgen.tools.metrics import bar_features

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def test_evaluate_scores_the_checkpoint_it_is_given_through_every_figure(
        groove_dataset: Path, tiny_checkpoint: tuple[Path, dict], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The validity samples run through the pipeline, which would otherwise load the app's
    checkpoint: here that one does not exist, so every sample must come from the given one."""
    folder, _ = tiny_checkpoint
    elsewhere = str(tmp_path / "not-this-one.pt")
    monkeypatch.setenv(CHECKPOINT_ENV, elsewhere)
    report = evaluate(groove_dataset, checkpoint=folder / "drumgen.pt", samples=16, grooves=2)
    assert os.environ[CHECKPOINT_ENV] == elsewhere, "evaluate must restore the environment"
    assert report["validity"]["valid"] == report["validity"]["samples"] == 16, report["validity"]["problems"]
    nll = report["nll"]
    assert 8 <= nll["bars"] <= 16  # two 8-bar validation files
    assert nll["per_bar_nats"] == pytest.approx(nll["per_token_nats"] * nll["tokens"] / nll["bars"], rel=1e-3)
    assert set(report["genres"]) == {"rock", "funk"}  # the genres the dataset has grooves of
    rock = report["genres"]["rock"]
    assert set(rock["stability"]) == {"0", "default", "100", "real"}
    assert rock["stability"]["0"]["quantized"]["edit"] <= rock["stability"]["100"]["quantized"]["edit"]
    assert 0 <= rock["genre_accuracy"] <= 1 and rock["form_32"]["bars_25_31"] is not None
    assert report["backbeat"]["with_kick"] == report["backbeat"]["grooves"] > 0  # every groove opens on a kick
    assert report["backbeat"]["with_backbeat"] == report["backbeat"]["grooves"]
    assert report["trap"]["bars"] > 0


def _hats(second_hat: int, shift: int = 0) -> Pattern:
    """Two bars of kick on 1, snare on 3 and two hats a beat, on the beat and ``second_hat`` ticks
    later (each hit ``shift`` ticks late)."""
    notes = [Note(bar * 4 * PPQ + shift, 36, 100) for bar in range(2)]
    notes += [Note(bar * 4 * PPQ + 2 * PPQ + shift, 38, 100) for bar in range(2)]
    notes += [Note(beat * PPQ + t + shift, 42, 80) for beat in range(8) for t in (0, second_hat)]
    return Pattern(notes=notes, tempo=100.0, bars=2)


def test_the_genre_classifier_does_not_read_a_humanized_feel_as_triplets() -> None:
    """Two genres on the same 16ths, one of them on the triplet before: a straight groove played a
    little behind the grid is still the straight one, because the classifier judges every groove on
    the grid its training bars were on (without that, every late hit reads as off the 16ths)."""
    straight, triplet = _hats(3 * PPQ // 4), _hats(2 * PPQ // 3)
    classifier = GenreClassifier(("rock", "jazz"), seed=0).fit(
        np.concatenate([bar_features(straight), bar_features(triplet)]), np.array([0, 0, 1, 1]))
    assert classifier.accuracy([straight], "rock") == 1.0 and classifier.accuracy([triplet], "jazz") == 1.0
    assert classifier.accuracy([_hats(3 * PPQ // 4, shift=9)], "rock") == 1.0  # 9 ticks = 12 ms late at 100 BPM
