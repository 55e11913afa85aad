"""``python -m drumgen calibrate``: the variation each preset needs so its grooves change from bar to
bar as much as real drummers of its genre do.

For every preset, 16-bar grooves are sampled at a ladder of variations; their bar-to-bar stability
(the published edit-distance measure, humanized as a user gets them) is interpolated to that of the
first 16 bars of the real grooves of the preset's genre (the split's when it has enough of them, else
the train split's).
The result is a suggestion to copy into ``styles/*.toml`` (``[sampling] variation``) after a retrain.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from drumgen.engine import Engine
from drumgen.styles import list_styles
from drumgen.tools.evaluate import GROOVE_BARS, _grooves, stability_figures
from drumgen.tools.reference import genre_figures, load_grooves

log = logging.getLogger(__name__)

LADDER = (0.05, 0.15, 0.3, 0.5, 0.75, 1.0)
GROOVES = 8


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
        log.info("%s: %s", preset.id, out[preset.id])
    return out
