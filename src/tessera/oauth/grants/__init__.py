"""The grants of the token endpoint, one module each (docs/architecture.md, "The parts").

`tessera.oauth.token.TokenEndpoint` authenticates the client and dispatches a `TokenRequest`
on its `grant_type`; each grant answers a `TokenResponse` or raises an `OAuthError`
(RFC 6749 §5.2):

- `authorization_code`: RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 9700 §4.2.4;
- `refresh_token`: RFC 6749 §6, RFC 9700 §4.14 (the whole rotation rule);
- `client_credentials`: RFC 6749 §4.4, RFC 8707;
- `jwt_bearer`: RFC 7523 §2.1, §3 (a trusted partner's assertion for a user);
- `token_exchange`: RFC 8693 (delegation with `act`, administrators' policy per app);
- `device_code`: RFC 8628 §3.4-§3.5 (the endpoint and page rules: `tessera.oauth.device`);
- `response`: the §5.1 body, RFC 9068 access tokens and the OIDC ID token.
"""
