"""Second factors, framework-free: TOTP (RFC 6238), recovery codes, passkeys (W3C WebAuthn
Level 3) and the signed state that carries a WebAuthn challenge between two requests.

Pure functions over values: no store, no web. The interaction layer looks factors up, records
their use once (`store.factors`, `store.nonces`) and turns the errors raised here into pages.
"""
