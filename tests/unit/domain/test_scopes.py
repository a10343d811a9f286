"""Scopes: Oracle's concatenated `<audience><scope>`, RFC 8707 `resource=`, OpenID scopes.

RFC 6749 §3.3 (scope syntax), RFC 8707 (resource indicators), docs/architecture.md ("Decisions").
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tessera.domain.model import Resource
from tessera.domain.scopes import (
    OIDC_SCOPES,
    AmbiguousScope,
    ResolvedScope,
    UnknownScope,
    colliding_scopes,
    format_scope,
    normalize_audience,
    parse_scope_param,
    resolve_scope,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AUDIENCE = "https://integration.tessera.test"
SCOPE = "urn:opc:resource:consumer::all"
INTEGRATION = Resource("r1", "Integration", AUDIENCE, (SCOPE, "read"), T0)
# An audience registered with a port, a path, capitals and a trailing slash.
REPORTS = Resource("r2", "Reports", "https://Reports.Example.test:8443/api/", (SCOPE,), T0)
RESOURCES = (INTEGRATION, REPORTS)
GRANTED = ResolvedScope(AUDIENCE, SCOPE)


# --- Oracle's concatenated form ----------------------------------------------------------------


def test_oracle_form_with_the_default_port_resolves() -> None:
    assert resolve_scope(f"{AUDIENCE}:443{SCOPE}", RESOURCES) == GRANTED


def test_oracle_form_without_a_port_resolves() -> None:
    assert resolve_scope(f"{AUDIENCE}{SCOPE}", RESOURCES) == GRANTED


def test_oracle_form_with_a_trailing_slash_on_the_audience_resolves() -> None:
    assert resolve_scope(f"{AUDIENCE}/{SCOPE}", RESOURCES) == GRANTED
    assert resolve_scope(f"{AUDIENCE}:443/{SCOPE}", RESOURCES) == GRANTED


def test_oracle_form_ignores_the_case_of_scheme_and_host() -> None:
    assert resolve_scope(f"https://INTEGRATION.Tessera.test:443{SCOPE}", RESOURCES) == GRANTED
    assert resolve_scope(f"HTTPS://integration.tessera.test{SCOPE}", RESOURCES) == GRANTED


def test_oracle_form_resolves_to_the_registered_audience_spelling() -> None:
    resolved = resolve_scope(f"https://reports.example.test:8443/api{SCOPE}", RESOURCES)
    assert resolved == ResolvedScope(REPORTS.audience, SCOPE)
    assert resolved.canonical == f"{REPORTS.audience}{SCOPE}"


def test_the_canonical_form_is_the_registered_audience_then_the_scope() -> None:
    resolved = resolve_scope(f"{AUDIENCE}:443{SCOPE}", RESOURCES)
    assert resolved.canonical == f"{AUDIENCE}{SCOPE}"


def test_oracle_form_with_a_non_default_port_is_another_audience() -> None:
    with pytest.raises(UnknownScope):
        resolve_scope(f"{AUDIENCE}:8443{SCOPE}", RESOURCES)


def test_oracle_form_with_another_scheme_is_another_audience() -> None:
    with pytest.raises(UnknownScope):
        resolve_scope(f"http://integration.tessera.test{SCOPE}", RESOURCES)


def test_oracle_form_refuses_a_look_alike_audience() -> None:
    for audience in ("https://evil.test", "https://integration.tessera.test.evil.test"):
        with pytest.raises(UnknownScope):
            resolve_scope(f"{audience}:443{SCOPE}", RESOURCES)


def test_oracle_form_refuses_a_scope_the_resource_does_not_define() -> None:
    with pytest.raises(UnknownScope):
        resolve_scope(f"{AUDIENCE}:443write", RESOURCES)


def test_an_audience_alone_is_not_a_scope() -> None:
    with pytest.raises(UnknownScope):
        resolve_scope(f"{AUDIENCE}:443", RESOURCES)


# --- plain scope with resource= (RFC 8707) -----------------------------------------------------


def test_plain_scope_with_resource_parameter_resolves() -> None:
    assert resolve_scope(SCOPE, RESOURCES, resource_param=AUDIENCE) == GRANTED


def test_resource_parameter_is_compared_normalised() -> None:
    for resource in (f"{AUDIENCE}:443", f"{AUDIENCE}/", "https://Integration.Tessera.test:443/"):
        assert resolve_scope(SCOPE, RESOURCES, resource_param=resource) == GRANTED


def test_resource_parameter_picks_among_resources_sharing_a_scope_name() -> None:
    resource = "https://reports.example.test:8443/api"
    resolved = resolve_scope(SCOPE, RESOURCES, resource_param=resource)
    assert resolved == ResolvedScope(REPORTS.audience, SCOPE)


def test_plain_resource_scope_without_resource_parameter_is_unknown() -> None:
    with pytest.raises(UnknownScope):
        resolve_scope(SCOPE, RESOURCES)


def test_resource_parameter_naming_no_registered_audience_is_unknown() -> None:
    with pytest.raises(UnknownScope):
        resolve_scope(SCOPE, RESOURCES, resource_param="https://evil.test")


def test_resource_parameter_with_a_scope_of_another_resource_is_unknown() -> None:
    with pytest.raises(UnknownScope):
        resolve_scope("read", RESOURCES, resource_param=REPORTS.audience)


# --- OpenID scopes and unknown scopes ----------------------------------------------------------


@pytest.mark.parametrize("scope", sorted(OIDC_SCOPES))
def test_openid_scopes_have_no_audience(scope: str) -> None:
    resolved = resolve_scope(scope, RESOURCES)
    assert resolved == ResolvedScope(None, scope)
    assert resolved.canonical == scope


def test_openid_scopes_are_the_four_of_openid_connect_and_groups() -> None:
    assert {"openid", "profile", "email", "offline_access", "groups"} == OIDC_SCOPES


def test_openid_scopes_resolve_without_any_resource() -> None:
    assert resolve_scope("openid", ()) == ResolvedScope(None, "openid")


@pytest.mark.parametrize("scope", ["write", "OPENID", "admin", "https://integration.tessera.test"])
def test_an_unknown_scope_raises_unknown_scope(scope: str) -> None:
    with pytest.raises(UnknownScope, match="unknown scope"):
        resolve_scope(scope, RESOURCES)


def test_unknown_scope_is_a_value_error() -> None:
    assert issubclass(UnknownScope, ValueError)


def test_format_scope_concatenates_audience_and_scope() -> None:
    assert format_scope(None, "openid") == "openid"
    assert format_scope(AUDIENCE, SCOPE) == f"{AUDIENCE}{SCOPE}"


def test_normalize_audience_drops_default_port_trailing_slash_and_case() -> None:
    assert normalize_audience("HTTPS://Integration.Tessera.test:443/") == AUDIENCE
    assert normalize_audience("https://a.test:8443/api/") == "https://a.test:8443/api"
    assert normalize_audience("http://a.test:80") == "http://a.test"


def test_normalize_audience_keeps_what_is_not_a_url() -> None:
    assert normalize_audience("urn:example:api") == "urn:example:api"


# --- the scope parameter (RFC 6749 §3.3) -------------------------------------------------------


def test_scope_param_is_split_on_spaces() -> None:
    assert parse_scope_param("openid profile email") == ["openid", "profile", "email"]


def test_scope_param_drops_repeats_and_keeps_the_order() -> None:
    parsed = parse_scope_param("profile openid profile email openid")
    assert parsed == ["profile", "openid", "email"]


def test_scope_param_ignores_repeated_spaces() -> None:
    assert parse_scope_param("  openid   profile ") == ["openid", "profile"]


@pytest.mark.parametrize("value", [None, "", "   "])
def test_an_absent_or_empty_scope_param_is_no_scopes(value: str | None) -> None:
    assert parse_scope_param(value) == []


@pytest.mark.parametrize(
    "value",
    [
        'openid "profile"',
        "openid pro\\file",
        "openid\tprofile",
        "openid\nprofile",
        "openid\x00",
        "openid\x7f",
        "openid prof\x1bile",
        "openid pröfile",
    ],
)
def test_scope_param_rejects_quotes_backslashes_control_and_non_ascii_characters(
    value: str,
) -> None:
    with pytest.raises(ValueError, match=r"RFC 6749 §3\.3"):
        parse_scope_param(value)


def test_scope_param_accepts_the_oracle_form() -> None:
    oracle = f"{AUDIENCE}:443{SCOPE}"
    assert parse_scope_param(f"openid {oracle}") == ["openid", oracle]


# --- colliding concatenations (issue 12) -------------------------------------------------------

A_XSCOPE = Resource("ra", "A", "https://a.test", ("xscope",), T0)
B_SCOPE = Resource("rb", "B", "https://a.testx", ("scope",), T0)


def test_colliding_concatenations_never_resolve_to_the_other_audience() -> None:
    # Both write `https://a.testxscope`: resolution refuses to pick one of them.
    with pytest.raises(AmbiguousScope):
        resolve_scope("https://a.testxscope", [A_XSCOPE, B_SCOPE])
    with pytest.raises(AmbiguousScope):
        resolve_scope("https://a.testxscope", [B_SCOPE, A_XSCOPE])


def test_colliding_concatenations_are_found_for_registration_to_refuse() -> None:
    assert "https://a.testxscope" in colliding_scopes([A_XSCOPE, B_SCOPE])
    assert colliding_scopes([A_XSCOPE]) == [] and colliding_scopes(RESOURCES) == []


def test_a_collision_written_only_with_the_default_port_is_found() -> None:
    # `https://a.test:443` + `xscope` is also `https://a.test:443x` + `scope`.
    other = Resource("rc", "C", "https://a.test:443x", ("scope",), T0)
    assert "https://a.test:443xscope" in colliding_scopes([A_XSCOPE, other])


def test_a_resource_whose_own_scopes_collide_is_found() -> None:
    # `https://a.test/` + `x` and `https://a.test` + `/x` are one written scope.
    own = Resource("rd", "D", "https://a.test", ("/x", "x"), T0)
    assert colliding_scopes([own]) != []
