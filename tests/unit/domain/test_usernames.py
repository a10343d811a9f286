"""The username rule (tessera.domain.usernames), shared by the CLI, the admin API, SCIM and
just-in-time accounts of federated sign-in."""

from __future__ import annotations

import pytest

from tessera.domain.usernames import valid_username


@pytest.mark.parametrize("name", ["ada", "Ada.Lovelace", "a", "ada+test@corp.example", "x" * 200])
def test_valid_usernames(name: str) -> None:
    assert valid_username(name)


@pytest.mark.parametrize(
    "name", ["", ".ada", "-ada", "ada lovelace", "ada\n", "ada\u00e9", "x" * 201, "a/b"]
)
def test_invalid_usernames(name: str) -> None:
    assert not valid_username(name)
