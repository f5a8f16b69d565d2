"""Fixtures: contract (being written)."""
