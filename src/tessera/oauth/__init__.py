"""The OAuth 2.0 / OpenID Connect protocol core: framework-free, one module per spec."""
