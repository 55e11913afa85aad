"""The one table of request limits.

Every value a user sends (Python, CLI, app, API) is checked against this table once per request,
by :func:`drumgen.request.resolve_request`; the app's sliders, the CLI's help and choices and the
README's bad-input table are made from it. A bad value gets a ``ValueError`` whose message names
the field and what is allowed, and echoes at most a short prefix of what was sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from drumgen.constants import (
    FILL_EVERY_CHOICES,
    MAX_BARS,
    MAX_COUNT,
    MAX_SEED,
    MAX_SWING,
    MAX_TEMPO,
    MAX_UI_VARIATIONS,
    MIN_BARS,
    MIN_SWING,
    MIN_TEMPO,
    SAMPLE_RATES,
)
from drumgen.voices import KIT_PROGRAMS

MAX_ECHO = 40  # characters of a bad value quoted back in an error


def shown(value: Any) -> str:
    """``repr(value)``, cut to a short prefix so a huge input is never echoed whole."""
    text = repr(value)
    return text if len(text) <= MAX_ECHO else text[:MAX_ECHO - 3] + "..."


def _as_number(value: Any) -> float | int | None:
    """An int (kept exact, of any size), a float (finite or not), or None when ``value`` is not a
    number: booleans and strings are not numbers (``"90"``, ``"²"`` or a 5,000-digit string are refused,
    never converted)."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    return None


@dataclass(frozen=True)
class NumberLimit:
    """A number field: ``lo``-``hi`` (inclusive), whole or not; ``scale`` is how the app shows it
    (100 for a 0-1 amount shown in percent)."""

    name: str
    lo: float
    hi: float
    whole: bool = False
    unit: str = ""
    note: str = ""  # what special values mean, e.g. "0 = greedy"
    scale: float = 1.0
    app_note: str = ""  # the note in the app's units, when ``scale`` is not 1

    def allowed(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        hi = "2^63-1" if self.hi == MAX_SEED else f"{self.hi:g}"
        note = f" ({self.note})" if self.note else ""
        return f"{kind} from {self.lo:g} to {hi}{self.unit}{note}"

    def error(self, value: Any) -> ValueError:
        return ValueError(f"{self.name} must be {self.allowed()}, got {shown(value)}")

    def check(self, value: Any) -> float | int:
        """``value`` as a float (an int for whole fields) inside the range, else ``ValueError``."""
        number = _as_number(value)
        if number is None:
            raise self.error(value)
        if isinstance(number, float):
            if not math.isfinite(number):
                raise self.error(value)
            if self.whole:
                if not number.is_integer():
                    raise self.error(value)
                number = int(number)
        if not self.lo <= number <= self.hi:  # exact for ints of any size
            raise self.error(value)
        return int(number) if self.whole else float(number)

    def in_app(self) -> NumberLimit:
        """The same limit in the app's units (e.g. 0-100 % for a 0-1 amount)."""
        if self.scale == 1.0:
            return self
        return replace(self, lo=self.lo * self.scale, hi=self.hi * self.scale, unit=" %", scale=1.0,
                       note=self.app_note or self.note)


@dataclass(frozen=True)
class ChoiceLimit:
    """A field that takes one of ``choices`` (compared as given; strings case-insensitively)."""

    name: str
    choices: tuple[Any, ...]
    note: str = ""

    def allowed(self) -> str:
        note = f" ({self.note})" if self.note else ""
        return f"one of {', '.join(map(str, self.choices))}{note}"

    def error(self, value: Any) -> ValueError:
        return ValueError(f"{self.name} must be {self.allowed()}, got {shown(value)}")

    def check(self, value: Any) -> Any:
        if isinstance(value, str):
            key = value.strip().lower()
            for choice in self.choices:
                if str(choice).lower() == key:
                    return choice
            raise self.error(value)
        number = _as_number(value)
        if number is not None:
            for choice in self.choices:
                if not isinstance(choice, str) and choice == number:
                    return choice
        raise self.error(value)


def check_bool(name: str, value: Any) -> bool:
    """``True`` or ``False`` only (JSON true/false); no string, number or other value is a boolean."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise ValueError(f"{name} must be true or false, got {shown(value)}")


BARS = NumberLimit("bars", MIN_BARS, MAX_BARS, whole=True)
TEMPO = NumberLimit("tempo", MIN_TEMPO, MAX_TEMPO, unit=" BPM")
SEED = NumberLimit("seed", 0, MAX_SEED, whole=True)
COUNT = NumberLimit("count", 1, MAX_COUNT, whole=True)
VARIATIONS = NumberLimit("variations", 1, MAX_UI_VARIATIONS, whole=True)
TEMPERATURE = NumberLimit("temperature", 0.0, 2.0, note="0 = always the likeliest token")
TOP_K = NumberLimit("top_k", 0, 500, whole=True, note="0 = off")
TOP_P = NumberLimit("top_p", 0.0, 1.0, note="1 = off")
HUMANIZE = NumberLimit("humanize", 0.0, 1.0, note="0 = on the grid, 1 = the style's full feel", scale=100.0,
                       app_note="0 = on the grid, 100 = the style's full feel")
VARIATION = NumberLimit("variation", 0.0, 1.0, note="0 = the first phrase repeats, 1 = free sampling", scale=100.0,
                        app_note="0 = the first phrase repeats, 100 = free sampling")
SWING = NumberLimit("swing", MIN_SWING, MAX_SWING, unit=" %")
FILL_EVERY = ChoiceLimit("fill_every", FILL_EVERY_CHOICES, note="bars; 0 = no fills")
KIT = ChoiceLimit("kit", tuple(KIT_PROGRAMS))
SAMPLE_RATE = ChoiceLimit("sample_rate", SAMPLE_RATES, note="Hz")
MODE = ChoiceLimit("mode", ("humanize", "continue", "reroll", "drumify"), note="what to do with an uploaded MIDI file")

LIMITS: dict[str, NumberLimit | ChoiceLimit] = {
    limit.name: limit for limit in (BARS, TEMPO, SEED, COUNT, VARIATIONS, TEMPERATURE, TOP_K, TOP_P, HUMANIZE,
                                    VARIATION, SWING, FILL_EVERY, KIT, SAMPLE_RATE, MODE)
}


def limits_table() -> str:
    """The limits as a Markdown table (the README's bad-input table is this)."""
    rows = ["| field | allowed |", "|---|---|"]
    for limit in LIMITS.values():
        allowed = limit.allowed()
        if isinstance(limit, NumberLimit) and limit.scale != 1.0:
            allowed += f"; in the app and API {limit.in_app().allowed()}"
        rows.append(f"| `{limit.name}` | {allowed} |")
    return "\n".join(rows)
