"""Runnable examples of Tessera's client side."""
