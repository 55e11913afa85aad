"""Drum tokens: a MidiTok REMI tokenizer for drums plus conditioning and hit tokens.

A sequence is ``BOS Genre_x Tempo_y`` then, for every bar, ``Bar_None BarKind_beat|fill``
followed by the bar's hits as ``Position_p (Hit_d_v)+``. Positions resolve 24 steps per
beat (16ths, 32nds and triplets all land on it); hits are reduced to the nine canonical
voices; there are no duration tokens (drums are one-shots). ``Hit_d_v`` is MidiTok's
``PitchDrum_d Velocity_v`` pair as one token: a hit costs one decoding step, not two
(a third fewer steps per pattern). Encoding runs REMI and merges each pair; decoding
splits them and runs REMI's decoder.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from miditok import REMI, TokenizerConfig, TokSequence
from symusic import Note as SymNote
from symusic import Score, Track

from drumgen.constants import GENRES, PPQ, RETRAIN_HINT
from drumgen.pattern import Note, Pattern, clamp_velocity
from drumgen.voices import CANONICAL_PITCHES, canonical_pitch

log = logging.getLogger(__name__)

STEPS_PER_BEAT = 24  # grid of the Position tokens: holds 16ths (6), 32nds (3) and triplets (8)
TICKS_PER_STEP = PPQ // STEPS_PER_BEAT
NUM_VELOCITY_BINS = 16  # bins of 8: five of them (<= 40) for ghost notes
DRUM_PITCH_RANGE = (min(CANONICAL_PITCHES), max(CANONICAL_PITCHES) + 1)
# Upper edges (BPM) of the tempo bins; the last bin is open-ended.
TEMPO_BIN_EDGES: tuple[float, ...] = (70, 80, 90, 100, 110, 120, 135, 150, 170, 200)
BAR_KINDS: tuple[str, ...] = ("beat", "fill")
TOKENIZER_FILENAME = "tokenizer.json"
TOKEN_LAYOUT = "hits"  # saved with the config: "hits" = PitchDrum+Velocity merged into Hit tokens


def genre_of(style_label: str) -> str:
    """The dataset's genre label: the part of ``style`` before ``/`` or ``-``."""
    return style_label.replace("-", "/").split("/")[0].strip().lower()


def tempo_bin(bpm: float) -> int:
    """Index of the tempo bin that holds ``bpm``."""
    for i, edge in enumerate(TEMPO_BIN_EDGES):
        if bpm < edge:
            return i
    return len(TEMPO_BIN_EDGES)


@dataclass(frozen=True)
class TokenIds:
    """Ids of the token types the grammar needs, looked up once."""

    pad: int
    bos: int
    eos: int
    bar: int
    genre: dict[str, int]
    tempo: list[int]
    bar_kind: dict[str, int]
    position: list[int]  # index = step within the bar
    hit: dict[int, list[int]]  # canonical GM pitch -> its Hit ids, index = velocity bin


class DrumTokenizer:
    """MidiTok REMI for drums with genre, tempo-bin and beat/fill conditioning tokens."""

    def __init__(self, remi: REMI | None = None) -> None:
        if remi is None:
            remi = REMI(default_config())
        self.remi = remi
        self.velocity_values = sorted(int(t.split("_")[1]) for t in remi.vocab if t.startswith("Velocity_"))
        for token in conditioning_tokens() + hit_tokens(self.velocity_values):
            if token not in self.remi.vocab:
                self.remi.add_to_vocab(token)
        self.vocab: dict[str, int] = dict(self.remi.vocab)
        self.id_to_token: list[str] = [""] * len(self.vocab)
        for token, idx in self.vocab.items():
            self.id_to_token[idx] = token
        v = self.vocab
        self.ids = TokenIds(
            pad=v["PAD_None"],
            bos=v["BOS_None"],
            eos=v["EOS_None"],
            bar=v["Bar_None"],
            genre={g: v[f"Genre_{g}"] for g in GENRES},
            tempo=[v[f"Tempo_{i}"] for i in range(len(TEMPO_BIN_EDGES) + 1)],
            bar_kind={k: v[f"BarKind_{k}"] for k in BAR_KINDS},
            position=[v[f"Position_{p}"] for p in range(STEPS_PER_BEAT * 4)],
            hit={p: [v[hit_token(p, vel)] for vel in self.velocity_values] for p in CANONICAL_PITCHES},
        )

    def __len__(self) -> int:
        return len(self.vocab)

    # --- conditioning ---------------------------------------------------------------
    def prefix(self, genre: str, bpm: float) -> list[int]:
        """``BOS Genre Tempo``: the conditioning that starts every sequence."""
        if genre not in self.ids.genre:
            raise ValueError(f"unknown genre {genre!r}; known: {', '.join(GENRES)}")
        return [self.ids.bos, self.ids.genre[genre], self.ids.tempo[tempo_bin(bpm)]]

    # --- encoding -------------------------------------------------------------------
    def encode_bars(self, pattern: Pattern, fill_bars: set[int] | None = None) -> list[list[int]]:
        """Token ids of each bar (``Bar BarKind hits...``) of a 4/4 pattern quantized to the grid."""
        if pattern.time_signature != (4, 4):
            raise ValueError("the tokenizer handles 4/4 patterns only")
        fill_bars = fill_bars or set()
        bars: list[list[int]] = []
        if pattern.notes:
            seq = self.remi.encode(pattern_to_score(pattern))
            seq = seq[0] if isinstance(seq, list) else seq
            ids = [self.vocab[t] for t in merge_hits(seq.tokens)]
            for token_id in ids:
                if token_id == self.ids.bar:
                    bars.append([])
                elif bars:
                    bars[-1].append(token_id)
        while len(bars) < pattern.bars:  # REMI leaves out trailing empty bars
            bars.append([])
        kinds = [self.ids.bar_kind["fill" if b in fill_bars else "beat"] for b in range(pattern.bars)]
        return [[self.ids.bar, kinds[b], *bars[b]] for b in range(pattern.bars)]

    def encode(self, pattern: Pattern, genre: str, fill_bars: set[int] | None = None) -> list[int]:
        """The whole conditioned sequence of a pattern."""
        return self.prefix(genre, pattern.tempo) + [t for bar in self.encode_bars(pattern, fill_bars) for t in bar]

    # --- decoding -------------------------------------------------------------------
    def decode_score(self, ids: list[int]) -> Score:
        """Decode token ids with MidiTok into a symusic Score holding one drum track."""
        keep = split_hits(self.id_to_token[i] for i in ids)
        return self.remi.decode([TokSequence(tokens=keep)], programs=[(0, True)])

    def decode(self, ids: list[int], bars: int, tempo: float) -> Pattern:
        """Decode token ids into a Pattern of ``bars`` bars at ``tempo``."""
        score = self.decode_score(ids)
        return score_to_pattern(score, bars=bars, tempo=tempo)

    # --- persistence ----------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the tokenizer config (MidiTok JSON, conditioning included) to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.remi.save(directory / TOKENIZER_FILENAME, additional_attributes={
            "drumgen": {"genres": list(GENRES), "tempo_bin_edges": list(TEMPO_BIN_EDGES),
                        "bar_kinds": list(BAR_KINDS), "layout": TOKEN_LAYOUT, "vocab_size": len(self)},
        })
        return directory / TOKENIZER_FILENAME

    @classmethod
    def load(cls, path: str | Path) -> DrumTokenizer:
        """Load a tokenizer saved by :meth:`save` (a directory or the JSON file itself)."""
        path = Path(path)
        if path.is_dir():
            path = path / TOKENIZER_FILENAME
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer config not found: {path}")
        try:
            extra = json.loads(path.read_text()).get("drumgen", {})
            tok = cls(REMI(params=path))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"tokenizer config {path} is corrupt: {exc}") from exc
        if not extra:
            raise ValueError(f"tokenizer config {path} was not saved by drumgen (no 'drumgen' section); {RETRAIN_HINT}")
        if extra.get("layout") != TOKEN_LAYOUT:
            raise ValueError(f"tokenizer config {path} uses an older token layout (separate PitchDrum and "
                             f"Velocity tokens); {RETRAIN_HINT}")
        if extra.get("vocab_size") not in (None, len(tok)):
            raise ValueError(f"tokenizer config {path}: vocabulary size {len(tok)} != saved {extra['vocab_size']}")
        return tok


def default_config() -> TokenizerConfig:
    """The drum REMI config: canonical drum pitches, 16 velocity bins, 24 steps a beat, no durations."""
    return TokenizerConfig(
        pitch_range=DRUM_PITCH_RANGE,
        drums_pitch_range=DRUM_PITCH_RANGE,
        beat_res={(0, 4): STEPS_PER_BEAT},
        num_velocities=NUM_VELOCITY_BINS,
        use_velocities=True,
        use_note_duration_programs=[],
        use_time_signatures=False,
        use_tempos=False,
        use_programs=False,
        use_pitchdrum_tokens=True,
        special_tokens=["PAD", "BOS", "EOS"],
    )


def hit_token(pitch: int, velocity: int) -> str:
    return f"Hit_{pitch}_{velocity}"


def hit_tokens(velocity_values: list[int]) -> list[str]:
    """Every voice at every velocity bin, voices in pitch order."""
    return [hit_token(p, v) for p in sorted(CANONICAL_PITCHES) for v in velocity_values]


def merge_hits(remi_tokens: list[str]) -> list[str]:
    """REMI tokens with each ``PitchDrum_d Velocity_v`` pair merged into ``Hit_d_v``."""
    out: list[str] = []
    for token in remi_tokens:
        if token.startswith("Velocity_") and out and out[-1].startswith("PitchDrum_"):
            out[-1] = hit_token(int(out[-1].split("_")[1]), int(token.split("_")[1]))
        else:
            out.append(token)
    return out


def split_hits(tokens) -> list[str]:
    """The REMI tokens of a drumgen sequence: ``Hit_d_v`` split back into ``PitchDrum_d Velocity_v``;
    conditioning and special tokens dropped."""
    out: list[str] = []
    for token in tokens:
        kind, _, value = token.partition("_")
        if kind == "Hit":
            pitch, velocity = value.split("_")
            out += [f"PitchDrum_{pitch}", f"Velocity_{velocity}"]
        elif kind in ("Bar", "Position"):
            out.append(token)
    return out


def conditioning_tokens() -> list[str]:
    return ([f"Genre_{g}" for g in GENRES] + [f"Tempo_{i}" for i in range(len(TEMPO_BIN_EDGES) + 1)]
            + [f"BarKind_{k}" for k in BAR_KINDS])


def grid_steps(onsets: np.ndarray) -> np.ndarray:
    """The grid step (ticks) of each onset: the nearest 16th, or an 8th-note triplet when the onset
    is clearly nearer one (less than half the distance), so human timing does not turn into
    spurious triplets."""
    sixteenth, triplet = PPQ // 4, PPQ // 3
    q16 = np.rint(onsets / sixteenth) * sixteenth
    q3 = np.rint(onsets / triplet) * triplet
    return np.where(np.abs(onsets - q3) < 0.5 * np.abs(onsets - q16), q3, q16)


def quantize_with_offsets(pattern: Pattern) -> tuple[Pattern, dict[tuple[int, int], int]]:
    """Reduce hits to canonical voices and snap them to the token grid; also return, per kept hit
    ``(onset, pitch)``, how many ticks the played hit sat from its grid step (what quantizing throws
    away: the micro-timing the model learns).

    A hit snaps to its :func:`grid_steps` step. Duplicates (same voice, same step) keep the loudest hit.
    """
    best: dict[tuple[int, int], Note] = {}
    offsets: dict[tuple[int, int], int] = {}
    steps = grid_steps(np.array([n.onset for n in pattern.notes], dtype=float))
    for note, step in zip(pattern.notes, steps.tolist(), strict=True):
        pitch = canonical_pitch(note.pitch)
        if pitch is None:
            continue
        onset = int(step)
        if not 0 <= onset < pattern.length_ticks:
            continue
        key = (onset, pitch)
        if key not in best or note.velocity > best[key].velocity:
            best[key] = Note(onset, pitch, note.velocity)
            offsets[key] = note.onset - onset
    return pattern.with_notes(list(best.values())), offsets


def quantize_pattern(pattern: Pattern) -> Pattern:
    """:func:`quantize_with_offsets` without the offsets."""
    return quantize_with_offsets(pattern)[0]


def hit_offsets(tok: DrumTokenizer, bars: list[list[int]], offsets: dict[tuple[int, int], int],
                first_bar: int = 0) -> list[list[float]]:
    """For each token of ``bars`` (from :meth:`DrumTokenizer.encode_bars`, bar ``i`` being bar
    ``first_bar + i`` of the pattern), the played hit's offset from its step in 16ths, NaN for tokens
    that are not hits (or hits without an offset)."""
    position_step = {t: s for s, t in enumerate(tok.ids.position)}
    hit_pitch = {t: p for p, ids in tok.ids.hit.items() for t in ids}
    out = []
    for i, bar in enumerate(bars):
        start, step, row = (first_bar + i) * 4 * PPQ, 0, []
        for token in bar:
            if token in position_step:
                step = position_step[token]
            ticks = offsets.get((start + step * TICKS_PER_STEP, hit_pitch[token])) if token in hit_pitch else None
            row.append(math.nan if ticks is None else ticks / (PPQ // 4))
        out.append(row)
    return out


def pattern_to_score(pattern: Pattern) -> Score:
    """A symusic Score (480 PPQ) with the pattern's notes on one drum track."""
    score = Score(PPQ)
    track = Track(name="Drums", program=0, is_drum=True)
    for n in pattern.notes:
        track.notes.append(SymNote(n.onset, n.duration, n.pitch, n.velocity))
    score.tracks.append(track)
    return score


def score_to_pattern(score: Score, bars: int, tempo: float) -> Pattern:
    """Notes of a Score's drum tracks (rescaled to 480 PPQ) as a Pattern; hits past ``bars`` are dropped."""
    scale = PPQ / score.ticks_per_quarter
    pattern = Pattern(tempo=tempo, bars=bars)
    seen: set[tuple[int, int]] = set()
    notes: list[Note] = []
    for track in score.tracks:
        for sn in track.notes:
            onset = round(sn.time * scale)
            if onset >= pattern.length_ticks or (onset, sn.pitch) in seen:
                continue
            seen.add((onset, sn.pitch))
            notes.append(Note(onset, sn.pitch, clamp_velocity(sn.velocity)))
    return pattern.with_notes(notes)
