"""Genre contrast (classifier-free guidance with a neighbouring genre) in the real decoder."""

from __future__ import annotations

import pytest
import torch
from test_grammar_generate import walk

from drumgen.constraints import FillBars, grammar_for
from drumgen.generate import Decoder, sample_tokens
from drumgen.model import DrumPatternTransformer, ModelConfig
from drumgen.sampling import SamplingSettings
from drumgen.tokenizer import DrumTokenizer

FREE = SamplingSettings(temperature=1.0, top_k=0, top_p=1.0)


@pytest.fixture(scope="module")
def tok() -> DrumTokenizer:
    return DrumTokenizer()


@pytest.fixture(scope="module")
def model(tok: DrumTokenizer) -> DrumPatternTransformer:
    torch.manual_seed(0)
    m = DrumPatternTransformer(ModelConfig(vocab_size=len(tok.vocab), block_size=512, n_layer=1, n_head=2,
                                           n_embd=32, dropout=0.0))
    with torch.no_grad():  # weights large enough that the genre token changes what comes next
        for p in m.parameters():
            p.mul_(3.0)
    return m.eval()


def test_guided_logits_are_the_genre_played_away_from_its_neighbour(tok: DrumTokenizer,
                                                                    model: DrumPatternTransformer) -> None:
    prefix, other = tok.prefix("pop", 100), tok.prefix("rock", 100)
    bar = [tok.ids.bar, tok.ids.bar_kind["beat"]]

    def expected(context: list[int]) -> torch.Tensor:
        main = model(torch.tensor([context]))[0, -1].log_softmax(-1)
        twin = model(torch.tensor([other + context[len(other):]]))[0, -1].log_softmax(-1)
        assert not torch.allclose(main, twin), "the test model ignores the genre token"
        return main + 1.5 * (main - twin)

    with torch.inference_mode():
        decoder = Decoder(model, 2, other, 1.5)
        assert torch.allclose(decoder.prefill(prefix, 2), expected(prefix).expand(2, -1), atol=1e-4)
        stepped = decoder.step(torch.tensor([bar[0], bar[0]]))
        assert torch.allclose(stepped, expected(prefix + bar[:1]).expand(2, -1), atol=1e-4)
        # a rebuilt row's twin is rebuilt on the other genre's head too
        assert torch.allclose(decoder.rebuild(1, prefix + bar), expected(prefix + bar), atol=1e-4)


def test_a_guided_sample_is_valid_and_does_not_depend_on_its_batch(tok: DrumTokenizer,
                                                                   model: DrumPatternTransformer) -> None:
    """12 bars force a context rebuild and rows finish at different steps: each row's twin must
    follow it through both, or a variation would change with the others beside it."""
    prefix, other = tok.prefix("pop", 100), tok.prefix("rock", 100)
    beats = [FillBars(grammar_for(tok).vocab, ())]
    batch = sample_tokens(model, tok, prefix, 12, FREE, [3, 4, 5], beats, contrast=other, contrast_weight=1.5)
    alone = sample_tokens(model, tok, prefix, 12, FREE, [4], beats, contrast=other, contrast_weight=1.5)
    assert batch[1].tokens == alone[0].tokens
    for state in batch:
        walk(tok, state.tokens, 12)
    plain = sample_tokens(model, tok, prefix, 12, FREE, [4], beats)
    assert plain[0].tokens != alone[0].tokens, "the contrast changed nothing"
    unweighted = sample_tokens(model, tok, prefix, 12, FREE, [4], beats, contrast=other, contrast_weight=0.0)
    assert unweighted[0].tokens == plain[0].tokens


def test_a_contrast_head_is_a_whole_head(tok: DrumTokenizer, model: DrumPatternTransformer) -> None:
    with pytest.raises(ValueError, match="contrast head"):
        sample_tokens(model, tok, tok.prefix("pop", 100), 1, FREE, [0], contrast=[tok.ids.bos], contrast_weight=1.0)
