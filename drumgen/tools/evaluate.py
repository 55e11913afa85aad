"""``python -m drumgen evaluate``: the model's quality figures on a dataset folder, as JSON.

- ``nll``: per-token negative log-likelihood of DIR's files (the chosen split) under their
  own conditioning (genre, tempo, beat/fill), in consecutive 8-bar windows; also per bar,
  which (unlike per token) compares models with different token layouts.
- ``validity``: share of samples over random styles and controls that give a valid
  pattern of exactly the requested bars that survives a MIDI round trip.
- ``stability``: repetition/variation of 16-bar samples (human grooves about 5), beside
  the same measure on the split's own 16-bar stretches.
- ``genre``: a softmax-regression classifier trained on the train split's bars; its
  balanced accuracy on the split's real bars beside its accuracy on generated bars.
"""

from __future__ import annotations

import logging
import random
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from drumgen.constants import DEFAULT_TEMPERATURE, DEFAULT_TOP_K, DEFAULT_TOP_P
from drumgen.engine import Engine
from drumgen.generate import generate_pattern
from drumgen.midi_io import midi_to_pattern
from drumgen.pattern import Pattern
from drumgen.request import GenerateRequest
from drumgen.styles import list_styles, preset_genres
from drumgen.tokenizer import DrumTokenizer
from drumgen.tools.data import TokenizedFile, contiguous_windows, tokenize_split
from drumgen.tools.metrics import bar_features, mean_stability
from drumgen.tools.train import VALIDATION_BARS, sequence_nll

log = logging.getLogger(__name__)

STABILITY_BARS = 16
GENRE_SAMPLES = 12  # 4-bar samples per genre for the genre-consistency figure
GENRE_SAMPLE_BARS = 4


def preset_sampling(genre: str) -> dict[str, Any]:
    """The sampling a user gets for ``genre``: its genre preset's temperature, top-k and top-p."""
    for preset in list_styles():
        if preset.kind == "genre" and preset.genre == genre:
            return {"temperature": preset.temperature, "top_k": preset.top_k, "top_p": preset.top_p}
    return {"temperature": DEFAULT_TEMPERATURE, "top_k": DEFAULT_TOP_K, "top_p": DEFAULT_TOP_P}


def _decoded(f: TokenizedFile, tok: DrumTokenizer, start: int, n: int) -> Pattern:
    ids = [t for bar in f.bars[start:start + n] for t in bar]
    return tok.decode(ids, bars=n, tempo=f.bpm)


def _real_bars(files: list[TokenizedFile], tok: DrumTokenizer, genres: tuple[str, ...]
               ) -> tuple[np.ndarray, np.ndarray]:
    """Features and genre labels of every beat bar of ``files`` in ``genres``."""
    feats, labels = [], []
    for f in files:
        if f.kind != "beat" or f.genre not in genres:
            continue
        for start in range(0, len(f.bars), 16):
            n = min(16, len(f.bars) - start)
            feats.append(bar_features(_decoded(f, tok, start, n)))
            labels += [genres.index(f.genre)] * n
    return np.concatenate(feats), np.array(labels)


class GenreClassifier:
    """Softmax regression on bar features, classes weighted to balance the genres."""

    def __init__(self, genres: tuple[str, ...], epochs: int = 400, lr: float = 0.05, seed: int = 0) -> None:
        self.genres = genres
        self.epochs, self.lr, self.seed = epochs, lr, seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> GenreClassifier:
        torch.manual_seed(self.seed)
        xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
        counts = torch.bincount(yt, minlength=len(self.genres)).float().clamp_min(1)
        weight = counts.sum() / (len(self.genres) * counts)
        self.linear = torch.nn.Linear(x.shape[1], len(self.genres))
        opt = torch.optim.Adam(self.linear.parameters(), lr=self.lr, weight_decay=1e-4)
        for _ in range(self.epochs):
            loss = F.cross_entropy(self.linear(xt), yt, weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.linear(torch.tensor(x, dtype=torch.float32)).argmax(dim=1).numpy()


def _per_genre_accuracy(pred: np.ndarray, y: np.ndarray, genres: tuple[str, ...]) -> dict[str, float]:
    return {g: round(float((pred[y == i] == i).mean()), 3) for i, g in enumerate(genres) if (y == i).any()}


def evaluate(data_dir: str | Path, checkpoint: str | Path | None = None, split: str = "validation",
             samples: int = 1000, stability_samples: int = 60, seed: int = 0) -> dict[str, Any]:
    """All quality figures as a JSON-ready dict (defaults: validation split, 1000 validity
    samples, 60 16-bar stability samples, seed 0)."""
    started = time.time()
    engine = Engine.load(checkpoint)
    model, tok, meta = engine.model, engine.tokenizer, engine.metadata
    genres_of_presets = preset_genres()
    report: dict[str, Any] = {"checkpoint": str(engine.checkpoint), "split": split,
                              "model_version": meta.get("version"), "parameters": model.num_parameters()}
    files = tokenize_split(data_dir, split, tok)
    if not files:
        raise ValueError(f"no usable 4/4 files in split {split!r} of {data_dir}")

    # 1. per-token NLL under the files' own conditioning
    windows = contiguous_windows(files, tok, VALIDATION_BARS, model.config.block_size)
    nll, count = sequence_nll(model, tok, windows)
    bars = sum(w.count(tok.ids.bar) for w in windows)
    report["nll"] = {"per_token_nats": round(nll, 4), "perplexity": round(float(np.exp(nll)), 3),
                     "tokens": count, "per_bar_nats": round(nll * count / bars, 2), "bars": bars,
                     "files": len(files), "window_bars": VALIDATION_BARS}
    log.info("NLL %.4f over %d tokens", nll, count)

    # 2. validity of samples over random styles and controls, through the whole pipeline
    report["validity"] = _validity(engine, samples, seed)
    log.info("validity %s", report["validity"])

    # 3. stability of 16-bar samples, beside the data's own
    rng = random.Random(seed)
    genres = tuple(g for g in genres_of_presets if any(f.genre == g for f in files))
    generated = []
    per_call = 6
    for i in range(0, stability_samples, per_call):
        genre = rng.choice(genres)
        bpm = statistics.median(f.bpm for f in files if f.genre == genre)
        generated += generate_pattern(model, tok, num_bars=STABILITY_BARS, genre=genre, tempo=bpm,
                                      seed=seed + i, num_samples=min(per_call, stability_samples - i),
                                      **preset_sampling(genre))
    real = [_decoded(f, tok, s, STABILITY_BARS) for f in files if f.kind == "beat"
            for s in range(0, len(f.bars) - STABILITY_BARS + 1, STABILITY_BARS)]
    report["stability"] = {"generated": round(mean_stability(generated), 2), "real": round(mean_stability(real), 2),
                           "generated_samples": len(generated), "real_stretches": len(real),
                           "bars": STABILITY_BARS, "human_reference": 5.0,
                           "sampling": "each genre preset's temperature, top-k and top-p"}
    log.info("stability %s", report["stability"])

    # 4. genre consistency: classifier on train bars, real split bars vs generated bars
    train_files = files if split == "train" else tokenize_split(data_dir, "train", tok)
    x_train, y_train = _real_bars(train_files, tok, genres_of_presets)
    clf = GenreClassifier(genres_of_presets, seed=seed).fit(x_train, y_train)
    x_real, y_real = _real_bars(files, tok, genres_of_presets)
    real_acc = _per_genre_accuracy(clf.predict(x_real), y_real, genres_of_presets)
    gen_feats, gen_labels = [], []
    for genre in real_acc:
        bpm = statistics.median(f.bpm for f in train_files if f.genre == genre)
        pats = generate_pattern(model, tok, num_bars=GENRE_SAMPLE_BARS, genre=genre, tempo=bpm, seed=seed + 1000,
                                num_samples=GENRE_SAMPLES, **preset_sampling(genre))
        for p in pats:
            gen_feats.append(bar_features(p))
            gen_labels += [genres_of_presets.index(genre)] * p.bars
    x_gen, y_gen = np.concatenate(gen_feats), np.array(gen_labels)
    gen_acc = _per_genre_accuracy(clf.predict(x_gen), y_gen, genres_of_presets)
    report["genre"] = {
        "classifier": "softmax regression on per-bar features, trained on the train split's beat bars",
        "sampling": "each genre preset's temperature, top-k and top-p",
        "real_balanced_accuracy": round(float(np.mean(list(real_acc.values()))), 3),
        "generated_balanced_accuracy": round(float(np.mean([gen_acc[g] for g in real_acc])), 3),
        "chance": round(1 / len(genres_of_presets), 3),
        "per_genre": {g: {"real": real_acc[g], "generated": gen_acc[g]} for g in real_acc},
    }
    log.info("genre %s", report["genre"])
    report["seconds"] = round(time.time() - started, 1)
    return report


def _validity(engine: Engine, samples: int, seed: int) -> dict[str, Any]:
    """Generate ``samples`` grooves over random styles and controls; count the valid (and not
    silent) ones."""
    rng = random.Random(seed)
    styles = [s.id for s in list_styles()]
    valid = total = 0
    problems: list[str] = []
    per_call = 8
    while total < samples:
        count = min(per_call, samples - total)
        req = GenerateRequest(style=rng.choice(styles), bars=rng.choice([1, 2, 3, 4, 4, 8, 8, 12, 16]),
                              tempo=rng.uniform(40, 300), seed=rng.randrange(2**31), count=count,
                              temperature=rng.choice([0.0, 0.5, 0.8, 1.0, 1.2, 1.5]),
                              top_k=rng.choice([0, 1, 10, 50, 500]), top_p=rng.choice([0.0, 0.5, 0.9, 1.0]),
                              humanize=rng.random(), fill_every=rng.choice([0, 2, 4, 8]), audio=False)
        try:
            grooves = engine.generate(req)
        except Exception as exc:  # an invalid sample is the figure being measured
            problems.append(f"{req}: {exc}")
            total += count
            continue
        for g in grooves:
            total += 1
            try:
                back = midi_to_pattern(g.midi)
                ok = (back.bars == req.bars and g.pattern.bars == req.bars and bool(g.pattern.notes)
                      and len(back.notes) == len(g.pattern.notes))
            except ValueError as exc:
                ok = False
                problems.append(str(exc))
            valid += ok
    return {"samples": total, "valid": valid, "rate": round(valid / max(total, 1), 4), "problems": problems[:5]}
