"""Path parameters reach backends only as one percent-encoded segment, never a dot segment."""

from __future__ import annotations

import pytest

from tessera.integration.paths import fill_url, unsafe_parameter


@pytest.mark.parametrize(
    "value", [".", "..", "%2e", "%2e%2e", ".%2E", "%2E.", "%252e%252e", "a/b", "a%2Fb", "a\\b", "a%5Cb"]
)
def test_dot_segment_and_separator_parameters_cannot_reach_a_backend(value: str) -> None:
    assert unsafe_parameter(value)


@pytest.mark.parametrize("value", ["42", "a.b", "...", "..a", "100%", "caf%C3%A9", "x y"])
def test_ordinary_parameters_pass(value: str) -> None:
    assert not unsafe_parameter(value)


def test_parameters_are_percent_encoded_into_backend_urls() -> None:
    url = fill_url("https://backend.test/orders/{id}/items?for={id}", {"id": "a b?c#d%2F&e"})
    assert url == "https://backend.test/orders/a%20b%3Fc%23d%252F%26e/items?for=a%20b%3Fc%23d%252F%26e"
