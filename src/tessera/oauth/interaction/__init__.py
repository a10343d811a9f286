"""The user's side of the authorization code flow, framework-free: signing in (with throttling
and known devices), the browser session, consent and CSRF tokens.

`tessera.web.browser` parses the pages' requests, calls these functions and renders what they
decide (RFC 6749 §4.1.1-§4.1.2, OIDC Core §3.1.2, docs/security.md rules 3, 9 and 29).
"""
