"""The one table of request limits: each check refuses what it must, with a short message naming the
field and what is allowed, and the README's table is the table."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from drumgen.limits import (
    BARS,
    FILL_EVERY,
    KIT,
    LIMITS,
    MAX_ECHO,
    SEED,
    TEMPO,
    ChoiceLimit,
    NumberLimit,
    check_bool,
    limits_table,
)

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.parametrize(("limit", "value", "expected"), [
    (TEMPO, 90, 90.0), (TEMPO, 40.0, 40.0), (TEMPO, np.float32(120), 120.0),
    (BARS, 4.0, 4), (BARS, np.int64(32), 32),
    (SEED, 2**63 - 1, 2**63 - 1),  # exact: no float rounding of a big seed
    (FILL_EVERY, 2, 2), (FILL_EVERY, 4.0, 4), (FILL_EVERY, "8", 8),
    (KIT, " TR808 ", "tr808"), (KIT, "Brush", "brush"),
], ids=lambda v: repr(v)[:20])
def test_valid_values_come_back_in_the_field_s_type(limit: NumberLimit | ChoiceLimit, value: object,
                                                     expected: object) -> None:
    got = limit.check(value)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(("limit", "value"), [
    (TEMPO, 39.99), (TEMPO, 300.01), (TEMPO, math.nan), (TEMPO, math.inf), (TEMPO, -math.inf),
    (TEMPO, True), (TEMPO, "90"), (TEMPO, None), (TEMPO, [90]), (TEMPO, 10**400),
    (BARS, 2.5), (BARS, 0), (BARS, 33), (BARS, "four"), (BARS, False),
    (SEED, -1), (SEED, 2**63), (SEED, 1.5), (SEED, "abc"), (SEED, 10**400),
    (FILL_EVERY, 3), (FILL_EVERY, "²"), (FILL_EVERY, "1" * 5000), (FILL_EVERY, True),
    (KIT, "cowbell"), (KIT, "../../etc/passwd"), (KIT, 5),
], ids=lambda v: repr(v)[:20])
def test_bad_values_get_one_short_line_naming_the_field_and_the_range(limit: NumberLimit | ChoiceLimit,
                                                                      value: object) -> None:
    with pytest.raises(ValueError) as info:
        limit.check(value)
    message = str(info.value)
    assert message.startswith(f"{limit.name} must be ") and "\n" not in message
    assert limit.allowed() in message
    assert len(message) <= len(limit.name) + len(limit.allowed()) + MAX_ECHO + 20  # no huge echo


@pytest.mark.parametrize("value", ["false", "true", 0, 1, 2, None, "yes"], ids=repr)
def test_booleans_are_true_or_false_only(value: object) -> None:
    with pytest.raises(ValueError, match="^random_seed must be true or false"):
        check_bool("random_seed", value)
    assert check_bool("random_seed", True) is True and check_bool("random_seed", np.bool_(False)) is False


def test_every_limit_has_a_name_and_the_app_s_units_scale_the_range() -> None:
    assert all(name == limit.name for name, limit in LIMITS.items())
    humanize = LIMITS["humanize"].in_app()
    assert (humanize.lo, humanize.hi, humanize.unit) == (0, 100, " %") and "100 = " in humanize.allowed()


def test_the_readme_table_is_the_limits_table() -> None:
    assert limits_table() in README.read_text(), "update the README's bad-input table: drumgen.limits.limits_table()"
