"""Grammar-constrained, KV-cached generation with a random (untrained) tiny model.

An untrained model puts weight on every token, so whatever it writes is held in shape
by the grammar alone: these tests walk its output with an independent checker.
"""

from __future__ import annotations

import pytest
import torch

import drumgen.generate as generate_module
from drumgen.generate import fill_bar_set, generate_pattern, generate_tokens
from drumgen.model import DrumPatternTransformer, ModelConfig
from drumgen.pattern import PPQ, Note, Pattern
from drumgen.tokenizer import DrumTokenizer
from drumgen.voices import CANONICAL_PITCHES

pytestmark = pytest.mark.usefixtures("torch_single_thread")

BAR_TICKS = 4 * PPQ
MAX_BAR_TOKENS = 201  # the grammar's cap (200) plus the hit it lets finish


@pytest.fixture(scope="module")
def tok() -> DrumTokenizer:
    return DrumTokenizer()


def tiny_model(tok: DrumTokenizer, block_size: int = 256, seed: int = 0,
               cls: type[DrumPatternTransformer] = DrumPatternTransformer, **kwargs) -> DrumPatternTransformer:
    torch.manual_seed(seed)
    config = ModelConfig(vocab_size=len(tok), n_layer=1, n_head=2, n_embd=32, block_size=block_size, dropout=0)
    return cls(config, **kwargs).eval()


@pytest.fixture(scope="module")
def model(tok: DrumTokenizer) -> DrumPatternTransformer:
    return tiny_model(tok)


# --- an independent checker of the token language ---------------------------------------------
def walk(tok: DrumTokenizer, tokens: list[int], num_bars: int, fills: set[int] = frozenset()) -> list[Note]:
    """Check ``tokens`` against ``Bar BarKind (Position Hit+)+`` per bar; return the hits."""
    names = [tok.id_to_token[t] for t in tokens]
    n_positions = sum(1 for t in tok.vocab if t.startswith("Position_"))
    ticks_per_step = BAR_TICKS // n_positions
    velocities = {int(t.split("_")[1]) for t in tok.vocab if t.startswith("Velocity_")}
    assert velocities and len(velocities) == len(tok.velocity_values)
    assert names and names[0] == "Bar_None", f"a sample must open with Bar, got {names[:3]}"
    bars: list[list[str]] = []
    for name in names:
        if name == "Bar_None":
            bars.append([])
        bars[-1].append(name)
    assert len(bars) == num_bars, f"{len(bars)} bars instead of {num_bars}"
    hits: list[Note] = []
    for b, bar in enumerate(bars):
        where = f"bar {b}"
        assert len(bar) <= MAX_BAR_TOKENS, f"{where}: {len(bar)} tokens"
        expected_kind = "BarKind_fill" if b in fills else "BarKind_beat"
        assert bar[:2] == ["Bar_None", expected_kind], f"{where} starts {bar[:2]}"
        assert len(bar) > 2, f"{where} is empty"
        i, last_position = 2, -1
        while i < len(bar):
            kind, _, value = bar[i].partition("_")
            assert kind == "Position", f"{where}: expected a Position, got {bar[i]}"
            position = int(value)
            assert last_position < position < n_positions, f"{where}: position {position} after {last_position}"
            last_position = position
            i += 1
            last_pitch = -1
            start = i
            while i < len(bar) and bar[i].startswith("Hit_"):
                _, pitch_text, velocity_text = bar[i].split("_")
                pitch, velocity = int(pitch_text), int(velocity_text)
                assert pitch in CANONICAL_PITCHES, f"{where}: pitch {pitch} is not a canonical voice"
                assert pitch > last_pitch, f"{where} position {position}: pitch {pitch} after {last_pitch}"
                last_pitch = pitch
                assert velocity in velocities
                hits.append(Note(b * BAR_TICKS + position * ticks_per_step, pitch, velocity))
                i += 1
            assert i > start, f"{where}: Position_{position} without a hit"
    keys = [(n.onset, n.pitch) for n in hits]
    assert len(keys) == len(set(keys)), "duplicate hit"
    return hits


def test_checker_rejects_broken_sequences(tok: DrumTokenizer) -> None:
    """The checker itself must catch the mistakes the grammar exists to prevent."""
    v = tok.vocab
    good = [v["Bar_None"], v["BarKind_beat"], v["Position_0"], v["Hit_36_95"], v["Hit_42_63"],
            v["Position_24"], v["Hit_38_111"]]
    assert len(walk(tok, good, 1)) == 3
    broken = {
        "pitches-falling": good[:3] + [v["Hit_42_63"], v["Hit_36_95"]],
        "duplicate-pitch": good[:4] + [v["Hit_36_63"]],
        "positions-falling": good[:2] + good[5:] + good[2:4],
        "no-hit": good[:3],
        "remi-pitch-token": good[:3] + [v["PitchDrum_36"], v["Velocity_95"]],
        "wrong-kind": [v["Bar_None"], v["BarKind_fill"]] + good[2:],
        "empty-bar": good[:2],
        "too-many-bars": good + [v["Bar_None"], v["BarKind_beat"]],
        "conditioning-token": good[:2] + [v["Genre_rock"]],
    }
    for name, tokens in broken.items():
        with pytest.raises(AssertionError):
            walk(tok, tokens, 1)
            pytest.fail(f"checker accepted {name}")


# --- the grammar holds whatever the model says ---------------------------------------------
@pytest.mark.parametrize("num_samples", [1, 4], ids=["1-sample", "4-samples"])
@pytest.mark.parametrize("temperature", [0.0, 0.7, 1.5], ids=["greedy", "T0.7", "T1.5"])
@pytest.mark.parametrize("num_bars", [1, 3, 16, 32], ids=["1-bar", "3-bars", "16-bars", "32-bars-rebuilds"])
def test_generate_tokens_always_follows_the_grammar(model, tok, num_bars: int, temperature: float,
                                                     num_samples: int) -> None:
    fills = {num_bars - 1} if num_bars > 1 else set()
    samples = generate_tokens(model, tok, genre="funk", tempo=100.0, num_bars=num_bars, fill_bars=fills,
                              temperature=temperature, top_k=0, top_p=1.0, seed=0, num_samples=num_samples)
    assert len(samples) == num_samples
    for tokens in samples:
        walk(tok, tokens, num_bars, fills)


@pytest.mark.parametrize("num_samples", [1, 4], ids=["1-sample", "4-samples"])
@pytest.mark.parametrize("temperature", [0.0, 0.7, 1.5], ids=["greedy", "T0.7", "T1.5"])
@pytest.mark.parametrize("num_bars", [1, 3, 16], ids=["1-bar", "3-bars", "16-bars"])
def test_generate_pattern_gives_valid_patterns_of_the_requested_length(model, tok, num_bars: int,
                                                                       temperature: float, num_samples: int) -> None:
    kwargs = dict(num_bars=num_bars, temperature=temperature, top_k=50, top_p=0.95, seed=3,
                  num_samples=num_samples, genre="rock", tempo=87.5)
    patterns = generate_pattern(model, tok, **kwargs)
    tokens = generate_tokens(model, tok, **{k: v for k, v in kwargs.items()})
    assert len(patterns) == num_samples
    for pattern, sample in zip(patterns, tokens, strict=True):
        assert isinstance(pattern, Pattern)
        assert pattern.bars == num_bars and pattern.tempo == 87.5 and pattern.time_signature == (4, 4)
        pattern.validate()
        # every hit the tokens name is in the pattern, where the tokens put it
        expected = walk(tok, sample, num_bars)
        assert [(n.onset, n.pitch) for n in pattern.notes] == sorted((n.onset, n.pitch) for n in expected)
        assert all(abs(a.velocity - b.velocity) <= 1 for a, b in zip(pattern.notes, sorted(expected), strict=True))


# --- seeds -------------------------------------------------------------------------------------
def test_same_seed_same_tokens_different_seed_different_tokens(model, tok) -> None:
    def run(seed):
        return generate_tokens(model, tok, num_bars=4, temperature=1.0, top_k=0, top_p=1.0, seed=seed,
                               num_samples=2)

    assert run(7) == run(7)
    assert run(7) != run(8)
    a, b = run(7)
    assert a != b, "the two samples of one call must differ (seed and seed + 1)"


@pytest.mark.parametrize("num_bars", [2, 8], ids=["2-bars", "8-bars"])
def test_a_sample_depends_only_on_its_own_seed(model, tok, num_bars: int) -> None:
    def run(seed, n):
        return generate_tokens(model, tok, genre="jazz", tempo=140.0, num_bars=num_bars, temperature=1.0,
                               top_k=0, top_p=1.0, seed=seed, num_samples=n)

    pair = run([101, 202], 2)
    assert pair[1] == run([202], 1)[0]
    assert pair[0] == run([101], 1)[0]
    assert run([999, 202, 5], 3)[1] == pair[1]
    # an int seed gives sample i the seed + i
    assert run(200, 3)[2] == pair[1]


# --- fills --------------------------------------------------------------------------------------
@pytest.mark.parametrize("fills", [{3}, {1, 3}, {0, 5}, set()], ids=["last", "every-2nd", "first-and-6th", "none"])
def test_fill_bars_get_barkind_fill_at_the_requested_bars(model, tok, fills: set[int]) -> None:
    for tokens in generate_tokens(model, tok, num_bars=6, fill_bars=fills, temperature=1.0, seed=1, num_samples=2):
        walk(tok, tokens, 6, fills)


def test_fill_every_marks_the_last_bar_of_every_group(model, tok, monkeypatch) -> None:
    seen: list[set[int]] = []
    real = generate_module.generate_tokens

    def spy(*args, **kwargs):
        seen.append(set(kwargs["fill_bars"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(generate_module, "generate_tokens", spy)
    generate_pattern(model, tok, num_bars=8, fill_every=4, seed=0)
    generate_pattern(model, tok, num_bars=8, fill_every=2, fill_bars={0}, seed=0)
    assert seen == [{3, 7}, {0, 1, 3, 5, 7}]


@pytest.mark.parametrize(("num_bars", "every", "expected"),
                         [(8, 0, set()), (8, 4, {3, 7}), (6, 4, {3}), (4, 8, set()), (3, 1, {0, 1, 2})],
                         ids=["off", "every-4", "partial-group", "longer-than-pattern", "every-bar"])
def test_fill_bar_set(num_bars: int, every: int, expected: set[int]) -> None:
    assert fill_bar_set(num_bars, every) == expected


def test_fill_bar_set_rejects_negative() -> None:
    with pytest.raises(ValueError, match="fill_every"):
        fill_bar_set(4, -2)


def test_prompt_is_continued_with_new_bars(model, tok) -> None:
    prompt_pattern = Pattern(notes=[Note(0, 36, 100), Note(PPQ, 38, 110), Note(BAR_TICKS, 36, 100)], bars=2)
    prompt = tok.encode(prompt_pattern, "hiphop")
    for tokens in generate_tokens(model, tok, prompt_tokens=prompt, num_bars=3, seed=4, num_samples=2):
        walk(tok, tokens, 3)


# --- bad arguments ------------------------------------------------------------------------------
@pytest.mark.parametrize("num_bars", [0, 33, 2.5, -1, True, "4"], ids=["zero", "33", "fraction", "negative",
                                                                      "bool", "string"])
def test_bad_num_bars_raise(model, tok, num_bars) -> None:
    with pytest.raises(ValueError, match="num_bars") as err:
        generate_tokens(model, tok, num_bars=num_bars)
    assert repr(num_bars) in str(err.value)
    with pytest.raises(ValueError, match="num_bars"):
        generate_pattern(model, tok, num_bars=num_bars)


@pytest.mark.parametrize(("kwargs", "name"), [
    (dict(num_samples=0), "num_samples"), (dict(num_samples=17), "num_samples"),
    (dict(seed=[1, 2], num_samples=3), "seeds"), (dict(temperature=-1.0), "temperature"),
    (dict(top_p=2.0), "top_p"), (dict(genre="trap"), "genre"),
], ids=["no-samples", "too-many-samples", "seed-count", "temperature", "top_p", "genre"])
def test_bad_arguments_raise_value_error(model, tok, kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        generate_tokens(model, tok, num_bars=2, **kwargs)


# --- the KV cache ------------------------------------------------------------------------------
def random_tokens(tok: DrumTokenizer, n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, len(tok), (n,), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("chunk", [1, 7], ids=["token-by-token", "chunks-of-7"])
def test_kv_cache_logits_equal_full_recompute(model, tok, chunk: int) -> None:
    x = torch.stack([random_tokens(tok, 60, 1), random_tokens(tok, 60, 2)])  # (2, 60)
    with torch.no_grad():
        full = model(x)  # (2, 60, V)
        cache = model.new_cache(2)
        pieces = [model(x[:, :10], cache)]  # prefill
        for start in range(10, 60, chunk):
            pieces.append(model(x[:, start:start + chunk], cache))
        stepped = torch.cat(pieces, dim=1)
    assert cache.length == 60
    assert torch.allclose(stepped, full, atol=1e-4), (stepped - full).abs().max()
    with torch.no_grad():
        last = model(x[:, :25], model.new_cache(2), last_only=True)
    assert last.shape == (2, 1, len(tok))
    assert torch.allclose(last[:, 0], full[:, 24], atol=1e-4)


@pytest.mark.parametrize("gelu", ["tanh", "none"])
def test_one_token_decoding_step_matches_the_module_path(tok, gelu: str) -> None:
    """The weight-level step generation uses for one new token matches the full forward pass
    (both GELU forms: older checkpoints use the exact one)."""
    torch.manual_seed(3)
    model = DrumPatternTransformer(ModelConfig(vocab_size=len(tok), n_layer=2, n_head=2, n_embd=32,
                                               block_size=64, dropout=0, gelu=gelu)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)  # large weights, so any slip in the math shows
    x = torch.stack([random_tokens(tok, 20, 4), random_tokens(tok, 20, 5), random_tokens(tok, 20, 6)])
    with torch.no_grad():
        full = model(x)
        cache = model.new_cache(3)
        model(x[:, :5], cache)
        steps = torch.cat([model(x[:, t:t + 1], cache) for t in range(5, 20)], dim=1)
    assert torch.allclose(steps, full[:, 5:], atol=1e-4), (steps - full[:, 5:]).abs().max()


def test_decoding_uses_the_weights_loaded_last(tok) -> None:
    """load_state_dict(assign=True) replaces the Parameter objects: the decoding step must follow."""
    first, second = tiny_model(tok, seed=1), tiny_model(tok, seed=2)
    x = random_tokens(tok, 12, 7)[None]
    with torch.no_grad():
        cache = first.new_cache(1)
        first(x[:, :11], cache)
        first(x[:, 11:], cache)  # a decoding step: first's weights are collected
        first.load_state_dict(second.state_dict(), assign=True)
        cache = first.new_cache(1)
        first(x[:, :11], cache)
        stepped = first(x[:, 11:], cache)[:, -1]
        assert torch.allclose(stepped, second(x)[:, -1], atol=1e-5)


def test_cache_rows_of_different_lengths_match_solo_runs(model, tok) -> None:
    """A row replaced by a shorter rebuilt context (copy_row_from) continues exactly like a solo run."""
    a, b, c = random_tokens(tok, 40, 3), random_tokens(tok, 40, 4), random_tokens(tok, 12, 5)
    follow = torch.stack([random_tokens(tok, 6, 6), random_tokens(tok, 6, 7)])  # (2, 6): next tokens per row
    with torch.no_grad():
        cache = model.new_cache(2)
        model(torch.stack([a, b]), cache)
        rebuilt = model.new_cache(1)
        model(c[None], rebuilt)
        cache.copy_row_from(rebuilt, 1)  # row 1 now holds only the 12 tokens of c
        assert cache.lengths.tolist() == [40, 12] and not cache.uniform
        steps = torch.cat([model(follow[:, i:i + 1], cache) for i in range(6)], dim=1)  # (2, 6, V)
        solo_a = model(torch.cat([a, follow[0]])[None])[0, 40:]
        solo_c = model(torch.cat([c, follow[1]])[None])[0, 12:]
    assert cache.lengths.tolist() == [46, 18]
    assert torch.allclose(steps[0], solo_a, atol=1e-4), (steps[0] - solo_a).abs().max()
    assert torch.allclose(steps[1], solo_c, atol=1e-4), (steps[1] - solo_c).abs().max()


def test_cache_with_rows_of_different_lengths_takes_one_token_at_a_time(model, tok) -> None:
    with torch.no_grad():
        cache = model.new_cache(2)
        model(torch.stack([random_tokens(tok, 10, 1)] * 2), cache)
        short = model.new_cache(1)
        model(random_tokens(tok, 4, 2)[None], short)
        cache.copy_row_from(short, 0)
        with pytest.raises(ValueError, match="one token at a time"):
            model(torch.zeros(2, 3, dtype=torch.long), cache)


def test_forward_past_block_size_raises(tok) -> None:
    small = tiny_model(tok, block_size=16)
    with torch.no_grad(), pytest.raises(ValueError, match="block_size 16"):
        small(torch.zeros(1, 17, dtype=torch.long))


# --- known failure modes of long generation -----------------------------------------------------------
class FedTokens(DrumPatternTransformer):
    """Records every token the model is fed one step at a time (not the prefill or context rebuilds)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.fed: list[int] = []

    def forward(self, idx, cache=None, last_only=False, with_timing=False):
        if idx.size(1) == 1:
            self.fed += idx[:, 0].tolist()
        return super().forward(idx, cache, last_only, with_timing)


def test_the_model_is_fed_only_tokens_it_was_trained_on(tok) -> None:
    """Bars close with ``Bar`` (training never saw EOS or PAD mid-sequence), and finished samples are not fed."""
    spy = tiny_model(tok, cls=FedTokens)
    samples = generate_tokens(spy, tok, num_bars=6, temperature=1.5, top_k=0, top_p=1.0, seed=0, num_samples=16)
    assert tok.ids.eos not in spy.fed and tok.ids.pad not in spy.fed
    assert all(tok.ids.eos not in tokens for tokens in samples)
    # every fed token belongs to some sample: nothing is fed once a sample has ended
    assert len(spy.fed) <= sum(len(tokens) for tokens in samples)


class Biased(DrumPatternTransformer):
    """A random model whose logits get a per-row bias (rows of the batch; a rebuilt single row gets ``rebuild``)."""

    def __init__(self, config: ModelConfig, rows: torch.Tensor, rebuild: torch.Tensor) -> None:
        super().__init__(config)
        self.rows, self.rebuild = rows, rebuild  # (B, V), (V,)

    def forward(self, idx, cache=None, last_only=False, with_timing=False):
        out = super().forward(idx, cache, last_only, with_timing)
        logits, timing = out if with_timing else (out, None)
        bias = self.rows if idx.size(0) == self.rows.size(0) else self.rebuild[None]
        logits = logits + bias[:, None, :]
        return (logits, timing) if with_timing else logits


def bar_end_bias(tok: DrumTokenizer, amount: float) -> torch.Tensor:
    """Bias ``Bar`` by ``amount``; EOS always lies far below it, so bars close with ``Bar``."""
    bias = torch.zeros(len(tok))
    bias[tok.ids.bar] = amount
    bias[tok.ids.eos] = amount - 1e4
    return bias


def dense_bias(tok: DrumTokenizer) -> torch.Tensor:
    """Never end a bar early, step to the next position, and play every voice there: 10 tokens a step."""
    bias = bar_end_bias(tok, -1e4)
    bias[tok.ids.position] = -2.0 * torch.arange(len(tok.ids.position), dtype=torch.float)
    bias[[t for hits in tok.ids.hit.values() for t in hits]] = 10.0
    return bias


@pytest.mark.parametrize("block_size", [256, 1024],
                         ids=["block-256", "block-1024-as-shipped"])
def test_generation_never_overflows_with_dense_bars(tok, block_size: int) -> None:
    """Bars that fill the grammar's 200-token cap (every voice on every 16th) still give whole patterns."""
    dense = dense_bias(tok)
    model = tiny_model(tok, block_size=block_size, cls=Biased, rows=dense[None], rebuild=dense)
    (tokens,) = generate_tokens(model, tok, num_bars=8, temperature=1.0, top_k=0, top_p=1.0, seed=0)
    hits = walk(tok, tokens, 8)
    assert len(tokens) > 8 * 190 and len(hits) > 8 * 75, "the biased model should write dense bars"


def test_generation_never_overflows_when_samples_finish_apart(tok) -> None:
    """Sample 0 ends each bar after its one required hit; sample 1 writes dense bars for hundreds of steps."""
    sparse, dense = bar_end_bias(tok, 30.0), dense_bias(tok)
    model = tiny_model(tok, cls=Biased, rows=torch.stack([sparse, dense]), rebuild=dense)
    short, long = generate_tokens(model, tok, num_bars=2, temperature=1.0, top_k=0, top_p=1.0, seed=0,
                                  num_samples=2)
    walk(tok, short, 2)
    walk(tok, long, 2)
    assert len(short) == 2 * 4 and len(long) > 300  # Bar BarKind Position Hit, twice


@pytest.mark.parametrize("num_bars", [1, 4])
def test_no_bar_is_silent_even_when_the_model_wants_to_end_it(tok, num_bars: int) -> None:
    """A model that would close every bar at once still gives one hit in each bar (a user never gets a
    silent groove)."""
    eager = bar_end_bias(tok, 30.0)
    model = tiny_model(tok, cls=Biased, rows=eager[None].repeat(2, 1), rebuild=eager)
    for tokens in generate_tokens(model, tok, num_bars=num_bars, temperature=0.0, seed=0, num_samples=2):
        assert len(walk(tok, tokens, num_bars)) == num_bars
