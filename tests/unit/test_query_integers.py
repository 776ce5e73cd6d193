"""REST query integers (``limit``, ``offset``): ASCII digits in range, nothing else."""

from __future__ import annotations

import pytest

from pushsvc.api import parse_integer


@pytest.mark.parametrize(
    "text, value",
    [("1", 1), ("1000", 1000), ("0042", 42), ("0", None), ("1001", None), ("", None), ("-1", None), ("+1", None)],
)
def test_limit_range(text, value):
    assert parse_integer(text, 1, 1000) == value


@pytest.mark.parametrize(
    "text",
    [
        "²",  # superscript two: isdigit() but int() refuses
        "①",  # circled one
        "٣",  # Arabic-Indic three: int() would take it as 3
        "۳",  # extended Arabic-Indic
        "３",  # fullwidth
        "1_0",
        " 1",
        "1 ",
        "1.0",
        "1e3",
        "0x10",
        "9" * 5000,
    ],
)
def test_anything_but_ascii_digits_is_refused(text):
    assert parse_integer(text, 0, 2**31 - 1) is None


def test_offset_bounds():
    assert parse_integer("2147483647", 0, 2**31 - 1) == 2**31 - 1
    assert parse_integer("2147483648", 0, 2**31 - 1) is None
    assert parse_integer("0", 0, 2**31 - 1) == 0
