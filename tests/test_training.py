"""Training end to end on a tiny synthetic Groove-format dataset (see conftest.py): loss, files, metadata."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import torch

from drumgen import __version__
from drumgen.generate import generate_pattern
from drumgen.model_loader import load_bundle, load_model
from drumgen.tokenizer import DrumTokenizer
from drumgen.tools.data import contiguous_windows, read_info, tokenize_split
from drumgen.tools.train import VALIDATION_BARS, TrainConfig, sequence_nll, train

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def test_synthetic_dataset_reads_like_the_groove_dataset(groove_dataset: Path) -> None:
    """Guard for the fixture: splits, genres and bar counts are what the training tests assume."""
    tok = DrumTokenizer()
    train_files = tokenize_split(groove_dataset, "train", tok)
    val_files = tokenize_split(groove_dataset, "validation", tok)
    assert len(read_info(groove_dataset)) == 9
    assert (len(train_files), len(val_files)) == (7, 2)
    assert {f.genre for f in train_files} == {"rock", "funk"}  # "rock/indie" and "funk/groove1" reduce
    assert sorted(len(f.bars) for f in val_files) == [8, 8]
    assert [f.kind for f in train_files].count("fill") == 1


def test_training_lowers_validation_loss(tiny_checkpoint: tuple[Path, dict]) -> None:
    _, meta = tiny_checkpoint
    history = meta["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["val_loss"] < history[0]["val_loss"] - 0.1, history
    assert history[-1]["train_loss"] < history[0]["train_loss"], history
    assert meta["val_loss"] == min(h["val_loss"] for h in history)
    assert history[meta["best_epoch"] - 1]["val_loss"] == meta["val_loss"]


def test_training_writes_checkpoint_tokenizer_and_metadata(tiny_checkpoint: tuple[Path, dict]) -> None:
    out, meta = tiny_checkpoint
    for name in ("drumgen.pt", "tokenizer.json", "metadata.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    on_disk = json.loads((out / "metadata.json").read_text())
    assert on_disk == meta
    ckpt = torch.load(out / "drumgen.pt", map_location="cpu", weights_only=True)
    assert set(ckpt) >= {"model_args", "model", "metadata"}
    assert ckpt["metadata"] == meta, "the checkpoint carries the same metadata as metadata.json"
    assert DrumTokenizer.load(out).vocab == DrumTokenizer().vocab


def test_metadata_describes_model_data_and_run(tiny_checkpoint: tuple[Path, dict]) -> None:
    _, meta = tiny_checkpoint
    assert meta["vocab_size"] == len(DrumTokenizer())
    assert meta["model_args"] == {"vocab_size": meta["vocab_size"], "block_size": 256, "n_layer": 1, "n_head": 2,
                                  "n_embd": 32, "dropout": 0.1, "gelu": "tanh", "timing_head": True}
    assert meta["version"] == __version__
    date = dt.datetime.strptime(meta["date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert abs(dt.datetime.now(dt.UTC) - date) < dt.timedelta(hours=2)
    assert isinstance(meta["val_loss"], float) and 0 < meta["val_loss"] < 10
    data = meta["data"]
    assert data["train_split"] == "train" and data["selection_split"] == "validation"
    assert (data["train_files"], data["validation_files"]) == (7, 2)
    assert data["train_bars"] == 6 * 12 + 1
    assert meta["train_config"]["epochs"] == 3 and meta["parameters"] > 0


def test_reported_val_loss_is_the_models_validation_nll(tiny_checkpoint: tuple[Path, dict],
                                                        groove_dataset: Path) -> None:
    out, meta = tiny_checkpoint
    model, tok, _ = load_bundle(str(out / "drumgen.pt"), device="cpu")
    windows = contiguous_windows(tokenize_split(groove_dataset, "validation", tok), tok, VALIDATION_BARS,
                                 model.config.block_size)
    nll, count = sequence_nll(model, tok, windows)
    assert count > 0
    assert nll == pytest.approx(meta["val_loss"], abs=1e-4)


def test_checkpoint_loads_and_generates_a_valid_pattern(tiny_checkpoint: tuple[Path, dict]) -> None:
    out, _ = tiny_checkpoint
    model, tok, meta = load_bundle(str(out / "drumgen.pt"), device="cpu")
    assert not model.training, "a loaded model is in eval mode"
    assert model.config.vocab_size == len(tok) == meta["vocab_size"]
    assert load_model(str(out / "drumgen.pt"), "cpu")[0] is model, "the model is loaded once and cached"
    patterns = generate_pattern(model, tok, num_bars=4, genre="funk", tempo=100.0, seed=0, num_samples=2)
    for pattern in patterns:
        pattern.validate()
        assert pattern.bars == 4 and pattern.tempo == 100.0
        assert pattern.notes, "a trained model should play something in 4 bars"


def test_train_without_training_files_says_so(tmp_path: Path, make_groove_dataset) -> None:
    data = make_groove_dataset(tmp_path / "data")
    info = data / "info.csv"
    lines = info.read_text().splitlines()
    info.write_text("\n".join([lines[0]] + [line for line in lines[1:] if line.endswith(",validation")]) + "\n")
    with pytest.raises(ValueError, match="no training files"):
        train(data, tmp_path / "out", TrainConfig(epochs=1, windows_per_epoch=8, batch_size=8, n_layer=1,
                                                  n_head=2, n_embd=32, block_size=256), device="cpu")


def test_train_on_a_folder_without_info_csv_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="info.csv"):
        train(tmp_path, tmp_path / "out", TrainConfig(epochs=1), device="cpu")
