"""Fixtures shared by the whole suite live in ``tests/support``, one module per concern."""

import os

# The suite's settings come from the environment its fixtures set, and from no .env
# file: a developer's .env (a real client ID, a production database) must never reach a
# test, nor the processes tests start. tests/test_env_file.py reads files on purpose.
os.environ["ENFORCER_ENV_FILE"] = ""

pytest_plugins = [
    "tests.support.temporal",
    "tests.support.contract",
    "tests.support.sandbox",
    "tests.support.ledger",
    "tests.support.cli",
]
