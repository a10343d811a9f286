"""`private_key_jwt` in the client library: reading the key file, choosing the algorithm, the
assertion's header and claims (decoded and checked, and verified by the server's own
verifier), and their use at the token endpoint, in the cache and at refresh."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from tessera.client.cache import CacheEntry, TokenCache
from tessera.client.errors import KeyFileError, KeyFileWarning, LoginError, LoginExpired
from tessera.client.login import login
from tessera.client.private_key_jwt import (
    JWT_BEARER,
    KeyFile,
    key_file_warning,
    load_private_key,
    parse_private_key,
)
from tessera.client.session import Session, login_command
from tessera.client.tokens import Endpoints, OAuthClient, TokenSet, unverified_jwt
from tessera.oauth.client_assertion import verify_client_assertion
from tests.unit.client.fakes import ISSUER, FakeIdp, UserAgent

NOW = 1_800_000_000.0
ENDPOINTS = Endpoints(ISSUER, f"{ISSUER}/oauth2/v1/token", f"{ISSUER}/oauth2/v1/revoke")


def pem(native: Any) -> bytes:
    return native.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def rsa_native() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def ec_file(tmp_path: Path) -> Path:
    path = tmp_path / "app-key.pem"
    path.write_bytes(pem(ec.generate_private_key(ec.SECP256R1())))
    path.chmod(0o600)
    return path


def claims_of(form: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    assert form["client_assertion_type"] == JWT_BEARER
    return unverified_jwt(form["client_assertion"])


def server_verifies(form: dict[str, str], public: dict[str, Any], client_id: str) -> None:
    """Tessera's own verifier (tessera.oauth.client_assertion) accepts the assertion."""
    used: set[str] = set()

    def use_once(key: str, until: int) -> bool:
        if key in used:
            return False
        used.add(key)
        return True

    claims = verify_client_assertion(
        form["client_assertion"],
        client_id=client_id,
        audiences=[ISSUER],
        now=int(NOW),
        use_jti=use_once,
        keys=KeySet.import_key_set({"keys": [public]}),
    )
    assert claims["sub"] == client_id


# --- reading the key file ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ec", "ed25519", "rsa"])
def test_pem_keys_of_each_type_get_their_algorithm_and_a_thumbprint_kid(
    kind: str, rsa_native: rsa.RSAPrivateKey
) -> None:
    native = {
        "ec": lambda: ec.generate_private_key(ec.SECP256R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate,
        "rsa": lambda: rsa_native,
    }[kind]()
    key = parse_private_key(pem(native))
    expected = {"ec": "ES256", "ed25519": "EdDSA", "rsa": "PS256"}[kind]
    assert key.alg == expected
    public = {"ec": ECKey, "ed25519": OKPKey, "rsa": RSAKey}[kind].import_key(native.public_key())
    assert key.kid == public.thumbprint()  # RFC 7638: what a registered kid-less JWK gets


def test_traditional_and_openssh_pem_files_are_read(rsa_native: rsa.RSAPrivateKey) -> None:
    traditional = rsa_native.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert b"BEGIN RSA PRIVATE KEY" in traditional
    assert parse_private_key(traditional).alg == "PS256"
    openssh = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    assert parse_private_key(openssh).alg == "EdDSA"


def test_a_private_jwk_keeps_its_kid_and_alg() -> None:
    jwk = {**RSAKey.generate_key(2048).as_dict(private=True), "kid": "app-2026", "alg": "RS256"}
    key = parse_private_key(json.dumps(jwk).encode())
    assert (key.kid, key.alg) == ("app-2026", "RS256")
    assert key.for_server(["PS256", "RS256"]).alg == "RS256"  # the JWK's alg is not replaced


def test_a_jwk_set_with_one_private_key_is_read_and_key_id_overrides_the_kid() -> None:
    private = {**OKPKey.generate_key("Ed25519").as_dict(private=True), "kid": "own"}
    public = ECKey.generate_key("P-256").as_dict(private=False)
    data = json.dumps({"keys": [public, private]}).encode()
    assert parse_private_key(data).kid == "own"
    assert parse_private_key(data, key_id="registered-kid").kid == "registered-kid"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello", "neither a PEM private key nor a JWK"),
        (b"{not json", "not valid JSON"),
        (json.dumps(ECKey.generate_key("P-256").as_dict(private=False)).encode(), "public key"),
        (json.dumps({"keys": []}).encode(), "holds 0 private keys"),
        (
            json.dumps({**ECKey.generate_key("P-256").as_dict(private=True), "use": "enc"}).encode(),
            "not meant for signatures",
        ),
        (
            json.dumps({**ECKey.generate_key("P-256").as_dict(private=True), "alg": "RS256"}).encode(),
            "names alg 'RS256'",
        ),
        (pem(ec.generate_private_key(ec.SECP384R1())), "EC P-384"),
        (pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)), "1024 bits"),
    ],
)
def test_unusable_keys_are_refused_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(KeyFileError, match=message):
        parse_private_key(data)


def test_a_public_key_pem_is_refused_saying_the_private_key_is_needed() -> None:
    public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyFileError, match="public key") as raised:
        parse_private_key(public)
    assert raised.value.hint is not None and "private key" in raised.value.hint


def test_an_encrypted_key_is_refused_with_how_to_decrypt_it() -> None:
    encrypted = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    with pytest.raises(KeyFileError, match="encrypted") as raised:
        parse_private_key(encrypted)
    assert raised.value.hint is not None and "openssl pkey" in raised.value.hint


def test_a_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read the private key file"):
        load_private_key(tmp_path / "nope.pem")


def test_a_key_file_readable_by_others_gets_a_warning(ec_file: Path) -> None:
    assert key_file_warning(ec_file) is None
    ec_file.chmod(0o644)
    warning = key_file_warning(ec_file)
    assert warning is not None and "0644" in warning and "chmod 600" in warning


# --- the algorithm --------------------------------------------------------------------------------


def test_rsa_uses_ps256_unless_the_server_lists_only_rs256(rsa_native: rsa.RSAPrivateKey) -> None:
    key = parse_private_key(pem(rsa_native))
    assert key.for_server(None).alg == "PS256"  # not published: the preferred one
    assert key.for_server(["ES256", "PS256", "RS256"]).alg == "PS256"
    assert key.for_server(["ES256", "RS256"]).alg == "RS256"


def test_a_key_the_server_accepts_no_algorithm_of_is_refused_before_any_request() -> None:
    key = parse_private_key(pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(KeyFileError, match="accepts no signature algorithm"):
        key.for_server(["PS256", "RS256"])


def test_ed25519_falls_back_to_the_fully_specified_alg_when_only_that_is_listed() -> None:
    key = parse_private_key(pem(ed25519.Ed25519PrivateKey.generate()))
    assert key.for_server(["EdDSA", "Ed25519"]).alg == "EdDSA"
    assert key.for_server(["Ed25519"]).alg == "Ed25519"


# --- the assertion ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ec", "ed25519", "rsa"])
def test_the_assertion_header_and_claims(kind: str, rsa_native: rsa.RSAPrivateKey) -> None:
    native = {
        "ec": lambda: ec.generate_private_key(ec.SECP256R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate,
        "rsa": lambda: rsa_native,
    }[kind]()
    key = parse_private_key(pem(native))
    form = key.client_assertion("app-1", ISSUER, NOW)
    assert form["client_id"] == "app-1"
    header, claims = claims_of(form)
    assert header == {"alg": key.alg, "kid": key.kid, "typ": "JWT"}
    assert claims["iss"] == claims["sub"] == "app-1"
    assert claims["aud"] == ISSUER  # a single string: the issuer (RFC 7523bis, FAPI 2.0)
    assert claims["iat"] == int(NOW)
    assert claims["exp"] == int(NOW) + 60
    raw_jti = base64.urlsafe_b64decode(claims["jti"] + "=" * (-len(claims["jti"]) % 4))
    assert len(raw_jti) * 8 >= 128
    server_verifies(form, key.public_jwk(), "app-1")


def test_every_assertion_has_a_new_jti() -> None:
    key = parse_private_key(pem(ec.generate_private_key(ec.SECP256R1())))
    jtis = {claims_of(key.client_assertion("a", ISSUER, NOW))[1]["jti"] for _ in range(20)}
    assert len(jtis) == 20


def test_the_server_refuses_the_assertion_signed_by_another_key() -> None:
    key = parse_private_key(pem(ec.generate_private_key(ec.SECP256R1())))
    other = parse_private_key(pem(ec.generate_private_key(ec.SECP256R1())), key_id=key.kid)
    from tessera.oauth.client_assertion import AssertionRefused

    with pytest.raises(AssertionRefused, match="signature"):
        server_verifies(other.client_assertion("a", ISSUER, NOW), key.public_jwk(), "a")


# --- at the endpoints, in the cache, at refresh -------------------------------------------------


def test_token_requests_carry_a_fresh_assertion_and_no_basic_header(ec_file: Path) -> None:
    idp = FakeIdp()
    key = load_private_key(ec_file)
    oauth = OAuthClient(ENDPOINTS, "cli", client_key=key, http=idp.client(), clock=lambda: NOW)
    assert oauth.auth_method == "private_key_jwt" and oauth.is_confidential
    tokens = oauth.exchange_code("c", "http://127.0.0.1:1/callback", "v" * 43)
    oauth.refresh(tokens)
    oauth.revoke("rt", "refresh_token")
    forms = idp.calls("/oauth2/v1/token") + idp.calls("/oauth2/v1/revoke")
    assert all(form["client_id"] == "cli" for form in forms)
    assert len({claims_of(form)[1]["jti"] for form in forms}) == 3
    for headers in idp.headers("/oauth2/v1/token"):
        assert "authorization" not in headers
    server_verifies(forms[1], key.public_jwk(), "cli")


def test_a_secret_and_a_key_together_are_refused(ec_file: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        OAuthClient(ENDPOINTS, "cli", "s", client_key=load_private_key(ec_file))
    with pytest.raises(LoginError, match="not both"):
        login(ISSUER, "cli", client_secret="s", private_key=ec_file, cache=TokenCache(Path()))


def test_login_with_a_key_caches_the_path_never_the_key_and_refreshes_with_it(
    tmp_path: Path, ec_file: Path
) -> None:
    idp = FakeIdp(auth_algs=["PS256", "ES256", "EdDSA"])
    cache = TokenCache(tmp_path / "config")
    session = login(
        ISSUER, "cli", private_key=ec_file, opener=UserAgent(idp), cache=cache, http=idp.client()
    )
    exchange = idp.calls("/oauth2/v1/token")[0]
    assert exchange["grant_type"] == "authorization_code"
    assert claims_of(exchange)[0]["alg"] == "ES256"

    assert session.entry.private_key == KeyFile(path=os.path.abspath(ec_file), alg="ES256")
    raw = cache.path_for(ISSUER, "cli", "default").read_text()
    assert json.loads(raw)["private_key"] == {
        "path": os.path.abspath(ec_file),
        "alg": "ES256",
        "key_id": None,
    }
    secret_scalar = load_private_key(ec_file).key.as_dict(private=True)["d"]
    assert secret_scalar not in raw and "PRIVATE KEY" not in raw

    later = Session.load("default", cache=cache, http=idp.client(), margin=0)
    later.refresh()
    refresh = idp.calls("/oauth2/v1/token")[1]
    assert refresh["grant_type"] == "refresh_token"
    assert claims_of(refresh)[1]["jti"] != claims_of(exchange)[1]["jti"]


def test_login_warns_when_the_key_file_is_readable_by_others(
    tmp_path: Path, ec_file: Path
) -> None:
    ec_file.chmod(0o640)
    idp = FakeIdp()
    with pytest.warns(KeyFileWarning, match="chmod 600"):
        login(
            ISSUER,
            "cli",
            private_key=ec_file,
            opener=UserAgent(idp),
            cache=TokenCache(tmp_path),
            http=idp.client(),
        )


def test_a_bad_key_file_fails_before_any_request(tmp_path: Path) -> None:
    idp = FakeIdp()
    (tmp_path / "key.pem").write_text("not a key")
    with pytest.raises(KeyFileError):
        login(ISSUER, "cli", private_key=tmp_path / "key.pem", http=idp.client())
    assert idp.requests == []


def test_a_refresh_after_the_key_file_went_away_says_what_to_do(
    tmp_path: Path, ec_file: Path
) -> None:
    cache = TokenCache(tmp_path)
    cache.save(
        CacheEntry(
            profile="default",
            client_id="cli",
            endpoints=ENDPOINTS,
            tokens=TokenSet("at-0", expires_at=time.time() - 1, refresh_token="rt-0"),
            private_key=KeyFile(str(ec_file), "ES256", "kid-1"),
        )
    )
    ec_file.unlink()
    idp = FakeIdp()
    with pytest.raises(KeyFileError, match="private key cannot be used") as raised:
        Session.load("default", cache=cache, http=idp.client()).access_token()
    assert raised.value.hint is not None
    assert f"--private-key {ec_file}" in raised.value.hint and "--key-id kid-1" in raised.value.hint
    assert idp.requests == []


def test_the_login_command_names_the_key_file() -> None:
    command = login_command(ISSUER, "cli", "ci", private_key=KeyFile("/keys/my app.pem", "ES256"))
    assert command == (
        f"tessera login --issuer {ISSUER} --client-id cli --private-key '/keys/my app.pem' "
        "--profile ci"
    )


def test_a_cache_entry_with_a_key_round_trips_and_refuses_a_secret_beside_it() -> None:
    entry = CacheEntry(
        profile="default",
        client_id="cli",
        endpoints=ENDPOINTS,
        tokens=TokenSet("at"),
        private_key=KeyFile("/k.pem", "PS256", None),
    )
    data = entry.to_json()
    assert CacheEntry.from_json(data) == entry
    with pytest.raises(ValueError, match="both"):
        CacheEntry.from_json({**data, "client_secret": "s"})


def test_the_cached_alg_is_used_at_refresh_when_the_key_can(
    rsa_native: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    path = tmp_path / "rsa.pem"
    path.write_bytes(pem(rsa_native))
    assert KeyFile(str(path), "RS256").load().alg == "RS256"
    assert KeyFile(str(path), "ES256").load().alg == "PS256"  # the key changed type: its own


def test_importing_the_client_library_loads_no_crypto_library() -> None:
    code = "import sys, tessera.client; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert not {m for m in loaded if m.startswith(("joserfc", "cryptography"))}


def test_signing_with_eddsa_emits_no_warning() -> None:
    key = parse_private_key(pem(ed25519.Ed25519PrivateKey.generate()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        key.client_assertion("a", ISSUER, NOW)


def test_the_public_jwk_has_no_private_member() -> None:
    key = parse_private_key(pem(ec.generate_private_key(ec.SECP256R1())))
    assert "d" not in key.public_jwk()


def test_a_refresh_refused_invalid_client_names_the_key_file(tmp_path: Path, ec_file: Path) -> None:
    cache = TokenCache(tmp_path)
    cache.save(
        CacheEntry(
            profile="default",
            client_id="cli",
            endpoints=ENDPOINTS,
            tokens=TokenSet("at-0", expires_at=time.time() - 1, refresh_token="rt-0"),
            private_key=KeyFile(str(ec_file), "ES256"),
        )
    )
    idp = FakeIdp(refresh_error="invalid_client")
    with pytest.raises(LoginExpired, match="refused the app's key") as raised:
        Session.load("default", cache=cache, http=idp.client()).access_token()
    assert raised.value.hint is not None and str(ec_file) in raised.value.hint
    assert "client_assertion" in idp.calls("/oauth2/v1/token")[0]
