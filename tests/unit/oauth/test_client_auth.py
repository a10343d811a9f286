"""Client authentication at the token, introspection and revocation endpoints: RFC 6749 §2.3.1
(`client_secret_basic` with form-urlencoded id and secret, `client_secret_post`), §2.3 (one
method only), §3.2.1 (public clients send `client_id`), §5.2 (`invalid_client`, 401);
docs/security.md rule 21; secret rotation (docs/architecture.md, "client secrets")."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from urllib.parse import quote, quote_plus

import pytest

from tessera.domain.model import Client
from tessera.manage.apps import rotate_secret
from tessera.manage.audit import store_actor
from tessera.oauth import errors
from tessera.oauth.client_auth import authenticate_client, parse_basic
from tests.unit.oauth.conftest import PEPPER, Core


def basic(client_id: str, secret: str, *, encode: Callable[[str], str] = quote_plus) -> str:
    """`Authorization: Basic` as RFC 6749 §2.3.1 builds it: each part form-urlencoded first."""
    raw = f"{encode(client_id)}:{encode(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def authenticate(
    core: Core,
    authorization: str | None = None,
    form: Mapping[str, str] | None = None,
    *,
    allow_public: bool = True,
) -> Client:
    return authenticate_client(
        authorization,
        form or {},
        core.store.clients.get,
        PEPPER,
        core.clock(),
        allow_public=allow_public,
    )


@pytest.fixture
def app(core: Core) -> tuple[Client, str]:
    client, secret = core.add_app()
    assert secret is not None
    return client, secret


# --- the two methods ---------------------------------------------------------------------------


def test_basic_credentials_authenticate_the_app(core: Core, app: tuple[Client, str]) -> None:
    client, secret = app
    assert authenticate(core, basic(client.client_id, secret)) == client


def test_basic_id_and_secret_are_form_urlencoded_before_base64(core: Core) -> None:
    """§2.3.1: a ':' in the secret is percent-encoded; '+' decodes to a space (form encoding)."""
    client, _ = core.add_app(client_id="app:1/ü", secret="s3cret:with+plus %and/ü")
    secret = "s3cret:with+plus %and/ü"
    assert authenticate(core, basic(client.client_id, secret)) == client
    # Spaces sent as '%20' (plain percent-encoding) decode the same.
    assert authenticate(core, basic(client.client_id, secret, encode=quote)) == client
    # Not decoded = a different secret: '+' sent raw means a space.
    raw = base64.b64encode(f"{quote_plus(client.client_id)}:s3cret%3Awith+plus".encode())
    with pytest.raises(errors.InvalidClient):
        authenticate(core, "Basic " + raw.decode())


def test_the_basic_scheme_name_is_case_insensitive(core: Core, app: tuple[Client, str]) -> None:
    client, secret = app
    header = basic(client.client_id, secret).replace("Basic", "bAsIc")
    assert authenticate(core, header) == client


def test_client_secret_post_authenticates_the_app(core: Core, app: tuple[Client, str]) -> None:
    client, secret = app
    form = {"client_id": client.client_id, "client_secret": secret}
    assert authenticate(core, None, form) == client


def test_basic_with_the_same_client_id_in_the_body_is_accepted(
    core: Core, app: tuple[Client, str]
) -> None:
    client, secret = app
    header = basic(client.client_id, secret)
    assert authenticate(core, header, {"client_id": client.client_id}) == client


def test_basic_and_a_secret_in_the_body_at_once_are_refused(
    core: Core, app: tuple[Client, str]
) -> None:
    """§2.3: a client MUST NOT use more than one authentication method in each request."""
    client, secret = app
    with pytest.raises(errors.InvalidRequest):
        authenticate(core, basic(client.client_id, secret), {"client_secret": secret})


def test_a_body_client_id_other_than_the_basic_one_is_refused(
    core: Core, app: tuple[Client, str]
) -> None:
    client, secret = app
    other, _ = core.add_app()
    with pytest.raises(errors.InvalidRequest):
        authenticate(core, basic(client.client_id, secret), {"client_id": other.client_id})


def test_no_credentials_at_all_is_invalid_client(core: Core) -> None:
    with pytest.raises(errors.InvalidClient) as caught:
        authenticate(core, None, {"client_secret": "x"})
    assert caught.value.status == 401  # §5.2


# --- malformed Basic ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc",  # another scheme
        "Basic",  # no value
        "Basic    ",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),  # not UTF-8
        "Basic " + base64.b64encode(b"app%00x:secret").decode(),  # NUL after decoding
        "Basic " + base64.b64encode(b"app:sec%00ret").decode(),
        "Basic dGVzdDp0ZXN0ü",  # non-ASCII in the base64
    ],
)
def test_malformed_basic_credentials_are_invalid_client(core: Core, header: str) -> None:
    with pytest.raises(errors.InvalidClient):
        parse_basic(header)
    with pytest.raises(errors.InvalidClient):
        authenticate(core, header)


# --- who is refused ----------------------------------------------------------------------------


def test_an_unknown_client_and_a_wrong_secret_get_the_same_answer(
    core: Core, app: tuple[Client, str]
) -> None:
    """Nobody learns which client ids exist (§5.2 invalid_client); the debug text, which only
    the audit log records, says which check failed."""
    client, secret = app
    with pytest.raises(errors.InvalidClient) as unknown:
        authenticate(core, basic("no-such-app", secret))
    with pytest.raises(errors.InvalidClient) as wrong:
        authenticate(core, basic(client.client_id, secret + "x"))
    assert unknown.value.description == wrong.value.description
    assert unknown.value.status == wrong.value.status == 401
    assert unknown.value.audit_reason == "no app has this client_id"
    assert wrong.value.audit_reason == "the secret matches none of the app's live secrets"


@pytest.mark.parametrize("secret", ["", "x", "wrong" * 10])
def test_a_wrong_or_empty_secret_is_invalid_client(
    core: Core, app: tuple[Client, str], secret: str
) -> None:
    client, _ = app
    with pytest.raises(errors.InvalidClient):
        authenticate(core, basic(client.client_id, secret))
    with pytest.raises(errors.InvalidClient):
        authenticate(core, None, {"client_id": client.client_id, "client_secret": secret})


def test_a_confidential_app_without_its_secret_is_invalid_client(
    core: Core, app: tuple[Client, str]
) -> None:
    """§3.2.1: only public clients identify themselves with `client_id` alone."""
    client, _ = app
    with pytest.raises(errors.InvalidClient):
        authenticate(core, None, {"client_id": client.client_id})


def test_the_secret_of_another_app_is_refused(core: Core, app: tuple[Client, str]) -> None:
    client, _ = app
    _, other_secret = core.add_app()
    assert other_secret is not None
    with pytest.raises(errors.InvalidClient):
        authenticate(core, basic(client.client_id, other_secret))


@pytest.mark.parametrize(("id_len", "secret_len"), [(0, 10), (513, 10), (10, 513)])
def test_empty_or_overlong_credentials_are_refused_without_a_lookup(
    core: Core, id_len: int, secret_len: int
) -> None:
    looked_up: list[str] = []

    def lookup(client_id: str) -> Client | None:
        looked_up.append(client_id)
        return None

    form = {"client_id": "a" * id_len, "client_secret": "s" * secret_len}
    with pytest.raises(errors.InvalidClient):
        authenticate_client(None, form, lookup, PEPPER, core.clock())
    assert looked_up == []


# --- public apps -------------------------------------------------------------------------------


def test_a_public_app_identifies_itself_with_its_client_id(core: Core) -> None:
    client, _ = core.add_app(public=True)
    assert authenticate(core, None, {"client_id": client.client_id}) == client


def test_a_public_app_is_refused_where_confidential_credentials_are_needed(core: Core) -> None:
    """Introspection (RFC 7662 §2.1) and the revocation feed need a confidential app."""
    client, _ = core.add_app(public=True)
    with pytest.raises(errors.InvalidClient):
        authenticate(core, None, {"client_id": client.client_id}, allow_public=False)


def test_a_public_app_presenting_a_secret_is_refused(core: Core) -> None:
    client, _ = core.add_app(public=True)
    with pytest.raises(errors.InvalidClient):
        authenticate(core, None, {"client_id": client.client_id, "client_secret": "guess"})
    with pytest.raises(errors.InvalidClient):
        authenticate(core, basic(client.client_id, "guess"))


# --- secret rotation ---------------------------------------------------------------------------


def test_a_rotated_secret_works_until_its_expiry_and_the_new_one_after(
    core: Core, app: tuple[Client, str]
) -> None:
    client, old = app
    actor = store_actor("test", core.store, core.clock)
    _, new = rotate_secret(core.store, PEPPER, client.client_id, 3600, core.clock(), actor)
    for secret in (old, new):
        assert authenticate(core, basic(client.client_id, secret)).client_id == client.client_id
    core.clock.advance(3600 - 1)
    assert authenticate(core, basic(client.client_id, old)).client_id == client.client_id
    core.clock.advance(1)  # now == the old secret's expiry: expired
    with pytest.raises(errors.InvalidClient):
        authenticate(core, basic(client.client_id, old))
    with pytest.raises(errors.InvalidClient):
        authenticate(core, None, {"client_id": client.client_id, "client_secret": old})
    assert authenticate(core, basic(client.client_id, new)).client_id == client.client_id


def test_a_rotation_without_grace_ends_the_old_secret_at_once(
    core: Core, app: tuple[Client, str]
) -> None:
    client, old = app
    actor = store_actor("test", core.store, core.clock)
    _, new = rotate_secret(core.store, PEPPER, client.client_id, 0, core.clock(), actor)
    with pytest.raises(errors.InvalidClient):
        authenticate(core, basic(client.client_id, old))
    assert authenticate(core, basic(client.client_id, new)).client_id == client.client_id


def test_secrets_are_compared_as_keyed_hashes_under_the_deployments_pepper(core: Core) -> None:
    client, secret = core.add_app()
    assert secret is not None
    assert all(secret not in h.hash for h in client.secret_hashes)
    with pytest.raises(errors.InvalidClient):
        authenticate_client(
            basic(client.client_id, secret), {}, core.store.clients.get, b"q" * 32, core.clock()
        )


# --- at the token endpoint ---------------------------------------------------------------------


def test_the_token_endpoint_authenticates_with_basic_and_refuses_a_wrong_secret(
    core: Core,
) -> None:
    core.add_resource()
    client, secret = core.add_app(grant_types=("client_credentials",))
    assert secret is not None
    form = {"grant_type": "client_credentials", "scope": "https://orders.test/read"}
    assert core.token(form, basic(client.client_id, secret))["token_type"] == "Bearer"
    with pytest.raises(errors.InvalidClient):
        core.token(form, basic(client.client_id, "wrong"))
    with pytest.raises(errors.InvalidRequest):  # two methods at once
        core.token({**form, "client_secret": secret}, basic(client.client_id, secret))
