"""The fast form encoding gives exactly what the standard library gives, on random input built
from the characters that matter (escapes, '+', '&', '=', non-ASCII, invalid escapes)."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl, urlencode

import pytest

from tessera.shared.urlencoding import TooManyFields, encode_pairs, parse_pairs

_ALPHABET = [
    "a",
    "Z",
    "0",
    "-",
    "_",
    ".",
    "~",
    "%",
    "+",
    "&",
    "=",
    " ",
    "/",
    ":",
    "é",
    "€",
    "%2",
    "%C3%A9",
    "%zz",
    "%FF",
    "%00",
]


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 30)))


def _stdlib_parse(text: str, max_fields: int) -> list[tuple[str, str]] | str:
    try:
        return parse_qsl(text, keep_blank_values=True, max_num_fields=max_fields, errors="strict")
    except UnicodeDecodeError:
        return "unicode"
    except ValueError:
        return "too many"


def _ours(text: str, max_fields: int) -> list[tuple[str, str]] | str:
    try:
        return parse_pairs(text, max_fields)
    except UnicodeDecodeError:
        return "unicode"
    except TooManyFields:
        return "too many"


def test_parsing_matches_parse_qsl_on_random_input() -> None:
    rng = random.Random(2026)
    for _ in range(20000):
        text = _random_text(rng)
        assert _ours(text, 8) == _stdlib_parse(text, 8), text


def test_encoding_matches_urlencode_on_random_input() -> None:
    rng = random.Random(11)
    for _ in range(5000):
        pairs = [(_random_text(rng), _random_text(rng)) for _ in range(rng.randint(0, 4))]
        assert encode_pairs(pairs) == urlencode(pairs), pairs
        assert parse_pairs(encode_pairs(pairs), 64) == pairs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=1&b=&c", [("a", "1"), ("b", ""), ("c", "")]),
        (
            "scope=openid+profile&redirect_uri=https%3A%2F%2Fa.test%2Fcb",
            [
                ("scope", "openid profile"),
                ("redirect_uri", "https://a.test/cb"),
            ],
        ),
        ("&&x=%20y&", [("x", " y")]),
    ],
)
def test_parsing_examples(text: str, expected: list[tuple[str, str]]) -> None:
    assert parse_pairs(text, 64) == expected


def test_the_field_limit_counts_separators_like_the_standard_library() -> None:
    with pytest.raises(TooManyFields):
        parse_pairs("a=1&" * 64, 64)
    assert len(parse_pairs("a=1&" * 63, 64)) == 63
