"""Sampling filters as small pure functions on (B, V) logits, and the settings they take.

Order: temperature -> top-k -> top-p -> draw; temperature 0 is greedy. The values are checked
once, when :class:`SamplingSettings` is made, not for every token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from drumgen.constants import DEFAULT_TEMPERATURE, DEFAULT_TOP_K, DEFAULT_TOP_P
from drumgen.limits import TEMPERATURE, TOP_K, TOP_P

GREEDY_BELOW = 1e-6  # temperatures below this sample greedily, as 0 does (dividing by them overflows)


@dataclass(frozen=True)
class SamplingSettings:
    """Temperature (0 = greedy), top-k (0 = off) and top-p (1 = off), checked when made."""

    temperature: float = DEFAULT_TEMPERATURE
    top_k: int = DEFAULT_TOP_K
    top_p: float = DEFAULT_TOP_P

    def __post_init__(self) -> None:
        object.__setattr__(self, "temperature", TEMPERATURE.check(self.temperature))
        object.__setattr__(self, "top_k", TOP_K.check(self.top_k))
        object.__setattr__(self, "top_p", TOP_P.check(self.top_p))


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide (B, V) logits by ``temperature`` (> 0)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 here (0 means greedy), got {temperature!r}")
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


def sample_next(logits: torch.Tensor, settings: SamplingSettings,
                generators: list[torch.Generator] | None = None) -> torch.Tensor:
    """Draw one token id per row of (B, V) logits: temperature -> top-k -> top-p; 0 = greedy.

    The same filters as :func:`top_k_filter` and :func:`top_p_filter`, fused on the ``k`` best
    tokens (one sort) because this runs once per generated token. Row ``i`` draws from
    ``generators[i]`` alone, so a row's result does not depend on the other rows of the batch
    (a variation is reproducible from its own seed).
    """
    if settings.temperature < GREEDY_BELOW:
        return logits.argmax(dim=-1)
    k = settings.top_k if 0 < settings.top_k < logits.size(-1) else logits.size(-1)
    best, order = torch.topk(apply_temperature(logits, settings.temperature), k, dim=-1)  # (B, k), descending
    probs = best.softmax(dim=-1)
    if settings.top_p < 1:
        probs = probs.masked_fill(_outside_nucleus(probs, settings.top_p), 0.0)
    if generators is None:
        u = torch.rand(probs.size(0), device=probs.device)
    else:
        u = torch.cat([torch.rand(1, generator=g, device=probs.device) for g in generators])  # (B,)
    # inverse CDF: the first kept token whose cumulative probability exceeds u
    cdf = probs.cumsum(dim=-1)
    pick = (cdf < u.clamp_min(1e-12)[:, None] * cdf[:, -1:]).sum(dim=-1).clamp(max=k - 1)
    return order.gather(-1, pick[:, None]).squeeze(-1)
