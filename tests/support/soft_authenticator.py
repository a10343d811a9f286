"""A software FIDO2 authenticator and client, for tests without a browser.

`SoftAuthenticator` plays both the browser (it writes `clientDataJSON` for the origin it is
given) and the authenticator (it holds ES256 keys, writes authenticator data and signs). It
reads the options JSON our pages give `navigator.credentials.create()` / `.get()` and returns
what `PublicKeyCredential.toJSON()` would (W3C WebAuthn Level 3 §5.1), with "none" attestation.

Its flags (`up`, `uv`, `be`, `bs`) and counter behaviour are settable, and it can answer
wrongly on purpose: another origin (just pass it), another RP ID (`rp_id=`), another
challenge (`challenge=`), a tampered signature (`tamper_signature=True`), a counter set back
(`reset_counter`, a clone).

    authn = SoftAuthenticator()
    created = authn.create(options_json, "http://localhost:8000")
    asserted = authn.get(request_options_json, "http://localhost:8000")
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["SoftAuthenticator", "SoftCredential", "b64url", "unb64url"]

_ES256 = -7
_FLAG_UP, _FLAG_UV, _FLAG_BE, _FLAG_BS, _FLAG_AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftCredential:
    """A discoverable credential the authenticator holds."""

    credential_id: bytes
    rp_id: str
    user_handle: bytes
    private_key: ec.EllipticCurvePrivateKey
    sign_count: int = 0

    @property
    def id(self) -> str:
        return b64url(self.credential_id)

    def cose_public_key(self) -> bytes:
        """The EC2 P-256 key as a COSE_Key (RFC 9053 §7.1.1)."""
        numbers = self.private_key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: _ES256,  # alg
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )


@dataclass
class SoftAuthenticator:
    """`counting=False` keeps every counter at 0 (as synced passkeys do)."""

    up: bool = True
    uv: bool = True
    be: bool = False
    bs: bool = False
    counting: bool = True
    aaguid: bytes = bytes(16)
    attachment: str = "platform"
    transports: tuple[str, ...] = ("internal",)
    credentials: dict[str, SoftCredential] = field(default_factory=dict)

    def _flags(self, extra: int = 0) -> bytes:
        pairs = ((self.up, _FLAG_UP), (self.uv, _FLAG_UV), (self.be, _FLAG_BE), (self.bs, _FLAG_BS))
        return bytes([extra | sum(bit for on, bit in pairs if on)])

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str, cross_origin: bool) -> bytes:
        data = {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": cross_origin}
        return json.dumps(data, separators=(",", ":")).encode("utf-8")

    def create(
        self,
        options_json: str,
        origin: str,
        *,
        rp_id: str | None = None,
        challenge: str | None = None,
        cross_origin: bool = False,
    ) -> str:
        """The `navigator.credentials.create()` result for these creation options (§5.1.3).
        `rp_id` / `challenge` override what the options say (a wrong response)."""
        options = json.loads(options_json)
        options = options.get("publicKey", options)
        if not any(p.get("alg") == _ES256 for p in options["pubKeyCredParams"]):
            raise ValueError("NotSupportedError: the options do not allow ES256")
        effective_rp = rp_id or options["rp"].get("id") or urlsplit(origin).hostname or ""
        for excluded in options.get("excludeCredentials", []):
            if excluded["id"] in self.credentials:
                raise ValueError("InvalidStateError: the authenticator is registered already")
        credential = SoftCredential(
            credential_id=secrets.token_bytes(32),
            rp_id=options["rp"].get("id") or urlsplit(origin).hostname or "",
            user_handle=unb64url(options["user"]["id"]),
            private_key=ec.generate_private_key(ec.SECP256R1()),
        )
        self.credentials[credential.id] = credential
        attested = (
            self.aaguid
            + len(credential.credential_id).to_bytes(2, "big")
            + credential.credential_id
            + credential.cose_public_key()
        )
        auth_data = (
            hashlib.sha256(effective_rp.encode()).digest()
            + self._flags(_FLAG_AT)
            + credential.sign_count.to_bytes(4, "big")
            + attested
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data(
            "webauthn.create", challenge or options["challenge"], origin, cross_origin
        )
        return json.dumps(
            {
                "id": credential.id,
                "rawId": credential.id,
                "type": "public-key",
                "authenticatorAttachment": self.attachment,
                "clientExtensionResults": {},
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "attestationObject": b64url(attestation),
                    "transports": list(self.transports),
                },
            }
        )

    def _pick(
        self, options: dict[str, Any], rp_id: str, credential_id: str | None
    ) -> SoftCredential:
        allowed = [c["id"] for c in options.get("allowCredentials") or []]
        candidates = [
            c
            for c in self.credentials.values()
            if c.rp_id == rp_id
            and (not allowed or c.id in allowed)
            and (credential_id is None or c.id == credential_id)
        ]
        if not candidates:
            raise LookupError("NotAllowedError: no credential for this RP")
        return candidates[-1]  # the newest, as a user would most likely pick

    def get(
        self,
        options_json: str,
        origin: str,
        *,
        credential_id: str | None = None,
        rp_id: str | None = None,
        challenge: str | None = None,
        tamper_signature: bool = False,
        user_handle: bool = True,
        cross_origin: bool = False,
    ) -> str:
        """The `navigator.credentials.get()` result for these request options (§5.1.4).
        The credential is the one named, else the newest one the options allow for the RP.
        `rp_id` / `challenge` override what the options say (a wrong response)."""
        options = json.loads(options_json)
        options = options.get("publicKey", options)
        own_rp = options.get("rpId") or urlsplit(origin).hostname or ""
        credential = self._pick(options, own_rp, credential_id)
        if self.counting:
            credential.sign_count += 1
        auth_data = (
            hashlib.sha256((rp_id or own_rp).encode()).digest()
            + self._flags()
            + credential.sign_count.to_bytes(4, "big")
        )
        client_data = self._client_data(
            "webauthn.get", challenge or options["challenge"], origin, cross_origin
        )
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = credential.private_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        if tamper_signature:
            signature = credential.private_key.sign(signed + b"!", ec.ECDSA(hashes.SHA256()))
        response: dict[str, Any] = {
            "clientDataJSON": b64url(client_data),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
        }
        if user_handle:
            response["userHandle"] = b64url(credential.user_handle)
        return json.dumps(
            {
                "id": credential.id,
                "rawId": credential.id,
                "type": "public-key",
                "authenticatorAttachment": self.attachment,
                "clientExtensionResults": {},
                "response": response,
            }
        )

    def reset_counter(self, credential_id: str, value: int = 0) -> None:
        """Set a credential's counter back, as a clone of the authenticator would have it."""
        self.credentials[credential_id].sign_count = value
