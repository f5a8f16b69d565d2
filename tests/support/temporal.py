"""Fixtures: temporal (being written)."""
