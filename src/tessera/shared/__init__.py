"""Tiny helpers shared by the identity domain and the resource-server library.

Nothing here imports server-side code: `tessera.resource` and `tessera.client` depend on it.
"""
