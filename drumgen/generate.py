"""Autoregressive generation: KV-cached, grammar-constrained, batched, seeded.

Long patterns slide: when a sample starts a bar and its context already holds
``MAX_CONTEXT_BARS`` bars (or would overflow the model's block), the context is
rebuilt from the conditioning prefix and its last ``KEEP_BARS`` bars, as training
windows start at arbitrary bars.
"""

from __future__ import annotations

import logging

import torch

from drumgen.model import DrumPatternTransformer
from drumgen.pattern import MAX_BARS, MIN_BARS, Pattern
from drumgen.sampling import (
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_K,
    DEFAULT_TOP_P,
    Grammar,
    SampleState,
    check_sampling,
    sample_next,
)
from drumgen.tokenizer import DrumTokenizer

log = logging.getLogger(__name__)

MAX_CONTEXT_BARS = 8  # training windows hold at most 8 bars
KEEP_BARS = 4  # bars kept when a context is rebuilt
MAX_SAMPLES = 16


def fill_bar_set(num_bars: int, fill_every: int) -> set[int]:
    """Bars (0-based) that are fills: the last bar of every ``fill_every`` (0 = none)."""
    if fill_every < 0:
        raise ValueError(f"fill_every must be 0 (off) or a positive number of bars, got {fill_every}")
    if fill_every == 0:
        return set()
    return {b for b in range(num_bars) if (b + 1) % fill_every == 0}


def _grammar(tok: DrumTokenizer) -> Grammar:
    cached = getattr(tok, "_grammar", None)
    if cached is None:
        cached = Grammar(tok)
        tok._grammar = cached  # built once per tokenizer
    return cached


@torch.inference_mode()
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
    seed: int | list[int] = 0,
    num_samples: int = 1,
) -> list[list[int]]:
    """Token ids of ``num_samples`` new patterns of exactly ``num_bars`` bars (no prefix).

    ``seed`` is one seed (sample ``i`` uses ``seed + i``) or one seed per sample; a
    sample depends only on its own seed. ``prompt_tokens`` (a conditioned sequence from
    :meth:`DrumTokenizer.encode`) replaces the ``genre``/``tempo`` prefix, and generation
    continues it with new bars.
    """
    check_sampling(temperature, top_k, top_p)
    if isinstance(num_bars, bool) or not isinstance(num_bars, int) or not MIN_BARS <= num_bars <= MAX_BARS:
        raise ValueError(f"num_bars must be a whole number from {MIN_BARS} to {MAX_BARS}, got {num_bars!r}")
    if not 1 <= num_samples <= MAX_SAMPLES:
        raise ValueError(f"num_samples must be from 1 to {MAX_SAMPLES}, got {num_samples}")
    device = next(model.parameters()).device
    grammar = _grammar(tokenizer)
    block = model.config.block_size
    prefix = list(prompt_tokens) if prompt_tokens else tokenizer.prefix(genre, tempo)
    head = prefix[:3]  # BOS Genre Tempo: kept when a context is rebuilt
    room = block - grammar.max_bar_tokens - 2  # a context must leave room for one more whole bar
    if len(prefix) > room:
        prefix = head + _last_bars(prefix[3:], tokenizer, KEEP_BARS, room - len(head))
    states = [SampleState(grammar, num_bars, fill_bars or set()) for _ in range(num_samples)]
    context_bars = [prefix.count(tokenizer.ids.bar)] * num_samples
    history = [list(prefix) for _ in range(num_samples)]  # tokens in each sample's context

    seeds = list(seed) if isinstance(seed, (list, tuple)) else [int(seed) + i for i in range(num_samples)]
    if len(seeds) != num_samples:
        raise ValueError(f"got {len(seeds)} seeds for {num_samples} samples")
    gens = [torch.Generator(device=device).manual_seed(s % (2**63)) for s in seeds]
    cache = model.new_cache(num_samples)
    x = torch.tensor([prefix] * num_samples, device=device)
    logits = model(x, cache, last_only=True)[:, -1]  # (B, V)
    active = list(range(num_samples))  # the sample in each row of the cache; finished ones leave
    bar_kinds = set(tokenizer.ids.bar_kind.values())
    neg_inf = float("-inf")
    while True:
        mask = torch.stack([states[i].mask() for i in active]).to(device)  # (B, V)
        nxt = sample_next(logits.masked_fill(~mask, neg_inf), temperature, top_k, top_p,
                          [gens[i] for i in active])  # (B,)
        rebuild: list[int] = []
        running: list[int] = []  # rows whose sample goes on
        for row, (i, token) in enumerate(zip(active, nxt.tolist(), strict=True)):
            states[i].advance(token)
            if states[i].done:
                continue
            running.append(row)
            history[i].append(token)
            if token == tokenizer.ids.bar:
                context_bars[i] += 1
            # rebuild right after a bar header, when the context is full
            if token in bar_kinds and (context_bars[i] > MAX_CONTEXT_BARS or len(history[i]) > room):
                rebuild.append(i)
        if not running:
            break
        if len(running) < len(active):  # drop finished samples from the batch
            cache.keep_rows(running)
            nxt = nxt[running]
            active = [active[r] for r in running]
        logits = model(nxt[:, None], cache, last_only=True)[:, -1]
        for i in rebuild:
            history[i] = head + _last_bars(history[i][3:], tokenizer, KEEP_BARS + 1, room - len(head))
            context_bars[i] = history[i].count(tokenizer.ids.bar)
            row_cache = model.new_cache(1)
            row_logits = model(torch.tensor([history[i]], device=device), row_cache, last_only=True)[:, -1]
            row = active.index(i)
            cache.copy_row_from(row_cache, row)
            logits[row] = row_logits[0]
    return [s.tokens for s in states]


def _last_bars(tokens: list[int], tok: DrumTokenizer, n: int, max_tokens: int) -> list[int]:
    """The tokens of the last ``n`` bars (each starting with ``Bar``), fewer bars if they would
    hold more than ``max_tokens`` tokens; always at least the last bar's header."""
    starts = [i for i, t in enumerate(tokens) if t == tok.ids.bar][-n:] or [0]
    for start in starts:
        if len(tokens) - start <= max_tokens:
            return tokens[start:]
    return tokens[starts[-1]:][:max_tokens]


def generate_pattern(
    model: DrumPatternTransformer,
    tokenizer: DrumTokenizer,
    prompt_tokens: list[int] | None = None,
    num_bars: int = 4,
    temperature: float = DEFAULT_TEMPERATURE,
    top_k: int = DEFAULT_TOP_K,
    top_p: float = DEFAULT_TOP_P,
    seed: int | list[int] = 0,
    num_samples: int = 1,
    genre: str = "rock",
    tempo: float = 120.0,
    fill_every: int = 0,
    fill_bars: set[int] | None = None,
    conditioning_tempo: float | None = None,
) -> list[Pattern]:
    """Sample ``num_samples`` patterns of ``num_bars`` bars at ``tempo`` (quantized, not humanized).

    Defaults: 4 bars, temperature 1.0, top-k 50, top-p 0.9, seed 0, one sample, genre rock,
    120 BPM, no fills. ``fill_every`` N makes the last bar of every N a fill; ``fill_bars``
    names fill bars (0-based) directly. ``conditioning_tempo`` (default: ``tempo``) is the
    tempo the model is told, e.g. half of it for a half-time feel.
    """
    fills = set(fill_bars or set()) | fill_bar_set(num_bars, fill_every)
    cond_tempo = tempo if conditioning_tempo is None else conditioning_tempo
    token_lists = generate_tokens(model, tokenizer, genre=genre, tempo=cond_tempo, num_bars=num_bars,
                                  fill_bars=fills, prompt_tokens=prompt_tokens, temperature=temperature,
                                  top_k=top_k, top_p=top_p, seed=seed, num_samples=num_samples)
    return [tokenizer.decode(tokens, bars=num_bars, tempo=tempo).validate() for tokens in token_lists]
