"""The ASGI application: thin adapters from HTTP to the protocol core."""
