"""The seed's "client application": a confidential web app that signs users in with the
authorization code flow and calls the integration service with their access token."""

from examples.web_client.app import Settings, create_app, main

__all__ = ["Settings", "create_app", "main"]
