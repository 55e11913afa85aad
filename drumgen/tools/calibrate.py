"""``python -m drumgen calibrate``: the variation each preset needs so its grooves change from bar to
bar as much as real drummers of its genre do, and the micro-timing each genre preset needs so its
hits spread around the grid as much as its drummers' do.

For every preset, 16-bar grooves are sampled at a ladder of variations; their bar-to-bar stability
(the published edit-distance measure, humanized as a user gets them) is interpolated to that of the
first 16 bars of the real grooves of the preset's genre (the split's when it has enough of them, else
the train split's).

For the timing, each genre preset's default grooves are sampled once and humanized at a ladder of
``micro_timing_ms`` values; per voice (kick, snare, hat) the spread of the hits around their grid
points is interpolated to that of the genre's train-split performances (always the train split: the
validation split stays a held-out check), and the median over the three voices is the suggestion.
Producer presets keep their own character values.

The results are suggestions to copy into ``styles/*.toml`` (``[sampling] variation``,
``[humanize] micro_timing_ms``) after a retrain.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from drumgen.engine import Engine
from drumgen.request import GenerateRequest
from drumgen.styles import StylePreset, list_styles
from drumgen.tools.evaluate import GROOVE_BARS, _grooves, stability_figures
from drumgen.tools.metrics import timing_stats
from drumgen.tools.reference import GenreGrooves, genre_figures, load_grooves

log = logging.getLogger(__name__)

LADDER = (0.05, 0.15, 0.3, 0.5, 0.75, 1.0)
TIMING_LADDER = (8.0, 12.0, 16.0, 20.0, 24.0)  # micro_timing_ms rungs (12 = the spread as learned)
TIMING_VOICES = ("kick", "snare", "hat")
GROOVES = 8


def _interpolate(target: float, values: list[float], rungs: tuple[float, ...]) -> float:
    """The rung value where ``values`` (measured at ``rungs``) would meet ``target``, linear between
    the rungs that bracket it (clamped to the ladder)."""
    order = np.argsort(values)
    return float(np.interp(target, np.array(values)[order], np.array(rungs)[order]))


def timing_calibration(engine: Engine, preset: StylePreset, train: GenreGrooves, grooves: int,
                       seed: int) -> dict[str, Any]:
    """The ``micro_timing_ms`` at which ``preset``'s hits spread (per voice, ms around their grid
    points) as much as its genre's train-split performances; see the module docstring."""
    real = timing_stats(train.beats_raw)["voices"]
    target = {v: real[v]["std_ms"] for v in TIMING_VOICES if real[v]["std_ms"]}
    plan = engine.resolve(GenerateRequest(style=preset.id, bars=GROOVE_BARS, seed=seed, count=grooves,
                                          audio=False, fill_every=0))
    sampled = engine.sample(plan)  # sampled once: only the feel changes along the ladder
    measured: dict[str, list[float]] = {v: [] for v in target}
    for ms in TIMING_LADDER:
        rung = replace(plan, preset=replace(preset, humanize=replace(preset.humanize, micro_timing_ms=ms)))
        voices = timing_stats([g.pattern for g in engine.finish(rung, sampled)])["voices"]
        for v in target:
            measured[v].append(voices[v]["std_ms"] or 0.0)
    per_voice = {v: round(_interpolate(target[v], measured[v], TIMING_LADDER), 1) for v in target}
    return {"target_ms": {v: round(t, 1) for v, t in target.items()},
            "ladder": {str(ms): {v: round(measured[v][i], 1) for v in target} for i, ms in enumerate(TIMING_LADDER)},
            "per_voice": per_voice,
            "suggested_micro_timing_ms": round(float(np.median(list(per_voice.values()))), 1) if per_voice else None,
            "current_micro_timing_ms": preset.humanize.micro_timing_ms}


def calibrate(data_dir: str | Path, checkpoint: str | Path | None = None, split: str = "validation",
              grooves: int = GROOVES, seed: int = 0) -> dict[str, Any]:
    """Per preset: the real target, the stability measured at each rung of ``LADDER`` and the
    variation that meets the target (linear between the rungs that bracket it)."""
    engine = Engine.load(checkpoint)
    presets = list_styles()
    genres = tuple(dict.fromkeys(p.genre for p in presets))
    real, train = load_grooves(data_dir, split, genres), load_grooves(data_dir, "train", genres)
    out: dict[str, Any] = {}
    for preset in presets:
        figures = genre_figures(real[preset.genre])
        source = split
        if not figures["trusted"]:
            figures, source = genre_figures(train[preset.genre]), "train"
        # a groove is a loop: its drummers' first 16 bars (the published protocol), not the drift of
        # whole performances, are what a 16-bar groove should change as much as
        target = figures["stability"]["edit_first16"] or figures["stability"]["edit"]
        measured = []
        for variation in LADDER:
            humanized, _ = _grooves(engine, preset, GROOVE_BARS, grooves, seed, fill_every=0, variation=variation)
            measured.append(stability_figures(humanized)["edit"])
        values = np.array(measured, dtype=float)
        order = np.argsort(values)
        suggestion = float(np.interp(target, values[order], np.array(LADDER)[order])) if target else None
        out[preset.id] = {"genre": preset.genre, "target": target, "target_split": source,
                          "ladder": dict(zip(map(str, LADDER), measured, strict=True)),
                          "suggested_variation": None if suggestion is None else round(suggestion, 2),
                          "current_variation": preset.variation}
        if preset.kind == "genre" and train[preset.genre].beats_raw:
            out[preset.id]["timing"] = timing_calibration(engine, preset, train[preset.genre], grooves, seed)
        log.info("%s: %s", preset.id, out[preset.id])
    return out
