"""The Groove MIDI Dataset as token windows: reading ``info.csv``, quantizing, bar-wise tokens.

Every 4/4 file of a split becomes a :class:`TokenizedFile` (its genre, tempo, beat/fill
kind and one token list per bar). Training draws random N-bar windows from them; a beat
window may end on a fill bar borrowed from a fill played at a close tempo in the same
genre, so the model learns to place a fill where the ``BarKind_fill`` token asks for it.
"""

from __future__ import annotations

import csv
import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path

from drumgen.constants import GENRES, PPQ
from drumgen.midi_io import read_score, score_notes
from drumgen.pattern import Pattern
from drumgen.tokenizer import DrumTokenizer, genre_of, hit_offsets, quantize_with_offsets

log = logging.getLogger(__name__)

INFO_FILENAME = "info.csv"


@dataclass
class TokenizedFile:
    """One performance: conditioning values, the token ids of each bar and, token for token, each
    hit's played offset from its grid step (in 16ths; NaN for tokens that are not hits)."""

    path: str
    genre: str
    bpm: float
    kind: str  # "beat" or "fill"
    drummer: str
    bars: list[list[int]]
    offsets: list[list[float]]


@dataclass
class Window:
    """A training or validation sequence: token ids and, aligned with them, the hits' offsets."""

    ids: list[int]
    offsets: list[float]


def _window(prefix: list[int], bars: list[list[int]], offsets: list[list[float]], limit: int) -> Window:
    ids = prefix + [t for bar in bars for t in bar]
    offs = [math.nan] * len(prefix) + [o for bar in offsets for o in bar]
    return Window(ids[:limit], offs[:limit])


def read_info(data_dir: str | Path, split: str | None = None) -> list[dict[str, str]]:
    """Rows of ``info.csv`` (all, or those of one ``split``)."""
    info = Path(data_dir) / INFO_FILENAME
    if not info.is_file():
        raise FileNotFoundError(f"{info} not found: --data must be a Groove MIDI Dataset folder with info.csv")
    with info.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r for r in rows if split is None or r["split"] == split]


def load_pattern(path: str | Path, bpm: float) -> Pattern:
    """A dataset MIDI file as a Pattern at ``bpm`` (ticks rescaled to 480 PPQ), all bars kept."""
    notes = score_notes(read_score(path))
    last = max((n.onset for n in notes), default=0)
    # a hit a hair before the next bar line belongs to that bar: keep room for it
    bars = max(1, math.ceil((last + PPQ // 8) / (4 * PPQ)))
    return Pattern(notes=notes, tempo=bpm, bars=bars)


def tokenize_split(data_dir: str | Path, split: str, tokenizer: DrumTokenizer) -> list[TokenizedFile]:
    """Tokenize every 4/4 file of ``split`` whose genre the tokenizer knows."""
    out: list[TokenizedFile] = []
    for row in read_info(data_dir, split):
        genre = genre_of(row["style"])
        if row["time_signature"] != "4-4" or genre not in GENRES:
            continue
        bpm = float(row["bpm"])
        pattern, played = quantize_with_offsets(load_pattern(Path(data_dir) / row["midi_filename"], bpm))
        kind = row["beat_type"]
        fills = set(range(pattern.bars)) if kind == "fill" else set()
        bars = tokenizer.encode_bars(pattern, fills)
        offsets = hit_offsets(tokenizer, bars, played)
        # trim empty lead-in/out bars (count-ins, ring-outs): two tokens = Bar BarKind + nothing
        while len(bars) > 1 and len(bars[-1]) <= 2:
            bars.pop()
            offsets.pop()
        while len(bars) > 1 and len(bars[0]) <= 2:
            bars.pop(0)
            offsets.pop(0)
        out.append(TokenizedFile(row["midi_filename"], genre, bpm, kind, row["drummer"], bars, offsets))
    log.info("tokenized %d %s files (%d bars)", len(out), split, sum(len(f.bars) for f in out))
    return out


class WindowSampler:
    """Random N-bar training windows, each ``prefix + bars`` cut to ``block_size + 1`` tokens.

    Defaults: windows of 2 to 8 bars; a beat window ends on a borrowed fill bar with
    probability ``fill_prob`` = 0.15; the tempo bin is jittered by up to +-4 % BPM.
    """

    def __init__(self, files: list[TokenizedFile], tokenizer: DrumTokenizer, block_size: int,
                 min_bars: int = 2, max_bars: int = 8, fill_prob: float = 0.15, tempo_jitter: float = 0.04,
                 seed: int = 0) -> None:
        self.files = files
        self.tok = tokenizer
        self.block_size = block_size
        self.min_bars, self.max_bars = min_bars, max_bars
        self.fill_prob = fill_prob
        self.tempo_jitter = tempo_jitter
        self.rng = random.Random(seed)
        self.fills_by_genre: dict[str, list[TokenizedFile]] = {}
        for f in files:
            if f.kind == "fill":
                self.fills_by_genre.setdefault(f.genre, []).append(f)
        # weight files by their number of bars so every bar is equally likely to be drawn
        self.weights = [len(f.bars) for f in files]

    def window(self, n: int | None = None) -> Window:
        """One window of ``n`` bars (random from ``min_bars``-``max_bars`` when None)."""
        f = self.rng.choices(self.files, weights=self.weights)[0]
        n = n or self.rng.randint(self.min_bars, self.max_bars)
        start = self.rng.randint(0, max(0, len(f.bars) - n))
        bars, offsets = list(f.bars[start:start + n]), list(f.offsets[start:start + n])
        if f.kind == "beat" and len(bars) > 1 and self.rng.random() < self.fill_prob:
            fill = self._borrow_fill(f)
            if fill is not None:
                bars[-1], offsets[-1] = fill.bars[-1], fill.offsets[-1]
        bpm = f.bpm * (1 + self.rng.uniform(-self.tempo_jitter, self.tempo_jitter))
        return _window(self.tok.prefix(f.genre, bpm), bars, offsets, self.block_size + 1)

    def _borrow_fill(self, beat: TokenizedFile) -> TokenizedFile | None:
        """A fill in the same genre at a close tempo (same drummer preferred); its last bar is used."""
        pool = [f for f in self.fills_by_genre.get(beat.genre, []) if abs(f.bpm - beat.bpm) <= 0.15 * beat.bpm]
        if not pool:
            return None
        same = [f for f in pool if f.drummer == beat.drummer]
        return self.rng.choice(same or pool)

    def batch(self, batch_size: int) -> list[Window]:
        """Windows of one bar count (less padding in a batch)."""
        n = self.rng.randint(self.min_bars, self.max_bars)
        return [self.window(n) for _ in range(batch_size)]


def contiguous_windows(files: list[TokenizedFile], tokenizer: DrumTokenizer, bars_per_window: int,
                       block_size: int) -> list[Window]:
    """Every file cut into consecutive windows of ``bars_per_window`` bars (for validation NLL)."""
    out = []
    for f in files:
        for start in range(0, len(f.bars), bars_per_window):
            end = start + bars_per_window
            out.append(_window(tokenizer.prefix(f.genre, f.bpm), f.bars[start:end], f.offsets[start:end],
                               block_size + 1))
    return out
