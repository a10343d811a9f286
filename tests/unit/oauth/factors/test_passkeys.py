"""Passkeys (W3C WebAuthn Level 3 §7.1, §7.2) with the software authenticator: the options we
send, the round trip, and every way a response can be wrong, each a `PasskeyError` with a
message for the user."""

from __future__ import annotations

import json
from dataclasses import dataclass

import cbor2
import pytest

from tessera.oauth.factors import passkeys
from tessera.oauth.factors.passkeys import (
    Assertion,
    ClonedAuthenticator,
    NewCredential,
    PasskeyError,
)
from tests.support.soft_authenticator import SoftAuthenticator, b64url, unb64url

RP_ID = "localhost"
ORIGIN = "http://localhost:8000"
USER_ID = "u-3f9a0c"
CHALLENGE = b"c" * 32
OTHER_CHALLENGE = b"d" * 32


def creation_options(challenge: bytes = CHALLENGE, exclude: tuple[str, ...] = ()) -> str:
    return passkeys.registration_options(
        rp_id=RP_ID,
        rp_name="Tessera",
        user_id=USER_ID,
        user_name="alice",
        display_name="Alice Example",
        challenge=challenge,
        exclude=exclude,
    )


def request_options(challenge: bytes = CHALLENGE, allow: tuple[str, ...] = ()) -> str:
    return passkeys.authentication_options(rp_id=RP_ID, challenge=challenge, allow=allow)


def register(authn: SoftAuthenticator) -> NewCredential:
    created = authn.create(creation_options(), ORIGIN)
    return passkeys.verify_registration(created, challenge=CHALLENGE, rp_id=RP_ID, origin=ORIGIN)


@dataclass
class Stored:
    """What the store keeps of a passkey, for these tests."""

    public_key: bytes
    sign_count: int


def authenticate(
    response: str,
    stored: NewCredential | Stored,
    *,
    challenge: bytes = CHALLENGE,
    rp_id: str = RP_ID,
    origin: str = ORIGIN,
    require_uv: bool = False,
) -> Assertion:
    return passkeys.verify_authentication(
        response,
        challenge=challenge,
        rp_id=rp_id,
        origin=origin,
        public_key=stored.public_key,
        sign_count=stored.sign_count,
        require_user_verification=require_uv,
    )


# The options -------------------------------------------------------------------------------


def test_registration_options_ask_for_a_discoverable_credential_without_attestation() -> None:
    options = json.loads(creation_options(exclude=(b64url(b"old-1"), b64url(b"old-2"))))
    assert options["rp"] == {"id": RP_ID, "name": "Tessera"}
    assert options["user"] == {
        "id": b64url(USER_ID.encode()),
        "name": "alice",
        "displayName": "Alice Example",
    }
    assert unb64url(options["challenge"]) == CHALLENGE
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-8, -7, -257]
    assert options["authenticatorSelection"] == {
        "residentKey": "required",
        "requireResidentKey": True,
        "userVerification": "preferred",
    }
    assert options["attestation"] == "none"
    assert [unb64url(c["id"]) for c in options["excludeCredentials"]] == [b"old-1", b"old-2"]
    assert options["timeout"] == 300_000


def test_authentication_options_username_less_and_listed() -> None:
    options = json.loads(request_options())
    assert options["rpId"] == RP_ID and unb64url(options["challenge"]) == CHALLENGE
    assert options["allowCredentials"] == []
    assert options["userVerification"] == "preferred"
    listed = json.loads(
        passkeys.authentication_options(
            rp_id=RP_ID, challenge=CHALLENGE, allow=(b64url(b"k1"),), user_verification="required"
        )
    )
    assert [c["id"] for c in listed["allowCredentials"]] == [b64url(b"k1")]
    assert listed["userVerification"] == "required"


def test_options_refuse_programming_errors() -> None:
    with pytest.raises(ValueError):
        creation_options(challenge=b"short")
    with pytest.raises(ValueError):
        request_options(challenge=b"")
    with pytest.raises(ValueError):
        passkeys.authentication_options(rp_id=RP_ID, challenge=CHALLENGE, user_verification="no")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        passkeys.registration_options(
            rp_id=RP_ID, rp_name="T", user_id="x" * 65, user_name="a", display_name="A",
            challenge=CHALLENGE, exclude=(),
        )


# The round trip ----------------------------------------------------------------------------


def test_register_then_authenticate() -> None:
    authn = SoftAuthenticator()
    new = register(authn)
    [soft] = authn.credentials.values()
    assert new.credential_id == soft.id
    assert new.public_key == soft.cose_public_key()
    assert (new.sign_count, new.aaguid, new.transports) == (0, "00000000-0000-0000-0000-000000000000", ("internal",))
    assert (new.backed_up, new.user_verified) == (False, True)

    response = authn.get(request_options(), ORIGIN)
    assert passkeys.credential_id_of(response) == new.credential_id
    assert passkeys.user_handle_of(response) == USER_ID
    assert authenticate(response, new) == Assertion(new_sign_count=1, user_verified=True, backed_up=False)
    again = authn.get(request_options(allow=(new.credential_id,)), ORIGIN)
    assert authenticate(again, Stored(new.public_key, 1)).new_sign_count == 2


def test_a_synced_passkey_is_backed_up_and_may_keep_its_counter_at_zero() -> None:
    authn = SoftAuthenticator(be=True, bs=True, counting=False)
    new = register(authn)
    assert new.backed_up
    first = authenticate(authn.get(request_options(), ORIGIN), new)
    assert first == Assertion(new_sign_count=0, user_verified=True, backed_up=True)
    assert authenticate(authn.get(request_options(), ORIGIN), new).new_sign_count == 0


def test_backup_eligible_but_not_yet_backed_up_counts_as_synced() -> None:
    authn = SoftAuthenticator(be=True, bs=False)
    assert register(authn).backed_up


def test_without_user_verification() -> None:
    authn = SoftAuthenticator(uv=False)
    new = register(authn)
    assert not new.user_verified
    assert not authenticate(authn.get(request_options(), ORIGIN), new).user_verified
    with pytest.raises(PasskeyError, match="did not verify you"):
        authenticate(authn.get(request_options(), ORIGIN), Stored(new.public_key, 1), require_uv=True)


def test_without_user_presence() -> None:
    authn = SoftAuthenticator()
    new = register(authn)
    authn.up = False
    with pytest.raises(PasskeyError, match="presence"):
        register(authn)
    with pytest.raises(PasskeyError, match="presence"):
        authenticate(authn.get(request_options(), ORIGIN), new)


def test_backed_up_without_backup_eligibility_is_refused() -> None:
    with pytest.raises(PasskeyError, match="could not be verified"):
        register(SoftAuthenticator(be=False, bs=True))


def test_a_user_handle_is_optional() -> None:
    authn = SoftAuthenticator()
    register(authn)
    assert passkeys.user_handle_of(authn.get(request_options(), ORIGIN, user_handle=False)) is None


# Wrong origin, RP ID, challenge, frame -----------------------------------------------------


def test_wrong_origin() -> None:
    authn = SoftAuthenticator()
    with pytest.raises(PasskeyError, match="another web site") as caught:
        passkeys.verify_registration(
            authn.create(creation_options(), "http://localhost:9999"),
            challenge=CHALLENGE, rp_id=RP_ID, origin=ORIGIN,
        )
    assert "localhost:9999" in caught.value.detail and "9999" not in caught.value.message
    new = register(authn)
    with pytest.raises(PasskeyError, match="another web site"):
        authenticate(authn.get(request_options(), "https://evil.example"), new)


def test_wrong_rp_id() -> None:
    authn = SoftAuthenticator()
    with pytest.raises(PasskeyError, match="RP ID"):
        passkeys.verify_registration(
            authn.create(creation_options(), ORIGIN, rp_id="evil.example"),
            challenge=CHALLENGE, rp_id=RP_ID, origin=ORIGIN,
        )
    new = register(authn)
    with pytest.raises(PasskeyError, match="RP ID"):
        authenticate(authn.get(request_options(), ORIGIN, rp_id="evil.example"), new)
    with pytest.raises(PasskeyError, match="RP ID"):
        authenticate(authn.get(request_options(), ORIGIN), new, rp_id="other.localhost")


def test_wrong_challenge() -> None:
    authn = SoftAuthenticator()
    with pytest.raises(PasskeyError, match="another request"):
        passkeys.verify_registration(
            authn.create(creation_options(), ORIGIN),
            challenge=OTHER_CHALLENGE, rp_id=RP_ID, origin=ORIGIN,
        )
    new = register(authn)
    with pytest.raises(PasskeyError, match="another request"):
        authenticate(authn.get(request_options(), ORIGIN), new, challenge=OTHER_CHALLENGE)
    with pytest.raises(PasskeyError, match="another request"):
        authenticate(authn.get(request_options(), ORIGIN, challenge=b64url(OTHER_CHALLENGE)), new)


def test_a_ceremony_in_another_sites_frame_is_refused() -> None:
    authn = SoftAuthenticator()
    with pytest.raises(PasskeyError, match="frame"):
        passkeys.verify_registration(
            authn.create(creation_options(), ORIGIN, cross_origin=True),
            challenge=CHALLENGE, rp_id=RP_ID, origin=ORIGIN,
        )
    new = register(authn)
    with pytest.raises(PasskeyError, match="frame"):
        authenticate(authn.get(request_options(), ORIGIN, cross_origin=True), new)


def test_a_registration_answer_is_not_an_assertion_and_back() -> None:
    authn = SoftAuthenticator()
    created = authn.create(creation_options(), ORIGIN)
    new = passkeys.verify_registration(created, challenge=CHALLENGE, rp_id=RP_ID, origin=ORIGIN)
    with pytest.raises(PasskeyError):
        authenticate(created, new)
    asserted = json.loads(authn.get(request_options(), ORIGIN))
    asserted["response"]["attestationObject"] = asserted["response"]["authenticatorData"]
    with pytest.raises(PasskeyError, match="another kind of request"):
        passkeys.verify_registration(json.dumps(asserted), challenge=CHALLENGE, rp_id=RP_ID, origin=ORIGIN)


# Signatures and counters -------------------------------------------------------------------


def test_tampered_signature() -> None:
    authn = SoftAuthenticator()
    new = register(authn)
    with pytest.raises(PasskeyError, match="signature does not verify") as caught:
        authenticate(authn.get(request_options(), ORIGIN, tamper_signature=True), new)
    assert not isinstance(caught.value, ClonedAuthenticator)


def test_a_signature_by_another_key() -> None:
    authn, other = SoftAuthenticator(), SoftAuthenticator()
    new = register(authn)
    register(other)
    with pytest.raises(PasskeyError, match="signature does not verify"):
        authenticate(other.get(request_options(), ORIGIN), new)


def test_a_tampered_authenticator_data_breaks_the_signature() -> None:
    authn = SoftAuthenticator(uv=False)
    new = register(authn)
    response = json.loads(authn.get(request_options(), ORIGIN))
    data = bytearray(unb64url(response["response"]["authenticatorData"]))
    data[32] |= 0x04  # claim user verification after the fact
    response["response"]["authenticatorData"] = b64url(bytes(data))
    with pytest.raises(PasskeyError, match="signature does not verify"):
        authenticate(json.dumps(response), new)


def test_a_counter_that_goes_backwards_is_a_clone() -> None:
    authn = SoftAuthenticator()
    new = register(authn)
    authenticate(authn.get(request_options(), ORIGIN), new)  # 1
    authenticate(authn.get(request_options(), ORIGIN), Stored(new.public_key, 1))  # 2
    authn.reset_counter(new.credential_id)
    with pytest.raises(ClonedAuthenticator, match="copied") as caught:
        authenticate(authn.get(request_options(), ORIGIN), Stored(new.public_key, 2))  # 1 <= 2
    assert "1 after 2" in caught.value.detail


def test_a_counter_that_stands_still_is_a_clone() -> None:
    authn = SoftAuthenticator()
    new = register(authn)
    response = authn.get(request_options(), ORIGIN)  # 1
    with pytest.raises(ClonedAuthenticator):
        authenticate(response, Stored(new.public_key, 1))


def test_a_counter_dropping_to_zero_is_a_clone() -> None:
    authn = SoftAuthenticator(counting=False)
    new = register(authn)
    with pytest.raises(ClonedAuthenticator):
        authenticate(authn.get(request_options(), ORIGIN), Stored(new.public_key, 5))


def test_a_forged_response_with_a_low_counter_is_not_taken_for_a_clone() -> None:
    authn = SoftAuthenticator()
    new = register(authn)
    forged = authn.get(request_options(), ORIGIN, tamper_signature=True)
    with pytest.raises(PasskeyError, match="signature does not verify") as caught:
        authenticate(forged, Stored(new.public_key, 50))
    assert not isinstance(caught.value, ClonedAuthenticator)


# Malformed input ---------------------------------------------------------------------------


def _get_response() -> tuple[dict[str, object], NewCredential]:
    authn = SoftAuthenticator()
    new = register(authn)
    return dict(json.loads(authn.get(request_options(), ORIGIN))), new


MALFORMED = [
    "",
    "not json",
    "[]",
    "null",
    "{}",
    '{"id": 1}',
    "[" * 60_000,  # deep nesting under the size limit
    json.dumps({"id": "abc", "rawId": "abc", "type": "public-key", "response": "x"}),
    json.dumps({"id": "abc", "rawId": "abc", "type": "secret-key", "response": {}}),
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_responses(text: str) -> None:
    with pytest.raises(PasskeyError, match="malformed"):
        passkeys.verify_registration(text, challenge=CHALLENGE, rp_id=RP_ID, origin=ORIGIN)
    with pytest.raises(PasskeyError, match="malformed"):
        authenticate(text, Stored(b"\xa0", 0))
    with pytest.raises(PasskeyError, match="malformed"):
        passkeys.credential_id_of(text)
    with pytest.raises(PasskeyError, match="malformed"):
        passkeys.user_handle_of(text)


def test_oversized_responses() -> None:
    big = json.dumps({"id": "x" * passkeys.MAX_RESPONSE_CHARS})
    for call in (passkeys.credential_id_of, passkeys.user_handle_of):
        with pytest.raises(PasskeyError, match="too large"):
            call(big)
    with pytest.raises(PasskeyError, match="too large"):
        passkeys.verify_registration(big, challenge=CHALLENGE, rp_id=RP_ID, origin=ORIGIN)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("id", "not-the-raw-id", "malformed"),
        ("rawId", "%%%", "malformed"),
        ("type", "secret-key", "malformed"),
        ("clientDataJSON", "e30", "could not be verified"),  # {}
        ("clientDataJSON", b64url(b"\xff\xfe"), "could not be verified"),
        ("clientDataJSON", b64url(b'{"type": "webauthn.get", "challenge": 5, "origin": "x"}'), "could not be verified"),
        ("authenticatorData", b64url(b"short"), "could not be verified"),
        ("signature", "!!!", "signature does not verify"),
        ("signature", "", "signature does not verify"),
        ("userHandle", 17, "malformed"),
    ],
)
def test_malformed_fields_of_an_assertion(field: str, value: object, message: str) -> None:
    response, new = _get_response()
    inner = response if field in ("id", "rawId", "type") else response["response"]
    assert isinstance(inner, dict)
    inner[field] = value
    with pytest.raises(PasskeyError, match=message):
        authenticate(json.dumps(response), new)


@pytest.mark.parametrize("value", [17, b64url(b"\xff\xfe"), b64url(b"u" * 65), "%"])
def test_malformed_user_handles(value: object) -> None:
    response, _ = _get_response()
    inner = response["response"]
    assert isinstance(inner, dict)
    inner["userHandle"] = value
    with pytest.raises(PasskeyError, match="malformed"):
        passkeys.user_handle_of(json.dumps(response))


def test_a_credential_id_over_1023_bytes_is_refused() -> None:
    response, _ = _get_response()
    response["id"] = response["rawId"] = b64url(b"i" * 1024)
    with pytest.raises(PasskeyError, match="malformed"):
        passkeys.credential_id_of(json.dumps(response))


def _rewrite_attested_key(created: str, key: dict[int, object]) -> str:
    """The registration response with another COSE key (the signature-less 'none' format
    lets us)."""
    response = json.loads(created)
    attestation = cbor2.loads(unb64url(response["response"]["attestationObject"]))
    auth_data: bytes = attestation["authData"]
    id_length = int.from_bytes(auth_data[53:55], "big")
    attestation["authData"] = auth_data[: 55 + id_length] + cbor2.dumps(key)
    response["response"]["attestationObject"] = b64url(cbor2.dumps(attestation))
    return json.dumps(response)


def test_a_public_key_that_cannot_be_loaded_is_refused_at_registration() -> None:
    created = SoftAuthenticator().create(creation_options(), ORIGIN)
    not_on_curve = {1: 2, 3: -7, -1: 1, -2: b"\x01" * 32, -3: b"\x02" * 32}
    with pytest.raises(PasskeyError, match="could not be verified"):
        passkeys.verify_registration(
            _rewrite_attested_key(created, not_on_curve), challenge=CHALLENGE, rp_id=RP_ID, origin=ORIGIN
        )


def test_an_algorithm_we_did_not_offer_is_refused() -> None:
    created = SoftAuthenticator().create(creation_options(), ORIGIN)
    es384 = {1: 2, 3: -35, -1: 2, -2: b"\x01" * 48, -3: b"\x02" * 48}
    with pytest.raises(PasskeyError, match="algorithm"):
        passkeys.verify_registration(
            _rewrite_attested_key(created, es384), challenge=CHALLENGE, rp_id=RP_ID, origin=ORIGIN
        )


def test_the_soft_authenticator_honours_exclude_credentials() -> None:
    authn = SoftAuthenticator()
    new = register(authn)
    with pytest.raises(ValueError, match="InvalidStateError"):
        authn.create(creation_options(exclude=(new.credential_id,)), ORIGIN)


# amr ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backed_up", "user_verified", "methods"),
    [
        (False, False, ("hwk",)),
        (False, True, ("hwk", "user")),
        (True, False, ("swk",)),
        (True, True, ("swk", "user")),
    ],
)
def test_methods_for(backed_up: bool, user_verified: bool, methods: tuple[str, ...]) -> None:
    assert passkeys.methods_for(backed_up, user_verified) == methods
