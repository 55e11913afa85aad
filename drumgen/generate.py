"""Autoregressive sampling: KV-cached, constrained, batched, seeded.

:func:`sample_tokens` is the loop: prefill the prefix once for every sample, then one step per
token (the constraints of :mod:`drumgen.constraints` decide what is legal, the filters of
:mod:`drumgen.sampling` draw), and a context rebuild when a sample's context is full: at the start
of a bar, when it holds ``MAX_CONTEXT_BARS`` bars or would overflow the context, it is rebuilt
from the conditioning and its last ``KEEP_BARS`` bars, as training windows start at any bar.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import torch

from drumgen.constants import DEFAULT_TEMPERATURE, DEFAULT_TOP_K, DEFAULT_TOP_P
from drumgen.constraints import (
    MAX_BAR_TOKENS,
    Constraint,
    FillBars,
    SampleState,
    apply_constraints,
    grammar_for,
)
from drumgen.limits import BARS
from drumgen.model import DrumPatternTransformer
from drumgen.pattern import Pattern
from drumgen.sampling import SamplingSettings, sample_next
from drumgen.tokenizer import DrumTokenizer

log = logging.getLogger(__name__)

MAX_CONTEXT_BARS = 8  # training windows hold at most 8 bars
KEEP_BARS = 4  # bars kept when a context is rebuilt
MAX_SAMPLES = 16  # samples decoded in one batch
HEAD_TOKENS = 3  # BOS Genre Tempo: kept when a context is rebuilt
NUM_BARS = replace(BARS, name="num_bars")


def fill_bar_set(num_bars: int, fill_every: int) -> set[int]:
    """Bars (0-based) that are fills: the last bar of every ``fill_every`` (0 = none)."""
    if fill_every < 0:
        raise ValueError(f"fill_every must be 0 (off) or a positive number of bars, got {fill_every}")
    if fill_every == 0:
        return set()
    return {b for b in range(num_bars) if (b + 1) % fill_every == 0}


def last_bars(tokens: list[int], bar_token: int, n: int, max_tokens: int) -> list[int]:
    """The tokens of the last ``n`` bars (each starting with ``Bar``), fewer bars if they would hold
    more than ``max_tokens`` tokens; always at least the last bar's header."""
    starts = [i for i, t in enumerate(tokens) if t == bar_token][-n:] or [0]
    for start in starts:
        if len(tokens) - start <= max_tokens:
            return tokens[start:]
    return tokens[starts[-1]:][:max_tokens]


class Decoder:
    """The model's side of sampling: a batch of contexts in one KV cache.

    ``prefill`` starts every row on the same prefix, ``step`` feeds one token per row, ``keep`` drops
    finished rows and ``rebuild`` restarts one row on a new (shorter) context. After ``step``,
    ``timing`` holds the timing head's (mean, log std) for the tokens just fed ((B, 2); None without a
    head).

    With a ``contrast`` head (the same conditioning with another genre) every row has a twin in the
    cache that reads the same tokens under that head, and the logits returned are
    ``main + weight * (main - twin)`` in log-probabilities: what sets the genre apart from the one it
    is most often taken for is played more clearly (classifier-free guidance with a neighbouring genre
    as the "unconditional" side).
    """

    def __init__(self, model: DrumPatternTransformer, batch: int, contrast: list[int] | None = None,
                 weight: float = 0.0) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        self.contrast = contrast if contrast is not None and weight > 0 else None
        self.weight = weight
        self.batch = batch
        self.cache = model.new_cache(batch * (2 if self.contrast else 1))
        self.timing: torch.Tensor | None = None

    def _twin(self, context: list[int]) -> list[int]:
        assert self.contrast is not None
        return self.contrast + context[len(self.contrast):]

    def _mix(self, logits: torch.Tensor) -> torch.Tensor:
        """(rows, V) logits of the main rows then their twins -> the guided (rows / 2, V)."""
        if self.contrast is None:
            return logits
        half = logits.size(0) // 2
        main, twin = logits[:half].log_softmax(dim=-1), logits[half:].log_softmax(dim=-1)
        return main + self.weight * (main - twin)

    def prefill(self, prefix: list[int], batch: int) -> torch.Tensor:
        rows = [prefix] * batch + ([self._twin(prefix)] * batch if self.contrast else [])
        x = torch.tensor(rows, device=self.device)
        return self._mix(self.model(x, self.cache, last_only=True)[:, -1])  # (B, V)

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        fed = torch.cat([tokens, tokens]) if self.contrast else tokens
        logits, timing = self.model(fed[:, None], self.cache, last_only=True, with_timing=True)
        self.timing = None if timing is None else timing[:self.batch, -1]
        return self._mix(logits[:, -1])  # (B, V)

    def keep(self, rows: list[int]) -> None:
        self.cache.keep_rows(rows + [self.batch + r for r in rows] if self.contrast else rows)
        self.batch = len(rows)

    def _rebuilt(self, row: int, context: list[int]) -> torch.Tensor:
        row_cache = self.model.new_cache(1)
        logits = self.model(torch.tensor([context], device=self.device), row_cache, last_only=True)[:, -1]
        self.cache.copy_row_from(row_cache, row)
        return logits  # (1, V)

    def rebuild(self, row: int, context: list[int]) -> torch.Tensor:
        logits = self._rebuilt(row, context)
        if self.contrast:
            logits = torch.cat([logits, self._rebuilt(self.batch + row, self._twin(context))])
        return self._mix(logits)[0]  # (V,)


@torch.inference_mode()
def sample_tokens(
    model: DrumPatternTransformer,
    tokenizer: DrumTokenizer,
    prefix: list[int],
    num_bars: int,
    sampling: SamplingSettings,
    seeds: Sequence[int],
    constraints: Sequence[Constraint] = (),
    max_length: int | None = None,
    contrast: list[int] | None = None,
    contrast_weight: float = 0.0,
) -> list[SampleState]:
    """Sample ``len(seeds)`` continuations of ``prefix`` of exactly ``num_bars`` new bars.

    Sample ``i`` draws from its own ``torch.Generator`` seeded with ``seeds[i]``, so it does not
    depend on the other samples. ``constraints`` apply after the grammar, in order.
    ``max_length`` caps the context the model sees (default and most: its block size).
    ``contrast`` (a conditioning head, e.g. ``tokenizer.prefix(other_genre, tempo)``) with
    ``contrast_weight`` > 0 guides away from that head (see :class:`Decoder`).
    Returns each sample's final :class:`SampleState` (its ``tokens`` are the new tokens).
    """
    if isinstance(num_bars, bool) or not isinstance(num_bars, int):
        raise NUM_BARS.error(num_bars)
    NUM_BARS.check(num_bars)
    if not 1 <= len(seeds) <= MAX_SAMPLES:
        raise ValueError(f"give 1 to {MAX_SAMPLES} seeds, got {len(seeds)}")
    grammar = grammar_for(tokenizer)
    rules = [grammar, *constraints]
    bar_token = tokenizer.ids.bar
    block = model.config.block_size if max_length is None else min(max_length, model.config.block_size)
    room = block - MAX_BAR_TOKENS - 2  # a context must leave room for one more whole bar
    if room < HEAD_TOKENS + 2:
        raise ValueError(f"max_length {max_length} is too short for one bar; use at least {MAX_BAR_TOKENS + 7}")
    prefix = list(prefix)
    head = prefix[:HEAD_TOKENS]
    if len(prefix) > room:
        prefix = head + last_bars(prefix[HEAD_TOKENS:], bar_token, KEEP_BARS, room - HEAD_TOKENS)
    n = len(seeds)
    states = [SampleState(grammar.vocab, num_bars) for _ in range(n)]
    history = [list(prefix) for _ in range(n)]  # tokens in each sample's context
    context_bars = [prefix.count(bar_token)] * n
    if contrast is not None and len(contrast) != HEAD_TOKENS:
        raise ValueError(f"a contrast head is {HEAD_TOKENS} tokens (BOS Genre Tempo), got {len(contrast)}")
    decoder = Decoder(model, n, contrast, contrast_weight)
    gens = [torch.Generator(device=decoder.device).manual_seed(int(s) % (2**63)) for s in seeds]
    logits = decoder.prefill(prefix, n)
    active = list(range(n))  # the sample in each row of the cache; finished ones leave
    bar_kinds = set(tokenizer.ids.bar_kind.values())
    while True:
        rows = [apply_constraints(rules, states[i], logits[r]) for r, i in enumerate(active)]
        scores = rows[0][None] if len(rows) == 1 else torch.stack(rows)  # (B, V)
        nxt = sample_next(scores, sampling, [gens[i] for i in active])  # (B,)
        rebuild: list[int] = []
        running: list[int] = []  # rows whose sample goes on
        for row, (i, token) in enumerate(zip(active, nxt.tolist(), strict=True)):
            states[i].advance(token)
            if states[i].done:
                continue
            running.append(row)
            history[i].append(token)
            if token == bar_token:
                context_bars[i] += 1
            if token in bar_kinds and (context_bars[i] > MAX_CONTEXT_BARS or len(history[i]) > room):
                rebuild.append(i)
        if not running:
            break
        if len(running) < len(active):
            decoder.keep(running)
            nxt = nxt[running]
            active = [active[r] for r in running]
        logits = decoder.step(nxt)
        if decoder.timing is not None:
            timing = decoder.timing.tolist()
            for row, i in enumerate(active):
                states[i].record_timing(*timing[row])  # the hit just fed, if it was one
        for i in rebuild:
            history[i] = head + last_bars(history[i][HEAD_TOKENS:], bar_token, KEEP_BARS + 1, room - HEAD_TOKENS)
            context_bars[i] = history[i].count(bar_token)
            logits[active.index(i)] = decoder.rebuild(active.index(i), history[i])
    return states


def generate_tokens(
    model: DrumPatternTransformer,
    tokenizer: DrumTokenizer,
    genre: str = "rock",
    tempo: float = 120.0,
    num_bars: int = 4,
    fill_bars: set[int] | None = None,
    prompt_tokens: list[int] | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
    top_k: int = DEFAULT_TOP_K,
    top_p: float = DEFAULT_TOP_P,
    seed: int | Sequence[int] = 0,
    num_samples: int = 1,
    constraints: Sequence[Constraint] = (),
    max_length: int | None = None,
) -> list[list[int]]:
    """Token ids of ``num_samples`` new patterns of exactly ``num_bars`` bars (no prefix).

    ``seed`` is one seed (sample ``i`` uses ``seed + i``) or one seed per sample.
    ``prompt_tokens`` (a conditioned sequence from :meth:`DrumTokenizer.encode`) replaces the
    ``genre``/``tempo`` prefix, and the new bars continue it. ``fill_bars`` (0-based) are fills;
    ``constraints`` apply after the grammar and the fill bars.
    """
    if not 1 <= num_samples <= MAX_SAMPLES:
        raise ValueError(f"num_samples must be from 1 to {MAX_SAMPLES}, got {num_samples!r}")
    seeds = list(seed) if isinstance(seed, list | tuple) else [int(seed) + i for i in range(num_samples)]
    if len(seeds) != num_samples:
        raise ValueError(f"got {len(seeds)} seeds for {num_samples} samples")
    prefix = list(prompt_tokens) if prompt_tokens else tokenizer.prefix(genre, tempo)
    rules = [FillBars(grammar_for(tokenizer).vocab, fill_bars or ()), *constraints]
    states = sample_tokens(model, tokenizer, prefix, num_bars, SamplingSettings(temperature, top_k, top_p), seeds,
                           rules, max_length)
    return [s.tokens for s in states]


def generate_pattern(
    model: DrumPatternTransformer,
    tokenizer: DrumTokenizer,
    prompt_tokens: list[int] | None = None,
    num_bars: int = 4,
    temperature: float = DEFAULT_TEMPERATURE,
    top_k: int = DEFAULT_TOP_K,
    top_p: float = DEFAULT_TOP_P,
    max_length: int = 512,
    device: str | torch.device | None = "cpu",
    seed: int | Sequence[int] = 0,
    num_samples: int = 1,
    genre: str = "rock",
    tempo: float = 120.0,
    fill_every: int = 0,
    fill_bars: set[int] | None = None,
    conditioning_tempo: float | None = None,
    return_tokens: bool = False,
) -> list[Pattern] | tuple[list[Pattern], list[list[int]]]:
    """Sample ``num_samples`` patterns of ``num_bars`` bars at ``tempo`` (quantized, not humanized).

    ``max_length`` caps the context the model attends over (tokens; at most its block size; longer
    patterns slide). ``device`` is where to run (the model is moved there if it is elsewhere; None =
    where the model is). ``fill_every`` N makes the last bar of every N a fill; ``fill_bars`` names
    fill bars (0-based) directly. ``conditioning_tempo`` (default ``tempo``) is the tempo the model is
    told, e.g. half of it for a half-time feel. With ``return_tokens`` the new token ids of each
    sample come back too, as ``(patterns, token_ids)``.
    """
    if device is not None and next(model.parameters()).device != torch.device(device):
        model = model.to(device)
    fills = set(fill_bars or set()) | fill_bar_set(num_bars, fill_every)
    cond_tempo = tempo if conditioning_tempo is None else conditioning_tempo
    token_lists = generate_tokens(model, tokenizer, genre=genre, tempo=cond_tempo, num_bars=num_bars,
                                  fill_bars=fills, prompt_tokens=prompt_tokens, temperature=temperature,
                                  top_k=top_k, top_p=top_p, seed=seed, num_samples=num_samples,
                                  max_length=max_length)
    patterns = [tokenizer.decode(tokens, bars=num_bars, tempo=tempo) for tokens in token_lists]
    return (patterns, token_lists) if return_tokens else patterns
