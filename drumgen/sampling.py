"""Sampling filters as small pure functions on (B, V) logits, and the token grammar.

Order: grammar mask -> temperature -> top-k -> top-p -> draw. Temperature 0 is greedy.
Bad values raise ``ValueError`` naming the value.
"""

from __future__ import annotations

import math

import torch

from drumgen.tokenizer import DrumTokenizer

DEFAULT_TEMPERATURE = 1.0
DEFAULT_TOP_K = 50
DEFAULT_TOP_P = 0.9
GREEDY_BELOW = 1e-6  # temperatures below this sample greedily, as 0 does


def check_sampling(temperature: float, top_k: int, top_p: float) -> None:
    """Raise ``ValueError`` naming the first bad sampling value."""
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
            or not math.isfinite(temperature) or temperature < 0):
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ValueError(f"top_k must be a whole number >= 0 (0 = off), got {top_k!r}")
    if (isinstance(top_p, bool) or not isinstance(top_p, (int, float))
            or not math.isfinite(top_p) or not 0 <= top_p <= 1):
        raise ValueError(f"top_p must be a number from 0 to 1 (1 = off), got {top_p!r}")


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide (B, V) logits by ``temperature`` (> 0)."""
    if temperature <= 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be > 0 here (use greedy for 0), got {temperature!r}")
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits of each row (0 or k >= V keeps all); the rest become -inf."""
    if k < 0:
        raise ValueError(f"top_k must be >= 0, got {k}")
    if k == 0 or k >= logits.size(-1):
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def _outside_nucleus(sorted_probs: torch.Tensor, p: float) -> torch.Tensor:
    """For probabilities sorted best first: True where the better tokens before it already reach
    ``p`` (the best token always stays)."""
    drop = sorted_probs.cumsum(dim=-1) - sorted_probs >= p
    drop[..., 0] = False
    return drop


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of tokens whose probability reaches ``p`` (always at least one)."""
    if not 0 <= p <= 1:
        raise ValueError(f"top_p must be in [0, 1], got {p}")
    if p >= 1:
        return logits
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)  # (B, V)
    drop_sorted = _outside_nucleus(sorted_logits.softmax(dim=-1), p)
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def sample_next(logits: torch.Tensor, temperature: float, top_k: int, top_p: float,
                generators: list[torch.Generator] | None = None) -> torch.Tensor:
    """Draw one token id per row of (B, V) logits: temperature -> top-k -> top-p; 0 = greedy.

    The same filters as :func:`top_k_filter` and :func:`top_p_filter`, fused on the ``k`` best
    tokens (one sort) because this runs once per generated token. Row ``i`` draws from
    ``generators[i]`` alone, so a row's result does not depend on the other rows of the batch
    (a variation is reproducible from its own seed).
    """
    check_sampling(temperature, top_k, top_p)
    if temperature < GREEDY_BELOW:  # 0, or so small that dividing by it would overflow
        return logits.argmax(dim=-1)
    k = top_k if 0 < top_k < logits.size(-1) else logits.size(-1)
    best, order = torch.topk(apply_temperature(logits, temperature), k, dim=-1)  # (B, k), descending
    probs = best.softmax(dim=-1)
    if top_p < 1:
        probs = probs.masked_fill(_outside_nucleus(probs, top_p), 0.0)
    if generators is None:
        u = torch.rand(probs.size(0), device=probs.device)
    else:
        u = torch.cat([torch.rand(1, generator=g, device=probs.device) for g in generators])  # (B,)
    # inverse CDF: the first kept token whose cumulative probability exceeds u
    cdf = probs.cumsum(dim=-1)
    pick = (cdf < u.clamp_min(1e-12)[:, None] * cdf[:, -1:]).sum(dim=-1).clamp(max=k - 1)
    return order.gather(-1, pick[:, None]).squeeze(-1)


class Grammar:
    """A state machine over token types that masks every illegal next token.

    Per bar: ``Bar BarKind (Position Hit+)+`` with positions rising and, at one position,
    drum pitches rising (so no duplicate hit); every bar holds at least one hit (no generated
    bar is silent). After the last requested bar, ``Bar`` ends the sample.
    Past ``max_bar_tokens`` a bar may finish its current hit, then must end.
    """

    AFTER_BAR_KIND, AFTER_POSITION = 0, 1

    def __init__(self, tok: DrumTokenizer, max_bar_tokens: int = 200) -> None:
        self.tok = tok
        self.max_bar_tokens = max_bar_tokens
        ids = tok.ids
        V = len(tok)
        pitches = sorted(ids.hit)
        n_pos, n_pitch = len(ids.position), len(pitches)

        def mask(token_ids: list[int]) -> torch.Tensor:
            m = torch.zeros(V, dtype=torch.bool)
            m[token_ids] = True
            return m

        ends = [ids.bar]  # Bar closes a bar (the last one: the sample); training never saw EOS
        # table rows: 0 after BarKind, 1 after Position, 2 + p * n_pitch + d after a hit of pitch
        # index d at position p
        rows = [mask(ids.position), mask([t for p in pitches for t in ids.hit[p]])]
        for p in range(n_pos):
            for d in range(n_pitch):
                later = ids.position[p + 1:] + [t for q in pitches[d + 1:] for t in ids.hit[q]]
                rows.append(mask(later + ends))
        self.table = torch.stack(rows)  # (states, V)
        self.end_only = mask(ends)
        self.n_pitch = n_pitch
        self.position_index = {t: i for i, t in enumerate(ids.position)}
        self.pitch_index = {t: d for d, p in enumerate(pitches) for t in ids.hit[p]}  # Hit id -> pitch index


class SampleState:
    """Where one sample is in the grammar."""

    def __init__(self, grammar: Grammar, num_bars: int, fill_bars: set[int]) -> None:
        self.g = grammar
        self.num_bars = num_bars
        self.fill_bars = fill_bars
        self.bar = -1  # index of the bar being written
        self.bar_tokens = 0
        self.state = Grammar.AFTER_BAR_KIND
        self.position = 0
        self.forced: int | None = grammar.tok.ids.bar  # a sample opens with Bar
        self.done = False
        self.tokens: list[int] = []

    def mask(self) -> torch.Tensor:
        """Legal next tokens (V,) as a bool mask."""
        V = self.g.table.size(1)
        if self.done:
            m = torch.zeros(V, dtype=torch.bool)
            m[self.g.tok.ids.pad] = True
            return m
        if self.forced is not None:
            m = torch.zeros(V, dtype=torch.bool)
            m[self.forced] = True
            return m
        if self.bar_tokens >= self.g.max_bar_tokens and self.state > Grammar.AFTER_POSITION:
            return self.g.end_only
        return self.g.table[self.state]

    def advance(self, token: int) -> None:
        """Take the sampled ``token`` and move the state on."""
        if self.done:
            return
        ids = self.g.tok.ids
        self.forced = None
        if token == ids.bar:  # closes the bar; after the last bar it ends the sample
            if self.bar + 1 >= self.num_bars:
                self.done = True
                return
            self.bar += 1
            self.bar_tokens = 1
            self.tokens.append(ids.bar)
            self.forced = ids.bar_kind["fill" if self.bar in self.fill_bars else "beat"]
            return
        self.tokens.append(token)
        self.bar_tokens += 1
        if token in self.g.position_index:
            self.position = self.g.position_index[token]
            self.state = Grammar.AFTER_POSITION
        elif token in self.g.pitch_index:  # a hit
            self.state = 2 + self.position * self.g.n_pitch + self.g.pitch_index[token]
        else:  # the bar's kind
            self.state = Grammar.AFTER_BAR_KIND
