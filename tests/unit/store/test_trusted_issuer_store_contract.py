"""The contract of `TrustedIssuerStore` (RFC 7523 §2.1 assertion issuers), run against every
`Store` implementation (memory, SQLite, PostgreSQL): the issuer is unique per domain, found by
its exact string, and each domain sees only its own."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tessera.domain.model import TrustedIssuer
from tessera.store.protocols import Conflict, DomainContent, NotFound, Store
from tests.unit.store.test_domain_store_contract import a_domain

T0 = datetime(2026, 1, 1, tzinfo=UTC)
JWKS = '{"keys":[{"crv":"P-256","kty":"EC","x":"eA","y":"eQ"}]}'


def an_issuer(
    issuer_id: str = "ti1", issuer: str = "https://partner.test", **kw: Any
) -> TrustedIssuer:
    return TrustedIssuer(issuer_id, issuer, T0, T0, **kw)


def test_add_find_list_round_trip(store: Store) -> None:
    first = an_issuer(jwks=JWKS, allowed_apps=("c1", "c2"), allowed_scopes=("openid",))
    second = an_issuer("ti2", "partner-b", jwks_uri="https://b.test/jwks", created_by="admin")
    store.trusted_issuers.add(first)
    store.trusted_issuers.add(second)
    assert store.trusted_issuers.get("ti1") == first
    assert store.trusted_issuers.find("https://partner.test") == first
    assert store.trusted_issuers.find("https://partner.test/") is None  # exact match only
    assert store.trusted_issuers.find("PARTNER-B") is None
    assert store.trusted_issuers.list() == [first, second]  # by issuer


def test_issuer_is_unique_per_domain(store: Store) -> None:
    store.trusted_issuers.add(an_issuer())
    with pytest.raises(Conflict):
        store.trusted_issuers.add(an_issuer("ti2"))
    store.trusted_issuers.add(an_issuer("ti2", "other"))
    with pytest.raises(Conflict):
        store.trusted_issuers.update(replace(an_issuer("ti2"), issuer="https://partner.test"))
    assert store.trusted_issuers.get("ti2") == an_issuer("ti2", "other")


def test_update_and_delete(store: Store) -> None:
    store.trusted_issuers.add(an_issuer(jwks=JWKS))
    later = T0 + timedelta(seconds=5)
    changed = replace(
        an_issuer(), jwks=None, jwks_uri="https://p.test/k", allowed_apps=("c9",), updated_at=later
    )
    store.trusted_issuers.update(changed)
    assert store.trusted_issuers.get("ti1") == changed
    with pytest.raises(NotFound):
        store.trusted_issuers.update(an_issuer("nope", "x"))
    store.trusted_issuers.delete("ti1")
    assert store.trusted_issuers.get("ti1") is None
    with pytest.raises(NotFound):
        store.trusted_issuers.delete("ti1")


def test_each_domain_sees_only_its_own(store: Store) -> None:
    store.domains.create(a_domain("d1", "one"), DomainContent())
    other = store.for_domain("d1")
    store.trusted_issuers.add(an_issuer())
    other.trusted_issuers.add(an_issuer("ti1", "https://partner.test"))  # same id and issuer
    assert other.trusted_issuers.list() == [an_issuer()]
    other.trusted_issuers.delete("ti1")
    assert store.trusted_issuers.find("https://partner.test") == an_issuer()
