"""Alembic migrations of the ledger's schema (docs/ledger.md: how to add one)."""
