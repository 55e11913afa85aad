"""Constraints on the next token, composed in order, in the manner of transformers' logits processors.

A sample's tokens are, per bar, ``Bar BarKind (Position Hit+)+`` (see :mod:`drumgen.tokenizer`).
:class:`SampleState` follows where one sample is in that grammar and which hits it has played;
each constraint is a small object with one method, ``__call__(state, scores) -> scores``, on that
sample's ``(V,)`` logits, checked once when made and applied in a list:

1. :class:`Grammar` - the token grammar: every sample decodes to a valid pattern of exactly the
   requested bars (positions rising, one hit per voice and instant, a hit in every bar);
2. :class:`FillBars` - which bars are fills (their ``BarKind``);
3. :class:`FixedHits` - hits that must be played (a prompt's or a locked voice's), and voices that
   may play only those;
4. :class:`VoicesOff` - voices that must not play;
5. :class:`LoopLean` - a lean toward the phrase's matching bar (the variation control).

A new behaviour is a new constraint, not a new branch in the sampling loop.
"""

from __future__ import annotations

import bisect
import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

import torch

from drumgen.tokenizer import DrumTokenizer

NEG_INF = float("-inf")
MAX_BAR_TOKENS = 200  # past this a bar may finish its current instant, then must end


class Phase(IntEnum):
    """What the grammar expects next."""

    START = 0  # the opening Bar
    KIND = 1  # the bar's BarKind
    FIRST_POSITION = 2  # the bar's first Position (a bar is never empty)
    HIT = 3  # a Hit at the Position just given
    NEXT = 4  # after a hit: a later Position, a higher voice at this one, or Bar
    DONE = 5


@dataclass(frozen=True, order=True)
class BarHit:
    """One hit in a bar as the grammar orders them: grid step, the voice's index, the Hit token."""

    step: int
    voice: int
    token: int


class Vocabulary:
    """The token ids and index tables the constraints share, built once per tokenizer."""

    def __init__(self, tok: DrumTokenizer) -> None:
        ids = tok.ids
        self.size = len(tok)
        self.bar = ids.bar
        self.pad = ids.pad
        self.kind_token = dict(ids.bar_kind)  # "beat"/"fill" -> id
        self.kind_of = {t: k for k, t in ids.bar_kind.items()}
        self.position_token = list(ids.position)  # step -> id
        self.step_of = {t: s for s, t in enumerate(ids.position)}
        self.pitches = sorted(ids.hit)  # voice index -> GM pitch (pitch order = grammar order)
        self.voice_of_pitch = {p: i for i, p in enumerate(self.pitches)}
        self.hit_tokens = [list(ids.hit[p]) for p in self.pitches]  # voice index -> ids by velocity bin
        self.voice_of = {t: v for v, tokens in enumerate(self.hit_tokens) for t in tokens}
        self.bin_of = {t: b for tokens in self.hit_tokens for b, t in enumerate(tokens)}
        self.velocity_values = list(tok.velocity_values)
        self.steps = len(ids.position)

    def mask(self, token_ids: Iterable[int]) -> torch.Tensor:
        m = torch.zeros(self.size, dtype=torch.bool)
        m[list(token_ids)] = True
        return m

    def hits_at_least(self, pitch: int, velocity: int) -> tuple[int, ...]:
        """The Hit tokens of ``pitch`` (a voice's GM pitch) whose velocity bin is at least ``velocity``."""
        voice = self.voice_of_pitch[pitch]
        return tuple(t for t, v in zip(self.hit_tokens[voice], self.velocity_values, strict=True) if v >= velocity)

    def hit_token(self, voice: int, velocity: int) -> int:
        """The Hit token of ``voice`` (index) at the velocity bin nearest ``velocity``."""
        values = self.velocity_values
        b = min(range(len(values)), key=lambda i: abs(values[i] - velocity))
        return self.hit_tokens[voice][b]


@functools.lru_cache(maxsize=8)
def vocabulary(tok: DrumTokenizer) -> Vocabulary:
    """The :class:`Vocabulary` of a tokenizer (built once)."""
    return Vocabulary(tok)


class SampleState:
    """Where one sample is in the grammar, and the bars it has written: bookkeeping, no masking."""

    def __init__(self, vocab: Vocabulary, num_bars: int) -> None:
        self.vocab = vocab
        self.num_bars = num_bars
        self.phase = Phase.START
        self.bar = -1  # the bar being written (0-based)
        self.position = -1  # step of the last Position in this bar (-1: none yet)
        self.voice = -1  # voice index of the last hit at that position (-1: none yet)
        self.bar_tokens = 0
        self.tokens: list[int] = []  # the new tokens, ``Bar BarKind ...`` per bar (no prefix, no final Bar)
        self.kinds: list[str] = []  # each bar's kind
        self.bars: list[list[BarHit]] = []  # each bar's hits in grammar order
        self.timing: dict[tuple[int, int, int], tuple[float, float]] = {}  # (bar, step, voice) -> mean, log std

    @property
    def done(self) -> bool:
        return self.phase == Phase.DONE

    @property
    def cursor(self) -> tuple[int, int]:
        """(step, voice) of the last hit or position in this bar; hits still to come sort after it."""
        return self.position, self.voice

    def record_timing(self, mean: float, log_std: float) -> None:
        """The timing head's prediction for the token just fed: kept when that token was a hit."""
        if self.phase == Phase.NEXT and self.bars and self.bars[-1]:
            hit = self.bars[-1][-1]
            self.timing.setdefault((self.bar, hit.step, hit.voice), (mean, log_std))

    def advance(self, token: int) -> None:
        """Take the sampled ``token`` and move on."""
        v = self.vocab
        if self.phase == Phase.DONE:
            return
        if token == v.bar:
            if self.bar + 1 >= self.num_bars:  # closes the last bar: the sample is complete
                self.phase = Phase.DONE
                return
            self.bar += 1
            self.phase, self.position, self.voice, self.bar_tokens = Phase.KIND, -1, -1, 1
            self.bars.append([])
        elif token in v.kind_of:
            self.kinds.append(v.kind_of[token])
            self.phase = Phase.FIRST_POSITION
            self.bar_tokens += 1
        elif token in v.step_of:
            self.position, self.voice, self.phase = v.step_of[token], -1, Phase.HIT
            self.bar_tokens += 1
        else:  # a hit
            self.voice, self.phase = v.voice_of[token], Phase.NEXT
            self.bars[-1].append(BarHit(self.position, self.voice, token))
            self.bar_tokens += 1
        self.tokens.append(token)


class Constraint(ABC):
    """One rule on a sample's next token: returns ``scores`` ((V,) logits) with illegal tokens at -inf
    or with a bias added (a new tensor when it changes anything)."""

    @abstractmethod
    def __call__(self, state: SampleState, scores: torch.Tensor) -> torch.Tensor:
        """The scores for ``state``'s next token under this rule."""


class Grammar(Constraint):
    """The token grammar (see the module docstring); past ``MAX_BAR_TOKENS`` a bar must end."""

    def __init__(self, vocab: Vocabulary, max_bar_tokens: int = MAX_BAR_TOKENS) -> None:
        self.vocab = vocab
        self.max_bar_tokens = max_bar_tokens
        v = vocab
        all_hits = [t for tokens in v.hit_tokens for t in tokens]
        self.phase_masks = {
            Phase.START: v.mask([v.bar]),
            Phase.KIND: v.mask(v.kind_token.values()),
            Phase.FIRST_POSITION: v.mask(v.position_token),
            Phase.HIT: v.mask(all_hits),
            Phase.DONE: v.mask([v.pad]),
        }
        # after a hit of voice d at step p: a later position, a higher voice, or Bar (row p * voices + d)
        n_voices = len(v.pitches)
        self.after_hit = torch.stack([
            v.mask(v.position_token[p + 1:] + [t for q in range(d + 1, n_voices) for t in v.hit_tokens[q]]
                   + [v.bar])
            for p in range(v.steps) for d in range(n_voices)
        ])
        self.end_only = v.mask([v.bar])
        self.n_voices = n_voices

    def allowed(self, state: SampleState) -> torch.Tensor:
        if state.phase != Phase.NEXT:
            return self.phase_masks[state.phase]
        if state.bar_tokens >= self.max_bar_tokens:
            return self.end_only
        return self.after_hit[state.position * self.n_voices + state.voice]

    def __call__(self, state: SampleState, scores: torch.Tensor) -> torch.Tensor:
        return scores.masked_fill(~self.allowed(state), NEG_INF)


@functools.lru_cache(maxsize=8)
def grammar_for(tok: DrumTokenizer) -> Grammar:
    """The grammar of a tokenizer's vocabulary (built once per tokenizer)."""
    return Grammar(vocabulary(tok))


def _only(scores: torch.Tensor, token: int) -> torch.Tensor:
    out = torch.full_like(scores, NEG_INF)
    out[token] = scores[token]
    return out


class FillBars(Constraint):
    """Bars (0-based) in ``fill_bars`` open with ``BarKind_fill``, every other bar with ``BarKind_beat``."""

    def __init__(self, vocab: Vocabulary, fill_bars: Iterable[int]) -> None:
        self.fill_bars = frozenset(fill_bars)
        self.fill, self.beat = vocab.kind_token["fill"], vocab.kind_token["beat"]

    def __call__(self, state: SampleState, scores: torch.Tensor) -> torch.Tensor:
        if state.phase != Phase.KIND:
            return scores
        return _only(scores, self.fill if state.bar in self.fill_bars else self.beat)


@dataclass(frozen=True)
class RequiredHit:
    """A hit a bar must play: grid step, GM pitch, and the velocity bins allowed (their Hit tokens)."""

    step: int
    pitch: int
    tokens: tuple[int, ...]


class FixedHits(Constraint):
    """Hits that must be played, per bar (e.g. a locked kick and snare, or a drumified bass line's
    onsets), and ``locked`` pitches that may play nowhere else.

    The grammar orders a bar's hits by (step, voice), so a required hit cannot be skipped: while one
    is due, later positions and ``Bar`` are illegal, and at its step voices above it are illegal
    until it is played.
    """

    def __init__(self, vocab: Vocabulary, required: Mapping[int, Sequence[RequiredHit]],
                 locked: Iterable[int] = ()) -> None:
        self.vocab = vocab
        v = vocab
        self.locked_voices = frozenset(v.voice_of_pitch[p] for p in locked)
        if len(self.locked_voices) >= len(v.pitches):
            raise ValueError("at least one voice must stay free to be generated")
        self.required: dict[int, list[tuple[tuple[int, int], RequiredHit]]] = {}
        for bar, hits in required.items():
            keyed = []
            for hit in hits:
                if hit.pitch not in v.voice_of_pitch or not 0 <= hit.step < v.steps or not hit.tokens:
                    raise ValueError(f"fixed hit {hit} is not a grid step and voice the model plays")
                keyed.append(((hit.step, v.voice_of_pitch[hit.pitch]), hit))
            keyed.sort(key=lambda kh: kh[0])
            if len({k for k, _ in keyed}) != len(keyed):
                raise ValueError(f"bar {bar} fixes the same voice twice at one step")
            if 2 * len(keyed) > MAX_BAR_TOKENS - 2:
                raise ValueError(f"bar {bar} fixes {len(keyed)} hits; at most {(MAX_BAR_TOKENS - 2) // 2} fit")
            self.required[bar] = keyed
        self.keys = {bar: [k for k, _ in hits] for bar, hits in self.required.items()}
        self.past_step = [v.mask(v.position_token[s + 1:] + [v.bar]) for s in range(v.steps)]
        self.above_voice = [v.mask([t for q in range(d + 1, len(v.pitches)) for t in v.hit_tokens[q]])
                            for d in range(len(v.pitches))]
        self.voice_mask = [v.mask(tokens) for tokens in v.hit_tokens]
        self.locked_mask = v.mask([t for d in self.locked_voices for t in v.hit_tokens[d]])

    def __call__(self, state: SampleState, scores: torch.Tensor) -> torch.Tensor:
        if state.phase not in (Phase.FIRST_POSITION, Phase.HIT, Phase.NEXT):
            return scores
        keys = self.keys.get(state.bar, [])
        due = bisect.bisect_right(keys, state.cursor)
        at_step = state.phase != Phase.FIRST_POSITION
        forbid = None
        if due < len(keys):
            (step, voice), hit = self.required[state.bar][due]
            forbid = self.past_step[step]
            if at_step and state.position == step:  # this instant must play the hit before any higher voice
                forbid = forbid | self.above_voice[voice] | self.voice_mask[voice]
        if self.locked_voices and at_step:
            forbid = self.locked_mask if forbid is None else forbid | self.locked_mask
        if forbid is None:
            return scores
        out = scores.masked_fill(forbid, NEG_INF)
        if due < len(keys) and at_step and state.position == keys[due][0]:
            hit = self.required[state.bar][due][1]
            index = list(hit.tokens)
            out[index] = scores[index]  # the required hit itself, at its allowed velocities
        return out


class VoicesOff(Constraint):
    """GM ``pitches`` (of the nine voices) that must not play at all."""

    def __init__(self, vocab: Vocabulary, pitches: Iterable[int]) -> None:
        voices = {vocab.voice_of_pitch[p] for p in pitches}
        if len(voices) >= len(vocab.pitches):
            raise ValueError("at least one voice must stay on")
        self.mask = vocab.mask([t for d in voices for t in vocab.hit_tokens[d]])

    def __call__(self, state: SampleState, scores: torch.Tensor) -> torch.Tensor:
        if state.phase not in (Phase.HIT, Phase.NEXT):
            return scores
        return scores.masked_fill(self.mask, NEG_INF)


POST_FILL_LEAN = 6.0  # nats (the lean of variation 12.5 %): the least a beat bar after a fill leans back
LEAN_PER_HALVING = 2.0  # nats added to the phrase's token for each halving of the variation
MIN_VARIATION = 1e-3  # below this the phrase is copied exactly


def lean_bias(variation: float) -> float:
    """Logit bias toward the phrase's next token at ``variation`` (0-1): 0 at 1, rising by
    ``LEAN_PER_HALVING`` nats each time the variation halves; infinite (an exact copy) at 0."""
    if variation < MIN_VARIATION:
        return math.inf
    return LEAN_PER_HALVING * math.log2(1.0 / variation)


class LoopLean(Constraint):
    """A lean toward the matching bar of the groove's phrase, so the groove loops like a drummer's.

    The phrase is the first two beat bars (one when the second bar is a fill), or ``phrase`` (e.g. a
    prompt's last bars) when given. A beat bar ``b`` leans toward phrase bar ``b mod len(phrase)``;
    the second phrase bar leans toward the first at half the strength; fill bars are free, and the bar
    after a fill leans back to the groove. The lean adds :func:`lean_bias` nats to the token the
    phrase bar plays next from where the sample is (the next hit at this instant, the next position,
    or ``Bar``), so the sample returns to the phrase after any departure; at variation 0 it copies it.
    """

    def __init__(self, vocab: Vocabulary, variation: float, fill_bars: Iterable[int] = (),
                 phrase: Sequence[Sequence[BarHit]] | None = None, phrase_bars: int = 2,
                 fixed: Mapping[int, Sequence[RequiredHit]] | None = None) -> None:
        if not 0.0 <= variation <= 1.0:
            raise ValueError(f"variation must be from 0 to 1 for a lean, got {variation!r}")
        self.vocab = vocab
        self.bias = lean_bias(variation)
        self.fill_bars = frozenset(fill_bars)
        self.phrase = [sorted(bar) for bar in phrase] if phrase else None
        self.phrase_bars = 1 if (1 in self.fill_bars or phrase_bars < 2) else 2
        # hits fixed in a bar (a FixedHits constraint's) join the reference, so the lean walks through them
        self.fixed = {bar: [BarHit(h.step, vocab.voice_of_pitch[h.pitch], h.tokens[len(h.tokens) // 2])
                            for h in hits] for bar, hits in (fixed or {}).items()}

    def reference(self, state: SampleState) -> tuple[list[BarHit], float] | None:
        """The phrase bar this bar leans toward, and the bias; None for a free bar."""
        bar = state.bar
        if bar in self.fill_bars:
            return None
        # after a fill the model has context it never saw mid-groove in training (fills close its
        # windows) and keeps playing toms: every later beat bar leans back at least this firmly
        bias = max(self.bias, POST_FILL_LEAN) if any(f < bar for f in self.fill_bars) else self.bias
        if self.phrase is not None:
            return self.phrase[bar % len(self.phrase)], bias
        if bar == 0:
            return None
        if bar < self.phrase_bars:  # the phrase's own second bar: a softer lean toward its first
            return state.bars[0], bias / 2
        return state.bars[bar % self.phrase_bars], bias

    def suggestion(self, state: SampleState, ref: list[BarHit]) -> int | None:
        """The token the reference bar plays next from the sample's cursor."""
        v = self.vocab
        i = bisect.bisect_right(ref, BarHit(*state.cursor, v.size))  # first reference hit after the cursor
        nxt = ref[i] if i < len(ref) else None
        if state.phase == Phase.FIRST_POSITION:
            return v.position_token[ref[0].step] if ref else None
        if state.phase == Phase.HIT:
            return nxt.token if nxt is not None and nxt.step == state.position else None
        if nxt is None:
            return v.bar
        return nxt.token if nxt.step == state.position else v.position_token[nxt.step]

    def __call__(self, state: SampleState, scores: torch.Tensor) -> torch.Tensor:
        if state.phase not in (Phase.FIRST_POSITION, Phase.HIT, Phase.NEXT):
            return scores
        ref = self.reference(state)
        if ref is None:
            return scores
        hits = ref[0]
        if state.bar in self.fixed:
            fixed = {(h.step, h.voice): h for h in self.fixed[state.bar]}
            hits = sorted([h for h in hits if (h.step, h.voice) not in fixed] + list(fixed.values()))
        token = self.suggestion(state, hits)
        if token is None or scores[token] == NEG_INF:  # the phrase's token is illegal here
            return scores
        if math.isinf(ref[1]):
            return _only(scores, token)
        out = scores.clone()
        out[token] += ref[1]
        return out


def apply_constraints(constraints: Sequence[Constraint], state: SampleState, scores: torch.Tensor) -> torch.Tensor:
    """``scores`` after every constraint in order; ``RuntimeError`` when they leave no legal token."""
    for constraint in constraints:
        scores = constraint(state, scores)
    if not bool(torch.isfinite(scores).any()):
        raise RuntimeError(f"the sampling constraints left no legal token in bar {state.bar + 1} "
                           f"(phase {state.phase.name}); they contradict each other")
    return scores
