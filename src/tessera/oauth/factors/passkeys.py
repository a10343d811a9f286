"""Passkeys: the relying-party side of W3C Web Authentication Level 3, over `webauthn`.

Registration (§7.1) and authentication (§7.2) ceremonies: the options JSON for
`navigator.credentials.create()` / `.get()`, and the verification of what the browser returns.
Everything a caller needs to store or decide comes back as plain values; anything wrong is a
`PasskeyError` whose message can be shown to the user (the library's own text, which names
internals, is kept in `detail` for logs).

What the caller does around these functions (§7.1, §7.2): issue and check the challenge
(`challenges`), refuse a credential id already registered, look the passkey up by
`credential_id_of` and check it belongs to the user being signed in (or, username-less, to the
user `user_handle_of` names), and store the new sign count only if it still holds the old one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    decode_credential_public_key,
    decoded_public_key_to_cryptography,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

__all__ = [
    "ALGORITHMS",
    "MAX_RESPONSE_CHARS",
    "Assertion",
    "ClonedAuthenticator",
    "NewCredential",
    "PasskeyError",
    "authentication_options",
    "credential_id_of",
    "methods_for",
    "registration_options",
    "user_handle_of",
    "verify_authentication",
    "verify_registration",
]

# §5.4 (pubKeyCredParams): EdDSA, ES256 and RS256 cover the authenticators in use.
ALGORITHMS = (
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
)
MAX_RESPONSE_CHARS = 64 * 1024  # a response with an RSA key and attestation fits well within
_MAX_CREDENTIAL_ID = 1023  # bytes (§4 "Credential ID", checked in §7.1)
_MAX_USER_HANDLE = 64  # bytes (§5.4.3 `user.id`)
_MIN_CHALLENGE = 16  # bytes (§13.4.3)
_TIMEOUT_MS = 300_000  # §15.1: 5 to 10 minutes when user verification may be asked for
_MAX_TRANSPORTS = 8
# Malformed input reaches the library's parsers, which raise more than their own exceptions.
_LIBRARY_ERRORS = (
    WebAuthnException,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    RecursionError,
)
_MALFORMED = "The passkey response is malformed."
_UNVERIFIED = "The passkey response could not be verified."
# The start of the library's messages, and what we tell the user instead.
_MESSAGES = (
    ("Client data challenge", "The passkey response answers another request; please try again."),
    ("Unexpected client data origin", "The passkey response was made for another web site."),
    ("Unexpected RP ID hash", "This passkey is for another web site (RP ID)."),
    ("Unexpected client data type", "The passkey response is for another kind of request."),
    ("User presence", "The authenticator did not confirm your presence; touch it when asked."),
    ("User was not present", "The authenticator did not confirm your presence."),
    ("User verification", "The authenticator did not verify you (PIN or biometrics)."),
    ("Could not verify authentication signature", "The passkey's signature does not verify."),
    ("Unsupported credential public key alg", "This passkey uses an algorithm we do not accept."),
    ("Unsupported attestation type", "The authenticator's attestation format is not supported."),
    ("Attestation statement", "The authenticator's attestation does not verify."),
    ("None attestation", "The authenticator's attestation does not verify."),
)

_Credential = TypeVar("_Credential", RegistrationCredential, AuthenticationCredential)


class PasskeyError(Exception):
    """A passkey response we refuse; `message` is for the user, `detail` for the log."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class ClonedAuthenticator(PasskeyError):
    """The signature counter did not move forward (§6.1.1): the authenticator may be a clone."""


@dataclass(frozen=True, slots=True)
class NewCredential:
    """A verified registration (§7.1), ready to store as a `Passkey`."""

    credential_id: str  # base64url
    public_key: bytes  # COSE_Key (RFC 9052 §7)
    sign_count: int
    aaguid: str  # the authenticator model; all zeros with "none" attestation from many
    transports: tuple[str, ...]
    backed_up: bool  # a multi-device (syncable) credential: BE set (§6.1.3)
    user_verified: bool


@dataclass(frozen=True, slots=True)
class Assertion:
    """A verified authentication (§7.2)."""

    new_sign_count: int
    user_verified: bool
    backed_up: bool  # BE, as in `NewCredential`


def _challenge_ok(challenge: bytes) -> bytes:
    if len(challenge) < _MIN_CHALLENGE:
        raise ValueError(f"a WebAuthn challenge has at least {_MIN_CHALLENGE} random bytes")
    return challenge


def _descriptors(ids: Sequence[str]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(i)) for i in ids]


def registration_options(
    *,
    rp_id: str,
    rp_name: str,
    user_id: str,
    user_name: str,
    display_name: str,
    challenge: bytes,
    exclude: Sequence[str],
) -> str:
    """The `PublicKeyCredentialCreationOptions` (§5.4) as JSON, for
    `PublicKeyCredential.parseCreationOptionsFromJSON` / `navigator.credentials.create()`.

    A discoverable credential is required (§5.4.4 `residentKey`), so the passkey can sign in
    without a user name; user verification is preferred; no attestation is asked for (§5.4.7:
    we do not restrict authenticator models). `user_id` becomes the user handle (§5.4.3: at
    most 64 bytes, and no personal data); `exclude` lists the user's credential ids (base64url)
    so an authenticator is not registered twice (§5.4 `excludeCredentials`).
    """
    handle = user_id.encode("utf-8")
    if not 0 < len(handle) <= _MAX_USER_HANDLE:
        raise ValueError(f"a user handle has 1 to {_MAX_USER_HANDLE} bytes")
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=rp_name,
        user_name=user_name,
        user_id=handle,
        user_display_name=display_name,
        challenge=_challenge_ok(challenge),
        timeout=_TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(exclude),
        supported_pub_key_algs=list(ALGORITHMS),
    )
    return options_to_json(options)


def authentication_options(
    *,
    rp_id: str,
    challenge: bytes,
    allow: Sequence[str] = (),
    user_verification: Literal["preferred", "required"] = "preferred",
) -> str:
    """The `PublicKeyCredentialRequestOptions` (§5.5) as JSON, for
    `navigator.credentials.get()`. An empty `allow` lets the user pick any discoverable
    credential for `rp_id` (a username-less sign-in); else it lists the user's credential ids.
    `user_verification` "required" for a passwordless sign-in, where the passkey is both
    factors (§6.2.3)."""
    if user_verification not in ("preferred", "required"):
        raise ValueError("user_verification is 'preferred' or 'required'")
    options = generate_authentication_options(
        rp_id=rp_id,
        challenge=_challenge_ok(challenge),
        timeout=_TIMEOUT_MS,
        allow_credentials=_descriptors(allow),
        user_verification=UserVerificationRequirement(user_verification),
    )
    return options_to_json(options)


def _parse(response_json: str, parse: Callable[[dict[str, Any]], _Credential]) -> _Credential:
    """The credential a browser returned (§5.1 `PublicKeyCredential.toJSON()`), bounded."""
    if len(response_json) > MAX_RESPONSE_CHARS:
        raise PasskeyError("The passkey response is too large.")
    try:
        data = json.loads(response_json)
    except (ValueError, RecursionError) as exc:
        raise PasskeyError(_MALFORMED, str(exc)) from exc
    if not isinstance(data, dict):
        raise PasskeyError(_MALFORMED, "not a JSON object")
    try:
        credential = parse(data)
    except _LIBRARY_ERRORS as exc:
        raise PasskeyError(_MALFORMED, str(exc)) from exc
    # `id` is `rawId`, base64url (§5.1); the library decodes leniently (it drops characters
    # outside the alphabet), so compare encodings: one credential, one spelling.
    if bytes_to_base64url(credential.raw_id) != credential.id:
        raise PasskeyError(_MALFORMED, "id and rawId differ")
    handle = getattr(credential.response, "user_handle", None)
    if handle is not None and bytes_to_base64url(handle) != data["response"]["userHandle"]:
        raise PasskeyError(_MALFORMED, "userHandle is not base64url")
    if not 0 < len(credential.raw_id) <= _MAX_CREDENTIAL_ID:
        raise PasskeyError(_MALFORMED, "credential id length")
    return credential


def _refusal(exc: Exception) -> PasskeyError:
    text = str(exc)
    for start, message in _MESSAGES:
        if text.startswith(start):
            return PasskeyError(message, text)
    return PasskeyError(_UNVERIFIED, f"{type(exc).__name__}: {text}")


def _check_same_origin(client_data_json: bytes) -> None:
    """§7.1 / §7.2 `crossOrigin`: our pages cannot be framed, so a ceremony run in a frame of
    another site is refused."""
    if parse_client_data_json(client_data_json).cross_origin:
        raise PasskeyError("The passkey was used inside another web site's frame.")


def verify_registration(
    response_json: str, *, challenge: bytes, rp_id: str, origin: str
) -> NewCredential:
    """Verify the result of `navigator.credentials.create()` (§7.1): the ceremony type, the
    challenge, the origin, the RP ID hash, user presence, the algorithm, and the attestation
    statement (any format the library verifies; "none" is what we ask for). The public key
    must load, so a credential that could never sign in is not stored."""
    credential = _parse(response_json, parse_registration_credential_json)
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            require_user_presence=True,
            require_user_verification=False,
            supported_pub_key_algs=list(ALGORITHMS),
        )
        decoded_public_key_to_cryptography(
            decode_credential_public_key(verified.credential_public_key)
        )
    except _LIBRARY_ERRORS as exc:
        raise _refusal(exc) from exc
    _check_same_origin(credential.response.client_data_json)
    if verified.credential_id != credential.raw_id:
        raise PasskeyError(_MALFORMED, "the attested credential id is not rawId")
    transports = dict.fromkeys(t.value for t in credential.response.transports or ())
    return NewCredential(
        credential_id=credential.id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        transports=tuple(transports)[:_MAX_TRANSPORTS],
        backed_up=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        user_verified=verified.user_verified,
    )


def credential_id_of(response_json: str) -> str:
    """The credential id (base64url) of a `navigator.credentials.get()` result, read before
    verifying it, to look the passkey up (§7.2)."""
    return _parse(response_json, parse_authentication_credential_json).id


def user_handle_of(response_json: str) -> str | None:
    """The user handle of a `navigator.credentials.get()` result (the `user_id` given at
    registration), or None when the authenticator sent none (§5.2.2 `userHandle`)."""
    credential = _parse(response_json, parse_authentication_credential_json)
    handle = credential.response.user_handle
    if not handle:
        return None
    if len(handle) > _MAX_USER_HANDLE:
        raise PasskeyError(_MALFORMED, "user handle too long")
    try:
        return handle.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PasskeyError(_MALFORMED, "user handle is not UTF-8") from exc


def verify_authentication(
    response_json: str,
    *,
    challenge: bytes,
    rp_id: str,
    origin: str,
    public_key: bytes,
    sign_count: int,
    require_user_verification: bool,
) -> Assertion:
    """Verify the result of `navigator.credentials.get()` (§7.2) against the stored passkey
    (`public_key`, `sign_count`): the ceremony type, challenge, origin, RP ID hash, user
    presence (and verification if required), and the signature over the authenticator data
    and the client data hash.

    The signature counter (§6.1.1, §7.2 signCount step): when either count is non-zero the new
    one must exceed the stored one, else `ClonedAuthenticator`. Both zero is accepted (synced
    passkeys keep 0). The count is checked here, after the signature, not by the library,
    which checks it first: a forged response must not pass for a clone.
    """
    credential = _parse(response_json, parse_authentication_credential_json)
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=public_key,
            credential_current_sign_count=0,  # the library's check never fires (see above)
            require_user_verification=require_user_verification,
        )
    except _LIBRARY_ERRORS as exc:
        raise _refusal(exc) from exc
    _check_same_origin(credential.response.client_data_json)
    new_count = verified.new_sign_count
    if (new_count or sign_count) and new_count <= sign_count:
        raise ClonedAuthenticator(
            "This passkey's signature counter went backwards, so it may have been copied; "
            "it was refused.",
            f"sign count {new_count} after {sign_count}",
        )
    return Assertion(
        new_sign_count=new_count,
        user_verified=verified.user_verified,
        backed_up=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
    )


def methods_for(backed_up: bool, user_verified: bool) -> tuple[str, ...]:
    """RFC 8176 `amr` values of a passkey use: `swk` for a synced (software-held) key, `hwk`
    for a device-bound one, and `user` when the authenticator verified the user."""
    kind = "swk" if backed_up else "hwk"
    return (kind, "user") if user_verified else (kind,)
