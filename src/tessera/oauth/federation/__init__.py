"""Signing in through upstream OpenID Connect providers (docs/federation.md).

`metadata` talks to the provider (OIDC Discovery 1.0, the token and userinfo requests),
`id_token` validates its ID tokens (OIDC Core §3.1.3.7), `flow` is the browser's round trip
(the request, its sealed cookie, the callback's checks), `accounts` maps the claims and finds,
links or creates the local account, `home_realm` picks a provider by e-mail domain, `secrets`
seals our credentials at the providers. No web framework here: `tessera.web.federation` calls
these functions.
"""
