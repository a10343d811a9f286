"""Redirect URIs: what may be registered (docs/security.md rule 5) and what matches (item 1).

RFC 9700 §4.1.3: exact string matching. RFC 8252 §7.3 and §8.3: loopback IP literals over
http, any port. Attack classes: Keycloak CVE-2020-10776 (`javascript:`), CVE-2023-6291,
CVE-2024-1132, CVE-2024-8883, fosite CVE-2020-15234, Spring CVE-2019-3778 (matching bypasses),
oauthlib CVE-2022-36087 (IPv6 parsing DoS).
"""

from __future__ import annotations

import time

import pytest

from tessera.domain.redirect_uris import (
    InvalidRedirectUri,
    is_loopback_uri,
    matches_registered,
    validate_for_registration,
)

REGISTERED = "https://app.example.test/cb"
LOOPBACK_V4 = "http://127.0.0.1/callback"
LOOPBACK_V6 = "http://[::1]/callback"


def refused(uri: str) -> str:
    """The reason registration gives for refusing `uri` (fails the test if it is accepted)."""
    with pytest.raises(InvalidRedirectUri) as caught:
        validate_for_registration(uri)
    return str(caught.value)


# --- registration: refused ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "http://app.example.test/cb",
        "HTTP://app.example.test/cb",
        "http://localhost/cb",  # a name, not a loopback literal: DNS can re-bind it
        "http://localhost:8080/cb",
        "http://127.0.0.1.evil.test/cb",
        "http://127.0.0.1@evil.test/cb",
        "http://[::1]:80@evil.test/cb",
        "http://127.0.0.1:0/cb",
        "http://127.0.0.1:65536/cb",
    ],
)
def test_registration_refuses_http_other_than_loopback(uri: str) -> None:
    assert "http: is allowed only for loopback" in refused(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.domain)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
    ],
)
def test_registration_refuses_script_data_and_file_schemes(uri: str) -> None:
    scheme = uri.split(":", 1)[0].lower()
    assert f"the {scheme}: scheme is not allowed" in refused(uri)


@pytest.mark.parametrize(
    "uri",
    ["https://app.example.test/cb#", "https://app.example.test/cb#frag", "com.example.app:/cb#x"],
)
def test_registration_refuses_a_fragment(uri: str) -> None:
    assert "fragment" in refused(uri)


@pytest.mark.parametrize(
    "uri",
    ["https://*.example.test/cb", "https://app.example.test/*", "https://app.example.test/cb*"],
)
def test_registration_refuses_wildcards(uri: str) -> None:
    assert "wildcard" in refused(uri)


def test_registration_refuses_user_info() -> None:
    assert "no user info" in refused("https://a@b/cb")


@pytest.mark.parametrize("uri", ["/cb", "cb", "//evil.test/cb", "?x=1", ":/cb"])
def test_registration_refuses_relative_uris(uri: str) -> None:
    assert "absolute" in refused(uri)


@pytest.mark.parametrize("uri", ["https:///cb", "https:/cb", "https:cb", "https://:443/cb"])
def test_registration_refuses_https_without_a_host(uri: str) -> None:
    assert "needs a host" in refused(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.test/c b",
        " https://app.example.test/cb",
        "https://app.example.test/cb ",
        "https://app.example.test/c\tb",
        "https://app.example.test/cb\r\nLocation: https://evil.test",
        "https://app.example.test/c\x00b",
        "https://app.example.test/c\x7fb",
    ],
)
def test_registration_refuses_spaces_and_control_characters(uri: str) -> None:
    assert "without spaces or control characters" in refused(uri)


@pytest.mark.parametrize(
    "uri",
    ["https://app.exämple.test/cb", "https://app.example.test/çb", "https://аpp.example.test/cb"],
)
def test_registration_refuses_non_ascii(uri: str) -> None:
    assert "ASCII" in refused(uri)


def test_registration_refuses_more_than_2000_characters() -> None:
    uri = "https://app.example.test/" + "a" * (2001 - len("https://app.example.test/"))
    assert len(uri) == 2001
    assert "1 to 2000 characters" in refused(uri)
    assert validate_for_registration(uri[:2000]) == uri[:2000]


def test_registration_refuses_the_empty_string() -> None:
    assert "1 to 2000 characters" in refused("")


@pytest.mark.parametrize("uri", ["myapp:/cb", "myapp://cb", "app:/callback"])
def test_registration_refuses_single_word_custom_schemes(uri: str) -> None:
    # RFC 8252 §7.1: private-use schemes are reverse domain names.
    assert "reverse-domain scheme" in refused(uri)


def test_registration_refuses_an_invalid_port() -> None:
    assert "not a valid URI" in refused("https://app.example.test:99999/cb")


# --- registration: accepted --------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.test/cb",
        "https://app.example.test:8443/cb?tenant=a",
        "http://127.0.0.1:8080/cb",
        "http://127.0.0.1/cb",
        "http://[::1]/cb",
        "http://[::1]:9000/cb",
        "com.example.app:/cb",
    ],
)
def test_registration_accepts_https_loopback_and_reverse_domain_schemes(uri: str) -> None:
    assert validate_for_registration(uri) == uri  # returned unchanged, never normalised


def test_loopback_means_the_ip_literals_with_a_valid_port() -> None:
    assert is_loopback_uri("http://127.0.0.1:51234/callback")
    assert is_loopback_uri("http://[::1]/callback")
    assert not is_loopback_uri("http://localhost/callback")
    assert not is_loopback_uri("https://127.0.0.1/callback")
    assert not is_loopback_uri("http://127.0.0.1:0/callback")


# --- matching: exact string for everything but loopback ports ----------------------------------


def test_the_registered_uri_matches_itself() -> None:
    assert matches_registered(REGISTERED, (REGISTERED,))


def test_a_uri_matches_any_one_of_several_registered() -> None:
    assert matches_registered(REGISTERED, ("https://other.example.test/cb", REGISTERED))


def test_nothing_matches_when_nothing_is_registered() -> None:
    assert not matches_registered(REGISTERED, ())


@pytest.mark.parametrize(
    "requested",
    [
        "https://APP.example.test/cb",
        "HTTPS://app.example.test/cb",
        "https://app.example.test/CB",
    ],
)
def test_matching_refuses_another_case_of_scheme_host_or_path(requested: str) -> None:
    assert not matches_registered(requested, (REGISTERED,))


def test_matching_refuses_a_trailing_slash() -> None:
    assert not matches_registered(REGISTERED + "/", (REGISTERED,))


def test_matching_refuses_an_added_query() -> None:
    assert not matches_registered(REGISTERED + "?x=1", (REGISTERED,))
    assert not matches_registered(REGISTERED + "?", (REGISTERED,))


def test_matching_refuses_an_added_fragment() -> None:
    assert not matches_registered(REGISTERED + "#fragment", (REGISTERED,))
    assert not matches_registered(REGISTERED + "#", (REGISTERED,))


def test_matching_refuses_an_extra_path_segment() -> None:
    assert not matches_registered(REGISTERED + "/extra", (REGISTERED,))


@pytest.mark.parametrize(
    "requested",
    [
        "https://app.example.test/cb/..;/",
        "https://app.example.test/cb/..;/evil",
        "https://app.example.test/x/..;/cb",
        "https://app.example.test/cb/../cb",
        "https://app.example.test/cb/%2e%2e/cb",
        "https://app.example.test/%2e%2e/cb",
        "https://app.example.test/cb%2f..%2fevil",
        "https://app.example.test/%63b",
        "https://app.example.test/./cb",
    ],
)
def test_matching_refuses_dot_segment_and_percent_encoding_tricks(requested: str) -> None:
    assert not matches_registered(requested, (REGISTERED,))


def test_matching_refuses_the_registered_host_as_user_info() -> None:
    assert not matches_registered("https://app.example.test@evil.test/cb", (REGISTERED,))


def test_matching_refuses_the_registered_host_as_a_subdomain_prefix() -> None:
    assert not matches_registered("https://app.example.test.evil.test/cb", (REGISTERED,))


@pytest.mark.parametrize(
    "requested", ["https://app.example.test:8443/cb", "https://app.example.test:443/cb"]
)
def test_matching_refuses_another_port_even_the_default_one(requested: str) -> None:
    assert not matches_registered(requested, (REGISTERED,))


def test_matching_refuses_surrounding_whitespace() -> None:
    assert not matches_registered(REGISTERED + " ", (REGISTERED,))
    assert not matches_registered(" " + REGISTERED, (REGISTERED,))


# --- matching: loopback may differ in the port only (RFC 8252 §7.3) ----------------------------


@pytest.mark.parametrize("port", ["", ":1", ":8080", ":51234", ":65535"])
def test_loopback_ipv4_matches_any_port(port: str) -> None:
    assert matches_registered(f"http://127.0.0.1{port}/callback", (LOOPBACK_V4,))


def test_loopback_with_a_registered_port_matches_any_port() -> None:
    assert matches_registered("http://127.0.0.1:9999/callback", ("http://127.0.0.1:8080/callback",))


@pytest.mark.parametrize(
    "requested",
    [
        "http://127.0.0.1:51234/other",
        "http://127.0.0.1:51234/callback/",
        "http://127.0.0.1:51234/callback/x",
        "http://127.0.0.1:51234/Callback",
        "http://127.0.0.1:51234/callback?x=1",
        "http://127.0.0.1:51234/callback#x",
        "http://127.0.0.1:51234/callback\n",
        "http://127.0.0.1:51234",
    ],
)
def test_loopback_ipv4_refuses_another_path(requested: str) -> None:
    assert not matches_registered(requested, (LOOPBACK_V4,))


def test_loopback_ipv4_refuses_localhost() -> None:
    assert not matches_registered("http://localhost:51234/callback", (LOOPBACK_V4,))


def test_loopback_ipv4_refuses_another_loopback_address() -> None:
    assert not matches_registered("http://127.0.0.2:51234/callback", (LOOPBACK_V4,))
    assert not matches_registered("http://127.1:51234/callback", (LOOPBACK_V4,))


def test_loopback_ipv4_refuses_https() -> None:
    assert not matches_registered("https://127.0.0.1:51234/callback", (LOOPBACK_V4,))


@pytest.mark.parametrize("port", [":0", ":65536", ":99999", ":-1", ":", ":80a", ":123456"])
def test_loopback_ipv4_refuses_an_invalid_port(port: str) -> None:
    assert not matches_registered(f"http://127.0.0.1{port}/callback", (LOOPBACK_V4,))


def test_loopback_ipv4_does_not_match_an_ipv6_registration() -> None:
    assert not matches_registered("http://127.0.0.1:51234/callback", (LOOPBACK_V6,))
    assert not matches_registered("http://[::1]:51234/callback", (LOOPBACK_V4,))


def test_loopback_ipv6_matches_any_port() -> None:
    assert matches_registered("http://[::1]:51234/callback", (LOOPBACK_V6,))
    assert matches_registered("http://[::1]/callback", (LOOPBACK_V6,))


@pytest.mark.parametrize(
    "requested",
    [
        "http://[::1]:51234/other",
        "http://[::1]:51234/callback/",
        "http://[::1]:51234/callback?x=1",
        "http://[0:0:0:0:0:0:0:1]:51234/callback",  # same address, another spelling
        "http://[::ffff:127.0.0.1]:51234/callback",
        "http://localhost:51234/callback",
        "https://[::1]:51234/callback",
        "http://[::1]:0/callback",
        "http://[::1]:65536/callback",
    ],
)
def test_loopback_ipv6_refuses_another_path_host_scheme_or_port(requested: str) -> None:
    assert not matches_registered(requested, (LOOPBACK_V6,))


def test_a_non_loopback_registration_never_gets_port_freedom() -> None:
    registered = ("https://app.example.test/cb", "com.example.app:/cb")
    assert not matches_registered("https://app.example.test:1234/cb", registered)
    assert not matches_registered("http://127.0.0.1:1234/cb", registered)


# --- matching: malformed input is refused quickly, without exceptions (CVE-2022-36087) ----------


@pytest.mark.parametrize(
    "requested",
    [
        "http://[::1",
        "http://[::1]:80",
        "http://[:::::::::::::::1]:80/cb",
        "http://[::1]]:80/callback",
        "http://[[::1]]/callback",
        "http://[::1%25eth0]/callback",
        "http://[" + ":" * 100_000 + "1]:80/cb",
        "http://[" + "::1" * 100_000,
        "http://[::1]:" + "9" * 100_000 + "/callback",
        "http://127.0.0.1:" + "9" * 100_000 + "/callback",
        "http://[::1]" + "/" * 1_000_000,
        "http://127.0.0.1/" + "a" * 1_000_000 + "#",
        "",
        "\x00",
        "[",
    ],
)
def test_malformed_uris_are_refused_quickly_without_exceptions(requested: str) -> None:
    started = time.perf_counter()
    assert matches_registered(requested, (LOOPBACK_V6, LOOPBACK_V4, REGISTERED)) is False
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    "uri",
    [
        "https://[::1/cb",
        "https://[:::::::::::::::1]:80/cb",
        "http://[" + ":" * 100_000 + "1]:80/cb",
        "https://[" + "::1" * 100_000,
    ],
)
def test_malformed_uris_are_refused_at_registration_quickly(uri: str) -> None:
    started = time.perf_counter()
    refused(uri)
    assert time.perf_counter() - started < 0.5


def test_a_confidential_app_with_a_loopback_uri_and_port_gets_that_port_only() -> None:
    registered = ("http://127.0.0.1:8080/callback",)
    assert matches_registered("http://127.0.0.1:8080/callback", registered, native=False)
    assert not matches_registered("http://127.0.0.1:9999/callback", registered, native=False)
    assert matches_registered("http://127.0.0.1:9999/callback", registered, native=True)


def test_a_confidential_native_app_registers_a_portless_loopback_uri_for_any_port() -> None:
    registered = ("http://127.0.0.1/callback",)
    assert matches_registered("http://127.0.0.1:51234/callback", registered, native=False)
    assert not matches_registered("http://127.0.0.1:51234/other", registered, native=False)


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.test\\@evil.test/cb",
        "https://app.example.test\\evil.test/cb",
        "https://app.example.test/cb\\..\\admin",
        "http://127.0.0.1:8080\\@evil.test/cb",
        "com.example.app:\\\\evil.test/cb",
        'https://app.example.test/c"b',
        "https://app.example.test/c<b>",
        "https://app.example.test/c|b",
        "https://app.example.test/c^b",
        "https://app.example.test/c`b",
        "https://app.example.test/c{b}",
    ],
)
def test_registration_refuses_backslashes_and_characters_browsers_rewrite(uri: str) -> None:
    # A browser reads `\` as `/` (WHATWG URL): the URI we compare would not be the one it opens.
    assert "must not contain any of" in refused(uri)


@pytest.mark.parametrize(
    "uri", ["https://app.example.test/c\tb", "https://app.example.test/c\nb", "https://a\r.test/"]
)
def test_registration_refuses_tabs_and_newlines_that_browsers_strip(uri: str) -> None:
    assert "without spaces or control characters" in refused(uri)
