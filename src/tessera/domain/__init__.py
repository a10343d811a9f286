"""Entities, value objects and pure rules of an identity domain. No I/O, no framework."""
