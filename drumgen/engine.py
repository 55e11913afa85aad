"""The engine: one request, end to end, as stages with plain inputs and outputs.

An :class:`Engine` holds what every request needs (the model, its tokenizer and grammar, the style
registry), is built once per process, and is passed to the CLI, the app and the tools::

    request -> resolve -> sample (quantized patterns) -> finish (feel, MIDI bytes, summary) -> render

:meth:`Engine.generate` runs them all. An uploaded groove enters at :meth:`Engine.finish` (to be
humanized) or as a prompt or fixed hits to :meth:`Engine.sample`.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drumgen import __version__
from drumgen.audio import AudioUnavailableError, render_audio, write_audio
from drumgen.constants import DEFAULT_SAMPLE_RATE, PPQ
from drumgen.constraints import (
    BarHit,
    Constraint,
    FillBars,
    FixedHits,
    LoopLean,
    RequiredHit,
    SampleState,
    Vocabulary,
    grammar_for,
    vocabulary,
)
from drumgen.drum_maps import DEFAULT_DRUM_MAP
from drumgen.generate import HEAD_TOKENS, MAX_SAMPLES, sample_tokens
from drumgen.humanize import LearnedTiming, humanize, measure_feel
from drumgen.midi_io import pattern_filename, pattern_to_midi_bytes
from drumgen.model import DrumPatternTransformer
from drumgen.model_loader import load_bundle
from drumgen.pattern import Pattern
from drumgen.preview import loop_frames, make_preview
from drumgen.request import GenerateRequest, ResolvedRequest, resolve_request
from drumgen.rules import half_time_factor, stretch, stretch_map, trap_hat_line
from drumgen.styles import StylePreset, StyleRegistry, shared_checkpoint
from drumgen.tokenizer import STEPS_PER_BEAT, TICKS_PER_STEP, DrumTokenizer
from drumgen.voices import VOICE_PITCH

log = logging.getLogger(__name__)

HUMANIZE_SEED_SALT = 0x5EED  # humanization draws from seed ^ salt, apart from the model's draws
KICK, SNARE, CRASH = VOICE_PITCH["kick"], VOICE_PITCH["snare"], VOICE_PITCH["crash"]
LANDING_CRASH_VELOCITY = 80  # the downbeat after a fill: a crash at least this loud
OPENING_KICK_VELOCITY = 48  # every groove opens with a kick at least this loud
BACKBEAT_VELOCITY = 64  # a backbeat style's first bar: snare at least this loud on beats 2 and 4
BACKBEAT_STEPS = (STEPS_PER_BEAT, 3 * STEPS_PER_BEAT)


@dataclass
class Sampled:
    """One variation as the model played it: the quantized pattern (at the output's bars and tempo),
    its new tokens, its seed and the learned timing of its hits."""

    pattern: Pattern
    tokens: list[int]
    seed: int
    timing: LearnedTiming = field(default_factory=dict)
    velocities: dict[tuple[int, int], float] = field(default_factory=dict)  # expected, for an upload's hits
    made: bool = True  # the model made the hits (False: a user's own, kept as they are)


@dataclass
class Groove:
    """One finished variation: the humanized pattern, its MIDI bytes, audio and a summary."""

    pattern: Pattern
    quantized: Pattern
    midi: bytes
    filename: str
    seed: int
    summary: dict[str, Any]
    audio: np.ndarray | None = None
    sample_rate: int = DEFAULT_SAMPLE_RATE
    audio_error: str | None = None
    notices: list[str] = field(default_factory=list)


def learned_timing(state: SampleState, vocab: Vocabulary, factor: int = 1,
                   where: dict[tuple[int, int], int] | None = None) -> LearnedTiming:
    """A sample's learned timing as ``(onset, pitch) -> (mean, std)`` in output ticks: the timing head
    speaks in 16ths of the generated grid, which a half-time stretch (``factor``, ``where``) widens."""
    ticks = PPQ // 4 * factor
    out = {}
    for (bar, step, voice), (mean, log_std) in state.timing.items():
        key = (bar * 4 * PPQ + step * TICKS_PER_STEP, vocab.pitches[voice])
        if where is not None:
            if key not in where:
                continue
            key = (where[key], key[1])
        out[key] = (mean * ticks, math.exp(log_std) * ticks)
    return out


class Engine:
    """The model, its tokenizer and grammar, and the style registry, with the stages of a request."""

    def __init__(self, model: DrumPatternTransformer, tokenizer: DrumTokenizer, metadata: dict[str, Any],
                 checkpoint: Path, styles: StyleRegistry | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.grammar = grammar_for(tokenizer)
        self.metadata = metadata
        self.checkpoint = Path(checkpoint)
        self.styles = styles or StyleRegistry()
        values = tokenizer.velocity_values
        self.velocity_bin = values[1] - values[0] if len(values) > 1 else 0  # how far tokens round a velocity

    @classmethod
    def load(cls, checkpoint: str | Path | None = None, device: str | None = None,
             styles_dir: str | Path | None = None) -> Engine:
        """The engine of ``checkpoint`` (default: :func:`drumgen.styles.shared_checkpoint`), on CUDA when
        present. ``FileNotFoundError`` / :class:`~drumgen.model_loader.CheckpointError` say what is wrong."""
        path = Path(checkpoint) if checkpoint else shared_checkpoint()
        model, tokenizer, metadata = load_bundle(str(path), device)
        return cls(model, tokenizer, metadata, path, StyleRegistry(styles_dir))

    # --- stage 1 ------------------------------------------------------------------------------------
    def resolve(self, request: GenerateRequest) -> ResolvedRequest:
        """Check the request once and fill it from its preset (``ValueError`` names a bad field)."""
        return resolve_request(request, self.styles)

    # --- stage 2 ------------------------------------------------------------------------------------
    def bundle_for(self, preset: StylePreset) -> tuple[DrumPatternTransformer, DrumTokenizer, dict[str, Any]]:
        """The model a preset plays on: its own checkpoint when it names one, else the engine's."""
        if preset.checkpoint:
            return load_bundle(str(self.styles.model_path(preset.id)))
        return self.model, self.tokenizer, self.metadata

    def constraints(self, plan: ResolvedRequest, gen_bars: int, gen_fills: set[int], opening: bool = True,
                    phrase: Sequence[Sequence[BarHit]] | None = None) -> list[Constraint]:
        """The constraints every sample of ``plan`` follows after the grammar: fill bars, a crash on the
        downbeat after each fill, with ``opening`` a kick on the first downbeat and a backbeat style's
        snare on 2 and 4 (in the first bar, or in every beat bar of a programmed style), and the loop
        lean toward the groove's own first phrase (or ``phrase``, e.g. a prompt's last bars)."""
        vocab = self.grammar.vocab
        rules: list[Constraint] = [FillBars(vocab, gen_fills)]
        # a fill builds into the next downbeat: the bar after it lands on a crash
        required = {bar + 1: [RequiredHit(0, CRASH, vocab.hits_at_least(CRASH, LANDING_CRASH_VELOCITY))]
                    for bar in gen_fills}
        if opening:
            required.setdefault(0, []).append(RequiredHit(0, KICK, vocab.hits_at_least(KICK, OPENING_KICK_VELOCITY)))
            snare = vocab.hits_at_least(SNARE, BACKBEAT_VELOCITY)
            backbeat_bars = {"none": [], "first_bar": [0], "every_bar": range(gen_bars)}[plan.preset.backbeat]
            for bar in backbeat_bars:
                if bar not in gen_fills:
                    required.setdefault(bar, []).extend(RequiredHit(step, SNARE, snare) for step in BACKBEAT_STEPS)
        if required:
            rules.append(FixedHits(vocab, required))
        if plan.variation < 1.0 or gen_fills:  # with fills, the bars after them lean back even at 100 %
            rules.append(LoopLean(vocab, plan.variation, gen_fills, phrase=phrase, fixed=required))
        return rules

    def sample(self, plan: ResolvedRequest, extra: Sequence[Constraint] = (), prompt: list[int] | None = None,
               phrase: Sequence[Sequence[BarHit]] | None = None, opening: bool = True,
               half_time: bool = True) -> list[Sampled]:
        """Quantized patterns from the model, one per variation of ``plan``.

        A half-time preset is conditioned on a fraction of the tempo and each generated bar spread
        over several output bars (unless ``half_time`` is False: an upload's bars are bars).
        ``extra`` constraints (e.g. fixed hits) apply after the plan's own; ``prompt`` (a conditioned
        token sequence) is continued instead of starting fresh, and ``phrase`` is what the loop lean
        follows; ``opening`` asks for the first bar's kick (and backbeat).
        """
        preset = plan.preset
        model, tokenizer, _ = self.bundle_for(preset)
        factor = half_time_factor(preset) if half_time else 1
        gen_bars = math.ceil(plan.bars / factor)
        gen_fills = {b // factor for b in plan.fill_bars}
        prefix = prompt or tokenizer.prefix(preset.genre, plan.tempo / factor)
        rules = [*self.constraints(plan, gen_bars, gen_fills, opening, phrase), *extra]
        # the same head with the genre this one is taken for (the tempo bin the prefix has)
        contrast = ([prefix[0], tokenizer.ids.genre[preset.contrast_genre], *prefix[2:HEAD_TOKENS]]
                    if preset.contrast_genre and preset.contrast > 0 else None)
        guide = {"contrast": contrast, "contrast_weight": preset.contrast}
        seeds = plan.seeds
        states = []
        for start in range(0, len(seeds), MAX_SAMPLES):
            chunk = seeds[start:start + MAX_SAMPLES]
            try:
                states += sample_tokens(model, tokenizer, prefix, gen_bars, plan.sampling, chunk, rules, **guide)
            except torch.cuda.OutOfMemoryError:
                log.warning("CUDA out of memory while generating; retrying on the CPU")
                torch.cuda.empty_cache()
                model = model.to("cpu")
                states += sample_tokens(model, tokenizer, prefix, gen_bars, plan.sampling, chunk, rules, **guide)
        out = []
        vocab = vocabulary(tokenizer)
        for state, seed in zip(states, seeds, strict=True):
            pattern = tokenizer.decode(state.tokens, bars=gen_bars, tempo=plan.tempo)
            if factor > 1:
                where = stretch_map(pattern, factor, plan.bars)
                timing = learned_timing(state, vocab, factor, where)
                pattern = stretch(pattern, factor, plan.bars, plan.tempo)
            else:
                timing = learned_timing(state, vocab)
            if preset.hats == "trap":
                pattern = trap_hat_line(pattern, seed)
            out.append(Sampled(pattern, state.tokens, seed, timing))
        return out

    # --- stage 3 ------------------------------------------------------------------------------------
    def model_version(self, preset: StylePreset) -> str:
        return f"{preset.model_id}/drumgen-{self.bundle_for(preset)[2].get('version', __version__)}"

    def recipe(self, plan: ResolvedRequest, seed: int) -> dict[str, str]:
        """The generation recipe written into the MIDI file (as text events)."""
        settings = {k: "learned" if v is None else str(v) for k, v in plan.settings().items()}
        return {"style": plan.preset.id, "seed": str(seed), "tempo": f"{plan.tempo:g}", "bars": str(plan.bars),
                "model": self.model_version(plan.preset), **settings}

    def finish(self, plan: ResolvedRequest, sampled: Sequence[Sampled]) -> list[Groove]:
        """Each quantized pattern with the style's feel, its recipe, MIDI bytes and measured feel."""
        preset = plan.preset
        grooves = []
        for one in sampled:
            quantized = replace(one.pattern, meta=self.recipe(plan, one.seed))
            pattern = humanize(quantized, preset.humanize, amount=plan.humanize, seed=one.seed ^ HUMANIZE_SEED_SALT,
                               swing=plan.swing, fill_bars=plan.fill_bars, variation=plan.variation,
                               learned=one.timing, velocity_bin=self.velocity_bin if one.made else 0,
                               learned_velocity=one.velocities, add_notes=one.made)
            grooves.append(self.groove(plan, one.seed, quantized, pattern))
        return grooves

    def groove(self, plan: ResolvedRequest, seed: int, quantized: Pattern, pattern: Pattern) -> Groove:
        """A finished ``pattern`` (of ``plan``'s bars) as a :class:`Groove`: validated (the one check),
        recipe, file name, MIDI bytes and the feel measured on it."""
        recipe = self.recipe(plan, seed)
        pattern = replace(pattern, bars=plan.bars, meta=recipe).validate()
        target = None if plan.drum_map.id == DEFAULT_DRUM_MAP else plan.drum_map.id
        filename = pattern_filename(plan.preset.id, plan.tempo, plan.bars, seed, target=target)
        summary = {
            "style": plan.preset.id, "style_name": plan.preset.name, "tempo": plan.tempo, "bars": plan.bars,
            "seed": seed, "settings": plan.settings(), "model_version": recipe["model"], "file": filename,
            "notes": len(pattern.notes), "feel": measure_feel(pattern),
        }
        midi = pattern_to_midi_bytes(pattern, check=False, drum_map=plan.drum_map, split_tracks=plan.split_tracks)
        return Groove(pattern, quantized, midi, filename, seed, summary, sample_rate=plan.sample_rate)

    # --- stage 4 ------------------------------------------------------------------------------------
    def render(self, plan: ResolvedRequest, grooves: Sequence[Groove]) -> None:
        """Add audio to each groove; audio that cannot be made leaves a notice (the MIDI is kept)."""
        for groove in grooves:
            try:
                groove.audio = render_audio(groove.pattern, kit=plan.kit, sample_rate=plan.sample_rate)
            except (AudioUnavailableError, FileNotFoundError, OSError, RuntimeError) as exc:
                groove.audio_error = f"audio could not be rendered ({exc}); the MIDI file is fine"
                groove.notices.append(groove.audio_error)
                log.warning("%s", groove.audio_error)

    def preview(self, groove: Groove) -> bytes | None:
        """The groove's browser preview (a small MP3 that loops seamlessly at one loudness; see
        :mod:`drumgen.preview`), or None when it has no audio."""
        if groove.audio is None:
            return None
        return make_preview(groove.audio, groove.sample_rate, loop_frames(groove.pattern, groove.sample_rate))

    def generate(self, request: GenerateRequest) -> list[Groove]:
        """``request.count`` humanized grooves with MIDI bytes and (unless ``audio=False``) audio.

        Raises ``ValueError`` naming the field for bad input.
        """
        plan = self.resolve(request)
        grooves = self.finish(plan, self.sample(plan))
        if plan.audio:
            self.render(plan, grooves)
        return grooves


def write_groove(groove: Groove, out_dir: str | Path, audio_format: str = "ogg") -> dict[str, str]:
    """Write a groove's ``.mid`` (and audio when it has some) into ``out_dir``; return the paths.

    An audio file that cannot be written (disk full, read-only) is left out with a notice in
    ``groove.audio_error``; the MIDI file is kept. ``OSError`` when the MIDI cannot be written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"midi": str(out / groove.filename)}
    (out / groove.filename).write_bytes(groove.midi)
    if groove.audio is not None:
        audio_path = out / (Path(groove.filename).stem + f".{audio_format}")
        try:
            write_audio(groove.audio, audio_path, groove.sample_rate)
        except (OSError, RuntimeError) as exc:  # disk full / read-only (soundfile's errors are RuntimeErrors)
            with contextlib.suppress(OSError):  # a partial file, where the file system still lets us
                audio_path.unlink(missing_ok=True)
            groove.audio_error = f"audio could not be written ({exc}); the MIDI file is fine"
            groove.notices.append(groove.audio_error)
            log.warning("%s", groove.audio_error)
        else:
            paths["audio"] = str(audio_path)
    return paths
