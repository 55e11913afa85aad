"""Shared fixtures: a tiny synthetic Groove-format dataset and a tiny checkpoint trained on it.

The dataset is a handful of short, strictly repeating rock and funk grooves written with
:func:`drumgen.midi_io.write_midi`, listed in an ``info.csv`` with the Groove MIDI Dataset's
columns. The checkpoint is trained once per session (a few seconds on a CPU) so the model,
loader and CLI tests run whether or not a real checkpoint is committed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from drumgen.midi_io import write_midi
from drumgen.pattern import PPQ, Note, Pattern

GROOVE_COLUMNS = ("drummer", "session", "id", "style", "bpm", "beat_type", "time_signature",
                  "midi_filename", "audio_filename", "duration", "split")
KICK, SNARE, CLOSED_HAT, OPEN_HAT, CRASH = 36, 38, 42, 46, 49
T16 = PPQ // 4


def rock_bar(bar: int) -> list[Note]:
    """8th-note hats, kick on 1 and 3 (and the 'and' of 3), snare on 2 and 4."""
    start = bar * 16 * T16
    notes = [Note(start + s * T16, CLOSED_HAT, 90 if s % 4 == 0 else 70) for s in range(0, 16, 2)]
    notes += [Note(start + s * T16, KICK, 110) for s in (0, 8, 10)]
    notes += [Note(start + s * T16, SNARE, 115) for s in (4, 12)]
    return notes


def funk_bar(bar: int) -> list[Note]:
    """16th-note hats, syncopated kick, backbeat snare with ghost notes, open hat on the last 'and'."""
    start = bar * 16 * T16
    notes = [Note(start + s * T16, CLOSED_HAT, 85 if s % 2 == 0 else 55) for s in range(16) if s != 14]
    notes.append(Note(start + 14 * T16, OPEN_HAT, 80))
    notes += [Note(start + s * T16, KICK, 112) for s in (0, 3, 10)]
    notes += [Note(start + s * T16, SNARE, 118) for s in (4, 12)]
    notes += [Note(start + s * T16, SNARE, 30) for s in (7, 9, 15)]
    return notes


def fill_bar(bar: int) -> list[Note]:
    """A one-bar snare-and-tom fill ending on a crash at the next downbeat's position in the bar."""
    start = bar * 16 * T16
    notes = [Note(start + s * T16, SNARE, 90 + s) for s in range(0, 8)]
    notes += [Note(start + s * T16, 50 if s < 12 else 43, 100) for s in range(8, 16)]
    notes.append(Note(start, CRASH, 110))
    return notes


BAR_MAKERS = {"rock": rock_bar, "funk": funk_bar, "fill": fill_bar}


def write_groove_dataset(root: Path) -> Path:
    """Write a tiny Groove-format dataset (6 train beats, 1 train fill, 2 validation beats) under ``root``."""
    files = [  # (drummer, style, bpm, kind, maker, bars, split)
        ("drummer1", "rock", 100, "beat", "rock", 12, "train"),
        ("drummer1", "funk", 96, "beat", "funk", 12, "train"),
        ("drummer2", "rock/indie", 120, "beat", "rock", 12, "train"),
        ("drummer2", "funk/groove1", 104, "beat", "funk", 12, "train"),
        ("drummer3", "rock", 110, "beat", "rock", 12, "train"),
        ("drummer3", "funk", 100, "beat", "funk", 12, "train"),
        ("drummer1", "rock", 102, "fill", "fill", 1, "train"),
        ("drummer4", "rock", 108, "beat", "rock", 8, "validation"),
        ("drummer4", "funk", 98, "beat", "funk", 8, "validation"),
    ]
    rows = []
    for i, (drummer, style, bpm, kind, maker, bars, split) in enumerate(files):
        notes = [n for b in range(bars) for n in BAR_MAKERS[maker](b)]
        name = f"{drummer}/session1/{i}_{style.replace('/', '-')}_{bpm}_{kind}_4-4.mid"
        write_midi(Pattern(notes=sorted(notes), tempo=float(bpm), bars=bars).validate(), root / name)
        rows.append({"drummer": drummer, "session": f"{drummer}/session1", "id": f"{drummer}/session1/{i}",
                     "style": style, "bpm": bpm, "beat_type": kind, "time_signature": "4-4",
                     "midi_filename": name, "audio_filename": name.replace(".mid", ".wav"),
                     "duration": round(bars * 4 * 60 / bpm, 3), "split": split})
    with (root / "info.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=GROOVE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return root


def tiny_train_config():
    from drumgen.tools.train import TrainConfig

    return TrainConfig(epochs=3, windows_per_epoch=32, batch_size=8, n_layer=1, n_head=2, n_embd=32,
                       block_size=256, warmup_steps=2, lr=3e-3)


@pytest.fixture(scope="module")
def torch_single_thread():
    """Run a module's tiny-model work on one thread (restored afterwards).

    Tiny matrices gain nothing from threads, and on a busy machine (a training run in the
    background) torch's thread pool makes them many times slower.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def make_groove_dataset():
    """:func:`write_groove_dataset`, for tests that need their own copy to alter."""
    return write_groove_dataset


@pytest.fixture(scope="session")
def groove_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Groove-format dataset folder (``info.csv`` + MIDI files)."""
    return write_groove_dataset(tmp_path_factory.mktemp("groove"))


@pytest.fixture(scope="session")
def tiny_checkpoint(groove_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """``(checkpoint folder, metadata)`` of a tiny model trained on :func:`groove_dataset` (CPU)."""
    import torch

    from drumgen.tools.train import train

    out = tmp_path_factory.mktemp("tiny_ckpt")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        meta = train(groove_dataset, out, tiny_train_config(), device="cpu")
    finally:
        torch.set_num_threads(before)
    return out, meta


# --- the app under test ------------------------------------------------------------------------
REPO = Path(__file__).resolve().parent.parent
COMMITTED_CHECKPOINT = REPO / "checkpoints" / "drumgen.pt"
CHECKPOINT_ENV = "DRUMGEN_CHECKPOINT"


def free_port() -> int:
    """A free TCP port on loopback."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def use_checkpoint(request: pytest.FixtureRequest, mp: pytest.MonkeyPatch) -> None:
    """Point the app at a checkpoint: ``$DRUMGEN_CHECKPOINT`` when it names a file, else the
    committed one, else the tiny one trained here."""
    import os

    if os.environ.get(CHECKPOINT_ENV) and Path(os.environ[CHECKPOINT_ENV]).is_file():
        return
    if COMMITTED_CHECKPOINT.is_file():
        mp.delenv(CHECKPOINT_ENV, raising=False)
        return
    folder, _ = request.getfixturevalue("tiny_checkpoint")
    mp.setenv(CHECKPOINT_ENV, str(Path(folder) / "drumgen.pt"))
