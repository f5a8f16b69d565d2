"""Fixtures shared by the whole suite live in ``tests/support``, one module per concern."""

pytest_plugins = [
    "tests.support.temporal",
    "tests.support.contract",
    "tests.support.sandbox",
    "tests.support.ledger",
    "tests.support.cli",
]
