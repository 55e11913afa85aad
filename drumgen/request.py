"""What a user asks for, and the same request checked once and filled from the style preset."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from drumgen.constants import DEFAULT_SAMPLE_RATE, MAX_SEED
from drumgen.drum_maps import DEFAULT_DRUM_MAP, DrumMap, get_drum_map, list_drum_maps
from drumgen.generate import fill_bar_set
from drumgen.limits import (
    BARS,
    COUNT,
    FILL_EVERY,
    HUMANIZE,
    KIT,
    SAMPLE_RATE,
    SEED,
    SWING,
    TEMPO,
    VARIATION,
    check_bool,
    shown,
)
from drumgen.sampling import SamplingSettings
from drumgen.styles import StylePreset, StyleRegistry

RANDOM_SEEDS = 2**31  # a random seed is drawn below this (short enough to type back in)


@dataclass(frozen=True)
class GenerateRequest:
    """What a user asks for; ``None`` means "the style preset's value".

    Defaults: 4 bars, the preset's tempo, a random seed, one variation, the preset's sampling
    (temperature, top-k, top-p) and variation, full humanization (1.0), the preset's swing, kit and
    fill interval, General MIDI notes in one track, audio at 44100 Hz. Ranges: :mod:`drumgen.limits`.
    """

    style: str
    bars: int = 4
    tempo: float | None = None
    seed: int | None = None
    count: int = 1
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    humanize: float = 1.0
    variation: float | None = None
    swing: float | None = None
    kit: str | None = None
    fill_every: int | None = None
    drum_map: str = DEFAULT_DRUM_MAP
    split_tracks: bool = False
    audio: bool = True
    sample_rate: int = DEFAULT_SAMPLE_RATE


@dataclass(frozen=True)
class ResolvedRequest:
    """A request with every value checked and filled in; the stages after :func:`resolve_request`
    trust these values and check nothing again."""

    preset: StylePreset
    bars: int
    tempo: float
    seed: int
    count: int
    sampling: SamplingSettings
    humanize: float
    variation: float
    swing: float | None  # None: the learned feel's own swing
    kit: str
    fill_every: int
    drum_map: DrumMap
    split_tracks: bool
    audio: bool
    sample_rate: int

    @property
    def seeds(self) -> list[int]:
        """Variation ``i`` uses seed ``seed + i`` (wrapping below 2^63)."""
        return [(self.seed + i) % (MAX_SEED + 1) for i in range(self.count)]

    @property
    def fill_bars(self) -> frozenset[int]:
        return frozenset(fill_bar_set(self.bars, self.fill_every))

    def settings(self) -> dict[str, Any]:
        """The controls behind a groove, as its summary and MIDI recipe show them."""
        return {
            "temperature": self.sampling.temperature, "top_k": self.sampling.top_k, "top_p": self.sampling.top_p,
            "humanize": self.humanize, "variation": self.variation, "swing": self.swing, "kit": self.kit,
            "fill_every": self.fill_every, "drum_map": self.drum_map.id, "split_tracks": self.split_tracks,
        }


def resolve_drum_map(name: str | None) -> DrumMap:
    """The drum map ``name`` names (None or "" = General MIDI); ``ValueError`` lists the maps."""
    try:
        return get_drum_map(name or DEFAULT_DRUM_MAP)
    except ValueError:
        ids = ", ".join(m.id for m in list_drum_maps())
        raise ValueError(f"drum_map must be one of {ids}, got {shown(name)}") from None


def resolve_request(req: GenerateRequest, styles: StyleRegistry) -> ResolvedRequest:
    """Check every field once and fill the ``None`` ones from the preset; ``ValueError`` names the field."""
    preset = styles.get(req.style)
    seed = secrets.randbelow(RANDOM_SEEDS) if req.seed is None else SEED.check(req.seed)
    sampling = SamplingSettings(
        preset.temperature if req.temperature is None else req.temperature,
        preset.top_k if req.top_k is None else req.top_k,
        preset.top_p if req.top_p is None else req.top_p,
    )
    return ResolvedRequest(
        preset=preset,
        bars=BARS.check(req.bars),
        tempo=preset.default_tempo if req.tempo is None else TEMPO.check(req.tempo),
        seed=seed,
        count=COUNT.check(req.count),
        sampling=sampling,
        humanize=HUMANIZE.check(req.humanize),
        variation=preset.variation if req.variation is None else VARIATION.check(req.variation),
        swing=preset.humanize.swing if req.swing is None else SWING.check(req.swing),
        kit=preset.kit if req.kit in (None, "") else KIT.check(req.kit),
        fill_every=preset.fill_every if req.fill_every is None else FILL_EVERY.check(req.fill_every),
        drum_map=resolve_drum_map(req.drum_map),
        split_tracks=check_bool("split_tracks", req.split_tracks),
        audio=check_bool("audio", req.audio),
        sample_rate=SAMPLE_RATE.check(req.sample_rate),
    )
