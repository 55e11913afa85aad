"""Real-groove reference figures per genre: the measures of :mod:`drumgen.tools.metrics` on the Groove
MIDI Dataset's own performances, to calibrate and judge generated grooves against.

Per genre (the genres of the genre presets), from the 4/4 files of one split:

- beat files give the beat figures, fill files the fill-bar figures (every bar of a fill file
  is a fill bar, as the dataset marks them); empty lead-in and ring-out bars are trimmed;
- stability (both measures), ghost shares, hat/tom density, backbeat/kick and trap figures
  are read from the performances quantized to the token grid (``tokenizer.quantize_pattern``,
  what the model learns from); every grid snaps hits to the nearest 16th;
- timing figures and the Frechet-style windows use the raw played onsets;
- stability is measured on 16-bar stretches of the beat files (consecutive, from the first
  bar; a shorter tail of at least 8 bars is kept), like a 16-bar generated groove; the
  ``_first16`` figures read only the first 16 bars of every performance, as the published
  evaluation does (drummers are steadier there than over a whole performance).

The Frechet-style floor is the distance of the ``floor_split`` (train) windows of the genre to
this split's, in a :class:`~drumgen.tools.metrics.WindowSpace` fitted on the train windows; a
generated set is scored in the same space against the same windows::

    train, val = load_grooves(data, "train"), load_grooves(data, "validation")
    space = WindowSpace.fit(beat_windows(train["rock"].beats_raw))
    ratio = frechet_distance(beat_windows(generated), beat_windows(val["rock"].beats_raw), space) / floor

``python -m drumgen.tools.reference DATA OUT.json`` writes the validation and train figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drumgen.pattern import Note, Pattern
from drumgen.styles import preset_genres
from drumgen.tokenizer import genre_of, quantize_pattern
from drumgen.tools.data import load_pattern, read_info
from drumgen.tools.metrics import (
    STEPS_PER_BAR,
    WINDOW_BARS,
    WINDOW_KINDS,
    WindowSpace,
    bar_kind_density,
    bar_stability,
    frechet_distance,
    gaussian_frechet,
    ghost_share,
    has_backbeat,
    has_kick,
    stability_profiles,
    timing_stats,
    trap_checks,
    voice_grids,
    window_features,
)
from drumgen.voices import VOICES

log = logging.getLogger(__name__)

STRETCH_BARS = 16  # stability is measured on 16-bar stretches, like a 16-bar generated groove
MIN_STRETCH_BARS = 8  # a file's last, shorter stretch is kept when it has at least this many bars
FORM_BARS = 32  # long-form figure: bars 2-8 against 25-31 of 32-bar stretches
FORM_RANGES = ((2, 8), (25, 31))
# fewer beat files, beat bars or drummers than these: too little to trust as a genre's reference
MIN_TRUSTED_FILES = 3
MIN_TRUSTED_BARS = 100
MIN_TRUSTED_DRUMMERS = 2
MIN_FRECHET_WINDOWS = 20  # each set needs this many windows for a meaningful covariance
TIME_SIGNATURE = "4-4"
ROUND_DIGITS = 4
BOOTSTRAP_ROUNDS, BOOTSTRAP_SEED = 20, 0  # resamples of the split's windows for the floor's spread
WINDOW_FEATURES = WINDOW_BARS * STEPS_PER_BAR * len(VOICES) * len(WINDOW_KINDS)


@dataclass
class GenreGrooves:
    """The real grooves of one genre in one split."""

    beats_raw: list[Pattern] = field(default_factory=list)  # as played, empty edge bars trimmed
    beats: list[Pattern] = field(default_factory=list)  # the same, quantized to the token grid
    fills: list[Pattern] = field(default_factory=list)  # fill files, quantized; every bar a fill bar
    drummers: set[str] = field(default_factory=set)  # drummers of the beat files


def trim_empty_bars(pattern: Pattern) -> Pattern:
    """The pattern without its leading and trailing bars that hold no hit of the nine voices
    (count-ins, ring-outs); a pattern with no such hit comes back unchanged."""
    filled = np.flatnonzero(voice_grids(pattern).any(axis=(1, 2)))
    if not filled.size:
        return pattern
    return cut_bars(pattern, int(filled[0]), int(filled[-1] - filled[0] + 1))


def cut_bars(pattern: Pattern, start: int, bars: int) -> Pattern:
    """Bars ``start`` .. ``start + bars - 1`` (0-based) as a pattern of their own. A hit belongs
    to the bar of its nearest 16th (as in every grid), so a hit played a hair before the first
    bar line comes along with a small negative onset."""
    return _cut(pattern, _bar_of_notes(pattern), start, bars)


def _bar_of_notes(pattern: Pattern) -> np.ndarray:
    """The bar of every note of ``pattern`` (that of its nearest 16th)."""
    onsets = np.array([n.onset for n in pattern.notes], dtype=np.float64)
    return np.rint(onsets / (pattern.ticks_per_bar / STEPS_PER_BAR)).astype(np.int64) // STEPS_PER_BAR


def _cut(pattern: Pattern, bar_of: np.ndarray, start: int, bars: int) -> Pattern:
    shift = start * pattern.ticks_per_bar
    picked = np.flatnonzero((bar_of >= start) & (bar_of < start + bars))
    notes = [pattern.notes[i] for i in picked.tolist()]
    notes = [Note(n.onset - shift, n.pitch, n.velocity, n.duration) for n in notes] if shift else notes
    return Pattern(notes=notes, tempo=pattern.tempo, bars=bars, time_signature=pattern.time_signature)


def stretches(patterns: Sequence[Pattern], bars: int = STRETCH_BARS, min_bars: int = MIN_STRETCH_BARS) -> list[Pattern]:
    """Every pattern cut into consecutive ``bars``-bar stretches from its first bar; a last,
    shorter stretch is kept when it has at least ``min_bars`` bars."""
    out = []
    for p in patterns:
        bar_of = _bar_of_notes(p)
        for start in range(0, p.bars, bars):
            n = min(bars, p.bars - start)
            if n >= min_bars:
                out.append(_cut(p, bar_of, start, n))
    return out


def beat_windows(patterns: Sequence[Pattern]) -> np.ndarray:
    """The 4-bar window features (:func:`~drumgen.tools.metrics.window_features`) of all ``patterns``."""
    feats = [window_features(p) for p in patterns]
    return np.concatenate(feats) if feats else np.zeros((0, WINDOW_FEATURES), dtype=np.float32)


def load_grooves(data_dir: str | Path, split: str, genres: Sequence[str] | None = None) -> dict[str, GenreGrooves]:
    """The 4/4 beat and fill performances of ``split`` per genre (only ``genres``; every genre
    appears, empty when the split has none)."""
    genres = preset_genres() if genres is None else genres
    out = {g: GenreGrooves() for g in genres}
    for row in read_info(data_dir, split):
        genre = genre_of(row["style"])
        if row["time_signature"] != TIME_SIGNATURE or genre not in out:
            continue
        raw = trim_empty_bars(load_pattern(Path(data_dir) / row["midi_filename"], float(row["bpm"])))
        if not raw.notes:
            continue
        grooves = out[genre]
        if row["beat_type"] == "fill":
            grooves.fills.append(quantize_pattern(raw))
        else:
            grooves.beats_raw.append(raw)
            grooves.beats.append(quantize_pattern(raw))
            grooves.drummers.add(row["drummer"])
    log.info("loaded %s: %s", split, {g: (len(v.beats), len(v.fills)) for g, v in out.items()})
    return out


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def genre_figures(grooves: GenreGrooves, floor: GenreGrooves | None = None) -> dict[str, Any]:
    """Every reference figure of one genre's grooves (see the module docstring); ``floor``: the
    same genre in another split, for the Frechet-style floor (skipped when None)."""
    beat_bars = sum(p.bars for p in grooves.beats)
    stretch = stretches(grooves.beats)
    stretch_raw = stretches(grooves.beats_raw)
    cell_values = [v for p in stretch for v in bar_stability(p)]
    # one batched edit-distance pass per set of stretches; the published measure = interior bars
    profiles = stability_profiles(stretch)
    interior = [float(v) for prof in profiles for v in prof[1:-1]]
    published = [float(v) for prof in stability_profiles(stretch_raw, published_pitches=True) for v in prof[1:-1]]
    # the published protocol proper: the first 16 bars of every performance only
    firsts = [stretches([p])[:1] for p in grooves.beats_raw]
    first_raw = [f[0] for f in firsts if f]
    first_edit = [float(v) for prof in stability_profiles([quantize_pattern(p) for p in first_raw]) for v in prof[1:-1]]
    first_published = [float(v) for prof in stability_profiles(first_raw, published_pitches=True) for v in prof[1:-1]]
    long = stability_profiles(stretches(grooves.beats, FORM_BARS, FORM_BARS))  # range_stability, batched
    form: dict[str, Any] = {f"bars_{a}_{b}": _mean([float(prof[a - 1 : b].mean()) for prof in long])
                            for a, b in FORM_RANGES}
    form["stretches"] = len(long)

    windows = beat_windows(grooves.beats_raw)
    frechet: dict[str, Any] = {"windows": len(windows), "floor_windows": None, "floor": None,
                               "floor_bootstrap_sd": None, "floor_by_kind": None}
    if floor is not None:
        floor_windows = beat_windows(floor.beats_raw)
        frechet["floor_windows"] = len(floor_windows)
        if min(len(windows), len(floor_windows)) >= MIN_FRECHET_WINDOWS:
            space = WindowSpace.fit(floor_windows)
            frechet["floor"] = frechet_distance(floor_windows, windows, space)
            frechet["floor_by_kind"] = {k: frechet_distance(floor_windows, windows, space, k) for k in WINDOW_KINDS}
            # how much the floor moves when this split's windows are resampled
            rng = np.random.default_rng(BOOTSTRAP_SEED)
            pf, pw = space.project(floor_windows), space.project(windows)
            boot = [gaussian_frechet(pf, pw[rng.integers(0, len(pw), len(pw))]) for _ in range(BOOTSTRAP_ROUNDS)]
            frechet["floor_bootstrap_sd"] = float(np.std(boot))

    trusted = (len(grooves.beats) >= MIN_TRUSTED_FILES and beat_bars >= MIN_TRUSTED_BARS
               and len(grooves.drummers) >= MIN_TRUSTED_DRUMMERS)
    return {
        "counts": {"beat_files": len(grooves.beats), "fill_files": len(grooves.fills),
                   "drummers": len(grooves.drummers), "beat_bars": beat_bars,
                   "fill_bars": sum(p.bars for p in grooves.fills), "stretches": len(stretch),
                   "edit_stability_bars": len(interior)},
        "trusted": trusted,
        "stability": {
            "edit": _mean(interior),
            "cell": _mean(cell_values),
            "edit_published_pitches": _mean(published),
            "edit_all_bars": _mean([float(v) for prof in profiles for v in prof]),
            "edit_first16": _mean(first_edit),
            "edit_first16_published_pitches": _mean(first_published),
        },
        "form_32": form,
        "timing": timing_stats(grooves.beats_raw),
        "ghost_share": ghost_share(grooves.beats),
        "bars": {"beat": bar_kind_density(grooves.beats)["beat"],
                 "fill": bar_kind_density(grooves.fills, [range(p.bars) for p in grooves.fills])["fill"]},
        "trap": trap_checks(grooves.beats_raw),
        "backbeat_share": _mean([float(has_backbeat(p)) for p in stretch]),
        "kick_share": _mean([float(has_kick(p)) for p in stretch]),
        "frechet": frechet,
    }


def _rounded(value: Any) -> Any:
    """JSON-ready copy: floats rounded, NaN as None."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else round(float(value), ROUND_DIGITS)
    if isinstance(value, np.integer):
        return int(value)
    return value


DEFINITIONS = {
    "stability.edit": "published 'Language Models are Drummers' measure: Levenshtein distance of a bar's text "
                      "(16 lines x crash, ride, hi-hat, snare, kick, toms) to its nearer neighbour, bars 2-15 "
                      "of each 16-bar stretch, nine-voice pitch reduction",
    "stability.edit_published_pitches": "the same on the published pitch set only (drops hat edges 22/26, "
                                        "pedal hat 44, kick 35, clap 39, crashes 52/55, toms 41/58)",
    "stability.edit_all_bars": "the edit measure over every bar (first/last of a stretch: one neighbour)",
    "stability.edit_first16": "the edit measure on the first 16 bars of every beat file only (the published protocol; "
                              "_published_pitches: with its pitch set too)",
    "stability.cell": "grid cells (16 x 6) that differ from the nearer neighbour, every bar of each stretch",
    "form_32": "mean edit stability of bars 2-8 and 25-31 of 32-bar stretches",
    "timing": "offset (ms) of every raw hit from its token-grid point (nearest 16th, or an 8th triplet when "
              "clearly nearer), beat files, pooled; std = population std (drift + jitter)",
    "ghost_share": "share of a voice's hits with velocity <= 40, quantized beat files",
    "bars": "per bar kind: hat_cells = steps of 16 with a closed/open hat; tom_share = bars with a tom; "
            "tom_or_crash_share = bars with a tom or crash (beat bars from beat files, fill bars from fill files)",
    "trap": "hat line = >= 7 hat steps of 16; snare on 3 = snare (velocity > 40) on step 8; "
            "roll = >= 2 gaps of 0.2-0.75 of a 16th between consecutive hats",
    "backbeat_share": "16-bar stretches with a snare (velocity > 40) on beat 2 or 4 in some bar",
    "frechet.floor": "Frechet distance, train 4-bar windows vs this split's (hit, velocity, offset per voice and "
                     "16th), 8 principal components per feature kind fitted on the train windows; by_kind: one "
                     "kind's components only; bootstrap_sd: spread over resamples of this split's windows",
}


def real_reference(data_dir: str | Path, split: str = "validation", floor_split: str | None = "train",
                   genres: Sequence[str] | None = None,
                   cache: dict[str, dict[str, GenreGrooves]] | None = None) -> dict[str, Any]:
    """Every reference figure per genre on the real grooves of ``split`` (a JSON-ready dict).

    ``{"split", "floor_split", "seconds", "definitions", "genres": {genre: figures}}``; see
    :func:`genre_figures`. The Frechet-style floor compares ``floor_split`` with ``split``
    (skipped when they are the same or ``floor_split`` is None). Genres with fewer than 3 beat
    files, 100 beat bars or 2 drummers are marked ``"trusted": false``. ``cache`` (split ->
    :func:`load_grooves` result) is filled and reused, so a caller that also needs the
    grooves (e.g. the windows for a Frechet-style distance) reads every file once.
    """
    started = time.time()
    cache = cache if cache is not None else {}
    genres = preset_genres() if genres is None else genres

    def grooves(name: str) -> dict[str, GenreGrooves]:
        if name not in cache:
            cache[name] = load_grooves(data_dir, name, genres)
        return cache[name]

    mine = grooves(split)
    other = grooves(floor_split) if floor_split and floor_split != split else None
    figures = {}
    for genre in genres:
        figures[genre] = genre_figures(mine[genre], other[genre] if other else None)
        log.info("%s %s: %s", split, genre, figures[genre]["counts"])
    return _rounded({"split": split, "floor_split": floor_split if other else None,
                     "seconds": time.time() - started, "definitions": DEFINITIONS, "genres": figures})


def write_real_reference(data_dir: str | Path, path: str | Path, splits: Sequence[str] = ("validation", "train"),
                         genres: Sequence[str] | None = None) -> dict[str, Any]:
    """Compute :func:`real_reference` for each of ``splits`` (each split read once; the train
    split also gives the validation figures their Frechet-style floor) and write
    ``{split: reference}`` as JSON to ``path``; returns the dict."""
    cache: dict[str, dict[str, GenreGrooves]] = {}
    out = {s: real_reference(data_dir, s, genres=genres, cache=cache) for s in splits}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(out, indent=1) + "\n")
    log.info("wrote %s", path)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Real-groove reference figures per genre, as JSON.")
    parser.add_argument("data", help="Groove MIDI Dataset folder (with info.csv)")
    parser.add_argument("out", help="JSON file to write")
    parser.add_argument("--splits", nargs="+", default=["validation", "train"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_real_reference(args.data, args.out, args.splits)


if __name__ == "__main__":
    main()
