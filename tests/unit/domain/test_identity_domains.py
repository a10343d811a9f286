"""Identity domains' rules: names, hosts, settings, URL prefix and issuer (docs/domains.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tessera.domain.identity_domains import (
    DEFAULT_DOMAIN,
    DomainSettings,
    IdentityDomain,
    InvalidDomain,
    check_domain_name,
    check_host,
    domain_issuer,
    domain_prefix,
    new_domain_id,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BASE = "http://127.0.0.1:8000"


def a_domain(**kw: object) -> IdentityDomain:
    values: dict[str, object] = {
        "id": "d1",
        "name": "acme",
        "display_name": "Acme",
        "created_at": T0,
    }
    values.update(kw)
    return IdentityDomain(**values)  # type: ignore[arg-type]


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("acme", "acme"),
        ("  Acme-Corp ", "acme-corp"),
        ("a", "a"),
        ("0", "0"),
        ("x" * 63, "x" * 63),
        ("team-42", "team-42"),
    ],
)
def test_a_domain_name_is_a_lower_case_dns_label(given: str, kept: str) -> None:
    assert check_domain_name(given) == kept


@pytest.mark.parametrize(
    "bad",
    ["", " ", "-acme", "acme-", "ac_me", "ac.me", "ac me", "x" * 64, "acmé", "a/b", "%2e%2e", ".."],
)
def test_a_domain_name_outside_the_label_rules_is_refused(bad: str) -> None:
    with pytest.raises(InvalidDomain, match="1 to 63"):
        check_domain_name(bad)


@pytest.mark.parametrize(
    "reserved", ["default", "Default", "admin", "api", "console", "static", "oauth2", "domains"]
)
def test_a_reserved_domain_name_is_refused(reserved: str) -> None:
    with pytest.raises(InvalidDomain, match="reserved"):
        check_domain_name(reserved)


# --- hosts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("login.example.com", "login.example.com"),
        ("Login.Example.COM.", "login.example.com"),
        (" a.b ", "a.b"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ],
)
def test_a_host_is_a_lower_case_dns_name(given: str, kept: str) -> None:
    assert check_host(given) == kept


@pytest.mark.parametrize(
    "bad",
    [
        "localhost",  # one label
        "127.0.0.1",  # an address
        "10.0.0.300",
        "https://login.example.com",
        "login.example.com:8443",
        "login.example.com/path",
        "-a.example.com",
        "a..example.com",
        "[::1]",
        "",
        ("a" * 63 + ".") * 4 + "com",  # longer than 253
    ],
)
def test_a_host_that_is_not_a_dns_name_is_refused(bad: str) -> None:
    with pytest.raises(InvalidDomain, match="not a host name"):
        check_host(bad)


# --- settings ----------------------------------------------------------------------------------


def test_settings_keep_the_given_values_and_show_only_those() -> None:
    settings = DomainSettings.from_dict({"access_token_ttl": 600, "password_min_length": 12})
    assert settings.access_token_ttl == 600
    assert settings.password_min_length == 12
    assert settings.session_ttl is None
    assert settings.as_dict() == {"access_token_ttl": 600, "password_min_length": 12}
    assert DomainSettings.from_dict(settings.as_dict()) == settings


def test_settings_refuse_an_unknown_name() -> None:
    with pytest.raises(InvalidDomain, match="unknown domain settings: bogus, other"):
        DomainSettings.from_dict({"other": 1, "bogus": 2, "access_token_ttl": 60})


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("access_token_ttl", 30, 86400),
        ("id_token_ttl", 30, 86400),
        ("login_failure_window", 10, 86400),
        ("password_min_length", 8, 128),
    ],
)
def test_settings_accept_their_bounds_and_refuse_beyond(name: str, low: int, high: int) -> None:
    assert DomainSettings.from_dict({name: low}).as_dict() == {name: low}
    assert DomainSettings.from_dict({name: high}).as_dict() == {name: high}
    with pytest.raises(InvalidDomain, match=f"{name} must be at least {low} and at most {high}"):
        DomainSettings.from_dict({name: low - 1})
    with pytest.raises(InvalidDomain, match=f"at most {high}"):
        DomainSettings.from_dict({name: high + 1})


@pytest.mark.parametrize(
    ("name", "low"),
    [
        ("refresh_token_ttl", 60),
        ("refresh_token_absolute_ttl", 60),
        ("session_ttl", 60),
        ("login_max_failures", 1),
        ("login_max_failures_per_address", 1),
        ("login_first_delay", 1),
    ],
)
def test_settings_without_an_upper_bound_refuse_only_below(name: str, low: int) -> None:
    assert DomainSettings.from_dict({name: 10**9}).as_dict() == {name: 10**9}
    with pytest.raises(InvalidDomain, match=f"{name} must be at least {low}$"):
        DomainSettings.from_dict({name: low - 1})


@pytest.mark.parametrize("value", [True, False, "600", 600.0, [600], {"s": 600}])
def test_settings_refuse_anything_but_a_whole_number(value: object) -> None:
    with pytest.raises(InvalidDomain, match="whole number"):
        DomainSettings.from_dict({"access_token_ttl": value})


def test_merged_settings_apply_changes_and_unset_with_none() -> None:
    settings = DomainSettings.from_dict({"access_token_ttl": 600, "session_ttl": 3600})
    merged = settings.merged({"access_token_ttl": None, "password_min_length": 10})
    assert merged.as_dict() == {"session_ttl": 3600, "password_min_length": 10}
    assert settings.as_dict() == {"access_token_ttl": 600, "session_ttl": 3600}  # unchanged


def test_merged_settings_are_checked() -> None:
    settings = DomainSettings.from_dict({"access_token_ttl": 600})
    with pytest.raises(InvalidDomain, match="at least 30"):
        settings.merged({"access_token_ttl": 1})
    with pytest.raises(InvalidDomain, match="unknown"):
        settings.merged({"nope": 1})


# --- the domain, its prefix and issuer -------------------------------------------------------


def test_a_new_domain_is_enabled_and_a_change_bumps_its_version() -> None:
    domain = a_domain()
    assert domain.enabled and not domain.is_default and domain.version == 1
    disabled = domain.with_changes(disabled_at=T0)
    assert not disabled.enabled and disabled.version == 2
    assert domain.enabled  # frozen: the original is unchanged


def test_domain_ids_are_fresh_and_never_the_default() -> None:
    ids = {new_domain_id() for _ in range(100)}
    assert len(ids) == 100
    assert DEFAULT_DOMAIN not in ids
    assert all(len(i) <= 64 for i in ids)


def test_the_default_domain_keeps_the_base_urls() -> None:
    default = a_domain(id=DEFAULT_DOMAIN, name="default")
    assert default.is_default
    assert domain_prefix(default) == ""
    assert domain_issuer(BASE, default) == BASE
    assert domain_issuer(BASE + "/", default) == BASE + "/"


def test_a_domain_is_served_under_its_name() -> None:
    domain = a_domain()
    assert domain_prefix(domain) == "/domains/acme"
    assert domain_issuer(BASE, domain) == f"{BASE}/domains/acme"
    assert domain_issuer(BASE + "/", domain) == f"{BASE}/domains/acme"
    assert domain_issuer("https://id.example.com/sso", domain) == (
        "https://id.example.com/sso/domains/acme"
    )


def test_a_domain_with_its_own_host_is_served_at_its_root() -> None:
    domain = a_domain(host="login.acme.test")
    assert domain_prefix(domain) == ""
    assert domain_issuer(BASE, domain) == "https://login.acme.test"
