"""Property-based tests (hypothesis) of :meth:`drumgen.engine.Engine.generate`, the one function
behind the UI, the API and the CLI, over the whole parameter space of :class:`GenerateRequest`.

Each field is drawn either from its valid values (boundaries included: temperature 0 and tiny,
top-p 0 and 1, top-k 0 and far above the vocabulary, 1-32 bars at 40-300 BPM, seeds up to 2^63-1)
or from invalid ones (out of range, NaN, infinity, wrong type, unknown or path-like names). The
oracle: when every field is valid the request must give ``count`` patterns of exactly the asked
bars whose MIDI re-imports with the same bars and tempo; otherwise it must raise ``ValueError``
naming one of the invalid fields. Runs on conftest's tiny checkpoint (fast on a CPU) with
``audio=False``. Also: the same seed gives the same MIDI bytes alone or among concurrent requests.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from drumgen.constants import MAX_SEED
from drumgen.engine import Engine
from drumgen.midi_io import midi_to_pattern
from drumgen.request import GenerateRequest
from drumgen.styles import get_style, list_styles
from drumgen.tokenizer import DrumTokenizer
from drumgen.voices import KIT_PROGRAMS

STYLES = list_styles()
VOCAB = len(DrumTokenizer())  # top-k at and around the vocabulary size
NAN, INF = math.nan, math.inf
MAX_EXAMPLES = 50


ENGINE: list[Engine] = []  # hypothesis runs the test function many times: one engine for all


@pytest.fixture(scope="module", autouse=True)
def tiny_model(tiny_checkpoint: tuple[Path, dict], torch_single_thread: None) -> None:
    """Every style plays on conftest's tiny checkpoint in this module."""
    folder, _ = tiny_checkpoint
    ENGINE.append(Engine.load(folder / "drumgen.pt"))
    yield
    ENGINE.clear()


def generate_grooves(request: GenerateRequest) -> list:
    return ENGINE[0].generate(request)


def numbers(lo: float, hi: float) -> st.SearchStrategy:
    """Finite floats in [lo, hi] (both ends and subnormals near 0 included) and ints in range."""
    return st.one_of(st.sampled_from([lo, hi]), st.floats(lo, hi, allow_nan=False),
                     st.integers(math.ceil(lo), math.floor(hi)))


def bad_numbers(lo: float, hi: float) -> st.SearchStrategy:
    """NaN, infinities, just outside the range, far outside, and non-numbers."""
    return st.one_of(st.sampled_from([NAN, INF, -INF, "fast", "", [1], True]),
                     st.floats(max_value=lo, exclude_max=True, allow_nan=False, allow_infinity=False),
                     st.floats(min_value=hi, exclude_min=True, allow_nan=False, allow_infinity=False),
                     st.integers(max_value=math.ceil(lo) - 1), st.integers(min_value=math.floor(hi) + 1))


def wholes(lo: int, hi: int) -> st.SearchStrategy:
    return st.one_of(st.integers(lo, hi), st.integers(lo, hi).map(float))  # 4.0 counts as 4


def bad_wholes(lo: int, hi: int) -> st.SearchStrategy:
    fractions = st.floats(lo, hi).map(lambda v: v if not v.is_integer() else v + 0.25)
    return st.one_of(bad_numbers(lo, hi), fractions)


style_names = [p.id for p in STYLES] + [p.name for p in STYLES] + [p.name.upper() for p in STYLES]


def is_style(name: str) -> bool:
    try:
        get_style(name)
    except ValueError:
        return False
    return True


bad_style_names = st.one_of(
    st.sampled_from(["", "   ", "../../etc/passwd", "/etc/passwd", "styles/funk.toml", "funk\x00", "j_dilla_v9",
                     None, 5]),
    st.text(max_size=12).filter(lambda s: not is_style(s)),
)
# bars: mostly short (fast), up to 32 now and then
bar_counts = st.one_of(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.integers(5, 32),
                       st.just(32)).flatmap(lambda n: st.sampled_from([n, float(n)]))

FIELDS: dict[str, tuple[st.SearchStrategy, st.SearchStrategy]] = {  # name: (valid values, invalid values)
    "style": (st.sampled_from(style_names), bad_style_names),
    "bars": (bar_counts, st.one_of(bad_wholes(1, 32), st.none())),
    "tempo": (st.one_of(st.none(), numbers(40, 300)), bad_numbers(40, 300)),
    "seed": (st.one_of(st.none(), st.integers(0, MAX_SEED), st.sampled_from([0, MAX_SEED, 2**31])),
             st.one_of(st.integers(max_value=-1), st.integers(min_value=MAX_SEED + 1),
                       st.sampled_from([1.5, NAN, INF, "abc", True, 2.0**70]))),
    "count": (st.integers(1, 3), st.sampled_from([0, 65, -1, 1.5, NAN, "two", None])),
    "temperature": (st.one_of(st.none(), numbers(0, 2), st.sampled_from([1e-300, 5e-324, 1e-7])),
                    bad_numbers(0, 2)),
    "top_k": (st.one_of(st.none(), st.integers(0, 500), st.sampled_from([0, 1, VOCAB - 1, VOCAB, VOCAB + 1, 500])),
              bad_wholes(0, 500)),
    "top_p": (st.one_of(st.none(), numbers(0, 1), st.sampled_from([0.0, 1e-300, 1.0])), bad_numbers(0, 1)),
    "humanize": (numbers(0, 1), st.one_of(bad_numbers(0, 1), st.none())),
    "variation": (st.one_of(st.none(), numbers(0, 1)), bad_numbers(0, 1)),
    "swing": (st.one_of(st.none(), numbers(50, 75)), bad_numbers(50, 75)),
    "kit": (st.one_of(st.none(), st.just(""), st.sampled_from([*KIT_PROGRAMS, " TR808 ", "Brush"])),
            st.sampled_from(["cowbell", "../../etc/passwd", "tr-909", 5, 0.5])),
    "fill_every": (st.one_of(st.none(), st.sampled_from([0, 2, 4, 8, 2.0])),
                   st.sampled_from([1, 3, -2, 16, 2.5, NAN, "often"])),
}


@st.composite
def requests(draw: st.DrawFn) -> tuple[dict, set[str]]:
    """``(parameters, names of the invalid ones)``: all valid about half the time, else one to three bad."""
    bad = draw(st.sets(st.sampled_from(list(FIELDS)), min_size=1, max_size=3)) if draw(st.booleans()) else set()
    return {name: draw(FIELDS[name][name in bad]) for name in FIELDS}, bad


BASE = {"style": "funk", "bars": 1, "tempo": None, "seed": 1, "count": 1, "temperature": None, "top_k": None,
        "top_p": None, "humanize": 1.0, "variation": None, "swing": None, "kit": None, "fill_every": None}
EDGES = [  # (overrides, names of the invalid fields): boundaries and past failures, tried before random draws
    ({"temperature": 0}, set()), ({"temperature": 1e-300}, set()), ({"temperature": 5e-324}, set()),
    ({"top_p": 0}, set()), ({"top_p": 1}, set()), ({"top_k": 0}, set()), ({"top_k": 500}, set()),
    ({"variation": 0}, set()), ({"variation": 0, "bars": 12, "fill_every": 4}, set()), ({"variation": 1e-9}, set()),
    ({"variation": 1.01}, {"variation"}), ({"tempo": "90"}, {"tempo"}), ({"bars": 10**400}, {"bars"}),
    ({"bars": 32, "tempo": 300}, set()), ({"bars": 1, "tempo": 40}, set()), ({"seed": MAX_SEED, "count": 3}, set()),
    ({"style": "Metro Boomin", "bars": 3}, set()),
    ({"style": "Metro Boomin", "seed": 1820063225, "humanize": 0}, set()),  # once gave a silent bar
    ({"seed": 2**63}, {"seed"}), ({"seed": True}, {"seed"}), ({"seed": NAN}, {"seed"}), ({"tempo": NAN}, {"tempo"}),
    ({"tempo": INF}, {"tempo"}), ({"bars": 33}, {"bars"}), ({"bars": "four"}, {"bars"}), ({"style": ""}, {"style"}),
    ({"style": "no_such_style"}, {"style"}), ({"style": "../../etc/passwd"}, {"style"}), ({"top_k": -1}, {"top_k"}),
    ({"top_k": 10**30}, {"top_k"}), ({"top_p": 1.5}, {"top_p"}), ({"temperature": -INF}, {"temperature"}),
    ({"humanize": True}, {"humanize"}), ({"swing": 90}, {"swing"}), ({"kit": "../x"}, {"kit"}),
    ({"fill_every": 3}, {"fill_every"}), ({"count": 65}, {"count"}),
]


def with_edges(test):
    for overrides, bad in reversed(EDGES):
        test = example(drawn=({**BASE, **overrides}, bad))(test)
    return test


@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@with_edges
@given(drawn=requests())
def test_every_request_gives_a_valid_groove_or_names_the_bad_field(drawn: tuple[dict, set[str]]) -> None:
    params, bad = drawn
    request = GenerateRequest(**params, audio=False)
    if bad:
        with pytest.raises(ValueError) as info:
            generate_grooves(request)
        message = str(info.value)
        assert any(name in message for name in bad), f"{message!r} names none of {sorted(bad)}"
        assert "\n" not in message  # one line
        return
    grooves = generate_grooves(request)
    bars = int(params["bars"])
    assert len(grooves) == int(params["count"])
    seeds = [g.seed for g in grooves]
    if params["seed"] is not None:
        assert seeds == [(int(params["seed"]) + i) % (MAX_SEED + 1) for i in range(len(grooves))]
    for groove in grooves:
        pattern = groove.pattern
        assert pattern.bars == bars and pattern.notes
        assert all(0 <= n.onset < pattern.length_ticks for n in pattern.notes)
        tempo = groove.summary["tempo"]
        if params["tempo"] is not None:
            assert tempo == pytest.approx(float(params["tempo"]))
        back = midi_to_pattern(groove.midi)
        assert back.bars == bars
        assert back.tempo == pytest.approx(tempo, abs=0.01)
        assert len(back.notes) == len(pattern.notes)
        assert "/" not in groove.filename and ".." not in groove.filename and groove.filename.endswith(".mid")


def test_same_seed_gives_the_same_midi_alone_or_among_concurrent_requests() -> None:
    """No shared random state: 16 concurrent requests (varied styles and settings) do not
    disturb each other, and each matches the same request run alone."""
    requests = [GenerateRequest(style=STYLES[i % len(STYLES)].id, bars=1 + i % 3, seed=1000 + i, audio=False,
                                temperature=0.8 + 0.05 * i, top_k=i * 5, humanize=(i % 5) / 4)
                for i in range(16)]
    alone = [generate_grooves(r)[0].midi for r in requests]
    with ThreadPoolExecutor(max_workers=16) as pool:
        together = list(pool.map(lambda r: generate_grooves(r)[0].midi, requests))
        repeat = list(pool.map(lambda r: generate_grooves(r)[0].midi, [requests[0]] * 16))
    assert together == alone
    assert set(repeat) == {alone[0]}
    assert len(set(alone)) == len(alone)  # different seeds and settings do give different grooves
