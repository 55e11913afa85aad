"""Sampling filters on hand-built (B, V) logits: top-k, top-p, greedy, bad values, per-row seeds."""

from __future__ import annotations

import math

import pytest
import torch

from drumgen.sampling import (
    SamplingSettings,
    apply_temperature,
    sample_next,
    top_k_filter,
    top_p_filter,
)

# Two rows of six distinct logits, largest-first order differing between the rows.
LOGITS = torch.tensor([[0.3, 2.0, -1.0, 1.1, 0.0, 3.5],
                       [5.0, -2.0, 0.7, 0.6, 4.0, -0.5]])
V = LOGITS.size(-1)

# Probabilities of a hand-computed top-p example, in a scrambled vocabulary order.
P = torch.tensor([0.10, 0.50, 0.05, 0.20, 0.15])  # descending: idx 1 (.5), 3 (.2), 4 (.15), 0 (.1), 2 (.05)


def kept(filtered: torch.Tensor) -> list[set[int]]:
    """Indices left finite in each row."""
    return [set(torch.isfinite(row).nonzero().flatten().tolist()) for row in filtered]


def largest(row: torch.Tensor, k: int) -> set[int]:
    return set(torch.argsort(row, descending=True)[:k].tolist())


# --- top-k ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("k", "expected"),
    [(0, V), (1, 1), (2, 2), (5, 5), (V, V), (V + 10, V)],
    ids=["k0-off", "k1", "k2", "k5", "k-equals-V", "k-above-V"],
)
def test_top_k_keeps_exactly_k_largest(k: int, expected: int) -> None:
    out = top_k_filter(LOGITS, k)
    for r, row_kept in enumerate(kept(out)):
        assert row_kept == largest(LOGITS[r], expected)
        # kept logits are untouched, dropped ones are -inf (never NaN)
        assert torch.equal(out[r, sorted(row_kept)], LOGITS[r, sorted(row_kept)])
    assert not torch.isnan(out).any()
    assert torch.isneginf(out).sum() == 2 * (V - expected)


def test_top_k_leaves_input_alone() -> None:
    before = LOGITS.clone()
    top_k_filter(LOGITS, 2)
    top_p_filter(LOGITS, 0.5)
    assert torch.equal(LOGITS, before)


# --- top-p ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("p", "expected"),
    [
        (0.0, {1}),  # p = 0: just the argmax
        (0.3, {1}),  # 0.5 already reaches 0.3
        (0.6, {1, 3}),  # 0.5 < 0.6 <= 0.7
        (0.8, {1, 3, 4}),  # 0.7 < 0.8 <= 0.85
        (0.9, {1, 3, 4, 0}),  # 0.85 < 0.9 <= 0.95
        (0.97, {0, 1, 2, 3, 4}),  # 0.95 < 0.97: everything
        (1.0, {0, 1, 2, 3, 4}),  # p = 1: off
    ],
    ids=["p0-argmax", "p0.3", "p0.6", "p0.8", "p0.9", "p0.97", "p1-off"],
)
def test_top_p_keeps_smallest_set_reaching_p(p: float, expected: set[int]) -> None:
    logits = P.log()[None, :]
    assert kept(top_p_filter(logits, p)) == [expected]
    shifted = logits + 7.0  # softmax is shift-invariant, so the kept set is too
    assert kept(top_p_filter(shifted, p)) == [expected]


def test_top_p_rows_are_independent() -> None:
    rolled = torch.roll(P, 2)  # [0.20, 0.15, 0.10, 0.50, 0.05]
    logits = torch.stack([P.log(), rolled.log(), torch.roll(P, 4).log()])
    assert kept(top_p_filter(logits, 0.6)) == [{1, 3}, {3, 0}, {0, 2}]


def test_top_p_with_masked_tokens_never_revives_them() -> None:
    logits = torch.tensor([[float("-inf"), 1.0, float("-inf"), 0.5]])
    for p in (0.0, 0.5, 0.99, 1.0):
        assert kept(top_p_filter(logits, p))[0] <= {1, 3}


# --- temperature and greedy ---------------------------------------------------------------
@pytest.mark.parametrize("top_k,top_p", [(0, 1.0), (2, 0.5), (50, 0.9)], ids=["no-filter", "tight", "defaults"])
def test_temperature_zero_is_greedy(top_k: int, top_p: float) -> None:
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    for _ in range(5):
        assert sample_next(LOGITS, SamplingSettings(0.0, top_k, top_p), gens).tolist() == [5, 0]
    assert sample_next(LOGITS, SamplingSettings(0, top_k, top_p)).tolist() == [5, 0]


def test_top_k_1_is_greedy_at_any_temperature() -> None:
    gens = [torch.Generator().manual_seed(s) for s in (3, 4)]
    for temperature in (0.5, 1.0, 2.0):
        assert sample_next(LOGITS, SamplingSettings(temperature, 1, 1.0), gens).tolist() == [5, 0]


def test_apply_temperature_scales_logits() -> None:
    assert torch.allclose(apply_temperature(LOGITS, 2.0), LOGITS / 2)
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(LOGITS, 0.0)


# --- bad values -----------------------------------------------------------------------------
BAD_VALUES = {
    "temperature-negative": (dict(temperature=-0.1), "temperature"),
    "temperature-nan": (dict(temperature=math.nan), "temperature"),
    "temperature-inf": (dict(temperature=math.inf), "temperature"),
    "temperature-bool": (dict(temperature=True), "temperature"),
    "temperature-string": (dict(temperature="1.0"), "temperature"),
    "top_k-negative": (dict(top_k=-1), "top_k"),
    "top_k-float": (dict(top_k=2.5), "top_k"),
    "top_k-bool": (dict(top_k=True), "top_k"),
    "top_p-above-1": (dict(top_p=1.5), "top_p"),
    "top_p-negative": (dict(top_p=-0.01), "top_p"),
    "top_p-nan": (dict(top_p=math.nan), "top_p"),
    "top_p-bool": (dict(top_p=True), "top_p"),
}


@pytest.mark.parametrize(("bad", "name"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_values_raise_value_error_naming_the_parameter(bad: dict, name: str) -> None:
    values = {"temperature": 1.0, "top_k": 10, "top_p": 0.9, **bad}
    with pytest.raises(ValueError, match=rf"^{name} ") as err:
        SamplingSettings(**values)
    assert repr(bad[name]) in str(err.value)


def test_filters_reject_out_of_range_arguments() -> None:
    with pytest.raises(ValueError, match="top_k"):
        top_k_filter(LOGITS, -1)
    with pytest.raises(ValueError, match="top_p"):
        top_p_filter(LOGITS, 1.5)


def test_good_edge_values_are_accepted() -> None:
    SamplingSettings(0, 0, 0)
    SamplingSettings(0.0, 0, 1.0)
    SamplingSettings(2, 500, 1)


# --- drawing -----------------------------------------------------------------------------------
def test_each_row_draws_only_from_its_own_generator() -> None:
    """Row 1 of a batch seeded [11, 22, 33] matches a batch of one seeded [22], draw after draw."""
    logits = torch.randn(3, 40, generator=torch.Generator().manual_seed(0))
    batch = [torch.Generator().manual_seed(s) for s in (11, 22, 33)]
    solo = [torch.Generator().manual_seed(22)]
    other_batch = [torch.Generator().manual_seed(s) for s in (99, 22, 7)]
    draws_batch, draws_solo, draws_other = [], [], []
    for _ in range(30):
        draws_batch.append(sample_next(logits, SamplingSettings(1.0, 0, 1.0), batch)[1].item())
        draws_solo.append(sample_next(logits[1:2], SamplingSettings(1.0, 0, 1.0), solo)[0].item())
        draws_other.append(sample_next(logits, SamplingSettings(1.0, 0, 1.0), other_batch)[1].item())
    assert draws_batch == draws_solo == draws_other
    assert len(set(draws_solo)) > 5, "30 draws over 40 tokens should not repeat one token"


def test_same_seed_same_draws_different_seed_different_draws() -> None:
    logits = torch.zeros(1, 100)

    def draws(seed: int) -> list[int]:
        g = [torch.Generator().manual_seed(seed)]
        return [int(sample_next(logits, SamplingSettings(1.0, 0, 1.0), g)) for _ in range(20)]

    assert draws(5) == draws(5)
    assert draws(5) != draws(6)


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p"),
    [(1.0, 0, 1.0), (0.5, 0, 1.0), (2.0, 0, 1.0), (1.0, 2, 1.0), (1.0, 0, 0.8)],
    ids=["plain", "cold", "hot", "top_k-2", "top_p-0.8"],
)
def test_sampling_frequencies_follow_the_filtered_softmax(temperature: float, top_k: int, top_p: float) -> None:
    n = 20_000
    row = torch.tensor([2.0, 1.0, 0.0, -1.0, float("-inf")])
    # the distribution the filters should leave, computed by hand
    probs = (row / temperature).softmax(-1)
    if top_k:
        probs[torch.argsort(row, descending=True)[top_k:]] = 0
    if top_p < 1:
        ordered = torch.argsort(probs, descending=True)
        before = probs[ordered].cumsum(0) - probs[ordered]
        probs[ordered[before >= top_p]] = 0
    probs = probs / probs.sum()
    torch.manual_seed(1234)
    picks = sample_next(row.expand(n, -1).clone(), SamplingSettings(temperature, top_k, top_p))
    freq = torch.bincount(picks, minlength=row.numel()).double() / n
    assert freq[4] == 0, "a masked (-inf) token was drawn"
    assert torch.allclose(freq, probs.double(), atol=0.015), (freq.tolist(), probs.tolist())


def test_masked_tokens_are_never_drawn() -> None:
    """A grammar mask of -inf holds under every filter setting, even when the legal tokens are unlikely."""
    legal = [3, 17, 29]
    row = torch.full((30,), float("-inf"))
    row[legal] = torch.tensor([-20.0, -25.0, -30.0])
    logits = row.expand(500, -1)
    torch.manual_seed(0)
    for temperature, top_k, top_p in [(1.0, 0, 1.0), (2.0, 50, 0.9), (0.2, 2, 0.5), (0.0, 0, 1.0)]:
        picks = set(sample_next(logits.clone(), SamplingSettings(temperature, top_k, top_p)).tolist())
        assert picks <= set(legal), (temperature, top_k, top_p, picks)


@pytest.mark.parametrize("temperature", [1e-40, 1e-300], ids=["1e-40", "1e-300"])
def test_a_vanishing_temperature_samples_greedily_instead_of_overflowing(temperature: float) -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0, -2.0]])
    assert sample_next(logits, SamplingSettings(temperature, 0, 1.0)).tolist() == [1]
