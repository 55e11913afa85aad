"""``python -m drumgen evaluate``: the model's quality figures on a dataset folder, as JSON.

- ``nll``: per-token negative log-likelihood of DIR's files (the chosen split) under their own
  conditioning, in consecutive 8-bar windows (also per bar, which compares token layouts, and the
  timing head's NLL per hit);
- ``validity``: share of samples over random styles and controls that give a valid, non-silent
  pattern of exactly the requested bars that survives a MIDI round trip;
- ``genres``: per genre preset, its grooves beside the real grooves of that genre
  (:mod:`drumgen.tools.reference`): stability (the published edit-distance measure and the cell
  measure) at variation 0, the preset's default and 100 %, humanized and quantized; a Frechet-style
  distance of 4-bar windows (hits, velocity, timing) as a multiple of the train-vs-split floor;
  per-voice timing; ghost-note shares; hat and tom density of beat and fill bars (with fills every
  4 bars); the form of 32-bar grooves (bars 2-8 against 25-31); genre accuracy of a classifier;
- ``trap``: the Metro Boomin preset's hat line, snare on 3 and rolls;
- ``backbeat``: grooves of the backbeat styles with a backbeat snare, and grooves with a kick.

Real references come from the split's grooves of the genre, or from the train split's where the
split has too few (``reference_split`` says which).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from drumgen.engine import Engine
from drumgen.midi_io import midi_to_pattern
from drumgen.pattern import Pattern
from drumgen.request import GenerateRequest
from drumgen.styles import StylePreset, list_styles
from drumgen.tokenizer import DrumTokenizer, quantize_pattern
from drumgen.tools.data import TokenizedFile, contiguous_windows, tokenize_split
from drumgen.tools.metrics import (
    WindowSpace,
    bar_features,
    bar_kind_density,
    bar_stability,
    frechet_distance,
    ghost_share,
    has_backbeat,
    has_kick,
    range_stability,
    stability_profiles,
    timing_stats,
    trap_checks,
)
from drumgen.tools.reference import beat_windows, genre_figures, load_grooves
from drumgen.tools.train import VALIDATION_BARS, evaluate_windows

log = logging.getLogger(__name__)

GROOVE_BARS = 16  # bars of each evaluated groove (the stability measure reads 16 bars)
GROOVES = 12  # grooves per genre and setting
FORM_BARS, FORM_GROOVES, FORM_RANGES = 32, 6, ((2, 8), (25, 31))
FILL_EVERY = 4  # the fill figures: grooves with a fill every 4 bars
VARIATIONS = {"0": 0.0, "default": None, "100": 1.0}
BACKBEAT_STYLES = ("rock", "pop", "soul", "funk", "hiphop", "j_dilla", "questlove")
BACKBEAT_BARS = 2
TRAP_STYLE = "metro_boomin"


def _mean(values: Sequence[float]) -> float | None:
    return round(float(np.mean(values)), 3) if len(values) else None


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return None if not np.isfinite(value) else round(value, 3)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    return value


def stability_figures(patterns: Sequence[Pattern]) -> dict[str, float | None]:
    """The published edit-distance stability (interior bars of each groove) and the cell measure."""
    edit = [float(v) for prof in stability_profiles(patterns) for v in prof[1:-1]]
    cell = [float(v) for p in patterns for v in bar_stability(p)]
    return {"edit": _mean(edit), "cell": _mean(cell)}


# --- the genre classifier -----------------------------------------------------------------------------
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

    def accuracy(self, patterns: Sequence[Pattern], genre: str) -> float | None:
        """Share of the bars of ``patterns`` classified as ``genre``, each put on the token grid first:
        the classifier learned the dataset's bars on that grid, where a hit off the 16ths is a triplet,
        and a humanized hit read off-grid would look like one."""
        if not patterns:
            return None
        pred = self.predict(np.concatenate([bar_features(quantize_pattern(p)) for p in patterns]))
        return round(float((pred == self.genres.index(genre)).mean()), 3)


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


# --- generating --------------------------------------------------------------------------------------
def _grooves(engine: Engine, preset: StylePreset, bars: int, count: int, seed: int, **controls: Any
             ) -> tuple[list[Pattern], list[Pattern]]:
    """``count`` grooves of ``preset`` (its own tempo, kit and sampling): ``(humanized, quantized)``."""
    request = GenerateRequest(style=preset.id, bars=bars, seed=seed, count=count, audio=False, **controls)
    plan = engine.resolve(request)
    sampled = engine.sample(plan)
    return [g.pattern for g in engine.finish(plan, sampled)], [s.pattern for s in sampled]


def genre_report(engine: Engine, preset: StylePreset, reference: dict[str, Any], windows: np.ndarray | None,
                 space: WindowSpace | None, floor: float | None, classifier: GenreClassifier, seed: int,
                 grooves: int) -> dict[str, Any]:
    """Every figure of one genre preset beside its real reference (see the module docstring)."""
    out: dict[str, Any] = {"preset": preset.id, "default_variation": preset.variation, "stability": {}}
    default_humanized: list[Pattern] = []
    default_quantized: list[Pattern] = []
    for name, variation in VARIATIONS.items():
        humanized, quantized = _grooves(engine, preset, GROOVE_BARS, grooves, seed, fill_every=0,
                                        variation=variation)
        out["stability"][name] = {"humanized": stability_figures(humanized),
                                  "quantized": stability_figures(quantized)}
        if variation is None:
            default_humanized, default_quantized = humanized, quantized
    out["stability"]["real"] = {k: reference["stability"][k] for k in ("edit", "cell", "edit_first16")}
    if space is not None and windows is not None and floor:
        out["frechet"] = {
            "humanized": frechet_distance(beat_windows(default_humanized), windows, space) / floor,
            "quantized": frechet_distance(beat_windows(default_quantized), windows, space) / floor,
            "unit": "multiples of the train-vs-real floor",
        }
    gen_timing = timing_stats(default_humanized)
    real_timing = reference["timing"]
    out["timing"] = {
        "generated": {v: gen_timing["voices"].get(v) for v in ("kick", "snare", "hat")},
        "real": {v: real_timing["voices"].get(v) for v in ("kick", "snare", "hat")},
        "snare_vs_hat_ms": {"generated": gen_timing.get("snare_vs_hat_ms"), "real": real_timing.get("snare_vs_hat_ms")},
        "kick_vs_hat_ms": {"generated": gen_timing.get("kick_vs_hat_ms"), "real": real_timing.get("kick_vs_hat_ms")},
    }
    gen_ghosts, real_ghosts = ghost_share(default_humanized), reference["ghost_share"]
    out["ghost_share"] = {v: {"generated": gen_ghosts.get(v), "real": real_ghosts.get(v)}
                          for v in ("kick", "snare", "closed_hat")}
    filled_humanized, _ = _grooves(engine, preset, GROOVE_BARS, grooves, seed + 1, fill_every=FILL_EVERY)
    fills = [range(FILL_EVERY - 1, GROOVE_BARS, FILL_EVERY)] * len(filled_humanized)
    with_fills = bar_kind_density(filled_humanized, fills)
    out["bars"] = {
        "beat_without_fills": bar_kind_density(default_humanized)["beat"],
        "beat_with_fills": with_fills["beat"],
        "fill": with_fills["fill"],
        "real_beat": reference["bars"]["beat"],
        "real_fill": reference["bars"]["fill"],
    }
    long, _ = _grooves(engine, preset, FORM_BARS, FORM_GROOVES, seed + 2, fill_every=0)
    out["form_32"] = {f"bars_{a}_{b}": _mean([range_stability(p, a, b) for p in long]) for a, b in FORM_RANGES}
    out["genre_accuracy"] = classifier.accuracy(default_humanized, preset.genre)
    return out


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
                              humanize=rng.random(), variation=rng.choice([0.0, 0.2, 0.5, 1.0, None]),
                              fill_every=rng.choice([0, 2, 4, 8]), audio=False)
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


def _backbeat(engine: Engine, samples: int, seed: int) -> dict[str, Any]:
    """Of ``samples`` short grooves of the backbeat styles (their own controls), how many have their
    backbeat snare, and how many a kick."""
    per_style = max(1, samples // len(BACKBEAT_STYLES))
    with_backbeat = with_kick = total = 0
    for i, style in enumerate(BACKBEAT_STYLES):
        humanized, _ = _grooves(engine, engine.styles.get(style), BACKBEAT_BARS, 16, seed + i)
        for start in range(16, per_style, 16):
            humanized += _grooves(engine, engine.styles.get(style), BACKBEAT_BARS, min(16, per_style - start),
                                  seed + 1000 * (start // 16) + i)[0]
        total += len(humanized)
        with_backbeat += sum(has_backbeat(p) for p in humanized)
        with_kick += sum(has_kick(p) for p in humanized)
    return {"styles": list(BACKBEAT_STYLES), "grooves": total, "with_backbeat": with_backbeat, "with_kick": with_kick}


def evaluate(data_dir: str | Path, checkpoint: str | Path | None = None, split: str = "validation",
             samples: int = 1000, grooves: int = GROOVES, seed: int = 0) -> dict[str, Any]:
    """All quality figures as a JSON-ready dict (defaults: validation split, 1000 validity samples,
    12 grooves per genre and setting, seed 0)."""
    started = time.time()
    engine = Engine.load(checkpoint)
    model, tok, meta = engine.model, engine.tokenizer, engine.metadata
    report: dict[str, Any] = {"checkpoint": str(engine.checkpoint), "split": split,
                              "model_version": meta.get("version"), "parameters": model.num_parameters()}
    files = tokenize_split(data_dir, split, tok)
    if not files:
        raise ValueError(f"no usable 4/4 files in split {split!r} of {data_dir}")

    # 1. per-token NLL under the files' own conditioning, and the timing head's per hit
    windows = contiguous_windows(files, tok, VALIDATION_BARS, model.config.block_size)
    nll, count, timing_nll = evaluate_windows(model, tok, windows)
    bars = sum(w.ids.count(tok.ids.bar) for w in windows)
    report["nll"] = {"per_token_nats": round(nll, 4), "perplexity": round(float(np.exp(nll)), 3),
                     "tokens": count, "per_bar_nats": round(nll * count / bars, 2), "bars": bars,
                     "files": len(files), "window_bars": VALIDATION_BARS,
                     "timing_nll_per_hit": None if timing_nll is None else round(timing_nll, 4)}
    log.info("NLL %s", report["nll"])

    # 2. validity of samples over random styles and controls, through the whole engine
    report["validity"] = _validity(engine, samples, seed)
    log.info("validity %s", report["validity"])

    # 3. per genre, beside the real grooves
    presets = [p for p in list_styles() if p.kind == "genre"]
    genres = tuple(dict.fromkeys(p.genre for p in presets))
    real = load_grooves(data_dir, split, genres)
    train = real if split == "train" else load_grooves(data_dir, "train", genres)
    train_files = files if split == "train" else tokenize_split(data_dir, "train", tok)
    x_train, y_train = _real_bars(train_files, tok, genres)
    classifier = GenreClassifier(genres, seed=seed).fit(x_train, y_train)
    x_real, y_real = _real_bars(files, tok, genres)
    real_accuracy = {g: round(float((classifier.predict(x_real[y_real == i]) == i).mean()), 3)
                     for i, g in enumerate(genres) if (y_real == i).any()}
    report["genres"] = {}
    for preset in presets:
        g = preset.genre
        if not real[g].beats and not train[g].beats:
            log.info("%s: no real grooves to compare with; skipped", g)
            continue
        figures = genre_figures(real[g], train[g])
        ref_split = split
        if not figures["trusted"]:  # too few grooves of this genre in the split: the train split's
            figures, ref_split = genre_figures(train[g]), "train"
        space = windows_real = None
        floor = (figures.get("frechet") or {}).get("floor")
        if ref_split == split and floor:
            space = WindowSpace.fit(beat_windows(train[g].beats_raw))
            windows_real = beat_windows(real[g].beats_raw)
        entry = genre_report(engine, preset, figures, windows_real, space, floor, classifier, seed, grooves)
        entry["reference_split"] = ref_split
        entry["real_genre_accuracy"] = real_accuracy.get(g)
        report["genres"][g] = _round(entry)
        log.info("%s: %s", g, report["genres"][g]["stability"])

    # 4. trap, and 5. the backbeat styles
    humanized, _ = _grooves(engine, engine.styles.get(TRAP_STYLE), GROOVE_BARS, grooves, seed)
    report["trap"] = {"style": TRAP_STYLE, **trap_checks(humanized)}
    report["backbeat"] = _backbeat(engine, samples, seed)
    report["seconds"] = round(time.time() - started, 1)
    return report
