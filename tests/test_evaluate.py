"""``python -m drumgen evaluate`` on the tiny synthetic dataset and checkpoint (see conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drumgen.styles import CHECKPOINT_ENV
from drumgen.tools.evaluate import evaluate

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
