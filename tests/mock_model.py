"""Stand-in models for fast, exact tests (never used outside tests).

:class:`MockDrumModel` has the real model's interface (``config``, ``new_cache``, ``forward`` with a
cache) and plays one deterministic groove through the real tokenizer, constraints and engine: kick
on 1 and 3, snare on 2 and 4, closed hats on every 8th. :class:`RandomDrumModel` gives seeded random
logits, to check that constraints hold whatever the model wants.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from drumgen.tokenizer import STEPS_PER_BEAT, DrumTokenizer

KICK, SNARE, HAT = 36, 38, 42
KICK_STEPS = (0, 2 * STEPS_PER_BEAT)
SNARE_STEPS = (STEPS_PER_BEAT, 3 * STEPS_PER_BEAT)
HAT_STEPS = tuple(range(0, 4 * STEPS_PER_BEAT, STEPS_PER_BEAT // 2))
VELOCITY = {KICK: 100, SNARE: 110, HAT: 80}
CONFIDENCE = 60.0  # logit of the groove's next token over every other token: sampling always takes it


@dataclass
class MockConfig:
    vocab_size: int
    block_size: int = 1024


class MockCache:
    """Each row's tokens so far (the mock needs the context, not keys and values)."""

    def __init__(self, batch: int) -> None:
        self.rows: list[list[int]] = [[] for _ in range(batch)]

    @property
    def length(self) -> int:
        return max((len(r) for r in self.rows), default=0)

    def keep_rows(self, rows: list[int]) -> None:
        self.rows = [self.rows[r] for r in rows]

    def copy_row_from(self, other: MockCache, row: int) -> None:
        self.rows[row] = list(other.rows[0])


def groove_bar_tokens(tok: DrumTokenizer) -> list[int]:
    """The tokens of the mock's bar after ``Bar BarKind``: positions rising, voices in pitch order."""
    from drumgen.constraints import vocabulary

    vocab = vocabulary(tok)
    hits: dict[int, list[int]] = {}
    for pitch, steps in ((KICK, KICK_STEPS), (SNARE, SNARE_STEPS), (HAT, HAT_STEPS)):
        for step in steps:
            hits.setdefault(step, []).append(pitch)
    out: list[int] = []
    for step in sorted(hits):
        out.append(tok.ids.position[step])
        out += [vocab.hit_token(vocab.voice_of_pitch[p], VELOCITY[p]) for p in sorted(hits[step])]
    return out


class MockDrumModel(nn.Module):
    """Plays the same one-bar groove in every bar, whatever the conditioning."""

    def __init__(self, tok: DrumTokenizer, block_size: int = 1024) -> None:
        super().__init__()
        self.config = MockConfig(len(tok), block_size)
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the module a device, as the real one has
        self.bar = tok.ids.bar
        self.kinds = set(tok.ids.bar_kind.values())
        self.groove = groove_bar_tokens(tok)

    def new_cache(self, batch: int) -> MockCache:
        return MockCache(batch)

    def next_token(self, context: list[int]) -> int:
        if self.bar not in context:
            return self.bar
        start = len(context) - context[::-1].index(self.bar)  # just after the last Bar
        after = context[start:]
        if not after:
            return next(iter(sorted(self.kinds)))
        played = after[1:]  # after the BarKind
        return self.groove[len(played)] if len(played) < len(self.groove) else self.bar

    def forward(self, idx: torch.Tensor, cache: MockCache | None = None, last_only: bool = False,
                with_timing: bool = False) -> torch.Tensor | tuple[torch.Tensor, None]:
        rows = idx.tolist()
        if cache is None:
            contexts = [list(r) for r in rows]
        else:
            for r, new in zip(cache.rows, rows, strict=True):
                r.extend(new)
            contexts = cache.rows
        logits = torch.zeros(len(rows), 1, self.config.vocab_size)
        for b, context in enumerate(contexts):
            logits[b, 0, self.next_token(context)] = CONFIDENCE
        return (logits, None) if with_timing else logits  # no timing head: the hand-set feel applies


class RandomDrumModel(MockDrumModel):
    """Seeded random logits at every step: a model that wants anything."""

    def __init__(self, tok: DrumTokenizer, seed: int = 0, scale: float = 3.0) -> None:
        super().__init__(tok)
        self.gen = torch.Generator().manual_seed(seed)
        self.scale = scale

    def forward(self, idx: torch.Tensor, cache: MockCache | None = None, last_only: bool = False,
                with_timing: bool = False) -> torch.Tensor | tuple[torch.Tensor, None]:
        if cache is not None:
            for r, new in zip(cache.rows, idx.tolist(), strict=True):
                r.extend(new)
        logits = self.scale * torch.randn(idx.size(0), 1, self.config.vocab_size, generator=self.gen)
        return (logits, None) if with_timing else logits
